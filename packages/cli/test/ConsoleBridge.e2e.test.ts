// `cuvette console --serve` through the real CLI: refusing an exposed bind without a token, and an agent
// shell session (/shell/NAME) against a real agent on Bun, whose guest terminal follows resize messages and
// whose end is the {"type":"exit"} frame.
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { WebSocket } from "ws"
import { startBridge } from "./fixtures/bridge.js"
import { type AgentHandle, bunBin, runCli, startAgent } from "./fixtures/harness.js"

describe("console --serve: what it refuses to start with", () => {
  it("refuses a bind other machines can reach without a token (usage error, exit 2)", async () => {
    const r = await runCli(["console", "--serve", "0.0.0.0:0", "--name", "vm=/tmp/nothing.sock"])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(
      /refusing to serve consoles on 0\.0\.0\.0, .* without a token: pass --serve-token-file/,
    )
  })

  it("refuses to start with nothing to serve, or with a SOURCE that is not one", async () => {
    const none = await runCli(["console", "--serve", "127.0.0.1:0"])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/nothing to serve/)
    const bad = await runCli(["console", "--serve", "127.0.0.1:0", "--name", "vm=tcp:host"])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/not a console source: "tcp:host"/)
    const twice = await runCli(["console", "--serve", "7681", "--name", "vm=/a.sock", "--name", "vm=/b.sock"])
    expect(twice.code).toBe(2)
    expect(twice.stderr).toMatch(/console vm is named twice/)
    const addr = await runCli(["console", "--serve", "host:port", "--name", "vm=/a.sock"])
    expect(addr.code).toBe(2)
    expect(addr.stderr).toMatch(/--serve host:port: expected PORT, HOST:PORT or \[IPV6\]:PORT/)
    const both = await runCli(["console", "/a.sock", "--serve", "7681", "--name", "vm=/a.sock"])
    expect(both.code).toBe(2)
    expect(both.stderr).toMatch(/drop SOURCE/)
  })
})

describe("console --serve 0.0.0.0:PORT --serve-token-file F", () => {
  it("starts, and every WebSocket session needs the token from F (reached through 127.0.0.1)", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-bridge-"))
    const sock = path.join(dir, "serial.sock")
    const vm = net.createServer((s) => s.end("hello from the console"))
    await new Promise<void>((r) => vm.listen(sock, r))
    fs.writeFileSync(path.join(dir, "token"), "a-token-from-a-file\n")
    const bridge = await startBridge(
      ["--name", `vm=${sock}`, "--serve-token-file", path.join(dir, "token")],
      "0.0.0.0:0",
    )
    try {
      const port = new URL(bridge.url).port
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/consoles/vm`)
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))
        ws.on("error", () => undefined)
      })
      expect(status).toBe(401)
      const ws = new WebSocket(`ws://127.0.0.1:${port}/consoles/vm?token=a-token-from-a-file`)
      let output = ""
      ws.on("message", (d, binary) => binary && (output += d.toString()))
      await new Promise((resolve) => ws.once("close", resolve))
      expect(output).toBe("hello from the console")
    } finally {
      await bridge.stop()
      vm.close()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})

const hasBun = fs.existsSync(bunBin)

describe.skipIf(!hasBun)(
  "console --serve: an agent shell over WebSocket (agent on Bun)",
  { timeout: 60_000 },
  () => {
    let agent: AgentHandle
    let bridge: Awaited<ReturnType<typeof startBridge>>
    beforeAll(async () => {
      agent = await startAgent({ runtime: "bun" })
      const config = path.join(agent.dir, "bridge.json")
      fs.writeFileSync(config, JSON.stringify({ shells: { vm: agent.target } }))
      bridge = await startBridge(["--config", config])
    }, 60_000)
    afterAll(async () => {
      await bridge?.stop()
      await agent?.stop()
    })

    it("stty size follows a resize message; the session ends with the exit code frame", async () => {
      const ws = new WebSocket(`${bridge.url.replace("http:", "ws:")}shell/vm?cols=90&rows=30`)
      const texts: Array<Record<string, unknown>> = []
      let output = ""
      ws.on("message", (data, isBinary) => {
        if (isBinary) output += (data as Buffer).toString()
        else texts.push(JSON.parse((data as Buffer).toString()) as Record<string, unknown>)
      })
      const closed = new Promise<number>((r) => ws.once("close", (code) => r(code)))
      await new Promise((r, j) => (ws.once("open", r), ws.once("error", j)))
      const until = async (what: string, f: () => boolean) => {
        const end = Date.now() + 15_000
        while (!f()) {
          if (Date.now() > end)
            throw new Error(`timed out waiting for ${what}; output: ${JSON.stringify(output)}`)
          await new Promise((r) => setTimeout(r, 50))
        }
      }
      await until("connected", () => texts.length > 0)
      expect(texts[0]).toMatchObject({ type: "connected", kind: "shell", name: "vm", target: agent.target })
      ws.send(Buffer.from("stty size\r"))
      await until("30 90", () => /^30 90\r$/m.test(output))
      ws.send(JSON.stringify({ type: "resize", cols: 150, rows: 44 }))
      ws.send(Buffer.from("stty size\r"))
      await until("44 150", () => /^44 150\r$/m.test(output))
      ws.send(JSON.stringify({ type: "resize", cols: "wide" }))
      await until("an error frame", () => texts.some((t) => t.type === "error"))
      ws.send(Buffer.from("exit 7\r"))
      expect(await closed).toBe(1000)
      expect(texts.at(-1)).toEqual({ type: "exit", code: 7 })
    })

    it("an unknown shell is 404; Ctrl-C stops the bridge with exit code 0", async () => {
      const status = await new Promise<number>((resolve) => {
        const ws = new WebSocket(`${bridge.url.replace("http:", "ws:")}shell/other`)
        ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0))
        ws.on("error", () => undefined)
      })
      expect(status).toBe(404)
      expect(await bridge.stop()).toBe(0)
    })
  },
)
