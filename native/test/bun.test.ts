// Under a real Bun: Vsock's bun:ffi path (no addon), and the addon's own I/O route end to end
// (test/fixtures/route.ts, the same scenarios stream.test.ts runs under Node): Hvsock's route under Bun.
import { execFile, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { visibleSkip } from "./helpers.js"

const root = path.resolve(import.meta.dirname, "..", "..")
const bun = path.join(root, "node_modules", ".bin", process.platform === "win32" ? "bun.exe" : "bun")
const fixture = (name: string) => path.join(import.meta.dirname, "fixtures", name)

// Asynchronous: a worker blocked in spawnSync for a minute cannot answer vitest's RPC.
const runBun = async (ctx: { skip: (note?: string) => never }, args: ReadonlyArray<string>) => {
  if (!fs.existsSync(bun))
    visibleSkip(ctx, `no bun binary at ${bun} (the root devDependency "bun" is not installed)`)
  const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      bun,
      args,
      { encoding: "utf8", timeout: 180_000, maxBuffer: 16 << 20 },
      (_e, stdout, stderr) => resolve({ status: child.exitCode, stdout, stderr }),
    )
  })
  expect(run.stderr).toBe("")
  expect(run.status).toBe(0)
  return JSON.parse(run.stdout.trim().split("\n").pop()!)
}

describe("under Bun", () => {
  it("Vsock through bun:ffi, no addon: creates, binds and listens on VMADDR_CID_ANY; a second bind gives EADDRINUSE", (ctx) => {
    if (process.platform !== "linux") visibleSkip(ctx, `AF_VSOCK is Linux-only (this is ${process.platform})`)
    if (!fs.existsSync(bun))
      visibleSkip(ctx, `no bun binary at ${bun} (the root devDependency "bun" is not installed)`)
    const run = spawnSync(bun, [fixture("bunVsock.ts")], {
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

  for (const kind of ["tcp", "unix"] as const)
    it(`the addon's I/O route over ${kind === "tcp" ? "AF_INET loopback (accepted by the addon's server)" : "an AF_UNIX socketpair"}: 64 MiB each way identical, backpressure, half-close, mid-stream disconnect`, async (ctx) => {
      if (kind === "unix" && process.platform !== "linux") visibleSkip(ctx, "socketpair is Linux-only here")
      const out = await runBun(ctx, [fixture("routeMain.ts"), kind, "64"])
      expect(out.runtime).toMatch(/^bun /)
      expect(out.halfClose).toEqual({ request: "request", response: "response to request" })
      expect(out.copy).toMatchObject({
        bytes: 64 * 1024 * 1024,
        identicalAB: true,
        identicalBA: true,
        identicalBoth: true,
        threadsAfter: 0,
      })
      expect(out.backpressure.identicalAfterResume).toBe(true)
      expect(out.backpressure.writtenWhilePaused).toBeLessThan(out.backpressure.offered / 2)
      expect(out.backpressure.rssGrowthMiB).toBeLessThan(32)
      expect(out.disconnect.writerOutcome).toMatch(/^(error ECONNRESET|close)$/)
      expect(out.disconnect.threadsAfter).toBe(0)
    })
})
