/**
 * Transports beyond a plain listener: a serial port (a pty standing in for virtio-serial), the
 * guest-initiated connect loop, AF_VSOCK listening and the defaults. Never dials a vsock CID: this
 * machine's host is not ours to talk to.
 */
import { ByteStream, Session } from "@cuvette/protocol"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import * as Agent from "../src/Agent.js"
import * as Serial from "../src/transports/serial.js"
import { alive, collect, eventually, spawnAgent, tempDir } from "./fixtures/agent.js"

const dir = tempDir()
const cleanups: Array<() => void> = []
afterAll(() => {
  for (const c of cleanups.reverse()) c()
  fs.rmSync(dir, { recursive: true, force: true })
})

const RELAY = fileURLToPath(new URL("./fixtures/serial-relay.py", import.meta.url))
const hasPython = spawnSync("python3", ["-c", "import pty"]).status === 0

/** Connects through the relay as a host would through QEMU's chardev socket. */
const serialClient = async (hostSock: string) => {
  const socket = net.connect(hostSock)
  const session = await Session.openClient(
    ByteStream.fromDuplex(socket, { description: "serial", resync: true }),
    {
      handshakeTimeoutMs: 15_000,
    },
  )
  return { socket, session }
}

describe("serial port", () => {
  it.skipIf(!hasPython)("a client that leaves mid-frame, then a second client that works", async () => {
    const port = path.join(dir, "vport0p1")
    const hostSock = path.join(dir, "host.sock")
    const relay = spawn("python3", [RELAY, port, hostSock], { stdio: ["ignore", "pipe", "inherit"] })
    cleanups.push(() => relay.kill("SIGKILL"))
    await new Promise<void>((resolve) => relay.stdout!.once("data", () => resolve()))
    const agent = await spawnAgent(["--serial", port])
    cleanups.push(agent.kill)

    const first = await serialClient(hostSock)
    await expect(first.session.open("ping", {}).result).resolves.toEqual({})
    // Start a data frame that never finishes, then vanish.
    first.socket.write(Buffer.from([0, 0, 0x10, 0x00, 3, 0, 0, 0, 0, 1, 1, 2, 3]))
    await new Promise((r) => setTimeout(r, 100))
    first.socket.destroy()
    first.session.close()

    const second = await serialClient(hostSock)
    await expect(second.session.open("ping", {}).result).resolves.toEqual({})
    const call = second.session.open("exec", { argv: ["echo", "over serial"] })
    expect((await collect(call.stdout)).toString()).toBe("over serial\n")
    const file = path.join(dir, "serial.bin")
    fs.writeFileSync(file, Buffer.alloc(2 * 1024 * 1024, 7))
    const r = second.session.open("readFile", { path: file })
    expect((await collect(r.stdout)).equals(fs.readFileSync(file))).toBe(true)
    second.session.close()
    second.socket.destroy()
    expect(alive(agent.pid)).toBe(true)
  })

  it("EOF on the port (no host attached) means wait, not exit", async () => {
    // A regular empty file reads as EOF forever, like a virtio-serial port with no host.
    const port = path.join(dir, "eof-port")
    fs.writeFileSync(port, "")
    const agent = await spawnAgent(["--serial", port])
    cleanups.push(agent.kill)
    await new Promise((r) => setTimeout(r, 1000))
    expect(alive(agent.pid)).toBe(true)
    expect(agent.stderr).toContain(`serving on serial:${port}`)
  })

  it("finds org.cuvette.agent.0 through udev's link or /sys/class/virtio-ports without udev", () => {
    const root = path.join(dir, "fake-root")
    fs.mkdirSync(path.join(root, "sys/class/virtio-ports/vport0p1"), { recursive: true })
    fs.mkdirSync(path.join(root, "sys/class/virtio-ports/vport1p1"), { recursive: true })
    fs.writeFileSync(path.join(root, "sys/class/virtio-ports/vport0p1/name"), "org.qemu.guest_agent.0\n")
    fs.writeFileSync(path.join(root, "sys/class/virtio-ports/vport1p1/name"), "org.cuvette.agent.0\n")
    fs.mkdirSync(path.join(root, "dev"))
    fs.writeFileSync(path.join(root, "dev/vport0p1"), "")
    fs.writeFileSync(path.join(root, "dev/vport1p1"), "")
    expect(Serial.findPort(Serial.PORT_NAME, root)).toBe(path.join(root, "dev/vport1p1"))
    fs.mkdirSync(path.join(root, "dev/virtio-ports"))
    fs.symlinkSync("../vport1p1", path.join(root, "dev/virtio-ports/org.cuvette.agent.0"))
    expect(Serial.findPort(Serial.PORT_NAME, root)).toBe(
      path.join(root, "dev/virtio-ports/org.cuvette.agent.0"),
    )
    expect(Serial.findPort("org.other.0", root)).toBeUndefined()
  })
})

describe("guest-initiated connections", () => {
  it("--connect keeps dialling, logs each reason once, serves, and reconnects after a disconnect", async () => {
    const hostSock = path.join(dir, "listen_4919")
    const logs: Array<string> = []
    const running = await Agent.start({ connect: [`unix:${hostSock}`], log: (l) => logs.push(l) })
    cleanups.push(() => void running.stop())
    await new Promise((r) => setTimeout(r, 2500)) // ~3 failed attempts
    expect(logs.filter((l) => l.startsWith("cannot connect"))).toHaveLength(1)

    const accepted: Array<net.Socket> = []
    const server = net.createServer((s) => accepted.push(s)).listen(hostSock)
    cleanups.push(() => server.close())
    const serveOne = async () => {
      const n = accepted.length
      await eventually(() => accepted.length > n, 5000, "the agent to connect")
      const socket = accepted[accepted.length - 1]
      const session = await Session.openClient(ByteStream.fromDuplex(socket, { description: "accepted" }))
      return { socket, session }
    }
    const first = await serveOne()
    await expect(first.session.open("ping", {}).result).resolves.toEqual({})
    first.socket.destroy()
    const second = await serveOne()
    const info = await second.session.open("info", {}).result
    expect(info.agent.name).toBe("cuvette-agent")
    second.session.close()
    await running.stop()
  })
})

/** The native vsock path: the listener on CID_ANY comes up here; nothing ever dials a CID. */
const vsockReason = await (async () => {
  try {
    const { Vsock } = await import("@cuvette/native")
    return Vsock.isSupported()
      ? undefined
      : "AF_VSOCK sockets cannot be created here (no addon or no vsock module)"
  } catch (e) {
    return `@cuvette/native does not load: ${(e as Error).message}`
  }
})()

describe("AF_VSOCK", () => {
  const port = 40000 + Math.floor(Math.random() * 20000)

  it.skipIf(vsockReason !== undefined)(
    `--listen vsock:any:PORT comes up on any CID ${vsockReason ?? ""}`,
    async () => {
      const running = await Agent.start({ listen: [`vsock:any:${port}`], log: () => {} })
      expect(running.addresses).toEqual([`vsock:any:${port}`])
      await running.stop()
    },
  )

  it.skipIf(vsockReason !== undefined)(
    "the defaults listen on vsock and report what is missing",
    async () => {
      const logs: Array<string> = []
      const running = await Agent.start({
        defaults: true,
        vsockConnect: false, // never dial the host of this test machine
        vsockPort: port + 1,
        serialRoot: path.join(dir, "empty-root"),
        log: (l) => logs.push(l),
      })
      expect(running.addresses).toEqual([`vsock:any:${port + 1}`])
      expect(running.unavailable).toEqual(["no virtio-serial port named org.cuvette.agent.0"])
      await running.stop()
    },
  )

  it.skip("data over vsock: no vsock peer on this machine (needs a VM with vhost-vsock or a hybrid vsock host)", () => {})
})

describe("Windows guest", () => {
  it.skipIf(process.platform !== "win32")(
    "AF_HYPERV listen: no Windows with Hyper-V here (--service runs under Wine in e2e/test/windows.test.ts)",
    async () => {
      const running = await Agent.start({ defaults: true, log: () => {} })
      expect(running.addresses[0]).toMatch(/^hvsock:/)
      await running.stop()
    },
  )
})
