#!/usr/bin/env node
// Builds the addon into prebuilds/<platform>-<arch>/cuvette_native.node, where lib/loader.ts looks for it,
// offline and without node-gyp: the N-API headers come from node-api-headers and node-addon-api
// (devDependencies), and a Linux addon leaves the napi_* symbols for the loading process to resolve.
//   node scripts/build.mjs          the host's target (the Nx build and `npm ci`)
//   node scripts/build.mjs --all    every shipped target (prepack): linux-x64, linux-arm64, win32-x64
//   node scripts/build.mjs linux-arm64 ...
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const require = createRequire(import.meta.url)
const headers = path.join(path.dirname(require.resolve("node-api-headers/package.json")), "include")
const addonApi = path.dirname(require.resolve("node-addon-api/package.json"))
const host = `${process.platform}-${process.arch}`

// Linux: glibc's C++ runtime linked dynamically (as Node itself does), so the addon needs only
// GLIBCXX_3.4.22 / GLIBC_2.17 and loads on any distribution that runs Node 20.
const linux = (cxx) => (out) => [
  cxx,
  ["-O2", "-std=c++17", "-shared", "-fPIC", "-s", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    .concat(["-DNAPI_VERSION=8", "-DNODE_ADDON_API_DISABLE_CPP_EXCEPTIONS", "-I", headers, "-I", addonApi])
    .concat(["-o", out, "src/addon.cc", "src/vsock_linux.cc", "src/stream_io.cc", "-lpthread"]),
]

/** How each shipped target is compiled on this host: a command line [program, args] given the output file. */
const TARGETS = {
  "linux-x64": linux(host === "linux-x64" ? (process.env.CXX ?? "g++") : "x86_64-linux-gnu-g++"),
  "linux-arm64": linux(host === "linux-arm64" ? (process.env.CXX ?? "g++") : "aarch64-linux-gnu-g++"),
  // mingw-w64 (scripts/build-win.sh): a cross-build off Windows, MSYS2's toolchain on it.
  "win32-x64": (out) => ["bash", [path.join(root, "scripts", "build-win.sh"), out]],
}

const args = process.argv.slice(2)
const wanted = args.includes("--all") ? Object.keys(TARGETS) : args.length > 0 ? args : [host]
if (args.length === 0 && !(host in TARGETS)) {
  console.log(`build.mjs: no addon for ${host} (AF_VSOCK and AF_HYPERV exist on Linux and Windows only)`)
  process.exit(0)
}
const unknown = wanted.filter((t) => !(t in TARGETS))
if (unknown.length > 0) {
  console.error(`build.mjs: unknown target ${unknown.join(", ")} (known: ${Object.keys(TARGETS).join(", ")})`)
  process.exit(2)
}

/** Compiles one target into a temporary file, renamed into place only when the compiler succeeded. */
const build = (target) =>
  new Promise((resolve) => {
    const out = path.join(root, "prebuilds", target, "cuvette_native.node")
    fs.mkdirSync(path.dirname(out), { recursive: true })
    const tmp = `${out}.${process.pid}.tmp`
    const [program, argv] = TARGETS[target](tmp)
    const t0 = performance.now()
    const fail = (why) => {
      fs.rmSync(tmp, { force: true })
      console.error(`build.mjs: ${target} failed: ${why}`)
      resolve(false)
    }
    spawn(program, argv, { cwd: root, stdio: "inherit" })
      .on("error", (e) =>
        fail(e.code === "ENOENT" ? `${program} not found (Debian: see scripts/setup-system.sh)` : e.message),
      )
      .on("exit", (code) => {
        if (code !== 0) return fail(`${program} exited with ${code}`)
        fs.renameSync(tmp, out) // the loader never sees a half-written addon
        console.log(`built ${path.relative(root, out)} (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
        resolve(true)
      })
  })

const results = await Promise.all(wanted.map(build))
process.exit(results.every(Boolean) ? 0 : 1)
