/**
 * Disk: the cidata disk the e2e guest mounts by label. Today a stand-in built with mkfs.fat + mtools
 * (the host has no VFAT, so nothing is mounted); when @burette/deploy's `Image.write` lands it replaces
 * the body of `buildDisk`, and every test keeps calling this one function.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"

const run = promisify(execFile)

/** File name in the disk's root → contents (a string is written as UTF-8). */
export type DiskFiles = Readonly<Record<string, string | Uint8Array>>

/** Builds a FAT32 disk labelled `cidata` holding `files` in its root; returns `out`. */
export const buildDisk = async (
  files: DiskFiles,
  out: string,
  options: { readonly sizeMiB?: number } = {},
): Promise<string> => {
  // FAT32 needs at least 33 MiB worth of clusters; a Bun agent (~110 MB) needs 256.
  const total = Object.values(files).reduce(
    (n, c) => n + (typeof c === "string" ? Buffer.byteLength(c) : c.length),
    0,
  )
  const sizeMiB = options.sizeMiB ?? Math.max(64, Math.ceil((total * 1.2) / 2 ** 20) + 16)
  fs.rmSync(out, { force: true })
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, "")
  fs.truncateSync(out, sizeMiB * 2 ** 20)
  // mkfs.fat warns that lowercase labels are unusual; cloud-init looks for both cidata and CIDATA.
  await run("mkfs.fat", ["-F", "32", "-n", "cidata", out])
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), "burette-e2e-disk-"))
  try {
    for (const [name, contents] of Object.entries(files)) {
      if (name.includes("/"))
        throw new Error(`buildDisk: "${name}": only files in the disk's root are supported`)
      const file = path.join(staging, name)
      fs.writeFileSync(file, contents)
      await run("mcopy", ["-i", out, "-m", file, `::${name}`])
    }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true })
  }
  return out
}

/** Lists the disk's root with mtools (host-side check that the files landed). */
export const listDisk = async (image: string): Promise<Array<string>> => {
  const { stdout } = await run("mdir", ["-i", image, "-b", "::"])
  return stdout
    .split("\n")
    .map((line) => line.trim().replace(/^::\//, ""))
    .filter((line) => line.length > 0)
}
