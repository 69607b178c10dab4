/**
 * setup: makes sure the e2e guest can boot here. Installs the Debian packages when missing (as root,
 * with apt), fetches and unpacks Debian's kernel (prepare-kernel.sh) and builds the initramfs variants
 * (build-initramfs.sh), all cached under `${CUVETTE_CACHE:-~/.cache/cuvette}/e2e`. When QEMU or the
 * tools cannot be had, it returns the reason instead, for a visible skip.
 */
import { execFile, execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

const run = promisify(execFile)

/** e2e/ (scripts/, guest/, bin/ live below it). */
export const e2eRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** Where kernels and initramfs images are cached (never in the repository). */
export const cacheDir = (): string =>
  path.join(process.env.CUVETTE_CACHE ?? path.join(os.homedir(), ".cache", "cuvette"), "e2e")

/** Everything a VM needs to boot. */
export interface Assets {
  readonly kernelDir: string
  /** Debian package, e.g. linux-image-6.1.0-56-amd64. */
  readonly kernelPackage: string
  /** `uname -r` in the guest. */
  readonly kernelRelease: string
  readonly vmlinux: string
  /** busybox + modules + /init, no glibc. */
  readonly initrd: string
  /** The same plus qemu-ga and its libraries; undefined when qemu-ga is not installed. */
  readonly initrdQga: string | undefined
}

/** Outcome of `setup()`: assets, or why the suite must skip. */
export interface Setup {
  readonly assets: Assets | undefined
  /** Set when no VM can boot here (no QEMU, no busybox-static, ...). */
  readonly skipReason: string | undefined
  /** Set when the qemu-ga scenario cannot run. */
  readonly qgaSkipReason: string | undefined
  /** Wall-clock milliseconds per step, for the report. */
  readonly timings: Readonly<Record<string, number>>
}

// Debian package providing each command the harness runs.
const requiredTools: ReadonlyArray<readonly [string, string]> = [
  ["qemu-system-x86_64", "qemu-system-x86"],
  ["busybox", "busybox-static"],
  ["mkfs.fat", "dosfstools"],
  ["mcopy", "mtools"],
  ["apt-get", "apt"],
  ["dpkg", "dpkg"],
  ["xz", "xz-utils"],
]

const which = (cmd: string): string | undefined => {
  try {
    return (
      execFileSync("sh", ["-c", `command -v ${cmd}`], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }).trim() || undefined
    )
  } catch {
    return undefined
  }
}

const isStatic = (file: string): boolean => {
  try {
    execFileSync("ldd", [file], { stdio: "ignore" })
    return false
  } catch {
    return true
  }
}

const missingPackages = (): Array<string> => {
  const missing = requiredTools.filter(([cmd]) => !which(cmd)).map(([, pkg]) => pkg)
  const busybox = which("busybox")
  if (busybox && !isStatic(busybox)) missing.push("busybox-static")
  if (!which("qemu-ga") && !fs.existsSync("/usr/sbin/qemu-ga")) missing.push("qemu-guest-agent")
  return [...new Set(missing)]
}

// Same packages scripts/setup-system.sh installs for CI, limited to what the e2e suite needs.
const install = (packages: ReadonlyArray<string>): string | undefined => {
  if (process.env.CUVETTE_E2E_NO_INSTALL) return "CUVETTE_E2E_NO_INSTALL is set"
  if (process.getuid?.() !== 0) return "not root, so apt-get cannot install them"
  if (!which("apt-get")) return "apt-get is not available"
  try {
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" }
    execFileSync("apt-get", ["update", "-qq"], { stdio: "ignore", env })
    execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], {
      stdio: "ignore",
      env,
    })
    return undefined
  } catch (err) {
    return `apt-get install ${packages.join(" ")} failed: ${err instanceof Error ? err.message : String(err)}`
  }
}

// The initramfs depends on the scripts and guest files that go into it: key its file name on them so an
// edited /init is never booted from a stale image.
const initrdKey = (): string => {
  const hash = createHash("sha256")
  for (const rel of ["scripts/build-initramfs.sh", "guest/init", "guest/diag-server", "guest/shutdown"]) {
    hash.update(rel).update(fs.readFileSync(path.join(e2eRoot, rel)))
  }
  return hash.digest("hex").slice(0, 12)
}

const timed = async <A>(timings: Record<string, number>, name: string, f: () => Promise<A>): Promise<A> => {
  const t0 = performance.now()
  try {
    return await f()
  } finally {
    timings[name] = Math.round(performance.now() - t0)
  }
}

const doSetup = async (): Promise<Setup> => {
  const timings: Record<string, number> = {}
  if (process.platform !== "linux" || process.arch !== "x64") {
    return {
      assets: undefined,
      skipReason: `needs an x86_64 Linux host (this is ${process.platform}/${process.arch})`,
      qgaSkipReason: undefined,
      timings,
    }
  }
  let missing = missingPackages()
  if (missing.length > 0) {
    const why = await timed(timings, "install", async () => install(missing))
    missing = missingPackages()
    const blocking = missing.filter((p) => p !== "qemu-guest-agent")
    if (blocking.length > 0) {
      return {
        assets: undefined,
        skipReason: `missing Debian packages ${blocking.join(" ")} (${why ?? "still missing after apt-get install"}); install them with: apt-get install --no-install-recommends ${blocking.join(" ")}`,
        qgaSkipReason: undefined,
        timings,
      }
    }
  }
  const qgaSkipReason = missing.includes("qemu-guest-agent")
    ? "qemu-ga is not installed (apt-get install qemu-guest-agent)"
    : undefined

  const scripts = path.join(e2eRoot, "scripts")
  const kernelDir = await timed(timings, "prepareKernel", async () => {
    const { stdout } = await run("sh", [path.join(scripts, "prepare-kernel.sh"), cacheDir()], {
      maxBuffer: 1 << 20,
    })
    return stdout.trim().split("\n").pop() ?? ""
  })
  const read = (name: string) => fs.readFileSync(path.join(kernelDir, name), "utf8").trim()
  const key = initrdKey()
  const build = async (file: string, extra: Array<string>) => {
    const out = path.join(kernelDir, file)
    if (!fs.existsSync(out))
      await run("sh", [path.join(scripts, "build-initramfs.sh"), kernelDir, out, ...extra])
    const now = new Date()
    fs.utimesSync(out, now, now) // in use: the clean-up below spares it
    return out
  }
  const initrd = await timed(timings, "buildInitrd", () => build(`initrd-${key}.gz`, []))
  const initrdQga = qgaSkipReason
    ? undefined
    : await timed(timings, "buildInitrdQga", () => build(`initrd-qga-${key}.gz`, ["--qga"]))
  // Images built from older guest files are dead weight once the key moved on, unless another checkout
  // on this machine (a different key) used one lately: removing it under a running VM fails its boot.
  for (const f of fs.readdirSync(kernelDir)) {
    if (!/^initrd-(qga-)?[0-9a-f]{12}\.gz$/.test(f) || f.includes(key)) continue
    const file = path.join(kernelDir, f)
    const idleMs = Date.now() - (fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? Date.now())
    if (idleMs > 24 * 3600_000) fs.rmSync(file, { force: true })
  }
  return {
    assets: {
      kernelDir,
      kernelPackage: read("package"),
      kernelRelease: read("release"),
      vmlinux: path.join(kernelDir, "vmlinux"),
      initrd,
      initrdQga,
    },
    skipReason: undefined,
    qgaSkipReason,
    timings,
  }
}

let memo: Promise<Setup> | undefined
/** Prepares (once per process) and returns the assets or the reason to skip. */
export const setup = (): Promise<Setup> => (memo ??= doSetup())
