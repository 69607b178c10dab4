// AF_HYPERV: argument checks run everywhere; off Windows the calls fail with UNSUPPORTED. Runtime
// behaviour (connect, VTL2, listen/accept) needs a Windows host with Hyper-V: a visible skip here.
import { describe, expect, it } from "vitest"
import * as HvAddress from "../lib/HvAddress.js"
import * as Hvsock from "../lib/Hvsock.js"
import { NativeError } from "../lib/NativeError.js"
import { visibleSkip } from "./helpers.js"

const VM = "12345678-9abc-def0-1122-334455667788"

const rejection = async (p: Promise<unknown>): Promise<NativeError> => {
  const e = await p.then(
    () => undefined,
    (x: unknown) => x,
  )
  expect(e).toBeInstanceOf(NativeError)
  return e as NativeError
}

describe("Hvsock argument validation", () => {
  it.each([
    [{ vmId: "nope" }, /vmId "nope" is not a GUID/],
    [{ vmId: 42 }, /vmId must be a GUID string/],
    [{ vmId: VM, port: 0x80000000 }, /port must be an integer in 0\.\.0x7FFFFFFF/],
    [{ vmId: VM, port: 1, serviceId: HvAddress.HV_GUID_PARENT }, /either port or serviceId, not both/],
    [{ vmId: VM, serviceId: "x" }, /serviceId "x" is not a GUID/],
    [{ vmId: VM, timeoutMs: 300_001 }, /timeoutMs must be an integer in 1\.\.0x493E0/],
    [{ vmId: VM, vtl2: "yes" }, /vtl2 must be a boolean/],
  ])("connect(%o) rejects with INVALID_ARGUMENT", async (options, text) => {
    const e = await rejection(Hvsock.connect(options as unknown as Hvsock.ConnectOptions))
    expect(e.reason).toBe("INVALID_ARGUMENT")
    expect(e.message).toMatch(text)
  })

  it("listen() validates too", async () => {
    const e = await rejection(Hvsock.listen({ vmId: "{bad}", port: 1 }))
    expect(e.reason).toBe("INVALID_ARGUMENT")
    expect((await rejection(Hvsock.listen({ backlog: 0 }))).reason).toBe("INVALID_ARGUMENT")
  })
})

describe.runIf(process.platform !== "win32")("Hvsock off Windows", () => {
  it("connect and listen fail with UNSUPPORTED and say what to use instead", async () => {
    const c = await rejection(Hvsock.connect({ vmId: VM, vtl2: true }))
    expect(c.reason).toBe("UNSUPPORTED")
    expect(c.message).toMatch(/hvsock connect \(VTL2\) failed: AF_HYPERV .* Windows-only; this is linux/)
    const l = await rejection(Hvsock.listen())
    expect(l.reason).toBe("UNSUPPORTED")
    expect(Hvsock.isSupported()).toBe(false)
  })
})

describe("Hvsock runtime", () => {
  it("connect / VTL2 / listen+accept against a real VM", (ctx) => {
    visibleSkip(
      ctx,
      process.platform === "win32"
        ? "needs a running Hyper-V VM with a registered service id; no such VM is configured for tests"
        : "needs a Windows host with Hyper-V (no Hyper-V here); covered: SOCKADDR_HV bytes, argument checks, the mingw cross-build (prebuilds.test.ts)",
    )
  })
})
