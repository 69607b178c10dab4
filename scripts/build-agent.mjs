#!/usr/bin/env node
// Builds the agent executables with `bun build --compile`, offline and reproducibly: every target's Bun runtime
// is the npm registry's @oven/bun-<target> package at the same version as our bun devDependency, fetched once
// with `npm pack` into .cache/bun-runtimes/ and handed to bun with --compile-executable-path (bun never
// downloads). Linux targets also get the self-contained bundle (glibc loader + libraries + launcher) that
// @cuvette/deploy puts on cidata disks.
//
//   npm run build:agent [-- --target linux-x64 ...] [--entry FILE] [--out DIR]
//
// Output: <out>/<target>/cuvette-agent[.exe] (default out: dist/agent), for Linux cuvette-agent.sh + lib/, and for
// Windows cuvette_native.node (cross-compiled with mingw-w64 off Windows).
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { register } from "tsx/esm/api"

const root = path.resolve(import.meta.dirname, "..")
const cache = path.join(root, ".cache")

// target → (npm package, bun --target, executable inside the package, output name)
const TARGETS = {
  "linux-x64": {
    pkg: "@oven/bun-linux-x64",
    bunTarget: "bun-linux-x64",
    exe: "bin/bun",
    out: "cuvette-agent",
    arch: "x64",
  },
  "linux-arm64": {
    pkg: "@oven/bun-linux-aarch64",
    bunTarget: "bun-linux-arm64",
    exe: "bin/bun",
    out: "cuvette-agent",
    arch: "arm64",
  },
  "windows-x64": {
    pkg: "@oven/bun-windows-x64",
    bunTarget: "bun-windows-x64",
    exe: "bin/bun.exe",
    out: "cuvette-agent.exe",
    addon: "cuvette_native.node", // AF_HYPERV and --service; the loader looks beside the executable
  },
}

const { values } = parseArgs({
  options: {
    target: { type: "string", multiple: true },
    entry: { type: "string", default: path.join(root, "packages/agent/src/bin.ts") },
    out: { type: "string", default: path.join(root, "dist/agent") },
    help: { type: "boolean", short: "h" },
  },
})
if (values.help) {
  console.log(
    `usage: npm run build:agent -- [--target ${Object.keys(TARGETS).join("|")}]... [--entry FILE] [--out DIR]`,
  )
  process.exit(0)
}
const targets = values.target ?? Object.keys(TARGETS)
for (const t of targets)
  if (!(t in TARGETS)) die(`unknown target ${t}; choose from ${Object.keys(TARGETS).join(", ")}`)
const entry = path.resolve(values.entry)
if (!fs.existsSync(entry)) die(`entry ${entry} does not exist (the agent's bin.ts); pass --entry FILE`)

function die(message) {
  console.error(`build-agent: ${message}`)
  process.exit(1)
}

function sh(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", ...options })
  if (r.error || r.status !== 0)
    die(`${cmd} ${args.join(" ")} failed: ${r.error?.message ?? ""}${r.stderr ?? ""}${r.stdout ?? ""}`.trim())
  return r.stdout
}

// The bun that compiles: the workspace's devDependency; its version pins every target runtime.
const bunVersion = JSON.parse(
  fs.readFileSync(path.join(root, "node_modules/bun/package.json"), "utf8"),
).version
const bunBin = path.join(root, "node_modules/bun/bin/bun.exe") // bun's postinstall uses this name on every OS
if (!fs.existsSync(bunBin)) die(`${bunBin} is missing: run npm install (bun's postinstall puts it there)`)

/** The runtime for a target: node_modules' copy when it is that package at our version, else npm pack into the cache. */
function runtime(target) {
  const { pkg, exe } = TARGETS[target]
  const installed = path.join(root, "node_modules", pkg)
  if (fs.existsSync(path.join(installed, exe))) {
    const v = JSON.parse(fs.readFileSync(path.join(installed, "package.json"), "utf8")).version
    if (v === bunVersion) return path.join(installed, exe)
  }
  const dir = path.join(cache, "bun-runtimes", `${pkg.replace("/", "+")}-${bunVersion}`)
  const file = path.join(dir, "package", exe)
  if (fs.existsSync(file)) return file
  fs.mkdirSync(dir, { recursive: true })
  console.log(`fetching ${pkg}@${bunVersion} with npm pack (once; cached in ${path.relative(root, dir)})`)
  const tgz = sh("npm", ["pack", `${pkg}@${bunVersion}`, "--pack-destination", dir, "--silent"], {
    shell: process.platform === "win32", // npm is npm.cmd there
  })
    .trim()
    .split("\n")
    .pop()
  sh("tar", ["-xzf", path.join(dir, tgz), "-C", dir])
  fs.rmSync(path.join(dir, tgz))
  if (!fs.existsSync(file)) die(`${pkg}@${bunVersion} has no ${exe}`)
  fs.chmodSync(file, 0o755)
  return file
}

/** glibc's loader and libraries for the bundle: the host's own (x64 Debian) or Debian packages via apt. */
function glibc(arch, names) {
  if (arch === "x64" && process.platform === "linux" && process.arch === "x64") {
    const host = names.map((n) => (n.startsWith("ld-") ? `/lib64/${n}` : `/lib/x86_64-linux-gnu/${n}`))
    if (host.every((f) => fs.existsSync(f)))
      return { libs: Object.fromEntries(names.map((n, i) => [n, host[i]])), from: "the host's libc6" }
  }
  const [deb, libdir] =
    arch === "x64"
      ? ["libc6:amd64", "lib/x86_64-linux-gnu"]
      : ["libc6-arm64-cross", "usr/aarch64-linux-gnu/lib"]
  if (spawnSync("apt-get", ["--version"]).status !== 0 || spawnSync("dpkg-deb", ["--version"]).status !== 0)
    return { why: `needs Debian's ${deb}: apt-get and dpkg-deb are not available on this host` }
  const dir = path.join(cache, "libc", deb.replace(":", "-"))
  const extracted = path.join(dir, "x")
  if (!fs.existsSync(extracted)) {
    fs.mkdirSync(dir, { recursive: true })
    console.log(`fetching ${deb} with apt-get download (once; cached in ${path.relative(root, dir)})`)
    const r = spawnSync("apt-get", ["download", deb], { cwd: dir, encoding: "utf8" })
    const debs = fs.readdirSync(dir).filter((f) => f.endsWith(".deb"))
    if (r.status !== 0 || debs.length === 0)
      return { why: `apt-get download ${deb} failed: ${r.stderr.trim()}` }
    sh("dpkg-deb", ["-x", path.join(dir, debs[0]), extracted])
  }
  const find = (n) =>
    [libdir, "lib64", "lib", "usr/lib64"].map((d) => path.join(extracted, d, n)).find((f) => fs.existsSync(f))
  const libs = Object.fromEntries(names.map((n) => [n, find(n)]))
  const missing = names.filter((n) => !libs[n])
  if (missing.length) return { why: `${deb} lacks ${missing.join(", ")}` }
  return { libs, from: `Debian's ${deb}` }
}

/** The Windows addon beside the agent: native/prebuilds/win32-x64, built here with mingw-w64 (scripts/build.mjs). */
function windowsAddon(dest) {
  const native = path.join(root, "native")
  const r = spawnSync(process.execPath, [path.join(native, "scripts", "build.mjs"), "win32-x64"], {
    encoding: "utf8",
  })
  if (r.status !== 0) {
    fs.rmSync(dest, { force: true })
    return `missing: ${(r.stderr || r.error?.message || "").trim()} (the agent then lacks Hyper-V sockets and --service)`
  }
  fs.copyFileSync(path.join(native, "prebuilds", "win32-x64", "cuvette_native.node"), dest)
  return mib(fs.statSync(dest).size)
}

const mib = (n) => `${(n / 1024 / 1024).toFixed(1)} MiB`
register() // lets this script import @cuvette/deploy's TypeScript
const Bundle = await import("../packages/deploy/src/Bundle.ts")

const rows = []
for (const target of targets) {
  const t = TARGETS[target]
  const outDir = path.join(path.resolve(values.out), target)
  const outFile = path.join(outDir, t.out)
  fs.mkdirSync(outDir, { recursive: true })
  const executable = runtime(target)
  const t0 = performance.now()
  sh(
    bunBin,
    [
      "build",
      "--compile",
      `--target=${t.bunTarget}`,
      `--compile-executable-path=${executable}`,
      "--conditions=@cuvette/source", // workspace packages resolve to their TypeScript sources
      // A guest agent must not pick up a .env or bunfig.toml from whatever directory it starts in.
      "--no-compile-autoload-dotenv",
      "--no-compile-autoload-bunfig",
      entry,
      "--outfile",
      outFile,
    ],
    { cwd: root, env: { ...process.env, BUN_INSTALL_CACHE_DIR: path.join(cache, "bun-empty-cache") } },
  )
  const seconds = ((performance.now() - t0) / 1000).toFixed(1)
  let bundle = "-"
  if (t.arch) {
    const g = glibc(t.arch, Bundle.libraries(t.arch))
    if (g.libs) {
      await Bundle.assemble(outDir, outFile, g.libs)
      const libBytes = Bundle.libraries(t.arch).reduce(
        (n, l) => n + fs.statSync(path.join(outDir, "lib", l)).size,
        0,
      )
      bundle = `+ lib/ ${mib(libBytes)} from ${g.from}, ${Bundle.LAUNCHER}`
    } else bundle = `no bundle: ${g.why}`
  }
  if (t.addon) bundle = `+ ${t.addon} ${windowsAddon(path.join(outDir, t.addon))}`
  rows.push([target, path.relative(root, outFile), mib(fs.statSync(outFile).size), `${seconds} s`, bundle])
}
console.log(`\nbun ${bunVersion}, entry ${path.relative(root, entry)}`)
for (const r of rows)
  console.log(`  ${r[0].padEnd(12)} ${r[1].padEnd(42)} ${r[2].padStart(10)}  ${r[3].padStart(6)}  ${r[4]}`)
