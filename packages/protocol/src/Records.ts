/**
 * Records on a channel: values too many for one control message (the entries of a directory) travel
 * as batches on a data channel, so they share its credit flow control and neither side ever holds the
 * whole set. Each batch is a 4-byte big-endian length and a msgpack array; a batch may span frames.
 */
import { Either, Schema } from "effect"
import { AgentError } from "./Errors.js"
import * as Messages from "./Messages.js"

/** A sender flushes a batch once it holds this many records. */
export const BATCH_RECORDS = 256

/** The largest batch a receiver accepts (16 MiB): a corrupt length must not make it wait or allocate forever. */
export const MAX_BATCH_BYTES = 16 * 1024 * 1024

/** One batch as bytes: its length, then the msgpack array. */
export const encodeBatch = (records: ReadonlyArray<unknown>): Uint8Array => {
  const body = Messages.pack(records)
  const out = new Uint8Array(4 + body.byteLength)
  new DataView(out.buffer).setUint32(0, body.byteLength)
  out.set(body, 4)
  return out
}

const protocolError = (message: string) => new AgentError({ code: "PROTOCOL", message })

/**
 * Decodes the batches of a channel into records, each validated by `schema`; fails with a PROTOCOL
 * AgentError on a malformed batch or a stream that ends inside one.
 */
export async function* decode<A, I>(
  chunks: AsyncIterable<Uint8Array>,
  schema: Schema.Schema<A, I>,
  what: string,
): AsyncGenerator<A> {
  const decodeBatch = Messages.unpackAs(Schema.Array(schema), what)
  const pending: Array<Uint8Array> = []
  let pendingBytes = 0
  // Gathers `n` bytes from the front of `pending` into one buffer.
  const take = (n: number): Uint8Array => {
    const first = pending[0]!
    if (first.byteLength >= n) {
      pending[0] = first.subarray(n)
      if (pending[0].byteLength === 0) pending.shift()
      pendingBytes -= n
      return first.subarray(0, n)
    }
    const out = new Uint8Array(n)
    let off = 0
    while (off < n) {
      const c = pending[0]!
      const k = Math.min(c.byteLength, n - off)
      out.set(c.subarray(0, k), off)
      off += k
      if (k === c.byteLength) pending.shift()
      else pending[0] = c.subarray(k)
    }
    pendingBytes -= n
    return out
  }
  let need: number | undefined
  for await (const chunk of chunks) {
    pending.push(chunk)
    pendingBytes += chunk.byteLength
    while (true) {
      if (need === undefined) {
        if (pendingBytes < 4) break
        const head = take(4)
        need = new DataView(head.buffer, head.byteOffset, 4).getUint32(0)
        if (need > MAX_BATCH_BYTES)
          throw protocolError(`malformed ${what}: a batch of ${need} bytes (at most ${MAX_BATCH_BYTES})`)
      }
      if (pendingBytes < need) break
      const batch = decodeBatch(take(need))
      need = undefined
      if (Either.isLeft(batch)) throw batch.left
      yield* batch.right
    }
  }
  if (need !== undefined || pendingBytes > 0)
    throw protocolError(`malformed ${what}: the stream ended inside a batch`)
}
