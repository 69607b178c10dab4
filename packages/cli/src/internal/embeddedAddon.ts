// The native addon inside a single-file cuvette (scripts/build-cli.mjs). Bun embeds a .node imported by a literal
// path, but on Windows it cannot load one through a computed path, which is how @cuvette/native's loader loads it.
// So the executable copies its embedded addon to a file once (named by its content hash, reused by every later
// start) and points the loader there through CUVETTE_NATIVE_BINDING.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

/** A copy someone else could have written or could still change is never loaded (the temp dir may be shared). */
const trusted = (file: string): boolean => {
  const st = fs.lstatSync(file)
  if (!st.isFile()) return false
  if (process.getuid === undefined) return true // Windows: the temp directory is the user's own
  return st.uid === process.getuid() && (st.mode & 0o022) === 0
}

/** Copies the embedded addon at `embedded` to `dir` unless a copy with that `hash` is there; returns the copy's path. */
export const extract = (embedded: string, hash: string, dir: string = os.tmpdir()): string => {
  const user = process.getuid?.()
  const file = path.join(dir, `cuvette_native-${user !== undefined ? `${user}-` : ""}${hash}.node`)
  if (!fs.existsSync(file)) {
    // Created exclusively (never through someone's symlink) and renamed, so no start loads half a file.
    const tmp = `${file}.${process.pid}.tmp`
    fs.writeFileSync(tmp, fs.readFileSync(embedded), { mode: 0o755, flag: "wx" })
    try {
      fs.renameSync(tmp, file)
    } catch (error) {
      // Another start won the race (Windows refuses to replace a loaded DLL): theirs is the same bytes.
      fs.rmSync(tmp, { force: true })
      if (!fs.existsSync(file)) throw error
    }
  }
  if (!trusted(file)) throw new Error(`${file} is not a file of this user's that only it can write`)
  return file
}

/** Makes @cuvette/native load the embedded addon, unless the user's CUVETTE_NATIVE_BINDING names another. */
export const use = (embedded: string, hash: string): void => {
  if (process.env.CUVETTE_NATIVE_BINDING) return
  try {
    process.env.CUVETTE_NATIVE_BINDING = extract(embedded, hash)
  } catch {
    // No usable temp directory: the loader then looks beside the executable and says where it looked.
  }
}
