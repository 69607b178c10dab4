// `cuvette exec --tty` and `cuvette shell` against an agent on real Bun (its PTY), through the real CLI:
// with piped input, and in a real terminal (a python pty) where keys go raw to the guest and the size
// follows the window.
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type AgentHandle, bunBin, cliBin, runCli, startAgent } from "./fixtures/harness.js"

const run = promisify(execFile)
const inTerminal = fileURLToPath(new URL("./fixtures/in-terminal.py", import.meta.url))
const hasBun = fs.existsSync(bunBin)
if (!hasBun && process.env.CI) throw new Error(`CI must run the terminal tests: ${bunBin} is missing`)

describe.skipIf(!hasBun)("terminals: exec --tty and shell (agent on Bun)", { timeout: 60_000 }, () => {
  let agent: AgentHandle
  beforeAll(async () => {
    agent = await startAgent({ runtime: "bun" })
  }, 60_000)
  afterAll(() => agent?.stop())

  it("exec -t with piped input: a tty sized from LINES/COLUMNS, the guest's exit code", async () => {
    const r = await runCli(["-H", agent.target, "exec", "-t", "--", "sh", "-c", "tty; stty size; exit 3"], {
      env: { LINES: "40", COLUMNS: "120" },
    })
    expect(r.code, r.stderr).toBe(3)
    const lines = r.stdout.toString().split("\r\n")
    expect(lines[0]).toMatch(/^\/dev\/pts\/\d+$/)
    expect(lines[1]).toBe("40 120")
  })

  it("shell runs the guest's login shell, reading commands from piped input", async () => {
    const r = await runCli(["-H", agent.target, "shell"], { input: "echo $((6*7))\nexit 9\n" })
    expect(r.code, r.stderr).toBe(9)
    expect(r.stdout.toString()).toMatch(/^42\r$/m)
  })

  it("end of piped input ends the login shell (bash, whose line editor reads in raw mode)", async () => {
    const r = await runCli(["-H", agent.target, "shell"], { input: "echo hi\n", timeoutMs: 15_000 })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.toString()).toMatch(/^hi\r$/m)
    expect(r.ms).toBeLessThan(10_000)
  })

  it("end of piped input without a final newline still runs the last line and ends bash", async () => {
    const r = await runCli(["-H", agent.target, "shell", "--", "bash", "--norc", "-i"], {
      input: "echo one\necho $((6*7))",
      timeoutMs: 15_000,
    })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.toString()).toMatch(/^one\r$/m)
    expect(r.stdout.toString()).toMatch(/^42\r$/m)
    expect(r.ms).toBeLessThan(10_000)
  })

  it("end of input ends bash even when its startup outlasts the input", async () => {
    const slow = await runCli(
      ["-H", agent.target, "exec", "-t", "--", "bash", "--norc", "-i", "-c", "sleep 1; exec bash --norc -i"],
      { input: "echo one\necho two\n", timeoutMs: 15_000 },
    )
    expect(slow.code, slow.stderr).toBe(0)
    expect(slow.stdout.toString()).toMatch(/^one\r$/m)
    expect(slow.stdout.toString()).toMatch(/^two\r$/m)
  })

  it("in a real terminal: raw keys (Ctrl-C too) reach the guest and the size follows the window", async () => {
    const steps = [
      { wait: "guest$ " },
      { send: "stty size\r" },
      { wait: "30 90" },
      { resize: [44, 150] },
      { pause: 0.3 },
      { send: "stty size\r" },
      { wait: "44 150" },
      // Ctrl-C interrupts the guest's sleep, not cuvette.
      // (Node's raw mode keeps ONLCR, so the guest's \r\n shows as \r\r\n: invisible on a screen.)
      { send: "sleep 30\r" },
      { wait: "sleep 30\r" },
      { pause: 0.5 },
      { send: "\x03" },
      { send: "echo status=$?\r" },
      { wait: "status=130" },
      { send: "exit 6\r" },
    ]
    const cli = [
      process.execPath,
      cliBin,
      "-H",
      agent.target,
      "exec",
      "--tty",
      "-e",
      "PS1=guest$ ",
      "--",
      "sh",
      "-i",
    ]
    const r: { code?: number; stdout: string; stderr: string } = await run(
      "python3",
      [inTerminal, "30", "90", JSON.stringify(steps), "--", ...cli],
      { timeout: 50_000 },
    ).catch((e: { code: number; stdout: string; stderr: string }) => e)
    expect(r.code ?? 0, `${r.stdout}\n${r.stderr}`).toBe(6)
  })

  it("--json with --tty is a usage error", async () => {
    const r = await runCli(["-H", agent.target, "--json", "exec", "--tty", "--", "true"])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout.toString()).error).toMatchObject({
      code: "USAGE",
      message: expect.stringContaining("--json and a terminal do not mix"),
    })
  })
})

describe("a terminal from an agent on Node", { timeout: 60_000 }, () => {
  let agent: AgentHandle
  beforeAll(async () => {
    agent = await startAgent()
  }, 60_000)
  afterAll(() => agent?.stop())

  it("exec --tty fails with 255 and names the agent that has terminals", async () => {
    const r = await runCli(["-H", agent.target, "exec", "--tty", "--", "sh"])
    expect(r.code).toBe(255)
    expect(r.stderr).toContain("a terminal (--tty, shell) needs the Bun-built agent (npm run build:agent)")
  })
})
