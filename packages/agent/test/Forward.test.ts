/**
 * connect, listen and accept under the Node and the Bun agent: bytes both ways, half-close both ways,
 * refusals and resets as their errno codes, a cancelled call resetting the guest connection, and a
 * guest listener whose connections are carried by accept calls.
 */
import type { Session } from "@cuvette/protocol"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { collect, connect, inProcess, tempDir } from "./fixtures/agent.js"
import { type RunningAgent, runtimes, startAgent } from "./fixtures/runtimes.js"

/** A server on loopback; `onSocket` handles each connection. Closed with the returned function. */
const serve = async (
  onSocket: (s: net.Socket) => void,
  where: { path: string } | { port: number } = { port: 0 },
) => {
  const server = net.createServer({ allowHalfOpen: true }, onSocket)
  await new Promise<void>((r) =>
    "path" in where ? server.listen(where.path, r) : server.listen(where.port, "127.0.0.1", r),
  )
  const port = (server.address() as net.AddressInfo).port
  return { server, port, close: () => new Promise<void>((r) => server.close(() => r())) }
}

/** Reads everything until the peer's end, then answers `reply(what it read)` and ends: a half-close check. */
const replyAfterEnd = (reply: (got: Buffer) => string) => (s: net.Socket) => {
  const parts: Array<Buffer> = []
  s.on("data", (d: Buffer) => parts.push(d))
  s.on("end", () => s.end(reply(Buffer.concat(parts))))
}

/** A refused port: one that was just listening and is closed now. */
const closedPort = async () => {
  const { port, close } = await serve(() => {})
  await close()
  return port
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  )

for (const runtime of runtimes) {
  describe.skipIf(!runtime.available)(`forwarding (${runtime.name} agent)`, { timeout: 30_000 }, () => {
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

    it("connect carries bytes both ways, and each side's end reaches the other (half-close)", async () => {
      const srv = await serve(replyAfterEnd((got) => `got ${got.length} bytes`))
      try {
        const call = s.open("connect", { to: { _tag: "tcp", host: "127.0.0.1", port: srv.port } })
        expect(await call.nextEvent()).toMatchObject({
          _tag: "Connected",
          remote: `tcp:127.0.0.1:${srv.port}`,
        })
        const body = Buffer.alloc(3 * 1024 * 1024, 7)
        const reply = collect(call.stdout)
        await call.stdin.write(body)
        call.stdin.end()
        // The server answers only after it saw our end: the answer proves our Eof became its EOF.
        expect((await reply).toString()).toBe(`got ${body.length} bytes`)
        expect(await call.result).toEqual({ sent: body.length, received: `got ${body.length} bytes`.length })
      } finally {
        await srv.close()
      }
    })

    it("the guest's end reaches the client while the client keeps sending", async () => {
      // The server says hello and shuts its side down at once; it still reads what follows.
      let late = ""
      // What the server read, once the agent's end reached it (the result may arrive first).
      let lateEnded!: () => void
      const lateDone = new Promise<void>((resolve) => (lateEnded = resolve))
      const srv = await serve((sock) => {
        sock.end("hello")
        sock.on("data", (d: Buffer) => (late += d.toString()))
        sock.on("end", () => lateEnded())
      })
      try {
        const call = s.open("connect", { to: { _tag: "tcp", host: "127.0.0.1", port: srv.port } })
        expect((await collect(call.stdout)).toString()).toBe("hello")
        await call.stdin.write(new TextEncoder().encode("after your end"))
        call.stdin.end()
        expect(await call.result).toEqual({ sent: 14, received: 5 })
        await lateDone
        expect(late).toBe("after your end")
      } finally {
        await srv.close()
      }
    })

    it("a Unix socket in the guest is carried the same way", async () => {
      const dir = tempDir()
      const sock = path.join(dir, "echo.sock")
      const srv = await serve(
        replyAfterEnd((got) => got.toString().toUpperCase()),
        { path: sock },
      )
      try {
        const call = s.open("connect", { to: { _tag: "unix", path: sock } })
        await call.stdin.write(new TextEncoder().encode("over a unix socket"))
        call.stdin.end()
        expect((await collect(call.stdout)).toString()).toBe("OVER A UNIX SOCKET")
        await expect(call.result).resolves.toEqual({ sent: 18, received: 18 })
      } finally {
        await srv.close()
        fs.rmSync(dir, { recursive: true, force: true })
      }
    })

    it("a closed port is ECONNREFUSED, a missing socket ENOENT, an unknown host EHOSTUNREACH", async () => {
      const port = await closedPort()
      expect(
        await failure(s.open("connect", { to: { _tag: "tcp", host: "127.0.0.1", port } }).result),
      ).toMatchObject({
        code: "ECONNREFUSED",
        message: expect.stringContaining(
          `cannot connect to tcp:127.0.0.1:${port} in the guest: connection refused`,
        ),
      })
      expect(
        await failure(s.open("connect", { to: { _tag: "unix", path: "/nonexistent/x.sock" } }).result),
      ).toMatchObject({ code: "ENOENT", message: expect.stringContaining("unix:/nonexistent/x.sock") })
      expect(
        await failure(
          s.open("connect", { to: { _tag: "tcp", host: "no-such-host.invalid", port: 80 } }).result,
        ),
      ).toMatchObject({ code: "EHOSTUNREACH", message: expect.stringContaining("does not resolve") })
    })

    it("a reset from the guest service is ECONNRESET", async () => {
      const srv = await serve((sock) => sock.once("data", () => sock.resetAndDestroy()))
      try {
        const call = s.open("connect", { to: { _tag: "tcp", host: "127.0.0.1", port: srv.port } })
        await call.stdin.write(new TextEncoder().encode("x"))
        expect(await failure(call.result)).toMatchObject({ code: "ECONNRESET" })
      } finally {
        await srv.close()
      }
    })

    it("cancelling the call closes the guest connection", async () => {
      const closed = new Promise<void>((resolve) => {
        void serve((sock) => {
          sock.on("error", () => {})
          sock.on("close", () => resolve())
        }).then((srv) => {
          const call = s.open("connect", { to: { _tag: "tcp", host: "127.0.0.1", port: srv.port } })
          void call.nextEvent().then(() => call.cancel())
          void call.result.catch(() => {})
          void closed.then(() => srv.close())
        })
      })
      await closed
    })

    it("cancelling a call to a Unix socket (which has no reset) closes it, and the session goes on", async () => {
      const dir = tempDir()
      let closed!: () => void
      const gone = new Promise<void>((r) => (closed = r))
      const srv = await serve(
        (sock) => {
          sock.on("error", () => {})
          // A Unix peer that closes is an end here (the server is half-open).
          sock.on("end", () => (sock.destroy(), closed()))
        },
        { path: path.join(dir, "idle.sock") },
      )
      try {
        const call = s.open("connect", { to: { _tag: "unix", path: path.join(dir, "idle.sock") } })
        await call.nextEvent()
        call.cancel()
        expect(await failure(call.result)).toMatchObject({ code: "CANCELLED" })
        await gone
        await expect(s.open("ping", {}).result).resolves.toEqual({})
      } finally {
        await srv.close()
        fs.rmSync(dir, { recursive: true, force: true })
      }
    })

    it("listen announces connections that accept calls carry; an unknown connection is ENOENT", async () => {
      const lst = s.open("listen", { on: { _tag: "tcp", host: "127.0.0.1", port: 0 } })
      const listening = await lst.nextEvent()
      expect(listening).toMatchObject({
        _tag: "Listening",
        address: expect.stringMatching(/^tcp:127\.0\.0\.1:\d+$/),
      })
      const port = Number(/:(\d+)$/.exec((listening as { address: string }).address)![1])
      const client = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true })
      const answer = new Promise<string>((resolve) => {
        let text = ""
        client.on("data", (d: Buffer) => (text += d.toString()))
        client.on("end", () => resolve(text))
      })
      client.end("ping from the guest side")
      const accepted = await lst.nextEvent()
      expect(accepted).toMatchObject({
        _tag: "Accepted",
        connection: expect.stringMatching(/^[0-9a-f]{32}$/),
      })
      const id = (accepted as { connection: string }).connection
      const call = s.open("accept", { connection: id })
      expect((await collect(call.stdout)).toString()).toBe("ping from the guest side")
      await call.stdin.write(new TextEncoder().encode("pong"))
      call.stdin.end()
      expect(await answer).toBe("pong")
      expect(await call.result).toEqual({ sent: 4, received: 24 })
      // Claimed once only.
      expect(await failure(s.open("accept", { connection: id }).result)).toMatchObject({ code: "ENOENT" })
      lst.cancel()
      expect(await failure(lst.result)).toMatchObject({ code: "CANCELLED" })
      // The listener is gone with its call.
      const refused = await new Promise<string | undefined>((resolve) => {
        const c = net.connect({ port, host: "127.0.0.1" })
        c.on("connect", () => (c.destroy(), resolve(undefined)))
        c.on("error", (e: NodeJS.ErrnoException) => resolve(e.code))
      })
      expect(refused).toBe("ECONNREFUSED")
    })

    it("listening where something listens already is EADDRINUSE", async () => {
      const srv = await serve(() => {})
      try {
        const lst = s.open("listen", { on: { _tag: "tcp", host: "127.0.0.1", port: srv.port } })
        expect(await failure(lst.result)).toMatchObject({
          code: "EADDRINUSE",
          message: expect.stringContaining(`cannot listen on tcp:127.0.0.1:${srv.port} in the guest`),
        })
      } finally {
        await srv.close()
      }
    })
  })
}

describe("--allow and info", () => {
  it("connect and listen are operations like any other; accept comes with listen", async () => {
    const agent = await inProcess({ allow: ["listen"] })
    const s = await connect(agent.sock)
    try {
      expect((await s.open("info", {}).result).capabilities).toEqual(["ping", "info", "listen", "accept"])
      expect(
        await failure(s.open("connect", { to: { _tag: "tcp", host: "127.0.0.1", port: 1 } }).result),
      ).toMatchObject({ code: "DENIED", message: expect.stringContaining("connect is not allowed") })
      expect(await failure(s.open("accept", { connection: "x" }).result)).toMatchObject({ code: "ENOENT" })
    } finally {
      s.close()
      await agent.stop()
    }
  })
})
