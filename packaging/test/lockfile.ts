// The package-lock.json of a project that depends on our tarballs, taken from the repository's own lock.
// `npm ci` fills the npm cache with every locked tarball but with none of the registry's metadata, so an
// offline `npm install` that had to resolve `effect@3.22.4` would find nothing to read; with the lock a team's
// project would have, npm installs every dependency from the cache by its integrity.
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"

interface Entry {
  readonly version?: string
  readonly resolved?: string
  readonly link?: boolean
  readonly dependencies?: Record<string, string>
  readonly optionalDependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
  readonly peerDependenciesMeta?: Record<string, { optional?: boolean }>
  readonly [field: string]: unknown
}

/** The directory of `name` as Node resolves it from lock path `from` (nearest node_modules upwards). */
const resolve = (packages: Record<string, Entry>, from: string, name: string): string | undefined => {
  for (let dir = from; ; dir = dir.slice(0, Math.max(0, dir.lastIndexOf("/node_modules/")))) {
    const candidate = dir === "" ? `node_modules/${name}` : `${dir}/node_modules/${name}`
    if (packages[candidate]) return candidate
    if (dir === "") return undefined
  }
}

/**
 * A lockfile for `{ dependencies: tarballs }`: each tarball (name -> .tgz) at node_modules/<name>, and
 * every package they need, at the same place relative to it as in `repoLock`.
 */
export const fromRepository = (
  repoLock: string,
  tarballs: Record<string, string>,
  appDir: string,
): { dependencies: Record<string, string>; lock: object } => {
  const packages = (JSON.parse(fs.readFileSync(repoLock, "utf8")) as { packages: Record<string, Entry> })
    .packages
  const spec = (name: string) => `file:${path.relative(appDir, tarballs[name]!)}`
  const dependencies = Object.fromEntries(Object.keys(tarballs).map((name) => [name, spec(name)]))
  const out: Record<string, Entry> = { "": { name: "app", dependencies } }
  const workspaces = new Map<string, string>() // repository path -> app path of each tarball's package
  const place = (at: string) => {
    for (const [workspace, installed] of workspaces)
      if (at.startsWith(`${workspace}/`)) return installed + at.slice(workspace.length)
    return at
  }
  const queue: Array<string> = []
  for (const name of Object.keys(tarballs)) {
    const link = packages[`node_modules/${name}`]
    if (!link?.link || typeof link.resolved !== "string") throw new Error(`${name} is not a workspace`)
    const workspace = packages[link.resolved]!
    const tarball = fs.readFileSync(tarballs[name]!)
    const { dev: _dev, devOptional: _devOptional, ...fields } = workspace
    out[`node_modules/${name}`] = {
      ...fields,
      resolved: spec(name),
      integrity: `sha512-${createHash("sha512").update(tarball).digest("base64")}`,
    }
    workspaces.set(link.resolved, `node_modules/${name}`)
    queue.push(link.resolved)
  }
  while (queue.length > 0) {
    const from = queue.shift()!
    const entry = packages[from]!
    const optionalPeers = Object.entries(entry.peerDependenciesMeta ?? {}).filter(([, m]) => m.optional)
    const needed = [
      ...Object.keys(entry.dependencies ?? {}),
      ...Object.keys(entry.optionalDependencies ?? {}),
      ...Object.keys(entry.peerDependencies ?? {}).filter((n) => !optionalPeers.some(([p]) => p === n)),
    ]
    for (const name of needed) {
      if (name in tarballs) continue
      const found = resolve(packages, from, name)
      if (found === undefined) {
        if (entry.optionalDependencies?.[name] !== undefined) continue // another platform's binary
        throw new Error(`${name} (needed by ${from || "the root"}) is not in ${repoLock}`)
      }
      const target = place(found)
      if (out[target]) continue
      const { dev: _dev, devOptional: _devOptional, ...fields } = packages[found]!
      out[target] = fields
      queue.push(found)
    }
  }
  return { dependencies, lock: { name: "app", lockfileVersion: 3, requires: true, packages: out } }
}
