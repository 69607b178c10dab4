/**
 * I/O on files that are not regular files (FIFOs, terminals, serial ports, other devices) without
 * parking a thread of the runtime's pool: they are opened O_NONBLOCK, and a read or write that would
 * wait is tried again after a pause on the event loop, until data comes or the call is cancelled.
 * A blocking open or read would hold a pool thread until a writer appears, and a few of them stop
 * every file operation of every session.
 */
import { constants } from "node:fs"
import type { FileHandle } from "node:fs/promises"

/** Added to every open of readFile and writeFile: no effect on regular files, no waiting in open(2) otherwise. */
export const O_NONBLOCK: number = constants.O_NONBLOCK ?? 0

const PAUSE_MIN_MS = 2
const PAUSE_MAX_MS = 100

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer)
      signal.removeEventListener("abort", done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener("abort", done, { once: true })
  })

const wouldBlock = (e: unknown) => ["EAGAIN", "EWOULDBLOCK"].includes((e as NodeJS.ErrnoException).code ?? "")

/**
 * A reader of a non-regular file, from its current position. A FIFO that no writer has opened yet
 * reads as empty, not as its end: like `cat`, it waits for a writer; once one was there, empty is the end.
 */
export const specialReader = (handle: FileHandle, fifo: boolean, signal: AbortSignal) => {
  let writerSeen = !fifo
  let wait = PAUSE_MIN_MS
  /** Bytes read into `buffer`; 0 at the end, or when cancelled. */
  return async (buffer: Buffer): Promise<number> => {
    while (!signal.aborted) {
      try {
        const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, null)
        if (bytesRead > 0 || writerSeen) {
          writerSeen = true
          wait = PAUSE_MIN_MS
          return bytesRead
        }
      } catch (e) {
        if (!wouldBlock(e)) throw e
        writerSeen = true
      }
      await pause(wait, signal)
      wait = Math.min(PAUSE_MAX_MS, wait * 2)
    }
    return 0
  }
}

/** Writes all of `chunk` into a non-regular file, waiting (cancellably) while it is full. */
export const writeSpecial = async (
  handle: FileHandle,
  chunk: Uint8Array,
  signal: AbortSignal,
): Promise<void> => {
  let off = 0
  let wait = PAUSE_MIN_MS
  while (off < chunk.byteLength && !signal.aborted) {
    try {
      const { bytesWritten } = await handle.write(chunk, off, chunk.byteLength - off, null)
      off += bytesWritten
      wait = PAUSE_MIN_MS
    } catch (e) {
      if (!wouldBlock(e)) throw e
      await pause(wait, signal)
      wait = Math.min(PAUSE_MAX_MS, wait * 2)
    }
  }
}
