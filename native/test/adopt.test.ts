// Both adoption routes move real bytes over a real AF_UNIX socketpair created by the addon (no vsock peer
// exists here; the adopt code is family-agnostic, so this is the same path a vsock fd takes).
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import * as adopt from "../lib/adopt.js"
import type { LinuxBinding } from "../lib/binding.js"
import { load } from "../lib/loader.js"
import { payload, receive, send, sha256 } from "./helpers.js"

const linux = process.platform === "linux"
const binding = () => load() as LinuxBinding
const EIGHT_MIB = 8 * 1024 * 1024

const pair = (a: adopt.Route, b: adopt.Route): [net.Socket, net.Socket] => {
  const [fa, fb] = binding().socketpair()
  // allowHalfOpen: each side sends all its bytes, then ends; without it Node would end a side as soon as
  // the other side's EOF arrives, cutting its own transfer short.
  return [
    adopt.socketFromFd(fa, "test", "pair:a", a, true),
    adopt.socketFromFd(fb, "test", "pair:b", b, true),
  ]
}

const exchange = async (left: net.Socket, right: net.Socket) => {
  const ab = payload(EIGHT_MIB)
  const ba = payload(EIGHT_MIB)
  const [gotAtRight, gotAtLeft] = await Promise.all([
    receive(right),
    receive(left),
    send(left, ab),
    send(right, ba),
  ])
  expect(gotAtRight.length).toBe(ab.length)
  expect(sha256(gotAtRight)).toBe(sha256(ab))
  expect(gotAtLeft.length).toBe(ba.length)
  expect(sha256(gotAtLeft)).toBe(sha256(ba))
}

const open: Array<net.Socket | net.Server> = []
afterEach(() => {
  for (const x of open.splice(0)) {
    if (x instanceof net.Socket) x.destroy()
    else x.close()
  }
})

describe.runIf(linux)("adoption routes (Linux, addon socketpair)", () => {
  it("the handle route exists on this Node and is the default", () => {
    expect(adopt.tcpWrap()?.TCP).toBeTypeOf("function")
    expect(adopt.route()).toBe(process.env.CUVETTE_NATIVE_ADOPT === "relay" ? "relay" : "handle")
  })

  for (const [a, b] of [
    ["handle", "handle"],
    ["relay", "relay"],
    ["handle", "relay"],
  ] as const) {
    it(`${a} <-> ${b}: 8 MiB each way, identical bytes, EOF after end()`, async () => {
      const [left, right] = pair(a, b)
      open.push(left, right)
      await exchange(left, right)
    })
  }

  for (const [a, b] of [
    ["handle", "relay"],
    ["relay", "handle"],
  ] as const) {
    it(`${a} -> ${b}: half-close forwards EOF and keeps the other direction open`, async () => {
      const [fa, fb] = binding().socketpair()
      const left = adopt.socketFromFd(fa, "test", "left", a, true)
      const right = adopt.socketFromFd(fb, "test", "right", b, true)
      open.push(left, right)
      const leftGot = receive(left)
      const rightGot = receive(right)
      left.end(Buffer.from("request"))
      expect((await rightGot).toString()).toBe("request")
      // right saw EOF but can still answer; left reads it and then its own EOF.
      right.end(Buffer.from("answer after half-close"))
      expect((await leftGot).toString()).toBe("answer after half-close")
    })
  }

  it("relay: the relay tears down when JS destroys its socket", async () => {
    const [fa, fb] = binding().socketpair()
    const far = adopt.socketFromFd(fa, "test", "far", "handle")
    const near = adopt.socketFromFd(fb, "test", "near", "relay")
    open.push(far)
    const ended = new Promise<void>((r) => far.once("end", r))
    far.resume()
    near.destroy()
    await ended
  })

  for (const via of ["handle", "relay"] as const) {
    it(`${via} server: a listening fd becomes a net.Server whose connections carry bytes both ways`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-adopt-"))
      try {
        const listenPath = path.join(dir, "listen.sock")
        const fd = binding().unixListen(listenPath)
        const server = await adopt.serverFromFd(fd, 16, "test", "adopt-server", via, true)
        open.push(server)
        expect(server.listening).toBe(true)
        const accepted = new Promise<net.Socket>((r) => server.once("connection", r))
        const client = net.connect({ path: listenPath, allowHalfOpen: true })
        open.push(client)
        const conn = await accepted
        open.push(conn)
        await exchange(client, conn)
        await new Promise<void>((r) => server.close(() => r()))
        // After close() nothing accepts on the original socket any more.
        const refused = await new Promise<string>((r) => {
          const c = net.connect(listenPath)
          c.once("connect", () => {
            c.once("data", () => r("data"))
            c.once("close", () => r("closed"))
          })
          c.once("error", (e: NodeJS.ErrnoException) => r(e.code ?? "error"))
        })
        expect(["ECONNREFUSED", "closed", "ENOENT"]).toContain(refused)
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    })
  }
})
