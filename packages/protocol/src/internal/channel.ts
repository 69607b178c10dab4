/**
 * Channels: the byte streams of one operation, with credit-based flow control. A sender may have at
 * most the receiver's window in flight; the receiver grants more as its consumer reads, so a consumer
 * that stops reading bounds the sender's buffered bytes to one window.
 */
import { AgentError } from "../Errors.js"

/** What a channel needs from the session that owns it. */
export interface ChannelHost {
  readonly chunkSize: number
  readonly congested: boolean
  readonly sendData: (channel: number, bytes: Uint8Array) => void
  readonly sendEof: (channel: number) => void
  readonly sendCredit: (channel: number, bytes: number) => void
  readonly waitWritable: () => Promise<void>
}

/** The sending half of a channel. */
export class Outgoing {
  private credit: number
  private waiters: Array<() => void> = []
  private failure: AgentError | undefined
  private ended = false
  /** Bytes written so far. */
  sent = 0

  constructor(
    private readonly host: ChannelHost,
    readonly channel: number,
    window: number,
  ) {
    this.credit = window
  }

  /**
   * Sends `bytes`, waiting for credit and for the transport to drain as needed. The bytes are handed
   * to the transport as they are: do not modify the buffer after calling this.
   */
  async write(bytes: Uint8Array): Promise<void> {
    let off = 0
    while (off < bytes.byteLength) {
      if (this.failure) throw this.failure
      if (this.ended)
        throw new AgentError({ code: "PROTOCOL", message: `write after end on channel ${this.channel}` })
      if (this.credit <= 0) {
        await new Promise<void>((resolve) => this.waiters.push(resolve))
        continue
      }
      if (this.host.congested) {
        await this.host.waitWritable()
        continue
      }
      const n = Math.min(this.credit, this.host.chunkSize, bytes.byteLength - off)
      this.host.sendData(
        this.channel,
        off === 0 && n === bytes.byteLength ? bytes : bytes.subarray(off, off + n),
      )
      this.credit -= n
      this.sent += n
      off += n
    }
  }

  /** Half-closes: the receiver sees the end of the stream after the bytes already written. */
  end(): void {
    if (this.ended || this.failure) return
    this.ended = true
    this.host.sendEof(this.channel)
  }

  /** True once `end` was called. */
  get isEnded(): boolean {
    return this.ended
  }

  /** The receiver granted more credit. */
  grant(bytes: number): void {
    this.credit += bytes
    for (const w of this.waiters.splice(0)) w()
  }

  /** Makes pending and future writes fail (operation finished, cancelled or session gone). */
  fail(error: AgentError): void {
    this.failure ??= error
    for (const w of this.waiters.splice(0)) w()
  }
}

const SMALL_CHUNK = 16 * 1024
const CHUNK_COST = 256

/** The receiving half of a channel: a bounded queue the consumer reads from. */
export class Incoming implements AsyncIterable<Uint8Array> {
  private queue: Array<Uint8Array> = []
  private reader: (() => void) | undefined
  private allowance: number
  private ungranted = 0
  private ended = false
  private failure: AgentError | undefined
  private discarding = false
  /** Bytes currently held, waiting for the consumer. */
  buffered = 0
  /** Bytes received so far. */
  received = 0

  constructor(
    private readonly host: ChannelHost,
    readonly channel: number,
    private readonly window: number,
  ) {
    this.allowance = window
  }

  /** Frame arrived. Returns an error if the sender exceeded its credit. */
  push(bytes: Uint8Array): AgentError | undefined {
    if (this.ended)
      return new AgentError({
        code: "PROTOCOL",
        message: `data after end of stream on channel ${this.channel}`,
      })
    this.allowance -= bytes.byteLength
    if (this.allowance < 0) {
      return new AgentError({
        code: "PROTOCOL",
        message: `flow control violated on channel ${this.channel}: ${-this.allowance} bytes beyond the granted window`,
      })
    }
    this.received += bytes.byteLength
    if (this.discarding) {
      this.consumed(bytes.byteLength)
      return undefined
    }
    // A small frame is usually a view of a much larger read: keeping the view would keep the read.
    this.queue.push(
      bytes.byteLength < SMALL_CHUNK && bytes.buffer.byteLength > 2 * SMALL_CHUNK ? bytes.slice() : bytes,
    )
    this.buffered += bytes.byteLength
    this.wake()
    return undefined
  }

  /** The sender half-closed. */
  end(): void {
    this.ended = true
    this.wake()
  }

  /** The channel failed (operation failed, session gone): readers get this error. */
  fail(error: AgentError): void {
    if (this.ended) return
    this.failure ??= error
    this.wake()
  }

  /** Reads the next chunk, or undefined at the end of the stream. */
  async read(): Promise<Uint8Array | undefined> {
    while (true) {
      const chunk = this.queue.shift()
      if (chunk) {
        this.buffered -= chunk.byteLength
        this.consumed(chunk.byteLength)
        return chunk
      }
      if (this.ended) return undefined
      if (this.failure) throw this.failure
      await new Promise<void>((resolve) => (this.reader = resolve))
    }
  }

  /** Drops everything that arrives from now on, granting credit at once (the consumer is not interested). */
  discard(): void {
    this.discarding = true
    const n = this.buffered
    this.queue = []
    this.buffered = 0
    this.consumed(n)
  }

  /** Memory the queue costs: its bytes and a bookkeeping cost per chunk (a flood of 1-byte frames counts). */
  get held(): number {
    return this.buffered + this.queue.length * CHUNK_COST
  }

  /** True once the sender ended the stream and everything was read. */
  get done(): boolean {
    return this.ended && this.queue.length === 0
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    while (true) {
      const chunk = await this.read()
      if (chunk === undefined) return
      yield chunk
    }
  }

  private consumed(n: number): void {
    if (this.ended || n === 0) return
    this.ungranted += n
    // Grant in batches of a quarter window: few credit frames, and the sender never runs dry.
    if (this.ungranted >= this.window / 4) {
      this.allowance += this.ungranted
      this.host.sendCredit(this.channel, this.ungranted)
      this.ungranted = 0
    }
  }

  private wake(): void {
    const r = this.reader
    this.reader = undefined
    r?.()
  }
}
