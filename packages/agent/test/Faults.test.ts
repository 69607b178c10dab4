/**
 * Faults against the agent as a child process (node bin/cuvette-agent.mjs): clients that vanish or
 * stop reading, interrupted writes, garbage on the socket, TCP without a token, power and crash.
 */
import { Constants, Frame } from "@cuvette/protocol"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  alive,
  type ChildAgent,
  collect,
  connect,
  eventually,
  rssKiB,
  spawnAgent,
  tempDir,
} from "./fixtures/agent.js"

let dir: string
let sock: string
let agent: ChildAgent

beforeAll(async () => {
  dir = tempDir()
  sock = path.join(dir, "agent.sock")
  agent = await spawnAgent(["--listen", `unix:${sock}`])
})
afterAll(() => {
  agent?.kill()
  fs.rmSync(dir, { recursive: true, force: true })
})

/** Members of a process group, from /proc/<pid>/stat field 5. */
const groupMembers = (pgid: number): Array<number> =>
  fs
    .readdirSync("/proc")
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        const stat = fs.readFileSync(`/proc/${n}/stat`, "utf8")
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
        return Number(fields[2]) === pgid && fields[0] !== "Z"
      } catch {
        return false
      }
    })
    .map(Number)

const tempFiles = () => fs.readdirSync(dir).filter((n) => n.includes(".cuvette-"))

describe("interrupted operations", () => {
  it("a write cancelled midway leaves the old content and no temp file", async () => {
    const s = await connect(sock)
    const file = path.join(dir, "cancelled")
    fs.writeFileSync(file, "old content")
    const w = s.open("writeFile", { path: file, size: 10 * 1024 * 1024 })
    await w.stdin.write(randomBytes(1024 * 1024))
    await eventually(() => tempFiles().length === 1, 5000, "the temp file to appear")
    w.cancel()
    await expect(w.result).rejects.toMatchObject({ code: "CANCELLED" })
    await eventually(() => tempFiles().length === 0, 5000, "the temp file to go")
    expect(fs.readFileSync(file, "utf8")).toBe("old content")
    // The session is still usable.
    await expect(s.open("ping", {}).result).resolves.toEqual({})
    s.close()
  })

  it("a write whose client socket is destroyed midway leaves no file and no temp file", async () => {
    const socket = net.connect(sock)
    const { ByteStream, Session } = await import("@cuvette/protocol")
    const s = await Session.openClient(ByteStream.fromDuplex(socket, { description: "unix" }))
    const file = path.join(dir, "vanished")
    const w = s.open("writeFile", { path: file })
    await w.stdin.write(randomBytes(1024 * 1024))
    await eventually(() => tempFiles().length === 1, 5000, "the temp file to appear")
    socket.destroy()
    await eventually(() => tempFiles().length === 0, 5000, "the temp file to go")
    expect(fs.existsSync(file)).toBe(false)
  })

  it("a client destroyed during exec takes the whole process group with it", async () => {
    const socket = net.connect(sock)
    const { ByteStream, Session } = await import("@cuvette/protocol")
    const s = await Session.openClient(ByteStream.fromDuplex(socket, { description: "unix" }))
    const call = s.open("exec", { argv: ["sh", "-c", "sleep 1000 & sleep 1000"] })
    const started = await call.nextEvent()
    const pgid = started!.pid
    await eventually(() => groupMembers(pgid).length >= 3, 5000, "sh and both sleeps")
    const members = groupMembers(pgid)
    socket.destroy()
    await eventually(
      () => members.every((p) => !alive(p)),
      5000,
      `processes ${members.join(", ")} to be gone`,
    )
  })

  it("a cancelled exec is killed too", async () => {
    const s = await connect(sock)
    const call = s.open("exec", { argv: ["sh", "-c", "sleep 1000 & sleep 1000"] })
    const pgid = (await call.nextEvent())!.pid
    await eventually(() => groupMembers(pgid).length >= 3, 5000, "sh and both sleeps")
    const members = groupMembers(pgid)
    call.cancel()
    await expect(call.result).rejects.toMatchObject({ code: "CANCELLED" })
    await eventually(() => members.every((p) => !alive(p)), 5000, "the group to be gone")
    s.close()
  })
})

describe("backpressure", () => {
  it("a client that stops reading a 100 MiB stdout bounds the agent's memory, then gets every byte", async () => {
    const s = await connect(sock)
    const total = 100 * 1024 * 1024
    const before = rssKiB(agent.pid)
    const call = s.open("exec", { argv: ["head", "-c", String(total), "/dev/zero"] })
    let got = 0
    // Read a little, then stop: the agent may hold at most its window plus the pipe.
    while (got < 4 * 1024 * 1024) got += (await call.stdout.read())!.byteLength
    await new Promise((r) => setTimeout(r, 1500))
    const paused = rssKiB(agent.pid)
    const held = call.stdout.buffered
    for await (const chunk of call.stdout) got += chunk.byteLength
    const result = await call.result
    const after = rssKiB(agent.pid)
    console.log(
      `RSS (KiB) before ${before}, paused ${paused} (+${paused - before}), after ${after}; client held ${held} bytes`,
    )
    expect(result.exitCode).toBe(0)
    expect(got).toBe(total)
    // The protocol window is 2 MiB per channel and the pipe 64 KiB: anything near the 100 MiB would mean
    // unbounded buffering. 64 MiB leaves room for V8's heap growth and GC timing.
    expect(paused - before).toBeLessThan(64 * 1024)
    expect(held).toBeLessThanOrEqual(Constants.DEFAULT_WINDOW)
    s.close()
  })
})

describe("bad input", () => {
  it("random bytes and an oversize frame close that connection; other clients keep working", async () => {
    const good = await connect(sock)
    const garbage = (bytes: Uint8Array) => {
      const socket = net.connect(sock, () => socket.write(bytes))
      socket.on("data", () => {})
      socket.on("error", () => {})
      const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()))
      return { socket, closed }
    }
    const random = garbage(randomBytes(4096))
    // A valid opening followed by a header claiming 1 GiB: refused before anything is allocated.
    const oversize = garbage(
      Buffer.concat([Constants.MAGIC, Frame.encodeHeader(Frame.FrameType.Hello, 0, 0, 1024 * 1024 * 1024)]),
    )
    await random.closed // no magic: that connection is dropped at once
    await expect(good.open("ping", {}).result).resolves.toEqual({})
    const again = await connect(sock)
    const r = again.open("exec", { argv: ["echo", "still here"] })
    expect((await collect(r.stdout)).toString()).toBe("still here\n")
    expect(alive(agent.pid)).toBe(true)
    oversize.socket.destroy()
    good.close()
    again.close()
  })

  it("a frame over the limit after the handshake is skipped with an error; the session stays usable", async () => {
    const socket = net.connect(sock)
    const { ByteStream, Session } = await import("@cuvette/protocol")
    const s = await Session.openClient(ByteStream.fromDuplex(socket, { description: "unix" }))
    const length = Constants.DEFAULT_MAX_FRAME + 1
    // The stream is still in sync (the length is known): the agent skips the payload and carries on.
    socket.write(Frame.encodeHeader(Frame.FrameType.Data, 0, 99, length))
    socket.write(Buffer.alloc(length))
    await expect(s.open("ping", {}).result).resolves.toEqual({})
    const other = await connect(sock)
    await expect(other.open("ping", {}).result).resolves.toEqual({})
    other.close()
    s.close()
  })
})

describe("command line", () => {
  it("refuses TCP on 0.0.0.0 without a token", async () => {
    const a = await spawnAgent(["--listen", "tcp:0.0.0.0:0"], { ready: false })
    const { code } = await a.exited
    expect(code).not.toBe(0)
    expect(a.stderr).toMatch(/refusing to listen on tcp:0\.0\.0\.0:0 without --token-file/)
  })

  it("rejects unknown flags with usage exit code 2", async () => {
    const a = await spawnAgent(["--bogus"], { ready: false })
    expect((await a.exited).code).toBe(2)
    expect(a.stderr).toContain("unknown option --bogus (see --help)")
  })

  it("with a token: the wrong one is DENIED, the right one accepted", async () => {
    const tokenFile = path.join(dir, "token")
    fs.writeFileSync(tokenFile, "s3cret\n")
    const a = await spawnAgent(["--listen", "tcp:0.0.0.0:0", "--token-file", tokenFile])
    try {
      const port = Number(/serving on tcp:0\.0\.0\.0:(\d+)/.exec(a.stderr)![1])
      const where = { host: "127.0.0.1", port }
      await expect(connect(where)).rejects.toMatchObject({ code: "DENIED" })
      await expect(connect(where, { token: Buffer.from("wrong") })).rejects.toMatchObject({ code: "DENIED" })
      const s = await connect(where, { token: Buffer.from("s3cret") })
      await expect(s.open("ping", {}).result).resolves.toEqual({})
      s.close()
    } finally {
      a.kill()
    }
  })

  it("shutdown and reboot reply first, then run the power command", async () => {
    const record = path.join(dir, "power.log")
    const script = path.join(dir, "power.sh")
    fs.writeFileSync(script, `#!/bin/sh\necho "$@" >> ${record}\n`, { mode: 0o755 })
    const psock = path.join(dir, "power.sock")
    const a = await spawnAgent(["--listen", `unix:${psock}`, "--power-command", script])
    try {
      const s = await connect(psock)
      await s.open("shutdown", {}).result
      expect(fs.existsSync(record)).toBe(false) // replied before acting
      await eventually(() => fs.existsSync(record), 3000, "the power command")
      await s.open("shutdown", { reboot: true }).result
      await eventually(
        () => fs.readFileSync(record, "utf8") === "poweroff\nreboot\n",
        3000,
        "reboot recorded",
      )
      s.close()
    } finally {
      a.kill()
    }
  })

  it("crash with --allow-crash: kernel runs the crash command, agent exits abnormally after replying", async () => {
    const record = path.join(dir, "crash.log")
    const csock = path.join(dir, "crash.sock")
    const a = await spawnAgent([
      "--listen",
      `unix:${csock}`,
      "--allow-crash",
      "--crash-command",
      `echo >> ${record}`,
    ])
    const s = await connect(csock)
    const info = await s.open("info", {}).result
    expect(info.capabilities).toContain("crash")
    await s.open("crash", { kind: "kernel" }).result
    await eventually(
      () => fs.existsSync(record) && fs.readFileSync(record, "utf8").includes("kernel"),
      3000,
      "crash command",
    )
    await expect(s.open("crash", { kind: "agent" }).result).resolves.toEqual({})
    const exit = await a.exited
    expect(exit.signal ?? exit.code).not.toBe(0)
    expect(exit.code).not.toBe(0)
  })
})
