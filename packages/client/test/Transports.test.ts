// The transport-agnostic suite over every transport this machine provides: in-memory pair, Unix, TCP,
// hybrid vsock through a relay that refuses the first attempts, a guest-initiated connection accepted
// on listen-unix (after draining a stale one), and a serial-like stream that a first client leaves mid-frame.
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { ByteStream } from "@cuvette/protocol"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Client from "../src/Client.js"
import { agent } from "./fixtures/agent.js"
import { expectRoundTrip } from "./fixtures/ping.js"
import { hybridRelay, serialRelay } from "./fixtures/relays.js"
import { agentSuite, type BigFile, figures, makeBigFile } from "./fixtures/suite.js"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-client-"))
let big: BigFile
const SIZE = 64 * 1024 * 1024

beforeAll(async () => {
  big = await makeBigFile(path.join(root, "big.bin"), SIZE)
})
afterAll(() => {
  const rows = Object.entries(figures).map(
    ([t, f]) =>
      `${t.padEnd(28)} up ${f.upMs.toFixed(0).padStart(5)} ms (${(((f.size / f.upMs) * 1000) / 2 ** 20).toFixed(0)} MiB/s)  down ${f.downMs.toFixed(0).padStart(5)} ms (${(((f.size / f.downMs) * 1000) / 2 ** 20).toFixed(0)} MiB/s)`,
  )
  console.log(`64 MiB copies:\n${rows.join("\n")}`)
  fs.rmSync(root, { recursive: true, force: true })
})

const guestDir = (name: string) => fs.mkdtempSync(path.join(root, `${name}-`))

agentSuite(
  "an in-memory pair",
  async () => {
    const [a, b] = ByteStream.pair()
    ;(await agent).serveStream(b, {})
    const client = await Client.fromStream(a)
    return { agent: client, dir: guestDir("memory"), close: () => client.close() }
  },
  () => big,
)

agentSuite(
  "unix",
  async () => {
    const sock = path.join(root, "agent.sock")
    const running = await (await agent).start({ listen: [`unix:${sock}`] })
    const client = await Client.connect(`unix:${sock}`)
    return {
      agent: client,
      dir: guestDir("unix"),
      close: async () => {
        await client.close()
        await running.stop()
      },
    }
  },
  () => big,
)

agentSuite(
  "tcp (loopback)",
  async () => {
    const running = await (await agent).start({ listen: ["tcp:127.0.0.1:0"] })
    const address = running.addresses.find((a) => a.startsWith("tcp:"))!
    expect(address).not.toMatch(/:0$/)
    const client = await Client.connect(address)
    return {
      agent: client,
      dir: guestDir("tcp"),
      close: async () => {
        await client.close()
        await running.stop()
      },
    }
  },
  () => big,
)

describe("hybrid vsock retries", () => {
  it("retries while the VMM closes before OK, then connects", async () => {
    const sock = path.join(root, "h-agent.sock")
    const running = await (await agent).start({ listen: [`unix:${sock}`] })
    const relay = await hybridRelay(path.join(root, "h-vm.sock"), sock, { refuseFirst: 3 })
    const retries: Array<string> = []
    const client = await Client.connect(`hybrid:${path.join(root, "h-vm.sock")}:5000`, {
      onRetry: (n, e) => retries.push(`${n}: ${e.message}`),
    })
    expect(relay.stats.refused).toBe(3)
    expect(retries).toHaveLength(3)
    expect(retries[0]).toMatch(/closed the connection before OK/)
    expect(relay.stats.ports.every((p) => p === 5000)).toBe(true)
    expect(new TextDecoder().decode((await client.exec(["echo", "hi"])).stdout)).toBe("hi\n")
    await client.close()
    await relay.close()
    await running.stop()
  })

  it("gives up at the deadline with a clear TIMEOUT while the guest never listens", async () => {
    const relay = await hybridRelay(path.join(root, "h-dead.sock"), "/nonexistent", { refuseFirst: 1e9 })
    const t0 = Date.now()
    const err = await Client.connect(`hybrid:${path.join(root, "h-dead.sock")}`, { timeoutMs: 600 }).catch(
      (e) => e,
    )
    expect(Date.now() - t0).toBeLessThan(2000)
    expect(err).toMatchObject({ _tag: "ConnectError", reason: "TIMEOUT" })
    expect(err.message).toMatch(/did not accept on vsock port 4919/)
    expect(err.attempts).toBeGreaterThan(2)
    await relay.close()
  })
})

{
  let relayClose: () => Promise<void> = async () => {}
  agentSuite(
    "hybrid vsock through a relay",
    async () => {
      const sock = path.join(root, "hy-agent.sock")
      const running = await (await agent).start({ listen: [`unix:${sock}`] })
      const relay = await hybridRelay(path.join(root, "hy-vm.sock"), sock, { refuseFirst: 2 })
      relayClose = relay.close
      const client = await Client.connect(`hybrid:${path.join(root, "hy-vm.sock")}`)
      expect(relay.stats.refused).toBe(2)
      return {
        agent: client,
        dir: guestDir("hybrid"),
        close: async () => {
          await client.close()
          await relayClose()
          await running.stop()
        },
      }
    },
    () => big,
  )
}

agentSuite(
  "a guest-initiated connection (listen-unix, stale connection drained)",
  async () => {
    const p = path.join(root, "vm.sock_4919")
    const drained: Array<number> = []
    const connecting = Client.connect(`listen-unix:${p}`, {
      onRetry: (n) => drained.push(n),
      timeoutMs: 15_000,
    })
    // Wait for the listener, then leave a stale connection that closes at once (as after save/restore).
    while (!fs.existsSync(p)) await new Promise((r) => setTimeout(r, 10))
    await new Promise<void>((resolve) => {
      const stale = net.connect(p, () => {
        stale.destroy()
        resolve()
      })
    })
    const running = await (await agent).start({ connect: [`unix:${p}`] })
    const client = await connecting
    expect(drained.length).toBeGreaterThanOrEqual(1)
    return {
      agent: client,
      dir: guestDir("listen"),
      close: async () => {
        await client.close()
        await running.stop()
      },
    }
  },
  () => big,
)

agentSuite(
  "a serial-like stream after a client left mid-frame",
  async () => {
    const p = path.join(root, "serial.sock")
    // Cut the first client 3 MiB + 777 bytes into what it sends: inside a data frame of its upload.
    const relay = await serialRelay(p, { cutFirstAfter: 3 * 1024 * 1024 + 777 })
    const served = (await agent).serveStream(relay.agentStream, {})
    const dir = guestDir("serial")
    const first = await Client.connect(`serial:${p}`)
    await expectRoundTrip(() => first.ping())
    const partial = path.join(dir, "partial.bin")
    await expect(first.upload(new Uint8Array(16 << 20).fill(1), partial)).rejects.toMatchObject({
      _tag: "AgentError",
    })
    expect(relay.stats.cut).toBe(true)
    await first.close()
    const second = await Client.connect(`serial:${p}`, { timeoutMs: 15_000 })
    expect(fs.existsSync(partial)).toBe(false)
    return {
      agent: second,
      dir,
      close: async () => {
        await second.close()
        await relay.close()
        ;(served as { close?: () => void }).close?.()
      },
    }
  },
  () => big,
)
