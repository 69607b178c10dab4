// The guest path in a real Bun process: bun:ffi to libc, no addon, `net.Server.listen({ fd })`.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { visibleSkip } from "./helpers.js"

const root = path.resolve(import.meta.dirname, "..", "..")
const bun = path.join(root, "node_modules", ".bin", process.platform === "win32" ? "bun.exe" : "bun")

describe("Vsock under Bun (bun:ffi, no addon)", () => {
  it("creates, binds and listens on VMADDR_CID_ANY; a second bind gives EADDRINUSE", (ctx) => {
    if (process.platform !== "linux") visibleSkip(ctx, `AF_VSOCK is Linux-only (this is ${process.platform})`)
    if (!fs.existsSync(bun))
      visibleSkip(ctx, `no bun binary at ${bun} (the root devDependency "bun" is not installed)`)
    const run = spawnSync(bun, [path.join(import.meta.dirname, "fixtures", "bunVsock.ts")], {
      encoding: "utf8",
      timeout: 30_000,
      // The addon must not be what makes this work: point the loader at nothing.
      env: { ...process.env, CUVETTE_NATIVE_BINDING: "/nonexistent/cuvette_native.node" },
    })
    expect(run.stderr).toBe("")
    expect(run.status).toBe(0)
    const out = JSON.parse(run.stdout.trim().split("\n").pop()!)
    expect(out.bun).toMatch(/^\d+\.\d+\.\d+/)
    expect(out.supported).toBe(true)
    expect(out.isNetServer).toBe(true)
    expect(out.listening).toBe(true)
    expect(out.address.cid).toBe(0xffffffff)
    expect(out.address.port).toBeGreaterThan(1023)
    expect(out.second).toMatchObject({ tag: "NativeError", reason: "EADDRINUSE", code: 98 })
    expect(out.second.message).toContain(`vsock listen any:${out.address.port} failed`)
    expect(out.listenFd.fdIsNumber).toBe(true)
    expect(out.addonLoaded).toBe(false)
    expect(typeof out.localCid === "number" || /read local CID/.test(out.localCid)).toBe(true)
  })
})
