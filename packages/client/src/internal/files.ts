// Where a download's bytes go: a host file (written under a temporary name beside it, renamed over it
// when complete) or a caller's Writable. A temporary file (TempFile) never outlives its download: it is
// removed on failure or abort, when the process exits (a CLI's Ctrl-C handler calling process.exit),
// and, for a process that was killed outright, by the next download into the same directory. Also the
// other way: an upload's host file read in chunks (uploadChunks).
import { once } from "node:events"
import type { FileHandle } from "node:fs/promises"
import * as path from "node:path"
import type { Writable } from "node:stream"
import { finished } from "node:stream/promises"
import { Errors, Path } from "@cuvette/protocol"
import * as TempFile from "@cuvette/protocol/node/TempFile"
import type { HostPath } from "../Agent.js"
import { HostFileError, HostStreamError } from "../HostError.js"

// Path arithmetic on byte paths: Latin-1 keeps each byte one character, so node:path finds the
// separators and the round trip gives back the same bytes.
const latin1 = (p: HostPath) => (typeof p === "string" ? Buffer.from(p) : p).toString("latin1")
const fromLatin1 = (s: string) => Buffer.from(s, "latin1")
const dirnameOf = (p: HostPath): HostPath =>
  typeof p === "string" ? path.dirname(p) : fromLatin1(path.dirname(latin1(p)))
/** How a host path is named in messages. */
export const shownHost = (p: HostPath): string => (typeof p === "string" ? p : Path.display(p))

const errnoOf = (cause: unknown): string => {
  const code = (cause as { code?: unknown } | undefined)?.code
  return typeof code === "string" ? code : "EIO"
}

/** A host file system failure as a HostFileError about `userPath` (never a temporary name). */
export const hostFileError = (
  operation: "upload" | "download",
  userPath: HostPath,
  cause: unknown,
): HostFileError => {
  const code = errnoOf(cause)
  const text = Errors.describeErrno(code as Errors.ErrorCode)
  return new HostFileError({
    operation,
    path: shownHost(userPath),
    code,
    detail: text !== code ? text : `${(cause as Error)?.message ?? String(cause)}`,
    cause,
  })
}

/** Bytes per read of an upload's host file, each read into a fresh buffer that is sent as it is. */
export const UPLOAD_CHUNK = 1024 * 1024

/**
 * An upload's host file in {@link UPLOAD_CHUNK} reads, the next one already under way while the last
 * chunk waits for credit and goes out: the file and the socket are busy at the same time instead of
 * taking turns. At most two chunks are held beside what the channel's window lets out.
 */
export async function* uploadChunks(
  handle: FileHandle,
  userPath: HostPath,
  size: number,
): AsyncGenerator<Uint8Array, void, undefined> {
  let position = 0
  const readNext = async (): Promise<Uint8Array> => {
    // Sized to what is left (at least a page, for a file that grew): a 1 MiB buffer per small file made
    // `cp -r` of many files mostly garbage collection.
    const want = Math.min(UPLOAD_CHUNK, Math.max(size - position, 4096))
    const buf = Buffer.allocUnsafe(want)
    const { bytesRead } = await handle.read(buf, 0, want, position).catch((e: unknown) => {
      throw hostFileError("upload", userPath, e)
    })
    position += bytesRead
    return buf.subarray(0, bytesRead)
  }
  let next = readNext()
  try {
    while (true) {
      const chunk = await next
      if (chunk.byteLength === 0) return
      next = readNext()
      yield chunk
    }
  } finally {
    // The upload stopped early (a failed call): the read ahead is dropped, its failure too.
    next.catch(() => {})
  }
}

/** Why the temporary file beside `dest` cannot be created: the fault is the directory's. */
const createError = (dest: HostPath, cause: unknown): HostFileError => {
  const dir = dirnameOf(dest)
  const code = errnoOf(cause)
  const detail =
    code === "ENOENT"
      ? "no such directory"
      : code === "EACCES" || code === "EPERM"
        ? "permission denied (cannot create a file in this directory)"
        : undefined
  if (detail === undefined) return hostFileError("download", code === "ENOTDIR" ? dir : dest, cause)
  return new HostFileError({ operation: "download", path: shownHost(dir), code, detail, cause })
}

/** A download destination: written chunk by chunk, then committed or abandoned. */
export interface Sink {
  write(chunk: Uint8Array): Promise<void>
  commit(): Promise<void>
  abort(): Promise<void>
}

const FILE_WRITE_BATCH = 1024 * 1024

/** A host file, written to a temporary file beside `dest` (TempFile) and renamed over it on commit. */
export const fileSink = async (dest: HostPath): Promise<Sink> => {
  const temp = await TempFile.create(dest).catch((e: unknown) => {
    throw createError(dest, e)
  })
  const fh = temp.handle
  // Chunks are gathered and written 1 MiB at a time: each write is a trip through the thread pool,
  // which cost more than the copy itself at 256 KiB per write.
  let pending: Array<Uint8Array> = []
  let pendingBytes = 0
  const flush = async () => {
    let parts = pending
    pending = []
    pendingBytes = 0
    while (parts.length > 0) {
      let { bytesWritten } = await fh.writev(parts).catch((e: unknown) => {
        throw hostFileError("download", dest, e)
      })
      // A short write (the kernel caps a writev at IOV_MAX buffers): drop what went out, keep the rest.
      while (parts.length > 0 && bytesWritten >= parts[0]!.byteLength)
        bytesWritten -= parts.shift()!.byteLength
      if (parts.length > 0 && bytesWritten > 0) parts = [parts[0]!.subarray(bytesWritten), ...parts.slice(1)]
    }
  }
  // One batch is written while the next one gathers: the download keeps reading (and granting the
  // agent credit) during a write instead of taking turns with it. At most two batches are held.
  let writing: Promise<void> | undefined
  return {
    write: async (chunk) => {
      pending.push(chunk)
      pendingBytes += chunk.byteLength
      if (pendingBytes >= FILE_WRITE_BATCH || pending.length >= 256) {
        await writing
        writing = flush()
        // Its failure is reported by the next write or the commit, which await it.
        writing.catch(() => {})
      }
    },
    commit: async () => {
      await writing
      await flush()
      await temp.commit().catch((e: unknown) => {
        throw hostFileError("download", dest, e)
      })
    },
    abort: async () => {
      await writing?.catch(() => {})
      await temp.abort()
    },
  }
}

// Node's codes for a stream lost without an error of its own.
const lostText: Record<string, string> = {
  ERR_STREAM_DESTROYED: "it was destroyed before the download ended",
  ERR_STREAM_PREMATURE_CLOSE: "it closed before the download ended",
}

/** Why writes into `w` cannot go on, as a HostStreamError: `cause`, or the stream's own error. */
const lost = (w: Writable, cause: unknown = w.errored ?? undefined): HostStreamError => {
  const own = (cause as { code?: unknown } | undefined)?.code
  const code = typeof own === "string" ? own : cause === undefined ? "ERR_STREAM_DESTROYED" : "EIO"
  const text = lostText[code] ?? Errors.describeErrno(code as Errors.ErrorCode)
  const detail = text !== code ? text : `${(cause as Error)?.message ?? String(cause)}`
  return new HostStreamError({ operation: "download", code, detail, cause })
}

/**
 * A caller's Writable, honouring its backpressure; ended on commit when `end` is set. Its failures
 * (an error, or closing before the end) are HostStreamErrors, never taken for the guest's.
 */
export const writableSink = (w: Writable, end: boolean): Sink => {
  // An error while no write waits (the download waits for the guest) rejects the next write instead of
  // being an uncaught 'error' event; the caller's own listeners still see it.
  const ignore = () => {}
  w.on("error", ignore)
  const done = () => void w.off("error", ignore)
  return {
    write: async (chunk) => {
      if (w.destroyed) throw lost(w)
      if (!w.write(chunk)) {
        const ac = new AbortController()
        // Resolves on drain; rejects if the stream errors or closes first.
        await Promise.race([
          once(w, "drain", { signal: ac.signal }),
          once(w, "close", { signal: ac.signal }).then(() => {
            throw lost(w, w.errored ?? { code: "ERR_STREAM_PREMATURE_CLOSE" })
          }),
        ])
          .catch((e: unknown) => {
            throw e instanceof HostStreamError ? e : lost(w, e)
          })
          .finally(() => ac.abort())
      }
    },
    commit: async () => {
      try {
        if (!end) return
        w.end()
        await finished(w, { readable: false }).catch((e: unknown) => {
          throw lost(w, e)
        })
      } finally {
        done()
      }
    },
    abort: async () => done(),
  }
}
