// cuvette.exe, the single-file Windows CLI of `npm run build:cli`, under Wine driving the Linux agent (the
// Bun-compiled one, on loopback TCP with a token) as a Windows test host would drive a guest: exec with stdin,
// stdout, stderr and the exit code, 64 MiB copies both ways, --json, and the errors scripts branch on.
// Wine has no Hyper-V sockets: the embedded addon is shown loading by the socket call it then makes.
import type { ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Wine from "../src/Wine.js"
import { buildAgent, repoRoot, sha256, sha256File } from "./fixtures/agent.js"
import { buildCli, collect, type Ran, startAgent } from "./fixtures/cli.js"

const skipReason = Wine.unavailable()
// CI installs wine64 and mingw-w64 (scripts/setup-system.sh): there a missing one is a failure.
if (skipReason !== undefined && process.env.CI)
  throw new Error(`CI must run the Wine CLI tests: ${skipReason}`)

const version = JSON.parse(fs.readFileSync(path.join(repoRoot, "packages/cli/package.json"), "utf8")).version
const MiB = 1 << 20

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo
      s.close(() => resolve(port))
    })
    s.once("error", reject)
  })

/** The Windows path of a Linux path: Wine's Z: drive is the Linux root. */
const win = (p: string): string => `Z:${p.replaceAll("/", "\\")}`

describe.skipIf(skipReason !== undefined)(
  "cuvette.exe under Wine drives a Linux agent over TCP with a token",
  () => {
    let wine: Wine.Wine
    let dir: string
    let exe: string
    let agent: ChildProcess | undefined
    let target: string
    let tokenFile: string

    /** Runs cuvette.exe with `args`; `stdin` is written to it through a pipe. */
    const cuvette = (args: ReadonlyArray<string>, stdin?: Uint8Array): Promise<Ran> =>
      collect(wine.spawn([exe, ...args], stdin ? { stdin: "pipe" } : {}), stdin)
    /** The same, with the agent's target and token. */
    const withToken = (args: ReadonlyArray<string>, stdin?: Uint8Array) =>
      cuvette(["-H", target, "--token-file", win(tokenFile), ...args], stdin)

    beforeAll(async () => {
      ;[wine, exe] = await Promise.all([Wine.create(), buildCli("windows-x64")])
      dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-cli-wine-")))
      tokenFile = path.join(dir, "token")
      fs.writeFileSync(tokenFile, randomBytes(32).toString("hex"))
      target = `tcp:127.0.0.1:${await freePort()}`
      const { agent: agentBin } = await buildAgent("linux-x64")
      agent = await startAgent(agentBin, ["--listen", target, "--token-file", tokenFile])
    }, 300_000)
    afterAll(async () => {
      if (agent?.pid !== undefined && agent.exitCode === null) process.kill(agent.pid, "SIGKILL")
      await wine?.close()
      if (dir) fs.rmSync(dir, { recursive: true, force: true })
    })

    it("prints its version and loads its embedded addon (a Hyper-V target gets as far as the socket call)", async () => {
      const v = await cuvette(["--version"])
      expect(v.code, v.stderr).toBe(0)
      expect(v.stdout.toString()).toBe(`cuvette ${version}\n`)
      const hv = await cuvette(["-H", "hyperv-id:5a9f4e11-8a52-4c43-9d36-4b86b3b1c2a1", "--json", "ping"])
      expect(hv.code).toBe(3)
      const error = JSON.parse(hv.stdout.toString()).error
      expect(error.code).not.toBe("NOT_BUILT")
      expect(error.message).toContain("10047") // WSAEAFNOSUPPORT: Wine has no AF_HYPERV
    })

    it("exec: piped stdin reaches the guest command; stdout, stderr and its exit code come back", async () => {
      const input = randomBytes(MiB)
      const r = await withToken(["exec", "--", "sh", "-c", "cat; echo to-stderr >&2; exit 7"], input)
      expect(r.code, r.stderr).toBe(7)
      expect(sha256(r.stdout)).toBe(sha256(input))
      expect(r.stderr).toBe("to-stderr\n")
    })

    it("cp moves 64 MiB to the guest and back byte-identical", async () => {
      const local = path.join(dir, "up.bin")
      fs.writeFileSync(local, randomBytes(64 * MiB))
      const guest = path.join(dir, "on-guest.bin")
      const back = path.join(dir, "down.bin")
      let t0 = performance.now()
      const up = await withToken(["cp", win(local), `:${guest}`])
      const upMs = performance.now() - t0
      expect(up.code, up.stderr).toBe(0)
      expect(sha256File(guest)).toBe(sha256File(local))
      t0 = performance.now()
      const down = await withToken(["cp", `:${guest}`, win(back)])
      const downMs = performance.now() - t0
      expect(down.code, down.stderr).toBe(0)
      expect(sha256File(back)).toBe(sha256File(local))
      console.log(
        `[e2e timing] cuvette.exe under Wine, 64 MiB: to the guest ${(upMs / 1000).toFixed(2)} s, ` +
          `back ${(downMs / 1000).toFixed(2)} s (whole process)`,
      )
    })

    it("--json: results and errors are JSON documents", async () => {
      const info = await withToken(["--json", "info"])
      expect(info.code, info.stderr).toBe(0)
      expect(JSON.parse(info.stdout.toString())).toMatchObject({ target, os: "linux", arch: "x64" })
      const stat = await withToken(["--json", "stat", tokenFile])
      expect(JSON.parse(stat.stdout.toString())).toMatchObject({ size: 64 })
      const missing = await withToken(["--json", "stat", path.join(dir, "no-such-file")])
      expect(missing.code).toBe(1)
      expect(JSON.parse(missing.stdout.toString()).error).toMatchObject({ code: "ENOENT" })
    })

    it("errors: no token or a wrong one exits 4 saying so; nothing listening exits 3", async () => {
      const none = await cuvette(["-H", target, "ping"])
      expect(none.code).toBe(4)
      expect(none.stderr).toContain("it requires a token and none was given")
      const wrongFile = path.join(dir, "wrong-token")
      fs.writeFileSync(wrongFile, "not the token")
      const wrong = await cuvette(["-H", target, "--token-file", win(wrongFile), "--json", "ping"])
      expect(wrong.code).toBe(4)
      expect(JSON.parse(wrong.stdout.toString()).error).toMatchObject({ code: "DENIED" })
      expect(JSON.parse(wrong.stdout.toString()).error.message).toContain(
        "it refused our token (wrong token)",
      )
      const closed = `tcp:127.0.0.1:${await freePort()}`
      const nobody = await cuvette(["-H", closed, "ping"])
      expect(nobody.code).toBe(3)
      expect(nobody.stderr).toContain(`cannot connect to ${closed}`)
    })
  },
)
