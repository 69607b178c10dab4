// Types of build/*/cuvette_native.node, loaded only by loader.ts. Errors thrown (or rejected) by these
// functions are plain Errors with `errno` (errno on Linux, WSA/Win32 code on Windows) and `syscall`.

/** A vsock address as the kernel reports it (sockaddr_vm). */
export interface VsockName {
  readonly cid: number
  readonly port: number
}

/** src/vsock_linux.cc + src/relay_linux.cc. All fds are created non-blocking and close-on-exec. */
export interface LinuxBinding {
  readonly platform: "linux"
  socket(): number
  bind(fd: number, cid: number, port: number): void
  listen(fd: number, backlog: number): void
  /** null when no connection is pending (EAGAIN). */
  accept(fd: number): number | null
  /** Runs on the libuv threadpool; resolves with a connected fd. */
  connect(cid: number, port: number, timeoutMs: number): Promise<number>
  /** `{ family }` only, for a non-vsock fd. */
  sockname(fd: number): VsockName
  peername(fd: number): VsockName
  localCid(): number
  close(fd: number): void
  readonly constants: {
    readonly AF_VSOCK: number
    readonly VMADDR_CID_ANY: number
    readonly VMADDR_CID_HOST: number
    readonly VMADDR_PORT_ANY: number
  }
  /** A connected AF_UNIX stream pair. */
  socketpair(): [number, number]
  /** Takes ownership of a connected fd; returns the JS end of a socketpair a relay thread feeds. */
  relay(fd: number): number
  /** Takes ownership of a listening fd; relays each accepted connection to the AF_UNIX server at `path`. Returns a stop token. */
  relayListen(fd: number, path: string): number
  relayStop(token: number): void
  /** Tests only: a bound, listening AF_UNIX socket libuv has not seen (a stand-in for a vsock listener). */
  unixListen(path: string): number
}

/** src/hvsock_win.cc. SOCKETs travel as numbers; addresses as 36-byte SOCKADDR_HV (HvAddress.encodeSockaddrHv). */
export interface Win32Binding {
  readonly platform: "win32"
  /** Runs on the libuv threadpool; HVSOCKET_HIGH_VTL is set before connect when `vtl2`. Resolves with a connected overlapped SOCKET. */
  hvConnect(sockaddr: Uint8Array, vtl2: boolean, timeoutMs: number): Promise<number>
  /** Binds and listens, then an accept thread calls `onAccept` per connection. Returns a listener id. */
  hvListen(
    sockaddr: Uint8Array,
    backlog: number,
    onAccept: (error: (Error & { errno: number; syscall: string }) | null, socket: number) => void,
  ): number
  /** The bound SOCKADDR_HV of a listener. */
  hvListenerName(id: number): Uint8Array
  /** Stops the accept thread and closes the listening SOCKET. */
  hvStopListen(id: number): void
  hvClose(socket: number): void
  /** src/service_win.cc: starts the service-control dispatcher thread; SCM callbacks arrive as events. */
  svcDispatch(onEvent: (kind: ServiceEventKind, code: number) => void): void
  /** SetServiceStatus; a nonzero `exitCode` with "stopped" is a service-specific exit code. */
  svcReport(state: ServiceState, exitCode: number, waitHintMs: number): void
}

export type ServiceEventKind = "start" | "stop" | "shutdown" | "failed" | "ended"
export type ServiceState = "running" | "stopping" | "stopped"

export type Binding = LinuxBinding | Win32Binding
