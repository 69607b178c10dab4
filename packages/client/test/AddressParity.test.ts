// The agent's --listen / --connect and the client's targets are one grammar: the same text means the
// same address on both sides, and a malformed one gets the same message from both.
import { describe, expect, it } from "vitest"
import * as AgentAddress from "../../agent/src/transports/address.js"
import * as Target from "../src/Target.js"

const errorOf = (f: () => unknown): Error => {
  try {
    f()
  } catch (e) {
    return e as Error
  }
  throw new Error("expected a throw")
}

describe("agent and client addresses", () => {
  const shared = [
    "unix:/tmp/a.sock",
    "tcp:127.0.0.1",
    "tcp:127.0.0.1:4000",
    "tcp:[::1]",
    "tcp:localhost:0x1337",
    "vsock:2",
    "vsock:3:5000",
  ]
  it.each(shared)("%j means the same to the agent's --connect and the client", (text) => {
    expect(AgentAddress.parse(text, "connect")).toEqual(Target.parse(text))
  })

  it("tcp:HOST without a port is port 4919 everywhere", () => {
    const want = { _tag: "tcp", host: "127.0.0.1", port: 4919 }
    expect(AgentAddress.parse("tcp:127.0.0.1", "listen")).toEqual(want)
    expect(AgentAddress.parse("tcp:127.0.0.1", "connect")).toEqual(want)
    expect(Target.parse("tcp:127.0.0.1")).toEqual(want)
  })

  it("the agent prints its listening vsock address in a form it parses back", () => {
    const a = AgentAddress.parse("vsock", "listen")
    expect(AgentAddress.format(a)).toBe("vsock:any:4919")
    expect(AgentAddress.parse(AgentAddress.format(a), "listen")).toEqual(a)
  })

  const malformed = [
    "",
    "tcp:",
    "tcp:host:70000",
    "tcp:host:http",
    "tcp:::1:22",
    "vsock:",
    "vsock:abc",
    "unix:",
    "ftp:x",
  ]
  it.each(malformed)("%j is rejected by both with the same message", (text) => {
    const client = errorOf(() => Target.parse(text))
    for (const mode of ["listen", "connect"] as const)
      expect(errorOf(() => AgentAddress.parse(text, mode)).message).toBe(client.message)
    expect(client.message).toContain("accepted forms: unix:PATH · tcp:HOST[:PORT]")
  })

  it("role rules are layered on top and list the role's forms", () => {
    expect(errorOf(() => AgentAddress.parse("hybrid:/run/vm.sock", "listen")).message).toBe(
      'invalid address "hybrid:/run/vm.sock": the agent cannot listen on hybrid:; accepted forms: unix:PATH · tcp:HOST[:PORT] · vsock[:any[:PORT]] (port defaults to 4919)',
    )
    expect(errorOf(() => AgentAddress.parse("vsock:5000", "listen")).message).toContain(
      "the agent listens on every CID: vsock:any[:PORT]",
    )
    expect(errorOf(() => Target.parse("tcp:h:0")).message).toContain(
      "port 0 is not a port one can connect to",
    )
    expect(AgentAddress.parse("tcp:127.0.0.1:0", "listen")).toMatchObject({ port: 0 })
  })
})
