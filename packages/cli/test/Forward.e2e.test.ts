// `cuvette forward` (the real CLI) against the Node and the Bun agent: 100 connections at once, byte for
// byte, beside a slow reader; half-close through HTTP/1.0; a refused guest port closing one connection
// only; --reverse; Ctrl-C leaving no listener; a port in use; the agent going away.
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as net from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { parseSpec } from "../src/commands/forward.js"
import { type AgentHandle, bunBin, spawnCli, startAgent } from "./fixtures/harness.js"

const hasBun = fs.existsSync(bunBin)

/** A TCP echo server on loopback: "the guest service" (the agent runs on this machine). */
const echoServer = async () => {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => {})
    s.pipe(s)
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  return { server, port: (server.address() as net.AddressInfo).port }
}

const freePort = async () => {
  const s = net.createServer()
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r))
  const port = (s.address() as net.AddressInfo).port
  await new Promise<void>((r) => s.close(() => r()))
  return port
}

/** Sends `body` to `port` and reads everything back until the end; `slow` reads ~800 KiB/s. */
const roundTrip = (port: number, body: Buffer, slow = false) =>
  new Promise<Buffer>((resolve, reject) => {
    const c = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true })
    const parts: Array<Buffer> = []
    c.on("error", reject)
    if (slow) {
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

/** What a connection attempt to `port` gets: "connected" or the errno. */
const connectCode = (port: number) =>
  new Promise<string>((resolve) => {
    const c = net.connect({ port, host: "127.0.0.1" })
    c.on("connect", () => (c.destroy(), resolve("connected")))
    c.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"))
  })

/** Starts `cuvette forward ARGS` and resolves once it printed one line per listener, with their ports. */
const startForward = async (target: string, args: ReadonlyArray<string>, listeners = 1) => {
  const child = spawnCli(["-H", target, "forward", ...args])
  child.stdin!.end()
  let out = ""
  let err = ""
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  const ports = await new Promise<Array<number>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`forward did not start: ${err}`)), 30_000)
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString()
      const lines = out.split("\n").filter((l) => l !== "")
      if (lines.length >= listeners) {
        clearTimeout(timer)
        resolve(lines.map((l) => Number(/^\S+:(\d+) /.exec(l)![1])))
      }
    })
    void exited.then((code) => reject(new Error(`forward exited ${code}: ${err}`)))
  })
  return { child, ports, exited, stderr: () => err, stdout: () => out }
}

describe("forward SPEC", () => {
  it("reads [LADDR:]LPORT:[GHOST:]GPORT, unix:PATH and vsock:PORT, and refuses what is not a port", () => {
    expect(parseSpec("8080:80")).toMatchObject({
      listen: { host: "127.0.0.1", port: 8080 },
      to: { _tag: "tcp", host: "127.0.0.1", port: 80 },
    })
    expect(parseSpec("8080:db:5432")).toMatchObject({
      listen: { port: 8080 },
      to: { host: "db", port: 5432 },
    })
    expect(parseSpec("0.0.0.0:8080:80")).toMatchObject({
      listen: { host: "0.0.0.0", port: 8080 },
      to: { port: 80 },
    })
    expect(parseSpec("[::1]:0:[::1]:22")).toMatchObject({
      listen: { host: "::1", port: 0 },
      to: { host: "::1", port: 22 },
    })
    expect(parseSpec("5432:unix:/run/pg.sock")).toMatchObject({ to: { _tag: "unix", path: "/run/pg.sock" } })
    expect(parseSpec("9000:vsock:5000")).toMatchObject({ to: { _tag: "vsock", port: 5000 } })
    expect(() => parseSpec("8080")).toThrow(/not a port|write \[LADDR:\]LPORT/)
    expect(() => parseSpec("8080:0")).toThrow(/the port to connect to "0" is not a port/)
    expect(() => parseSpec("70000:80")).toThrow(/the listening port "70000" is not a port/)
  })
})

for (const runtime of ["node", "bun"] as const) {
  describe.skipIf(runtime === "bun" && !hasBun)(
    `cuvette forward (${runtime} agent)`,
    { timeout: 120_000 },
    () => {
      let agent: AgentHandle
      beforeAll(async () => {
        agent = await startAgent({ runtime })
      }, 60_000)
      afterAll(() => agent?.stop())

      it("100 connections at once on one session, 1 MiB each way, byte for byte; a slow reader does not stall them", async () => {
        const { server, port } = await echoServer()
        const fwd = await startForward(agent.target, [`0:${port}`])
        try {
          const [lport] = fwd.ports
          const slowBody = crypto.randomBytes(4 * 1024 * 1024)
          let slowDone = false
          const slow = roundTrip(lport!, slowBody, true).then((b) => ((slowDone = true), b))
          const bodies = Array.from({ length: 100 }, () => crypto.randomBytes(1024 * 1024))
          const echoed = await Promise.all(bodies.map((b) => roundTrip(lport!, b)))
          expect(slowDone).toBe(false)
          for (let i = 0; i < bodies.length; i++) expect(echoed[i]!.equals(bodies[i]!)).toBe(true)
          expect((await slow).equals(slowBody)).toBe(true)
        } finally {
          fwd.child.kill("SIGKILL")
          server.close()
        }
      })

      it("half-close: an HTTP/1.0 request with Connection: close, two forwards in one command", async () => {
        const page = crypto.randomBytes(200 * 1024).toString("base64")
        const web = http.createServer((_req, res) => res.end(page))
        await new Promise<void>((r) => web.listen(0, "127.0.0.1", r))
        const { server, port } = await echoServer()
        const webPort = (web.address() as net.AddressInfo).port
        const fwd = await startForward(agent.target, [`0:${webPort}`, `0:127.0.0.1:${port}`], 2)
        try {
          const raw = (
            await roundTrip(fwd.ports[0]!, Buffer.from("GET / HTTP/1.0\r\nConnection: close\r\n\r\n"))
          ).toString()
          expect(raw.startsWith("HTTP/1.1 200 OK\r\n")).toBe(true)
          expect(raw.slice(raw.indexOf("\r\n\r\n") + 4)).toBe(page)
          expect((await roundTrip(fwd.ports[1]!, Buffer.from("second"))).toString()).toBe("second")
        } finally {
          fwd.child.kill("SIGKILL")
          web.close()
          server.close()
        }
      })

      it("a refused guest port closes that connection with a line on stderr; the listener stays up", async () => {
        const port = await freePort()
        const fwd = await startForward(agent.target, [`0:${port}`])
        try {
          const [lport] = fwd.ports
          expect(await roundTrip(lport!, Buffer.from("x")).catch((e: NodeJS.ErrnoException) => e.code)).toBe(
            "ECONNRESET",
          )
          await expect
            .poll(() => fwd.stderr(), { timeout: 10_000 })
            .toContain(`cannot connect to tcp:127.0.0.1:${port} in the guest: connection refused`)
          const server = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s))
          await new Promise<void>((r) => server.listen(port, "127.0.0.1", r))
          try {
            expect((await roundTrip(lport!, Buffer.from("up now"))).toString()).toBe("up now")
          } finally {
            server.close()
          }
        } finally {
          fwd.child.kill("SIGKILL")
        }
      })

      it("--reverse: the guest listens, each connection reaches a host port", async () => {
        const { server, port } = await echoServer()
        const fwd = await startForward(agent.target, ["--reverse", `0:${port}`])
        try {
          expect(fwd.stdout()).toMatch(/^127\.0\.0\.1:\d+ in the guest -> 127\.0\.0\.1:\d+ here\n$/)
          const body = crypto.randomBytes(2 * 1024 * 1024)
          expect((await roundTrip(fwd.ports[0]!, body)).equals(body)).toBe(true)
        } finally {
          fwd.child.kill("SIGKILL")
          server.close()
        }
      })

      it("Ctrl-C closes the listeners and connections and exits 130", async () => {
        const { server, port } = await echoServer()
        const fwd = await startForward(agent.target, [`0:${port}`])
        const rev = await startForward(agent.target, ["--reverse", `0:${port}`])
        try {
          const open = net.connect({ port: fwd.ports[0]!, host: "127.0.0.1" })
          const closed = new Promise<void>((r) => open.on("close", () => r()))
          open.on("error", () => {})
          await new Promise<void>((r) => open.on("connect", () => r()))
          fwd.child.kill("SIGINT")
          rev.child.kill("SIGINT")
          expect(await fwd.exited).toBe(130)
          expect(await rev.exited).toBe(130)
          await closed
          expect(fwd.stderr()).toContain("interrupted; stopped forwarding")
          expect(await connectCode(fwd.ports[0]!)).toBe("ECONNREFUSED")
          // The guest listener went with the command.
          await expect.poll(() => connectCode(rev.ports[0]!), { timeout: 10_000 }).toBe("ECONNREFUSED")
        } finally {
          server.close()
        }
      })

      it("--json prints one document naming each listener", async () => {
        const child = spawnCli(["-H", agent.target, "--json", "forward", "0:80", "-R", "0:81"])
        child.stdin!.end()
        let out = ""
        child.stdout!.on("data", (d: Buffer) => (out += d.toString()))
        const exited = new Promise((r) => child.on("close", r))
        await expect.poll(() => out.endsWith("}\n"), { timeout: 30_000 }).toBe(true)
        expect(JSON.parse(out)).toEqual({
          target: agent.target,
          forwards: [
            { listen: expect.stringMatching(/^127\.0\.0\.1:\d+$/), to: "127.0.0.1:80", reverse: true },
            { listen: expect.stringMatching(/^127\.0\.0\.1:\d+$/), to: "127.0.0.1:81", reverse: true },
          ],
        })
        child.kill("SIGTERM")
        expect(await exited).toBe(143)
      })

      it("a local port in use exits 1 and says so; a non-loopback LADDR needs --bind-any", async () => {
        const busy = net.createServer()
        await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r))
        const port = (busy.address() as net.AddressInfo).port
        try {
          const child = spawnCli(["-H", agent.target, "forward", `${port}:80`])
          child.stdin!.end()
          let err = ""
          child.stderr!.on("data", (d: Buffer) => (err += d.toString()))
          expect(await new Promise((r) => child.on("close", r))).toBe(1)
          expect(err).toContain(
            `${port}:80: cannot listen on 127.0.0.1:${port} on this host: address already in use`,
          )
        } finally {
          busy.close()
        }
        const child = spawnCli(["-H", agent.target, "forward", "0.0.0.0:0:80"])
        child.stdin!.end()
        let err = ""
        child.stderr!.on("data", (d: Buffer) => (err += d.toString()))
        expect(await new Promise((r) => child.on("close", r))).toBe(2)
        expect(err).toContain("pass --bind-any")
      })
    },
  )
}

describe("cuvette forward when the agent goes away", { timeout: 60_000 }, () => {
  it("closes the listener, says so and exits 3", async () => {
    const agent = await startAgent()
    try {
      const fwd = await startForward(agent.target, ["0:80"])
      expect(await connectCode(fwd.ports[0]!)).toBe("connected")
      process.kill(agent.pid, "SIGKILL")
      expect(await fwd.exited).toBe(3)
      expect(fwd.stderr()).toContain(`lost the agent at ${agent.target}`)
      expect(await connectCode(fwd.ports[0]!)).toBe("ECONNREFUSED")
    } finally {
      await agent.stop()
    }
  })
})
