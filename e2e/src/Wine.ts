/**
 * Wine: a Windows user space on this Linux machine, to run the real Windows agent (Bun's windows-x64
 * runtime and the mingw-built addon) under Wine's service manager (services.exe, sc.exe, cmd.exe).
 * One fresh prefix per suite, removed at the end. Wine 8 (Debian 12) lacks bcryptprimitives.dll, which
 * Bun imports for ProcessPrng; a one-function stand-in built with mingw-w64 (../wine/) goes into the
 * prefix's system32. Wine is not Windows: Hyper-V sockets do not exist in it, so tests use TCP loopback.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { e2eRoot } from "./setup.js"

const execFileP = promisify(execFile)

const candidates = ["/usr/lib/wine/wine64", "/usr/bin/wine64", "/usr/bin/wine"]
const wineserverCandidates = ["/usr/lib/wine/wineserver64", "/usr/lib/wine/wineserver", "/usr/bin/wineserver"]
const mingwCc = "x86_64-w64-mingw32-gcc"

export interface Wine {
  readonly prefix: string
  /** Runs a Windows program (or a `.cmd` through cmd.exe) to completion; never throws on a nonzero exit. */
  readonly run: (
    args: ReadonlyArray<string>,
    timeoutMs?: number,
  ) => Promise<{ readonly code: number; readonly stdout: string; readonly stderr: string }>
  /** Starts a Windows program and leaves it running; the caller kills it by pid. stdin: "pipe" to write to it. */
  readonly spawn: (
    args: ReadonlyArray<string>,
    options?: { readonly stdin?: "ignore" | "pipe" },
  ) => ChildProcess
  /** Makes `dir` the drive `letter:` (as a disk the guest was given). */
  readonly mapDrive: (letter: string, dir: string) => void
  /** The Linux path of `C:\...`. */
  readonly hostPath: (windowsPath: string) => string
  /** Linux pids of this prefix's processes whose command line contains `needle`. */
  readonly pidsOf: (needle: string) => ReadonlyArray<number>
  /** Stops every process of the prefix and removes it. */
  readonly close: () => Promise<void>
}

/** Why Wine cannot run here, or undefined. */
export const unavailable = (): string | undefined => {
  if (process.platform !== "linux" || process.arch !== "x64") return "Wine tests run on x86-64 Linux only"
  if (!candidates.some((c) => fs.existsSync(c)))
    return "wine64 is not installed (Debian: apt-get install wine64)"
  if (spawnSync("sh", ["-c", `command -v ${mingwCc}`]).status !== 0)
    return `${mingwCc} is not installed (Debian: apt-get install mingw-w64)`
  return undefined
}

/** Creates a prefix (about 10 s) with the ProcessPrng stand-in, and a user process that keeps its services up. */
export const create = async (): Promise<Wine> => {
  const wine = candidates.find((c) => fs.existsSync(c))!
  const wineserver = wineserverCandidates.find((c) => fs.existsSync(c))!
  const prefix = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-wine-"))
  const env = { ...process.env, WINEPREFIX: prefix, WINEDEBUG: "-all", WINEDLLOVERRIDES: "mscoree,mshtml=" }
  await execFileP(wine, ["wineboot", "--init"], { env, timeout: 120_000 })
  await execFileP(
    mingwCc,
    [
      "-O2",
      "-shared",
      "-o",
      path.join(prefix, "drive_c", "windows", "system32", "bcryptprimitives.dll"),
      path.join(e2eRoot, "wine", "bcryptprimitives.c"),
      path.join(e2eRoot, "wine", "bcryptprimitives.def"),
      "-ladvapi32",
    ],
    { timeout: 60_000 },
  )
  // Wine stops services.exe and the services it started once no ordinary Windows process is left, so an
  // idle cmd.exe (stdin held open) keeps them running between the test's sc.exe calls.
  const keeper = spawn(wine, ["cmd.exe"], { env, stdio: ["pipe", "ignore", "ignore"] })

  const hostPath = (windowsPath: string) => {
    const m = /^([A-Za-z]):\\(.*)$/.exec(windowsPath)
    if (!m) throw new Error(`not a drive path: ${windowsPath}`)
    return path.join(prefix, "dosdevices", `${m[1].toLowerCase()}:`, ...m[2].split("\\"))
  }
  return {
    prefix,
    run: async (args, timeoutMs = 60_000) => {
      try {
        const { stdout, stderr } = await execFileP(wine, [...args], { env, timeout: timeoutMs })
        return { code: 0, stdout, stderr }
      } catch (e) {
        const err = e as { code?: number | string; stdout?: string; stderr?: string; message: string }
        if (typeof err.code !== "number") throw e
        return { code: err.code, stdout: err.stdout ?? "", stderr: err.stderr ?? err.message }
      }
    },
    spawn: (args, options) =>
      spawn(wine, [...args], { env, stdio: [options?.stdin ?? "ignore", "pipe", "pipe"] }),
    mapDrive: (letter, dir) => {
      const link = path.join(prefix, "dosdevices", `${letter.toLowerCase()}:`)
      fs.rmSync(link, { force: true })
      fs.symlinkSync(dir, link)
    },
    hostPath,
    pidsOf: (needle) => {
      const pids: Array<number> = []
      for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue
        try {
          const environ = fs.readFileSync(`/proc/${entry}/environ`, "latin1")
          if (!environ.split("\0").includes(`WINEPREFIX=${prefix}`)) continue
          if (fs.readFileSync(`/proc/${entry}/cmdline`, "latin1").includes(needle)) pids.push(Number(entry))
        } catch {
          // the process ended while we looked
        }
      }
      return pids
    },
    close: async () => {
      if (keeper.pid !== undefined) keeper.kill("SIGKILL")
      // wineserver -k ends only this prefix's processes (all started by these tests).
      await execFileP(wineserver, ["-k"], { env, timeout: 30_000 }).catch(() => undefined)
      fs.rmSync(prefix, { recursive: true, force: true })
    },
  }
}
