// The repository right after its set-up command: `npm ci` runs the root `prepare` script, which builds every
// package (and this platform's native addon) through Nx. Then each package's exports point at files that
// exist, the README's library example runs in the repository with plain `node`, and vsock's addon loads.
import type { ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildEnv, repo, run, runLibraryExample, startAgent } from "./helpers.js"

const PACKAGES = [
  "packages/protocol",
  "native",
  "packages/client",
  "packages/agent",
  "packages/cli",
  "packages/deploy",
]

let tmp: string
let agent: ChildProcess | undefined

describe("after npm ci in the repository", () => {
  beforeAll(() => {
    tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-setup-")))
    // What npm ci runs once the dependencies are in place (cached by Nx, so seconds here).
    const env = buildEnv()
    const prepare = run("npm", ["run", "prepare"], repo, env)
    if (prepare.status !== 0)
      throw new Error(`npm run prepare failed (${prepare.status}):\n${prepare.stdout}\n${prepare.stderr}`)
  }, 170_000)

  afterAll(() => {
    agent?.kill("SIGTERM")
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it.each(PACKAGES)("%s: the files its package.json exports exist", (dir) => {
    const pkg = JSON.parse(fs.readFileSync(path.join(repo, dir, "package.json"), "utf8")) as {
      exports: Record<string, { types?: string; default?: string } | string | null>
      bin?: Record<string, string>
    }
    const main = pkg.exports["."] as { types: string; default: string }
    for (const file of [main.types, main.default, ...Object.values(pkg.bin ?? {})])
      expect(fs.existsSync(path.join(repo, dir, file)), `${dir}/${file}`).toBe(true)
  })

  it.skipIf(!["linux-x64", "linux-arm64", "win32-x64"].includes(`${process.platform}-${process.arch}`))(
    "vsock's addon for this platform is built and loads (platforms with a prebuilt)",
    () => {
      // The ioctl for this machine's CID on /dev/vsock: loads the addon, opens no socket.
      const script = `import { Vsock } from "@cuvette/native"
try { console.log(JSON.stringify({ cid: Vsock.readLocalCid() })) }
catch (e) { console.log(JSON.stringify({ reason: e.reason, message: e.message })) }`
      const r = run(process.execPath, ["--input-type=module", "-e", script], repo)
      expect(r.stderr).toBe("")
      expect(JSON.parse(r.stdout).reason).not.toBe("NOT_BUILT")
    },
  )

  it("the README's library example runs in the repository with plain node", async () => {
    const socket = path.join(tmp, "agent.sock")
    agent = await startAgent(path.join(repo, "node_modules", ".bin", "cuvette-agent"), socket, repo)
    runLibraryExample(repo, socket, path.join(tmp, "guest-payload.bin"))
  })

  it("the README's demo runs its CLI steps against a local agent (npm run demo -- --local)", () => {
    // The VM flavour boots QEMU (about 30 s); its CLI steps, flags and commands are the same.
    const r = run("npm", ["run", "demo", "--", "--local"], repo, buildEnv())
    expect(r.stderr).not.toContain("unknown option")
    expect(r.status).toBe(0)
    expect(r.stdout).toContain("$ cuvette -H unix:")
    expect(r.stdout).toContain("capabilities:")
  })
})
