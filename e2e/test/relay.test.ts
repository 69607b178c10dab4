// The in-guest vsock relay's session rules (e2e/relay/Relay.ts), on the host: a fake port with a real
// port's semantics (EOF while no host is attached, writes wait for one) and a Unix-socket server in place
// of the agent's vsock listener. The QEMU scenario 1 runs the same code over real AF_VSOCK.
import { MAGIC } from "@cuvette/protocol/Constants"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import * as Relay from "../relay/Relay.js"

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const until = async (what: string, f: () => boolean, ms = 5_000) => {
  const deadline = Date.now() + ms
  while (!f()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

/** A virtio-serial port: the host attaches and detaches; reads see EOF only while none is attached. */
const fakePort = () => {
  let attached = false
  let inbound: Array<Buffer> = []
  const toHost: Array<Buffer> = []
  let wake: (() => void) | undefined
  const poke = () => {
    wake?.()
    wake = undefined
  }
  const port: Relay.Port = {
    description: "fake port",
    read: async (buffer) => {
      while (inbound.length === 0) {
        if (!attached) return 0
        await new Promise<void>((resolve) => (wake = resolve))
      }
      const chunk = inbound.shift()!
      chunk.copy(buffer)
      return chunk.byteLength
    },
    write: async (chunk) => {
      while (!attached) await sleep(5)
      toHost.push(Buffer.from(chunk))
    },
  }
  return {
    port,
    attach: () => {
      attached = true
      toHost.length = 0
    },
    /** With `notice: false` a blocked read does not return yet (the relay has not seen the EOF). */
    detach: (notice = true) => {
      attached = false
      inbound = []
      if (notice) poke()
    },
    notice: poke,
    send: (...chunks: Array<Uint8Array | string>) => {
      for (const c of chunks) inbound.push(Buffer.from(c))
      poke()
    },
    received: () => Buffer.concat(toHost).toString("latin1"),
  }
}

/** The agent's stand-in: records what each connection receives, in order of arrival. */
const fakeService = async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-relay-"))
  const file = path.join(dir, "vsock.sock")
  const connections: Array<{ socket: net.Socket; bytes: Buffer; ended: boolean }> = []
  const server = net.createServer((socket) => {
    const c = { socket, bytes: Buffer.alloc(0), ended: false }
    connections.push(c)
    socket.on("data", (d: Buffer) => (c.bytes = Buffer.concat([c.bytes, d])))
    socket.on("close", () => (c.ended = true))
    socket.on("error", () => {})
  })
  await new Promise<void>((resolve) => server.listen(file, resolve))
  const connect = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(file)
      s.once("connect", () => resolve(s))
      s.once("error", reject)
    })
  const close = () => {
    for (const c of connections) c.socket.destroy()
    server.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
  return { connections, connect, close }
}

const magic = Buffer.from(MAGIC).toString("latin1")
const stops: Array<() => void> = []
afterEach(() => stops.splice(0).forEach((stop) => stop()))

const start = async () => {
  const host = fakePort()
  const service = await fakeService()
  const abort = new AbortController()
  const lines: Array<string> = []
  const done = Relay.run({
    port: host.port,
    connect: service.connect,
    log: (l) => lines.push(l),
    signal: abort.signal,
  })
  stops.push(() => {
    abort.abort()
    host.detach()
    service.close()
    void done
  })
  return { host, service, lines }
}

describe("vsock relay sessions", () => {
  it("opens one connection per host client, carrying everything from the magic on, both ways", async () => {
    const { host, service, lines } = await start()
    host.attach()
    host.send("line noise of an old session", magic.slice(0, 3), magic.slice(3) + "hello 1")
    await until("connection 1", () => service.connections[0]?.bytes.toString("latin1") === magic + "hello 1")
    service.connections[0].socket.write("welcome 1")
    await until("the reply on the port", () => host.received() === "welcome 1")

    host.detach()
    await until("connection 1 closed", () => service.connections[0].ended)
    expect(lines.join("\n")).toMatch(
      /session 1 closed \(host left\): host->vsock 15 bytes, vsock->host 9 bytes/,
    )

    host.attach()
    host.send(magic + "hello 2")
    await until("connection 2", () => service.connections[1]?.bytes.toString("latin1") === magic + "hello 2")
    expect(service.connections).toHaveLength(2)
  })

  it("drops port bytes after the vsock side closes until the next magic opens a new connection", async () => {
    const { host, service } = await start()
    host.attach()
    host.send(magic + "hello")
    await until("connection 1", () => service.connections.length === 1)
    service.connections[0].socket.end("bye")
    await until("the agent's last bytes on the port", () => host.received() === "bye")
    await sleep(50)
    host.send("frames of the dead session")
    await sleep(200)
    expect(service.connections).toHaveLength(1)
    host.send(magic + "hello again")
    await until(
      "connection 2",
      () => service.connections[1]?.bytes.toString("latin1") === magic + "hello again",
    )
  })

  it("drops what a connection still had queued for the port once its host left", async () => {
    const { host, service } = await start()
    host.attach()
    host.send(magic + "hello 1")
    await until("connection 1", () => service.connections.length === 1)
    host.detach(false)
    // The first chunk's write waits for a host, as write() on a real port does; the second queues behind it.
    service.connections[0].socket.write("late 1")
    await sleep(50)
    service.connections[0].socket.write("late 2")
    await sleep(50)
    host.notice()
    await until("connection 1 closed", () => service.connections[0].ended)
    host.attach()
    host.send(magic + "hello 2")
    await until("connection 2", () => service.connections.length === 2)
    service.connections[1].socket.write("welcome 2")
    await until("client 2's answer", () => host.received().includes("welcome 2"))
    // The write already under way lands (a real client skips it: it looks for the agent's magic first).
    expect(host.received()).toBe("late 1welcome 2")
  })
})
