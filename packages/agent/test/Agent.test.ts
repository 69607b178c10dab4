/** Every operation's happy path and main error, against an in-process agent on a Unix socket. */
import { Operations, type Session } from "@cuvette/protocol"
import { randomBytes } from "node:crypto"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { collect, connect, inProcess, listAll } from "./fixtures/agent.js"

const kmsgReadable = (() => {
  try {
    fs.accessSync("/dev/kmsg", fs.constants.R_OK)
    return true
  } catch {
    return false
  }
})()

let agent: Awaited<ReturnType<typeof inProcess>>
let s: Session.ClientSession
let dir: string

beforeAll(async () => {
  agent = await inProcess({ powerCommand: "true" })
  s = await connect(agent.sock)
  dir = agent.dir
})
afterAll(async () => {
  s.close()
  await agent.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

const run = async (
  argv: [string, ...Array<string>],
  opts: Record<string, unknown> = {},
  stdin?: Uint8Array,
) => {
  const call = s.open("exec", { argv, ...opts })
  if (stdin !== undefined) {
    await call.stdin.write(stdin)
    call.stdin.end()
  }
  const [stdout, stderr] = await Promise.all([collect(call.stdout), collect(call.stderr)])
  return { ...(await call.result), stdout: stdout.toString(), stderr: stderr.toString() }
}

describe("system operations", () => {
  it("ping, info and time", async () => {
    await expect(s.open("ping", {}).result).resolves.toEqual({})
    const info = await s.open("info", {}).result
    expect(info.agent.name).toBe("cuvette-agent")
    const pkg = JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8"))
    expect(info.agent.version).toBe(pkg.version)
    expect(info.agent.pid).toBe(process.pid)
    expect(info.os).toBe(process.platform)
    expect(info.kernel).toBe(os.release())
    expect(info.hostname).toBe(os.hostname())
    expect(info.protocolVersion).toBe(1)
    expect(info.capabilities).toContain("exec")
    expect(info.capabilities).not.toContain("crash") // not allowed on this agent
    const t = await s.open("time", {}).result
    expect(Math.abs(t.unixMs - Date.now())).toBeLessThan(5000)
    expect(t.timezone).toBe(Intl.DateTimeFormat().resolvedOptions().timeZone) // the agent runs in this process
  })

  it("refuses an unknown operation with UNSUPPORTED", async () => {
    // The client library refuses unknown names itself: teach it one for this call only (a newer client).
    const ops = Operations.operations as Record<string, unknown>
    ops.nope = ops.ping
    try {
      const call = s.open("nope" as "ping", {})
      await expect(call.result).rejects.toMatchObject({
        code: "UNSUPPORTED",
        message: expect.stringContaining("nope"),
      })
    } finally {
      delete ops.nope
    }
  })

  it("refuses crash unless --allow-crash (DENIED)", async () => {
    await expect(s.open("crash", { kind: "kernel" }).result).rejects.toMatchObject({
      code: "DENIED",
      message: expect.stringContaining("--allow-crash"),
    })
  })

  it.skipIf(!kmsgReadable)(
    `kmsg: every record of /dev/kmsg, one per line, in sequence order${kmsgReadable ? "" : " (skipped: /dev/kmsg is not readable here)"}`,
    async () => {
      const call = s.open("kmsg", {})
      const text = (await collect(call.stdout)).toString()
      const { records } = await call.result
      const lines = text.trimEnd().split("\n")
      expect(lines).toHaveLength(records)
      for (const line of lines) expect(line).toMatch(/^\d+,\d+,\d+,[^;]*;/) // prio,seq,usec,flags;message
      const seqs = lines.map((l) => Number(l.split(",")[1]))
      expect(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]!)).toBe(true)
    },
  )

  it.skipIf(kmsgReadable)(
    `kmsg: UNSUPPORTED or EACCES where /dev/kmsg cannot be read${kmsgReadable ? " (skipped: it is readable here)" : ""}`,
    async () => {
      await expect(s.open("kmsg", {}).result).rejects.toMatchObject({
        code: expect.stringMatching(/UNSUPPORTED|EACCES/),
      })
    },
  )

  it.skipIf(!kmsgReadable)("kmsg follow streams until cancelled (needs a readable /dev/kmsg)", async () => {
    const call = s.open("kmsg", { follow: true })
    const first = await call.stdout.read()
    expect(new TextDecoder().decode(first)).toMatch(/^\d+,\d+,\d+,[^;]*;/)
    await new Promise((r) => setTimeout(r, 300))
    expect(call.isSettled).toBe(false) // still following
    call.cancel()
    await expect(call.result).rejects.toMatchObject({ code: "CANCELLED" })
  })

  const root = process.getuid?.() === 0
  it.skipIf(!root)("mount (root only): tmpfs, options, mkdirTarget; a bad fs type fails", async () => {
    const target = path.join(dir, "mnt", "t")
    await s.open("mount", {
      source: "tmpfs",
      target,
      fstype: "tmpfs",
      data: "size=1m",
      flags: 2,
      mkdirTarget: true,
    }).result
    try {
      const line = fs
        .readFileSync("/proc/mounts", "utf8")
        .split("\n")
        .find((l) => l.split(" ")[1] === target)
      expect(line).toMatch(/tmpfs .*nosuid/)
    } finally {
      execFileSync("umount", [target])
    }
    await expect(
      s.open("mount", { source: "none", target, fstype: "no-such-fs", mkdirTarget: true }).result,
    ).rejects.toMatchObject({ message: expect.stringContaining(target) })
  })
})

describe("files", () => {
  it("writeFile then readFile, stat and list", async () => {
    const file = path.join(dir, "a", "b", "hello.txt")
    const w = s.open("writeFile", { path: file, createParents: true, mode: 0o600 })
    await w.stdin.write(Buffer.from("hello world"))
    w.stdin.end()
    await expect(w.result).resolves.toEqual({ bytes: 11 })
    expect(fs.readFileSync(file, "utf8")).toBe("hello world")
    expect(fs.statSync(file).mode & 0o777).toBe(0o600)
    expect(fs.readdirSync(path.dirname(file))).toEqual(["hello.txt"]) // no temp file left

    const r = s.open("readFile", { path: file, offset: 6, length: 3 })
    expect(await r.nextEvent()).toEqual({ _tag: "Opened", size: 3, mode: 0o600 })
    expect((await collect(r.stdout)).toString()).toBe("wor")
    await expect(r.result).resolves.toEqual({ bytes: 3 })

    const st = await s.open("stat", { path: file }).result
    expect(st).toMatchObject({ type: "file", size: 11, mode: 0o600 })
    fs.symlinkSync("hello.txt", path.join(path.dirname(file), "link"))
    const ls = await s.open("stat", { path: path.join(path.dirname(file), "link") }).result
    expect(ls).toMatchObject({ type: "symlink", target: "hello.txt" })
    const { entries, count } = await listAll(s, path.dirname(file))
    expect(count).toBe(2)
    expect(entries.map((e) => [e.name, e.type, e.target]).sort()).toEqual([
      ["hello.txt", "file", undefined],
      ["link", "symlink", "hello.txt"],
    ])
  })

  it("readFile of a range spanning several 256 KiB read chunks (each read ahead of the send) gives exactly that range", async () => {
    const file = path.join(dir, "big.bin")
    const bytes = Buffer.alloc(3 * 1024 * 1024 + 776)
    for (let i = 0; i < bytes.length; i += 4) bytes.writeUInt32LE(i, i)
    fs.writeFileSync(file, bytes)
    const r = s.open("readFile", { path: file, offset: 1001, length: 2 * 1024 * 1024 + 5 })
    expect(await r.nextEvent()).toMatchObject({ _tag: "Opened", size: 2 * 1024 * 1024 + 5 })
    expect((await collect(r.stdout)).equals(bytes.subarray(1001, 1001 + 2 * 1024 * 1024 + 5))).toBe(true)
    await expect(r.result).resolves.toEqual({ bytes: 2 * 1024 * 1024 + 5 })
    const whole = s.open("readFile", { path: file })
    expect((await collect(whole.stdout)).equals(bytes)).toBe(true)
    await expect(whole.result).resolves.toEqual({ bytes: bytes.length })
  })

  it("stat describes a symlink itself (even a dangling one) unless follow is set", async () => {
    const link = path.join(dir, "dangling")
    fs.symlinkSync(path.join(dir, "gone"), link)
    await expect(s.open("stat", { path: link }).result).resolves.toMatchObject({
      type: "symlink",
      target: path.join(dir, "gone"),
    })
    await expect(s.open("stat", { path: link, follow: true }).result).rejects.toMatchObject({
      code: "ENOENT",
    })
    fs.writeFileSync(path.join(dir, "gone"), "now here")
    await expect(s.open("stat", { path: link, follow: true }).result).resolves.toMatchObject({
      type: "file",
      size: 8,
    })
    fs.rmSync(link)
    fs.rmSync(path.join(dir, "gone"))
  })

  it("list streams 30,000 entries (more than one control frame could hold), each once", async () => {
    const big = path.join(dir, "big-dir")
    fs.mkdirSync(big)
    const n = 30_000
    // Names long enough that the listing is far over the 1 MiB frame limit.
    const name = (i: number) => `entry-with-a-fairly-long-name-${String(i).padStart(6, "0")}`
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(big, name(i)), "")
    const { entries, count } = await listAll(s, big)
    expect(count).toBe(n)
    expect(new Set(entries.map((e) => e.name)).size).toBe(n)
    expect(entries.every((e) => e.type === "file" && e.size === 0)).toBe(true)
    await s.open("remove", { path: big, recursive: true }).result
    expect(fs.existsSync(big)).toBe(false)
  })

  it("recursive remove of a nested tree with files, links and a read-only directory", async () => {
    const root = path.join(dir, "rm-tree")
    for (const d of ["a/b/c", "a/d", "e"]) fs.mkdirSync(path.join(root, d), { recursive: true })
    for (let i = 0; i < 600; i++) fs.writeFileSync(path.join(root, "a/b", `f${i}`), "x")
    fs.writeFileSync(path.join(root, "a/b/c/deep"), "x")
    fs.symlinkSync("/etc", path.join(root, "e/to-etc")) // removed as a link, never followed
    fs.chmodSync(path.join(root, "a/d"), 0o500)
    await s.open("remove", { path: root, recursive: true }).result
    expect(fs.existsSync(root)).toBe(false)
    expect(fs.existsSync("/etc/hostname")).toBe(true)
  })

  it("chmod sets the bits exactly, umask notwithstanding", async () => {
    const d = path.join(dir, "modes")
    fs.mkdirSync(d)
    await s.open("chmod", { path: d, mode: 0o2777 }).result
    expect(fs.statSync(d).mode & 0o7777).toBe(0o2777)
    await s.open("chmod", { path: d, mode: 0o700 }).result
    expect(fs.statSync(d).mode & 0o7777).toBe(0o700)
    await expect(s.open("chmod", { path: path.join(dir, "nope"), mode: 0o600 }).result).rejects.toMatchObject(
      {
        code: "ENOENT",
        message: expect.stringContaining("nope"),
      },
    )
    fs.rmdirSync(d)
  })

  it("an existing file keeps its mode when replaced", async () => {
    const file = path.join(dir, "keep-mode")
    fs.writeFileSync(file, "old")
    fs.chmodSync(file, 0o640)
    const w = s.open("writeFile", { path: file })
    await w.stdin.write(Buffer.from("new"))
    w.stdin.end()
    await w.result
    expect(fs.readFileSync(file, "utf8")).toBe("new")
    expect(fs.statSync(file).mode & 0o777).toBe(0o640)
  })

  it("non-atomic write writes in place", async () => {
    const file = path.join(dir, "in-place")
    fs.writeFileSync(file, "something longer")
    const ino = fs.statSync(file).ino
    const w = s.open("writeFile", { path: file, atomic: false })
    await w.stdin.write(Buffer.from("short"))
    w.stdin.end()
    await w.result
    expect(fs.readFileSync(file, "utf8")).toBe("short")
    expect(fs.statSync(file).ino).toBe(ino)
  })

  it("a size mismatch fails and leaves the destination unchanged", async () => {
    const file = path.join(dir, "sized")
    fs.writeFileSync(file, "old")
    const w = s.open("writeFile", { path: file, size: 100 })
    await w.stdin.write(Buffer.from("only a few"))
    w.stdin.end()
    await expect(w.result).rejects.toMatchObject({
      code: "EIO",
      message: expect.stringContaining("expected 100"),
    })
    expect(fs.readFileSync(file, "utf8")).toBe("old")
    expect(fs.readdirSync(dir).filter((n) => n.includes(".cuvette-"))).toEqual([])
  })

  it("mkdir, rename and remove; ENOTEMPTY without recursive", async () => {
    const d = path.join(dir, "tree", "x")
    await s.open("mkdir", { path: d, parents: true }).result
    await s.open("mkdir", { path: d, parents: true }).result // idempotent with parents
    await expect(s.open("mkdir", { path: d }).result).rejects.toMatchObject({ code: "EEXIST" })
    fs.writeFileSync(path.join(d, "f"), "x")
    await s.open("rename", { from: path.join(d, "f"), to: path.join(d, "g") }).result
    expect(fs.readdirSync(d)).toEqual(["g"])
    const tree = path.join(dir, "tree")
    await expect(s.open("remove", { path: tree }).result).rejects.toMatchObject({
      code: "ENOTEMPTY",
      message: expect.stringContaining(tree),
    })
    await s.open("remove", { path: tree, recursive: true }).result
    expect(fs.existsSync(tree)).toBe(false)
    await expect(s.open("remove", { path: tree }).result).rejects.toMatchObject({ code: "ENOENT" })
    await s.open("remove", { path: tree, force: true }).result
    await expect(
      s.open("rename", { from: path.join(dir, "nope"), to: path.join(dir, "nope2") }).result,
    ).rejects.toMatchObject({ code: "ENOENT", message: expect.stringContaining("nope") })
  })

  it("errors name the guest path: missing file, missing directory, a directory read", async () => {
    const missing = path.join(dir, "missing.txt")
    await expect(s.open("readFile", { path: missing }).result).rejects.toMatchObject({
      code: "ENOENT",
      message: expect.stringContaining(missing),
    })
    await expect(s.open("stat", { path: missing }).result).rejects.toMatchObject({ code: "ENOENT" })
    await expect(s.open("list", { path: missing }).result).rejects.toMatchObject({ code: "ENOENT" })
    const into = path.join(dir, "no-dir", "f")
    const w = s.open("writeFile", { path: into })
    w.stdin.end()
    await expect(w.result).rejects.toMatchObject({ code: "ENOENT", message: expect.stringContaining(into) })
    await expect(s.open("readFile", { path: dir }).result).rejects.toMatchObject({ code: "EISDIR" })
  })

  it("64 MiB write and read with identical bytes", async () => {
    const data = randomBytes(64 * 1024 * 1024)
    const file = path.join(dir, "big.bin")
    let t = performance.now()
    const w = s.open("writeFile", { path: file, size: data.byteLength })
    for (let off = 0; off < data.byteLength; off += 1024 * 1024)
      await w.stdin.write(data.subarray(off, off + 1024 * 1024))
    w.stdin.end()
    await expect(w.result).resolves.toEqual({ bytes: data.byteLength })
    const writeMs = performance.now() - t
    expect(fs.readFileSync(file).equals(data)).toBe(true)
    t = performance.now()
    const r = s.open("readFile", { path: file })
    const back = await collect(r.stdout)
    const readMs = performance.now() - t
    expect(back.equals(data)).toBe(true)
    console.log(`64 MiB over unix: write ${writeMs.toFixed(0)} ms, read ${readMs.toFixed(0)} ms`)
    fs.rmSync(file)
  })
})

describe("exec", () => {
  it("exit codes, stdout and stderr", async () => {
    const r = await run(["sh", "-c", "echo out; echo err >&2; exit 7"])
    expect(r).toMatchObject({ exitCode: 7, signal: null, timedOut: false, stdout: "out\n", stderr: "err\n" })
    expect((await run(["true"])).exitCode).toBe(0)
  })

  it("emits Started with the pid", async () => {
    const call = s.open("exec", { argv: ["sh", "-c", "echo $$"] })
    const started = await call.nextEvent()
    const out = (await collect(call.stdout)).toString().trim()
    expect(started).toEqual({ _tag: "Started", pid: Number(out) })
    await call.result
  })

  it("signal exit: kill -TERM $$ gives SIGTERM", async () => {
    const r = await run(["sh", "-c", "kill -TERM $$"])
    expect(r).toMatchObject({ exitCode: null, signal: "SIGTERM" })
  })

  it("timeout kills the process group and reports it", async () => {
    const t = Date.now()
    const r = await run(["sh", "-c", "sleep 30 & sleep 30"], { timeoutMs: 300 })
    expect(r).toMatchObject({ timedOut: true, signal: "SIGKILL" })
    expect(Date.now() - t).toBeLessThan(3000)
    const r2 = await run(["sleep", "30"], { timeoutMs: 200, killSignal: "SIGTERM" })
    expect(r2).toMatchObject({ timedOut: true, signal: "SIGTERM" })
  })

  it("env set, unset and clear; cwd", async () => {
    process.env.CUVETTE_TEST_UNSET = "present"
    try {
      const r = await run(["sh", "-c", 'echo "$FOO|${CUVETTE_TEST_UNSET-gone}|$HOME"'], {
        env: { set: { FOO: "bar" }, unset: ["CUVETTE_TEST_UNSET"] },
      })
      expect(r.stdout).toBe(`bar|gone|${process.env.HOME}\n`)
      const c = await run(["/usr/bin/env"], { env: { clear: true, set: { ONLY: "1" } } })
      expect(c.stdout).toBe("ONLY=1\n")
    } finally {
      delete process.env.CUVETTE_TEST_UNSET
    }
    expect((await run(["pwd"], { cwd: dir })).stdout).toBe(`${fs.realpathSync(dir)}\n`)
  })

  it("a missing or non-directory cwd is reported as the cwd, not as the program", async () => {
    const missing = path.join(dir, "no-such-cwd")
    const e = await s.open("exec", { argv: ["pwd"], cwd: missing }).result.catch((x: unknown) => x)
    expect(e).toMatchObject({
      code: "ENOENT",
      message: `working directory ${missing} does not exist: no process was started`,
    })
    expect((e as Error).message).not.toMatch(/cannot run|program not found/)
    const file = path.join(dir, "a-file-cwd")
    fs.writeFileSync(file, "")
    await expect(s.open("exec", { argv: ["pwd"], cwd: file }).result).rejects.toMatchObject({
      code: "ENOTDIR",
      message: `working directory ${file} is not a directory: no process was started`,
    })
    // A missing program with a good cwd is still the program's fault.
    await expect(s.open("exec", { argv: ["no-such-program-x"], cwd: dir }).result).rejects.toMatchObject({
      code: "ENOENT",
      message: expect.stringContaining("program not found"),
    })
  })

  it("combined stderr keeps the order in stdout", async () => {
    const r = await run(["sh", "-c", "echo 1; echo 2 >&2; echo 3; echo 4 >&2"], { stderr: "stdout" })
    expect(r.stdout).toBe("1\n2\n3\n4\n")
    expect(r.stderr).toBe("")
    await expect(
      s.open("exec", { argv: ["no-such-program-x"], stderr: "stdout" }).result,
    ).rejects.toMatchObject({
      code: "ENOENT",
      message: expect.stringContaining("no-such-program-x"),
    })
  })

  it("null stdio discards output", async () => {
    const r = await run(["sh", "-c", "echo out; echo err >&2"], { stdout: "null", stderr: "null" })
    expect(r).toMatchObject({ exitCode: 0, stdout: "", stderr: "" })
  })

  it("stdin is forwarded byte for byte", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17)
    const call = s.open("exec", { argv: ["sha256sum"], stdin: "pipe" })
    for (let off = 0; off < data.byteLength; off += 300_000)
      await call.stdin.write(data.subarray(off, off + 300_000))
    call.stdin.end()
    const out = (await collect(call.stdout)).toString()
    const { createHash } = await import("node:crypto")
    expect(out.split(" ")[0]).toBe(createHash("sha256").update(data).digest("hex"))
    expect((await call.result).exitCode).toBe(0)
  })

  it("a missing program fails with ENOENT naming it", async () => {
    await expect(s.open("exec", { argv: ["no-such-program-y"] }).result).rejects.toMatchObject({
      code: "ENOENT",
      message: expect.stringContaining("no-such-program-y"),
    })
  })

  it("a Signal input signals the group", async () => {
    const call = s.open("exec", { argv: ["sleep", "30"] })
    await call.nextEvent()
    call.input({ _tag: "Signal", signal: "SIGINT" })
    await expect(call.result).resolves.toMatchObject({ signal: "SIGINT" })
  })

  it("a terminal under Node is refused, naming the agent that has one (Pty.test.ts runs it under Bun)", async () => {
    await expect(s.open("exec", { argv: ["sh"], pty: { rows: 24, cols: 80 } }).result).rejects.toMatchObject({
      code: "UNSUPPORTED",
      message:
        "a terminal (--tty, shell) needs the Bun-built agent (npm run build:agent); this one runs on Node",
    })
    expect((await s.open("info", {}).result).capabilities).not.toContain("pty")
  })

  it("a background child holding stdout does not hold the operation", async () => {
    const t = Date.now()
    const r = await run(["sh", "-c", "sleep 5 & echo done"])
    expect(r).toMatchObject({ exitCode: 0, stdout: "done\n" })
    expect(Date.now() - t).toBeLessThan(3000)
  })
})
