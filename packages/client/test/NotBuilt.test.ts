// Where @cuvette/native cannot be loaded, vsock targets fail with NOT_BUILT naming the build command,
// and the other transports are unaffected.
import { describe, expect, it, vi } from "vitest"
import * as Client from "../src/Client.js"

vi.mock("@cuvette/native", () => {
  throw new Error("Cannot find module cuvette_native.node")
})

describe("without the native addon", () => {
  it("vsock targets fail with NOT_BUILT and say how to build it", async () => {
    const e = await Client.connect("listen-vsock:4919", { timeoutMs: 500 }).catch((x) => x)
    expect(e).toMatchObject({ _tag: "ConnectError", reason: "NOT_BUILT", target: "listen-vsock:4919" })
    expect(e.message).toContain("npm run build:native")
  })

  it("unix targets still work without it", async () => {
    const e = await Client.connect("unix:/nonexistent/agent.sock").catch((x) => x)
    expect(e).toMatchObject({ reason: "NOT_FOUND" })
  })
})
