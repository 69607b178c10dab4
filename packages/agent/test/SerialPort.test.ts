/**
 * The serial transport's port I/O, counted through a fake port: how many writes a turn's frames
 * take (in a VM each write is a thread-pool round trip and an exit to the host), that reads handed
 * on are never overwritten, backpressure at the high-water mark, and a whole session over it.
 */
import { ByteStream, Session } from "@cuvette/protocol"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { serveStream } from "../src/Agent.js"
import * as Serial from "../src/transports/serial.js"
import { collect, tempDir } from "./fixtures/agent.js"

const dir = tempDir()
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/** What virtio_console's write() takes at most. */
const PORT_WRITE_MAX = 32 * 1024
const tick = () => new Promise((r) => setTimeout(r, 5))

/**
 * A port in memory: writes are recorded (each capped as virtio_console caps it) and may be held
 * back; reads take what `send` queued, in chunks of at most `readMax` (a virtio-serial buffer).
 */
const fakePort = (readMax = 4096) => {
  const writes: Array<Buffer> = []
  const inbound: Array<Buffer> = []
  let wakeReader: (() => void) | undefined
  let gate: Promise<void> | undefined
  let openGate: (() => void) | undefined
  let onWrite: ((b: Buffer) => void) | undefined
  const io: Serial.PortIo = {
    open: async () => 42,
    read: async (_fd, buffer, off, length) => {
      // A read completes in a later turn of the event loop, as a thread-pool read does.
      await new Promise((r) => setImmediate(r))
      while (inbound.length === 0) await new Promise<void>((r) => (wakeReader = r))
      const head = inbound[0]!
      const n = Math.min(head.byteLength, length, readMax)
      head.copy(buffer, off, 0, n)
      if (n === head.byteLength) inbound.shift()
      else inbound[0] = head.subarray(n)
      return n
    },
    write: async (_fd, buffer, off, length) => {
      await gate
      const n = Math.min(length, PORT_WRITE_MAX)
      const bytes = Buffer.from(buffer.subarray(off, off + n))
      writes.push(bytes)
      onWrite?.(bytes)
      return n
    },
    close: () => {},
  }
  return {
    io,
    writes,
    send: (b: Uint8Array) => {
      inbound.push(Buffer.from(b))
      wakeReader?.()
    },
    hold: () => void (gate = new Promise((r) => (openGate = r))),
    release: () => {
      gate = undefined
      openGate?.()
    },
    onWrite: (f: (b: Buffer) => void) => void (onWrite = f),
  }
}

/** Serves the fake port with a session that only hands over its stream. */
const serveRaw = async (port: ReturnType<typeof fakePort>) => {
  let stream: ByteStream.ByteStream | undefined
  const received: Array<Uint8Array> = []
  await Serial.serve(
    path.join(dir, "port"),
    (s) => {
      stream = s
      s.start({ data: (c) => received.push(c), end: () => {} })
      return { ended: new Promise(() => {}) } as unknown as Session.AgentSession
    },
    () => {},
    port.io,
  )
  return { stream: stream!, received }
}

describe("serial transport writes", () => {
  it("a turn's small chunks (header, payload, control frames) leave in one write", async () => {
    const port = fakePort()
    const { stream } = await serveRaw(port)
    const parts = [Buffer.alloc(12, 1), Buffer.alloc(300, 2), Buffer.alloc(20, 3), Buffer.alloc(40, 4)]
    stream.writev!([parts[0]!, parts[1]!])
    stream.write(parts[2]!)
    stream.write(parts[3]!)
    await tick()
    expect(Buffer.concat(port.writes)).toEqual(Buffer.concat(parts))
    expect(port.writes.length).toBe(1)
  })

  it("a header and a 1 MiB payload take as few writes as the port's 32 KiB per write allows", async () => {
    const port = fakePort()
    const { stream } = await serveRaw(port)
    const header = Buffer.alloc(12, 9)
    const payload = Buffer.alloc(1 << 20, "0123456789abcdef")
    stream.writev!([header, payload])
    await tick()
    expect(Buffer.concat(port.writes).equals(Buffer.concat([header, payload]))).toBe(true)
    expect(port.writes.length).toBe(Math.ceil((header.byteLength + payload.byteLength) / PORT_WRITE_MAX))
  })

  it("an empty chunk (a Data frame with no payload) neither stalls nor spins the writer", async () => {
    const port = fakePort()
    const { stream } = await serveRaw(port)
    stream.writev!([Buffer.from("header"), Buffer.alloc(0)])
    await tick()
    stream.write(Buffer.from("next"))
    await tick()
    expect(Buffer.concat(port.writes).toString()).toBe("headernext")
  })

  it("what is queued while a write is in flight follows it in order, in the next write", async () => {
    const port = fakePort()
    const { stream } = await serveRaw(port)
    port.hold()
    stream.write(Buffer.from("first"))
    await tick()
    for (const s of ["a", "b", "c"]) stream.write(Buffer.from(s))
    port.release()
    await tick()
    expect(port.writes.map((b) => b.toString())).toEqual(["first", "abc"])
  })

  it("reports backpressure past the high-water mark and drains once the port takes the bytes", async () => {
    const port = fakePort()
    const { stream } = await serveRaw(port)
    port.hold()
    const drained: Array<number> = []
    stream.onDrain!(() => drained.push(port.writes.length))
    const oks = Array.from({ length: 5 }, () => stream.write(Buffer.alloc(256 * 1024)))
    await tick()
    expect(oks).toEqual([true, true, true, false, false])
    port.release()
    await tick()
    expect(drained.length).toBeGreaterThan(0)
    expect(Buffer.concat(port.writes).byteLength).toBe(5 * 256 * 1024)
  })
})

describe("serial transport reads", () => {
  it("hands on each read as its own bytes, never overwritten by later reads", async () => {
    const port = fakePort()
    const { received } = await serveRaw(port)
    const sent = Array.from({ length: 600 }, (_, i) => Buffer.alloc(4096, i % 256))
    for (const b of sent) port.send(b)
    for (let waited = 0; received.length < sent.length && waited < 10_000; waited += 5) await tick()
    expect(received.length).toBe(sent.length)
    expect(received.filter((c, i) => !Buffer.from(c).equals(sent[i]!)).length).toBe(0)
  })
})

describe("a session over the port", () => {
  it("runs a ping, an exec and a 2 MiB readFile, the bytes intact", async () => {
    const port = fakePort()
    const fromAgent: Array<(b: Buffer) => void> = []
    port.onWrite((b) => fromAgent.forEach((f) => f(b)))
    await Serial.serve(
      path.join(dir, "port2"),
      (s) => serveStream(s, {}),
      () => {},
      port.io,
    )
    // The host's side: a ByteStream over the fake port.
    const hostStream: ByteStream.ByteStream = {
      description: "fake host",
      resync: true,
      start: (sink) => void fromAgent.push((b) => sink.data(b)),
      write: (b) => (port.send(b), true),
      onDrain: () => {},
      end: () => {},
      destroy: () => {},
    }
    const session = await Session.openClient(hostStream, { handshakeTimeoutMs: 15_000 })
    await expect(session.open("ping", {}).result).resolves.toEqual({})
    const exec = session.open("exec", { argv: ["echo", "over the port"] })
    expect((await collect(exec.stdout)).toString()).toBe("over the port\n")
    expect((await exec.result).exitCode).toBe(0)
    const file = path.join(dir, "two.bin")
    fs.writeFileSync(file, Buffer.alloc(2 << 20, "serial port bytes "))
    const r = session.open("readFile", { path: file })
    expect((await collect(r.stdout)).equals(fs.readFileSync(file))).toBe(true)
    // An upload arriving 4 KiB per read, with pings answered all the while.
    const up = Buffer.alloc(16 << 20, "host to guest ")
    const target = path.join(dir, "up.bin")
    const w = session.open("writeFile", { path: target })
    let pongs = 0
    let uploading = true
    const pinging = (async () => {
      while (uploading) {
        await session.open("ping", {}).result
        pongs++
      }
    })()
    for (let off = 0; off < up.byteLength; off += 256 * 1024)
      await w.stdin.write(up.subarray(off, off + 256 * 1024))
    w.stdin.end()
    await w.result
    uploading = false
    await pinging
    expect(fs.readFileSync(target).equals(up)).toBe(true)
    expect(pongs).toBeGreaterThan(0)
    session.close()
  })
})
