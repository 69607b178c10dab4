// The addon's own I/O route under Node (src/stream_io.cc, lib/socket.ts, lib/server.ts) on sockets that
// exist here: AF_INET loopback (through the addon's accept thread) and an AF_UNIX socketpair. AF_VSOCK
// and AF_HYPERV sockets take exactly this code after creation. bun.test.ts runs the same scenarios
// (fixtures/route.ts) under Bun, e2e/test/nativeWine.test.ts under the Windows Bun runtime.
import { afterAll, describe, expect, it } from "vitest"
import * as Loopback from "../lib/Loopback.js"
import { NativeError } from "../lib/NativeError.js"
import * as route from "./fixtures/route.js"

const kinds: ReadonlyArray<route.Kind> = process.platform === "linux" ? ["tcp", "unix"] : ["tcp"]

afterAll(() => {
  expect(Loopback.ioThreads()).toBe(0)
})

describe.each(kinds)("the addon's I/O route over %s", (kind) => {
  it("64 MiB each way (one way at a time, then both at once) arrive byte-identical; no thread is left", async () => {
    const r = await route.copy(kind, 64)
    expect(r).toMatchObject({
      bytes: 64 * 1024 * 1024,
      identicalAB: true,
      identicalBA: true,
      identicalBoth: true,
    })
    expect(r.threadsAfter).toBe(0)
  }, 120_000)

  it("a paused reader stalls the writer's callbacks and memory stays bounded; resuming delivers every byte", async () => {
    const r = await route.backpressure(kind, 64)
    expect(r.writtenWhilePaused).toBeLessThan(r.offered / 2)
    expect(r.rssGrowthMiB).toBeLessThan(32)
    expect(r.identicalAfterResume).toBe(true)
  }, 120_000)

  it("a peer that disconnects mid-stream ends the other side (ECONNRESET or close), no hang, threads gone", async () => {
    const r = await route.disconnect(kind, 64)
    expect(r.writerOutcome).toMatch(/^(error ECONNRESET|close)$/)
    expect(r.receivedBeforeDisconnect).toBeGreaterThanOrEqual(1024 * 1024)
    expect(r.ms).toBeLessThan(15_000)
    expect(r.threadsAfter).toBe(0)
  }, 60_000)

  it("half-close: the side that ended still reads the answer", async () => {
    expect(await route.halfClose(kind)).toEqual({ request: "request", response: "response to request" })
  })
})

describe("sockets and servers of the route", () => {
  it("a send error surfaces as a NativeError on the Duplex naming the operation and target", async () => {
    const [a, b] = await route.connectedPair("tcp")
    b.destroy()
    const error = await new Promise<NativeError>((resolve) => {
      a.on("error", resolve)
      const spam = () => {
        while (a.write(Buffer.alloc(64 * 1024)));
        a.once("drain", spam)
      }
      spam()
      a.resume()
    })
    expect(error).toBeInstanceOf(NativeError)
    expect(error.reason).toBe("ECONNRESET")
    expect(error.message).toMatch(
      /^loopback (send|receive) 127\.0\.0\.1:\d+ failed: .* \(ECONNRESET, code \w+\)$/,
    )
  })

  it("without allowHalfOpen the peer's EOF ends our side too (as net.Socket does)", async () => {
    const server = Loopback.listen()
    const accepted = new Promise<Loopback.Socket>((resolve) => server.once("connection", resolve))
    const client = Loopback.connect({ port: server.address() })
    const peer = await accepted
    server.close()
    const closed = new Promise<void>((resolve) => peer.once("close", () => resolve()))
    peer.resume()
    client.resume()
    client.end()
    await closed
    await new Promise<void>((resolve) => (client.closed ? resolve() : client.once("close", () => resolve())))
    expect(Loopback.ioThreads()).toBe(0)
  })

  it("close() stops accepting: 'close' fires once the accept thread is gone, the port refuses, close() again errs", async () => {
    const server = Loopback.listen()
    const port = server.address()
    expect(server.listening).toBe(true)
    expect(Loopback.ioThreads()).toBe(1)
    await new Promise<void>((resolve) => server.close(() => resolve()))
    expect(server.listening).toBe(false)
    expect(Loopback.ioThreads()).toBe(0)
    expect(() => Loopback.connect({ port })).toThrow(NativeError)
    const again = await new Promise<Error | undefined>((resolve) => server.close(resolve))
    expect(again?.message).toMatch(/not running/)
  })

  it("ref()/unref() are accepted on servers and sockets until they close", async () => {
    const server = Loopback.listen()
    expect(server.unref().ref()).toBe(server)
    const [a, b] = await route.connectedPair("tcp")
    expect(a.unref().ref()).toBe(a)
    a.destroy()
    b.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    await Promise.all([a, b].map((s) => (s.closed ? undefined : new Promise((r) => s.once("close", r)))))
    expect(Loopback.ioThreads()).toBe(0)
  })
})
