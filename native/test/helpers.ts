// Shared test helpers: visible skips and byte-stream checks.
import { createHash, randomBytes } from "node:crypto"
import type * as net from "node:net"

/** Skips with the reason in the report and on stderr, never a silent pass. */
export const visibleSkip = (ctx: { skip: (note?: string) => never }, reason: string): never => {
  console.warn(`[visible skip] ${reason}`)
  return ctx.skip(reason)
}

export const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex")

/**
 * Writes `data` in 256 KiB chunks honouring backpressure, then ends. Without allowHalfOpen Node ends a
 * socket itself when the peer's EOF arrives, and an ending stream never emits "drain", so "finish" also
 * counts as drained (everything written before end() is still flushed).
 */
export const send = async (socket: net.Socket, data: Buffer): Promise<void> => {
  for (let off = 0; off < data.length; off += 256 * 1024) {
    if (socket.writableEnded) throw new Error(`socket ended by its peer after ${off} of ${data.length} bytes`)
    if (!socket.write(data.subarray(off, off + 256 * 1024)))
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off("drain", done).off("finish", done).off("close", done)
          resolve()
        }
        socket.on("drain", done).on("finish", done).on("close", done)
      })
  }
  if (!socket.writableEnded) socket.end()
}

/** Reads until EOF. */
export const receive = (socket: net.Socket): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Array<Buffer> = []
    socket.on("data", (c: Buffer) => chunks.push(c))
    socket.once("end", () => resolve(Buffer.concat(chunks)))
    socket.once("error", reject)
  })

export const payload = (bytes: number): Buffer => randomBytes(bytes)
