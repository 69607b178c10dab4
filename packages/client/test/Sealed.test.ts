// Sealed TCP against the real agent in a child process, under Node and under Bun: the usual suite over
// a sealed session, and a man-in-the-middle relay that, after AuthOk, injects, replays, flips or
// reorders what the client sends. Each attack closes the session on both sides with the sealing
// error, and no exec the relay touched runs.
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Constants, Frame, Handshake, Messages } from "@cuvette/protocol"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Attack, attacks, execFrame, splitter } from "../../protocol/test/fixtures/relay.js"
import * as Client from "../src/Client.js"
import { agentSuite, type BigFile, makeBigFile } from "./fixtures/suite.js"

const repo = path.resolve(fileURLToPath(new URL("../../..", import.meta.url)))
const BUN = path.join(repo, "node_modules", "bun", "bin", "bun.exe")
const commands = {
  node: [process.execPath, path.join(repo, "packages/agent/bin/cuvette-agent.mjs")],
  bun: [BUN, "--conditions=@cuvette/source", path.join(repo, "packages/agent/src/bin.ts")],
} as const

const root = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-sealed-"))
const tokenFile = path.join(root, "token")
fs.writeFileSync(tokenFile, "sealed-test-token\n")
let big: BigFile
beforeAll(async () => {
  big = await makeBigFile(path.join(root, "big.bin"), 64 * 1024 * 1024)
})
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

interface ChildAgent {
  readonly address: string
  readonly port: number
  readonly log: () => string
  readonly stop: () => Promise<void>
}

/** Starts `cuvette-agent --listen tcp:127.0.0.1:0 --token-file …` and reads the port it got. */
const startAgent = async (runtime: keyof typeof commands, extra: ReadonlyArray<string> = []) => {
  const [bin, ...args] = commands[runtime]
  const child: ChildProcess = spawn(
    bin,
    [...args, "--listen", "tcp:127.0.0.1:0", "--token-file", tokenFile, ...extra],
    { stdio: ["ignore", "ignore", "pipe"] },
  )
  let log = ""
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`agent not ready:\n${log}`)), 60_000)
    child.stderr!.on("data", (d: Buffer) => {
      log += d.toString()
      const m = /serving on (tcp:127\.0\.0\.1:\d+)/.exec(log)
      if (m && log.includes(Constants.READY_MARKER)) {
        clearTimeout(timer)
        resolve(m[1]!)
      }
    })
    child.once("exit", (code) => reject(new Error(`agent exited with ${code}:\n${log}`)))
  })
  return {
    address,
    port: Number(address.split(":").pop()),
    log: () => log,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once("exit", () => resolve())
        child.kill("SIGKILL")
      }),
  } satisfies ChildAgent
}

/** A TCP relay to `port`: agent → client passes untouched, client → agent through `attack`. */
const relay = async (port: number, attack: Attack) => {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const agent = net.connect({ host: "127.0.0.1", port })
    for (const s of [client, agent]) {
      sockets.add(s)
      s.on("error", () => {})
      s.on("close", () => sockets.delete(s))
    }
    client.on(
      "data",
      splitter(attack, (bytes) => agent.write(bytes)),
    )
    agent.pipe(client)
    client.on("close", () => agent.destroy())
    agent.on("close", () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    target: `tcp:127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}

const waitFor = async (predicate: () => boolean, ms: number) => {
  const end = Date.now() + ms
  while (!predicate() && Date.now() < end) await new Promise((r) => setTimeout(r, 20))
  return predicate()
}

for (const runtime of ["node", "bun"] as const) {
  {
    let running: ChildAgent
    agentSuite(
      `sealed TCP (${runtime} agent with a token)`,
      async () => {
        running = await startAgent(runtime)
        const agent = await Client.connect(running.address, { tokenFile })
        return {
          agent,
          dir: fs.mkdtempSync(path.join(root, `${runtime}-suite-`)),
          close: async () => {
            await agent.close()
            await running.stop()
          },
        }
      },
      () => big,
    )
  }

  describe(`sealed TCP under a man in the middle (${runtime} agent)`, () => {
    let running: ChildAgent
    beforeAll(async () => {
      running = await startAgent(runtime)
    }, 70_000)
    afterAll(() => running?.stop())

    it("the session is sealed, and nothing the client sends crosses in clear", async () => {
      const seen: Array<Uint8Array> = []
      const spy = await relay(running.port, (u) => (seen.push(u.bytes), [u.bytes]))
      const agent = await Client.connect(spy.target, { tokenFile })
      expect(agent.welcome.features).toContain("seal")
      const r = await agent.exec(["echo", "argv-that-must-not-show"])
      expect(new TextDecoder().decode(r.stdout)).toBe("argv-that-must-not-show\n")
      expect(Buffer.concat(seen).includes("argv-that-must-not-show")).toBe(false)
      expect(seen.length).toBeGreaterThan(0)
      await agent.close()
      await spy.close()
    })

    for (const [name, attack] of Object.entries(
      attacks(0, execFrame(["touch", path.join(root, `${runtime}-injected`)], 7)),
    )) {
      it(`a relay that ${name} after AuthOk closes the session on both sides, and nothing it touched runs`, async () => {
        const dir = fs.mkdtempSync(path.join(root, `${runtime}-attack-`))
        const mitm = await relay(running.port, attack)
        const agent = await Client.connect(mitm.target, { tokenFile })
        const logged = running.log().length
        // Record #0 opens the first exec, #1 the second (two calls, two records).
        const first = agent.exec(["touch", path.join(dir, "first")]).catch((e: Error) => e)
        const second = agent.exec(["touch", path.join(dir, "second")]).catch((e: Error) => e)
        const [a, b] = await Promise.all([first, second])
        expect(b).toBeInstanceOf(Error)
        expect((b as Error).message).toMatch(/sealed record #[01] from .* failed authentication/)
        const closed = await agent.closed
        expect(closed?.message).toMatch(
          /the peer closed the session: sealed record #[01] from .* failed authentication/,
        )
        expect(
          await waitFor(
            () =>
              /ended: sealed record #[01] from .* failed authentication/.test(running.log().slice(logged)),
            5000,
          ),
        ).toBe(true)
        expect(fs.existsSync(path.join(root, `${runtime}-injected`))).toBe(false)
        expect(fs.existsSync(path.join(dir, "second"))).toBe(false)
        // A replay lets the genuine record #0 through before its copy is refused.
        if (name !== "replays a record") {
          expect(a).toBeInstanceOf(Error)
          expect(fs.existsSync(path.join(dir, "first"))).toBe(false)
        }
        await agent.close()
        await mitm.close()
      })
    }

    it("a client without the seal feature gets a clear refusal", async () => {
      const socket = net.connect({ host: "127.0.0.1", port: running.port })
      const hello = {
        _tag: "Hello",
        minVersion: 1,
        maxVersion: 1,
        features: ["keepalive", "resync", "auth", "cancel"],
        client: { name: "old-client", version: "0.0.1" },
        maxFrame: Constants.DEFAULT_MAX_FRAME,
        window: Constants.DEFAULT_WINDOW,
      } as const
      socket.write(Constants.MAGIC)
      socket.write(Frame.encode(Frame.FrameType.Hello, 0, 0, Messages.encode(Handshake.Message, hello)))
      const received: Array<Buffer> = []
      await new Promise<void>((resolve) => {
        socket.on("data", (d: Buffer) => received.push(d))
        socket.on("close", () => resolve())
        socket.on("error", () => resolve())
      })
      const decoder = new Frame.Decoder(Constants.MAX_FRAME_CEILING, { scan: "strict" })
      decoder.push(Buffer.concat(received))
      const frame = decoder.next()
      expect(frame?._tag).toBe("Frame")
      const refusal = Messages.unpack((frame as { frame: Frame.Frame }).frame.payload, "refusal")
      expect(refusal).toMatchObject({
        _tag: "Right",
        right: {
          _tag: "Refusal",
          code: "UNSUPPORTED",
          message: expect.stringMatching(/this agent seals its sessions on .* and the client cannot/),
        },
      })
    })
  })
}

describe("sealing policy of other transports", () => {
  it("a Unix socket with a token stays unsealed, unless the agent is started with --seal", async () => {
    for (const seal of [false, true]) {
      const sock = path.join(root, `policy-${seal}.sock`)
      const [bin, ...args] = commands.node
      const child = spawn(
        bin,
        [...args, "--listen", `unix:${sock}`, "--token-file", tokenFile, ...(seal ? ["--seal"] : [])],
        {
          stdio: ["ignore", "ignore", "pipe"],
        },
      )
      let log = ""
      await new Promise<void>((resolve, reject) => {
        child.stderr!.on("data", (d: Buffer) => {
          log += d.toString()
          if (log.includes(Constants.READY_MARKER)) resolve()
        })
        child.once("exit", () => reject(new Error(log)))
      })
      const agent = await Client.connect(`unix:${sock}`, { tokenFile })
      expect(agent.welcome.features.includes("seal")).toBe(seal)
      expect(new TextDecoder().decode((await agent.exec(["echo", "ok"])).stdout)).toBe("ok\n")
      await agent.close()
      child.kill("SIGKILL")
    }
  })

  it("a client insists on sealing over TCP with a token, and says why it refuses an agent that does not", async () => {
    const [bin, ...args] = commands.node
    const child = spawn(bin, [...args, "--listen", "tcp:127.0.0.1:0"], {
      stdio: ["ignore", "ignore", "pipe"],
    })
    let log = ""
    const address = await new Promise<string>((resolve, reject) => {
      child.stderr!.on("data", (d: Buffer) => {
        log += d.toString()
        const m = /serving on (tcp:127\.0\.0\.1:\d+)/.exec(log)
        if (m && log.includes(Constants.READY_MARKER)) resolve(m[1]!)
      })
      child.once("exit", () => reject(new Error(log)))
    })
    const error = await Client.connect(address, { tokenFile }).catch((e) => e)
    expect(error.message).toMatch(/does not ask for the token, so the session cannot be sealed/)
    const unsealed = await Client.connect(address, { tokenFile, seal: false })
    expect(unsealed.welcome.features).not.toContain("seal")
    await unsealed.close()
    child.kill("SIGKILL")
  })
})
