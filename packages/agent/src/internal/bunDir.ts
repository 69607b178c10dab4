/**
 * Directories read a few entries at a time under Bun on Linux. Bun's fs.opendir reads the whole
 * directory on its first read (a million entries: some 270 MiB in the agent before one is sent), so
 * there the agent reads it through libc's opendir/readdir (bun:ffi), an entry at a time as Node's
 * fs.opendir does. Anywhere else, or where libc cannot be loaded, `open` returns undefined.
 */
import { createRequire } from "node:module"

// The bits of bun:ffi used here, declared locally so the package typechecks against Node's types.
type Pointer = number
interface Ffi {
  dlopen(
    name: string,
    symbols: Record<string, { readonly args: ReadonlyArray<string>; readonly returns: string }>,
  ): {
    symbols: {
      opendir(path: Uint8Array): Pointer | null
      readdir(dir: Pointer): Pointer | null
      closedir(dir: Pointer): number
      __errno_location(): Pointer
    }
  }
  toBuffer(ptr: Pointer, byteOffset: number, byteLength: number): Buffer
}

const symbols = {
  opendir: { args: ["ptr"], returns: "ptr" },
  readdir: { args: ["ptr"], returns: "ptr" },
  closedir: { args: ["ptr"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
} as const

// struct dirent (glibc and musl, x86-64 and arm64): d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name.
const D_RECLEN = 16
const D_NAME = 19

type Libc = ReturnType<Ffi["dlopen"]>["symbols"] & { readonly ffi: Ffi }
let libc: Libc | null | undefined

const load = (): Libc | null => {
  if (libc !== undefined) return libc
  libc = null
  if (process.platform !== "linux" || !process.versions.bun) return libc
  try {
    const ffi = createRequire(import.meta.url)("bun:ffi") as Ffi
    for (const name of ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`]) {
      try {
        libc = { ffi, ...ffi.dlopen(name, symbols).symbols }
        break
      } catch {
        // the other libc
      }
    }
  } catch {
    // no bun:ffi: fs.opendir it is
  }
  return libc
}

/** An open directory: `read` gives the next name (bytes; never . or ..), null at the end. */
export interface Directory {
  read(): Promise<Buffer | null>
  close(): Promise<void>
}

/**
 * Opens `path` through libc, or undefined when this runtime has no need or no way to (the caller then
 * uses fs.opendir, which also reports why a directory cannot be opened).
 */
export const open = (path: string | Buffer): Directory | undefined => {
  const c = load()
  if (!c) return undefined
  const dir = c.opendir(Buffer.concat([Buffer.from(path), Buffer.of(0)]))
  if (!dir) return undefined
  const errno = c.ffi.toBuffer(c.__errno_location(), 0, 4)
  let closed = false
  return {
    read: () => {
      while (!closed) {
        // readdir says end and failure alike with NULL; errno tells them apart.
        errno.writeInt32LE(0)
        const entry = c.readdir(dir)
        if (!entry) {
          const code = errno.readInt32LE()
          return code === 0
            ? Promise.resolve(null)
            : Promise.reject(Object.assign(new Error(`readdir failed (errno ${code})`), { code: "EIO" }))
        }
        const reclen = c.ffi.toBuffer(entry, D_RECLEN, 2).readUInt16LE()
        const field = c.ffi.toBuffer(entry, D_NAME, reclen - D_NAME)
        // Copied: libc reuses its buffer on the next readdir.
        const name = Buffer.from(field.subarray(0, field.indexOf(0)))
        if (name.length === 1 && name[0] === 0x2e) continue
        if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) continue
        return Promise.resolve(name)
      }
      return Promise.resolve(null)
    },
    close: () => {
      if (!closed) c.closedir(dir)
      closed = true
      return Promise.resolve()
    },
  }
}
