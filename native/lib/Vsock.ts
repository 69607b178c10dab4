/**
 * AF_VSOCK stream sockets (Linux). In Node the addon creates, binds and connects the socket and its own
 * I/O threads move the bytes (lib/socket.ts, lib/server.ts). In Bun a `bun:ffi` path creates the socket
 * and Bun's own socket I/O adopts the fd: measured faster there than the addon's threads (docs/benchmarks.md),
 * and it needs no addon in the guest.
 */
import { DEFAULT_PORT } from "@cuvette/protocol/Constants"
import type * as net from "node:net"
import type { BunBackend } from "./bunBackend.js"
import { loadLinux } from "./loader.js"
import { fromCause, invalidArgument, unsupported } from "./NativeError.js"
import { NativeServer } from "./server.js"
import { NativeSocket } from "./socket.js"
import * as validate from "./validate.js"

/** A connected vsock socket: a stream.Duplex usable where a net.Socket was (under Bun a net.Socket). */
export type Socket = NativeSocket | net.Socket
/** A listening vsock socket: "connection" (a {@link Socket}), "error", "close", close() (under Bun a net.Server). */
export type Server = NativeServer<Address> | net.Server

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

// Where each socket is connected to (connect: the target; accept: the peer read from the fd), and each
// Bun server's bound address.
const peers = new WeakMap<Socket, Address>()
const locals = new WeakMap<Socket | net.Server, Address>()

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

/** Listens on `cid:port` (default any:4919); the server accepts on an addon thread. */
export const listen = async (options: ListenOptions = {}): Promise<Server> => {
  const { fd, address } = await listenFd(options)
  if (isBun()) {
    const server = await bun().serverFromFd(fd, format(address), options.allowHalfOpen === true)
    locals.set(server, address)
    return server
  }
  const b = loadLinux("vsock listen")
  return new NativeServer(fd, {
    allowHalfOpen: options.allowHalfOpen === true,
    operation: "vsock listen",
    target: format(address),
    address,
    onAccept: (socket, accepted) => {
      locals.set(socket, address)
      try {
        const peer = b.peername(accepted)
        peers.set(socket, { cid: peer.cid, port: peer.port })
        const local = b.sockname(accepted)
        locals.set(socket, { cid: local.cid, port: local.port })
      } catch {
        // the peer is already gone: the socket reports that on its first read
      }
    },
  })
}

/** Connects to `cid:port` (default port 4919, 5 s deadline) without blocking the event loop. */
export const connect = async (options: ConnectOptions): Promise<Socket> => {
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
  if (isBun()) {
    const socket = await bun().connect(cid, port, timeoutMs, target, options.allowHalfOpen === true)
    peers.set(socket, { cid, port })
    return socket
  }
  const b = loadLinux(operation)
  let fd: number
  try {
    fd = await b.connect(cid, port, timeoutMs)
  } catch (cause) {
    throw fromCause(operation, target, cause)
  }
  const local = b.sockname(fd)
  const socket = new NativeSocket(fd, { allowHalfOpen: options.allowHalfOpen === true, operation, target })
  peers.set(socket, { cid, port })
  locals.set(socket, { cid: local.cid, port: local.port })
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

/** The local vsock address of a server from {@link listen} or of a connected or accepted socket. */
export const localAddress = (x: Server | Socket): Address | undefined =>
  x instanceof NativeServer ? x.address() : locals.get(x)

/** The peer of a vsock socket: the target of a {@link connect}, the connecting side of an accepted one. */
export const remoteAddress = (socket: Socket): Address | undefined => peers.get(socket)
