// Turns OS sockets the addon created into ordinary Node streams driven by libuv.
//
// "handle" route (default): the fd/SOCKET goes into an internal TCP wrap (`process.binding('tcp_wrap')`),
// then `new net.Socket({ handle })` / `server.listen(handle)`. libuv's uv_tcp_open does not check the
// address family, so it reads, writes and accepts vsock (and Windows AF_HYPERV) sockets natively.
// `net.Socket({ fd })` cannot do this: uv_guess_handle reports vsock fds as UNKNOWN (ERR_INVALID_FD_TYPE).
//
// "relay" route (fallback, Linux): `process.binding` is doc-deprecated (DEP0111) and may go away, so the
// addon can instead relay each socket through an AF_UNIX socketpair, whose other end is public-API
// `net.Socket({ fd })`. Chosen automatically when the TCP wrap is missing, or with CUVETTE_NATIVE_ADOPT=relay.
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { getSystemErrorName } from "node:util"
import { load, loadLinux } from "./loader.js"
import { NativeError, unsupported } from "./NativeError.js"

export type Route = "handle" | "relay"

interface TcpHandle {
  open(fd: number): number
  readonly fd?: number
}
interface TcpWrap {
  readonly TCP: new (type: number) => TcpHandle
  readonly constants: { readonly SOCKET: number; readonly SERVER: number }
}

let tcpWrapCache: TcpWrap | null | undefined

/** The internal TCP wrap module, or undefined where it no longer exists (or in Bun, which lacks it). */
export const tcpWrap = (): TcpWrap | undefined => {
  if (tcpWrapCache === undefined) {
    try {
      const binding = (process as unknown as { binding(name: string): unknown }).binding
      const mod = binding.call(process, "tcp_wrap") as Partial<TcpWrap> | undefined
      tcpWrapCache =
        typeof mod?.TCP === "function" &&
        typeof mod.constants?.SOCKET === "number" &&
        typeof mod.constants.SERVER === "number"
          ? (mod as TcpWrap)
          : null
    } catch {
      tcpWrapCache = null
    }
  }
  return tcpWrapCache ?? undefined
}

/** The route in effect: CUVETTE_NATIVE_ADOPT=relay|handle forces one; otherwise the handle route when it exists. */
export const route = (): Route => {
  const forced = process.env.CUVETTE_NATIVE_ADOPT
  if (forced === "relay" || forced === "handle") return forced
  return tcpWrap() ? "handle" : "relay"
}

const closeQuietly = (fd: number): void => {
  try {
    const b = load()
    if (b.platform === "linux") b.close(fd)
    else b.hvClose(fd)
  } catch {
    // best effort: the fd is unusable either way
  }
}

const openHandle = (fd: number, kind: "SOCKET" | "SERVER", operation: string, target: string): TcpHandle => {
  const wrap = tcpWrap()
  if (!wrap)
    throw unsupported(
      operation,
      "the libuv TCP wrap (process.binding('tcp_wrap')) is not available here; unset CUVETTE_NATIVE_ADOPT=handle",
    )
  const handle = new wrap.TCP(wrap.constants[kind])
  const rc = handle.open(fd)
  if (rc !== 0) {
    closeQuietly(fd)
    const code = getSystemErrorName(rc)
    throw new NativeError({
      reason: "UNKNOWN",
      operation,
      target,
      code,
      detail: `libuv could not adopt fd ${fd} (${code})`,
    })
  }
  return handle
}

/** Adopts a connected socket (ownership passes to the returned stream). */
export const socketFromFd = (
  fd: number,
  operation: string,
  target: string,
  via: Route = route(),
  allowHalfOpen = false,
): net.Socket => {
  if (via === "handle") {
    const handle = openHandle(fd, "SOCKET", operation, target)
    // readable/writable default to false when a handle or fd is passed.
    return new net.Socket({
      handle,
      readable: true,
      writable: true,
      allowHalfOpen,
    } as net.SocketConstructorOpts)
  }
  if (process.platform !== "linux") {
    closeQuietly(fd)
    throw unsupported(
      operation,
      typeof process.versions.bun === "string"
        ? "Bun has no libuv TCP wrap to adopt a Windows SOCKET into; run this under Node"
        : "the relay fallback exists only on Linux; Windows needs the TCP wrap route (process.binding('tcp_wrap'))",
    )
  }
  const jsFd = loadLinux(operation).relay(fd)
  return new net.Socket({ fd: jsFd, readable: true, writable: true, allowHalfOpen })
}

const listening = (server: net.Server, start: () => void): Promise<net.Server> =>
  new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e)
    server.once("error", onError)
    server.once("listening", () => {
      server.off("error", onError)
      resolve(server)
    })
    start()
  })

/** Adopts a bound, listening socket as a net.Server (ownership passes to the server). */
export const serverFromFd = async (
  fd: number,
  backlog: number,
  operation: string,
  target: string,
  via: Route = route(),
  allowHalfOpen = false,
): Promise<net.Server> => {
  if (via === "handle") {
    const handle = openHandle(fd, "SERVER", operation, target)
    const server = net.createServer({ allowHalfOpen })
    // uv_listen re-issues listen(fd, backlog) on the adopted fd and then accepts with accept4.
    return listening(server, () => server.listen(handle as unknown as net.ListenOptions, backlog))
  }
  const binding = loadLinux(operation)
  // Accepted connections arrive over AF_UNIX from the addon's accept thread. A private 0700 directory
  // (not an abstract socket) so only this user can inject connections.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-vsock-"))
  const sock = path.join(dir, "relay.sock")
  const server = net.createServer({ allowHalfOpen })
  try {
    await listening(server, () => server.listen({ path: sock, backlog }))
  } catch (cause) {
    closeQuietly(fd)
    fs.rmSync(dir, { recursive: true, force: true })
    throw cause
  }
  const token = binding.relayListen(fd, sock)
  let stopped = false
  const stop = () => {
    if (stopped) return
    stopped = true
    binding.relayStop(token)
    fs.rmSync(dir, { recursive: true, force: true })
  }
  // Stop accepting on the vsock port at close(), as libuv would, not only after the last connection ends.
  const close = server.close.bind(server)
  server.close = ((cb?: (err?: Error) => void) => {
    stop()
    return close(cb)
  }) as typeof server.close
  server.once("close", stop)
  return server
}

/** The OS fd behind an adopted socket or server (handle route on Linux), if any. */
export const fdOf = (x: net.Socket | net.Server): number | undefined => {
  const fd = (x as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd
  return typeof fd === "number" && fd >= 0 ? fd : undefined
}
