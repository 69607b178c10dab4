/**
 * Wire paths (text or bytes, protocol's Path) as the file system takes them: a string, or a Buffer
 * for a name that is not UTF-8, which Node's fs passes to the kernel byte for byte. Text paths keep
 * node:path's rules (Windows separators included); byte paths only occur on POSIX systems.
 */
import { Errors, Path } from "@cuvette/protocol"
import * as path from "node:path"

/** What node:fs accepts as a path. */
export type FsPath = string | Buffer

const SLASH = 0x2f

/**
 * The fs form of a wire path. Windows names are UTF-16: bytes that are not UTF-8 cannot name a file
 * there (Node would read them as UTF-8 and make U+FFFD of them), so they fail with EINVAL.
 */
export const toFs = (p: Path.Path, platform: NodeJS.Platform = process.platform): FsPath => {
  if (typeof p === "string") return p
  const text = Path.fromBytes(p)
  if (typeof text === "string") return text
  if (platform === "win32")
    throw Errors.make("EINVAL", `${Path.display(p)} is not UTF-8: Windows file names are Unicode`)
  return Buffer.from(p.buffer, p.byteOffset, p.byteLength)
}

/** The wire form of an fs path or name: text when it is valid UTF-8. */
export const fromFs = (p: FsPath): Path.Path => (typeof p === "string" ? p : Path.fromBytes(p))

/** `name` inside `dir`. */
export const join = (dir: FsPath, name: FsPath): FsPath => {
  if (typeof dir === "string" && typeof name === "string") return path.join(dir, name)
  const d = Buffer.from(Path.toBytes(dir))
  const slash = d.byteLength > 0 && d[d.byteLength - 1] !== SLASH ? [Buffer.from("/")] : []
  return Buffer.concat([d, ...slash, Buffer.from(Path.toBytes(name))])
}

/** The directory part of `p`. */
export const dirname = (p: FsPath): FsPath => {
  if (typeof p === "string") return path.dirname(p)
  let end = p.byteLength
  while (end > 1 && p[end - 1] === SLASH) end--
  const slash = p.lastIndexOf(SLASH, end - 1)
  return slash < 0 ? "." : slash === 0 ? "/" : p.subarray(0, slash)
}

/**
 * True when `p` resolves to the root directory of this system (`/`, `//`, `/tmp/..`, `.` in `/`),
 * judged from the text and the working directory alone: no file system call.
 */
export const resolvesToRoot = (p: Path.Path): boolean => {
  // Latin-1 keeps every byte one character, so `/` and `..` are found in a name that is not UTF-8.
  const text = typeof p === "string" ? p : Buffer.from(p).toString("latin1")
  const resolved = path.resolve(text)
  return resolved === path.parse(resolved).root
}
