/**
 * File handlers: readFile, writeFile, stat, list, mkdir, remove, rename. Bodies are streamed through
 * the operation's channels with their credit flow control, so a 10 GiB copy never sits in memory.
 */
import { Errors, type Operations, type Session } from "@cuvette/protocol"
import { Effect, Exit } from "effect"
import { randomBytes } from "node:crypto"
import type * as fsTypes from "node:fs"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { fsError } from "../internal/errors.js"

/** Bytes per read: one protocol data frame (DEFAULT_CHUNK), in a fresh buffer each time. */
const READ_CHUNK = 256 * 1024

const fileType = (s: fsTypes.Stats): Operations.Stat["type"] =>
  s.isFile() ? "file" : s.isDirectory() ? "directory" : s.isSymbolicLink() ? "symlink" : "other"

const attempt = <A>(what: string, where: string, f: (signal: AbortSignal) => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => fsError(what, where, cause) })

/** readFile: Opened {size, mode} first, then the bytes on stdout, at most `length` from `offset`. */
export const readFile = (args: Operations.Args<"readFile">, call: Session.ServerCall<"readFile">) =>
  Effect.gen(function* () {
    const handle = yield* Effect.acquireRelease(
      attempt("read", args.path, () => fs.open(args.path, "r")),
      (h) => Effect.promise(() => h.close().catch(() => {})),
    )
    const st = yield* attempt("read", args.path, () => handle.stat())
    if (st.isDirectory())
      return yield* Effect.fail(
        Errors.make("EISDIR", `cannot read ${args.path}: it is a directory (use list)`),
      )
    const offset = args.offset ?? 0
    const available = Math.max(0, st.size - offset)
    const size = args.length === undefined ? available : Math.min(args.length, available)
    call.emit({ _tag: "Opened", size, mode: st.mode & 0o7777 })
    // Special files (/proc, devices) report size 0: read until EOF unless a length bounds it.
    const limit = args.length ?? (st.isFile() ? available : Number.POSITIVE_INFINITY)
    return yield* attempt("read", args.path, async (signal) => {
      let done = 0
      let position = offset
      while (done < limit && !signal.aborted) {
        // A fresh buffer per chunk: the protocol queues it as is.
        const buffer = Buffer.allocUnsafe(Math.min(READ_CHUNK, limit - done))
        const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, position)
        if (bytesRead === 0) break
        done += bytesRead
        position += bytesRead
        await call.stdout.write(bytesRead === buffer.byteLength ? buffer : buffer.subarray(0, bytesRead))
      }
      return { bytes: done }
    })
  })

const tempName = (target: string) =>
  path.join(path.dirname(target), `.${path.basename(target)}.cuvette-${randomBytes(6).toString("hex")}`)

/**
 * writeFile: the body arrives on stdin. Atomic (default): written to `.<name>.cuvette-<random>` in the
 * same directory and renamed over the target, so readers see the old or the new file, never half of
 * one; the temporary file is removed on any failure, cancel or disconnect (scope finalizer).
 */
export const writeFile = (args: Operations.Args<"writeFile">, call: Session.ServerCall<"writeFile">) =>
  Effect.gen(function* () {
    const target = args.path
    const atomic = args.atomic ?? true
    const dir = path.dirname(target)
    if (args.createParents)
      yield* attempt("create the parent directories of", target, () => fs.mkdir(dir, { recursive: true }))
    const existing = yield* Effect.promise(() => fs.stat(target).catch(() => undefined))
    if (existing?.isDirectory())
      return yield* Effect.fail(Errors.make("EISDIR", `cannot write ${target}: it is a directory`))
    // An existing file keeps its mode unless one is given; a new one gets `mode` or 0644.
    const mode = args.mode ?? (existing ? existing.mode & 0o7777 : 0o644)
    const file = atomic ? tempName(target) : target
    const handle = yield* Effect.acquireRelease(
      attempt("write into", target, () => fs.open(file, atomic ? "wx" : "w", mode)),
      (h, exit) =>
        Effect.promise(async () => {
          await h.close().catch(() => {})
          // Failed, cancelled or the client went away: leave the destination as it was.
          if (atomic && Exit.isFailure(exit)) await fs.rm(file, { force: true }).catch(() => {})
        }),
    )
    const bytes = yield* attempt("write", target, async (signal) => {
      let n = 0
      for await (const chunk of call.stdin) {
        if (signal.aborted) break
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
          `write of ${target} incomplete: expected ${args.size} bytes, received ${bytes}; the destination was left unchanged${atomic ? "" : " (non-atomic: it holds the partial data)"}`,
        ),
      )
    // umask applies to open(); set the bits asked for explicitly.
    yield* attempt("set the mode of", target, () => handle.chmod(mode))
    if (atomic) {
      if (existing && process.platform !== "win32")
        yield* Effect.promise(() => handle.chown(existing.uid, existing.gid).catch(() => {}))
      yield* attempt("replace", target, () => fs.rename(file, target))
    }
    return { bytes }
  })

/** stat: follows symlinks unless `follow` is false (then a symlink reports its target path). */
export const stat = (args: Operations.Args<"stat">) =>
  attempt("stat", args.path, async () => {
    const s = args.follow === false ? await fs.lstat(args.path) : await fs.stat(args.path)
    const target = s.isSymbolicLink() ? await fs.readlink(args.path) : undefined
    return {
      path: args.path,
      type: fileType(s),
      size: s.size,
      mode: s.mode & 0o7777,
      mtimeMs: s.mtimeMs,
      uid: s.uid,
      gid: s.gid,
      ...(target !== undefined ? { target } : {}),
    }
  })

/** list: the entries of a directory, sorted by name; symlinks are reported as such. */
export const list = (args: Operations.Args<"list">) =>
  attempt("list", args.path, async () => {
    const names = (await fs.readdir(args.path)).sort()
    const entries = await Promise.all(
      names.map(async (name) => {
        const s = await fs.lstat(path.join(args.path, name)).catch(() => undefined)
        return s
          ? { name, type: fileType(s), size: s.size, mode: s.mode & 0o7777, mtimeMs: s.mtimeMs }
          : // Removed between readdir and lstat: still listed, without details.
            { name, type: "other" as const, size: 0, mode: 0, mtimeMs: 0 }
      }),
    )
    return { entries }
  })

/** mkdir: `parents` creates missing ancestors and accepts an existing directory. */
export const mkdir = (args: Operations.Args<"mkdir">) =>
  attempt("create directory", args.path, async () => {
    await fs.mkdir(args.path, { recursive: args.parents ?? false, mode: args.mode ?? 0o755 })
    return {}
  })

/** remove: a directory needs `recursive` unless empty (then ENOTEMPTY); `force` ignores a missing path. */
export const remove = (args: Operations.Args<"remove">) =>
  attempt("remove", args.path, async () => {
    const s = await fs.lstat(args.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT" && args.force) return undefined
      throw e
    })
    if (!s) return {}
    if (s.isDirectory() && !args.recursive) {
      try {
        await fs.rmdir(args.path)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        if (code === "ENOTEMPTY" || code === "EEXIST")
          throw Errors.make(
            "ENOTEMPTY",
            `cannot remove ${args.path}: directory not empty (pass recursive to remove its contents too)`,
          )
        throw e
      }
      return {}
    }
    try {
      await fs.rm(args.path, { recursive: args.recursive ?? false, force: args.force ?? false })
    } catch (e) {
      // Bun's recursive rm on Windows fails with EFAULT where the file system lacks the delete semantics it
      // uses (seen under Wine; possibly older Windows): remove the tree one entry at a time instead.
      const code = (e as NodeJS.ErrnoException).code
      if (
        process.platform !== "win32" ||
        !args.recursive ||
        !["EFAULT", "EINVAL", "UNKNOWN"].includes(code ?? "")
      )
        throw e
      await removeTree(args.path)
    }
    return {}
  })

const removeTree = async (target: string): Promise<void> => {
  const s = await fs.lstat(target)
  if (!s.isDirectory()) return fs.unlink(target)
  for (const name of await fs.readdir(target)) await removeTree(path.join(target, name))
  await fs.rmdir(target)
}

/** rename: atomic within one file system (EXDEV across file systems). */
export const rename = (args: Operations.Args<"rename">) =>
  Effect.tryPromise({
    try: async () => {
      await fs.rename(args.from, args.to)
      return {}
    },
    catch: (cause) => {
      const e = fsError(`rename ${args.from} to`, args.to, cause)
      return (cause as NodeJS.ErrnoException).code === "ENOENT"
        ? Errors.make("ENOENT", `cannot rename ${args.from} to ${args.to}: no such file or directory`)
        : e
    },
  })
