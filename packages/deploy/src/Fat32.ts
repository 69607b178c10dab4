/**
 * FAT32 on-disk structures (Microsoft "FAT: General Overview of On-Disk Format" v1.03, "fatgen103"): the volume
 * layout for a size and cluster size, the boot sector and FSInfo sector, 8.3 and long-name (VFAT) directory
 * entries and DOS timestamps. Pure functions; Image.ts puts them on a disk.
 */

/** fatgen103: a FAT32 volume has at least 65525 clusters; with fewer, every reader takes it for FAT16. */
export const MIN_CLUSTERS = 65525
/** fatgen103: cluster numbers stop below 0x0FFFFFF7 (bad cluster) minus the two reserved entries. */
export const MAX_CLUSTERS = 0x0ffffff5 - 2
/** Reserved sectors before the first FAT: 32, what fatgen103 recommends and mkfs.fat writes. */
export const RESERVED_SECTORS = 32
/** Sector of the FSInfo structure and of the backup boot sector, inside the reserved area (fatgen103). */
export const FSINFO_SECTOR = 1
export const BACKUP_BOOT_SECTOR = 6
/** Bytes per directory entry. */
export const DIR_ENTRY_SIZE = 32
/** fatgen103: end-of-chain marker and the values of FAT[0] / FAT[1] (media 0xF8, clean-shutdown bits set). */
export const END_OF_CHAIN = 0x0fffffff
export const FAT0 = 0x0ffffff8
export const FAT1 = 0x0fffffff
/** Directory entry attributes (fatgen103). */
export const ATTR_READ_ONLY = 0x01
export const ATTR_VOLUME_ID = 0x08
export const ATTR_DIRECTORY = 0x10
export const ATTR_ARCHIVE = 0x20
export const ATTR_LONG_NAME = 0x0f
/** Largest file FAT can hold: its size field is 32 bits. */
export const MAX_FILE_SIZE = 0xffffffff
/** Windows limit on a long name, in UTF-16 code units. */
export const MAX_LONG_NAME = 255

/** Where everything lies inside a FAT32 volume, in sectors from the volume's start. */
export interface Layout {
  readonly volumeSectors: number
  readonly sectorsPerCluster: number
  readonly reservedSectors: number
  readonly fatSectors: number
  readonly clusterCount: number
  /** First sector of cluster 2. */
  readonly dataStart: number
}

/** The cluster size fatgen103's table picks for a volume of `volumeSectors` 512-byte sectors, in sectors. */
export const sectorsPerClusterFor = (volumeSectors: number): number =>
  volumeSectors <= 532480
    ? 1
    : volumeSectors <= 16777216
      ? 8
      : volumeSectors <= 33554432
        ? 16
        : volumeSectors <= 67108864
          ? 32
          : 64

/**
 * The layout of a volume: FAT size solved so both FATs cover every cluster, and the data region aligned to
 * the cluster size (extra reserved sectors) so clusters line up with the 1 MiB-aligned partition.
 */
export const layout = (volumeSectors: number, sectorsPerCluster: number): Layout => {
  let fatSectors = 1
  for (;;) {
    const reservedSectors =
      RESERVED_SECTORS +
      ((sectorsPerCluster - ((RESERVED_SECTORS + 2 * fatSectors) % sectorsPerCluster)) % sectorsPerCluster)
    const dataStart = reservedSectors + 2 * fatSectors
    const clusterCount = Math.max(0, Math.floor((volumeSectors - dataStart) / sectorsPerCluster))
    const needed = Math.ceil(((clusterCount + 2) * 4) / 512)
    if (needed <= fatSectors)
      return { volumeSectors, sectorsPerCluster, reservedSectors, fatSectors, clusterCount, dataStart }
    fatSectors = needed
  }
}

/** The volume's sectors needed for `clusterCount` clusters of `sectorsPerCluster` sectors (inverse of layout). */
export const volumeSectorsFor = (clusterCount: number, sectorsPerCluster: number): number => {
  const fatSectors = Math.ceil(((clusterCount + 2) * 4) / 512)
  // alignment padding is at most one cluster; layout() settles the exact figure
  return RESERVED_SECTORS + 2 * fatSectors + (clusterCount + 1) * sectorsPerCluster
}

/** Identity written into the boot sector. */
export interface BootOptions {
  readonly layout: Layout
  /** Sectors before the volume on the disk (the partition's first LBA). */
  readonly hiddenSectors: number
  readonly volumeId: number
  /** Volume label, 1–11 characters (checked by validateLabel). */
  readonly label: string
}

/** Sector 0 of the volume (copied to BACKUP_BOOT_SECTOR): jump, BPB, extended BPB, signature. */
export const bootSector = (o: BootOptions): Uint8Array => {
  const b = Buffer.alloc(512)
  const l = o.layout
  b.set([0xeb, 0x58, 0x90], 0) // jump over the BPB to offset 0x5A
  b.write("MSWIN4.1", 3, "latin1") // fatgen103: the OEM name most compatible with old drivers
  b.writeUInt16LE(512, 11)
  b[13] = l.sectorsPerCluster
  b.writeUInt16LE(l.reservedSectors, 14)
  b[16] = 2 // number of FATs
  // root entry count, 16-bit sector count and FAT16 size stay 0 on FAT32
  b[21] = 0xf8 // media: fixed disk
  b.writeUInt16LE(63, 24) // sectors per track / heads: the conventional LBA-mapped values
  b.writeUInt16LE(255, 26)
  b.writeUInt32LE(o.hiddenSectors, 28)
  b.writeUInt32LE(l.volumeSectors, 32)
  b.writeUInt32LE(l.fatSectors, 36)
  // ext flags 0 (FATs mirrored), version 0.0
  b.writeUInt32LE(2, 44) // root directory cluster
  b.writeUInt16LE(FSINFO_SECTOR, 48)
  b.writeUInt16LE(BACKUP_BOOT_SECTOR, 50)
  b[64] = 0x80 // drive number: hard disk
  b[66] = 0x29 // extended boot signature: the next three fields are present
  b.writeUInt32LE(o.volumeId >>> 0, 67)
  b.write(o.label.padEnd(11, " "), 71, "latin1")
  b.write("FAT32   ", 82, "latin1")
  b.set([0xcd, 0x18, 0xeb, 0xfe], 0x5a) // not bootable: int 18h (try the next boot device), then spin
  b[510] = 0x55
  b[511] = 0xaa
  return b
}

/** The FSInfo sector (fatgen103): free cluster count and the next free cluster hint. */
export const fsInfoSector = (freeClusters: number, nextFree: number): Uint8Array => {
  const b = Buffer.alloc(512)
  b.writeUInt32LE(0x41615252, 0) // lead signature "RRaA"
  b.writeUInt32LE(0x61417272, 484) // struct signature "rrAa"
  b.writeUInt32LE(freeClusters >>> 0, 488)
  b.writeUInt32LE(nextFree >>> 0, 492)
  b.writeUInt32LE(0xaa550000, 508) // trail signature
  return b
}

/** Characters allowed in a short (8.3) name besides A–Z and 0–9 (fatgen103). */
const SHORT_EXTRA = "$%'-_@~`!(){}^#&"
const isShortChar = (c: string): boolean => /[A-Z0-9]/.test(c) || SHORT_EXTRA.includes(c)

/** Whether `name` already is a valid upper-case 8.3 name, so it needs no long-name entries. */
export const isShortName = (name: string): boolean => {
  const m = /^([^.]{1,8})(?:\.([^.]{1,3}))?$/.exec(name)
  return m !== null && [...(m[1]! + (m[2] ?? ""))].every(isShortChar)
}

/** Why `name` cannot be a FAT long name, or undefined when it can. */
export const invalidNameReason = (name: string): string | undefined => {
  if (name.length === 0) return "it is empty"
  if (name === "." || name === "..") return "it is reserved"
  if (name.length > MAX_LONG_NAME) return `it is longer than ${MAX_LONG_NAME} UTF-16 code units`
  const bad = [...name].find((c) => c.charCodeAt(0) < 0x20 || '"*/:<>?\\|'.includes(c))
  if (bad !== undefined) return `it contains ${JSON.stringify(bad)}, which FAT does not allow`
  if (/[. ]$/.test(name)) return "it ends with a dot or a space, which Windows strips"
  return undefined
}

/** Why `label` cannot be a volume label, or undefined when it can: 1–11 printable ASCII characters. */
export const invalidLabelReason = (label: string): string | undefined => {
  if (label.length === 0 || label.length > 11) return "a volume label has 1 to 11 characters"
  if (!/^[\x20-\x7e]+$/.test(label)) return "a volume label is printable ASCII"
  if (/["*+,./:;<=>?[\\\]|]/.test(label)) return 'a volume label has none of "*+,./:;<=>?[\\]|'
  return undefined
}

/**
 * The 11-byte short name for `name`, unique among `taken` (upper-cased 11-byte strings), built the way Windows
 * does: upper-cased basis, invalid characters as "_", and a "~N" tail when the basis lost information.
 */
export const shortName = (name: string, taken: ReadonlySet<string>): string => {
  const raw = name.replace(/^\.+/, "").replace(/ /g, "")
  const dot = raw.lastIndexOf(".")
  const [base, ext] = dot > 0 ? [raw.slice(0, dot), raw.slice(dot + 1)] : [raw, ""]
  let lossy = raw !== name.replace(/ /g, "") || name.includes(" ")
  const map = (s: string) =>
    [...s.replace(/\./g, "")]
      .map((c) => {
        const u = c.charCodeAt(0) < 0x80 ? c.toUpperCase() : "_"
        if (!isShortChar(u)) {
          lossy = true
          return "_"
        }
        if (u !== c.toUpperCase()) lossy = true
        return u
      })
      .join("")
  const b = map(base)
  const e = map(ext)
  if (b.length > 8 || e.length > 3 || base.includes(".")) lossy = true
  const b8 = (b || "_").slice(0, 8)
  const e3 = e.slice(0, 3)
  const render = (bb: string) => bb.padEnd(8, " ") + e3.padEnd(3, " ")
  if (!lossy && !taken.has(render(b8))) return render(b8)
  for (let n = 1; ; n++) {
    const tail = `~${n}`
    const candidate = render(b8.slice(0, 8 - tail.length) + tail)
    if (!taken.has(candidate)) return candidate
  }
}

/** fatgen103: the checksum of an 11-byte short name that ties long-name entries to it. */
export const shortNameChecksum = (short11: string): number => {
  let sum = 0
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + short11.charCodeAt(i)) & 0xff
  return sum
}

/** Long-name (VFAT) entries for `name`, in on-disk order (highest sequence first), 13 UTF-16 units each. */
export const longNameEntries = (name: string, checksum: number): Uint8Array => {
  const units = Array.from({ length: name.length }, (_, i) => name.charCodeAt(i))
  const count = Math.ceil(units.length / 13)
  if (units.length % 13 !== 0) units.push(0x0000) // terminator when there is room
  while (units.length < count * 13) units.push(0xffff) // padding
  const b = Buffer.alloc(count * DIR_ENTRY_SIZE)
  const offsets = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30]
  for (let i = 0; i < count; i++) {
    const at = (count - 1 - i) * DIR_ENTRY_SIZE
    const seq = i + 1
    b[at] = seq === count ? seq | 0x40 : seq // 0x40 marks the last (first on disk) entry
    b[at + 11] = ATTR_LONG_NAME
    b[at + 13] = checksum
    offsets.forEach((off, k) => b.writeUInt16LE(units[i * 13 + k]!, at + off))
  }
  return b
}

/** Number of directory entries `name` takes: its long-name entries plus the short entry. */
export const entryCount = (name: string): number => (isShortName(name) ? 1 : Math.ceil(name.length / 13) + 1)

/** A DOS date and time (UTC, 2-second resolution, clamped to 1980–2107) plus the 10 ms creation refinement. */
export interface DosTime {
  readonly date: number
  readonly time: number
  readonly tenths: number
}

/** The DOS date/time of `d`, stored as UTC: Linux's vfat reads it as UTC unless told a time zone. */
export const dosTime = (d: Date): DosTime => {
  const ms = Math.min(Math.max(d.getTime(), Date.UTC(1980, 0, 1)), Date.UTC(2107, 11, 31, 23, 59, 58))
  const t = new Date(ms)
  return {
    date: ((t.getUTCFullYear() - 1980) << 9) | ((t.getUTCMonth() + 1) << 5) | t.getUTCDate(),
    time: (t.getUTCHours() << 11) | (t.getUTCMinutes() << 5) | (t.getUTCSeconds() >> 1),
    tenths: (t.getUTCSeconds() & 1) * 100 + Math.floor(t.getUTCMilliseconds() / 10),
  }
}

/** What one short directory entry records. */
export interface Entry {
  /** 11 bytes: 8 base + 3 extension, space padded. */
  readonly short11: string
  readonly attributes: number
  readonly firstCluster: number
  readonly size: number
  readonly mtime: Date
}

/** One 32-byte short directory entry. */
export const directoryEntry = (e: Entry): Uint8Array => {
  const b = Buffer.alloc(DIR_ENTRY_SIZE)
  b.write(e.short11, 0, "latin1")
  b[11] = e.attributes
  const t = dosTime(e.mtime)
  b[13] = t.tenths
  b.writeUInt16LE(t.time, 14) // creation
  b.writeUInt16LE(t.date, 16)
  b.writeUInt16LE(t.date, 18) // last access
  b.writeUInt16LE(e.firstCluster >>> 16, 20)
  b.writeUInt16LE(t.time, 22) // last write
  b.writeUInt16LE(t.date, 24)
  b.writeUInt16LE(e.firstCluster & 0xffff, 26)
  b.writeUInt32LE(e.size >>> 0, 28)
  return b
}
