import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import * as Ohcldiag from "../src/Ohcldiag.js"
import { tempDir } from "./fixtures/tools.js"

const fake = path.resolve(import.meta.dirname, "fixtures/ohcldiag-dev.mjs")
let t: ReturnType<typeof tempDir>
let mountPoint: string
const started: Array<number> = []

const env = (vars: Record<string, string>) => {
  for (const [k, v] of Object.entries(vars)) process.env[k] = v
}

beforeEach(() => {
  t = tempDir()
  mountPoint = path.join(t.dir, "vtl2", "cidata")
  const bin = path.join(t.dir, "bin")
  fs.mkdirSync(bin)
  // a fake `mount` that records its arguments and adds the mount to the fake /proc/mounts
  fs.writeFileSync(
    path.join(bin, "mount"),
    `#!/bin/sh\n[ -n "$FAKE_MOUNT_FAIL" ] && { echo "mount: mounting $1 on $2 failed: No such device" >&2; exit 255; }\necho "$*" >> "$FAKE_STATE/mount-calls"\necho "$1 $2 vfat rw 0 0" >> "$FAKE_MOUNTS"\n`,
    { mode: 0o755 },
  )
  fs.writeFileSync(path.join(t.dir, "mounts"), "proc /proc proc rw 0 0\n")
  env({
    FAKE_LOG: path.join(t.dir, "argv.log"),
    FAKE_STATE: t.dir,
    FAKE_MOUNTS: path.join(t.dir, "mounts"),
    FAKE_BIN: bin,
    FAKE_NOT_READY: "0",
    FAKE_MOUNT_FAIL: "",
  })
})

afterEach(() => {
  for (const pid of started.splice(0)) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
  t.cleanup()
})

/** Puts a launcher on the "disk" that records its args and fds, then lingers holding whatever fds it got. */
const placeLauncher = () => {
  fs.mkdirSync(mountPoint, { recursive: true })
  fs.writeFileSync(
    path.join(mountPoint, "cuvette-agent.sh"),
    `#!/bin/sh\necho "$$ $(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1) $(readlink /proc/$$/fd/2) $*" > "${t.dir}/agent-started"\nexec sleep 30\n`,
    { mode: 0o755 },
  )
}

const loggedArgv = (): Array<Array<string>> =>
  fs
    .readFileSync(path.join(t.dir, "argv.log"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))

/** The launcher's line, once it is complete (the shell creates the file before it writes the line). */
const agentLine = async () => {
  const file = path.join(t.dir, "agent-started")
  const read = () => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "")
  for (let i = 0; i < 250 && !read().endsWith("\n"); i++) await new Promise((r) => setTimeout(r, 20))
  const line = read().trim().split(" ")
  const pid = Number(line[0])
  // Never kill(0) or kill(-1) in afterEach: those signal the test runner's whole process group.
  if (Number.isInteger(pid) && pid > 1) started.push(pid)
  return line
}

const options = (extra: Partial<Ohcldiag.Options> = {}): Ohcldiag.Options => ({
  vm: "vsock:/tmp/vm.vtl2.sock",
  ohcldiag: fake,
  mountPoint,
  retry: { initialDelayMs: 10, maxDelayMs: 40, timeoutMs: 5000 },
  commandTimeoutMs: 5000,
  ...extra,
})

describe("Ohcldiag.deploy against a stand-in ohcldiag-dev", () => {
  it("runs wait, mount and start in order, returns although the agent keeps running, then waits for it", async () => {
    placeLauncher()
    let waited = false
    const t0 = Date.now()
    const result = await Ohcldiag.deploy(
      options({
        agentArgs: ["--listen", "unix:/run/a b.sock"],
        waitForAgent: async () => void (waited = true),
      }),
    )
    expect(Date.now() - t0).toBeLessThan(4000) // the launcher sleeps 30 s: run returned because no fd was inherited
    expect(waited).toBe(true)
    expect(loggedArgv()).toEqual([
      ["vsock:/tmp/vm.vtl2.sock", "inspect", "build_info"],
      ["vsock:/tmp/vm.vtl2.sock", "run", "--", "sh", "-c", Ohcldiag.mountScript("cidata", mountPoint)],
      [
        "vsock:/tmp/vm.vtl2.sock",
        "run",
        "--",
        "sh",
        "-c",
        Ohcldiag.startScript(mountPoint, ["--listen", "unix:/run/a b.sock"]),
      ],
    ])
    expect(result.commands.map((c) => c.argv.slice(1))).toEqual(loggedArgv())
    expect(fs.readFileSync(path.join(t.dir, "mount-calls"), "utf8")).toBe(`LABEL=cidata ${mountPoint}\n`)
    const [, stdin, stdout, stderr, ...args] = await agentLine()
    expect([stdin, stdout, stderr]).toEqual(["/dev/null", "/dev/null", "/dev/null"])
    expect(args.join(" ")).toBe("--listen unix:/run/a b.sock")
  })

  it("mounts only once: a second bring-up finds the disk mounted and starts the agent again", async () => {
    placeLauncher()
    await Ohcldiag.deploy(options())
    await agentLine()
    fs.rmSync(path.join(t.dir, "agent-started"))
    await Ohcldiag.deploy(options())
    await agentLine()
    expect(fs.readFileSync(path.join(t.dir, "mount-calls"), "utf8").trim().split("\n")).toHaveLength(1)
  })

  it("retries with backoff while the diag server does not answer, then goes on", async () => {
    placeLauncher()
    env({ FAKE_NOT_READY: "3" })
    const steps: Array<string> = []
    const result = await Ohcldiag.deploy(
      options({ onStep: (s, d) => steps.push(`${s}: ${d.split(" ")[0]}`) }),
    )
    expect(result.diagAttempts).toBe(4)
    expect(loggedArgv().filter((a) => a[1] === "inspect")).toHaveLength(4)
    expect(steps.slice(0, 4)).toEqual([
      `wait-for-diag: ${fake}`,
      "wait-for-diag: retry",
      "wait-for-diag: retry",
      "wait-for-diag: retry",
    ])
    await agentLine()
  })

  it("gives up within its budget, naming the step, the command and the tool's output", async () => {
    env({ FAKE_NOT_READY: "1000" })
    const p = Ohcldiag.deploy(
      options({ vm: "my-vm", retry: { initialDelayMs: 10, maxDelayMs: 20, timeoutMs: 300 } }),
    )
    await expect(p).rejects.toMatchObject({ _tag: "OhcldiagError", step: "wait-for-diag", exitCode: 1 })
    await expect(p).rejects.toThrow(
      new RegExp(
        `step "wait-for-diag" failed: exited with code 1; the diag server did not answer in \\d+ attempts over 300 ms[^]*command: ${fake} my-vm inspect build_info[^]*VM is not running`,
      ),
    )
    expect(loggedArgv().every((a) => a[1] === "inspect")).toBe(true)
  })

  it("stops at a failing mount with the command line and mount's message, and starts nothing", async () => {
    placeLauncher()
    env({ FAKE_MOUNT_FAIL: "1" })
    const error = await Ohcldiag.deploy(options()).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(Ohcldiag.OhcldiagError)
    const e = error as Ohcldiag.OhcldiagError
    expect(e.step).toBe("mount")
    expect(e.message).toContain(
      `command: ${Ohcldiag.formatCommand([fake, "vsock:/tmp/vm.vtl2.sock", "run", "--", "sh", "-c", Ohcldiag.mountScript("cidata", mountPoint)])}`,
    )
    expect(e.message).toContain("mount: mounting LABEL=cidata on")
    expect(e.message).toContain("attached to VTL2")
    expect(loggedArgv()).toHaveLength(2)
    expect(fs.existsSync(path.join(t.dir, "agent-started"))).toBe(false)
  })

  it("reports a missing ohcldiag-dev and a failing agent wait by step", async () => {
    await expect(Ohcldiag.deploy(options({ ohcldiag: path.join(t.dir, "nope") }))).rejects.toThrow(
      /"wait-for-diag" failed: cannot run .*nope: .*ENOENT.*pass its path \(--ohcldiag\)/,
    )
    placeLauncher()
    const p = Ohcldiag.deploy(
      options({ waitForAgent: () => Promise.reject(new Error("connect ETIMEDOUT after 30 s")) }),
    )
    await expect(p).rejects.toMatchObject({ step: "wait-for-agent" })
    await expect(p).rejects.toThrow(/did not answer: connect ETIMEDOUT after 30 s/)
    await agentLine()
  })

  it("dry run returns the exact commands and runs nothing", async () => {
    const result = await Ohcldiag.deploy({
      vm: "hyperv-id:{0e8c...}",
      dryRun: true,
      log: "kmsg",
      waitForAgent: () => Promise.reject(new Error("must not be called")),
    })
    expect(result.dryRun).toBe(true)
    expect(result.commands.map((c) => Ohcldiag.formatCommand(c.argv))).toEqual([
      "ohcldiag-dev 'hyperv-id:{0e8c...}' inspect build_info",
      `ohcldiag-dev 'hyperv-id:{0e8c...}' run -- sh -c 'mkdir -p /cidata && { while read -r _ m _; do [ "$m" = /cidata ] && exit 0; done </proc/mounts; mount LABEL=cidata /cidata; }'`,
      "ohcldiag-dev 'hyperv-id:{0e8c...}' run -- sh -c '/cidata/cuvette-agent.sh </dev/null >/dev/kmsg 2>&1 &'",
    ])
    expect(fs.existsSync(path.join(t.dir, "argv.log"))).toBe(false)
  })
})
