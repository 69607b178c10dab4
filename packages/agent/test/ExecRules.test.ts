/**
 * exec's process rules, under the Node and the Bun agent: timeouts within a maximum (0 is none),
 * SIGKILL after a grace when the timeout's signal is ignored, background jobs ending with their leader
 * unless detached, and arguments no process could take refused as EINVAL.
 */
import type { Session } from "@cuvette/protocol"
import { Operations } from "@cuvette/protocol"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { alive, collect, eventually } from "./fixtures/agent.js"
import { type RunningAgent, runtimes, startAgent } from "./fixtures/runtimes.js"

const started: Array<number> = []
afterAll(() => {
  for (const pid of started) if (alive(pid)) process.kill(pid, "SIGKILL")
})

for (const runtime of runtimes) {
  describe.skipIf(!runtime.available)(`exec rules (${runtime.name} agent)`, () => {
    let agent: RunningAgent
    let s: Session.ClientSession
    beforeAll(async () => {
      agent = await startAgent(runtime)
      s = await agent.connect()
    }, 60_000)
    afterAll(async () => {
      s?.close()
      await agent?.stop()
    })

    const run = async (args: Operations.ExecArgs) => {
      const call = s.open("exec", args)
      const [stdout] = await Promise.all([collect(call.stdout), collect(call.stderr)])
      return { ...(await call.result), stdout: stdout.toString() }
    }
    const failure = (args: Operations.ExecArgs) =>
      s.open("exec", args).result.then(
        () => undefined,
        (e: unknown) => e,
      )

    it("a timeout above the maximum is EINVAL; the maximum itself and 0 (no timeout) let it finish", async () => {
      const e = await failure({ argv: ["sleep", "0.2"], timeoutMs: 2 ** 31 })
      expect(e).toMatchObject({
        code: "EINVAL",
        message: expect.stringContaining(`${Operations.MAX_TIMEOUT_MS}`),
      })
      for (const timeoutMs of [Operations.MAX_TIMEOUT_MS, 0])
        expect(await run({ argv: ["sleep", "0.2"], timeoutMs })).toMatchObject({
          exitCode: 0,
          signal: null,
          timedOut: false,
        })
    })

    it("a leader that ignores the timeout's signal gets SIGKILL after killAfterMs", async () => {
      const t = Date.now()
      const r = await run({
        argv: ["sh", "-c", "trap '' TERM; sleep 20"],
        timeoutMs: 200,
        killSignal: "SIGTERM",
        killAfterMs: 300,
      })
      expect(r).toMatchObject({ exitCode: null, signal: "SIGKILL", timedOut: true, timeoutSignal: "SIGKILL" })
      expect(Date.now() - t).toBeLessThan(10_000)
    })

    it("a leader that exits on the timeout's signal: timedOut says which signal it got", async () => {
      const r = await run({
        argv: ["sh", "-c", "trap 'exit 0' TERM; sleep 20 & wait"],
        timeoutMs: 200,
        killSignal: "SIGTERM",
        killAfterMs: 20_000,
      })
      expect(r).toMatchObject({ exitCode: 0, timedOut: true, timeoutSignal: "SIGTERM" })
    })

    it("background jobs end with their leader: sh -c 'sleep 300 & exec sleep 1' leaves no sleep 300", async () => {
      const r = await run({ argv: ["sh", "-c", "sleep 300 & echo $!; exec sleep 1"] })
      const pid = Number(r.stdout.trim())
      started.push(pid)
      expect(r).toMatchObject({ exitCode: 0, timedOut: false })
      await eventually(() => !alive(pid), 5_000, `background sleep ${pid} to be killed`)
    })

    it("detach starts something that outlives the call and the session", async () => {
      const marker = path.join(agent.dir, "detached.pid")
      const t = Date.now()
      const call = s.open("exec", { argv: ["sh", "-c", `echo $$ > ${marker}; exec sleep 300`], detach: true })
      const event = await call.nextEvent()
      const r = await call.result
      expect(Date.now() - t).toBeLessThan(10_000)
      expect(r).toMatchObject({ detached: true, exitCode: null, signal: null, timedOut: false })
      expect(event).toEqual({ _tag: "Started", pid: r.pid })
      started.push(r.pid!)
      await eventually(
        () => fs.existsSync(marker) && fs.readFileSync(marker, "utf8").trim() !== "",
        5_000,
        "the marker",
      )
      expect(Number(fs.readFileSync(marker, "utf8").trim())).toBe(r.pid)
      // Another session comes and goes: the detached process stays.
      const other = await agent.connect()
      await other.open("ping", {}).result
      other.close()
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(alive(r.pid!)).toBe(true)
      process.kill(r.pid!, "SIGKILL")
      await eventually(() => !alive(r.pid!), 5_000, "the detached process to be killed by the test")
    })

    it("detach refuses what a detached process cannot have (a terminal, stdin, a timeout)", async () => {
      for (const extra of [{ pty: { rows: 24, cols: 80 } }, { stdin: "pipe" as const }, { timeoutMs: 1000 }])
        expect(await failure({ argv: ["true"], detach: true, ...extra })).toMatchObject({ code: "EINVAL" })
    })

    it("env names with '=' or NUL or empty, NUL in argv, env values or cwd, and an empty argv[0] are EINVAL", async () => {
      const cases: Array<Operations.ExecArgs> = [
        { argv: ["true"], env: { set: { "PATH=/evil": "x" } } },
        { argv: ["true"], env: { set: { "": "x" } } },
        { argv: ["true"], env: { set: { "A\0B": "x" } } },
        { argv: ["true"], env: { set: { A: "x\0y" } } },
        { argv: ["true"], env: { unset: ["A=B"] } },
        { argv: ["echo", "a\0b"] },
        { argv: ["tr\0ue"] },
        { argv: [""] },
        { argv: ["true"], cwd: "/tmp\0x" },
      ]
      for (const args of cases) {
        const e = await failure(args)
        expect(e, JSON.stringify(args)).toMatchObject({ code: "EINVAL" })
      }
    })

    it("an argument above the kernel's limit is E2BIG, with a short message", async () => {
      const e = (await failure({ argv: ["true", "x".repeat(300_000)] })) as { code: string; message: string }
      expect(e).toMatchObject({ code: "E2BIG", message: expect.stringContaining("argument list too long") })
      expect(e.message.length).toBeLessThan(600)
    })
  })
}
