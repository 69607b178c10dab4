/**
 * Shared by the fuzz, soak and limits scripts: an agent under test in a child process (Bun or Node,
 * serving only harmless operations), its memory, raw connections that speak whatever they like, and
 * a healthy session that keeps checking the agent answers.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { ByteStream, Constants, Frame, Messages, Session } from "@cuvette/protocol"

export const root = path.resolve(import.meta.dirname, "..", "..")
export const BUN = path.join(root, "node_modules", "bun", "bin", "bun.exe")

/**
 * Starts the agent on a Unix socket in a fresh temp dir. Random input may name any operation, so it
 * serves only ping, info, exec and readFile (`allow`): never shutdown, crash, remove or mount.
 */
export const startAgent = async ({ runtime = "bun", allow = "exec,readFile", args = [], user } = {}) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-hostile-"))
  // As root, `user` runs the agent unprivileged (setpriv), so nothing random input execs can harm.
  const drop = user && process.getuid?.() === 0
  if (drop) fs.chmodSync(dir, 0o777)
  const sock = path.join(dir, "agent.sock")
  const bin = path.join(root, "packages", "agent", "src", "bin.ts")
  const [cmd, pre] =
    runtime === "bun"
      ? [BUN, ["--conditions=@cuvette/source", bin]]
      : [process.execPath, ["--conditions=@cuvette/source", "--import", "tsx", bin]]
  const agentArgs = [...pre, "--listen", `unix:${sock}`, "--allow", allow, ...args]
  const [file, fileArgs] = drop
    ? [
        "setpriv",
        [
          `--reuid=${user}`,
          `--regid=${user === "nobody" ? "nogroup" : user}`,
          "--clear-groups",
          cmd,
          ...agentArgs,
        ],
      ]
    : [cmd, agentArgs]
  const child = spawn(file, fileArgs, {
    cwd: root,
    env: drop ? { ...process.env, HOME: dir, TMPDIR: dir } : process.env,
    stdio: ["ignore", "ignore", "pipe"],
  })
  let stderr = ""
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-1_000_000)))
  const deadline = Date.now() + 30_000
  while (!stderr.includes(Constants.READY_MARKER)) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`the agent did not start:\n${stderr}`)
    await sleep(50)
  }
  return {
    dir,
    sock,
    pid: child.pid,
    stderr: () => stderr,
    alive: () => child.exitCode === null && child.signalCode === null,
    /** Resident memory now and at its peak, in MiB (Linux /proc). */
    memory: () => memoryOf(child.pid),
    /** Open file descriptors of the agent process. */
    fds: () => fs.readdirSync(`/proc/${child.pid}/fd`).length,
    stop: async () => {
      child.kill("SIGKILL")
      await new Promise((r) => (child.exitCode !== null ? r() : child.once("exit", r)))
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

export const memoryOf = (pid) => {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = (key) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
  return { rssMiB: kb("VmRSS") / 1024, peakMiB: kb("VmHWM") / 1024 }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** A connected raw socket (the caller writes whatever it wants). */
export const raw = (sock) =>
  new Promise((resolve, reject) => {
    const s = net.connect({ path: sock })
    s.once("connect", () => resolve(s))
    s.once("error", reject)
  })

/** A well-formed client session over a real socket; `socket` is exposed to stop reading from it. */
export const client = async (sock, options = {}) => {
  const socket = await raw(sock)
  socket.on("error", () => {})
  const session = await Session.openClient(ByteStream.fromDuplex(socket, { description: `unix:${sock}` }), {
    keepaliveMs: 0,
    ...options,
  })
  return { session, socket }
}

export const frame = (type, call, payload, channel = 0) => Frame.encode(type, channel, call, payload)
export const control = (call, message) => frame(Frame.FrameType.Control, call, Messages.pack(message))
export const hello = (extra = {}) =>
  Messages.pack({
    _tag: "Hello",
    minVersion: 1,
    maxVersion: 1,
    features: [],
    client: { name: "hostile", version: "0" },
    maxFrame: Constants.DEFAULT_MAX_FRAME,
    window: Constants.DEFAULT_WINDOW,
    ...extra,
  })
export const concat = (parts) =>
  Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)))
/** The magic and a Hello frame: a connection's opening bytes. */
export const opening = (payload = hello()) =>
  concat([Constants.MAGIC, frame(Frame.FrameType.Hello, 0, payload)])

/**
 * Watches a healthy session while something else happens: pings every `everyMs` and runs a short
 * exec every `execEveryMs`; returns the worst ping round trip and the failures seen.
 */
export const watch = (session, { everyMs = 10, execEveryMs = 500 } = {}) => {
  let worst = 0
  const samples = []
  let pings = 0
  let execs = 0
  const failures = []
  let stopped = false
  const pinger = (async () => {
    while (!stopped) {
      try {
        const rtt = await withTimeout(session.ping(), 30_000)
        worst = Math.max(worst, rtt)
        samples.push(rtt)
        pings++
      } catch (e) {
        failures.push(`ping: ${e.message}`)
        if (session.isClosed) return
      }
      await sleep(everyMs)
    }
  })()
  const execer = (async () => {
    while (!stopped) {
      try {
        const call = session.open("exec", { argv: ["echo", "ok"] })
        let out = ""
        for await (const c of call.stdout) out += Buffer.from(c).toString()
        const r = await withTimeout(call.result, 30_000)
        if (r.exitCode !== 0 || out !== "ok\n")
          failures.push(`exec: exit ${r.exitCode}, output ${JSON.stringify(out)}`)
        else execs++
      } catch (e) {
        failures.push(`exec: ${e.message}`)
        if (session.isClosed) return
      }
      await sleep(execEveryMs)
    }
  })()
  return {
    stop: async () => {
      stopped = true
      await Promise.all([pinger, execer])
      const sorted = samples.sort((a, b) => a - b)
      const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
      return { worstPingMs: worst, p50PingMs: at(0.5), p99PingMs: at(0.99), pings, execs, failures }
    },
  }
}

export const withTimeout = (promise, ms) =>
  Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`no answer within ${ms} ms`)))])

/** Samples `f` every `everyMs` until stopped; returns the largest value. */
export const sampleMax = (f, everyMs = 20) => {
  let max = f()
  const t = setInterval(() => {
    try {
      max = Math.max(max, f())
    } catch {
      // The process is gone: keep the last value.
    }
  }, everyMs)
  return () => (clearInterval(t), max)
}

/** Writes `data` to `socket`, honouring its backpressure; resolves when handed to the kernel or the socket died. */
export const writeAll = (socket, data) =>
  new Promise((resolve) => {
    if (socket.destroyed) return resolve(false)
    if (socket.write(data)) return resolve(true)
    const done = () => {
      socket.off("drain", done)
      socket.off("close", done)
      resolve(!socket.destroyed)
    }
    socket.on("drain", done)
    socket.on("close", done)
  })
