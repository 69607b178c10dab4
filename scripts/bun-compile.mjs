// What build-agent.mjs and build-cli.mjs share: `bun build --compile` for a target, offline and reproducibly.
// Every target's Bun runtime is the npm registry's @oven/bun-<target> package at the same version as our bun
// devDependency, fetched once with `npm pack` into .cache/bun-runtimes/ and handed to bun with
// --compile-executable-path (bun itself never downloads), and the native addon cross-built for a target.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

export const root = path.resolve(import.meta.dirname, "..")
export const cache = path.join(root, ".cache")

/** A build step failed; the script prints the message with its name and exits 1. */
export class BuildError extends Error {}

/** target → the npm package holding its runtime, bun's --target, the executable inside, the addon's platform. */
export const TARGETS = {
  "linux-x64": {
    pkg: "@oven/bun-linux-x64",
    bunTarget: "bun-linux-x64",
    exe: "bin/bun",
    native: "linux-x64",
  },
  "linux-arm64": {
    pkg: "@oven/bun-linux-aarch64",
    bunTarget: "bun-linux-arm64",
    exe: "bin/bun",
    native: "linux-arm64",
  },
  "windows-x64": {
    pkg: "@oven/bun-windows-x64",
    bunTarget: "bun-windows-x64",
    exe: "bin/bun.exe",
    native: "win32-x64",
  },
}

/** The targets named on the command line (all when none), or a BuildError naming the unknown one. */
export const chooseTargets = (names) => {
  for (const t of names ?? [])
    if (!(t in TARGETS))
      throw new BuildError(`unknown target ${t}; choose from ${Object.keys(TARGETS).join(", ")}`)
  return names ?? Object.keys(TARGETS)
}

export function sh(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", ...options })
  if (r.error || r.status !== 0)
    throw new BuildError(
      `${cmd} ${args.join(" ")} failed: ${r.error?.message ?? ""}${r.stderr ?? ""}${r.stdout ?? ""}`.trim(),
    )
  return r.stdout
}

export const mib = (n) => `${(n / 1024 / 1024).toFixed(1)} MiB`

// The bun that compiles: the workspace's devDependency; its version pins every target runtime.
const bunBin = path.join(root, "node_modules/bun/bin/bun.exe") // bun's postinstall uses this name on every OS
export const bunVersion = () => {
  if (!fs.existsSync(bunBin))
    throw new BuildError(`${bunBin} is missing: run npm install (bun's postinstall puts it there)`)
  return JSON.parse(fs.readFileSync(path.join(root, "node_modules/bun/package.json"), "utf8")).version
}

/** The runtime for a target: node_modules' copy when it is that package at our version, else npm pack into the cache. */
export function runtime(target) {
  const { pkg, exe } = TARGETS[target]
  const version = bunVersion()
  const installed = path.join(root, "node_modules", pkg)
  if (fs.existsSync(path.join(installed, exe))) {
    const v = JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8")).version
    if (v === version) return path.join(installed, exe)
  }
  const dir = path.join(cache, "bun-runtimes", `${pkg.replace("/", "+")}-${version}`)
  const file = path.join(dir, "package", exe)
  if (fs.existsSync(file)) return file
  fs.mkdirSync(dir, { recursive: true })
  console.log(`fetching ${pkg}@${version} with npm pack (once; cached in ${path.relative(root, dir)})`)
  const tgz = sh("npm", ["pack", `${pkg}@${version}`, "--pack-destination", dir, "--silent"], {
    shell: process.platform === "win32", // npm is npm.cmd there
  })
    .trim()
    .split("\n")
    .pop()
  sh("tar", ["-xzf", path.join(dir, tgz), "-C", dir])
  fs.rmSync(path.join(dir, tgz))
  if (!fs.existsSync(file)) throw new BuildError(`${pkg}@${version} has no ${exe}`)
  fs.chmodSync(file, 0o755)
  return file
}

/**
 * Compiles `entry` into `outfile` for `target`; resolves to the seconds it took. Workspace packages resolve to
 * their TypeScript sources; `flags` are added to bun's (e.g. --bytecode).
 */
export function compile({ target, entry, outfile, flags = [] }) {
  const t = TARGETS[target]
  const executable = runtime(target)
  fs.mkdirSync(path.dirname(outfile), { recursive: true })
  const t0 = performance.now()
  sh(
    bunBin,
    [
      "build",
      "--compile",
      `--target=${t.bunTarget}`,
      `--compile-executable-path=${executable}`,
      "--conditions=@cuvette/source", // workspace packages resolve to their TypeScript sources
      // An executable must not pick up a .env or bunfig.toml from whatever directory it starts in.
      "--no-compile-autoload-dotenv",
      "--no-compile-autoload-bunfig",
      ...flags,
      entry,
      "--outfile",
      outfile,
    ],
    { cwd: root, env: { ...process.env, BUN_INSTALL_CACHE_DIR: path.join(cache, "bun-empty-cache") } },
  )
  return ((performance.now() - t0) / 1000).toFixed(1)
}

/**
 * The native addon for a target, built by native/scripts/build.mjs (cross-compiled with aarch64-linux-gnu-g++ or
 * mingw-w64 off that platform): `{ file }`, or `{ why }` when it cannot be built here.
 */
export function nativeAddon(target) {
  const platform = TARGETS[target].native
  const native = path.join(root, "native")
  const r = spawnSync(process.execPath, [path.join(native, "scripts", "build.mjs"), platform], {
    encoding: "utf8",
  })
  if (r.status !== 0) return { why: (r.stderr || r.error?.message || "").trim() }
  return { file: path.join(native, "prebuilds", platform, "cuvette_native.node") }
}
