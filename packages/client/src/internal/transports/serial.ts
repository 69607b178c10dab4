// serial:PATH — a QEMU chardev Unix socket bound to a virtio-serial port. The port has no connection
// semantics: the agent may still be in an old client's session, so the stream resynchronises on the magic.
import { ByteStream } from "@cuvette/protocol"
import { connectSocket, type DialOptions } from "./net.js"

/** Connects to the chardev socket and marks the stream for resynchronisation. */
export const dial = async (
  path: string,
  target: string,
  options: DialOptions,
): Promise<ByteStream.ByteStream> =>
  ByteStream.fromDuplex(await connectSocket({ path }, target, options), { description: target, resync: true })
