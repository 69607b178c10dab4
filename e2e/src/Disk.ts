/**
 * Disk: the cidata disk the e2e guest mounts by label, built in one place so tests never care how.
 * Two writers: `mtools` (mkfs.fat + mcopy: a bare FAT32 volume, no partition table; the host has no
 * VFAT, so nothing is mounted) and `deploy` (@cuvette/deploy's `Image.write`: protective MBR + GPT +
 * FAT32, raw or fixed VHD, which is what users attach). Switching the default is a one-line change.
 */
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"

const run = promisify(execFile)

/** File name in the disk's root → contents (a string is written as UTF-8). */
export type DiskFiles = Readonly<Record<string, string | Uint8Array>>

/** How to build the disk. */
export interface DiskOptions {
  /** Defaults to `mtools`. */
  readonly writer?: "mtools" | "deploy"
  /** `vhd` (fixed VHD footer; QEMU's `vpc`) needs the `deploy` writer. Defaults to `raw`. */
  readonly format?: "raw" | "vhd"
  readonly sizeMiB?: number
}

/** The writer tests use unless they ask: flip to "deploy" once Image.write is the only path. */
export const defaultWriter: NonNullable<DiskOptions["writer"]> = "mtools"

const byteLength = (c: string | Uint8Array) => (typeof c === "string" ? Buffer.byteLength(c) : c.length)

/** Builds a FAT32 disk labelled `cidata` holding `files` in its root; returns `out`. */
export const buildDisk = async (
  files: DiskFiles,
  out: string,
  options: DiskOptions = {},
): Promise<string> => {
  for (const name of Object.keys(files)) {
    if (name.includes("/"))
      throw new Error(`buildDisk: "${name}": only files in the disk's root are supported`)
  }
  fs.rmSync(out, { force: true })
  fs.mkdirSync(path.dirname(out), { recursive: true })
  const writer = options.writer ?? defaultWriter
  if (writer === "deploy") {
    // Loaded on demand: the mtools path must work even where @cuvette/deploy is neither built nor
    // resolved from source (a plain `node` script without the @cuvette/source condition).
    const { Image } = await import("@cuvette/deploy")
    await Image.write({
      out,
      format: options.format ?? "raw",
      files: Object.entries(files).map(([name, contents]) => ({
        path: name,
        source: typeof contents === "string" ? Buffer.from(contents) : contents,
      })),
      ...(options.sizeMiB ? { size: options.sizeMiB * 2 ** 20 } : {}),
    })
    return out
  }
  if (options.format === "vhd")
    throw new Error("buildDisk: the mtools writer only makes raw images; use writer: deploy")
  // FAT32 needs at least 33 MiB worth of clusters; a Bun agent (~110 MB) needs 256.
  const total = Object.values(files).reduce((n, c) => n + byteLength(c), 0)
  const sizeMiB = options.sizeMiB ?? Math.max(64, Math.ceil((total * 1.2) / 2 ** 20) + 16)
  fs.writeFileSync(out, "")
  fs.truncateSync(out, sizeMiB * 2 ** 20)
  // mkfs.fat warns that lowercase labels are unusual; cloud-init looks for both cidata and CIDATA.
  await run("mkfs.fat", ["-F", "32", "-n", "cidata", out])
  const staging = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-e2e-disk-"))
  try {
    for (const [name, contents] of Object.entries(files)) {
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
