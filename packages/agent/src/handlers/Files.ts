/**
 * File handlers: readFile, writeFile, stat, list, mkdir, remove, rename, chmod. Bodies are streamed through
 * the operation's channels with their credit flow control, so a 10 GiB copy never sits in memory.
 */
import { Errors, type Operations, Path, Records, type Session } from "@cuvette/protocol"
import * as TempFile from "@cuvette/protocol/node/TempFile"
import { Effect, Exit } from "effect"
import type * as fsTypes from "node:fs"
import * as fs from "node:fs/promises"
import { outputPool } from "../internal/bufferPool.js"
import * as BunDir from "../internal/bunDir.js"
import { checkMode, fsError } from "../internal/errors.js"
import { dirname, type FsPath, fromFs, join, resolvesToRoot, toFs } from "../internal/paths.js"
import { O_NONBLOCK, specialReader, writeSpecial } from "../internal/nonBlocking.js"

/** Bytes per read: one protocol data frame (DEFAULT_CHUNK), the size of the output pool's buffers. */
const READ_CHUNK = outputPool.size

/** One read of readFile: its bytes, and the pooled buffer they are in (if any), to hand back once sent. */
interface Chunk {
  readonly bytes: Buffer
  readonly pooled: Buffer | undefined
}

const fileType = (s: fsTypes.Stats): Operations.Stat["type"] =>
  s.isFile() ? "file" : s.isDirectory() ? "directory" : s.isSymbolicLink() ? "symlink" : "other"

/** Runs `f`, turning its failure into an AgentError about `where` (shown escaped when not UTF-8). */
const attempt = <A>(what: string, where: Path.Path, f: (signal: AbortSignal) => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => fsError(what, Path.display(where), cause) })

/** The fs form of a wire path, or its EINVAL (a name that is not UTF-8 on Windows). */
const fsPath = (p: Path.Path) => Effect.try({ try: () => toFs(p), catch: (e) => e as Errors.AgentError })

/** A wire path in a message: escaped when not UTF-8, shortened when long. */
const quoted = (p: Path.Path) => Errors.quote(Path.display(p))

/** FIFOs, terminals and other character devices: read and written as streams, without waiting in the pool. */
const isStream = (s: fsTypes.Stats) => s.isFIFO() || s.isCharacterDevice() || s.isSocket()

/** readFile: Opened {size, mode} first, then the bytes on stdout, at most `length` from `offset`. */
export const readFile = (args: Operations.Args<"readFile">, call: Session.ServerCall<"readFile">) =>
  Effect.gen(function* () {
    const handle = yield* Effect.acquireRelease(
      attempt("read", args.path, () => fs.open(toFs(args.path), fs.constants.O_RDONLY | O_NONBLOCK)),
      (h) => Effect.promise(() => h.close().catch(() => {})),
    )
    const st = yield* attempt("read", args.path, () => handle.stat())
    if (st.isDirectory())
      return yield* Effect.fail(
        Errors.make("EISDIR", `cannot read ${quoted(args.path)}: it is a directory (use list)`),
      )
    const offset = args.offset ?? 0
    const stream = isStream(st)
    if (stream && offset > 0)
      return yield* Effect.fail(
        Errors.make(
          "EINVAL",
          `cannot read ${quoted(args.path)} from offset ${offset}: it is a FIFO or device`,
        ),
      )
    const available = Math.max(0, st.size - offset)
    const size = args.length === undefined ? available : Math.min(args.length, available)
    call.emit({ _tag: "Opened", size, mode: st.mode & 0o7777 })
    // Special files (/proc, devices) report size 0: read until EOF unless a length bounds it.
    const limit = args.length ?? (st.isFile() ? available : Number.POSITIVE_INFINITY)
    return yield* attempt("read", args.path, async (signal) => {
      let done = 0
      const readStream = stream ? specialReader(handle, st.isFIFO(), signal) : undefined
      // Full chunks are read into pooled buffers, handed back once the socket has written them; a
      // short one (a small file, a tail) gets a buffer of its size: 5,000 small reads never hold 256 KiB each.
      const read = async (position: number, n: number): Promise<Chunk> => {
        const pooled = n === outputPool.size ? outputPool.take() : undefined
        const buffer = pooled ?? Buffer.allocUnsafe(n)
        try {
          const bytesRead = readStream
            ? await readStream(buffer.subarray(0, n))
            : (await handle.read(buffer, 0, n, position)).bytesRead
          return { bytes: buffer.subarray(0, bytesRead), pooled }
        } catch (e) {
          if (pooled) outputPool.release(pooled, false)
          throw e
        }
      }
      // A regular file's next chunk is read while this one waits for credit and the socket: the two
      // no longer take turns (a stream is read only when wanted, as its writer may be waiting on us).
      let next: Promise<Chunk> | undefined = read(offset, Math.min(READ_CHUNK, limit))
      try {
        while (next !== undefined && !signal.aborted) {
          const chunk = await next
          next = undefined
          const n = chunk.bytes.byteLength
          if (n === 0) {
            if (chunk.pooled) outputPool.release(chunk.pooled, false)
            break
          }
          done += n
          if (done < limit && !readStream) next = read(offset + done, Math.min(READ_CHUNK, limit - done))
          try {
            await call.stdout.write(chunk.bytes)
          } finally {
            if (chunk.pooled) outputPool.release(chunk.pooled, true)
          }
          if (done < limit && readStream) next = read(offset + done, Math.min(READ_CHUNK, limit - done))
        }
      } finally {
        // Never leave a read running on a handle about to be closed.
        const left = await next?.catch(() => undefined)
        if (left?.pooled) outputPool.release(left.pooled, false)
      }
      return { bytes: done }
    })
  })

/** What a failed commit was doing, by the syscall that failed. */
const commitStep: Record<string, string> = { fchmod: "set the mode of", rename: "replace" }

/**
 * writeFile: the body arrives on stdin. Atomic (default): written to a temporary file beside the target
 * (TempFile: `.<name>.cuvette-<pid>-<random>`) and renamed over it, so readers see the old or the new
 * file, never half of one; the temporary file is removed on any failure, cancel or disconnect (scope
 * finalizer), and one left by an agent killed mid-write goes with the next write into its directory. A
 * FIFO or device is written into, never replaced, and never waited for in open(2): a FIFO needs its reader.
 */
export const writeFile = (args: Operations.Args<"writeFile">, call: Session.ServerCall<"writeFile">) =>
  Effect.gen(function* () {
    const target = yield* fsPath(args.path)
    const shown = args.path
    const badMode = checkMode(args.mode, "write", Path.display(shown))
    if (badMode) return yield* Effect.fail(badMode)
    const dir = dirname(target)
    if (args.createParents)
      yield* attempt("create the parent directories of", shown, () => fs.mkdir(dir, { recursive: true }))
    const existing = yield* Effect.promise(() => fs.stat(target).catch(() => undefined))
    if (existing?.isDirectory())
      return yield* Effect.fail(Errors.make("EISDIR", `cannot write ${quoted(shown)}: it is a directory`))
    const inPlace = existing !== undefined && !existing.isFile()
    const stream = existing !== undefined && isStream(existing)
    const atomic = !inPlace && (args.atomic ?? true)
    // An existing file keeps its mode unless one is given; a new one gets `mode` or 0644.
    const mode = args.mode ?? (existing ? existing.mode & 0o7777 : 0o644)
    const openError = (cause: unknown) =>
      (cause as NodeJS.ErrnoException).code === "ENXIO" && existing?.isFIFO()
        ? Errors.make(
            "ENXIO",
            `cannot write into ${quoted(shown)}: no process has this FIFO open for reading`,
          )
        : fsError("write into", Path.display(shown), cause)
    // Atomic: a temporary file, renamed over the target below; failed, cancelled or the client went
    // away, it is removed and the destination stays as it was. Otherwise the target itself.
    const temp = atomic
      ? yield* Effect.acquireRelease(
          Effect.tryPromise({ try: () => TempFile.create(target, mode), catch: openError }),
          (t, exit) => (Exit.isFailure(exit) ? Effect.promise(() => t.abort()) : Effect.void),
        )
      : undefined
    const handle =
      temp?.handle ??
      (yield* Effect.acquireRelease(
        Effect.tryPromise({
          try: () =>
            inPlace ? fs.open(target, fs.constants.O_WRONLY | O_NONBLOCK) : fs.open(target, "w", mode),
          catch: openError,
        }),
        (h) => Effect.promise(() => h.close().catch(() => {})),
      ))
    const bytes = yield* attempt("write", shown, async (signal) => {
      let n = 0
      for await (const chunk of call.stdin) {
        if (signal.aborted) break
        if (stream) {
          await writeSpecial(handle, chunk, signal)
          n += chunk.byteLength
          continue
        }
        let off = 0
        while (off < chunk.byteLength) {
          const { bytesWritten } = await handle.write(chunk, off, chunk.byteLength - off)
          off += bytesWritten
        }
        n += chunk.byteLength
      }
      return n
    })
    if (args.size !== undefined && bytes !== args.size)
      return yield* Effect.fail(
        Errors.make(
          "EIO",
          `write of ${quoted(shown)} incomplete: expected ${args.size} bytes, received ${bytes}; the destination was left unchanged${atomic ? "" : " (non-atomic: it holds the partial data)"}`,
        ),
      )
    // umask applies to open(); set the bits asked for explicitly. A device keeps its own.
    if (temp) {
      const owner = existing && { uid: existing.uid, gid: existing.gid }
      yield* Effect.tryPromise({
        try: () => temp.commit({ mode, ...(owner ? { owner } : {}) }),
        catch: (cause) =>
          fsError(
            commitStep[(cause as NodeJS.ErrnoException).syscall ?? ""] ?? "write",
            Path.display(shown),
            cause,
          ),
      })
    } else if (!inPlace) yield* attempt("set the mode of", shown, () => handle.chmod(mode))
    return { bytes }
  })

/** What stat and list report of one path; a symlink replaced in the meantime just has no target. */
const describe = async (where: FsPath, s: fsTypes.Stats) => {
  const target = s.isSymbolicLink()
    ? await fs.readlink(where, { encoding: "buffer" }).then(fromFs, () => undefined)
    : undefined
  return {
    type: fileType(s),
    size: s.size,
    mode: s.mode & 0o7777,
    mtimeMs: s.mtimeMs,
    ...(target !== undefined ? { target } : {}),
  }
}

/** stat: lstat unless `follow` (a dangling symlink is still described); a symlink carries its target. */
export const stat = (args: Operations.Args<"stat">) =>
  attempt("stat", args.path, async () => {
    const where = toFs(args.path)
    const s = args.follow === true ? await fs.stat(where) : await fs.lstat(where)
    return { path: args.path, uid: s.uid, gid: s.gid, ...(await describe(where, s)) }
  })

const entry = async (dir: FsPath, e: Entry): Promise<Operations.DirEntry> => {
  const where = join(dir, e.name)
  const s = await fs.lstat(where).catch(() => undefined)
  const name = fromFs(e.name)
  // Removed between readdir and lstat: still listed, without details.
  return s ? { name, ...(await describe(where, s)) } : { name, type: "other", size: 0, mode: 0, mtimeMs: 0 }
}

/**
 * list: reads the directory a batch at a time (opendir) and streams each batch of entries on stdout
 * (Records), waiting for the client's credit, so a million entries never sit in the agent's memory.
 */
export const list = (args: Operations.Args<"list">, call: Session.ServerCall<"list">) =>
  Effect.gen(function* () {
    const where = yield* fsPath(args.path)
    const dir = yield* Effect.acquireRelease(
      attempt("list", args.path, () => openDir(where)),
      (d) => Effect.promise(() => d.close().catch(() => {})),
    )
    return yield* attempt("list", args.path, async (signal) => {
      let count = 0
      while (!signal.aborted) {
        const dirents = await readBatch(dir)
        if (dirents.length === 0) break
        const batch = await Promise.all(dirents.map((e) => entry(where, e)))
        await call.stdout.write(Records.encodeBatch(batch))
        count += batch.length
      }
      return { count }
    })
  })

/** One directory entry: its name as the file system holds it; whether it is a directory, when known. */
interface Entry {
  readonly name: FsPath
  readonly isDirectory: boolean | undefined
}

/** What list needs of an open directory (fs.Dir, or BunDir's reader, which yields bare names). */
interface OpenDir {
  read(): Promise<fsTypes.Dirent | Buffer | null>
  close(): Promise<void>
}

/**
 * Opens a directory whose names come back as bytes (POSIX names are bytes, not necessarily UTF-8);
 * Windows names are UTF-16, so text there. Under Bun through libc (BunDir: Bun's own reads it whole).
 */
const openDir = async (dir: FsPath): Promise<OpenDir> =>
  BunDir.open(dir) ??
  (await fs.opendir(dir, {
    bufferSize: Records.BATCH_RECORDS,
    encoding: process.platform === "win32" ? "utf8" : "buffer",
  } as fsTypes.OpenDirOptions))

/** The next batch of entries of an open directory; fewer than a full batch only at its end. */
const readBatch = async (dir: OpenDir): Promise<Array<Entry>> => {
  const batch: Array<Entry> = []
  while (batch.length < Records.BATCH_RECORDS) {
    // Bun yields a bare Buffer (no type) for each entry of a directory opened with encoding "buffer".
    const e = (await dir.read()) as fsTypes.Dirent | Buffer | null
    if (e === null) break
    const name = (Buffer.isBuffer(e) ? e : e.name) as FsPath
    // Names that are text stay strings: node:path's rules then apply to them (Windows too).
    const text = fromFs(name)
    batch.push({
      name: typeof text === "string" ? text : name,
      isDirectory: Buffer.isBuffer(e) ? undefined : e.isDirectory(),
    })
  }
  return batch
}

/** mkdir: `parents` creates missing ancestors and accepts an existing directory. */
export const mkdir = (args: Operations.Args<"mkdir">) =>
  attempt("create directory", args.path, async () => {
    const badMode = checkMode(args.mode, "create directory", Path.display(args.path))
    if (badMode) throw badMode
    await fs.mkdir(toFs(args.path), { recursive: args.parents ?? false, mode: args.mode ?? 0o755 })
    return {}
  })

const refuseRoot = (shown: string) =>
  Errors.make(
    "DENIED",
    `refusing to remove ${shown}: it is the root directory (pass noPreserveRoot to remove it anyway)`,
  )

/** The root directory's device and inode, to recognise it under any other name (a symlink, a bind mount). */
const isRootDirectory = async (s: fsTypes.Stats) => {
  const root = await fs.stat("/").catch(() => undefined)
  return root !== undefined && s.dev === root.dev && s.ino === root.ino
}

/**
 * remove: a directory needs `recursive` unless empty (then ENOTEMPTY); `force` ignores a missing path.
 * The root directory is refused unless `noPreserveRoot`, as GNU rm does: a path that spells it (`/`,
 * `/tmp/..`) before any file system call, and one that leads to it otherwise (a symlink to `/` with a
 * trailing slash) before anything is removed.
 */
export const remove = (args: Operations.Args<"remove">) =>
  Effect.gen(function* () {
    const shown = quoted(args.path)
    if (!args.noPreserveRoot && resolvesToRoot(args.path)) return yield* Effect.fail(refuseRoot(shown))
    return yield* attempt("remove", args.path, async (signal) => {
      const where = toFs(args.path)
      const s = await fs.lstat(where).catch((e: NodeJS.ErrnoException) => {
        if (e.code === "ENOENT" && args.force) return undefined
        throw e
      })
      if (!s) return {}
      if (s.isDirectory() && !args.noPreserveRoot && (await isRootDirectory(s))) throw refuseRoot(shown)
      if (!s.isDirectory()) await removeFile(where)
      else if (args.recursive) await removeTree(where, signal)
      else {
        try {
          await fs.rmdir(where)
        } catch (e) {
          if (!isNotEmpty(e)) throw e
          throw Errors.make(
            "ENOTEMPTY",
            `cannot remove ${shown}: directory not empty (pass recursive to remove its contents too)`,
          )
        }
      }
      return {}
    })
  })

const isNotEmpty = (e: unknown) => ["ENOTEMPTY", "EEXIST"].includes((e as NodeJS.ErrnoException).code ?? "")

const removeFile = async (file: FsPath): Promise<void> => {
  try {
    await fs.unlink(file)
  } catch (e) {
    // Windows refuses to delete a read-only file: make it writable first, as rm -f does.
    if (process.platform !== "win32" || (e as NodeJS.ErrnoException).code !== "EPERM") throw e
    await fs.chmod(file, 0o666)
    await fs.unlink(file)
  }
}

/** Passes over a directory before giving up on one that keeps gaining entries while it is removed. */
const REMOVE_PASSES = 3

/**
 * Removes a tree one batch of entries at a time (opendir), files of a batch in parallel: no list of a
 * million names is ever built. One open directory per level of depth.
 */
const removeTree = async (dir: FsPath, signal: AbortSignal): Promise<void> => {
  for (let pass = 1; ; pass++) {
    const handle = await openDir(dir)
    try {
      for (let batch = await readBatch(handle); batch.length > 0; batch = await readBatch(handle)) {
        if (signal.aborted) return
        const subdirs: Array<FsPath> = []
        await Promise.all(
          batch.map(async (e) => {
            const where = join(dir, e.name)
            if (e.isDirectory) return void subdirs.push(where)
            await removeFile(where).catch(async (error: NodeJS.ErrnoException) => {
              if (error.code === "ENOENT") return
              // A directory the entry's type did not tell (file systems without d_type, Bun).
              if ((await fs.lstat(where).catch(() => undefined))?.isDirectory()) subdirs.push(where)
              else throw error
            })
          }),
        )
        for (const sub of subdirs) await removeTree(sub, signal)
      }
    } finally {
      await handle.close().catch(() => {})
    }
    try {
      return await fs.rmdir(dir)
    } catch (e) {
      // Entries removed while the directory was open can hide others from that pass: read it again.
      if (!isNotEmpty(e) || pass === REMOVE_PASSES) throw e
    }
  }
}

/** chmod: exactly these permission bits. */
export const chmod = (args: Operations.Args<"chmod">) =>
  attempt("set the mode of", args.path, async () => {
    const badMode = checkMode(args.mode, "set the mode of", Path.display(args.path))
    if (badMode) throw badMode
    await fs.chmod(toFs(args.path), args.mode)
    return {}
  })

/** rename: atomic within one file system (EXDEV across file systems). */
export const rename = (args: Operations.Args<"rename">) =>
  Effect.tryPromise({
    try: async () => {
      await fs.rename(toFs(args.from), toFs(args.to))
      return {}
    },
    catch: (cause) => {
      const [from, to] = [quoted(args.from), quoted(args.to)]
      const e = fsError(`rename ${from} to`, Path.display(args.to), cause)
      return (cause as NodeJS.ErrnoException).code === "ENOENT"
        ? Errors.make("ENOENT", `cannot rename ${from} to ${to}: no such file or directory`)
        : e
    },
  })
