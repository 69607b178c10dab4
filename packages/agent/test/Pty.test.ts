/**
 * exec under a terminal, with the agent running on real Bun (its PTY is Bun's): the process sees a tty
 * of the requested size, resizes reach it, piped input ends with EOF in line mode, and cancel and
 * timeout kill its whole session.
 */
import type { Session } from "@cuvette/protocol"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { alive, collect, connect, eventually, tempDir } from "./fixtures/agent.js"

const repo = fileURLToPath(new URL("../../../", import.meta.url))
const BUN = path.join(repo, "node_modules", "bun", "bin", "bun.exe")
const hasBun = fs.existsSync(BUN)
if (!hasBun && process.env.CI)
  throw new Error(`CI must run the PTY tests: ${BUN} is missing (npm ci installs bun)`)

const dir = tempDir()
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
let agent: ChildProcess
let s: Session.ClientSession

const text = async (call: { stdout: Session.Incoming }) => (await collect(call.stdout)).toString()

describe.skipIf(!hasBun)("exec under a terminal (agent on Bun)", () => {
  beforeAll(async () => {
    const sock = path.join(dir, "agent.sock")
    agent = spawn(
      BUN,
      [
        "--conditions=@cuvette/source",
        path.join(repo, "packages/agent/src/bin.ts"),
        "--listen",
        `unix:${sock}`,
      ],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    )
    let stderr = ""
    agent.stderr!.on("data", (d: Buffer) => (stderr += d))
    await eventually(() => stderr.includes("CUVETTE READY"), 20_000, `the Bun agent to start:\n${stderr}`)
    s = await connect(sock)
  }, 30_000)
  afterAll(async () => {
    await s?.close()
    agent?.kill("SIGKILL")
  })

  it("the process has a tty of the requested size and TERM, in its own session; exit code returned", async () => {
    expect((await s.open("info", {}).result).capabilities).toContain("pty")
    const call = s.open("exec", {
      argv: ["sh", "-c", 'tty; stty size; echo "TERM=$TERM"; ps -o sid= -p $$; echo $$; exit 5'],
      pty: { rows: 33, cols: 101, term: "vt100" },
    })
    const started = await call.nextEvent()
    const lines = (await text(call)).split("\r\n")
    expect(lines[0]).toMatch(/^\/dev\/pts\/\d+$/)
    expect(lines[1]).toBe("33 101")
    expect(lines[2]).toBe("TERM=vt100")
    // Session leader: the sid is its own pid, so a kill of the group reaches what it starts.
    expect(Number(lines[3])).toBe(Number(lines[4]))
    expect(started).toEqual({ _tag: "Started", pid: Number(lines[4]) })
    await expect(call.result).resolves.toMatchObject({ exitCode: 5, signal: null, timedOut: false })
  })

  it("TERM: the request's env beats the client terminal's, which beats the default", async () => {
    const term = async (extra: object) => {
      const call = s.open("exec", { argv: ["sh", "-c", 'echo "$TERM"'], ...extra })
      return (await text(call)).trim()
    }
    expect(await term({ pty: { rows: 24, cols: 80 } })).toBe("xterm-256color")
    expect(await term({ pty: { rows: 24, cols: 80, term: "vt220" } })).toBe("vt220")
    expect(await term({ pty: { rows: 24, cols: 80, term: "vt220" }, env: { set: { TERM: "dumb" } } })).toBe(
      "dumb",
    )
  })

  it("a Resize input changes the terminal's size", async () => {
    const call = s.open("exec", {
      argv: ["sh", "-c", "read line; stty size"],
      stdin: "pipe",
      pty: { rows: 24, cols: 80 },
    })
    await call.nextEvent()
    call.input({ _tag: "Resize", rows: 50, cols: 132 })
    await call.stdin.write(new TextEncoder().encode("go\r"))
    expect((await text(call)).split("\r\n")).toContain("50 132")
    await expect(call.result).resolves.toMatchObject({ exitCode: 0 })
  })

  it("typed input is echoed; the end of piped input is EOF to a line-mode reader", async () => {
    const call = s.open("exec", {
      argv: ["sh", "-c", "cat; echo done"],
      stdin: "pipe",
      pty: { rows: 24, cols: 80 },
    })
    await call.stdin.write(new TextEncoder().encode("hello\r"))
    call.stdin.end()
    // The terminal echoes the line, cat prints it back, then cat sees EOF (^D) and sh goes on.
    expect(await text(call)).toBe("hello\r\nhello\r\ndone\r\n")
    await expect(call.result).resolves.toMatchObject({ exitCode: 0 })
  })

  it("cancel kills the whole session; a timeout reports timedOut", async () => {
    const call = s.open("exec", {
      argv: ["sh", "-c", "sleep 1000 & echo $!; wait"],
      pty: { rows: 24, cols: 80 },
    })
    const started = (await call.nextEvent()) as { pid: number }
    let out = ""
    for await (const chunk of call.stdout) {
      out += Buffer.from(chunk).toString()
      if (out.includes("\n")) break
    }
    const background = Number(out.trim())
    expect(alive(background)).toBe(true)
    call.cancel()
    await expect(call.result).rejects.toMatchObject({ code: "CANCELLED" })
    await eventually(
      () => !alive(background) && !alive(started.pid),
      5_000,
      "the terminal's processes to die",
    )

    const timed = s.open("exec", { argv: ["sleep", "30"], pty: { rows: 24, cols: 80 }, timeoutMs: 200 })
    await expect(timed.result).resolves.toMatchObject({ timedOut: true, signal: "SIGKILL" })
  })

  it("a timeout signal the leader ignores is followed by SIGKILL; its background jobs end with it", async () => {
    const call = s.open("exec", {
      argv: ["sh", "-c", "trap '' TERM; sleep 300 & echo $!; sleep 20"],
      pty: { rows: 24, cols: 80 },
      timeoutMs: 300,
      killSignal: "SIGTERM",
      killAfterMs: 300,
    })
    const out = (await collect(call.stdout)).toString()
    await expect(call.result).resolves.toMatchObject({
      timedOut: true,
      timeoutSignal: "SIGKILL",
      signal: "SIGKILL",
    })
    const background = Number(out.trim())
    await eventually(() => !alive(background), 5_000, "the background sleep to be killed")
    const bg = s.open("exec", {
      argv: ["sh", "-c", "sleep 300 & echo $!; exec sleep 0.5"],
      pty: { rows: 24, cols: 80 },
    })
    const pid = Number((await collect(bg.stdout)).toString().trim())
    await expect(bg.result).resolves.toMatchObject({ exitCode: 0 })
    await eventually(() => !alive(pid), 5_000, "the background sleep to end with its leader")
  })

  it("a missing program is ENOENT naming it", async () => {
    await expect(
      s.open("exec", { argv: ["no-such-program-x"], pty: { rows: 24, cols: 80 } }).result,
    ).rejects.toMatchObject({
      code: "ENOENT",
      message: expect.stringContaining("cannot run no-such-program-x: program not found in PATH="),
    })
  })
})
