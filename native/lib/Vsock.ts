/**
 * AF_VSOCK stream sockets (Linux) as ordinary `net.Server` / `net.Socket`. In Node the addon creates and
 * connects the socket and libuv does the I/O; in Bun a `bun:ffi` path needs no addon at all.
 */
import { DEFAULT_PORT } from "@cuvette/protocol/Constants"
import type * as net from "node:net"
import { fdOf, serverFromFd, socketFromFd } from "./adopt.js"
import type { BunBackend } from "./bunBackend.js"
import { loadLinux } from "./loader.js"
import { fromCause, invalidArgument, unsupported } from "./NativeError.js"
import * as validate from "./validate.js"

// linux/vm_sockets.h
/** Bind: any local CID. */
export const VMADDR_CID_ANY = 0xffffffff
/** The hypervisor itself. */
export const VMADDR_CID_HYPERVISOR = 0
/** Local loopback (needs the vsock_loopback transport). */
export const VMADDR_CID_LOCAL = 1
/** The host, as seen from a guest. */
export const VMADDR_CID_HOST = 2
/** Bind: let the kernel pick a free port (port 0 is a real, privileged vsock port, not "any"). */
export const VMADDR_PORT_ANY = 0xffffffff
/** Connect deadline when none is given, the agent's own retry step. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000
/** listen() backlog when none is given. */
export const DEFAULT_BACKLOG = 16

/** A vsock address. */
export interface Address {
  readonly cid: number
  readonly port: number
}

/** Options of {@link listen} / {@link listenFd}. */
export interface ListenOptions {
  readonly port?: number
  readonly cid?: number
  readonly backlog?: number
  /** Keep accepted sockets writable after the peer's EOF (net.createServer's option; default false). */
  readonly allowHalfOpen?: boolean
}

/** Options of {@link connect}. */
export interface ConnectOptions {
  readonly cid: number
  readonly port?: number
  readonly timeoutMs?: number
  /** Keep the socket writable after the peer's EOF (net.Socket's option; default false). */
  readonly allowHalfOpen?: boolean
}

/** "cid:port" as in messages and logs; `any` for the wildcards. */
export const format = (a: Address): string =>
  `${a.cid === VMADDR_CID_ANY ? "any" : a.cid}:${a.port === VMADDR_PORT_ANY ? "any" : a.port}`

const isBun = (): boolean => typeof process.versions.bun === "string"

// Loaded only inside Bun: it reaches libc through bun:ffi, which Node does not have. Bun's own `require`
// (defined in its ES modules) loads it, and bundles it into `bun build --compile` executables, while tsc
// leaves a require() call unresolved: the Node project never typechecks bun:ffi (tsconfig.bun.json does).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const bun = (): BunBackend => require("./bunVsock.js") as BunBackend

const addresses = new WeakMap<net.Server | net.Socket, Address>()

const listenArgs = (operation: string, options: ListenOptions) => {
  const port = validate.integer(
    operation,
    "port",
    options.port ?? DEFAULT_PORT,
    0,
    validate.U32_MAX,
    " (VMADDR_PORT_ANY = 0xFFFFFFFF picks a free port)",
  )
  const cid = validate.integer(operation, "cid", options.cid ?? VMADDR_CID_ANY, 0, validate.U32_MAX)
  const backlog = validate.backlog(operation, options.backlog ?? DEFAULT_BACKLOG)
  return { port, cid, backlog, target: format({ cid, port }) }
}

/**
 * A bound, listening, non-blocking vsock fd, for servers that take fds (Bun's `Bun.listen({ fd })`,
 * `BunSocketServer.layer({ fd })`). The caller owns the fd.
 */
export const listenFd = async (
  options: ListenOptions = {},
): Promise<{ readonly fd: number; readonly address: Address }> => {
  const operation = "vsock listen"
  const { port, cid, backlog, target } = listenArgs(operation, options)
  if (isBun()) return bun().listenFd(cid, port, backlog)
  const b = loadLinux(operation)
  let fd = -1
  try {
    fd = b.socket()
    b.bind(fd, cid, port)
    b.listen(fd, backlog)
    const name = b.sockname(fd)
    return { fd, address: { cid: name.cid, port: name.port } }
  } catch (cause) {
    if (fd >= 0) b.close(fd)
    throw fromCause(operation, target, cause)
  }
}

/** Listens on `cid:port` (default any:4919) and resolves once the net.Server is listening. */
export const listen = async (options: ListenOptions = {}): Promise<net.Server> => {
  const { backlog, target } = listenArgs("vsock listen", options)
  if (isBun()) {
    const { fd, address } = await listenFd(options)
    const server = await bun().serverFromFd(fd, target, options.allowHalfOpen === true)
    addresses.set(server, address)
    return server
  }
  const { fd, address } = await listenFd(options)
  const server = await serverFromFd(
    fd,
    backlog,
    "vsock listen",
    format(address),
    undefined,
    options.allowHalfOpen === true,
  ).catch((cause) => {
    throw fromCause("vsock listen", format(address), cause)
  })
  addresses.set(server, address)
  return server
}

/** Connects to `cid:port` (default port 4919, 5 s deadline) without blocking the event loop. */
export const connect = async (options: ConnectOptions): Promise<net.Socket> => {
  const operation = "vsock connect"
  if (typeof options !== "object" || options === null)
    throw invalidArgument(operation, "options { cid, port?, timeoutMs? } are required")
  const cid = validate.integer(
    operation,
    "cid",
    options.cid,
    0,
    validate.U32_MAX - 1,
    " (VMADDR_CID_ANY is only for listening)",
  )
  const port = validate.integer(operation, "port", options.port ?? DEFAULT_PORT, 0, validate.U32_MAX - 1)
  const timeoutMs = validate.timeoutMs(operation, options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS)
  const target = format({ cid, port })
  const allowHalfOpen = options.allowHalfOpen === true
  if (isBun()) return bun().connect(cid, port, timeoutMs, target, allowHalfOpen)
  const b = loadLinux(operation)
  let fd: number
  try {
    fd = await b.connect(cid, port, timeoutMs)
  } catch (cause) {
    throw fromCause(operation, target, cause)
  }
  const socket = socketFromFd(fd, operation, target, undefined, allowHalfOpen)
  addresses.set(socket, { cid, port })
  return socket
}

/** This machine's CID (IOCTL_VM_SOCKETS_GET_LOCAL_CID); throws a NativeError saying why it is unreadable. */
export const readLocalCid = (): number => {
  const operation = "read local CID"
  if (process.platform !== "linux")
    throw unsupported(operation, `AF_VSOCK is Linux-only; this is ${process.platform}`)
  try {
    return isBun() ? bun().localCid() : loadLinux(operation).localCid()
  } catch (cause) {
    throw fromCause(operation, "/dev/vsock", cause)
  }
}

/** This machine's CID, or undefined when it cannot be read (see {@link readLocalCid} for why). */
export const localCid = (): number | undefined => {
  try {
    return readLocalCid()
  } catch {
    return undefined
  }
}

/** True when an AF_VSOCK socket can be created here (Linux with the vsock module, addon built or Bun). */
export const isSupported = (): boolean => {
  if (process.platform !== "linux") return false
  try {
    if (isBun()) return bun().canCreate()
    const b = loadLinux("vsock probe")
    b.close(b.socket())
    return true
  } catch {
    return false
  }
}

/** The local vsock address of a server from {@link listen} or a socket from {@link connect}. */
export const localAddress = (x: net.Server | net.Socket): Address | undefined => {
  const fd = process.platform === "linux" && !isBun() ? fdOf(x) : undefined
  if (fd !== undefined) {
    const name = loadLinux("getsockname").sockname(fd)
    if (name.cid !== undefined) return { cid: name.cid, port: name.port }
  }
  return "listen" in x ? addresses.get(x) : undefined
}

/**
 * The peer of a vsock socket: for accepted connections (handle route, Node) read from the fd, for
 * {@link connect}ed ones the target. Undefined on the relay route, where the stream is AF_UNIX.
 */
export const remoteAddress = (socket: net.Socket): Address | undefined => {
  const fd = process.platform === "linux" && !isBun() ? fdOf(socket) : undefined
  if (fd !== undefined) {
    try {
      const name = loadLinux("getpeername").peername(fd)
      if (name.cid !== undefined) return { cid: name.cid, port: name.port }
    } catch {
      // not connected (any more)
    }
  }
  return addresses.get(socket)
}
