import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Client from "../src/Client.js"
import { agent } from "./fixtures/agent.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-proc-"))
let running: { stop(): Promise<void> }
let a: Client.Agent

beforeAll(async () => {
  const sock = path.join(tmp, "agent.sock")
  running = await (await agent).start({ listen: [`unix:${sock}`] })
  a = await Client.connect(`unix:${sock}`)
})

afterAll(async () => {
  await a.close()
  await running.stop()
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe("Process.exited", () => {
  it("resolves only once every output channel has delivered its last byte (50 spawns)", async () => {
    // seq 1 20000 prints 108894 bytes on stdout; the same on stderr through the shell.
    const expected = 108_894
    for (let i = 0; i < 50; i++) {
      const p = a.spawn(["sh", "-c", "seq 1 20000; seq 1 20000 >&2"])
      let out = 0
      let err = 0
      p.stdout!.on("data", (c: Buffer) => (out += c.byteLength))
      p.stderr!.on("data", (c: Buffer) => (err += c.byteLength))
      const r = await p.exited
      expect(r.exitCode).toBe(0)
      expect({ run: i, out, err }).toEqual({ run: i, out: expected, err: expected })
    }
  }, 60_000)
})
