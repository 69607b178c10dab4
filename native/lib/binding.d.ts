// Types of build/*/cuvette_native.node, loaded only by loader.ts. Errors thrown (or rejected) by these
// functions are plain Errors with `errno` (errno on Linux, WSA/Win32 code on Windows) and `syscall`.

/** A vsock address as the kernel reports it (sockaddr_vm). */
export interface VsockName {
  readonly cid: number
  readonly port: number
}

/** An opaque handle of src/stream_io.cc (an N-API external). */
export interface StreamHandle {
  readonly __stream: unique symbol
}
export interface ServerHandle {
  readonly __server: unique symbol
}

/** The error the addon reports: errno (Linux) or WSA code (Windows) and the failing call. */
export type OsError = Error & { readonly errno: number; readonly syscall: string }

/**
 * src/stream_io.cc, on both platforms: the addon's own I/O threads. Event kinds: 0 data (a Buffer; the
 * callback returns push()'s result), 1 end, 2 error (OsError), 3 written (OsError | null), 4 finished
 * (the half-close; OsError | null), 5 closed (threads gone, socket closed), 6 connection (an fd / SOCKET).
 */
export interface StreamBinding {
  /** Takes ownership of a connected socket and starts its reader and writer threads. */
  streamOpen(socket: number, onEvent: (kind: number, value: unknown) => boolean | void): StreamHandle
  streamResume(handle: StreamHandle): void
  /** The chunks must stay referenced until their "written" event. */
  streamWrite(handle: StreamHandle, chunks: ReadonlyArray<Uint8Array>): void
  /** Half-close (shutdown SHUT_WR / SD_SEND) after the writes queued so far. */
  streamEnd(handle: StreamHandle): void
  streamDestroy(handle: StreamHandle): void
  streamRef(handle: StreamHandle, keep: boolean): void
  /** Takes ownership of a bound, listening socket and starts its accept thread. */
  serverOpen(socket: number, onEvent: (kind: number, value: unknown) => void): ServerHandle
  serverClose(handle: ServerHandle): void
  serverRef(handle: ServerHandle, keep: boolean): void
  /** I/O threads alive in this process (reader + writer per socket, one per server). */
  ioThreads(): number
  /** Tests: a listening socket on 127.0.0.1 (port 0: the kernel picks), created as VM sockets are. */
  loopbackListen(port: number): { readonly socket: number; readonly port: number }
  /** Tests: a socket connected to 127.0.0.1:port. */
  loopbackConnect(port: number): number
}

/** src/vsock_linux.cc + src/stream_io.cc. All fds are created non-blocking and close-on-exec. */
export interface LinuxBinding extends StreamBinding {
  readonly platform: "linux"
  socket(): number
  bind(fd: number, cid: number, port: number): void
  listen(fd: number, backlog: number): void
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
  /** Tests: a connected AF_UNIX stream pair. */
  socketpair(): [number, number]
}

/** src/hvsock_win.cc + src/stream_io.cc. SOCKETs travel as numbers; addresses as 36-byte SOCKADDR_HV (HvAddress.encodeSockaddrHv). */
export interface Win32Binding extends StreamBinding {
  readonly platform: "win32"
  /** Runs on the libuv threadpool; HVSOCKET_HIGH_VTL is set before connect when `vtl2`. Resolves with a connected overlapped SOCKET. */
  hvConnect(sockaddr: Uint8Array, vtl2: boolean, timeoutMs: number): Promise<number>
  /** A bound, listening overlapped SOCKET. */
  hvListen(sockaddr: Uint8Array, backlog: number): number
  /** The bound SOCKADDR_HV of a socket. */
  hvSockname(socket: number): Uint8Array
  hvClose(socket: number): void
  /** src/service_win.cc: starts the service-control dispatcher thread; SCM callbacks arrive as events. */
  svcDispatch(onEvent: (kind: ServiceEventKind, code: number) => void): void
  /** SetServiceStatus; a nonzero `exitCode` with "stopped" is a service-specific exit code. */
  svcReport(state: ServiceState, exitCode: number, waitHintMs: number): void
}

export type ServiceEventKind = "start" | "stop" | "shutdown" | "failed" | "ended"
export type ServiceState = "running" | "stopping" | "stopped"

export type Binding = LinuxBinding | Win32Binding
