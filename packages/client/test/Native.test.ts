// AF_VSOCK and AF_HYPERV targets. This machine has no vsock peer and no Hyper-V: data tests are
// visible skips; what can run here does (listen-vsock coming up; name resolution is in HypervName.test.ts).
import { Vsock } from "@cuvette/native"
import { describe, expect, it } from "vitest"
import * as Client from "../src/Client.js"

const GUID = "0f3b5c9e-1d2a-4b6c-8e7f-a1b2c3d4e5f6"

describe("hyperv", () => {
  it.skipIf(process.platform === "win32")(
    "hyperv targets are UNSUPPORTED on a non-Windows host",
    async () => {
      const e = await Client.connect(`hyperv-id:${GUID}?vtl=2`).catch((x) => x)
      expect(e).toMatchObject({ reason: "UNSUPPORTED" })
      expect(e.message).toContain("Windows host with Hyper-V")
    },
  )

  it.skipIf(process.platform !== "win32")(
    "connects over AF_HYPERV to a VM (needs a Windows host with Hyper-V and a running guest: not available here)",
    () => {},
  )
})

describe("vsock", () => {
  it.skip("data over vsock: this machine has no vsock peer, and tests never connect to CID 2 or any other CID", () => {})

  it("listen-vsock comes up (bind + listen on CID_ANY) and times out when no guest connects", async (ctx) => {
    if (!Vsock.isSupported()) ctx.skip()
    const port = 40000 + Math.floor(Math.random() * 20000)
    const t0 = Date.now()
    const e = await Client.connect(`listen-vsock:${port}`, { timeoutMs: 300 }).catch((x) => x)
    expect(e).toMatchObject({ _tag: "ConnectError", reason: "TIMEOUT" })
    expect(e.message).toContain("no guest connected within")
    expect(Date.now() - t0).toBeLessThan(2000)
  })
})
