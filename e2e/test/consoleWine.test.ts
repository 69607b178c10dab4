// `cuvette console \\.\pipe\NAME` on Windows (Bun's windows-x64 runtime) under Wine: a named pipe served as
// a Hyper-V COM port serves one, and one that no one serves. Wine's named pipes are not Hyper-V's: this
// shows the Windows route of the CLI (net.connect on a pipe path) works, not Hyper-V's permissions.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Wine from "../src/Wine.js"
import { buildAgent, repoRoot } from "./fixtures/agent.js"
import { collect } from "./fixtures/cli.js"

const skipReason = Wine.unavailable()
if (skipReason !== undefined && process.env.CI)
  throw new Error(`CI must run the Wine console test: ${skipReason}`)

const win = (p: string): string => `Z:${p.replaceAll("/", "\\")}`

/** The windows-x64 Bun runtime the agent build fetches into .cache. */
const windowsBun = (): string | undefined => {
  const version = JSON.parse(
    fs.readFileSync(path.join(repoRoot, "node_modules/bun/package.json"), "utf8"),
  ).version
  return [
    path.join(repoRoot, "node_modules/@oven/bun-windows-x64/bin/bun.exe"),
    path.join(repoRoot, ".cache/bun-runtimes", `@oven+bun-windows-x64-${version}`, "package/bin/bun.exe"),
  ].find((f) => fs.existsSync(f))
}

// A COM port's pipe as Hyper-V serves it: one client at a time, bytes both ways.
const pipeServer = `
import * as net from "node:net"
const server = net.createServer((c) => {
  c.write("welcome\\r\\n")
  c.on("data", (d) => c.write("got: " + d.toString().trim() + "\\r\\n"))
  c.on("error", () => {})
})
server.listen(process.argv[2], () => console.log("listening"))
`

describe.skipIf(skipReason !== undefined)("cuvette console on a Windows named pipe (Wine)", () => {
  let wine: Wine.Wine
  let bun: string
  let dir: string
  const cli = win(path.join(repoRoot, "packages/cli/src/bin.ts"))
  const cuvetteConsole = (args: ReadonlyArray<string>, stdin?: Uint8Array) =>
    collect(
      wine.spawn(
        [bun, "--conditions=@cuvette/source", cli, "console", ...args],
        stdin ? { stdin: "pipe" } : {},
      ),
      stdin,
    )

  beforeAll(async () => {
    // Building the Windows agent fetches the runtime, when no earlier build did.
    const found = windowsBun() ?? (await buildAgent("windows-x64"), windowsBun())
    if (found === undefined)
      throw new Error("no windows-x64 Bun runtime after build-agent --target windows-x64")
    bun = found
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-console-wine-"))
    fs.writeFileSync(path.join(dir, "server.mjs"), pipeServer)
    wine = await Wine.create()
  }, 300_000)
  afterAll(async () => {
    await wine?.close()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  it("attaches to a served pipe: its output, our piped input, exit 0", async () => {
    const pipe = "\\\\.\\pipe\\cuvette-console-e2e"
    const server = wine.spawn([bun, win(path.join(dir, "server.mjs")), pipe])
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("the pipe server did not start")), 120_000)
        server.stdout!.on("data", (d: Buffer) => {
          if (d.toString().includes("listening")) {
            clearTimeout(timer)
            resolve()
          }
        })
      })
      const r = await cuvetteConsole([pipe], Buffer.from("hello\n"))
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout.toString()).toBe("welcome\r\ngot: hello\r\n")
    } finally {
      if (server.pid !== undefined) process.kill(server.pid, "SIGKILL")
    }
  }, 180_000)

  it("a pipe no one serves: nothing listening, exit 3, with the Hyper-V setting that makes one", async () => {
    const r = await cuvetteConsole(["\\\\.\\pipe\\cuvette-console-none"])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain("nothing is listening on \\\\.\\pipe\\cuvette-console-none")
    expect(r.stderr).toContain("Set-VMComPort")
  }, 120_000)
})
