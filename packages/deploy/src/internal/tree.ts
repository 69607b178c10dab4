// The directory tree of an image: built from a flat file list, short names assigned per directory, clusters
// allocated contiguously (directories first, then files, in breadth-first order) and directories rendered.
import { Data } from "effect"
import * as Fat32 from "../Fat32.js"

export interface FileNode {
  readonly kind: "file"
  readonly name: string
  short11: string
  readonly size: number
  readonly source: string | Uint8Array
  readonly mtime: Date
  readonly readOnly: boolean
  firstCluster: number
}

export interface DirNode {
  readonly kind: "dir"
  readonly name: string
  short11: string
  readonly mtime: Date
  readonly children: Array<FileNode | DirNode>
  firstCluster: number
  clusters: number
}

export type Node = FileNode | DirNode

/** A file list FAT cannot hold: a bad name, a duplicate, a file too big; Image turns it into an ImageError. */
export class TreeError extends Data.TaggedError("TreeError")<{ readonly detail: string }> {
  override get message(): string {
    return this.detail
  }
}

export interface Input {
  readonly path: string
  readonly size: number
  readonly source: string | Uint8Array
  readonly mtime: Date
  readonly readOnly: boolean
}

const newDir = (name: string, mtime: Date): DirNode => ({
  kind: "dir",
  name,
  short11: "",
  mtime,
  children: [],
  firstCluster: 0,
  clusters: 0,
})

/** Builds the tree, rejecting names FAT cannot hold and duplicates (FAT names are case-insensitive). */
export const build = (inputs: ReadonlyArray<Input>, dirMtime: Date): DirNode => {
  const root = newDir("", dirMtime)
  for (const input of inputs) {
    const parts = input.path.split("/").filter((p) => p !== "")
    if (parts.length === 0) throw new TreeError({ detail: `"${input.path}" is not a file path` })
    for (const part of parts) {
      const why = Fat32.invalidNameReason(part)
      if (why)
        throw new TreeError({ detail: `"${input.path}": the name "${part}" cannot be stored on FAT: ${why}` })
    }
    if (input.size > Fat32.MAX_FILE_SIZE)
      throw new TreeError({
        detail: `"${input.path}" is ${input.size} bytes; FAT32 holds files up to 4 GiB - 1`,
      })
    let dir = root
    for (const part of parts.slice(0, -1)) {
      const found = dir.children.find((c) => c.name.toUpperCase() === part.toUpperCase())
      if (found?.kind === "file")
        throw new TreeError({ detail: `"${input.path}": "${part}" is a file, not a directory` })
      if (found) dir = found
      else {
        const d = newDir(part, dirMtime)
        dir.children.push(d)
        dir = d
      }
    }
    const name = parts[parts.length - 1]!
    if (dir.children.some((c) => c.name.toUpperCase() === name.toUpperCase()))
      throw new TreeError({ detail: `"${input.path}" appears twice (FAT names are case-insensitive)` })
    dir.children.push({ kind: "file", name, short11: "", ...input, firstCluster: 0 })
  }
  assignShortNames(root)
  return root
}

const assignShortNames = (dir: DirNode): void => {
  const taken = new Set<string>([".          ", "..         "])
  // exact 8.3 names keep their own short name, so claim those first
  for (const c of dir.children)
    if (Fat32.isShortName(c.name)) {
      c.short11 = Fat32.shortName(c.name, new Set())
      taken.add(c.short11)
    }
  for (const c of dir.children) {
    if (!Fat32.isShortName(c.name)) {
      c.short11 = Fat32.shortName(c.name, taken)
      taken.add(c.short11)
    }
    if (c.kind === "dir") assignShortNames(c)
  }
}

/** Directories in breadth-first order, root first. */
export const directories = (root: DirNode): Array<DirNode> => {
  const out = [root]
  for (let i = 0; i < out.length; i++) for (const c of out[i]!.children) if (c.kind === "dir") out.push(c)
  return out
}

/** Files in the order their data is laid out. */
export const files = (root: DirNode): Array<FileNode> =>
  directories(root).flatMap((d) => d.children.filter((c): c is FileNode => c.kind === "file"))

const dirEntries = (dir: DirNode, isRoot: boolean): number =>
  (isRoot ? 1 : 2) + dir.children.reduce((n, c) => n + Fat32.entryCount(c.name), 0)

/** Clusters the contents take with `clusterBytes`-byte clusters. */
export const clustersNeeded = (root: DirNode, clusterBytes: number): number =>
  directories(root).reduce(
    (n, d) => n + Math.max(1, Math.ceil((dirEntries(d, d === root) * Fat32.DIR_ENTRY_SIZE) / clusterBytes)),
    0,
  ) + files(root).reduce((n, f) => n + Math.ceil(f.size / clusterBytes), 0)

/** Gives every directory and file its contiguous run of clusters from cluster 2; returns the FAT entries. */
export const allocate = (root: DirNode, clusterBytes: number, clusterCount: number): Uint32Array => {
  const fat = new Uint32Array(clusterCount + 2)
  fat[0] = Fat32.FAT0
  fat[1] = Fat32.FAT1
  let next = 2
  const take = (n: number): number => {
    if (n === 0) return 0
    const first = next
    for (let c = first; c < first + n - 1; c++) fat[c] = c + 1
    fat[first + n - 1] = Fat32.END_OF_CHAIN
    next += n
    return first
  }
  for (const d of directories(root)) {
    d.clusters = Math.max(1, Math.ceil((dirEntries(d, d === root) * Fat32.DIR_ENTRY_SIZE) / clusterBytes))
    d.firstCluster = take(d.clusters)
  }
  for (const f of files(root)) f.firstCluster = take(Math.ceil(f.size / clusterBytes))
  return fat
}

/** The bytes of directory `dir` (its clusters), after allocate(). */
export const renderDirectory = (
  dir: DirNode,
  parent: DirNode | undefined,
  clusterBytes: number,
  label: string | undefined,
): Buffer => {
  const b = Buffer.alloc(dir.clusters * clusterBytes)
  let at = 0
  const put = (bytes: Uint8Array) => {
    b.set(bytes, at)
    at += bytes.length
  }
  const entry = (short11: string, attributes: number, firstCluster: number, size: number, mtime: Date) =>
    put(Fat32.directoryEntry({ short11, attributes, firstCluster, size, mtime }))
  if (parent === undefined) {
    if (label !== undefined) entry(label.padEnd(11, " "), Fat32.ATTR_VOLUME_ID, 0, 0, dir.mtime)
  } else {
    entry(".          ", Fat32.ATTR_DIRECTORY, dir.firstCluster, 0, dir.mtime)
    // fatgen103: ".." of a directory in the root points at cluster 0, not the root's cluster
    entry("..         ", Fat32.ATTR_DIRECTORY, parent.name === "" ? 0 : parent.firstCluster, 0, parent.mtime)
  }
  for (const c of dir.children) {
    if (!Fat32.isShortName(c.name)) put(Fat32.longNameEntries(c.name, Fat32.shortNameChecksum(c.short11)))
    if (c.kind === "dir") entry(c.short11, Fat32.ATTR_DIRECTORY, c.firstCluster, 0, c.mtime)
    else
      entry(
        c.short11,
        Fat32.ATTR_ARCHIVE | (c.readOnly ? Fat32.ATTR_READ_ONLY : 0),
        c.firstCluster,
        c.size,
        c.mtime,
      )
  }
  return b
}
