// The single-file CLIs of `npm run build:cli`: one executable per target, each carrying its native addon, and the
// linux-x64 one copied out of the repository doing what the npm CLI does against the real Bun agent on a Unix
// socket: ping, exec, deploy image (given the agent's directory) and deploy vtl2; the linux-arm64 one under qemu-user. Its start time is measured in
// `npm run bench`; here only a bound a loaded machine meets.
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { agentDir, buildAgent, repoRoot, sha256 } from "./fixtures/agent.js"
import { buildCli, type CliTarget, runFile, startAgent } from "./fixtures/cli.js"

const ADDON: Record<CliTarget, string> = {
  "linux-x64": "linux-x64",
  "linux-arm64": "linux-arm64",
  "windows-x64": "win32-x64",
}
// The arm64 file runs here under qemu-user with Debian's aarch64 glibc (scripts/setup-system.sh installs both).
const QEMU_AARCH64 = "/usr/bin/qemu-aarch64-static"
const AARCH64_SYSROOT = "/usr/aarch64-linux-gnu"
const version = JSON.parse(fs.readFileSync(path.join(repoRoot, "packages/cli/package.json"), "utf8")).version

/** What kind of executable `file` is, from its header: ELF with its e_machine, or PE (MZ). */
const kind = (file: string): string => {
  const head = Buffer.alloc(64)
  const fd = fs.openSync(file, "r")
  fs.readSync(fd, head, 0, 64, 0)
  fs.closeSync(fd)
  if (head.subarray(0, 4).equals(Buffer.from("\x7fELF", "latin1")))
    return { 62: "elf-x86-64", 183: "elf-aarch64" }[head.readUInt16LE(18)] ?? "elf-other"
  return head.subarray(0, 2).toString("latin1") === "MZ" ? "pe" : "unknown"
}

describe("single-file cuvette", () => {
  let dir: string
  let cuvette: string
  let agent: ChildProcess | undefined
  let target: string

  beforeAll(async () => {
    dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-sfx-")))
    // A copy outside the repository: nothing beside it, no node_modules, no prebuilds to fall back on.
    cuvette = path.join(dir, "cuvette")
    fs.copyFileSync(await buildCli("linux-x64"), cuvette)
    fs.chmodSync(cuvette, 0o755)
    const { agent: agentBin } = await buildAgent("linux-x64")
    target = `unix:${path.join(dir, "agent.sock")}`
    agent = await startAgent(agentBin, ["--listen", target])
  }, 300_000)
  afterAll(() => {
    if (agent?.pid !== undefined && agent.exitCode === null) process.kill(agent.pid, "SIGKILL")
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  it("build:cli writes one executable per target, each carrying its native addon", async () => {
    const expected: Record<CliTarget, string> = {
      "linux-x64": "elf-x86-64",
      "linux-arm64": "elf-aarch64",
      "windows-x64": "pe",
    }
    for (const t of Object.keys(expected) as Array<CliTarget>) {
      const file = await buildCli(t)
      expect(path.relative(repoRoot, file)).toBe(
        t === "windows-x64" ? "dist/cli/windows-x64/cuvette.exe" : `dist/cli/${t}/cuvette`,
      )
      expect(kind(file), file).toBe(expected[t])
      const addon = fs.readFileSync(path.join(repoRoot, "native/prebuilds", ADDON[t], "cuvette_native.node"))
      expect(fs.readFileSync(file).indexOf(addon), `${t} embeds its addon`).toBeGreaterThan(0)
    }
  }, 300_000)

  it("--version prints the package version", async () => {
    const r = await runFile(cuvette, ["--version"], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.toString()).toBe(`cuvette ${version}\n`)
  })

  it("pings and runs commands on the agent: stdin, stdout, stderr and the exit code", async () => {
    const ping = await runFile(cuvette, ["-H", target, "--json", "ping"], { cwd: dir })
    expect(ping.code, ping.stderr).toBe(0)
    expect(JSON.parse(ping.stdout.toString())).toMatchObject({ target, rttMs: expect.any(Number) })
    const input = randomBytes(1 << 20)
    const r = await runFile(
      cuvette,
      ["-H", target, "exec", "--", "sh", "-c", "cat; echo to-stderr >&2; exit 7"],
      { cwd: dir, stdin: input },
    )
    expect(r.code).toBe(7)
    expect(sha256(r.stdout)).toBe(sha256(input))
    expect(r.stderr).toBe("to-stderr\n")
  })

  it("deploy image writes a disk from the agent's directory; without one it says what to pass", async () => {
    const out = path.join(dir, "cidata.img")
    const r = await runFile(cuvette, ["--json", "deploy", "image", "--agent", agentDir, "--out", out], {
      cwd: dir,
    })
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout.toString())).toMatchObject({ out, format: "raw", label: "cidata" })
    expect(JSON.parse(r.stdout.toString()).files).toEqual(
      expect.arrayContaining(["cuvette-agent", "cuvette-agent.sh", "user-data"]),
    )
    expect(fs.statSync(out).size).toBeGreaterThan(fs.statSync(path.join(agentDir, "cuvette-agent")).size)

    const none = await runFile(cuvette, ["deploy", "image", "--out", path.join(dir, "none.img")], {
      cwd: dir,
    })
    expect(none.code).toBe(2)
    expect(none.stderr).toContain("no agent executable at dist/agent/linux-x64/cuvette-agent")
    expect(none.stderr).toContain("pass --agent PATH (the agent or its directory")
  })

  it("deploy vtl2 --dry-run prints the ohcldiag-dev commands", async () => {
    const r = await runFile(cuvette, ["deploy", "vtl2", "--vm", "vsock:/tmp/vm.sock", "--dry-run"], {
      cwd: dir,
    })
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.toString().trimEnd().split("\n")
    expect(lines[0]).toBe("ohcldiag-dev vsock:/tmp/vm.sock inspect build_info")
    expect(lines.at(-1)).toBe("# then wait for the agent on listen-unix:/tmp/vm.sock_4919")
  })

  it.skipIf(!fs.existsSync(QEMU_AARCH64) || !fs.existsSync(AARCH64_SYSROOT))(
    "the linux-arm64 file runs under qemu-user: its version, and exec on the agent (needs qemu-user-static and libc6-arm64-cross)",
    async () => {
      const arm64 = await buildCli("linux-arm64")
      const qemu = (args: ReadonlyArray<string>) =>
        runFile(QEMU_AARCH64, ["-L", AARCH64_SYSROOT, arm64, ...args], { cwd: dir })
      const v = await qemu(["--version"])
      expect(v.code, v.stderr).toBe(0)
      expect(v.stdout.toString()).toBe(`cuvette ${version}\n`)
      const r = await qemu(["-H", target, "exec", "--", "sh", "-c", "echo from-arm64-cli; exit 5"])
      expect(r.code, r.stderr).toBe(5)
      expect(r.stdout.toString()).toBe("from-arm64-cli\n")
    },
    120_000,
  )

  it("starts fast: the median whole-process `cuvette ping` of 21 is within a loaded machine's bound", async () => {
    const times: Array<number> = []
    for (let i = 0; i < 21; i++) {
      const t0 = performance.now()
      const r = await runFile(cuvette, ["-H", target, "ping"], { cwd: dir })
      times.push(performance.now() - t0)
      expect(r.code, r.stderr).toBe(0)
    }
    const median = times.sort((a, b) => a - b)[10]!
    console.log(`[e2e timing] single-file cuvette ping: median ${median.toFixed(1)} ms of 21`)
    // The target is 100 ms (docs/benchmarks.md measures it); 2 shared cores may double it.
    expect(median).toBeLessThan(250)
  }, 120_000)
})
