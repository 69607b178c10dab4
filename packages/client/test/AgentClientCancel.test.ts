// Interrupting an AgentClient Effect cancels the guest work, against a real agent on a Unix socket.
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PassThrough } from "node:stream"
import { fileURLToPath } from "node:url"
import { Effect, Fiber } from "effect"
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

const gone = async (pid: number, withinMs: number) => {
  const end = Date.now() + withinMs
  while (!isGone(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  return isGone(pid)
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
