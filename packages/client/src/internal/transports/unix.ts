// unix:PATH — the agent listens on a Unix socket (`--listen unix:PATH`).
import { ByteStream } from "@cuvette/protocol"
import { dialStream, type DialOptions } from "./net.js"

/** Connects to the agent's Unix socket. */
export const dial = async (
  path: string,
  target: string,
  options: DialOptions,
): Promise<ByteStream.ByteStream> => dialStream({ path }, target, options)
