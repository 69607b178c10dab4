// Between a call's channels (Session.Incoming / Outgoing) and what the user holds: bytes, text and
// Node streams, with flow control kept end to end.
import { Readable } from "node:stream"
import type { Session } from "@cuvette/protocol"
import { isHostError } from "../HostError.js"

const encoder = new TextEncoder()

export const toBytes = (chunk: unknown): Uint8Array =>
  typeof chunk === "string" ? encoder.encode(chunk) : (chunk as Uint8Array)

const concat = (chunks: ReadonlyArray<Uint8Array>, n: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(n)
  let off = 0
  for (const c of chunks) {
    out.set(c, off)
    off += c.byteLength
  }
  return out
}

/** Reads a channel to its end into one buffer. */
export const collect = async (incoming: Session.Incoming): Promise<Uint8Array> => {
  const chunks: Array<Uint8Array> = []
  let n = 0
  for await (const c of incoming) {
    chunks.push(c)
    n += c.byteLength
  }
  return concat(chunks, n)
}

/** Runs `cancel` when `signal` aborts, until the returned function is called. */
export const cancelOn = (signal: AbortSignal | undefined, cancel: () => void): (() => void) => {
  if (signal === undefined) return () => {}
  signal.addEventListener("abort", cancel, { once: true })
  return () => signal.removeEventListener("abort", cancel)
}

/**
 * Runs `work`; when it fails because the call failed, the call's own error (code + message) wins. A
 * host-side failure wins over the cancellation it caused.
 */
export const orCallError = async <T>(
  call: { readonly result: Promise<unknown>; cancel(): void },
  work: Promise<T>,
): Promise<T> => {
  try {
    return await work
  } catch (e) {
    call.cancel()
    await call.result.catch((callError: unknown) => {
      throw isHostError(e) ? e : callError
    })
    throw e
  }
}

/** Feeds bytes, text or a stream into an Outgoing channel, then ends it. */
export const feed = async (out: Session.Outgoing, data: Uint8Array | string | Readable): Promise<void> => {
  if (typeof data === "string" || data instanceof Uint8Array) {
    const bytes = toBytes(data)
    if (bytes.byteLength > 0) await out.write(bytes)
  } else {
    // Readable chunks are fresh buffers the producer no longer touches: sent as they are.
    for await (const chunk of data) await out.write(toBytes(chunk))
  }
  out.end()
}

/** A Node Readable that pulls from an Incoming only when its consumer wants more (flow control to the guest). */
export const toReadable = (incoming: Session.Incoming): Readable =>
  new Readable({
    read() {
      incoming.read().then(
        (c) => this.push(c === undefined ? null : Buffer.from(c.buffer, c.byteOffset, c.byteLength)),
        // The operation's own outcome (exited) carries the error; the stream just ends.
        () => this.push(null),
      )
    },
    destroy(error, callback) {
      incoming.discard()
      callback(error)
    },
  })
