// What the CLI reads as its stdin. A regular file (`cuvette write F < file`) is read with fs.read in
// 1 MiB blocks: Node's own process.stdin reads a file 64 KiB at a time, each read a trip through the
// thread pool and each chunk a protocol frame, which cost four times the CPU of the copy itself.
import * as fs from "node:fs"
import type { Readable } from "node:stream"

/** Bytes per read of a regular-file stdin. */
export const STDIN_BLOCK = 1024 * 1024

/** A Readable of `fd` in {@link STDIN_BLOCK} reads when it is a regular file; undefined otherwise. */
export const fileStdin = (fd: number): Readable | undefined => {
  let isFile: boolean
  try {
    isFile = fs.fstatSync(fd).isFile()
  } catch {
    return undefined
  }
  // Reads from the current offset (start: undefined), as a shell's `< file` or `cat | ` leaves it.
  return isFile ? fs.createReadStream("", { fd, autoClose: false, highWaterMark: STDIN_BLOCK }) : undefined
}
