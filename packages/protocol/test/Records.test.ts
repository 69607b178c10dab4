import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { Operations, Records } from "../src/index.js"
import { concat } from "./fixtures/streams.js"

const chunks = async function* (bytes: Uint8Array, cuts: ReadonlyArray<number>) {
  let off = 0
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    if (cut > off) yield bytes.subarray(off, cut)
    off = Math.max(off, cut)
  }
  if (off < bytes.byteLength) yield bytes.subarray(off)
}

const decodeAll = async (bytes: Uint8Array, cuts: ReadonlyArray<number> = []) => {
  const out: Array<Operations.DirEntry> = []
  for await (const e of Records.decode(chunks(bytes, cuts), Operations.DirEntry, "list entries")) out.push(e)
  return out
}

const entry = (i: number): Operations.DirEntry => ({
  name: `f${i}`,
  type: i % 3 === 0 ? "symlink" : "file",
  size: i,
  mode: 0o644,
  mtimeMs: 1_700_000_000_000 + i,
  ...(i % 3 === 0 ? { target: `t${i}` } : {}),
})

describe("Records", () => {
  it("decodes batches split anywhere across chunks, in order", async () => {
    const all = Array.from({ length: 700 }, (_, i) => entry(i))
    const bytes = concat([
      Records.encodeBatch(all.slice(0, 256)),
      Records.encodeBatch(all.slice(256, 512)),
      Records.encodeBatch(all.slice(512)),
    ])
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 0, max: bytes.byteLength }), { maxLength: 30 }),
        async (cuts) => {
          expect(await decodeAll(bytes, cuts)).toEqual(all)
        },
      ),
      { numRuns: 50 },
    )
  })

  it("fails with PROTOCOL on a stream cut inside a batch, a bad record or an absurd length", async () => {
    const batch = Records.encodeBatch([entry(1)])
    await expect(decodeAll(batch.subarray(0, batch.byteLength - 1))).rejects.toMatchObject({
      code: "PROTOCOL",
      message: expect.stringContaining("ended inside a batch"),
    })
    await expect(decodeAll(Records.encodeBatch([{ name: 1 }]))).rejects.toMatchObject({
      code: "PROTOCOL",
      message: expect.stringContaining("name"),
    })
    await expect(decodeAll(new Uint8Array([0xff, 0xff, 0xff, 0xff]))).rejects.toMatchObject({
      code: "PROTOCOL",
      message: expect.stringContaining("a batch of 4294967295 bytes"),
    })
  })
})
