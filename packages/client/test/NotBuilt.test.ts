// Where @cuvette/native cannot be loaded, vsock targets fail with NOT_BUILT naming the build command,
// and the other transports (unix:, tcp:, hybrid:, serial:) work as ever.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it, vi } from "vitest"
import * as Client from "../src/Client.js"
import { agent } from "./fixtures/agent.js"
import { hybridRelay, serialRelay } from "./fixtures/relays.js"

vi.mock("@cuvette/native", () => {
  throw new Error("Cannot find module cuvette_native.node")
})

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-notbuilt-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

/** Connects to `target`, runs a command and closes: the transport works end to end. */
const works = async (target: string, options: Client.ConnectOptions = {}) => {
  const a = await Client.connect(target, { timeoutMs: 10_000, ...options })
  try {
    const r = await a.exec(["sh", "-c", "echo $0", "through"])
    return { exitCode: r.exitCode, stdout: new TextDecoder().decode(r.stdout) }
  } finally {
    await a.close()
  }
}
const ran = { exitCode: 0, stdout: "through\n" }

describe("without the native addon", () => {
  it("vsock targets fail with NOT_BUILT and say how to build it", async () => {
    const e = await Client.connect("listen-vsock:4919", { timeoutMs: 500 }).catch((x) => x)
    expect(e).toMatchObject({ _tag: "ConnectError", reason: "NOT_BUILT", target: "listen-vsock:4919" })
    expect(e.message).toContain("npm run build:native")
  })

  it("unix targets still work without it", async () => {
    const e = await Client.connect("unix:/nonexistent/agent.sock").catch((x) => x)
    expect(e).toMatchObject({ reason: "NOT_FOUND" })
    const sock = path.join(tmp, "unix.sock")
    const running = await (await agent).start({ listen: [`unix:${sock}`] })
    try {
      expect(await works(`unix:${sock}`)).toEqual(ran)
    } finally {
      await running.stop()
    }
  })

  it("tcp targets still work without it, with and without a token", async () => {
    const token = new TextEncoder().encode("not-built-token")
    for (const config of [{}, { token }]) {
      const running = await (await agent).start({ listen: ["tcp:127.0.0.1:0"], ...config })
      try {
        expect(await works(running.addresses[0]!, config)).toEqual(ran)
      } finally {
        await running.stop()
      }
    }
  })

  it("hybrid targets still work without it (a relay as the VMMs run)", async () => {
    const sock = path.join(tmp, "hybrid-agent.sock")
    const running = await (await agent).start({ listen: [`unix:${sock}`] })
    const relay = await hybridRelay(path.join(tmp, "hybrid-vm.sock"), sock)
    try {
      expect(await works(`hybrid:${path.join(tmp, "hybrid-vm.sock")}:5000`)).toEqual(ran)
      expect(relay.stats.ports).toEqual([5000])
    } finally {
      await relay.close()
      await running.stop()
    }
  })

  it("serial targets still work without it (a Unix socket stands in for QEMU's chardev)", async () => {
    const p = path.join(tmp, "serial.sock")
    const relay = await serialRelay(p)
    const served = (await agent).serveStream(relay.agentStream, {})
    try {
      expect(await works(`serial:${p}`)).toEqual(ran)
      expect(relay.stats.hosts).toBe(1)
    } finally {
      served.close()
      await relay.close()
    }
  })
})
