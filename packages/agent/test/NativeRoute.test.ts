// A whole agent session over @cuvette/native's own I/O route: the agent serves one end of a loopback pair
// the addon drives (the code every AF_VSOCK / AF_HYPERV connection takes after creation), a client the
// other. Exec with 8 MiB through stdin and back, byte-identical; the threads are gone afterwards.
import { ByteStream, Session } from "@cuvette/protocol"
import { Loopback, NativeError } from "@cuvette/native"
import { createHash, randomBytes } from "node:crypto"
import { describe, expect, it } from "vitest"
import { serveStream } from "../src/Agent.js"
import * as native from "../src/transports/native.js"
import { collect } from "./fixtures/agent.js"

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

describe.runIf(process.platform === "linux")("agent over the native I/O route", () => {
  it("ping, info and an 8 MiB cat round trip; every I/O thread ends with the session", async () => {
    const server = Loopback.listen()
    const accepted = new Promise<Loopback.Socket>((resolve) => server.once("connection", resolve))
    const clientSide = Loopback.connect({ port: server.address() })
    const agentSide = await accepted
    await new Promise<void>((resolve) => server.close(() => resolve()))
    const agent = serveStream(ByteStream.fromDuplex(agentSide, { description: "loopback" }), {})
    const s = await Session.openClient(ByteStream.fromDuplex(clientSide, { description: "loopback" }))
    await expect(s.open("ping", {}).result).resolves.toEqual({})
    expect((await s.open("info", {}).result).agent.name).toBe("cuvette-agent")

    const data = randomBytes(8 << 20)
    const call = s.open("exec", { argv: ["cat"], stdin: "pipe" })
    const output = Promise.all([collect(call.stdout), collect(call.stderr)])
    await call.stdin.write(data)
    call.stdin.end()
    const [out] = await output
    expect((await call.result).exitCode).toBe(0)
    expect(sha256(out)).toBe(sha256(data))

    s.close()
    clientSide.destroy()
    await Promise.all(
      [clientSide, agentSide].map((x) => (x.closed ? undefined : new Promise((r) => x.once("close", r)))),
    )
    await agent.ended // the agent's session saw the connection go
    expect(Loopback.ioThreads()).toBe(0)
  })
})

describe("a native failure in the agent's log", () => {
  it("says what failed, and what to try from the protocol's hint table, once", () => {
    const e = new NativeError.NativeError({
      reason: "EADDRINUSE",
      operation: "vsock listen",
      target: "any:4919",
      code: 98,
    })
    expect(native.reason(e)).toBe(
      "vsock listen any:4919 failed: EADDRINUSE (EADDRINUSE, code 98) (another program listens there: stop it, or choose another port)",
    )
  })

  it("a system without VM sockets is told how to get them (on Linux and on Windows)", () => {
    const e = new NativeError.NativeError({
      reason: "EAFNOSUPPORT",
      operation: "hvsock listen",
      target: "*:4919",
      code: 10047,
    })
    expect(native.reason(e)).toMatch(
      /\(EAFNOSUPPORT, code 10047\) \(.*modprobe vsock.*on Windows enable Hyper-V\)$/,
    )
  })
})
