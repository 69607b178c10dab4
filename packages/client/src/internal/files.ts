// Where a download's bytes go: a host file (written under a temporary name beside it, renamed over it
// when complete) or a caller's Writable. A temporary file never outlives its download: it is removed on
// failure or abort, when the process exits (a CLI's Ctrl-C handler calling process.exit), and, for a
// process that was killed outright, by the next download into the same directory.
import { once } from "node:events"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Writable } from "node:stream"
import { Errors } from "@cuvette/protocol"
import { HostFileError } from "../HostError.js"

const errnoOf = (cause: unknown): string => {
  const code = (cause as { code?: unknown } | undefined)?.code
  return typeof code === "string" ? code : "EIO"
}

/** A host file system failure as a HostFileError about `userPath` (never a temporary name). */
export const hostFileError = (
  operation: "upload" | "download",
  userPath: string,
  cause: unknown,
): HostFileError => {
  const code = errnoOf(cause)
  const text = Errors.describeErrno(code as Errors.ErrorCode)
  return new HostFileError({
    operation,
    path: userPath,
    code,
    detail: text !== code ? text : `${(cause as Error)?.message ?? String(cause)}`,
    cause,
  })
}

/** Why the temporary file beside `dest` cannot be created: the fault is the directory's. */
const createError = (dest: string, cause: unknown): HostFileError => {
  const dir = path.dirname(dest)
  const code = errnoOf(cause)
  const detail =
    code === "ENOENT"
      ? "no such directory"
      : code === "EACCES" || code === "EPERM"
        ? "permission denied (cannot create a file in this directory)"
        : undefined
  if (detail === undefined) return hostFileError("download", code === "ENOTDIR" ? dir : dest, cause)
  return new HostFileError({ operation: "download", path: dir, code, detail, cause })
}

/** A download destination: written chunk by chunk, then committed or abandoned. */
export interface Sink {
  write(chunk: Uint8Array): Promise<void>
  commit(): Promise<void>
  abort(): Promise<void>
}

const FILE_WRITE_BATCH = 1024 * 1024

/** `.NAME.cuvette-PID-MS`: the pid says whether its download may still be running. */
const tempName = (dest: string) =>
  path.join(path.dirname(dest), `.${path.basename(dest)}.cuvette-${process.pid}-${Date.now()}`)
const TEMP_NAME = /^\..+\.cuvette-(\d+)-\d+$/

/** Temporary files of this process's downloads in progress. */
const inProgress = new Set<string>()
let exitHook = false
const track = (temp: string) => {
  if (!exitHook) {
    exitHook = true
    // Synchronous: nothing asynchronous runs once "exit" fires.
    process.on("exit", () => {
      for (const t of inProgress) fs.rmSync(t, { force: true })
    })
  }
  inProgress.add(temp)
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
const removeStale = async (dir: string): Promise<void> => {
  if (swept.has(dir)) return
  swept.add(dir)
  // Streamed (opendir): a directory of a million entries is read with bounded memory.
  const entries = await fs.promises.opendir(dir).catch(() => undefined)
  if (entries === undefined) return
  try {
    for await (const entry of entries) {
      const pid = Number(TEMP_NAME.exec(entry.name)?.[1])
      const file = path.join(dir, entry.name)
      if (!pid || inProgress.has(file) || (pid !== process.pid && isAlive(pid))) continue
      await fs.promises.rm(file, { force: true }).catch(() => {})
    }
  } catch {
    // The directory went away while being read: nothing left to sweep.
  }
}

/** A host file, written to a temporary name and renamed over `dest` on commit. */
export const fileSink = async (dest: string): Promise<Sink> => {
  await removeStale(path.resolve(path.dirname(dest)))
  const temp = tempName(path.resolve(dest))
  track(temp)
  const fh = await fs.promises.open(temp, "w").catch((e: unknown) => {
    inProgress.delete(temp)
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
  return {
    write: async (chunk) => {
      pending.push(chunk)
      pendingBytes += chunk.byteLength
      if (pendingBytes >= FILE_WRITE_BATCH || pending.length >= 256) await flush()
    },
    commit: async () => {
      await flush()
      await close().catch((e: unknown) => {
        throw hostFileError("download", dest, e)
      })
      await fs.promises.rename(temp, dest).catch((e: unknown) => {
        throw hostFileError("download", dest, e)
      })
      inProgress.delete(temp)
    },
    abort: async () => {
      await close().catch(() => {})
      await fs.promises.rm(temp, { force: true })
      inProgress.delete(temp)
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
