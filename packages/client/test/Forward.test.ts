// agent.connect, agent.forward and agent.reverse against a real agent on a Unix socket: many
// connections on one session, byte for byte; a slow reader beside fast ones; half-close; refusals.
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect } from "effect"
import * as AgentClient from "../src/AgentClient.js"
import * as Client from "../src/Client.js"
import { HostSocketError } from "../src/Forward.js"
import { agent } from "./fixtures/agent.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-fwd-"))
let running: { stop(): Promise<void> }
let a: Client.Agent
let target: string

/** A TCP echo server on loopback ("the guest service"): it echoes and ends when its client ends. */
const echoServer = async () => {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => {})
    s.pipe(s)
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return { server, port: (server.address() as net.AddressInfo).port }
}

/** Sends `body` through a connection to `port` and reads everything back until the end. */
const roundTrip = (port: number, body: Buffer, o: { readonly slow?: boolean } = {}) =>
  new Promise<Buffer>((resolve, reject) => {
    const c = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true })
    const parts: Array<Buffer> = []
    c.on("error", reject)
    if (o.slow) {
      // Reads 16 KiB every 20 ms: about 800 KiB/s.
      c.pause()
      const timer = setInterval(() => {
        const chunk = c.read(16 * 1024) as Buffer | null
        if (chunk) parts.push(chunk)
      }, 20)
      c.on("end", () => {
        clearInterval(timer)
        for (let chunk = c.read() as Buffer | null; chunk; chunk = c.read() as Buffer | null)
          parts.push(chunk)
        resolve(Buffer.concat(parts))
      })
    } else {
      c.on("data", (d: Buffer) => parts.push(d))
      c.on("end", () => resolve(Buffer.concat(parts)))
    }
    c.end(body)
  })

const closedPort = async () => {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

const connectCode = (port: number) =>
  new Promise<string>((resolve) => {
    const c = net.connect({ port, host: "127.0.0.1" })
    c.on("connect", () => (c.destroy(), resolve("connected")))
    c.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"))
  })

beforeAll(async () => {
  const sock = path.join(tmp, "agent.sock")
  target = `unix:${sock}`
  running = await (await agent).start({ listen: [target] })
  a = await Client.connect(target)
})

afterAll(async () => {
  await a.close()
  await running.stop()
  fs.rmSync(tmp, { recursive: true, force: true })
})

describe("agent.connect", () => {
  it("is a Duplex to the guest socket: bytes both ways, end() half-closes, then `carried` counts", async () => {
    const { server, port } = await echoServer()
    try {
      const conn = a.connect({ _tag: "tcp", host: "127.0.0.1", port })
      const connected = new Promise<void>((r) => conn.once("connect", () => r()))
      const parts: Array<Buffer> = []
      conn.on("data", (d: Buffer) => parts.push(d))
      const ended = new Promise<void>((r) => conn.once("end", () => r()))
      conn.end("echo me")
      await connected
      await ended
      expect(Buffer.concat(parts).toString()).toBe("echo me")
      expect(await conn.carried).toEqual({ sent: 7, received: 7 })
    } finally {
      server.close()
    }
  })

  it("a refused guest port is an 'error' with ECONNREFUSED", async () => {
    const conn = a.connect({ _tag: "tcp", host: "127.0.0.1", port: await closedPort() })
    const error = await new Promise<unknown>((r) => conn.once("error", r))
    expect(error).toMatchObject({
      code: "ECONNREFUSED",
      message: expect.stringContaining("connection refused"),
    })
  })
})

describe("agent.forward", { timeout: 120_000 }, () => {
  it("carries 100 concurrent connections on one session, 1 MiB each way, byte for byte", async () => {
    const { server, port } = await echoServer()
    const fwd = await a.forward({ listen: { port: 0 }, to: { _tag: "tcp", host: "127.0.0.1", port } })
    try {
      const lport = Number(fwd.address.split(":").pop())
      const bodies = Array.from({ length: 100 }, () => crypto.randomBytes(1024 * 1024))
      const echoed = await Promise.all(bodies.map((b) => roundTrip(lport, b)))
      for (let i = 0; i < bodies.length; i++) expect(echoed[i]!.equals(bodies[i]!)).toBe(true)
    } finally {
      await fwd.close()
      server.close()
    }
  })

  it("one slow reader does not stall the others", async () => {
    const { server, port } = await echoServer()
    const fwd = await a.forward({ listen: { port: 0 }, to: { _tag: "tcp", host: "127.0.0.1", port } })
    try {
      const lport = Number(fwd.address.split(":").pop())
      // 4 MiB (twice the window) at ~800 KiB/s takes about 5 s; the fast ones must be done before.
      const slowBody = crypto.randomBytes(4 * 1024 * 1024)
      let slowDone = false
      const slow = roundTrip(lport, slowBody, { slow: true }).then((b) => ((slowDone = true), b))
      await new Promise((r) => setTimeout(r, 300))
      const fast = Array.from({ length: 20 }, () => crypto.randomBytes(1024 * 1024))
      const echoed = await Promise.all(fast.map((b) => roundTrip(lport, b)))
      expect(slowDone).toBe(false)
      for (let i = 0; i < fast.length; i++) expect(echoed[i]!.equals(fast[i]!)).toBe(true)
      expect((await slow).equals(slowBody)).toBe(true)
    } finally {
      await fwd.close()
      server.close()
    }
  })

  it("half-close: an HTTP/1.0 request with Connection: close gets its whole response", async () => {
    const page = crypto.randomBytes(300 * 1024).toString("hex")
    const server = http.createServer((_req, res) => res.end(page))
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
    const port = (server.address() as net.AddressInfo).port
    const fwd = await a.forward({ listen: { port: 0 }, to: { _tag: "tcp", host: "127.0.0.1", port } })
    try {
      const lport = Number(fwd.address.split(":").pop())
      const raw = await roundTrip(lport, Buffer.from("GET / HTTP/1.0\r\nConnection: close\r\n\r\n"))
      const text = raw.toString()
      expect(text.startsWith("HTTP/1.1 200 OK\r\n")).toBe(true)
      expect(text.slice(text.indexOf("\r\n\r\n") + 4)).toBe(page)
    } finally {
      await fwd.close()
      server.close()
    }
  })

  it("a refused guest port closes that connection only: the listener stays up", async () => {
    const port = await closedPort()
    const errors: Array<unknown> = []
    const fwd = await a.forward({
      listen: { port: 0 },
      to: { _tag: "tcp", host: "127.0.0.1", port },
      onConnectionError: (e) => errors.push(e),
    })
    try {
      const lport = Number(fwd.address.split(":").pop())
      const reset = await new Promise<string>((resolve) => {
        const c = net.connect({ port: lport, host: "127.0.0.1" })
        c.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"))
        c.on("end", () => resolve("end"))
        c.on("close", () => resolve("close"))
      })
      expect(reset).toBe("ECONNRESET")
      expect(errors).toEqual([expect.objectContaining({ code: "ECONNREFUSED" })])
      // The guest service comes up on that port: the same listener now reaches it.
      const server = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s))
      await new Promise<void>((r) => server.listen(port, "127.0.0.1", r))
      try {
        expect((await roundTrip(lport, Buffer.from("now it works"))).toString()).toBe("now it works")
      } finally {
        server.close()
      }
    } finally {
      await fwd.close()
    }
  })

  it("listens on a host Unix socket too; a refused connection there is closed and the listener stays up", async () => {
    const port = await closedPort()
    const errors: Array<unknown> = []
    const where = path.join(tmp, "host.sock")
    const fwd = await a.forward({
      listen: { path: where },
      to: { _tag: "tcp", host: "127.0.0.1", port },
      onConnectionError: (e) => errors.push(e),
    })
    const viaUnix = (body: string) =>
      new Promise<string>((resolve) => {
        const c = net.connect({ path: where, allowHalfOpen: true })
        let text = ""
        c.on("data", (d: Buffer) => (text += d.toString()))
        c.on("error", () => resolve(`error ${text}`))
        c.on("close", () => resolve(text))
        c.end(body)
      })
    try {
      expect(fwd.address).toBe(where)
      expect(await viaUnix("x")).toBe("")
      expect(errors).toEqual([expect.objectContaining({ code: "ECONNREFUSED" })])
      const server = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s))
      await new Promise<void>((r) => server.listen(port, "127.0.0.1", r))
      try {
        expect(await viaUnix("over a host unix socket")).toBe("over a host unix socket")
      } finally {
        server.close()
      }
    } finally {
      await fwd.close()
    }
  })

  it("a local port in use is a HostSocketError EADDRINUSE; a non-loopback address needs bindAny", async () => {
    const busy = net.createServer()
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r))
    const port = (busy.address() as net.AddressInfo).port
    try {
      const e = await a
        .forward({ listen: { port }, to: { _tag: "tcp", host: "127.0.0.1", port: 1 } })
        .catch((x) => x)
      expect(e).toBeInstanceOf(HostSocketError)
      expect(e).toMatchObject({
        code: "EADDRINUSE",
        message: `cannot listen on 127.0.0.1:${port} on this host: address already in use`,
      })
    } finally {
      busy.close()
    }
    await expect(
      a.forward({ listen: { host: "0.0.0.0", port: 0 }, to: { _tag: "tcp", host: "127.0.0.1", port: 1 } }),
    ).rejects.toMatchObject({ _tag: "OptionError", message: expect.stringContaining("bindAny") })
  })

  it("when the agent goes away the listener closes and `closed` says why", async () => {
    const sock = path.join(tmp, "gone.sock")
    const other = await (await agent).start({ listen: [`unix:${sock}`] })
    const b = await Client.connect(`unix:${sock}`)
    const fwd = await b.forward({ listen: { port: 0 }, to: { _tag: "tcp", host: "127.0.0.1", port: 1 } })
    const lport = Number(fwd.address.split(":").pop())
    expect(await connectCode(lport)).toBe("connected")
    await other.stop()
    expect(await fwd.closed).toMatchObject({ code: "DISCONNECTED" })
    expect(await connectCode(lport)).toBe("ECONNREFUSED")
  })
})

describe("agent.reverse", () => {
  it("carries each connection to the guest listener to a host address; close() stops the guest listener", async () => {
    const { server, port } = await echoServer()
    const rev = await a.reverse({ listen: { _tag: "tcp", host: "127.0.0.1", port: 0 }, to: { port } })
    try {
      expect(rev.address).toMatch(/^tcp:127\.0\.0\.1:\d+$/)
      const gport = Number(rev.address.split(":").pop())
      const bodies = Array.from({ length: 10 }, () => crypto.randomBytes(256 * 1024))
      const echoed = await Promise.all(bodies.map((b) => roundTrip(gport, b)))
      for (let i = 0; i < bodies.length; i++) expect(echoed[i]!.equals(bodies[i]!)).toBe(true)
      await rev.close()
      expect(await rev.closed).toBeUndefined()
      expect(await connectCode(gport)).toBe("ECONNREFUSED")
    } finally {
      server.close()
    }
  })
})

describe("AgentClient.forward and connect", () => {
  it("run while their scope is open: the listener closes and the connection is reset with it", async () => {
    const { server, port } = await echoServer()
    const service = AgentClient.make(a)
    try {
      const lport = await Effect.runPromise(
        Effect.scoped(
          Effect.gen(function* () {
            const fwd = yield* service.forward({
              listen: { port: 0 },
              to: { _tag: "tcp", host: "127.0.0.1", port },
            })
            const lport = Number(fwd.address.split(":").pop())
            const echoed = yield* Effect.promise(() => roundTrip(lport, Buffer.from("scoped")))
            expect(echoed.toString()).toBe("scoped")
            const conn = yield* service.connect({ _tag: "tcp", host: "127.0.0.1", port })
            yield* Effect.promise(() => new Promise((r) => conn.once("connect", r)))
            return lport
          }),
        ),
      )
      expect(await connectCode(lport)).toBe("ECONNREFUSED")
      // The scoped connection was destroyed: its call is cancelled.
      await expect.poll(() => a.session.engine.calls.size, { timeout: 5_000 }).toBe(0)
    } finally {
      server.close()
    }
  })
})
