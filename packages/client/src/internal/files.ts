// Where a download's bytes go: a host file (written under a temporary name beside it, renamed over it
// when complete) or a caller's Writable. A temporary file never outlives its download: it is removed on
// failure or abort, when the process exits (a CLI's Ctrl-C handler calling process.exit), and, for a
// process that was killed outright, by the next download into the same directory.
import { once } from "node:events"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Writable } from "node:stream"
import { Errors, Path } from "@cuvette/protocol"
import { HostFileError } from "../HostError.js"

/**
 * A host path: a string, or a Buffer for a name that is not UTF-8 (POSIX names are bytes; Node's fs
 * passes a Buffer to the kernel as is).
 */
export type HostPath = string | Buffer

// Path arithmetic on byte paths: Latin-1 keeps each byte one character, so node:path finds the
// separators and the round trip gives back the same bytes.
const latin1 = (p: HostPath) => (typeof p === "string" ? Buffer.from(p) : p).toString("latin1")
const fromLatin1 = (s: string) => Buffer.from(s, "latin1")
const dirnameOf = (p: HostPath): HostPath =>
  typeof p === "string" ? path.dirname(p) : fromLatin1(path.dirname(latin1(p)))
/** `dir` joined with a name made of text around `p`'s last component. */
const besideIt = (p: HostPath, name: (base: string) => string): HostPath =>
  typeof p === "string"
    ? path.join(path.dirname(p), name(path.basename(p)))
    : fromLatin1(path.join(path.dirname(latin1(p)), name(path.basename(latin1(p)))))
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
  handle: fs.promises.FileHandle,
  userPath: HostPath,
): AsyncGenerator<Uint8Array, void, undefined> {
  let position = 0
  const readNext = async (): Promise<Uint8Array> => {
    const buf = Buffer.allocUnsafe(UPLOAD_CHUNK)
    const { bytesRead } = await handle.read(buf, 0, UPLOAD_CHUNK, position).catch((e: unknown) => {
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

/** `.NAME.cuvette-PID-MS`: the pid says whether its download may still be running. */
const tempName = (dest: HostPath) => besideIt(dest, (base) => `.${base}.cuvette-${process.pid}-${Date.now()}`)
const TEMP_NAME = /^\..+\.cuvette-(\d+)-\d+$/

/** Temporary files of this process's downloads in progress, by their bytes (as Latin-1). */
const inProgress = new Map<string, HostPath>()
const key = latin1
let exitHook = false
const track = (temp: HostPath) => {
  if (!exitHook) {
    exitHook = true
    // Synchronous: nothing asynchronous runs once "exit" fires.
    process.on("exit", () => {
      for (const t of inProgress.values()) fs.rmSync(t, { force: true })
    })
  }
  inProgress.set(key(temp), temp)
}

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM" // alive, someone else's
  }
}

// Each directory is swept once per process: a tree copy into it reads it once, not once per file.
const swept = new Set<string>()

/** Removes temporary files left in `dir` by downloads whose process is gone (SIGKILL, a crash). */
const removeStale = async (dir: HostPath): Promise<void> => {
  if (swept.has(key(dir))) return
  swept.add(key(dir))
  // Streamed (opendir): a directory of a million entries is read with bounded memory; names as bytes,
  // so a temporary file named after a name that is not UTF-8 is found too.
  const entries = await fs.promises
    .opendir(dir, { encoding: process.platform === "win32" ? "utf8" : "buffer" } as fs.OpenDirOptions)
    .catch(() => undefined)
  if (entries === undefined) return
  try {
    for await (const entry of entries) {
      // Bun yields bare Buffers for a directory opened with encoding "buffer".
      const name = (Buffer.isBuffer(entry) ? entry : entry.name) as HostPath
      const pid = Number(TEMP_NAME.exec(latin1(name))?.[1])
      if (!pid) continue
      const file =
        typeof name === "string" && typeof dir === "string"
          ? path.join(dir, name)
          : fromLatin1(path.join(latin1(dir), latin1(name)))
      if (inProgress.has(key(file)) || (pid !== process.pid && isAlive(pid))) continue
      await fs.promises.rm(file, { force: true }).catch(() => {})
    }
  } catch {
    // The directory went away while being read: nothing left to sweep.
  }
}

/** A host file, written to a temporary name and renamed over `dest` on commit. */
export const fileSink = async (dest: HostPath): Promise<Sink> => {
  await removeStale(typeof dest === "string" ? path.resolve(path.dirname(dest)) : dirnameOf(dest))
  const temp = tempName(typeof dest === "string" ? path.resolve(dest) : dest)
  track(temp)
  const fh = await fs.promises.open(temp, "w").catch((e: unknown) => {
    inProgress.delete(key(temp))
    throw createError(dest, e)
  })
  let closed = false
  const close = async () => {
    if (!closed) {
      closed = true
      await fh.close()
    }
  }
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
      await close().catch((e: unknown) => {
        throw hostFileError("download", dest, e)
      })
      await fs.promises.rename(temp, dest).catch((e: unknown) => {
        throw hostFileError("download", dest, e)
      })
      inProgress.delete(key(temp))
    },
    abort: async () => {
      await writing?.catch(() => {})
      await close().catch(() => {})
      await fs.promises.rm(temp, { force: true })
      inProgress.delete(key(temp))
    },
  }
}

/** A caller's Writable, honouring its backpressure; ended on commit when `end` is set. */
export const writableSink = (w: Writable, end: boolean): Sink => ({
  write: async (chunk) => {
    if (w.destroyed) throw new Error("the destination stream was destroyed")
    if (!w.write(chunk)) {
      const ac = new AbortController()
      // Resolves on drain; rejects if the stream errors or closes first.
      await Promise.race([
        once(w, "drain", { signal: ac.signal }),
        once(w, "close", { signal: ac.signal }).then(() => {
          throw new Error("the destination stream closed")
        }),
      ]).finally(() => ac.abort())
    }
  },
  commit: async () => {
    if (!end) return
    w.end()
    await once(w, "finish")
  },
  abort: async () => {},
})
