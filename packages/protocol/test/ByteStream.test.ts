import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { ByteStream, Frame } from "../src/index.js"
import { type SlabOutcome, slabOverSocket } from "./fixtures/slabSocket.js"
import { concat, pattern } from "./fixtures/streams.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const BUN = path.resolve(here, "../../../node_modules/bun/bin/bun.exe")

/** Plays a runtime's part in `onread`: asks for a buffer, reads `n` bytes of `source` into it. */
const read = (onread: ByteStream.OnRead, source: Uint8Array, from: number, n: number): number => {
  const buffer = onread.buffer()
  const take = Math.min(n, buffer.byteLength, source.byteLength - from)
  buffer.set(source.subarray(from, from + take))
  onread.callback(take, buffer)
  return take
}

describe("slabReader", () => {
  it("never reads into a region twice: every chunk, and every payload viewing it, stays intact", () => {
    const frames = Array.from({ length: 200 }, (_, i) => pattern(1000 + ((i * 7919) % 60_000), i + 1))
    const wire = concat(frames.map((p, i) => Frame.encode(Frame.FrameType.Data, 1, i, p)))
    const reader = ByteStream.slabReader(256 * 1024)
    const decoder = new Frame.Decoder(1024 * 1024)
    const payloads: Array<Uint8Array> = []
    reader.listen((chunk) => {
      decoder.push(chunk)
      for (let r = decoder.next(); r; r = decoder.next())
        if (r._tag === "Frame") payloads.push(r.frame.payload)
    })
    // Reads of uneven sizes, several slabs' worth; payloads are checked only at the end, after every
    // later read had its chance to overwrite them.
    for (let off = 0, i = 0; off < wire.byteLength; i++)
      off += read(reader.onread, wire, off, 1 + ((i * 104_729) % 90_000))
    expect(payloads.length).toBe(frames.length)
    payloads.forEach((p, i) =>
      expect(Buffer.from(p).equals(Buffer.from(frames[i]!)), `frame ${i}`).toBe(true),
    )
  })

  it("reads into the rest of the slab, and starts a new one when less than 64 KiB is left", () => {
    const reader = ByteStream.slabReader(1024 * 1024)
    reader.listen(() => {})
    const first = reader.onread.buffer()
    expect(first.byteLength).toBe(1024 * 1024)
    reader.onread.callback(1000, first)
    const second = reader.onread.buffer()
    expect(second.buffer).toBe(first.buffer)
    expect(second.byteOffset).toBe(1000)
    reader.onread.callback(second.byteLength - 60 * 1024, second)
    const third = reader.onread.buffer()
    expect(third.buffer).not.toBe(first.buffer)
    expect(third.byteLength).toBe(1024 * 1024)
  })

  it("copies what a runtime read into a buffer of its own (it may reuse it)", () => {
    const reader = ByteStream.slabReader()
    const got: Array<Uint8Array> = []
    reader.listen((c) => got.push(c))
    const own = new Uint8Array([1, 2, 3, 4])
    reader.onread.callback(3, own)
    own.fill(9)
    expect(Array.from(got[0]!)).toEqual([1, 2, 3])
  })

  it("keeps what arrives before the session listens, in order", () => {
    const reader = ByteStream.slabReader()
    const bytes = pattern(5000, 3)
    read(reader.onread, bytes, 0, 2000)
    read(reader.onread, bytes, 2000, 3000)
    const got: Array<Uint8Array> = []
    reader.listen((c) => got.push(c))
    expect(Buffer.from(concat(got)).equals(Buffer.from(bytes))).toBe(true)
  })

  it("over a real Unix socket: every byte intact, in large reads; pauses, resumes, reports the end", async () => {
    const length = 24 * 1024 * 1024
    const outcome = await slabOverSocket(length)
    expect(outcome).toMatchObject({ intact: true, received: length, whilePaused: 0, end: "clean" })
    // What the socket holds per read, not 64 KiB at a time.
    expect(outcome.chunks).toBeLessThan(length / (64 * 1024))
  })

  it.skipIf(!fs.existsSync(BUN))(
    "the same under Bun (the single-file CLI's runtime) (bun not installed)",
    () => {
      const length = 24 * 1024 * 1024
      const run = spawnSync(BUN, [path.join(here, "fixtures/slabSocket.ts"), "--print", String(length)], {
        encoding: "utf8",
        timeout: 60_000,
      })
      expect(run.stderr).toBe("")
      const outcome = JSON.parse(run.stdout) as SlabOutcome
      expect(outcome).toMatchObject({ intact: true, received: length, whilePaused: 0, end: "clean" })
      expect(outcome.chunks).toBeLessThan(length / (64 * 1024))
    },
  )
})
