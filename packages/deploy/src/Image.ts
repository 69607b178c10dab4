/**
 * Writes a disk image holding one FAT32 partition: protective MBR + GPT with one basic-data partition (named
 * `CIDATA` by default), FAT32 with a volume label (`cidata` by default), long names, subdirectories and
 * timestamps, as a raw image or a fixed VHD. File contents are streamed from their sources straight into the
 * image file in 1 MiB chunks, so memory use does not grow with the image; zero regions are never written.
 */
import { Data, Effect } from "effect"
import * as fs from "node:fs/promises"
import * as Fat32 from "./Fat32.js"
import * as Gpt from "./Gpt.js"
import { errorText } from "./internal/errorText.js"
import { guidFromBytes, idBytes } from "./internal/ids.js"
import * as Tree from "./internal/tree.js"
import * as Vhd from "./Vhd.js"

/** Output formats: a raw disk, or a fixed VHD (the raw disk plus a 512-byte footer) for Hyper-V. */
export type Format = "raw" | "vhd"

/** One file to put on the disk. */
export interface File {
  /** Path inside the volume, "/"-separated ("lib/libc.so.6"); parent directories are created. */
  readonly path: string
  /** A host file path (streamed) or the bytes themselves. */
  readonly source: string | Uint8Array
  /** Only the owner-write bit matters: without it the file gets FAT's read-only attribute. */
  readonly mode?: number
  /** Modification time; defaults to the host file's mtime, or the image's `mtime` for bytes. */
  readonly mtime?: Date
}

/** What to write. */
export interface Options {
  readonly out: string
  readonly files: ReadonlyArray<File>
  /** Defaults to "raw". */
  readonly format?: Format
  /** FAT volume label; defaults to "cidata" (what cloud-init and `mount LABEL=cidata` look for). */
  readonly label?: string
  /** GPT partition name; defaults to "CIDATA", as petri names it. */
  readonly partitionName?: string
  /** Disk size in bytes (a multiple of 512). Derived from the contents when omitted. VHDs round up to a CHS-exact size. */
  readonly size?: number
  /** Time for directories and byte sources without their own mtime; defaults to now. */
  readonly mtime?: Date
  /** Derive GUIDs, volume id and VHD id from this string instead of randomness: same inputs, same bytes. */
  readonly seed?: string
  /** Called as bytes are written: (bytes written so far, bytes to write in all). */
  readonly onProgress?: (written: number, total: number) => void
}

/** What was written. */
export interface Result {
  readonly out: string
  /** Disk size in bytes as a VM sees it (the file is 512 bytes longer for a VHD). */
  readonly size: number
  readonly format: Format
}

/** Why writing an image failed. */
export type ErrorReason = "InvalidInput" | "TooSmall" | "SourceUnreadable" | "WriteFailed" | "Interrupted"

/** An image could not be written: `reason` says which kind of failure, `detail` what and where. */
export class ImageError extends Data.TaggedError("ImageError")<{
  readonly reason: ErrorReason
  readonly out: string
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `cannot write image ${this.out}: ${this.detail}`
  }
}

const SECTOR = Gpt.SECTOR_SIZE
const MIB_SECTORS = 2048
const CHUNK = 1024 * 1024
const CLUSTER_CHOICES = [1, 8, 16, 32, 64] // fatgen103's table, smallest first
const MAX_VOLUME_SECTORS = 0xffffffff // FAT32 BPB: 32-bit sector count

interface Plan {
  readonly totalSectors: number
  readonly gpt: Gpt.Layout
  readonly fat: Fat32.Layout
}

const roundUp = (n: number, m: number) => Math.ceil(n / m) * m

const planFor = (totalSectors: number, sectorsPerCluster: number): Plan => {
  const gpt = Gpt.layout(totalSectors)
  const fat = Fat32.layout(gpt.partitionLast - gpt.partitionFirst + 1, sectorsPerCluster)
  return { totalSectors, gpt, fat }
}

/** The smallest disk (whole MiB, CHS-exact for VHD) that holds the contents as FAT32. */
const derivedPlan = (root: Tree.DirNode, format: Format): Plan => {
  for (const spc of CLUSTER_CHOICES) {
    const need = Math.max(Tree.clustersNeeded(root, spc * SECTOR), Fat32.MIN_CLUSTERS)
    const volume = Fat32.volumeSectorsFor(need, spc)
    if (Fat32.sectorsPerClusterFor(volume) > spc && spc !== 64) continue
    let total = roundUp(volume + Gpt.overheadSectors, MIB_SECTORS)
    for (;;) {
      const sized = format === "vhd" ? Vhd.roundUpToChs(total) : total
      const plan = planFor(sized, spc)
      if (plan.fat.clusterCount >= need) return plan
      total += MIB_SECTORS
    }
  }
  throw new Error("unreachable: 32 KiB clusters always fit")
}

const explicitPlan = (root: Tree.DirNode, format: Format, size: number, out: string): Plan => {
  if (!Number.isSafeInteger(size) || size <= 0 || size % SECTOR !== 0)
    throw new ImageError({
      reason: "InvalidInput",
      out,
      detail: `size ${size} is not a positive multiple of 512 bytes`,
    })
  const total = format === "vhd" ? Vhd.roundUpToChs(size / SECTOR) : size / SECTOR
  const minimum = () => derivedPlan(root, format).totalSectors * SECTOR
  if (total <= Gpt.overheadSectors)
    throw new ImageError({
      reason: "TooSmall",
      out,
      detail: `size ${size} is too small: use at least ${minimum()} bytes`,
    })
  const volume = Gpt.layout(total).partitionLast - Gpt.PARTITION_START + 1
  if (volume > MAX_VOLUME_SECTORS)
    throw new ImageError({
      reason: "InvalidInput",
      out,
      detail: `size ${size} exceeds FAT32's 2 TiB volume limit`,
    })
  let spc = Fat32.sectorsPerClusterFor(volume)
  while (spc > 1 && Fat32.layout(volume, spc).clusterCount < Fat32.MIN_CLUSTERS) spc /= 2
  const plan = planFor(total, spc)
  const need = Tree.clustersNeeded(root, spc * SECTOR)
  if (plan.fat.clusterCount < Fat32.MIN_CLUSTERS || plan.fat.clusterCount < need) {
    const why =
      plan.fat.clusterCount < Fat32.MIN_CLUSTERS
        ? `FAT32 needs at least ${Fat32.MIN_CLUSTERS} clusters and ${size} bytes give ${plan.fat.clusterCount}`
        : `the files need ${need} clusters of ${spc * SECTOR} bytes and ${size} bytes give ${plan.fat.clusterCount}`
    throw new ImageError({
      reason: "TooSmall",
      out,
      detail: `size ${size} is too small: ${why}; use at least ${minimum()} bytes, or omit the size`,
    })
  }
  return plan
}

const resolveInputs = async (options: Options, defaultTime: Date): Promise<Array<Tree.Input>> =>
  Promise.all(
    options.files.map(async (f): Promise<Tree.Input> => {
      const readOnly = f.mode !== undefined && (f.mode & 0o200) === 0
      if (typeof f.source !== "string")
        return {
          path: f.path,
          size: f.source.byteLength,
          source: f.source,
          mtime: f.mtime ?? defaultTime,
          readOnly,
        }
      let stat
      try {
        stat = await fs.stat(f.source)
      } catch (cause) {
        throw new ImageError({
          reason: "SourceUnreadable",
          out: options.out,
          detail: `cannot read ${f.source} (for ${f.path}): ${errorText(cause)}`,
          cause,
        })
      }
      if (!stat.isFile())
        throw new ImageError({
          reason: "SourceUnreadable",
          out: options.out,
          detail: `${f.source} (for ${f.path}) is not a regular file`,
        })
      return { path: f.path, size: stat.size, source: f.source, mtime: f.mtime ?? stat.mtime, readOnly }
    }),
  )

const fatBytes = (fat: Uint32Array): Buffer => {
  const b = Buffer.alloc(fat.length * 4)
  for (let i = 0; i < fat.length; i++) b.writeUInt32LE(fat[i]!, i * 4)
  return b
}

/** Writes the image; rejects with ImageError. */
export const write = async (options: Options, signal?: AbortSignal): Promise<Result> => {
  const format = options.format ?? "raw"
  const label = options.label ?? "cidata"
  const out = options.out
  const now = options.mtime ?? new Date()
  const labelWhy = Fat32.invalidLabelReason(label)
  if (labelWhy) throw new ImageError({ reason: "InvalidInput", out, detail: `label "${label}": ${labelWhy}` })
  const partitionName = options.partitionName ?? "CIDATA"
  const nameWhy = Gpt.invalidNameReason(partitionName)
  if (nameWhy) throw new ImageError({ reason: "InvalidInput", out, detail: `partition name: ${nameWhy}` })

  let root: Tree.DirNode
  try {
    root = Tree.build(await resolveInputs(options, now), now)
  } catch (e) {
    if (e instanceof Tree.TreeError) throw new ImageError({ reason: "InvalidInput", out, detail: e.message })
    throw e
  }
  const plan =
    options.size === undefined ? derivedPlan(root, format) : explicitPlan(root, format, options.size, out)
  const { gpt, fat } = plan
  const clusterBytes = fat.sectorsPerCluster * SECTOR
  const fatTable = Tree.allocate(root, clusterBytes, fat.clusterCount)
  const used =
    Tree.directories(root).reduce((n, d) => n + d.clusters, 0) +
    Tree.files(root).reduce((n, f) => n + Math.ceil(f.size / clusterBytes), 0)

  const partition: Gpt.Partition = {
    diskGuid: guidFromBytes(idBytes(options.seed, "disk")),
    partitionGuid: guidFromBytes(idBytes(options.seed, "partition")),
    name: partitionName,
  }
  const entryArray = Gpt.entries(gpt, partition)
  const volumeOffset = gpt.partitionFirst * SECTOR
  const clusterOffset = (c: number) =>
    volumeOffset + (fat.dataStart + (c - 2) * fat.sectorsPerCluster) * SECTOR
  const boot = Fat32.bootSector({
    layout: fat,
    hiddenSectors: gpt.partitionFirst,
    volumeId: idBytes(options.seed, "volume").readUInt32LE(0),
    label,
  })
  const info = Fat32.fsInfoSector(fat.clusterCount - used, used + 2)
  const fatImage = fatBytes(fatTable)
  const diskBytes = plan.totalSectors * SECTOR

  // Everything but file contents, as (offset, bytes): small, proportional to the number of files and clusters.
  const pieces: Array<readonly [number, Uint8Array]> = [
    [0, Gpt.protectiveMbr(plan.totalSectors)],
    [SECTOR, Gpt.header(gpt, partition, "primary", entryArray)],
    [2 * SECTOR, entryArray],
    [volumeOffset, boot],
    [volumeOffset + Fat32.FSINFO_SECTOR * SECTOR, info],
    [volumeOffset + Fat32.BACKUP_BOOT_SECTOR * SECTOR, boot],
    [volumeOffset + (Fat32.BACKUP_BOOT_SECTOR + 1) * SECTOR, info],
    [volumeOffset + fat.reservedSectors * SECTOR, fatImage],
    [volumeOffset + (fat.reservedSectors + fat.fatSectors) * SECTOR, fatImage],
  ]
  const dirs = Tree.directories(root)
  const parents = new Map<Tree.DirNode, Tree.DirNode>()
  for (const d of dirs) for (const c of d.children) if (c.kind === "dir") parents.set(c, d)
  for (const d of dirs)
    pieces.push([
      clusterOffset(d.firstCluster),
      Tree.renderDirectory(d, parents.get(d), clusterBytes, d === root ? label : undefined),
    ])
  pieces.push([(plan.totalSectors - Gpt.BACKUP_SECTORS) * SECTOR, entryArray])
  pieces.push([(plan.totalSectors - 1) * SECTOR, Gpt.header(gpt, partition, "backup", entryArray)])
  if (format === "vhd")
    pieces.push([
      diskBytes,
      Vhd.footer({ size: diskBytes, uniqueId: idBytes(options.seed, "vhd"), timestamp: now }),
    ])

  const files = Tree.files(root)
  const total = pieces.reduce((n, [, b]) => n + b.length, 0) + files.reduce((n, f) => n + f.size, 0)
  let written = 0
  const progress = (n: number) => {
    written += n
    options.onProgress?.(written, total)
  }
  const fail = (reason: ErrorReason, detail: string, cause?: unknown) =>
    new ImageError({ reason, out, detail, ...(cause === undefined ? {} : { cause }) })

  let fh: fs.FileHandle
  try {
    fh = await fs.open(out, "w")
  } catch (cause) {
    throw fail("WriteFailed", `cannot create it: ${errorText(cause)}`, cause)
  }
  const put = async (bytes: Uint8Array, position: number) => {
    if (signal?.aborted) throw fail("Interrupted", "interrupted")
    let done = 0
    while (done < bytes.length) {
      const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done)
      done += bytesWritten
    }
    progress(bytes.length)
  }
  try {
    // extend first: every region never written (free clusters, slack, gaps) reads as zeros
    await fh.truncate(diskBytes + (format === "vhd" ? Vhd.FOOTER_SIZE : 0))
    for (const [offset, bytes] of pieces) await put(bytes, offset)
    const chunk = Buffer.allocUnsafe(CHUNK)
    for (const f of files) {
      if (f.size === 0) continue
      const at = clusterOffset(f.firstCluster)
      if (typeof f.source !== "string") {
        for (let off = 0; off < f.size; off += CHUNK) await put(f.source.subarray(off, off + CHUNK), at + off)
        continue
      }
      let src: fs.FileHandle
      try {
        src = await fs.open(f.source, "r")
      } catch (cause) {
        throw fail("SourceUnreadable", `cannot read ${f.source}: ${errorText(cause)}`, cause)
      }
      try {
        for (let off = 0; off < f.size; ) {
          const { bytesRead } = await src.read(chunk, 0, Math.min(CHUNK, f.size - off), off)
          if (bytesRead === 0) throw fail("SourceUnreadable", `${f.source} shrank while it was being copied`)
          await put(chunk.subarray(0, bytesRead), at + off)
          off += bytesRead
        }
      } finally {
        await src.close()
      }
    }
    await fh.close()
  } catch (e) {
    await fh.close().catch(() => undefined)
    await fs.rm(out, { force: true }).catch(() => undefined) // a half-written image is worse than none
    if (e instanceof ImageError) throw e
    throw fail("WriteFailed", errorText(e), e)
  }
  return { out, size: diskBytes, format }
}

/** Effect variant of write: fails with ImageError; interruption stops the copy and removes the partial file. */
export const make = (options: Options): Effect.Effect<Result, ImageError> =>
  Effect.tryPromise({
    try: (signal) => write(options, signal),
    catch: (e) =>
      e instanceof ImageError
        ? e
        : new ImageError({ reason: "WriteFailed", out: options.out, detail: errorText(e), cause: e }),
  })
