/**
 * AF_INET loopback (and, on Linux, AF_UNIX socketpair) sockets on the addon's own I/O route: the stand-in
 * tests and benchmarks use where no VM socket exists (no vsock peer on a build machine, no Hyper-V under
 * Wine). Only socket creation differs from {@link Vsock} and {@link Hvsock}; from then on every byte
 * takes exactly their code (lib/socket.ts, lib/server.ts, src/stream_io.cc).
 */
import type { Binding } from "./binding.js"
import { load } from "./loader.js"
import { fromCause } from "./NativeError.js"
import { NativeServer } from "./server.js"
import { NativeSocket } from "./socket.js"

export type Socket = NativeSocket
/** address() is the TCP port on 127.0.0.1. */
export type Server = NativeServer<number>

const binding = (operation: string): Binding => {
  try {
    return load()
  } catch (cause) {
    throw fromCause(operation, undefined, cause)
  }
}

/** Listens on 127.0.0.1:`port` (0: the kernel picks; see address()). */
export const listen = (
  options: { readonly port?: number; readonly allowHalfOpen?: boolean } = {},
): Server => {
  const operation = "loopback listen"
  const b = binding(operation)
  let l: { readonly socket: number; readonly port: number }
  try {
    l = b.loopbackListen(options.port ?? 0)
  } catch (cause) {
    throw fromCause(operation, `127.0.0.1:${options.port ?? 0}`, cause)
  }
  return new NativeServer(l.socket, {
    allowHalfOpen: options.allowHalfOpen,
    operation,
    target: `127.0.0.1:${l.port}`,
    address: l.port,
  })
}

/** Connects to 127.0.0.1:`port`. */
export const connect = (options: { readonly port: number; readonly allowHalfOpen?: boolean }): Socket => {
  const operation = "loopback connect"
  const target = `127.0.0.1:${options.port}`
  const b = binding(operation)
  let socket: number
  try {
    socket = b.loopbackConnect(options.port)
  } catch (cause) {
    throw fromCause(operation, target, cause)
  }
  return new NativeSocket(socket, { allowHalfOpen: options.allowHalfOpen, operation, target })
}

/** A connected AF_UNIX pair, both ends on the addon's route (Linux). */
export const pair = (options: { readonly allowHalfOpen?: boolean } = {}): [Socket, Socket] => {
  const b = binding("socketpair")
  if (b.platform !== "linux")
    throw fromCause("socketpair", undefined, new Error("socketpair is Linux-only here"))
  const [x, y] = b.socketpair()
  const open = (fd: number, end: string) =>
    new NativeSocket(fd, { allowHalfOpen: options.allowHalfOpen, operation: "socketpair", target: end })
  return [open(x, "pair:a"), open(y, "pair:b")]
}

/** I/O threads alive in this process: two per open socket, one per listening server. */
export const ioThreads = (): number => binding("ioThreads").ioThreads()
