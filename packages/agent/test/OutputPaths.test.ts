/**
 * The agent's output paths with pooled buffers, under the Node and the Bun agent: readFile's bytes stay
 * identical while a small pool is reused under backpressure, a large exec output too, and output that
 * ends in a partial read or a lone small write goes out at once.
 */
import type { Session } from "@cuvette/protocol"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type RunningAgent, runtimes, startAgent } from "./fixtures/runtimes.js"

const MiB = 1024 * 1024
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A file of random bytes; returns its sha256. */
const randomFile = (file: string, bytes: number) => {
  const hash = createHash("sha256")
  const fd = fs.openSync(file, "w")
  for (let off = 0; off < bytes; off += MiB) {
    const block = randomBytes(Math.min(MiB, bytes - off))
    hash.update(block)
    fs.writeSync(fd, block)
  }
  fs.closeSync(fd)
  return hash.digest("hex")
}

/** Reads a channel to its end, pausing now and then so the agent meets backpressure; its sha256 and chunk sizes. */
const drain = async (incoming: Session.Incoming, pauseEvery = 0) => {
  const hash = createHash("sha256")
  const sizes: Array<number> = []
  for await (const c of incoming) {
    hash.update(c)
    sizes.push(c.byteLength)
    if (pauseEvery > 0 && sizes.length % pauseEvery === 0) await sleep(5)
  }
  return { sha: hash.digest("hex"), sizes, bytes: sizes.reduce((a, b) => a + b, 0) }
}

for (const runtime of runtimes) {
  describe.skipIf(!runtime.available)(`output paths (${runtime.name} agent)`, () => {
    let agent: RunningAgent
    let s: Session.ClientSession
    const files: Array<{ file: string; sha: string }> = []
    beforeAll(async () => {
      agent = await startAgent(runtime)
      s = await agent.connect()
      for (const name of ["a", "b"]) {
        const file = path.join(agent.dir, name)
        files.push({ file, sha: randomFile(file, 64 * MiB) })
      }
    }, 60_000)
    afterAll(async () => {
      s?.close()
      await agent?.stop()
    })

    it("two 64 MiB readFiles at once, read with pauses, arrive sha256-identical (the pool is 16 buffers)", async () => {
      const got = await Promise.all(
        files.map(async ({ file }, i) => {
          const call = s.open("readFile", { path: file })
          const out = await drain(call.stdout, 7 + i * 6)
          expect(await call.result).toEqual({ bytes: 64 * MiB })
          return out.sha
        }),
      )
      expect(got).toEqual(files.map((f) => f.sha))
    }, 60_000)

    it("exec output of a large cat, read with pauses, is byte-identical", async () => {
      const { file, sha } = files[0]!
      const call = s.open("exec", { argv: ["cat", file] })
      const [out] = await Promise.all([drain(call.stdout, 11), drain(call.stderr)])
      expect(await call.result).toMatchObject({ exitCode: 0 })
      expect(out.bytes).toBe(64 * MiB)
      expect(out.sha).toBe(sha)
    }, 60_000)

    it("output that ends in a partial frame, and a lone small write, arrive while the child still runs", async () => {
      const call = s.open("exec", {
        argv: ["sh", "-c", "head -c 100000 /dev/zero; printf END; sleep 2; printf '\\n'; sleep 20"],
      })
      let text = ""
      const reading = (async () => {
        for await (const c of call.stdout) text += Buffer.from(c).toString("latin1")
      })()
      expect(await call.nextEvent()).toMatchObject({ _tag: "Started" })
      const started = Date.now()
      while (!text.endsWith("END") && Date.now() - started < 1500) await sleep(10)
      expect(text.length).toBe(100_003)
      while (!text.endsWith("END\n") && Date.now() - started < 3500) await sleep(10)
      expect(text.endsWith("END\n")).toBe(true)
      call.cancel()
      await reading.catch(() => {})
      await call.result.catch(() => {})
    }, 30_000)
  })
}
