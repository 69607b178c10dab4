// The real `cuvette` (bin/cuvette.mjs) against a real agent (packages/agent) on a Unix socket.
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import {
  alive,
  cliBin,
  eventually,
  runCli,
  spawnCli,
  startAgent,
  type AgentHandle,
} from "./fixtures/harness.js"

const runFile = promisify(execFile)

let agent: AgentHandle
const cli = (args: ReadonlyArray<string>, o?: Parameters<typeof runCli>[1]) =>
  runCli(["-H", agent.target, ...args], o)

beforeAll(async () => {
  agent = await startAgent()
})
afterAll(async () => {
  await agent?.stop()
})

/** Starts `exec -- sh -c 'echo $$; exec sleep 1000'` and resolves the guest pid from its first line. */
const startSleeper = async () => {
  const child = spawnCli(["-H", agent.target, "exec", "--", "sh", "-c", "echo $$; exec sleep 1000"])
  child.stdin!.end()
  let text = ""
  const pid = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no pid from the guest")), 20_000)
    child.stdout!.on("data", (d: Buffer) => {
      text += d.toString()
      const m = /^(\d+)\n/.exec(text)
      if (m) {
        clearTimeout(timer)
        resolve(Number(m[1]))
      }
    })
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  )
  return { child, pid, exited }
}

/** Reads the child's first stdout line, then closes the pipe as `head -1` does. */
const closeAfterFirstLine = (child: ReturnType<typeof spawnCli>) => {
  let stderr = ""
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) =>
    child.on("close", (code) => resolve({ code, stderr })),
  )
  const first = new Promise<string>((resolve) => {
    let text = ""
    const onData = (d: Buffer) => {
      text += d.toString()
      const nl = text.indexOf("\n")
      if (nl === -1) return
      child.stdout!.off("data", onData)
      child.stdout!.destroy()
      resolve(text.slice(0, nl))
    }
    child.stdout!.on("data", onData)
  })
  return { first, exited }
}

describe.concurrent("cuvette against a real agent", { timeout: 60_000 }, () => {
  it("the bin prints its package.json version (source checkout, bundled on first run)", async () => {
    const pkg = JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version: string
    }
    const run = await runCli(["--version"])
    expect(run.code).toBe(0)
    expect(run.stdout.toString()).toBe(`cuvette ${pkg.version}\n`)
  })

  it("exec exits with the guest's code, 128+N for a signal", async () => {
    const [ok, seven, term] = await Promise.all([
      cli(["exec", "--", "true"]),
      cli(["exec", "--", "sh", "-c", "exit 7"]),
      cli(["exec", "--", "sh", "-c", "kill -TERM $$"]),
    ])
    expect(ok.code).toBe(0)
    expect(seven.code).toBe(7)
    expect(term.code).toBe(128 + 15)
  })

  it("exec streams output live, stdout and stderr apart", async () => {
    const child = spawnCli([
      "-H",
      agent.target,
      "exec",
      "--",
      "sh",
      "-c",
      "echo one; echo two >&2; sleep 2; echo three",
    ])
    child.stdin!.end()
    const firstOut = new Promise<number>((resolve) => child.stdout!.once("data", () => resolve(Date.now())))
    let out = ""
    let err = ""
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()))
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()))
    const exit = new Promise<number>((resolve) => child.on("close", () => resolve(Date.now())))
    const [first, end] = await Promise.all([firstOut, exit])
    expect(end - first).toBeGreaterThan(1000)
    expect(out).toBe("one\nthree\n")
    expect(err).toBe("two\n")
  })

  it("exec forwards piped stdin byte-identical", async () => {
    const input = crypto.randomBytes(3 * 1024 * 1024 + 17)
    const r = await cli(["exec", "--", "cat"], { input })
    expect(r.code).toBe(0)
    expect(r.stdout.equals(input)).toBe(true)
  })

  it("exec --json prints one document with the output as text", async () => {
    const r = await cli([
      "--json",
      "exec",
      "-e",
      "GREETING=hi",
      "--",
      "sh",
      "-c",
      "echo $GREETING; echo oops >&2; exit 3",
    ])
    expect(r.code).toBe(3)
    const doc = JSON.parse(r.stdout.toString())
    expect(doc).toMatchObject({
      exitCode: 3,
      signal: null,
      timedOut: false,
      stdout: "hi\n",
      stderr: "oops\n",
    })
    expect(typeof doc.durationMs).toBe("number")
    const bin = await cli(["--json", "exec", "--", "printf", "\\377\\376"])
    expect(JSON.parse(bin.stdout.toString())).toMatchObject({ stdout: "//4=", stdoutEncoding: "base64" })
  })

  it("exec -i forwards a terminal's stdin; without -i a terminal's stdin is left alone", async () => {
    const inTerminal = fileURLToPath(new URL("./fixtures/in-terminal.py", import.meta.url))
    const inTty = (flags: ReadonlyArray<string>, steps: ReadonlyArray<object>) =>
      runFile("python3", [
        inTerminal,
        "24",
        "80",
        JSON.stringify(steps),
        "--",
        process.execPath,
        cliBin,
        "-H",
        agent.target,
        "exec",
        ...flags,
        "--",
        "sh",
        "-c",
        "read x; echo got-$x",
      ]).catch((e: { code: number; stdout: string; stderr: string }) => e)
    const forwarded = await inTty(["-i"], [{ send: "abc\r" }, { wait: "got-abc" }])
    expect(forwarded.stdout).toContain("got-abc")
    const alone = await inTty([], [{ wait: "got-" }])
    expect(alone.stdout).toMatch(/got-\r?\n/)
  })

  it("read of a missing file exits 1 naming the target and the path", async () => {
    const r = await cli(["read", "/nonexistent/nope"])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(agent.target)
    expect(r.stderr).toContain(":/nonexistent/nope")
    expect(r.stderr).toContain("cuvette ls")
    const j = await cli(["--json", "read", "/nonexistent/nope"])
    expect(j.code).toBe(1)
    expect(JSON.parse(j.stdout.toString())).toMatchObject({
      error: { code: "ENOENT", target: agent.target, path: "/nonexistent/nope" },
    })
  })

  it("write into a missing directory exits 1; -p creates it; read gives the bytes back", async () => {
    const file = path.join(agent.dir, "w", "sub", "f.txt")
    const missing = await cli(["write", file], { input: "data" })
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain(`:${file}`)
    const ok = await cli(["write", "-p", "--mode", "600", file], { input: "data\n" })
    expect(ok.code).toBe(0)
    expect(fs.statSync(file).mode & 0o777).toBe(0o600)
    const back = await cli(["read", file])
    expect(back.stdout.toString()).toBe("data\n")
  })

  it("rm of a non-empty directory without -r exits 1; with -r it goes", async () => {
    const dir = path.join(agent.dir, "rmme")
    fs.mkdirSync(path.join(dir, "inner"), { recursive: true })
    fs.writeFileSync(path.join(dir, "inner", "f"), "x")
    const r = await cli(["rm", dir])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain("rm -r")
    expect((await cli(["rm", "-r", dir])).code).toBe(0)
    expect(fs.existsSync(dir)).toBe(false)
  })

  it("ls, stat, mkdir, mv, info, time and ping work, in --json too", async () => {
    const dir = path.join(agent.dir, "misc")
    expect((await cli(["mkdir", "-p", `${dir}/a/b`])).code).toBe(0)
    fs.writeFileSync(path.join(dir, "f"), "12345")
    expect((await cli(["mv", `:${dir}/f`, `:${dir}/g`])).code).toBe(0)
    const ls = await cli(["--json", "ls", dir])
    expect(JSON.parse(ls.stdout.toString()).entries.map((e: { name: string }) => e.name)).toEqual(["a", "g"])
    const stat = await cli(["--json", "stat", `${dir}/g`])
    expect(JSON.parse(stat.stdout.toString())).toMatchObject({ type: "file", size: 5 })
    const [info, time, ping] = await Promise.all([cli(["--json", "info"]), cli(["time"]), cli(["ping"])])
    expect(JSON.parse(info.stdout.toString())).toMatchObject({ protocolVersion: 1 })
    expect(time.code).toBe(0)
    expect(ping.stdout.toString()).toMatch(/^pong from unix:.* ms\n$/)
  })

  it("cp copies a 16 MiB file both ways with identical bytes", async () => {
    const src = path.join(agent.dir, "big.bin")
    const bytes = crypto.randomBytes(16 * 1024 * 1024)
    fs.writeFileSync(src, bytes)
    const up = await cli(["cp", src, `:${agent.dir}/big-up.bin`])
    expect(up.code).toBe(0)
    expect(fs.readFileSync(path.join(agent.dir, "big-up.bin")).equals(bytes)).toBe(true)
    const down = await cli(["--json", "cp", `:${agent.dir}/big-up.bin`, path.join(agent.dir, "big-down.bin")])
    expect(down.code).toBe(0)
    expect(JSON.parse(down.stdout.toString())).toMatchObject({ files: 1, bytes: bytes.length })
    expect(fs.readFileSync(path.join(agent.dir, "big-down.bin")).equals(bytes)).toBe(true)
  })

  it("cp to a missing host directory blames the host path, not the guest's", async () => {
    const dest = path.join(agent.dir, "missing", "dir", "x")
    const r = await cli(["cp", ":/etc/hostname", dest])
    expect(r.code).toBe(1)
    // The directory really missing is named (missing/, not missing/dir/), and it is the host's.
    expect(r.stderr).toContain(`host: the directory ${path.join(agent.dir, "missing")} does not exist`)
    expect(r.stderr).not.toContain("cuvette ls")
    expect(r.stderr).not.toContain(".cuvette-")
  })

  it("Ctrl-C during cp from the guest leaves no temporary file beside the destination", async () => {
    const dir = path.join(agent.dir, "interrupted")
    fs.mkdirSync(dir)
    // /dev/zero never ends: the copy is surely under way when the signal comes.
    const child = spawnCli(["-H", agent.target, "cp", ":/dev/zero", path.join(dir, "zero")])
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
    const started = () => {
      const [temp] = fs.readdirSync(dir).filter((n) => n.includes(".cuvette-"))
      return temp !== undefined && fs.statSync(path.join(dir, temp)).size > 1 << 20
    }
    expect(await eventually(started, 20_000)).toBe(true)
    child.kill("SIGINT")
    expect(await exited).toBe(130)
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it("cp -r copies a small tree both ways", async () => {
    const tree = path.join(agent.dir, "tree")
    fs.mkdirSync(path.join(tree, "a", "b"), { recursive: true })
    fs.mkdirSync(path.join(tree, "empty"))
    fs.writeFileSync(path.join(tree, "top.txt"), "top")
    fs.writeFileSync(path.join(tree, "a", "b", "deep.bin"), crypto.randomBytes(70_000))
    const noR = await cli(["cp", tree, `:${agent.dir}/tree-up`])
    expect(noR.code).toBe(1)
    expect(noR.stderr).toContain("cp -r")
    expect((await cli(["cp", "-r", tree, `:${agent.dir}/tree-up`])).code).toBe(0)
    expect((await cli(["cp", "-r", `:${agent.dir}/tree-up`, path.join(agent.dir, "tree-down")])).code).toBe(0)
    for (const copy of ["tree-up", "tree-down"]) {
      const base = path.join(agent.dir, copy)
      expect(fs.readFileSync(path.join(base, "top.txt"), "utf8")).toBe("top")
      expect(
        fs
          .readFileSync(path.join(base, "a", "b", "deep.bin"))
          .equals(fs.readFileSync(path.join(tree, "a", "b", "deep.bin"))),
      ).toBe(true)
      expect(fs.statSync(path.join(base, "empty")).isDirectory()).toBe(true)
    }
  })

  it("an unreachable target exits 3 quickly with a hint", async () => {
    const r = await runCli(["-H", `unix:${agent.dir}/nobody.sock`, "ping"])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain("is the agent running?")
    expect(r.ms).toBeLessThan(15_000)
    const e = await runCli(["exec", "--", "true"], {
      env: { CUVETTE_TARGET: `unix:${agent.dir}/nobody.sock` },
    })
    expect(e.code).toBe(3)
    const w = await runCli(["-H", `unix:${agent.dir}/nobody.sock`, "--timeout", "1s", "wait"])
    expect(w.code).toBe(3)
  })

  it("a missing or wrong token exits 4 with one message saying how to pass it", async () => {
    const token = path.join(agent.dir, "token")
    fs.writeFileSync(token, "secret-token")
    const wrong = path.join(agent.dir, "wrong-token")
    fs.writeFileSync(wrong, "not-it")
    const guarded = await startAgent({ tokenFile: token })
    try {
      const [missing, bad, badExec, good] = await Promise.all([
        runCli(["-H", guarded.target, "ping"]),
        runCli(["-H", guarded.target, "--token-file", wrong, "ping"]),
        runCli(["-H", guarded.target, "exec", "--", "true"], { env: { CUVETTE_TOKEN_FILE: wrong } }),
        runCli(["-H", guarded.target, "--token-file", token, "ping"]),
      ])
      for (const r of [missing, bad, badExec]) {
        expect(r.code).toBe(4)
        expect(r.stderr.trim().split("\n")).toHaveLength(1)
        expect(r.stderr).toContain("--token-file FILE or CUVETTE_TOKEN_FILE")
        expect(r.stderr).not.toContain("cuvette wait")
      }
      expect(missing.stderr).toContain("none was given")
      expect(bad.stderr).toContain("wrong token")
      expect(good.code).toBe(0)
    } finally {
      await guarded.stop()
    }
  })

  it("exec --timeout: above the maximum (600h) is a usage error; 0 is no timeout", async () => {
    const long = await cli(["--timeout", "600h", "exec", "--", "sleep", "0.3"])
    expect(long.code).toBe(2)
    expect(long.stderr).toContain("above the longest guest timeout")
    const none = await cli(["--timeout", "0", "exec", "--", "sh", "-c", "sleep 0.3; echo finished"])
    expect(none).toMatchObject({ code: 0, stderr: "" })
    expect(none.stdout.toString()).toBe("finished\n")
  })

  it("exec --detach prints the pid of a process that outlives the call; it takes no --timeout", async () => {
    const r = await cli(["exec", "--detach", "--", "sleep", "300"])
    const pid = Number(r.stdout.toString().trim())
    try {
      expect(r.code).toBe(0)
      expect(pid).toBeGreaterThan(1)
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(alive(pid)).toBe(true)
    } finally {
      if (pid > 1) process.kill(pid, "SIGKILL")
    }
    const json = await cli(["--json", "exec", "--detach", "--", "sleep", "300"])
    const doc = JSON.parse(json.stdout.toString()) as { pid: number; detached: boolean }
    process.kill(doc.pid, "SIGKILL")
    expect(doc).toEqual({ pid: doc.pid, detached: true })
    const clash = await cli(["--timeout", "1s", "exec", "--detach", "--", "true"])
    expect(clash.code).toBe(2)
    expect(clash.stderr).toContain(
      "--detach starts something that outlives this call: it cannot take --timeout",
    )
  })

  it("exec --timeout 1s also bounds the connect wait on a port that never answers", async () => {
    const silent = net.createServer(() => undefined)
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))
    try {
      const port = (silent.address() as net.AddressInfo).port
      // What starting the CLI costs on this machine now, so the bound is about the wait alone.
      const start = await runCli(["--version"])
      const r = await runCli(["--timeout", "1s", "--target", `tcp:127.0.0.1:${port}`, "exec", "--", "true"])
      // The handshake waited what was left of the 1 s deadline (the default is 10 s); the bound on wall
      // time leaves room for a loaded machine, far below the 10 s this used to cost.
      expect(r.stderr).toMatch(/no handshake from tcp:127.0.0.1:\d+ within (0\.\d+|1) s /)
      expect(r.ms - start.ms).toBeLessThan(5000)
      expect(r.code).toBe(3)
    } finally {
      silent.close()
    }
  })

  it("wait returns once the agent answers", async () => {
    const r = await cli(["wait", "--timeout", "10s"])
    expect(r.code).toBe(0)
    expect(r.stdout.toString()).toContain("is ready")
  })

  it("the CLI killed with SIGKILL during exec leaves no guest process behind", async () => {
    const { child, pid, exited } = await startSleeper()
    expect(alive(pid)).toBe(true)
    child.kill("SIGKILL")
    await exited
    expect(await eventually(() => !alive(pid), 10_000)).toBe(true)
  })

  it("SIGTERM during exec exits 143 and the guest process is gone", async () => {
    const { child, pid, exited } = await startSleeper()
    child.kill("SIGTERM")
    const { code } = await exited
    expect(code).toBe(143)
    expect(await eventually(() => !alive(pid), 10_000)).toBe(true)
  })

  it("exec -- yes | head -1: exits 141 without a word and the guest's yes is gone", async () => {
    const child = spawnCli(["-H", agent.target, "exec", "--", "sh", "-c", "echo $$; exec yes"])
    child.stdin!.end()
    const { first, exited } = closeAfterFirstLine(child)
    const pid = Number(await first)
    const start = Date.now()
    const { code, stderr } = await exited
    expect(Date.now() - start).toBeLessThan(5000)
    expect(code).toBe(141)
    expect(stderr).toBe("")
    expect(await eventually(() => !alive(pid), 5000)).toBe(true)
  })

  it("kmsg -f | head -1 exits 141 without a word, and the agent stops reading the log", async () => {
    // A FIFO stands in for /dev/kmsg (unreadable to an unprivileged runner); it is held open for
    // writing, so the follow never ends by itself.
    const dir = fs.mkdtempSync(path.join(agent.dir, "kmsg-"))
    const device = path.join(dir, "kmsg")
    await runFile("mkfifo", [device])
    const writer = fs.openSync(device, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
    fs.writeSync(writer, "6,1,5140900,-;first record\n")
    process.env.CUVETTE_KMSG_DEVICE = device
    const starting = startAgent() // spawns at once, with this environment
    delete process.env.CUVETTE_KMSG_DEVICE
    const logAgent = await starting
    const agentReads = () =>
      fs.readdirSync(`/proc/${logAgent.pid}/fd`).some((fd) => {
        try {
          return fs.readlinkSync(`/proc/${logAgent.pid}/fd/${fd}`) === device
        } catch {
          return false
        }
      })
    try {
      const child = spawnCli(["-H", logAgent.target, "kmsg", "-f"])
      child.stdin!.end()
      const { first, exited } = closeAfterFirstLine(child)
      expect(await first).toBe("[    5.140900] first record")
      expect(agentReads()).toBe(true)
      // As with dmesg -w | head -1, the next record is what meets the closed pipe.
      fs.writeSync(writer, "6,2,5140901,-;second record\n")
      const { code, stderr } = await exited
      expect(code).toBe(141)
      expect(stderr).toBe("")
      expect(await eventually(() => !agentReads(), 5000)).toBe(true)
    } finally {
      fs.closeSync(writer)
      await logAgent.stop()
    }
  })

  it("read into a closed pipe exits 141 without a word", async () => {
    const file = path.join(agent.dir, "lines.txt")
    fs.writeFileSync(file, "line\n".repeat(8 * 1024 * 1024))
    const child = spawnCli(["-H", agent.target, "read", file])
    child.stdin!.end()
    const { first, exited } = closeAfterFirstLine(child)
    expect(await first).toBe("line")
    const start = Date.now()
    const { code, stderr } = await exited
    expect(Date.now() - start).toBeLessThan(5000)
    expect(code).toBe(141)
    expect(stderr).toBe("")
  })

  it("Ctrl-C during exec exits 130 and the guest process is gone", async () => {
    const { child, pid, exited } = await startSleeper()
    child.kill("SIGINT")
    const { code } = await exited
    expect(code).toBe(130)
    expect(await eventually(() => !alive(pid), 10_000)).toBe(true)
  })
})
