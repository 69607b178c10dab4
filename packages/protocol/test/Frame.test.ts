import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { Constants, Frame } from "../src/index.js"
import { concat, pattern } from "./fixtures/streams.js"

const arbFrame = fc.record({
  type: fc.integer({ min: 1, max: 255 }),
  channel: fc.integer({ min: 0, max: 255 }),
  call: fc.integer({ min: 0, max: 0xffffffff }),
  payload: fc.uint8Array({ maxLength: 300 }),
})

/** Pushes `bytes` in pieces cut at `cuts` (sorted offsets) and collects everything decoded. */
const decodeSplit = (decoder: Frame.Decoder, bytes: Uint8Array, cuts: ReadonlyArray<number>) => {
  const out: Array<Frame.DecodeResult> = []
  let from = 0
  for (const to of [...cuts, bytes.byteLength]) {
    if (to < from) continue
    decoder.push(bytes.slice(from, to))
    from = to
    for (let r = decoder.next(); r; r = decoder.next())
      out.push(r._tag === "Frame" ? { ...r, frame: { ...r.frame, payload: r.frame.payload.slice() } } : r)
  }
  return out
}

const plain = (f: { type: number; channel: number; call: number; payload: Uint8Array }) => ({
  type: f.type,
  channel: f.channel,
  call: f.call,
  payload: Array.from(f.payload),
})

describe("Frame codec", () => {
  it("lays out the 10-byte header as u32 BE length, u8 type, u8 channel, u32 BE call", () => {
    const bytes = Frame.encode(Frame.FrameType.Data, 2, 0x01020304, new Uint8Array([9, 8, 7]))
    expect(Array.from(bytes)).toEqual([0, 0, 0, 3, 3, 2, 1, 2, 3, 4, 9, 8, 7])
    expect(Frame.HEADER_SIZE).toBe(10)
    expect(Frame.typeName(3)).toBe("Data")
    expect(Frame.typeName(0x2a)).toBe("type 0x2a")
  })

  it("decodes random frame sequences split at random points and coalesced", () => {
    fc.assert(
      fc.property(
        fc.array(arbFrame, { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (frames, rawCuts) => {
          const bytes = concat(frames.map((f) => Frame.encode(f.type, f.channel, f.call, f.payload)))
          const cuts = rawCuts.map((c) => c % (bytes.byteLength + 1)).sort((a, b) => a - b)
          const decoded = decodeSplit(new Frame.Decoder(1024), bytes, cuts)
          expect(decoded.map((r) => (r._tag === "Frame" ? plain(r.frame) : r._tag))).toEqual(
            frames.map(plain),
          )
        },
      ),
      { numRuns: 300 },
    )
  })

  it("decodes a byte at a time, and everything in one push", () => {
    fc.assert(
      fc.property(fc.array(arbFrame, { minLength: 1, maxLength: 8 }), (frames) => {
        const bytes = concat(frames.map((f) => Frame.encode(f.type, f.channel, f.call, f.payload)))
        const oneByOne = decodeSplit(
          new Frame.Decoder(1024),
          bytes,
          Array.from({ length: bytes.byteLength }, (_, i) => i),
        )
        const whole = decodeSplit(new Frame.Decoder(1024), bytes, [])
        expect(oneByOne.map((r) => (r._tag === "Frame" ? plain(r.frame) : r))).toEqual(frames.map(plain))
        expect(whole.map((r) => (r._tag === "Frame" ? plain(r.frame) : r))).toEqual(frames.map(plain))
      }),
      { numRuns: 100 },
    )
  })

  describe("reads that lie side by side in one buffer (a slab-reading socket)", () => {
    const frames = [
      { type: Frame.FrameType.Data, channel: 1, call: 7, payload: pattern(300, 1) },
      { type: Frame.FrameType.Eof, channel: 1, call: 7, payload: new Uint8Array(0) },
      { type: Frame.FrameType.Data, channel: 2, call: 9, payload: pattern(77, 2) },
    ]
    const bytes = concat(frames.map((f) => Frame.encode(f.type, f.channel, f.call, f.payload)))
    /** Pushes views of `bytes` cut at `cuts`, decoding after each, and keeps the payloads as handed out. */
    const decodeViews = (cuts: ReadonlyArray<number>) => {
      const decoder = new Frame.Decoder(1024)
      const out: Array<Frame.Frame> = []
      let from = 0
      for (const to of [...cuts, bytes.byteLength]) {
        decoder.push(bytes.subarray(from, to))
        from = to
        for (let r = decoder.next(); r; r = decoder.next()) if (r._tag === "Frame") out.push(r.frame)
      }
      return out
    }

    it("hands out a frame split at any byte as one view of that buffer, not a copy", () => {
      for (let cut = 1; cut < bytes.byteLength; cut++) {
        const out = decodeViews([cut])
        expect(out.map(plain), `cut at ${cut}`).toEqual(frames.map(plain))
        expect(out[0]!.payload.buffer, `cut at ${cut}`).toBe(bytes.buffer)
        expect(out[2]!.payload.buffer, `cut at ${cut}`).toBe(bytes.buffer)
      }
    })

    it("decodes them a byte at a time", () => {
      const out = decodeViews(Array.from({ length: bytes.byteLength - 1 }, (_, i) => i + 1))
      expect(out.map(plain)).toEqual(frames.map(plain))
      expect(out[0]!.payload.buffer).toBe(bytes.buffer)
    })

    it("does not join views that only share the buffer (a gap between them)", () => {
      const decoder = new Frame.Decoder(1024)
      const spaced = new Uint8Array(bytes.byteLength + 5)
      const at = 200
      spaced.set(bytes.subarray(0, at), 0)
      spaced.set(bytes.subarray(at), at + 5)
      decoder.push(spaced.subarray(0, at))
      decoder.push(spaced.subarray(at + 5))
      const out: Array<Frame.Frame> = []
      for (let r = decoder.next(); r; r = decoder.next()) if (r._tag === "Frame") out.push(r.frame)
      expect(out.map(plain)).toEqual(frames.map(plain))
    })
  })

  it("finds the magic behind garbage in search mode, even split across pushes", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }),
        arbFrame,
        fc.array(fc.nat(), { maxLength: 10 }),
        (garbage, f, rawCuts) => {
          const bytes = concat([garbage, Constants.MAGIC, Frame.encode(f.type, f.channel, f.call, f.payload)])
          const cuts = rawCuts.map((c) => c % (bytes.byteLength + 1)).sort((a, b) => a - b)
          const decoded = decodeSplit(new Frame.Decoder(1024, { scan: "search" }), bytes, cuts)
          // The garbage may itself hold the magic by chance; then the last frame is still ours.
          const last = decoded.at(-1)
          expect(last?._tag).toBe("Frame")
          if (last?._tag === "Frame") expect(plain(last.frame)).toEqual(plain(f))
        },
      ),
      { numRuns: 200 },
    )
  })

  it("reports BadMagic in strict mode and accepts the magic split byte by byte", () => {
    const bad = new Frame.Decoder(1024, { scan: "strict" })
    bad.push(new TextEncoder().encode("SSH-2.0-OpenSSH\r\n"))
    expect(bad.next()).toEqual({ _tag: "BadMagic" })

    const good = new Frame.Decoder(1024, { scan: "strict" })
    const bytes = concat([Constants.MAGIC, Frame.encode(Frame.FrameType.Ping, 0, 0, new Uint8Array(8))])
    const decoded = decodeSplit(
      good,
      bytes,
      Array.from({ length: bytes.byteLength }, (_, i) => i),
    )
    expect(decoded).toHaveLength(1)
    expect(decoded[0]?._tag === "Frame" && decoded[0].frame.type).toBe(Frame.FrameType.Ping)
  })

  describe("oversize header", () => {
    it("is reported before its payload is buffered, when the header arrives alone", () => {
      const decoder = new Frame.Decoder(1024)
      // Exactly the 10 header bytes in one push: the decoder must not trip over an empty buffer.
      decoder.push(Frame.encodeHeader(Frame.FrameType.Data, 1, 7, 0xfffffff0))
      const r = decoder.next()
      expect(r).toMatchObject({ _tag: "Oversize", length: 0xfffffff0, type: Frame.FrameType.Data, call: 7 })
      expect(decoder.pending).toBe(0)
    })

    it("skips 0xFFFFFFF0 bytes without holding them and decodes the next valid frame", () => {
      const decoder = new Frame.Decoder(Constants.DEFAULT_MAX_FRAME)
      const claimed = 0xfffffff0
      decoder.push(Frame.encodeHeader(Frame.FrameType.Data, 1, 7, claimed))
      expect(decoder.next()?._tag).toBe("Oversize")
      // Push the whole claimed payload (~4 GiB) from one reused 1 MiB buffer: only possible at all if
      // the decoder never copies or keeps it.
      const mib = new Uint8Array(1024 * 1024)
      const heapBefore = process.memoryUsage().arrayBuffers
      let maxPending = 0
      let left = claimed
      while (left > 0) {
        const n = Math.min(left, mib.byteLength)
        decoder.push(n === mib.byteLength ? mib : mib.subarray(0, n))
        left -= n
        expect(decoder.next()).toBeUndefined()
        maxPending = Math.max(maxPending, decoder.pending)
      }
      expect(maxPending).toBe(0)
      expect(process.memoryUsage().arrayBuffers - heapBefore).toBeLessThan(16 * 1024 * 1024)
      // The stream is in sync: the frame right after the skipped payload decodes.
      decoder.push(Frame.encode(Frame.FrameType.Control, 0, 8, new Uint8Array([1, 2, 3])))
      const r = decoder.next()
      expect(r?._tag === "Frame" && plain(r.frame)).toEqual({
        type: 2,
        channel: 0,
        call: 8,
        payload: [1, 2, 3],
      })
    })

    it("skips an oversize payload that arrives coalesced with the following frames", () => {
      const decoder = new Frame.Decoder(16)
      const bytes = concat([
        Frame.encode(Frame.FrameType.Data, 1, 1, new Uint8Array(40).fill(0xee)),
        Frame.encode(Frame.FrameType.Data, 1, 2, new Uint8Array([5])),
      ])
      const decoded = decodeSplit(decoder, bytes, [3, 25])
      expect(decoded.map((r) => r._tag)).toEqual(["Oversize", "Frame"])
      expect(decoded[1]?._tag === "Frame" && plain(decoded[1].frame)).toEqual({
        type: 3,
        channel: 1,
        call: 2,
        payload: [5],
      })
    })

    it("never exceeds the limit: MAGIC read as a length is far above the ceiling", () => {
      const asLength = new DataView(Constants.MAGIC.buffer).getUint32(0)
      expect(asLength).toBeGreaterThan(Constants.MAX_FRAME_CEILING)
    })
  })
})
