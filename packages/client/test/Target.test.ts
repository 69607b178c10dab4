import { describe, expect, it } from "vitest"
import * as Target from "../src/Target.js"

describe("Target.parse", () => {
  const cases: Array<[string, Target.Target]> = [
    ["unix:/tmp/a.sock", { _tag: "unix", path: "/tmp/a.sock" }],
    ["tcp:127.0.0.1:4000", { _tag: "tcp", host: "127.0.0.1", port: 4000 }],
    ["tcp:guest.local", { _tag: "tcp", host: "guest.local", port: 4919 }],
    ["tcp:[::1]:9", { _tag: "tcp", host: "::1", port: 9 }],
    ["vsock:3", { _tag: "vsock", cid: 3, port: 4919 }],
    ["vsock:42:1024", { _tag: "vsock", cid: 42, port: 1024 }],
    ["hybrid:/run/vm.sock", { _tag: "hybrid", path: "/run/vm.sock", port: 4919 }],
    ["hybrid:/run/vm.sock:52", { _tag: "hybrid", path: "/run/vm.sock", port: 52 }],
    ["hyperv:My VM", { _tag: "hyperv", vm: "My VM", byId: false, port: 4919, vtl2: false }],
    ["hyperv:vm1?vtl=2", { _tag: "hyperv", vm: "vm1", byId: false, port: 4919, vtl2: true }],
    [
      "hyperv-id:{0F3B5C9E-1D2A-4B6C-8E7F-A1B2C3D4E5F6}?vtl=2&port=5000",
      { _tag: "hyperv", vm: "0f3b5c9e-1d2a-4b6c-8e7f-a1b2c3d4e5f6", byId: true, port: 5000, vtl2: true },
    ],
    ["serial:/tmp/vport.sock", { _tag: "serial", path: "/tmp/vport.sock" }],
    ["listen-unix:/run/vm.sock_4919", { _tag: "listen-unix", path: "/run/vm.sock_4919" }],
    ["listen-vsock", { _tag: "listen-vsock", port: 4919 }],
    ["listen-vsock:6000", { _tag: "listen-vsock", port: 6000 }],
  ]
  it.each(cases)("parses %s", (text, want) => {
    const t = Target.parse(text)
    expect(t).toEqual(want)
    expect(Target.parse(Target.format(t))).toEqual(want)
  })

  it("formats canonically", () => {
    expect(Target.format(Target.parse("vsock:3"))).toBe("vsock:3:4919")
    expect(Target.format(Target.parse("hyperv:vm1?vtl=2"))).toBe("hyperv:vm1?vtl=2")
    expect(Target.format(Target.parse("tcp:[::1]:9"))).toBe("tcp:[::1]:9")
  })

  it("applies the vtl2 option to hyperv targets only", () => {
    expect(Target.withVtl2(Target.parse("hyperv:vm"), true)).toMatchObject({ vtl2: true })
    expect(Target.withVtl2(Target.parse("unix:/x"), true)).toEqual({ _tag: "unix", path: "/x" })
  })

  const bad: Array<[string, RegExp]> = [
    ["", /the address is empty/],
    ["/tmp/agent.sock", /did you mean unix:\/tmp\/agent.sock/],
    ["ftp:host", /unknown transport "ftp"/],
    ["unix:", /socket path is missing/],
    ["tcp:host:0", /port 0/],
    ["tcp:host:70000", /out of range/],
    ["tcp:host:http", /not a number/],
    ["tcp:::1:22", /IPv6 address must be written in brackets/],
    ["vsock:", /CID is missing/],
    ["vsock:abc", /CID "abc" is not a number/],
    ["vsock:3:4:5", /expected vsock:CID/],
    ["hyperv-id:not-a-guid", /is not a GUID/],
    ["hyperv:vm?vtl=1", /vtl must be 0 or 2/],
    ["hyperv:vm?color=red", /unknown option "color"/],
    ["hyperv:", /VM name is missing/],
  ]
  it.each(bad)("rejects %j", (text, why) => {
    let error: unknown
    try {
      Target.parse(text)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(Target.TargetError)
    const message = (error as Error).message
    expect(message).toMatch(why)
    // Every error lists the accepted forms.
    for (const f of Target.forms) expect(message).toContain(f)
  })
})
