// AF_VSOCK on this machine: socket/bind/listen on CID_ANY, a listening server, local CID, EADDRINUSE.
// There is no vsock peer here, so nothing connects to any CID: data over vsock is a visible skip, and the
// data path itself is covered by stream.test.ts over AF_UNIX and AF_INET through the same route.
import { afterEach, describe, expect, it } from "vitest"
import type { LinuxBinding } from "../lib/binding.js"
import { load } from "../lib/loader.js"
import * as Loopback from "../lib/Loopback.js"
import { NativeError } from "../lib/NativeError.js"
import * as Vsock from "../lib/Vsock.js"
import { visibleSkip } from "./helpers.js"

const supported = Vsock.isSupported()
const why =
  process.platform !== "linux"
    ? `AF_VSOCK is Linux-only (this is ${process.platform})`
    : "this kernel cannot create AF_VSOCK sockets"

const servers: Array<Vsock.Server> = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))))
})

const expectNativeError = async (p: Promise<unknown>, reason: string, text?: RegExp) => {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  )
  expect(e).toBeInstanceOf(NativeError)
  expect((e as NativeError).reason).toBe(reason)
  if (text) expect((e as NativeError).message).toMatch(text)
  return e as NativeError
}

describe("Vsock on this machine", () => {
  it("reports support (or the reason it has none)", (ctx) => {
    if (!supported) visibleSkip(ctx, why)
    expect(supported).toBe(true)
  })

  it("addon: socket, bind on VMADDR_CID_ANY:PORT_ANY and listen work; sockname reports the bound port", (ctx) => {
    if (!supported) visibleSkip(ctx, why)
    const b = load() as LinuxBinding
    const fd = b.socket()
    try {
      b.bind(fd, Vsock.VMADDR_CID_ANY, Vsock.VMADDR_PORT_ANY)
      b.listen(fd, 4)
      const name = b.sockname(fd)
      expect(name.cid).toBe(Vsock.VMADDR_CID_ANY)
      expect(name.port).toBeGreaterThan(1023) // ephemeral ports start above LAST_RESERVED_PORT
    } finally {
      b.close(fd)
    }
  })

  it("listen() comes up as a listening server with the right sockname; close() ends its accept thread", async (ctx) => {
    if (!supported) visibleSkip(ctx, why)
    const before = Loopback.ioThreads()
    const server = await Vsock.listen({ port: Vsock.VMADDR_PORT_ANY, backlog: 8 })
    expect(server.listening).toBe(true)
    expect(Loopback.ioThreads()).toBe(before + 1)
    const local = Vsock.localAddress(server)
    expect(local?.cid).toBe(Vsock.VMADDR_CID_ANY)
    expect(local?.port).toBeGreaterThan(1023)
    await new Promise<void>((resolve) => server.close(() => resolve()))
    expect(server.listening).toBe(false)
    expect(Loopback.ioThreads()).toBe(before)
    // The port is free again: the listening fd was closed.
    servers.push(await Vsock.listen({ port: local!.port }))
  })

  it("listen() on the default port 4919 (the agent's), or EADDRINUSE naming the port if a local agent holds it", async (ctx) => {
    if (!supported) visibleSkip(ctx, why)
    try {
      const server = await Vsock.listen()
      servers.push(server)
      expect(Vsock.localAddress(server)).toEqual({ cid: Vsock.VMADDR_CID_ANY, port: 4919 })
    } catch (e) {
      expect((e as NativeError).reason).toBe("EADDRINUSE")
      expect((e as NativeError).message).toContain("any:4919")
    }
  })

  it("a second bind on the same port fails with EADDRINUSE and a message naming cid:port", async (ctx) => {
    if (!supported) visibleSkip(ctx, why)
    const first = await Vsock.listen({ port: Vsock.VMADDR_PORT_ANY })
    servers.push(first)
    const port = Vsock.localAddress(first)!.port
    const e = await expectNativeError(
      Vsock.listen({ port }),
      "EADDRINUSE",
      new RegExp(`vsock listen any:${port} failed`),
    )
    expect(e.code).toBe(98)
    // listenFd reports the same, and leaks no fd (the failing socket is closed).
    await expectNativeError(Vsock.listenFd({ port }), "EADDRINUSE")
  })

  it("local CID is readable (or the error says why)", (ctx) => {
    if (!supported) visibleSkip(ctx, why)
    try {
      const cid = Vsock.readLocalCid()
      expect(Number.isInteger(cid)).toBe(true)
      expect(cid).toBeGreaterThanOrEqual(2)
      expect(Vsock.localCid()).toBe(cid)
    } catch (e) {
      expect(e).toBeInstanceOf(NativeError)
      expect(["ENODEV", "EACCES"]).toContain((e as NativeError).reason)
      visibleSkip(ctx, `local CID unreadable here: ${(e as Error).message}`)
    }
  })

  it("data over vsock", (ctx) => {
    visibleSkip(
      ctx,
      "no vsock peer on this machine (tests never connect to CID 2 or any CID); the same I/O route carries 64 MiB each way over AF_UNIX and AF_INET in stream.test.ts",
    )
  })
})

describe("Vsock argument validation (no system call is made)", () => {
  it.each([
    [{ cid: -1 }, /cid must be an integer in 0\.\.0xFFFFFFFE, got -1/],
    [{ cid: 1.5 }, /cid must be an integer/],
    [{ cid: Vsock.VMADDR_CID_ANY }, /VMADDR_CID_ANY is only for listening/],
    [{ cid: "3" }, /cid must be an integer.*got "3"/],
    [{ cid: 3, port: 2 ** 32 }, /port must be an integer in 0\.\.0xFFFFFFFE/],
    [{ cid: 3, port: -1 }, /port must be an integer/],
    [{ cid: 3, timeoutMs: 0 }, /timeoutMs must be an integer in 1\.\.0x7FFFFFFF/],
    [{ cid: 3, timeoutMs: Number.NaN }, /timeoutMs must be an integer/],
  ])("connect(%o) rejects with INVALID_ARGUMENT", async (options, text) => {
    await expectNativeError(
      Vsock.connect(options as unknown as Vsock.ConnectOptions),
      "INVALID_ARGUMENT",
      text,
    )
  })

  it("connect() without options rejects with INVALID_ARGUMENT", async () => {
    await expectNativeError(
      Vsock.connect(undefined as unknown as Vsock.ConnectOptions),
      "INVALID_ARGUMENT",
      /options \{ cid/,
    )
  })

  it.each([
    [{ port: 2 ** 32 }, /port must be an integer/],
    [{ cid: -2 }, /cid must be an integer/],
    [{ backlog: 0 }, /backlog must be an integer in 1\.\.65535/],
  ])("listen(%o) rejects with INVALID_ARGUMENT", async (options, text) => {
    await expectNativeError(Vsock.listen(options), "INVALID_ARGUMENT", text)
  })

  it("format() prints wildcards as any", () => {
    expect(Vsock.format({ cid: Vsock.VMADDR_CID_ANY, port: 4919 })).toBe("any:4919")
    expect(Vsock.format({ cid: 3, port: Vsock.VMADDR_PORT_ANY })).toBe("3:any")
  })
})
