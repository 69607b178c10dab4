// The console bridge's WebSocket protocol, with a ws client against consoles that are real Unix sockets
// (a fake VM's console: a socket server that records what it receives and prints what it is told to).
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { WebSocket } from "ws"
import { type Bridge, RESET_SEQUENCE, serve, type Shell } from "../src/internal/console/bridge.js"
import { parseListen, readConfig } from "../src/internal/console/serve.js"
import { openSource, parseSource } from "../src/internal/console/source.js"

/** A VM's console socket: every connection's input is recorded; `print` writes to every connection. */
interface FakeConsole {
  readonly path: string
  received(): string
  connections(): number
  print(text: string): void
  close(): Promise<void>
}

const fakeConsole = async (file: string, greeting?: string): Promise<FakeConsole> => {
  const sockets = new Set<net.Socket>()
  let received = ""
  let opened = 0
  const server = net.createServer((s) => {
    opened++
    if (greeting !== undefined) s.write(greeting)
    sockets.add(s)
    s.on("data", (d) => (received += d.toString("latin1")))
    s.on("close", () => sockets.delete(s))
    s.on("error", () => undefined)
  })
  await new Promise<void>((r) => server.listen(file, r))
  return {
    path: file,
    received: () => received,
    connections: () => opened,
    print: (text) => sockets.forEach((s) => s.write(text)),
    close: () =>
      new Promise((r) => {
        sockets.forEach((s) => s.destroy())
        server.close(() => r())
      }),
  }
}

const until = async (what: string, f: () => boolean, ms = 5000) => {
  const end = Date.now() + ms
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** A ws client that keeps every frame: text frames parsed, binary frames appended to `output`. */
const client = (url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}) => {
  const ws = new WebSocket(url, options)
  const messages: Array<Record<string, unknown>> = []
  let output = ""
  ws.on("message", (data, isBinary) => {
    if (isBinary) output += (data as Buffer).toString("latin1")
    else messages.push(JSON.parse((data as Buffer).toString()) as Record<string, unknown>)
  })
  const opened = new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve())
    ws.once("error", reject)
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
  )
  return { ws, messages, output: () => output, opened, closed }
}

/** The HTTP status a WebSocket upgrade is answered with, and the body. */
const refusal = (url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const ws = new WebSocket(url, options)
    ws.on("unexpected-response", (_req, res) => {
      let body = ""
      res.on("data", (d: Buffer) => (body += d.toString()))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }))
    })
    ws.on("open", () => reject(new Error(`${url} was accepted`)))
    ws.on("error", () => undefined)
  })

const noShell = (): Promise<Shell> => Promise.reject(new Error("no shells in this test"))

describe("console bridge: WebSocket sessions on a console socket", () => {
  let dir: string
  let vm: FakeConsole
  let bridge: Bridge
  let ws: string
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-bridge-"))
    vm = await fakeConsole(path.join(dir, "serial.sock"))
    bridge = await serve({
      host: "127.0.0.1",
      port: 0,
      consoles: new Map([
        ["vm", vm.path],
        ["gone", path.join(dir, "missing.sock")],
      ]),
      shells: new Map(),
      token: undefined,
      openConsole: (s) => openSource(parseSource(s)),
      openShell: noShell,
    })
    ws = bridge.url.replace("http:", "ws:")
  })
  afterAll(async () => {
    await bridge?.close()
    await vm?.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("first frame is connected; guest output comes as binary frames; binary input reaches the guest", async () => {
    const c = client(`${ws}consoles/vm`)
    await c.opened
    await until("connected", () => c.messages.length > 0)
    expect(c.messages[0]).toMatchObject({ type: "connected", kind: "console", name: "vm", source: vm.path })
    await until("the console connection", () => vm.connections() > 0)
    vm.print("login: ")
    await until("output", () => c.output() === "login: ")
    c.ws.send(Buffer.from("root\r"))
    await until("input", () => vm.received().endsWith("root\r"))
    c.ws.close()
    await c.closed
  })

  it("what a console prints as it is opened reaches the first viewer", async () => {
    const banner = await fakeConsole(path.join(dir, "banner.sock"), "Welcome to the VM\r\n")
    const other = await serve({
      host: "127.0.0.1",
      port: 0,
      consoles: new Map([["vm", banner.path]]),
      shells: new Map(),
      token: undefined,
      // Opening takes a while here: the banner is already waiting when the viewer's session starts.
      openConsole: async (s) => {
        const stream = await openSource(parseSource(s))
        await new Promise((r) => setTimeout(r, 300))
        return stream
      },
      openShell: noShell,
    })
    try {
      const c = client(`${other.url.replace("http:", "ws:")}consoles/vm`)
      await c.opened
      await until("the banner", () => c.output() === "Welcome to the VM\r\n")
      c.ws.close()
      await c.closed
    } finally {
      await other.close()
      await banner.close()
    }
  })

  it("an invalid control message is answered with an error and the session stays open", async () => {
    const c = client(`${ws}consoles/vm`)
    await c.opened
    for (const bad of ["not json", "[1]", '{"type":"jump"}', '{"type":"resize","cols":0,"rows":24}'])
      c.ws.send(bad)
    await until("4 errors", () => c.messages.filter((m) => m.type === "error").length === 4)
    const errors = c.messages.filter((m) => m.type === "error").map((m) => m.message)
    expect(errors[0]).toMatch(/must be JSON/)
    expect(errors[2]).toMatch(/unknown control message type "jump"/)
    expect(errors[3]).toMatch(/cols and rows/)
    // Still attached: a resize is accepted silently, and input still reaches the guest.
    c.ws.send(JSON.stringify({ type: "resize", cols: 100, rows: 30, width: 800, height: 600 }))
    c.ws.send(Buffer.from("still-here\r"))
    await until("input after the errors", () => vm.received().includes("still-here\r"))
    expect(c.messages.filter((m) => m.type === "error")).toHaveLength(4)
    c.ws.close()
    await c.closed
  })

  it("reset_session types Ctrl-C, CR, Ctrl-D into the console", async () => {
    const c = client(`${ws}consoles/vm`)
    await c.opened
    await until("connected", () => c.messages.length > 0)
    const before = vm.received().length
    c.ws.send(JSON.stringify({ type: "reset_session" }))
    await until("the reset keys", () => vm.received().slice(before) === RESET_SEQUENCE.join(""))
    expect(vm.received().slice(before)).toBe("\x03\r\x04")
    c.ws.close()
    await c.closed
  })

  it("a viewer that does not read holds the console back: the bridge buffers a bounded amount", async () => {
    // A console that prints as fast as it is read, 64 MiB in all.
    const total = 64 * 1024 * 1024
    let written = 0
    const flood = net.createServer((s) => {
      const chunk = Buffer.alloc(64 * 1024, 0x61)
      const more = () => {
        while (written < total) {
          written += chunk.length
          if (!s.write(chunk)) return void s.once("drain", more)
        }
      }
      s.on("error", () => undefined)
      more()
    })
    const floodPath = path.join(dir, "flood.sock")
    await new Promise<void>((r) => flood.listen(floodPath, r))
    const other = await serve({
      host: "127.0.0.1",
      port: 0,
      consoles: new Map([["flood", floodPath]]),
      shells: new Map(),
      token: undefined,
      openConsole: (s) => openSource(parseSource(s)),
      openShell: noShell,
    })
    try {
      const c = client(`${other.url.replace("http:", "ws:")}consoles/flood`)
      await c.opened
      c.ws.pause()
      await new Promise((r) => setTimeout(r, 1500))
      const held = written
      // Socket buffers on the way and the bridge's 1 MiB: far below what the console had to give.
      expect(held).toBeLessThan(24 * 1024 * 1024)
      c.ws.resume()
      await until("everything, once the viewer reads", () => c.output().length === total, 20_000)
      c.ws.close()
      await c.closed
    } finally {
      await other.close()
      flood.close()
    }
  })

  it("a WebSocket ping gets a pong", async () => {
    const c = client(`${ws}consoles/vm`)
    await c.opened
    const pong = new Promise<string>((r) => c.ws.once("pong", (d: Buffer) => r(d.toString())))
    c.ws.ping("are-you-there")
    expect(await pong).toBe("are-you-there")
    c.ws.close()
    await c.closed
  })

  it("several viewers share one connection: all see the output, input from each reaches the guest", async () => {
    const opened = vm.connections()
    const a = client(`${ws}consoles/vm`)
    await a.opened
    const b = client(`${ws}consoles/vm`)
    await b.opened
    await until("both connected", () => a.messages.length > 0 && b.messages.length > 0)
    expect(b.messages[0]).toMatchObject({ type: "connected", viewers: 2 })
    expect(vm.connections()).toBe(opened + 1)
    vm.print("shared-output")
    await until("both see it", () => a.output() === "shared-output" && b.output() === "shared-output")
    a.ws.send(Buffer.from("from-a\r"))
    b.ws.send(Buffer.from("from-b\r"))
    await until(
      "input from both",
      () => vm.received().includes("from-a\r") && vm.received().includes("from-b\r"),
    )
    a.ws.close()
    b.ws.close()
    await Promise.all([a.closed, b.closed])
  })

  it("a closed console closes its sessions; the next session opens it again (a VM restart)", async () => {
    const c = client(`${ws}consoles/vm`)
    await c.opened
    await until("connected", () => c.messages.length > 0)
    await vm.close()
    expect(await c.closed).toEqual({ code: 1000, reason: "the console closed" })
    fs.rmSync(vm.path, { force: true })
    vm = await fakeConsole(vm.path)
    const again = client(`${ws}consoles/vm`)
    await again.opened
    await until("the new console connection", () => vm.connections() === 1)
    vm.print("booted again")
    await until("output after the restart", () => again.output() === "booted again")
    again.ws.close()
    await again.closed
  })

  it("an unknown name is HTTP 404; a console that cannot be opened is 502 with the reason", async () => {
    const unknown = await refusal(`${ws}consoles/nope`)
    expect(unknown.status).toBe(404)
    expect(unknown.body).toMatch(/no console named "nope" \(known: vm, gone\)/)
    const gone = await refusal(`${ws}consoles/gone`)
    expect(gone.status).toBe(502)
    expect(gone.body).toMatch(/nothing is listening on .*missing\.sock/)
    expect((await refusal(`${ws}shell/vm`)).status).toBe(404)
  })

  it("a browser page on another origin is refused (403); the same origin is accepted", async () => {
    const port = bridge.port
    const other = await refusal(`${ws}consoles/vm`, { origin: "http://evil.example" })
    expect(other.status).toBe(403)
    expect(other.body).toMatch(/cross-origin request refused/)
    // A name pointed at 127.0.0.1 (DNS rebinding) sends its own Host: refused on a loopback bind.
    const rebound = await refusal(`${ws}consoles/vm`, {
      origin: `http://evil.example:${port}`,
      headers: { host: `evil.example:${port}` },
    })
    expect(rebound.status).toBe(421)
    const same = client(`${ws}consoles/vm`, { origin: `http://127.0.0.1:${port}` })
    await same.opened
    same.ws.close()
    await same.closed
  })

  it("serves the page, xterm.js and the console list", async () => {
    const page = await fetch(bridge.url)
    expect(page.status).toBe(200)
    expect(await page.text()).toMatch(/<script src="xterm.js"><\/script>/)
    const xterm = await fetch(`${bridge.url}xterm.js`)
    expect(xterm.headers.get("content-type")).toMatch(/javascript/)
    expect((await xterm.text()).length).toBeGreaterThan(100_000)
    const list = (await (await fetch(`${bridge.url}consoles`)).json()) as {
      consoles: Array<{ name: string }>
    }
    expect(list.consoles.map((c) => c.name)).toEqual(["vm", "gone"])
    expect((await fetch(`${bridge.url}consoles/vm`)).status).toBe(426)
    // A path that looks like a host is still a path.
    const raw = await new Promise<string>((resolve) => {
      const s = net.connect(bridge.port, "127.0.0.1", () =>
        s.write("GET // HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
      )
      s.once("data", (d) => (resolve(d.toString()), s.destroy()))
    })
    expect(raw).toMatch(/^HTTP\/1.1 404 /)
    const proxied = await new Promise<string>((resolve) => {
      const s = net.connect(bridge.port, "127.0.0.1", () =>
        s.write("GET http://elsewhere:1/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
      )
      s.once("data", (d) => (resolve(d.toString()), s.destroy()))
    })
    expect(proxied).toMatch(/^HTTP\/1.1 400 /)
    expect((await fetch(bridge.url)).status).toBe(200)
  })
})

describe("console bridge: a token on a bind other machines can reach", () => {
  let dir: string
  let vm: FakeConsole
  let bridge: Bridge
  const token = "s3cret-token-for-the-bridge"
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-bridge-"))
    vm = await fakeConsole(path.join(dir, "serial.sock"))
    bridge = await serve({
      host: "0.0.0.0",
      port: 0,
      consoles: new Map([["vm", vm.path]]),
      shells: new Map(),
      token,
      openConsole: (s) => openSource(parseSource(s)),
      openShell: noShell,
    })
  })
  afterAll(async () => {
    await bridge?.close()
    await vm?.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it("refuses an upgrade without the token or with a wrong one (401), accepts ?token= and Bearer", async () => {
    // Bound to every address, reached through loopback only.
    const ws = `ws://127.0.0.1:${bridge.port}/consoles/vm`
    const none = await refusal(ws)
    expect(none.status).toBe(401)
    expect(none.body).toMatch(/needs a token/)
    expect((await refusal(`${ws}?token=wrong`)).status).toBe(401)
    expect((await refusal(ws, { headers: { authorization: "Bearer wrong" } })).status).toBe(401)
    expect(vm.connections()).toBe(0)
    for (const c of [
      client(`${ws}?token=${token}`),
      client(ws, { headers: { authorization: `Bearer ${token}` } }),
    ]) {
      await c.opened
      await until("connected", () => c.messages.length > 0)
      expect(c.messages[0]).toMatchObject({ type: "connected" })
      c.ws.close()
      await c.closed
    }
    // The list needs it too; the page's own files do not (the page reads the token from its #token=).
    expect((await fetch(`http://127.0.0.1:${bridge.port}/consoles`)).status).toBe(401)
    expect((await fetch(`http://127.0.0.1:${bridge.port}/consoles?token=${token}`)).status).toBe(200)
    expect((await fetch(`http://127.0.0.1:${bridge.port}/`)).status).toBe(200)
  })
})

describe("console bridge: the listen address and the config file", () => {
  it("reads PORT and :PORT as loopback, HOST:PORT and [IPV6]:PORT as given", () => {
    expect(parseListen("7681")).toEqual({ host: "127.0.0.1", port: 7681 })
    expect(parseListen(":0")).toEqual({ host: "127.0.0.1", port: 0 })
    expect(parseListen("0.0.0.0:7681")).toEqual({ host: "0.0.0.0", port: 7681 })
    expect(parseListen("[::1]:80")).toEqual({ host: "::1", port: 80 })
    expect(() => parseListen("7681:host")).toThrow(/expected PORT, HOST:PORT/)
    expect(() => parseListen("70000")).toThrow(/expected PORT/)
  })

  it("reads consoles and shells from the file; says what is wrong with a bad one", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-bridge-"))
    const file = (text: string) => {
      fs.writeFileSync(path.join(dir, "c.json"), text)
      return path.join(dir, "c.json")
    }
    try {
      expect(readConfig(file('{"consoles": {"a": "/a.sock"}, "shells": {"a": "unix:/b.sock"}}'))).toEqual({
        consoles: [["a", "/a.sock"]],
        shells: [["a", "unix:/b.sock"]],
      })
      expect(() => readConfig(file("{"))).toThrow(/c\.json: .*JSON/)
      expect(() => readConfig(file('{"console": {}}'))).toThrow(
        /unknown key console \(known: consoles, shells\)/,
      )
      expect(() => readConfig(file('{"consoles": {"a": 1}}'))).toThrow(
        /consoles\.a must be a non-empty string/,
      )
      expect(() => readConfig(path.join(dir, "missing.json"))).toThrow(/missing\.json: ENOENT/)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
