import { describe, expect, it } from "vitest"
import * as Address from "../src/Address.js"

const ANY = Address.VSOCK_CID_ANY

describe("Address.parse", () => {
  const cases: Array<[string, Address.Address]> = [
    ["unix:/tmp/a.sock", { _tag: "unix", path: "/tmp/a.sock" }],
    ["tcp:127.0.0.1:4000", { _tag: "tcp", host: "127.0.0.1", port: 4000 }],
    ["tcp:127.0.0.1", { _tag: "tcp", host: "127.0.0.1", port: 4919 }],
    ["tcp:guest.local", { _tag: "tcp", host: "guest.local", port: 4919 }],
    ["tcp:[::1]:9", { _tag: "tcp", host: "::1", port: 9 }],
    ["tcp:[::1]", { _tag: "tcp", host: "::1", port: 4919 }],
    ["tcp:127.0.0.1:0", { _tag: "tcp", host: "127.0.0.1", port: 0 }],
    ["tcp:h:0x10", { _tag: "tcp", host: "h", port: 16 }],
    ["vsock", { _tag: "vsock", cid: ANY, port: 4919 }],
    ["vsock:any", { _tag: "vsock", cid: ANY, port: 4919 }],
    ["vsock:any:5000", { _tag: "vsock", cid: ANY, port: 5000 }],
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
    ["  TCP:h:1  ", { _tag: "tcp", host: "h", port: 1 }],
  ]
  it.each(cases)("parses %j and formats it back", (text, want) => {
    const a = Address.parse(text)
    expect(a).toEqual(want)
    expect(Address.parse(Address.format(a))).toEqual(want)
  })

  it("hyperv:NAME is a name even when it looks like a GUID, kept as written; hyperv-id:GUID is an id", () => {
    const named = "{6F2D3C1E-1111-2222-3333-444455556666}"
    for (const text of [`hyperv:${named}`, `HYPERV:${named}?vtl=0`]) {
      const a = Address.parse(text)
      expect(a).toEqual({ _tag: "hyperv", vm: named, byId: false, port: 4919, vtl2: false })
      expect(Address.format(a)).toBe(`hyperv:${named}`)
    }
    expect(Address.parse(`hyperv-id:${named}`)).toMatchObject({
      vm: "6f2d3c1e-1111-2222-3333-444455556666",
      byId: true,
    })
    expect(() => Address.parse("hyperv-id:my-vm")).toThrow(
      /"my-vm" is not a GUID \(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx\)/,
    )
  })

  it("formats canonically", () => {
    expect(Address.format(Address.parse("vsock:3"))).toBe("vsock:3:4919")
    expect(Address.format(Address.parse("vsock"))).toBe("vsock:any:4919")
    expect(Address.format(Address.parse("tcp:[::1]:9"))).toBe("tcp:[::1]:9")
    expect(Address.format(Address.parse("hyperv:vm1?vtl=2"))).toBe("hyperv:vm1?vtl=2")
  })

  const bad: Array<[string, string]> = [
    ["", "the address is empty"],
    ["/tmp/agent.sock", "no transport given (did you mean unix:/tmp/agent.sock?)"],
    ["ftp:host", 'unknown transport "ftp"'],
    ["unix:", "socket path is missing"],
    ["tcp:", "host is missing"],
    ["tcp::1", "host is missing"],
    ["tcp:host:70000", "port 70000 is out of range (0..65535)"],
    ["tcp:host:http", 'port "http" is not a number'],
    ["tcp:::1:22", "an IPv6 address must be written in brackets: tcp:[::1]:4919"],
    ["vsock:", "CID is missing"],
    ["vsock:abc", 'CID "abc" is not a number'],
    ["vsock:3:4:5", "expected vsock:CID or vsock:CID:PORT"],
    ["hyperv-id:not-a-guid", '"not-a-guid" is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)'],
    ["hyperv-id:{0f3b5c9e-1d2a-4b6c-8e7f-a1b2c3d4e5f6", "is not a GUID"],
    ["hyperv:vm?vtl=1", 'vtl must be 0 or 2, not "1"'],
    ["hyperv:vm?color=red", 'unknown option "color" (known: vtl, port)'],
    ["hyperv:", "VM name is missing"],
  ]
  it.each(bad)("rejects %j saying why and listing every form", (text, why) => {
    let error: unknown
    try {
      Address.parse(text)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(Address.AddressError)
    const message = (error as Error).message
    expect(message.startsWith(`invalid address ${JSON.stringify(text)}: `)).toBe(true)
    expect(message).toContain(why)
    expect(message).toContain(`accepted forms: ${Address.forms.join(" · ")} (port defaults to 4919)`)
  })
})

describe("GUIDs", () => {
  it("accepts bare or fully braced GUIDs in any case, never half-braced", () => {
    expect(Address.isGuid("0f3b5c9e-1d2a-4b6c-8e7f-a1b2c3d4e5f6")).toBe(true)
    expect(Address.isGuid("{0F3B5C9E-1D2A-4B6C-8E7F-A1B2C3D4E5F6}")).toBe(true)
    expect(Address.isGuid("{0f3b5c9e-1d2a-4b6c-8e7f-a1b2c3d4e5f6")).toBe(false)
    expect(Address.isGuid("0f3b5c9e-1d2a-4b6c-8e7f-a1b2c3d4e5f")).toBe(false)
    expect(Address.isGuid(42)).toBe(false)
  })
  it("finds the first GUID in a tool's output, canonical", () => {
    expect(Address.findGuid("VM id: {0F3B5C9E-1D2A-4B6C-8E7F-A1B2C3D4E5F6}\r\n")).toBe(
      "0f3b5c9e-1d2a-4b6c-8e7f-a1b2c3d4e5f6",
    )
    expect(Address.findGuid("no such VM")).toBeUndefined()
  })
})
