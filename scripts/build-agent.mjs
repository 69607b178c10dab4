#!/usr/bin/env node
// Builds the agent executables with `bun build --compile`, offline and reproducibly (bun-compile.mjs: each
// target's runtime is the npm registry's @oven/bun-<target> package; bun never downloads). Linux targets also
// get the self-contained bundle (glibc loader + libraries + launcher) that @cuvette/deploy puts on cidata disks.
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
import {
  BuildError,
  bunVersion,
  cache,
  chooseTargets,
  compile,
  mib,
  nativeAddon,
  root,
  sh,
  TARGETS,
} from "./bun-compile.mjs"

// target → the agent's output name, and the glibc bundle's architecture (Linux) or the addon beside it (Windows)
const AGENT = {
  "linux-x64": { out: "cuvette-agent", arch: "x64" },
  "linux-arm64": { out: "cuvette-agent", arch: "arm64" },
  "windows-x64": {
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

function die(message) {
  console.error(`build-agent: ${message}`)
  process.exit(1)
}
process.on("uncaughtException", (e) => (e instanceof BuildError ? die(e.message) : die(e.stack ?? String(e))))

const targets = chooseTargets(values.target)
const entry = path.resolve(values.entry)
if (!fs.existsSync(entry)) die(`entry ${entry} does not exist (the agent's bin.ts); pass --entry FILE`)

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

/** The Windows addon beside the agent: native/prebuilds/win32-x64, built here with mingw-w64 (native/scripts/build.mjs). */
function windowsAddon(dest) {
  const addon = nativeAddon("windows-x64")
  if (addon.why) {
    fs.rmSync(dest, { force: true })
    return `missing: ${addon.why} (the agent then lacks Hyper-V sockets and --service)`
  }
  fs.copyFileSync(addon.file, dest)
  return mib(fs.statSync(dest).size)
}

register() // lets this script import @cuvette/deploy's TypeScript
const Bundle = await import("../packages/deploy/src/Bundle.ts")

const rows = []
for (const target of targets) {
  const t = AGENT[target]
  const outDir = path.join(path.resolve(values.out), target)
  const outFile = path.join(outDir, t.out)
  const seconds = compile({ target, entry, outfile: outFile })
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
console.log(`\nbun ${bunVersion()}, entry ${path.relative(root, entry)}`)
for (const r of rows)
  console.log(`  ${r[0].padEnd(12)} ${r[1].padEnd(42)} ${r[2].padStart(10)}  ${r[3].padStart(6)}  ${r[4]}`)
