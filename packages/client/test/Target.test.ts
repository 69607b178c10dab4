// Target.parse is the protocol's Address grammar (tested in packages/protocol/test/Address.test.ts, and
// for agent/client agreement in AddressParity.test.ts) with the client's own rules on top: what those
// rules add is tested here.
import { describe, expect, it } from "vitest"
import * as Target from "../src/Target.js"

const errorOf = (text: string): Error => {
  try {
    Target.parse(text)
  } catch (e) {
    return e as Error
  }
  throw new Error(`${text} parsed`)
}

describe("Target.parse", () => {
  it("accepts what the grammar accepts for connecting, and formats it back", () => {
    const t = Target.parse("hyperv-id:{0F3B5C9E-1D2A-4B6C-8E7F-A1B2C3D4E5F6}?vtl=2&port=5000")
    expect(t).toEqual({
      _tag: "hyperv",
      vm: "0f3b5c9e-1d2a-4b6c-8e7f-a1b2c3d4e5f6",
      byId: true,
      port: 5000,
      vtl2: true,
    })
    expect(Target.parse(Target.format(t))).toEqual(t)
  })

  it("applies the vtl2 option to hyperv targets only", () => {
    expect(Target.withVtl2(Target.parse("hyperv:vm"), true)).toMatchObject({ vtl2: true })
    expect(Target.withVtl2(Target.parse("unix:/x"), true)).toEqual({ _tag: "unix", path: "/x" })
  })

  it.each([
    ["tcp:host:0", "port 0 is not a port one can connect to"],
    ["vsock:any:5000", "a client connects to one CID"],
    ["vsock", "a client connects to one CID"],
  ])("refuses %j, which only a listener can use, listing the client's forms", (text, why) => {
    const e = errorOf(text)
    expect(e).toBeInstanceOf(Target.TargetError)
    expect(e.message).toContain(why)
    expect(e.message).toContain(`accepted forms: ${Target.forms.join(" · ")} (`)
    expect(Target.forms).not.toContain("vsock[:any[:PORT]]")
  })

  it("a grammar error is a TargetError too", () => {
    expect(errorOf("/tmp/agent.sock")).toBeInstanceOf(Target.TargetError)
    expect(errorOf("/tmp/agent.sock").message).toContain("did you mean unix:/tmp/agent.sock")
  })
})
