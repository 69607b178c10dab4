// vsock:CID[:PORT] and listen-vsock[:PORT] — AF_VSOCK through @cuvette/native (Linux hosts).
import type { Vsock } from "@cuvette/native"
import type { Duplex } from "node:stream"
import { ByteStream } from "@cuvette/protocol"
import { fromCause } from "../../ConnectError.js"
import * as native from "./native.js"
import { type DialOptions, remaining } from "./net.js"

/** Connects into the guest with this CID. */
export const dial = async (
  cid: number,
  port: number,
  target: string,
  options: DialOptions,
): Promise<ByteStream.ByteStream> => {
  const { Vsock } = await native.load(target)
  let socket: Duplex
  try {
    socket = await Vsock.connect({ cid, port, timeoutMs: Math.min(remaining(options.deadline), 300_000) })
  } catch (e) {
    throw fromCause(target, e)
  }
  return ByteStream.fromDuplex(socket, { description: target })
}

/** Listens on CID_ANY:port for a guest that connects out. */
export const listen = async (port: number, target: string): Promise<Vsock.Server> => {
  const { Vsock } = await native.load(target)
  try {
    return await Vsock.listen({ port })
  } catch (e) {
    throw fromCause(target, e)
  }
}
