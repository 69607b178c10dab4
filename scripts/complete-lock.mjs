#!/usr/bin/env node
// Makes package-lock.json complete for `npm ci` when the registry is a partial mirror: npm leaves out
// optional platform packages it cannot fetch (nx and rollup binaries for darwin, win32, musl, ...),
// and `npm ci` then refuses the lock as "out of sync". Those packages only install on other
// platforms, so a lock entry tagged with their os/cpu/libc is all npm needs to skip them.
// Run after `npm install` changes the lock.
import * as fs from "node:fs"
import * as path from "node:path"

const file = path.resolve(import.meta.dirname, "..", "package-lock.json")
const lock = JSON.parse(fs.readFileSync(file, "utf8"))
const OS = [
  "darwin",
  "freebsd",
  "linux",
  "win32",
  "android",
  "openbsd",
  "openharmony",
  "netbsd",
  "sunos",
  "aix",
]
const CPU = ["arm64", "x64", "arm", "ia32", "loong64", "ppc64", "riscv64", "s390x", "mips64el"]

const platformOf = (name) => {
  const parts = name.split("/").pop().split("-")
  const os = parts.find((p) => OS.includes(p))
  const cpu = parts.find((p) => CPU.includes(p))
  if (!os || !cpu) return undefined
  const libc = os === "linux" ? (parts.some((p) => p.startsWith("musl")) ? "musl" : "glibc") : undefined
  return { os: [os], cpu: [cpu], ...(libc ? { libc: [libc] } : {}) }
}

let added = 0
for (const [where, pkg] of Object.entries(lock.packages)) {
  for (const [dep, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    const nested = path.posix.join(where, "node_modules", dep)
    if (lock.packages[nested] || lock.packages[`node_modules/${dep}`]) continue
    const platform = platformOf(dep)
    if (!platform) continue
    lock.packages[`node_modules/${dep}`] = { version, optional: true, ...platform }
    added++
  }
}
fs.writeFileSync(file, JSON.stringify(lock, null, 2) + "\n")
console.log(`complete-lock: added ${added} platform stub entries`)
