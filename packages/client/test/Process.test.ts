import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Client from "../src/Client.js"
import { agent } from "./fixtures/agent.js"
import { hasBun, startBunAgent } from "./fixtures/bunAgent.js"

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

/** Spawns output on both channels 50 times; every byte must be in before `exited` resolves. */
const everyByteBeforeExit = async (agent: Client.Agent) => {
  // seq 1 100000 prints 588895 bytes on stdout, the same on stderr: several chunks each are still
  // queued in the Readables when the result arrives.
  const expected = 588_895
  for (let i = 0; i < 50; i++) {
    const p = agent.spawn(["sh", "-c", "seq 1 100000; seq 1 100000 >&2"])
    let out = 0
    let err = 0
    p.stdout!.on("data", (c: Buffer) => (out += c.byteLength))
    p.stderr!.on("data", (c: Buffer) => (err += c.byteLength))
    const r = await p.exited
    expect(r.exitCode).toBe(0)
    expect({ run: i, out, err }).toEqual({ run: i, out: expected, err: expected })
  }
}

describe("Process.exited", () => {
  it("resolves only once every output channel has delivered its last byte (50 spawns, Node agent)", async () => {
    await everyByteBeforeExit(a)
  }, 60_000)

  it.skipIf(!hasBun)(
    "resolves only once every output channel has delivered its last byte (50 spawns, Bun agent) (the workspace's Bun is missing)",
    async () => {
      const bun = await startBunAgent(path.join(tmp, "bun.sock"))
      try {
        const client = await Client.connect(bun.target)
        try {
          await everyByteBeforeExit(client)
        } finally {
          await client.close()
        }
      } finally {
        await bun.stop()
      }
    },
    120_000,
  )
})

describe("process options", () => {
  const text = (b: Uint8Array) => new TextDecoder().decode(b)

  it("env as a plain record sets the variables, as { set } does", async () => {
    const plain = await a.exec(["sh", "-c", 'printf %s "$FOO"'], { env: { FOO: "bar" } })
    expect(text(plain.stdout)).toBe("bar")
    const set = await a.exec(["sh", "-c", 'printf %s "$FOO"'], { env: { set: { FOO: "baz" } } })
    expect(text(set.stdout)).toBe("baz")
  })

  it("an unknown or misplaced option is an OptionError, never ignored", async () => {
    await expect(a.exec(["true"], { cwdd: "/" } as never)).rejects.toMatchObject({
      _tag: "OptionError",
      operation: "exec",
      option: "cwdd",
    })
    await expect(a.exec(["true"], { env: { set: { A: "1" }, FOO: "bar" } } as never)).rejects.toMatchObject({
      _tag: "OptionError",
      option: "env.FOO",
    })
    await expect(a.exec(["true"], { pty: { rows: 24, cols: 80, size: 1 } } as never)).rejects.toMatchObject({
      _tag: "OptionError",
      option: "pty.size",
    })
    await expect(a.exec(["cat"], { stdin: { not: "a stream" } } as never)).rejects.toMatchObject({
      _tag: "OptionError",
      option: "stdin",
    })
    expect(() => a.spawn(["true"], { stdoutt: "null" } as never)).toThrow(
      expect.objectContaining({ _tag: "OptionError", operation: "spawn", option: "stdoutt" }),
    )
    await expect(a.download("/etc/hostname", "/tmp/x", { offest: 3 } as never)).rejects.toMatchObject({
      _tag: "OptionError",
      option: "offest",
    })
    await expect(a.upload(new Uint8Array(1), "/tmp/x", { parents: true } as never)).rejects.toMatchObject({
      _tag: "OptionError",
      option: "parents",
    })
  })
})

describe("exec's timeout and detach options", () => {
  it("timeoutMs above the maximum or not whole milliseconds is an OptionError; 0 is no timeout", async () => {
    for (const timeoutMs of [2 ** 31, -1, 1.5])
      await expect(a.exec(["true"], { timeoutMs })).rejects.toMatchObject({
        _tag: "OptionError",
        option: "timeoutMs",
        message: expect.stringContaining("2147483647"),
      })
    expect(() => a.spawn(["true"], { timeoutMs: 2 ** 31 })).toThrow(/timeoutMs/)
    await expect(a.exec(["sleep", "0.2"], { timeoutMs: 0 })).resolves.toMatchObject({
      exitCode: 0,
      timedOut: false,
    })
  })

  it("detach: true returns once started, with the pid of a process that keeps running", async () => {
    const r = await a.exec(["sleep", "300"], { detach: true })
    try {
      expect(r).toMatchObject({ detached: true, exitCode: null, stdout: new Uint8Array() })
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(() => process.kill(r.pid!, 0)).not.toThrow()
    } finally {
      process.kill(r.pid!, "SIGKILL")
    }
    await expect(a.exec(["true"], { detach: true, timeoutMs: 1000 })).rejects.toMatchObject({
      _tag: "OptionError",
    })
  })
})
