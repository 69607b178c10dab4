import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { isHostFileError } from "../src/HostError.js"
import { UPLOAD_CHUNK, uploadChunks } from "../src/internal/files.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-upchunks-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

describe("an upload's host file", () => {
  it("comes in whole chunks, every byte in order, each chunk a buffer of its own", async () => {
    const file = path.join(dir, "src")
    const bytes = Buffer.alloc(3 * UPLOAD_CHUNK + 12_345)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 12)) & 0xff
    fs.writeFileSync(file, bytes)
    const handle = await fs.promises.open(file, "r")
    try {
      const chunks: Array<Uint8Array> = []
      for await (const c of uploadChunks(handle, file, bytes.length)) chunks.push(c)
      expect(chunks.map((c) => c.byteLength)).toEqual([UPLOAD_CHUNK, UPLOAD_CHUNK, UPLOAD_CHUNK, 12_345])
      expect(new Set(chunks.map((c) => c.buffer)).size).toBe(chunks.length)
      expect(Buffer.concat(chunks).equals(bytes)).toBe(true)
    } finally {
      await handle.close()
    }
  })

  it("reads the next chunk while the last one is being sent", async () => {
    const file = path.join(dir, "ahead")
    fs.writeFileSync(file, Buffer.alloc(3 * UPLOAD_CHUNK, 1))
    const handle = await fs.promises.open(file, "r")
    let reads = 0
    const counting = new Proxy(handle, {
      get: (target, key) =>
        key === "read"
          ? (...args: Parameters<typeof handle.read>) => {
              reads++
              return target.read(...args)
            }
          : Reflect.get(target, key, target),
    })
    try {
      const chunks = uploadChunks(counting, file, 3 * UPLOAD_CHUNK)
      await chunks.next()
      // The consumer holds the first chunk (waiting for credit): the second read is already issued.
      expect(reads).toBe(2)
      await chunks.return()
    } finally {
      await handle.close()
    }
  })

  it("a small file is read into a buffer sized to it, not a whole chunk", async () => {
    const file = path.join(dir, "small")
    fs.writeFileSync(file, "hello")
    const handle = await fs.promises.open(file, "r")
    try {
      const chunks: Array<Uint8Array> = []
      for await (const c of uploadChunks(handle, file, 5)) chunks.push(c)
      expect(Buffer.concat(chunks).toString()).toBe("hello")
      expect(chunks[0]!.buffer.byteLength).toBeLessThanOrEqual(8192)
    } finally {
      await handle.close()
    }
  })

  it("a read that fails is a HostFileError about the user's path", async () => {
    const file = path.join(dir, "closed")
    fs.writeFileSync(file, "x")
    const handle = await fs.promises.open(file, "r")
    await handle.close()
    const failure = await (async () => {
      for await (const _ of uploadChunks(handle, file, 1)) void _
    })().catch((e: unknown) => e)
    expect(isHostFileError(failure)).toBe(true)
    expect((failure as { path: string }).path).toBe(file)
  })
})
