// Which part of a path is really missing, asked of the side it lives on (guest or host), so a failure
// names that part and a hint never points at a directory that exists.
import * as fs from "node:fs"
import * as hostPath from "node:path"
import type { Agent } from "./client.js"
import { type GuestPath, guestDirname, shown } from "./paths.js"

type Kind = "directory" | "other" | undefined

/** One side of a copy or move: how to look a path up and how to show it. */
export interface Side<P = string> {
  readonly show: (p: P) => string
  /** What `p` is, following symlinks unless `follow` is false; undefined when nothing is there. */
  readonly kind: (p: P, follow?: boolean) => Promise<Kind>
  readonly dirname: (p: P) => P
  /** The command that creates `dir` with its parents. */
  readonly mkdirCommand: (dir: P) => string
  /** The command that lists `dir`. */
  readonly lsCommand: (dir: P) => string
}

/** `-b ` when `p` is written with escapes. */
const escapedFlag = (p: GuestPath) => (typeof p === "string" ? "" : "-b ")

const kindOf = (isDirectory: boolean): Kind => (isDirectory ? "directory" : "other")

/** Guest paths, through the agent. */
export const guest = (agent: Agent): Side<GuestPath> => ({
  show: (p) => `:${shown(p)}`,
  kind: (p, follow = true) =>
    agent.stat(p, { follow }).then(
      (s) => kindOf(s.type === "directory"),
      () => undefined,
    ),
  dirname: guestDirname,
  mkdirCommand: (dir) => `cuvette mkdir -p :${shown(dir)}`,
  lsCommand: (dir) => `cuvette ls ${escapedFlag(dir)}:${shown(dir)}`,
})

/** Host paths. */
export const host: Side = {
  show: (p) => p,
  kind: (p, follow = true) =>
    (follow ? fs.promises.stat(p) : fs.promises.lstat(p)).then(
      (s) => kindOf(s.isDirectory()),
      () => undefined,
    ),
  dirname: hostPath.dirname,
  mkdirCommand: (dir) => `mkdir -p ${dir}`,
  lsCommand: (dir) => `ls ${dir}`,
}

/**
 * Why `p` cannot be used, when the reason is a missing path: an ancestor that does not exist or is
 * not a directory, or (a source) `p` itself missing. Undefined when nothing is missing (a destination
 * whose directory exists, a source that exists): the failure lies elsewhere.
 */
export const whyMissing = async <P>(
  side: Side<P>,
  p: P,
  role: "source" | "destination",
): Promise<string | undefined> => {
  if (role === "source" && (await side.kind(p, false)) !== undefined) return undefined
  // Walk up to the nearest ancestor that exists; `child` is the shallowest missing one below it.
  let child = p
  let dir = side.dirname(p)
  while (true) {
    const kind = await side.kind(dir)
    if (kind === "other") return `${side.show(dir)} is not a directory`
    if (kind === "directory" || same(dir, side.dirname(dir))) break
    child = dir
    dir = side.dirname(dir)
  }
  if (!same(child, p))
    return role === "destination"
      ? `the directory ${side.show(child)} does not exist (create it with \`${side.mkdirCommand(side.dirname(p))}\`)`
      : `the directory ${side.show(child)} does not exist`
  return role === "source" ? `no such file or directory (see \`${side.lsCommand(dir)}\`)` : undefined
}

const same = <P>(a: P, b: P) =>
  a === b || (a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0)

/** True for the errors a missing path causes. */
export const isMissing = (error: unknown): boolean => {
  const code = (error as { code?: unknown })?.code
  return code === "ENOENT" || code === "ENOTDIR"
}
