/**
 * The one temp-file-and-rename writer of the agent's writeFile and the client's downloads: a file is
 * written under a temporary name beside its destination and renamed over it when complete, so a reader
 * sees the old file or the new one, never half of one.
 *
 * Node-only, unlike the rest of this package (which does no I/O): it lives here because both sides
 * need it and share nothing else but this package. Imported as `@cuvette/protocol/node/TempFile`;
 * never re-exported from the package's barrel.
 *
 * A temporary name is `.NAME.cuvette-PID-RANDOM`: the pid of the process writing it says whether it
 * may still be in use. A temporary file never outlives its writer: it is removed on abort, at process
 * exit (synchronously, for a process.exit() in a signal handler), and, for a writer that was killed
 * outright (SIGKILL, a VM reset), by the next create() into the same directory from any process using
 * this scheme once the pid is gone. A file of a live process is always left alone.
 */
import { randomInt } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

/** What node:fs takes as a path: a string, or a Buffer for a POSIX name that is not UTF-8. */
export type FsPath = string | Buffer

/** A file being written under its temporary name. */
export interface TempFile {
  /** Where it is written: beside the destination. */
  readonly path: FsPath
  readonly handle: fs.promises.FileHandle
  /**
   * Sets exactly `mode` (creation is subject to the umask), gives it `owner` when this system has owners
   * and we may (best effort: an unprivileged writer keeps its own), closes it and renames it over the
   * destination. A failure leaves it in place for {@link TempFile.abort}; it carries the failed step
   * as `syscall` (fchmod, close, rename).
   */
  commit(options?: {
    readonly mode?: number
    readonly owner?: { readonly uid: number; readonly gid: number }
  }): Promise<void>
  /** Closes and removes it; never fails. */
  abort(): Promise<void>
}

// Byte paths (POSIX only) go through node:path as Latin-1, which keeps each byte one character.
const latin1 = (p: FsPath) => (typeof p === "string" ? Buffer.from(p) : p).toString("latin1")
const bytes = (s: string) => Buffer.from(s, "latin1")
const dirnameOf = (p: FsPath): FsPath =>
  typeof p === "string" ? path.dirname(path.resolve(p)) : bytes(path.dirname(latin1(p)))
const basenameOf = (p: FsPath): FsPath =>
  typeof p === "string" ? path.basename(p) : bytes(path.basename(latin1(p)))
const joinOf = (dir: FsPath, name: FsPath): FsPath =>
  typeof dir === "string" && typeof name === "string"
    ? path.join(dir, name)
    : bytes(path.join(latin1(dir), latin1(name)))

const SUFFIX = ".cuvette-"
const TEMP_NAME = /^\..+\.cuvette-(\d+)-\d+$/s
/** The longest file name most file systems take (bytes on POSIX, UTF-16 units on Windows). */
const NAME_MAX = 255

/** The pid of the process that writes a temporary file of this name, or undefined for any other name. */
export const ownerOf = (name: FsPath): number | undefined => {
  const pid = TEMP_NAME.exec(latin1(name))?.[1]
  return pid === undefined ? undefined : Number(pid)
}

/** `.NAME.cuvette-PID-RANDOM` beside `dest`, NAME shortened when the whole would be too long a name. */
const tempPath = (dest: FsPath): FsPath => {
  const tail = `${SUFFIX}${process.pid}-${randomInt(1e12)}`
  const base = basenameOf(dest)
  const room = NAME_MAX - 1 - tail.length
  const name =
    typeof base === "string"
      ? `.${shorten(base, room)}${tail}`
      : Buffer.concat([Buffer.from("."), base.subarray(0, room), Buffer.from(tail)])
  return joinOf(dirnameOf(dest), name)
}

/** `s` cut to at most `room` UTF-8 bytes, whole characters only. */
const shorten = (s: string, room: number): string => {
  if (Buffer.byteLength(s) <= room) return s
  let out = ""
  for (const c of s) {
    if (Buffer.byteLength(out + c) > room) break
    out += c
  }
  return out
}

/** Temporary files of this process not yet committed or aborted, by their bytes (as Latin-1). */
const inProgress = new Map<string, FsPath>()
let exitHook = false
const track = (temp: FsPath) => {
  if (!exitHook) {
    exitHook = true
    // Synchronous: nothing asynchronous runs once "exit" fires.
    process.on("exit", () => {
      for (const t of inProgress.values()) fs.rmSync(t, { force: true })
    })
  }
  inProgress.set(latin1(temp), temp)
}
const untrack = (temp: FsPath) => inProgress.delete(latin1(temp))

/** False only when no process has this pid (ESRCH); EPERM is someone else's live process. */
const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== "ESRCH"
  }
}

// Each directory is swept once per process (a tree copy into it reads it once, not once per file);
// a long-running agent remembers only the most recent ones.
const SWEPT_REMEMBERED = 1024
const swept = new Set<string>()
const firstVisit = (dir: FsPath): boolean => {
  const key = latin1(dir)
  if (swept.has(key)) return false
  swept.add(key)
  if (swept.size > SWEPT_REMEMBERED) swept.delete(swept.values().next().value!)
  return true
}

/**
 * Removes the temporary files in `dir` whose writer is gone: another process that no longer exists, or
 * this pid with nothing in progress (a previous process that had the same pid, as after a reboot).
 * Read a batch at a time (opendir), so a directory of a million entries takes bounded memory; names as
 * bytes, so one made from a name that is not UTF-8 is found too. Never fails.
 */
export const sweep = async (dir: FsPath): Promise<void> => {
  const entries = await fs.promises
    .opendir(dir, { encoding: process.platform === "win32" ? "utf8" : "buffer" } as fs.OpenDirOptions)
    .catch(() => undefined)
  if (entries === undefined) return
  try {
    for await (const entry of entries as AsyncIterable<fs.Dirent | Buffer>) {
      // Bun yields bare Buffers for a directory opened with encoding "buffer".
      const name = (Buffer.isBuffer(entry) ? entry : entry.name) as FsPath
      const pid = ownerOf(name)
      if (pid === undefined) continue
      const file = joinOf(dir, name)
      if (inProgress.has(latin1(file)) || (pid !== process.pid && isAlive(pid))) continue
      await fs.promises.rm(file, { force: true }).catch(() => {})
    }
  } catch {
    // The directory went away while being read: nothing left to sweep.
  }
}

/**
 * Creates the temporary file for `dest` (created with `mode`, less the umask), after sweeping the
 * stale ones of its directory on this process's first visit there. Fails as open(2) does (ENOENT:
 * no such directory, EACCES: the directory is not writable).
 */
export const create = async (dest: FsPath, mode = 0o666): Promise<TempFile> => {
  const dir = dirnameOf(dest)
  if (firstVisit(dir)) await sweep(dir)
  for (;;) {
    const temp = tempPath(dest)
    track(temp)
    const handle = await fs.promises.open(temp, "wx", mode).catch((e: NodeJS.ErrnoException) => {
      untrack(temp)
      if (e.code === "EEXIST") return undefined
      throw e
    })
    if (handle !== undefined) return tempFile(dest, temp, handle)
  }
}

const tempFile = (dest: FsPath, temp: FsPath, handle: fs.promises.FileHandle): TempFile => {
  let closed: Promise<void> | undefined
  const close = () => (closed ??= handle.close())
  return {
    path: temp,
    handle,
    commit: async ({ mode, owner } = {}) => {
      if (mode !== undefined) await handle.chmod(mode)
      if (owner !== undefined && process.platform !== "win32")
        await handle.chown(owner.uid, owner.gid).catch(() => {})
      await close()
      await fs.promises.rename(temp, dest)
      untrack(temp)
    },
    abort: async () => {
      await close().catch(() => {})
      await fs.promises.rm(temp, { force: true }).catch(() => {})
      untrack(temp)
    },
  }
}
