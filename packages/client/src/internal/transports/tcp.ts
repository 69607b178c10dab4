// tcp:HOST[:PORT] — the agent listens on TCP (`--listen tcp:HOST[:PORT]`, port 4919 by default).
import { ByteStream } from "@cuvette/protocol"
import { dialStream, type DialOptions } from "./net.js"

/** Connects to the agent over TCP (Nagle off, as fromDuplex does for every socket). */
export const dial = async (
  host: string,
  port: number,
  target: string,
  options: DialOptions,
): Promise<ByteStream.ByteStream> => dialStream({ host, port }, target, options)
