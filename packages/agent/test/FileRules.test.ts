/**
 * File operations under the Node and the Bun agent: each errno keeps its own code with a short message,
 * and FIFOs never park the runtime's thread pool (other sessions' file operations go on, cancel
 * releases the call), and are written into, never replaced.
 */
import type { Session } from "@cuvette/protocol"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { collect, eventually } from "./fixtures/agent.js"
import { type RunningAgent, runtimes, startAgent } from "./fixtures/runtimes.js"

const otherFileSystem =
  fs.existsSync("/dev/shm") && fs.statSync("/dev/shm").dev !== fs.statSync(os.tmpdir()).dev

/** Settles within `ms`, or says it did not. */
const within = <A>(p: Promise<A>, ms: number): Promise<A | "still waiting"> =>
  Promise.race([p, new Promise<"still waiting">((r) => setTimeout(() => r("still waiting"), ms))])

for (const runtime of runtimes) {
  describe.skipIf(!runtime.available)(`file rules (${runtime.name} agent)`, () => {
    let agent: RunningAgent
    let s: Session.ClientSession
    beforeAll(async () => {
      // Node's default pool of 4 threads: what a production agent started without the launcher has.
      agent = await startAgent(runtime, { env: { UV_THREADPOOL_SIZE: "4" } })
      s = await agent.connect()
    }, 60_000)
    afterAll(async () => {
      s?.close()
      await agent?.stop()
    })
    const failure = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e as { code: string; message: string },
      )

    it("ENAMETOOLONG, ELOOP and NUL bytes (EINVAL) keep their codes; a 900 KB path gives a short message", async () => {
      expect(
        await failure(s.open("stat", { path: path.join(agent.dir, "n".repeat(300)) }).result),
      ).toMatchObject({
        code: "ENAMETOOLONG",
      })
      const huge = await failure(s.open("stat", { path: `/${"x".repeat(900_000)}` }).result)
      expect(huge).toMatchObject({ code: "ENAMETOOLONG", message: expect.stringContaining("…") })
      expect(huge!.message.length).toBeLessThan(600)
      const loop = path.join(agent.dir, "loop")
      fs.symlinkSync(loop, loop)
      expect(await failure(s.open("stat", { path: loop, follow: true }).result)).toMatchObject({
        code: "ELOOP",
      })
      expect(await failure(s.open("readFile", { path: loop }).result)).toMatchObject({ code: "ELOOP" })
      for (const op of [
        s.open("stat", { path: `${agent.dir}/a\0b` }).result,
        s.open("readFile", { path: `${agent.dir}/a\0b` }).result,
        s.open("mkdir", { path: `${agent.dir}/a\0b` }).result,
      ])
        expect(await failure(op)).toMatchObject({ code: "EINVAL", message: expect.stringContaining("NUL") })
    })

    it("modes outside 0..0o7777 are EINVAL and change nothing", async () => {
      const file = path.join(agent.dir, "mode-file")
      fs.writeFileSync(file, "x")
      fs.chmodSync(file, 0o640)
      expect(await failure(s.open("chmod", { path: file, mode: 0o10000 }).result)).toMatchObject({
        code: "EINVAL",
      })
      expect(fs.statSync(file).mode & 0o7777).toBe(0o640)
      const w = s.open("writeFile", { path: path.join(agent.dir, "neg"), mode: -1 })
      w.stdin.end()
      expect(await failure(w.result)).toMatchObject({
        code: "EINVAL",
        message: expect.stringContaining("mode"),
      })
      expect(
        await failure(s.open("mkdir", { path: path.join(agent.dir, "d"), mode: 1.5 }).result),
      ).toMatchObject({
        code: "EINVAL",
      })
      expect(fs.existsSync(path.join(agent.dir, "d"))).toBe(false)
    })

    it.skipIf(!otherFileSystem)(
      "rename across file systems is EXDEV (needs /dev/shm on another file system)",
      async () => {
        const file = path.join(agent.dir, "to-move")
        fs.writeFileSync(file, "x")
        const to = path.join("/dev/shm", `cuvette-exdev-${process.pid}-${runtime.name}`)
        try {
          expect(await failure(s.open("rename", { from: file, to }).result)).toMatchObject({
            code: "EXDEV",
            message: expect.stringContaining("copy it"),
          })
        } finally {
          fs.rmSync(to, { force: true })
        }
      },
    )

    it("4 readFile calls on a FIFO nobody writes leave other sessions' file operations working; cancel releases them", async () => {
      const fifo = path.join(agent.dir, "fifo")
      execFileSync("mkfifo", [fifo])
      const plain = path.join(agent.dir, "plain")
      fs.writeFileSync(plain, "plain bytes")
      const stuck = Array.from({ length: 4 }, () => s.open("readFile", { path: fifo }))
      await new Promise((r) => setTimeout(r, 300))
      const other = await agent.connect()
      try {
        const read = other.open("readFile", { path: plain })
        const body = within(
          collect(read.stdout).then(async (b) => (await read.result, b.toString())),
          5_000,
        )
        expect(await within(other.open("stat", { path: plain }).result, 5_000)).toMatchObject({
          type: "file",
        })
        expect(await body).toBe("plain bytes")
        for (const call of stuck) call.cancel()
        const ends = await within(Promise.all(stuck.map((c) => failure(c.result))), 5_000)
        expect(ends).toEqual(stuck.map(() => expect.objectContaining({ code: "CANCELLED" })))
        // A FIFO with a writer reads like cat: what the writer wrote, to its end.
        const call = other.open("readFile", { path: fifo })
        await call.nextEvent() // Opened: the agent holds the FIFO open for reading
        const data = collect(call.stdout)
        spawn("sh", ["-c", `printf 'through the fifo' > ${fifo}`], { stdio: "ignore" })
        expect((await within(data, 10_000)).toString()).toBe("through the fifo")
        await expect(call.result).resolves.toEqual({ bytes: 16 })
      } finally {
        other.close()
      }
    })

    it("writeFile into a FIFO writes to its reader and leaves the FIFO; without a reader it is ENXIO", async () => {
      const fifo = path.join(agent.dir, "fifo-w")
      execFileSync("mkfifo", [fifo])
      const lonely = s.open("writeFile", { path: fifo })
      lonely.stdin.end()
      expect(await within(failure(lonely.result), 5_000)).toMatchObject({ code: "ENXIO" })
      const out = path.join(agent.dir, "fifo-out")
      const reader = spawn("sh", ["-c", `cat ${fifo} > ${out}`], { stdio: "ignore" })
      try {
        await eventually(() => fs.existsSync(out), 5_000, "the reader to start")
        await new Promise((r) => setTimeout(r, 200))
        const call = s.open("writeFile", { path: fifo })
        await call.stdin.write(new TextEncoder().encode("to the reader"))
        call.stdin.end()
        await expect(within(call.result, 5_000)).resolves.toEqual({ bytes: 13 })
        await eventually(() => reader.exitCode !== null, 5_000, "the reader to see the end")
        expect(fs.readFileSync(out, "utf8")).toBe("to the reader")
        expect(fs.lstatSync(fifo).isFIFO()).toBe(true)
      } finally {
        reader.kill("SIGKILL")
      }
    })

    it("a temp file left by an agent killed mid-write goes with the next write into its directory; a live process's stays", async () => {
      const into = path.join(agent.dir, "killed-mid-write")
      fs.mkdirSync(into)
      const temps = () => fs.readdirSync(into).filter((n) => n.includes(".cuvette-"))
      const doomed = await startAgent(runtime)
      const d = await doomed.connect()
      const w = d.open("writeFile", { path: path.join(into, "big"), size: 8 * 1024 * 1024 })
      w.result.catch(() => {})
      await w.stdin.write(new Uint8Array(1024 * 1024))
      await eventually(() => temps().length === 1, 5_000, "the temp file to appear")
      const doomedPid = doomed.proc.pid!
      await doomed.stop() // SIGKILL: no finalizer runs
      d.close()
      expect(temps()).toEqual([expect.stringMatching(new RegExp(`^\\.big\\.cuvette-${doomedPid}-\\d+$`))])
      // A temp file of a process that is still running (this test's own child) is left alone.
      const live = spawn("sleep", ["30"], { stdio: "ignore" })
      const liveTemp = `.other.cuvette-${live.pid}-1`
      fs.writeFileSync(path.join(into, liveTemp), "")
      try {
        const call = s.open("writeFile", { path: path.join(into, "small") })
        await call.stdin.write(new TextEncoder().encode("hello"))
        call.stdin.end()
        await expect(call.result).resolves.toEqual({ bytes: 5 })
        expect(fs.readdirSync(into).sort()).toEqual([liveTemp, "small"].sort())
      } finally {
        live.kill("SIGKILL")
      }
    }, 60_000)
  })
}
