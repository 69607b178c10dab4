/**
 * The fixed-VHD footer (Microsoft "Virtual Hard Disk Image Format Specification" v1.0): a fixed VHD is the raw
 * disk followed by this 512-byte footer, which Hyper-V, qemu (`vpc`) and Azure read.
 */

/** VHD spec: the footer is one 512-byte sector at the end of the file. */
export const FOOTER_SIZE = 512
/** VHD spec: footer cookie. */
export const COOKIE = "conectix"
/** VHD spec: disk type 2 = fixed hard disk. */
export const DISK_TYPE_FIXED = 2
/** VHD spec: timestamps count seconds from 2000-01-01 00:00:00 UTC. */
const VHD_EPOCH_MS = Date.UTC(2000, 0, 1)
/** VHD spec: the largest geometry, 65535 cylinders × 16 heads × 255 sectors. */
export const MAX_CHS_SECTORS = 65535 * 16 * 255

/** Cylinders, heads and sectors per track as the footer stores them. */
export interface Geometry {
  readonly cylinders: number
  readonly heads: number
  readonly sectorsPerTrack: number
}

/** The CHS geometry for a disk of `totalSectors`, by the algorithm in the VHD spec's appendix. */
export const geometry = (totalSectors: number): Geometry => {
  const total = Math.min(totalSectors, MAX_CHS_SECTORS)
  let sectorsPerTrack: number
  let heads: number
  let cylinderTimesHeads: number
  if (total >= 65535 * 16 * 63) {
    sectorsPerTrack = 255
    heads = 16
    cylinderTimesHeads = Math.floor(total / sectorsPerTrack)
  } else {
    sectorsPerTrack = 17
    cylinderTimesHeads = Math.floor(total / sectorsPerTrack)
    heads = Math.max(4, Math.floor((cylinderTimesHeads + 1023) / 1024))
    if (cylinderTimesHeads >= heads * 1024 || heads > 16) {
      sectorsPerTrack = 31
      heads = 16
      cylinderTimesHeads = Math.floor(total / sectorsPerTrack)
    }
    if (cylinderTimesHeads >= heads * 1024) {
      sectorsPerTrack = 63
      heads = 16
      cylinderTimesHeads = Math.floor(total / sectorsPerTrack)
    }
  }
  return { cylinders: Math.floor(cylinderTimesHeads / heads), heads, sectorsPerTrack }
}

/** Whether the geometry of a disk of `totalSectors` covers it exactly (so every reader agrees on its size). */
export const isChsExact = (totalSectors: number): boolean => {
  if (totalSectors >= MAX_CHS_SECTORS) return true // readers fall back to the footer's current size
  const g = geometry(totalSectors)
  return g.cylinders * g.heads * g.sectorsPerTrack === totalSectors
}

/**
 * The smallest sector count ≥ `totalSectors` that its CHS geometry covers exactly. Readers that size a VHD by
 * its geometry (Virtual PC, qemu for unknown creators) then see the same disk as Hyper-V, which uses the size.
 */
export const roundUpToChs = (totalSectors: number): number => {
  let n = totalSectors
  while (!isChsExact(n)) n++
  return n
}

/** What the footer describes. */
export interface FooterOptions {
  /** Disk size in bytes (the raw data before the footer). */
  readonly size: number
  /** 16 bytes identifying this disk. */
  readonly uniqueId: Uint8Array
  readonly timestamp?: Date
}

/** The 512-byte fixed-VHD footer for a disk of `size` bytes, checksum included. */
export const footer = (options: FooterOptions): Uint8Array => {
  const b = Buffer.alloc(FOOTER_SIZE)
  b.write(COOKIE, 0, "latin1")
  b.writeUInt32BE(0x00000002, 8) // VHD spec: features, bit 1 "reserved" must be set
  b.writeUInt32BE(0x00010000, 12) // VHD spec: file format version 1.0
  b.writeBigUInt64BE(0xffffffffffffffffn, 16) // VHD spec: data offset, all ones for fixed disks
  const ms = (options.timestamp ?? new Date()).getTime()
  b.writeUInt32BE(Math.max(0, Math.floor((ms - VHD_EPOCH_MS) / 1000)) >>> 0, 24)
  b.write("brtt", 28, "latin1") // creator application: Cuvette
  b.writeUInt32BE(0x00010000, 32) // creator version
  b.write("Wi2k", 36, "latin1") // VHD spec: creator host OS (Windows), what most writers use
  b.writeBigUInt64BE(BigInt(options.size), 40) // original size
  b.writeBigUInt64BE(BigInt(options.size), 48) // current size
  const g = geometry(Math.floor(options.size / 512))
  b.writeUInt16BE(g.cylinders, 56)
  b[58] = g.heads
  b[59] = g.sectorsPerTrack
  b.writeUInt32BE(DISK_TYPE_FIXED, 60)
  Buffer.from(options.uniqueId).copy(b, 68, 0, 16)
  b.writeUInt32BE(checksum(b), 64)
  return b
}

/** VHD spec: the one's complement of the byte sum of the footer with its checksum field taken as zero. */
export const checksum = (footerBytes: Uint8Array): number => {
  let sum = 0
  for (let i = 0; i < FOOTER_SIZE; i++) if (i < 64 || i >= 68) sum += footerBytes[i]!
  return ~sum >>> 0
}
