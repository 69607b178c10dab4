// Interrupting an AgentClient Effect cancels the guest work, against a real agent on a Unix socket.
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PassThrough } from "node:stream"
import { fileURLToPath } from "node:url"
import { Effect, Fiber, Stream } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as AgentClient from "../src/AgentClient.js"
import { agent } from "./fixtures/agent.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-cancel-"))
const target = `unix:${path.join(tmp, "agent.sock")}`
let running: { stop(): Promise<void> }

beforeAll(async () => {
  running = await (await agent).start({ listen: [target] })
})
afterAll(async () => {
  await running.stop()
  fs.rmSync(tmp, { recursive: true, force: true })
})

/**
 * Runs `f` with the service of a fresh connection to the test agent. Checks go inside `f`: closing the
 * connection cancels everything anyway, so only a check made while it is open shows the interruption did.
 */
const withAgent = <A, E>(f: (agent: AgentClient.Service) => Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.flatMap(AgentClient.AgentClient, f).pipe(Effect.provide(AgentClient.layer(target)), Effect.either),
  )

const isGone = (pid: number) => {
  try {
    process.kill(pid, 0)
    // A zombie still answers kill(pid, 0); it is gone as far as work goes.
    return /^\S+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, "utf8"))
  } catch {
    return true
  }
}

const eventually = async (check: () => boolean, withinMs: number) => {
  const end = Date.now() + withinMs
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  return check()
}

const gone = (pid: number, withinMs: number) => eventually(() => isGone(pid), withinMs)

/** How many descriptors of this process (the agent runs in it) have `file` open, other than `except`. */
const openCount = (file: string, except?: number) =>
  fs.readdirSync("/proc/self/fd").filter((fd) => {
    if (Number(fd) === except) return false
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === file
    } catch {
      return false // closed since the listing
    }
  }).length

/** A FIFO kept open for writing (and reading, so the write end never blocks), holding `data`. */
const fifo = (name: string, data: string) => {
  const file = path.join(tmp, name)
  execFileSync("mkfifo", [file])
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
  fs.writeSync(fd, data)
  return { file, fd, close: () => fs.closeSync(fd) }
}

describe("AgentClient interruption", () => {
  it("exec under Effect.timeout cancels the guest process: its pid is gone", async () => {
    const pidFile = path.join(tmp, "sleep.pid")
    const r = await withAgent((a) =>
      Effect.gen(function* () {
        const timedOut = yield* Effect.flip(
          a.exec(["sh", "-c", `echo $$ > ${pidFile}; exec sleep 30`]).pipe(Effect.timeout("1 second")),
        )
        const pid = Number(fs.readFileSync(pidFile, "utf8"))
        return { timedOut: timedOut._tag, pid, gone: yield* Effect.promise(() => gone(pid, 2000)) }
      }),
    )
    expect(r).toMatchObject({ _tag: "Right", right: { timedOut: "TimeoutException", gone: true } })
  })

  it("exec under Effect.timeout ends the whole process group: the shell's background children are gone", async () => {
    const pidFile = path.join(tmp, "group.pids")
    const r = await withAgent((a) =>
      Effect.gen(function* () {
        const script = `sleep 300 & echo $! > ${pidFile}; sleep 300 & echo $! >> ${pidFile}; wait`
        const timedOut = yield* Effect.flip(a.exec(["sh", "-c", script]).pipe(Effect.timeout("1 second")))
        const pids = fs.readFileSync(pidFile, "utf8").trim().split("\n").map(Number)
        const allGone = yield* Effect.promise(() => eventually(() => pids.every(isGone), 2000))
        return { timedOut: timedOut._tag, pids: pids.length, allGone }
      }),
    )
    expect(r).toMatchObject({
      _tag: "Right",
      right: { timedOut: "TimeoutException", pids: 2, allGone: true },
    })
  })

  it("an interrupted readFileStream of a FIFO closes it on the agent; the session goes on", async () => {
    const pipe = fifo("stream.fifo", "x".repeat(1000))
    try {
      const r = await withAgent((a) =>
        Effect.gen(function* () {
          let got = 0
          let openWhileReading = 0
          const timedOut = yield* Effect.flip(
            a.readFileStream(pipe.file).pipe(
              Stream.runForEach((c) =>
                Effect.sync(
                  () => ((got += c.byteLength), (openWhileReading = openCount(pipe.file, pipe.fd))),
                ),
              ),
              Effect.timeout("500 millis"),
            ),
          )
          const closed = yield* Effect.promise(() =>
            eventually(() => openCount(pipe.file, pipe.fd) === 0, 2000),
          )
          return { timedOut: timedOut._tag, got, openWhileReading, closed, ping: yield* a.ping }
        }),
      )
      expect(r).toMatchObject({
        _tag: "Right",
        right: { timedOut: "TimeoutException", got: 1000, openWhileReading: 1, closed: true },
      })
    } finally {
      pipe.close()
    }
  })

  it("an interrupted entries stream closes the directory on the agent; the session goes on", async () => {
    const dir = path.join(tmp, "many")
    fs.mkdirSync(dir)
    // More than the 2 MiB window of credit: unread, the listing waits on the client for good.
    const long = "n".repeat(200)
    for (let i = 0; i < 10_000; i++) fs.writeFileSync(path.join(dir, `${long}-${i}`), "")
    const r = await withAgent((a) =>
      Effect.gen(function* () {
        let openWhileListing = 0
        const timedOut = yield* Effect.flip(
          a.entries(dir).pipe(
            Stream.runForEach(() =>
              Effect.andThen(
                Effect.sync(() => (openWhileListing = openCount(dir))),
                Effect.never,
              ),
            ),
            Effect.timeout("500 millis"),
          ),
        )
        const closed = yield* Effect.promise(() => eventually(() => openCount(dir) === 0, 2000))
        const listed = (yield* a.list(dir)).length
        return { timedOut: timedOut._tag, openWhileListing, closed, listed }
      }),
    )
    expect(r).toMatchObject({
      _tag: "Right",
      right: { timedOut: "TimeoutException", openWhileListing: 1, closed: true, listed: 10_000 },
    })
  })

  it("an interrupted kmsg follow closes the kernel log on the agent (a FIFO stands in)", async () => {
    const log = fifo("kmsg.fifo", "6,1,5140900,-;first record\n")
    process.env.CUVETTE_KMSG_DEVICE = log.file
    try {
      const r = await withAgent((a) =>
        Effect.gen(function* () {
          const messages: Array<string> = []
          let openWhileFollowing = 0
          const timedOut = yield* Effect.flip(
            a.kmsg({ follow: true }).pipe(
              Stream.runForEach((record) =>
                Effect.sync(
                  () => (messages.push(record.message), (openWhileFollowing = openCount(log.file, log.fd))),
                ),
              ),
              Effect.timeout("500 millis"),
            ),
          )
          const closed = yield* Effect.promise(() =>
            eventually(() => openCount(log.file, log.fd) === 0, 2000),
          )
          return { timedOut: timedOut._tag, messages, openWhileFollowing, closed, ping: yield* a.ping }
        }),
      )
      expect(r).toMatchObject({
        _tag: "Right",
        right: {
          timedOut: "TimeoutException",
          messages: ["first record"],
          openWhileFollowing: 1,
          closed: true,
        },
      })
    } finally {
      delete process.env.CUVETTE_KMSG_DEVICE
      log.close()
    }
  })

  it("an interrupted upload leaves no guest file or temporary file", async () => {
    const dir = path.join(tmp, "up")
    fs.mkdirSync(dir)
    // A source that never ends: the upload is cut by the timeout.
    const source = new PassThrough()
    source.write(Buffer.alloc(1 << 20))
    const r = await withAgent((a) => a.upload(source, path.join(dir, "x")).pipe(Effect.timeout("300 millis")))
    expect(r).toMatchObject({ _tag: "Left", left: { _tag: "TimeoutException" } })
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it("an interrupted download leaves no host temporary file", async () => {
    const dir = path.join(tmp, "down")
    fs.mkdirSync(dir)
    const r = await withAgent((a) =>
      a.download("/dev/zero", path.join(dir, "big")).pipe(
        Effect.timeout("300 millis"),
        Effect.flip,
        Effect.map((e) => ({ error: e._tag, left: fs.readdirSync(dir) })),
      ),
    )
    expect(r).toMatchObject({ _tag: "Right", right: { error: "TimeoutException", left: [] } })
  })

  it("host failures keep their type through the service", async () => {
    const r = await withAgent((a) => a.download("/etc/hostname", path.join(tmp, "missing", "x")))
    expect(r).toMatchObject({ _tag: "Left", left: { _tag: "HostFileError", code: "ENOENT" } })
    const o = await withAgent((a) => a.exec(["true"], { bogus: 1 } as never))
    expect(o).toMatchObject({ _tag: "Left", left: { _tag: "OptionError", option: "bogus" } })
  })
})

describe("AgentClient interruption with an agent that never confirms the cancel", () => {
  // The handler ignores interruption: the agent never sends the cancelled call's outcome.
  const deaf = AgentClient.layerTest({ ping: () => Effect.uninterruptible(Effect.never) } as never, {
    cancelTimeoutMs: 300,
  })
  const notDone = Symbol("not done")

  it("the interruption completes after cancelTimeoutMs, and the service then fails with DISCONNECTED", async () => {
    const program = Effect.gen(function* () {
      const a = yield* AgentClient.AgentClient
      const started = Date.now()
      const timedOut = yield* Effect.flip(a.ping.pipe(Effect.timeout("100 millis")))
      const ms = Date.now() - started
      const after = yield* Effect.flip(a.ping)
      return { timedOut: timedOut._tag, ms, after: after.code, closed: a.agent.session.isClosed }
    }).pipe(Effect.provide(deaf))
    const r = await Promise.race([
      Effect.runPromise(program),
      new Promise<typeof notDone>((resolve) => setTimeout(() => resolve(notDone), 5_000)),
    ])
    expect(r).toMatchObject({ timedOut: "TimeoutException", after: "DISCONNECTED", closed: true })
    expect(r === notDone ? Infinity : r.ms).toBeLessThan(3_000)
  })
})

describe("AgentClient interruption with a stopped agent process", () => {
  const agentBin = fileURLToPath(new URL("../../agent/bin/cuvette-agent.mjs", import.meta.url))

  it("a SIGSTOPped agent: the interruption completes, and once resumed the agent ends the work", async () => {
    const sock = path.join(tmp, "stopped.sock")
    const child = spawn(process.execPath, [agentBin, "--listen", `unix:${sock}`], {
      stdio: ["ignore", "ignore", "pipe"],
    })
    try {
      let log = ""
      child.stderr.on("data", (d: Buffer) => (log += d))
      const ready = Date.now() + 30_000
      while (!log.includes("CUVETTE READY") && Date.now() < ready) await new Promise((r) => setTimeout(r, 50))
      const pidFile = path.join(tmp, "stopped-sleep.pid")
      const r = await Effect.runPromise(
        Effect.gen(function* () {
          const a = yield* AgentClient.AgentClient
          const fiber = yield* Effect.fork(a.exec(["sh", "-c", `echo $$ > ${pidFile}; exec sleep 30`]))
          yield* Effect.promise(async () => {
            while (!fs.existsSync(pidFile) || fs.readFileSync(pidFile, "utf8") === "")
              await new Promise((r) => setTimeout(r, 20))
          })
          child.kill("SIGSTOP")
          const started = Date.now()
          yield* Fiber.interrupt(fiber)
          return { ms: Date.now() - started, pid: Number(fs.readFileSync(pidFile, "utf8")) }
        }).pipe(Effect.provide(AgentClient.layer(`unix:${sock}`, { cancelTimeoutMs: 500 }))),
      )
      expect(r.ms).toBeLessThan(3_000)
      child.kill("SIGCONT")
      // The resumed agent finds its connection closed and ends the session's work.
      expect(await gone(r.pid, 5_000)).toBe(true)
    } finally {
      child.kill("SIGCONT")
      child.kill("SIGKILL")
    }
  }, 60_000)
})
