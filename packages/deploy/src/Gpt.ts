/**
 * GUID partition table pieces for a one-partition disk: the protective MBR, the primary and backup GPT headers
 * and the partition entry array (UEFI spec 2.10, §5.2–5.3). Pure functions returning sector-sized bytes.
 */
import { Data } from "effect"
import { crc32 } from "./internal/crc32.js"
import { guidToBytes } from "./internal/ids.js"

/** Bytes per logical sector; everything here assumes 512-byte sectors, as petri and cloud-init disks do. */
export const SECTOR_SIZE = 512
/** UEFI spec: the basic-data partition type, what Windows and Linux mount as FAT. */
export const BASIC_DATA_TYPE = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"
/** UEFI spec: the usual entry array, 128 entries of 128 bytes (32 sectors). */
export const ENTRY_COUNT = 128
export const ENTRY_SIZE = 128
/** Sectors the entry array occupies. */
export const ENTRY_SECTORS = (ENTRY_COUNT * ENTRY_SIZE) / SECTOR_SIZE
/** First partition sector: 1 MiB alignment, as fdisk, sgdisk and Windows place it. */
export const PARTITION_START = 2048
/** Sectors at the end of the disk taken by the backup entry array and the backup header. */
export const BACKUP_SECTORS = ENTRY_SECTORS + 1

/** A partition's name or GUID cannot be stored in a GPT. */
export class GptError extends Data.TaggedError("GptError")<{ readonly detail: string }> {
  override get message(): string {
    return `invalid GPT partition: ${this.detail}`
  }
}

/** Why `name` cannot be a GPT partition name (at most 36 UTF-16 code units), or undefined if it can. */
export const invalidNameReason = (name: string): string | undefined =>
  name.length > 36 ? `the name "${name}" is longer than 36 UTF-16 code units` : undefined

const guid = (value: string, what: string): Buffer => {
  const bytes = guidToBytes(value)
  if (bytes === undefined) throw new GptError({ detail: `${what} "${value}" is not a GUID` })
  return bytes
}

/** Where the single partition lies on a disk of `totalSectors` sectors. */
export interface Layout {
  readonly totalSectors: number
  readonly firstUsable: number
  readonly lastUsable: number
  readonly partitionFirst: number
  readonly partitionLast: number
}

/** The layout for a disk: one partition from 1 MiB to the last usable sector, as petri's agent disk has. */
export const layout = (totalSectors: number): Layout => {
  const firstUsable = 2 + ENTRY_SECTORS
  const lastUsable = totalSectors - BACKUP_SECTORS - 1
  return { totalSectors, firstUsable, lastUsable, partitionFirst: PARTITION_START, partitionLast: lastUsable }
}

/** Sectors a disk needs besides its partition: the MBR, both GPTs and the alignment gap. */
export const overheadSectors = PARTITION_START + BACKUP_SECTORS

/** The identity of the one partition. */
export interface Partition {
  readonly diskGuid: string
  readonly partitionGuid: string
  readonly name: string
  readonly typeGuid?: string
}

/** Sector 0: a protective MBR with one 0xEE partition covering the disk (UEFI spec §5.2.3). */
export const protectiveMbr = (totalSectors: number): Uint8Array => {
  const b = Buffer.alloc(SECTOR_SIZE)
  const e = 446 // MBR: first partition record
  b.set([0x00, 0x00, 0x02, 0x00], e) // not bootable; CHS of LBA 1
  b[e + 4] = 0xee // UEFI spec: GPT protective partition type
  b.set([0xff, 0xff, 0xff], e + 5) // CHS end: unrepresentable, as the spec asks
  b.writeUInt32LE(1, e + 8)
  b.writeUInt32LE(Math.min(totalSectors - 1, 0xffffffff), e + 12)
  b[510] = 0x55
  b[511] = 0xaa
  return b
}

/** The partition entry array (ENTRY_SECTORS sectors) holding the one partition. */
export const entries = (l: Layout, p: Partition): Uint8Array => {
  const b = Buffer.alloc(ENTRY_COUNT * ENTRY_SIZE)
  guid(p.typeGuid ?? BASIC_DATA_TYPE, "type GUID").copy(b, 0)
  guid(p.partitionGuid, "partition GUID").copy(b, 16)
  b.writeBigUInt64LE(BigInt(l.partitionFirst), 32)
  b.writeBigUInt64LE(BigInt(l.partitionLast), 40)
  // attributes (offset 48) stay 0; the name is UTF-16LE, at most 36 code units
  const nameWhy = invalidNameReason(p.name)
  if (nameWhy !== undefined) throw new GptError({ detail: nameWhy })
  b.write(p.name, 56, "utf16le")
  return b
}

/** The primary (at LBA 1) or backup (at the last LBA) header, CRCs computed. */
export const header = (
  l: Layout,
  p: Partition,
  which: "primary" | "backup",
  entryArray: Uint8Array,
): Uint8Array => {
  const b = Buffer.alloc(SECTOR_SIZE)
  const last = l.totalSectors - 1
  b.write("EFI PART", 0, "latin1")
  b.writeUInt32LE(0x00010000, 8) // UEFI spec: revision 1.0
  b.writeUInt32LE(92, 12) // header size
  const [my, alternate, entryLba] =
    which === "primary" ? [1, last, 2] : [last, 1, l.totalSectors - BACKUP_SECTORS]
  b.writeBigUInt64LE(BigInt(my), 24)
  b.writeBigUInt64LE(BigInt(alternate), 32)
  b.writeBigUInt64LE(BigInt(l.firstUsable), 40)
  b.writeBigUInt64LE(BigInt(l.lastUsable), 48)
  guid(p.diskGuid, "disk GUID").copy(b, 56)
  b.writeBigUInt64LE(BigInt(entryLba), 72)
  b.writeUInt32LE(ENTRY_COUNT, 80)
  b.writeUInt32LE(ENTRY_SIZE, 84)
  b.writeUInt32LE(crc32(entryArray), 88)
  b.writeUInt32LE(crc32(b.subarray(0, 92)), 16) // computed with its own field zero
  return b
}
