/**
 * Frame codec. Every frame is a 10-byte header followed by its payload:
 *
 *   u32 BE payload length | u8 type | u8 channel | u32 BE call id | payload
 *
 * The decoder is incremental (bytes may arrive split or coalesced anywhere), checks the length
 * against the limit before allocating, and skips an oversize payload without buffering it so the
 * stream stays in sync.
 */
import { MAGIC } from "./Constants.js"

/** Size of the fixed frame header in bytes. */
export const HEADER_SIZE = 10

/** Frame types. */
export const FrameType = {
  /** Handshake messages (msgpack); call id 0. */
  Hello: 1,
  /** A control message (msgpack) of one operation. */
  Control: 2,
  /** Raw bytes of one channel of one operation. */
  Data: 3,
  /** The receiver lets the sender send u32 more bytes on a channel. */
  Credit: 4,
  /** The sender will send no more data on this channel (half-close). */
  Eof: 5,
  /** The client cancels an operation. */
  Cancel: 6,
  /** Liveness probe with 8 opaque bytes; answered by Pong with the same bytes. */
  Ping: 7,
  /** Answer to Ping. */
  Pong: 8,
  /** The sender closes the session gracefully (msgpack reason). */
  GoAway: 9,
  /** A session-level error report about a frame the sender could not accept (msgpack `{code, message}`). */
  Error: 10,
} as const
/** A frame type's number on the wire: one of the values of {@link FrameType}. */
export type FrameType = (typeof FrameType)[keyof typeof FrameType]

const typeNames = Object.fromEntries(Object.entries(FrameType).map(([k, v]) => [v, k])) as Record<
  number,
  string
>
/** Name of a frame type for messages ("Data"), or "type 0x2a" for an unknown one. */
export const typeName = (type: number): string => typeNames[type] ?? `type 0x${type.toString(16)}`

/** A decoded frame. `payload` may be a view into the received bytes: copy it if you keep it past the next push. */
export interface Frame {
  readonly type: number
  readonly channel: number
  readonly call: number
  readonly payload: Uint8Array
}

/** Encodes a frame header for a payload of `length` bytes. */
export const encodeHeader = (type: number, channel: number, call: number, length: number): Uint8Array =>
  writeHeader(new Uint8Array(HEADER_SIZE), type, channel, call, length)

/** Big-endian by hand: no DataView per frame. */
const writeHeader = (out: Uint8Array, type: number, channel: number, call: number, length: number) => {
  out[0] = length >>> 24
  out[1] = length >>> 16
  out[2] = length >>> 8
  out[3] = length
  out[4] = type
  out[5] = channel
  out[6] = call >>> 24
  out[7] = call >>> 16
  out[8] = call >>> 8
  out[9] = call
  return out
}

/** Encodes a whole frame into one buffer (for small frames; data frames are written as header + payload). */
export const encode = (type: number, channel: number, call: number, payload?: Uint8Array): Uint8Array => {
  const length = payload?.byteLength ?? 0
  const out = writeHeader(new Uint8Array(HEADER_SIZE + length), type, channel, call, length)
  if (payload) out.set(payload, HEADER_SIZE)
  return out
}

/** What the decoder yields: a frame, or a problem with the input. */
export type DecodeResult =
  | { readonly _tag: "Frame"; readonly frame: Frame }
  /** The stream did not start with the magic (strict scan mode). */
  | { readonly _tag: "BadMagic" }
  /** A header announced more than the limit; its payload is being skipped. `header` holds its raw bytes. */
  | {
      readonly _tag: "Oversize"
      readonly length: number
      readonly type: number
      readonly call: number
      readonly header: Uint8Array
    }

/**
 * Incremental frame decoder. `push` bytes as they arrive, then call `next` until it returns
 * undefined. In scan mode it discards bytes until it has seen {@link MAGIC}; this is how a session
 * starts and how the agent resynchronises on serial ports.
 */
export class Decoder {
  private chunks: Array<Uint8Array> = []
  private buffered = 0
  private skipping = 0
  private scanning: false | "search" | "strict"

  /**
   * `scan: "search"` skips anything before the magic (serial ports); `"strict"` requires the stream to
   * start with it (connections); without `scan` the decoder starts at a frame boundary.
   */
  constructor(
    private maxFrame: number,
    options: { readonly scan?: "search" | "strict" } = {},
  ) {
    this.scanning = options.scan ?? false
  }

  /** Bytes held and not yet decoded. */
  get pending(): number {
    return this.buffered
  }

  /** True while the decoder is looking for the magic. */
  get isScanning(): boolean {
    return this.scanning !== false
  }

  /** Changes the frame limit (after the handshake negotiated one). */
  setMaxFrame(maxFrame: number): void {
    this.maxFrame = maxFrame
  }

  /** Adds received bytes. */
  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return
    // An oversize payload arriving later is dropped as it comes, never held.
    if (this.skipping > 0 && this.buffered === 0) {
      const n = Math.min(this.skipping, chunk.byteLength)
      this.skipping -= n
      if (n === chunk.byteLength) return
      chunk = chunk.subarray(n)
    }
    // Bytes that continue the last chunk in the same memory (a slab-reading socket) extend it: a frame
    // that spans reads is then handed out as one view, not copied together.
    const last = this.chunks.length > 0 ? this.chunks[this.chunks.length - 1]! : undefined
    if (
      last !== undefined &&
      last.buffer === chunk.buffer &&
      last.byteOffset + last.byteLength === chunk.byteOffset
    )
      this.chunks[this.chunks.length - 1] = new Uint8Array(
        last.buffer,
        last.byteOffset,
        last.byteLength + chunk.byteLength,
      )
    else this.chunks.push(chunk)
    this.buffered += chunk.byteLength
  }

  /**
   * Goes back to scanning for the magic. With `rewind`, bytes given back (e.g. the header of an
   * oversize frame) are scanned too, so a magic inside them is found.
   */
  scan(rewind?: Uint8Array): void {
    this.scanning = "search"
    this.skipping = 0
    if (rewind && rewind.byteLength > 0) {
      this.chunks.unshift(rewind)
      this.buffered += rewind.byteLength
    }
  }

  /** Hands back everything buffered and not decoded (it is read another way from here on). */
  drain(): Array<Uint8Array> {
    const chunks = this.chunks
    this.reset()
    return chunks
  }

  /** Drops everything buffered (a new session on the same stream starts clean). */
  reset(): void {
    this.chunks = []
    this.buffered = 0
    this.skipping = 0
  }

  /** Decodes the next frame, if enough bytes are buffered. */
  next(): DecodeResult | undefined {
    if (this.skipping > 0) {
      const n = Math.min(this.skipping, this.buffered)
      if (n > 0) this.take(n)
      this.skipping -= n
      if (this.skipping > 0) return undefined
    }
    if (this.scanning === "strict") {
      if (this.buffered < MAGIC.byteLength) return undefined
      const head = this.peek(MAGIC.byteLength)
      if (indexOf(head, MAGIC) !== 0) return { _tag: "BadMagic" }
      this.take(MAGIC.byteLength)
      this.scanning = false
    }
    if (this.scanning === "search" && !this.findMagic()) return undefined
    if (this.buffered < HEADER_SIZE) return undefined
    const header = this.peek(HEADER_SIZE)
    const view = new DataView(header.buffer, header.byteOffset, HEADER_SIZE)
    const length = view.getUint32(0)
    const type = header[4]!
    const channel = header[5]!
    const call = view.getUint32(6)
    if (length > this.maxFrame) {
      const raw = this.take(HEADER_SIZE).slice()
      // The payload is skipped from the next call on, without ever being held; until then scan() can
      // still take back the header and everything after it (a serial client's magic, not a header).
      this.skipping = length
      return { _tag: "Oversize", length, type, call, header: raw }
    }
    if (this.buffered < HEADER_SIZE + length) return undefined
    this.take(HEADER_SIZE)
    const payload = length === 0 ? empty : this.take(length)
    return { _tag: "Frame", frame: { type, channel, call, payload } }
  }

  /** Discards bytes up to the magic; true once it has been consumed. */
  private findMagic(): boolean {
    if (this.buffered < MAGIC.byteLength) return false
    const at = indexOf(this.peek(this.buffered), MAGIC)
    if (at >= 0) {
      this.take(at + MAGIC.byteLength)
      this.scanning = false
      return true
    }
    // Keep a tail that may hold the start of a magic split across reads.
    this.take(this.buffered - (MAGIC.byteLength - 1))
    return false
  }

  /** Returns the first `n` buffered bytes without consuming them (copies only when they span chunks). */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!
    if (first.byteLength >= n) return first.subarray(0, n)
    const out = new Uint8Array(n)
    let off = 0
    for (const c of this.chunks) {
      const take = Math.min(c.byteLength, n - off)
      out.set(c.subarray(0, take), off)
      off += take
      if (off === n) break
    }
    // Coalesce so the next peek is cheap.
    this.chunks = off === this.buffered ? [out] : [out, ...this.rest(n)]
    return out
  }

  private rest(n: number): Array<Uint8Array> {
    const out: Array<Uint8Array> = []
    let skip = n
    for (const c of this.chunks) {
      if (skip >= c.byteLength) {
        skip -= c.byteLength
        continue
      }
      out.push(skip > 0 ? c.subarray(skip) : c)
      skip = 0
    }
    return out
  }

  /** Consumes `n` bytes; zero-copy when they lie in one received chunk. */
  private take(n: number): Uint8Array {
    this.buffered -= n
    const first = this.chunks[0]!
    if (first.byteLength > n) {
      this.chunks[0] = first.subarray(n)
      return first.subarray(0, n)
    }
    if (first.byteLength === n) {
      this.chunks.shift()
      return first
    }
    const out = new Uint8Array(n)
    let off = 0
    while (off < n) {
      const c = this.chunks[0]!
      const want = n - off
      if (c.byteLength <= want) {
        out.set(c, off)
        off += c.byteLength
        this.chunks.shift()
      } else {
        out.set(c.subarray(0, want), off)
        this.chunks[0] = c.subarray(want)
        off += want
      }
    }
    return out
  }
}

const empty = new Uint8Array(0)

const indexOf = (haystack: Uint8Array, needle: Uint8Array): number => {
  const first = needle[0]!
  outer: for (
    let i = haystack.indexOf(first);
    i >= 0 && i <= haystack.byteLength - needle.byteLength;
    i = haystack.indexOf(first, i + 1)
  ) {
    for (let j = 1; j < needle.byteLength; j++) if (haystack[i + j] !== needle[j]) continue outer
    return i
  }
  return -1
}
