// @cuvette/native's own I/O route on Windows: the windows-x64 Bun runtime with the mingw-built addon
// (native/prebuilds/win32-x64) under Wine. Wine has no Hyper-V sockets, so the route runs on AF_INET
// loopback sockets the addon creates, accepted by the addon's server: exactly the code an AF_HYPERV
// SOCKET takes after creation (native/test/fixtures/route.ts, also run under Node and Linux Bun).
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Wine from "../src/Wine.js"
import { buildAgent, repoRoot } from "./fixtures/agent.js"

const skipReason = Wine.unavailable()
if (skipReason !== undefined && process.env.CI)
  throw new Error(`CI must run the Windows native tests: ${skipReason}`)

const fixtures = path.join(repoRoot, "native", "test", "fixtures")
// This suite runs the Windows runtime under Wine, which has no Hyper-V sockets.
const noHyperV = true
const windowsPath = (linuxPath: string) => `Z:${linuxPath.replaceAll("/", "\\")}`

/** The windows-x64 Bun runtime the agent build uses (fetched once into .cache by build-agent). */
const windowsBun = (): string => {
  const version = JSON.parse(
    fs.readFileSync(path.join(repoRoot, "node_modules/bun/package.json"), "utf8"),
  ).version
  const found = [
    path.join(repoRoot, "node_modules/@oven/bun-windows-x64/bin/bun.exe"),
    path.join(repoRoot, ".cache/bun-runtimes", `@oven+bun-windows-x64-${version}`, "package/bin/bun.exe"),
  ].find((f) => fs.existsSync(f))
  if (found === undefined)
    throw new Error(`no windows-x64 Bun ${version} runtime (npm run build:agent fetches it)`)
  return found
}

describe.skipIf(skipReason !== undefined)(
  "the native I/O route under Wine (Windows Bun + mingw addon)",
  () => {
    let wine: Wine.Wine
    let bun: string
    /** Runs a fixture with the Windows Bun; resolves with its last stdout line as JSON once it exits. */
    const runFixture = (args: ReadonlyArray<string>, timeoutMs = 240_000) =>
      new Promise<Record<string, any>>((resolve, reject) => {
        // spawn + "exit", not execFile: Wine's own helpers can inherit and hold the output pipes open.
        const child = wine.spawn([bun, ...args])
        let stdout = ""
        let stderr = ""
        child.stdout?.setEncoding("utf8").on("data", (s: string) => (stdout += s))
        child.stderr?.setEncoding("utf8").on("data", (s: string) => (stderr += s))
        const timer = setTimeout(() => {
          child.kill("SIGKILL")
          reject(
            new Error(`timed out after ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr.slice(-2000)}`),
          )
        }, timeoutMs)
        child.once("exit", (code) => {
          clearTimeout(timer)
          const last = stdout.trim().split("\n").pop() ?? ""
          if (code !== 0 || !last.startsWith("{"))
            return reject(new Error(`exit ${code}; stdout: ${stdout}; stderr: ${stderr.slice(-2000)}`))
          resolve(JSON.parse(last))
        })
      })

    beforeAll(async () => {
      // Builds (when stale) the Windows agent, which fetches the windows-x64 runtime and cross-builds the addon.
      await buildAgent("windows-x64")
      expect(fs.existsSync(path.join(repoRoot, "native/prebuilds/win32-x64/cuvette_native.node"))).toBe(true)
      bun = windowsBun()
      wine = await Wine.create()
    }, 300_000)
    afterAll(async () => {
      await wine?.close()
    })

    it("64 MiB each way byte-identical, backpressure, half-close and a mid-stream disconnect over AF_INET loopback", async () => {
      const out = await runFixture([windowsPath(path.join(fixtures, "routeMain.ts")), "tcp", "64"])
      expect(out.runtime).toMatch(/^bun \S+ win32$/)
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
      console.log(
        `[native route, Wine] 64 MiB a->b ${out.copy.msAB.toFixed(0)} ms, b->a ${out.copy.msBA.toFixed(0)} ms, ` +
          `both at once ${out.copy.msBoth.toFixed(0)} ms; disconnect noticed in ${out.disconnect.ms.toFixed(0)} ms`,
      )
    }, 300_000)

    it("without Hyper-V sockets (Wine), Hvsock.listen and connect fail at socket creation with EAFNOSUPPORT saying so", async () => {
      const out = await runFixture([windowsPath(path.join(fixtures, "hvsockMain.ts"))], 120_000)
      expect(out.supported).toBe(true) // the addon loads; whether Hyper-V exists shows at socket creation
      for (const attempt of [out.listen, out.connect]) {
        expect(attempt).toMatchObject({ tag: "NativeError", reason: "EAFNOSUPPORT", code: 10047 })
        // The addon states the failure and its reason; the hint is its caller's (Hints.forVmSocket).
        expect(attempt.message).toMatch(/\(EAFNOSUPPORT, code 10047\)$/)
      }
      expect(out.listen.message).toMatch(/^hvsock listen /)
      expect(out.connect.message).toMatch(/^hvsock connect \(VTL2\) /)
    }, 180_000)

    it.skipIf(noHyperV)(
      "creates AF_HYPERV sockets (listen, connect, VTL2) and moves bytes over them (needs Windows with Hyper-V and a VM; Wine has no Hyper-V sockets)",
      () => {},
    )
  },
)
