/**
 * A bounded pool of the agent's output buffers (readFile's reads), so a long transfer reuses a few
 * buffers instead of leaving one fresh buffer per read for the collector, which under Bun returns them
 * late (RSS rose from 55 to ~115 MiB over a few GiB of readFile).
 *
 * Neither Node's nor Bun's socket copies on write: the bytes stay referenced until the write's callback.
 * So a buffer comes back only when its holder released it and every write of it queued on a socket
 * passed through {@link trackWrites} has called back. A buffer that was sent but never seen by such a
 * socket (a serial port's queue, a sealed session's records) may still be referenced: it is not reused,
 * just left to the collector.
 */
import type { Writable } from "node:stream"

/** One buffer's state while it is out of the pool. */
interface Loan {
  readonly pool: BufferPool
  /** Writes of (a part of) it that a socket still holds. */
  pending: number
  /** Every holder is known: it was never sent, or a tracked socket took it (then `pending` counts). */
  accounted: boolean
  /** Its holder is done with it. */
  released: boolean
}

/** Buffers out of their pool, by their memory: a socket's write finds a pooled view through it. */
const loans = new WeakMap<ArrayBufferLike, Loan>()

export class BufferPool {
  private readonly free: Array<Buffer> = []
  /** Buffers allocated because none was free (a test's measure of reuse). */
  allocated = 0

  constructor(
    /** Bytes of every buffer. */
    readonly size: number,
    /** Free buffers kept; more are left to the collector, so the pool never holds more than this. */
    readonly keep: number,
  ) {}

  /** A buffer of {@link size} bytes (contents undefined), to be given back with {@link release}. */
  take(): Buffer {
    const buffer = this.free.pop() ?? this.allocate()
    loans.set(buffer.buffer, { pool: this, pending: 0, accounted: false, released: false })
    return buffer
  }

  /**
   * The holder is done with `buffer`. `sent`: (a part of) it was handed to a channel; then it returns
   * once every socket write of it called back, and never if no tracked socket took it.
   */
  release(buffer: Buffer, sent: boolean): void {
    const loan = loans.get(buffer.buffer)
    if (loan === undefined || loan.released) return
    loan.released = true
    if (!sent) loan.accounted = true
    this.settle(buffer.buffer, loan)
  }

  /** Free buffers now held. */
  get idle(): number {
    return this.free.length
  }

  private allocate(): Buffer {
    this.allocated++
    // Its own memory, not a slice of Node's shared pool: a loan is keyed by it.
    return Buffer.allocUnsafeSlow(this.size)
  }

  /** Puts the buffer back once its holder and every tracked write of it let go (trackWrites calls it). */
  settle(memory: ArrayBufferLike, loan: Loan): void {
    if (!loan.released || loan.pending > 0) return
    loans.delete(memory)
    if (loan.accounted && this.free.length < this.keep) this.free.push(Buffer.from(memory, 0, this.size))
  }
}

/** The pool of data-frame sized buffers the agent's handlers share (256 KiB: DEFAULT_CHUNK). */
export const outputPool = new BufferPool(256 * 1024, 16)

type WriteCallback = (error?: Error | null) => void

/**
 * Makes `socket` report when it lets go of a pooled buffer (its write callback), so the pool can reuse
 * it. Other writes pass through untouched.
 */
export const trackWrites = <S extends Pick<Writable, "write">>(socket: S): S => {
  const write = socket.write.bind(socket) as (...args: Array<unknown>) => boolean
  socket.write = ((chunk: unknown, ...rest: Array<unknown>) => {
    const loan = chunk instanceof Uint8Array ? loans.get(chunk.buffer) : undefined
    if (loan === undefined) return write(chunk, ...rest)
    const at = rest.findIndex((a) => typeof a === "function")
    const callback = at >= 0 ? (rest[at] as WriteCallback) : undefined
    const before = at >= 0 ? rest.slice(0, at) : rest
    loan.pending++
    loan.accounted = true
    const memory = (chunk as Uint8Array).buffer
    return write(chunk, ...before, (error?: Error | null) => {
      loan.pending--
      loan.pool.settle(memory, loan)
      callback?.(error)
    })
  }) as S["write"]
  return socket
}
