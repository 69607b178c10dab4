// Node net connections (Unix and TCP) with a deadline, an abort signal and errors mapped to reasons.
import * as net from "node:net"
import { ByteStream } from "@cuvette/protocol"
import { ConnectError, fromCause } from "../../ConnectError.js"

/** What every dialer gets: the overall deadline (epoch ms), an abort signal, and whether to retry. */
export interface DialOptions {
  readonly deadline: number
  readonly signal?: AbortSignal | undefined
  /** Called before each internal retry (hybrid vsock while the guest is not listening yet). */
  readonly onRetry?: ((attempt: number, error: Error) => void) | undefined
}

/** Milliseconds left before `deadline`, at least 1. */
export const remaining = (deadline: number): number => Math.max(1, deadline - Date.now())

/** Connects a net.Socket; rejects with a ConnectError (TIMEOUT at the deadline). */
export const connectSocket = (
  options: net.NetConnectOpts,
  target: string,
  dial: DialOptions,
): Promise<net.Socket> =>
  new Promise((resolve, reject) => {
    if (dial.signal?.aborted)
      return reject(
        new ConnectError({ reason: "ABORTED", target, detail: "aborted", cause: dial.signal.reason }),
      )
    const socket = net.connect(options)
    const timeoutMs = remaining(dial.deadline)
    const done = (error?: ConnectError) => {
      clearTimeout(timer)
      socket.off("connect", onConnect)
      socket.off("error", onError)
      dial.signal?.removeEventListener("abort", onAbort)
      if (error) {
        socket.destroy()
        reject(error)
      } else resolve(socket)
    }
    const onConnect = () => done()
    const onError = (e: Error) => done(fromCause(target, e))
    const onAbort = () =>
      done(new ConnectError({ reason: "ABORTED", target, detail: "aborted", cause: dial.signal?.reason }))
    const timer = setTimeout(
      () =>
        done(new ConnectError({ reason: "TIMEOUT", target, detail: `no connection within ${timeoutMs} ms` })),
      timeoutMs,
    )
    socket.once("connect", onConnect)
    socket.once("error", onError)
    dial.signal?.addEventListener("abort", onAbort, { once: true })
  })

/**
 * How much a socket queues before it reports backpressure. Node's 16 KiB default is less than one data
 * frame: every frame reported a full buffer and the next waited for "drain", so each writev carried
 * one frame. With room for a few, the frames of a turn leave together.
 */
export const WRITE_HIGH_WATER_MARK = 1024 * 1024

/**
 * Connects a socket and adapts it to a ByteStream. Under Node it reads into large slabs
 * (ByteStream.slabReader): a fraction of the reads, allocations and copies of its "data" events.
 */
export const dialStream = async (
  options: net.NetConnectOpts,
  target: string,
  dial: DialOptions,
): Promise<ByteStream.ByteStream> => {
  // Under Bun (the single-file CLI) its own "data" events are the cheaper path: 0.29 CPU s/GiB
  // received against 0.38 through onread, where Node goes from 0.37 to 0.21 (docs/benchmarks.md).
  const reader = process.versions.bun === undefined ? ByteStream.slabReader() : undefined
  // Passed on to the socket's Duplex (Node and Bun honour it; @types/node does not list it).
  const socketOptions: net.NetConnectOpts & { readonly writableHighWaterMark: number } = {
    ...options,
    ...(reader ? { onread: reader.onread } : {}),
    writableHighWaterMark: WRITE_HIGH_WATER_MARK,
  }
  const socket = await connectSocket(socketOptions, target, dial)
  return ByteStream.fromDuplex(socket, { description: target, ...(reader ? { reader } : {}) })
}
