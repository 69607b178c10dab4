/**
 * I/O on files that are not regular files (FIFOs, terminals, serial ports, other devices) without
 * parking a thread of the runtime's pool: they are opened O_NONBLOCK, and a read or write that would
 * wait is tried again after a pause on the event loop, until data comes or the call is cancelled.
 * A blocking open or read would hold a pool thread until a writer appears, and a few of them stop
 * every file operation of every session.
 */
import { Retry } from "@cuvette/protocol"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { constants } from "node:fs"
import type { FileHandle } from "node:fs/promises"

/** Added to every open of readFile and writeFile: no effect on regular files, no waiting in open(2) otherwise. */
export const O_NONBLOCK: number = constants.O_NONBLOCK ?? 0

// 2 ms, doubling to 100 ms: quick for a device that is nearly ready, no busy loop for one that idles.
const pauses = Retry.doubling("2 millis", "100 millis")

/** The file has nothing to give (or no room) yet: try again after a pause. */
class NotReady extends Data.TaggedError("NotReady") {}

const wouldBlock = (e: unknown) => ["EAGAIN", "EWOULDBLOCK"].includes((e as NodeJS.ErrnoException).code ?? "")

/**
 * Runs `attempt` until it is not NotReady, pausing on the schedule; undefined when `signal` ends the
 * wait first. Any other failure is thrown as it is.
 */
const whenReady = async <A>(
  attempt: () => Promise<A | NotReady>,
  signal: AbortSignal,
): Promise<A | undefined> => {
  if (signal.aborted) return undefined
  const once = Effect.flatMap(
    // A read or write in flight finishes before a cancel takes effect: its bytes are not lost.
    Effect.uninterruptible(Effect.tryPromise({ try: attempt, catch: (e) => e })),
    (a): Effect.Effect<A, unknown> => (a instanceof NotReady ? Effect.fail(a) : Effect.succeed(a)),
  )
  const untilReady = Retry.retry(once, { schedule: pauses, while: (e) => e instanceof NotReady })
  const exit = await Effect.runPromiseExit(untilReady, { signal })
  if (Exit.isSuccess(exit)) return exit.value
  if (signal.aborted) return undefined
  throw Cause.squash(exit.cause)
}

/**
 * A reader of a non-regular file, from its current position. A FIFO that no writer has opened yet
 * reads as empty, not as its end: like `cat`, it waits for a writer; once one was there, empty is the end.
 */
export const specialReader = (handle: FileHandle, fifo: boolean, signal: AbortSignal) => {
  let writerSeen = !fifo
  const read = (buffer: Buffer) => async (): Promise<number | NotReady> => {
    try {
      const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, null)
      if (bytesRead === 0 && !writerSeen) return new NotReady()
      writerSeen = true
      return bytesRead
    } catch (e) {
      if (!wouldBlock(e)) throw e
      writerSeen = true
      return new NotReady()
    }
  }
  /** Bytes read into `buffer`; 0 at the end, or when cancelled. */
  return async (buffer: Buffer): Promise<number> => (await whenReady(read(buffer), signal)) ?? 0
}

/** Writes all of `chunk` into a non-regular file, waiting (cancellably) while it is full. */
export const writeSpecial = async (
  handle: FileHandle,
  chunk: Uint8Array,
  signal: AbortSignal,
): Promise<void> => {
  const write = (off: number) => async (): Promise<number | NotReady> => {
    try {
      return (await handle.write(chunk, off, chunk.byteLength - off, null)).bytesWritten
    } catch (e) {
      if (!wouldBlock(e)) throw e
      return new NotReady()
    }
  }
  for (let off = 0; off < chunk.byteLength; ) {
    const written = await whenReady(write(off), signal)
    if (written === undefined) return
    off += written
  }
}
