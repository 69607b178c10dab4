// The Windows guides' cuvette commands are real: each one parses with the real CLI (an unknown command or
// option is exit 2), and the VTL2 guide's dry-run output is what the CLI prints.
import * as fs from "node:fs"
import * as path from "node:path"
import { PassThrough } from "node:stream"
import { describe, expect, it } from "vitest"
import * as Cli from "../src/Cli.js"

const docs = path.resolve(import.meta.dirname, "../../../docs")
const guides = ["guide-vtl0-windows.md", "guide-vtl2-hyperv.md"]

const run = async (argv: ReadonlyArray<string>) => {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const out: Array<Buffer> = []
  const err: Array<Buffer> = []
  stdout.on("data", (d: Buffer) => out.push(d))
  stderr.on("data", (d: Buffer) => err.push(d))
  const stdin = new PassThrough()
  stdin.end()
  const code = await Cli.run(argv, { stdin, stdout, stderr, env: {}, platform: "win32" })
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }
}

/** Words as PowerShell or sh split this simple line: quotes group, backslashes are literal (Windows paths). */
const words = (line: string): Array<string> =>
  [...line.matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!)

/** Every cuvette command line inside the guide's code blocks, without its program name and comment. */
const commandsOf = (text: string): Array<Array<string>> => {
  const blocks = [...text.matchAll(/```\w*\n([^]*?)```/g)].map((m) => m[1]!)
  return blocks
    .flatMap((b) => b.split("\n"))
    .map((l) => l.replace(/\s+#.*$/, "").trim())
    .filter((l) => /^(?:npx cuvette|\S*cuvette\.exe) /.test(l))
    .map((l) => words(l).slice(l.startsWith("npx ") ? 2 : 1))
}

describe.each(guides)("%s", (guide) => {
  const text = fs.readFileSync(path.join(docs, guide), "utf8")
  const commands = commandsOf(text)

  it("has cuvette commands, and each parses with the real CLI", async () => {
    expect(commands.length).toBeGreaterThanOrEqual(3)
    expect((await run(["--help", "deploy", "vtl2", "--disk-path", "x"])).code).toBe(2) // what a stale flag gets
    for (const argv of commands) {
      const r = await run(["--help", ...argv])
      expect(r.code, `${argv.join(" ")}: ${r.stderr}`).toBe(0)
    }
  })
})

describe("guide-vtl2-hyperv.md", () => {
  it("shows the ohcldiag-dev lines that --dry-run prints", async () => {
    const text = fs.readFileSync(path.join(docs, "guide-vtl2-hyperv.md"), "utf8")
    const dry = commandsOf(text).find((a) => a.includes("--dry-run") && a.includes("--disk"))!
    const shown = /```\n\.\.\.\n([^]*?)```/.exec(text)![1]!.trimEnd().split("\n")
    const r = await run(dry)
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trimEnd().split("\n").slice(-shown.length)).toEqual(shown)
    expect(r.stdout).toContain("$diskPath = 'C:\\vms\\cidata.vhd'")
  })
})
