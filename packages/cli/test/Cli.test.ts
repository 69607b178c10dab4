// The root command in process, with in-memory streams: help, version, usage errors, target resolution.
import * as fs from "node:fs"
import { PassThrough } from "node:stream"
import { describe, expect, it } from "vitest"
import * as Cli from "../src/Cli.js"
import * as Args from "../src/internal/args.js"

const run = async (argv: ReadonlyArray<string>, env: Record<string, string> = {}) => {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const out: Array<Buffer> = []
  const err: Array<Buffer> = []
  stdout.on("data", (d: Buffer) => out.push(d))
  stderr.on("data", (d: Buffer) => err.push(d))
  const stdin = new PassThrough()
  stdin.end()
  const code = await Cli.run(argv, { stdin, stdout, stderr, env, platform: "linux" })
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }
}

describe("Cli.run", () => {
  it("prints help for the root and for each command", async () => {
    const root = await run(["--help"])
    expect(root.code).toBe(0)
    for (const name of [
      "exec",
      "read",
      "write",
      "ping",
      "shutdown",
      "wait",
      "info",
      "cp",
      "ls",
      "stat",
      "rm",
      "mkdir",
      "mv",
      "kmsg",
      "time",
      "deploy",
    ]) {
      expect(root.stdout).toContain(`  ${name} `)
      const h = await run([name, "--help"])
      expect(h.code, name).toBe(0)
      expect(h.stdout).toContain(`Usage: cuvette ${name}`)
    }
    expect((await run(["deploy", "image", "--help"])).stdout).toContain(
      "Usage: cuvette deploy image --out FILE",
    )
  })

  it("prints the version of its package.json", async () => {
    const pkg = JSON.parse(fs.readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version: string
    }
    expect((await run(["--version"])).stdout).toBe(`cuvette ${pkg.version}\n`)
    expect(JSON.parse((await run(["--json", "--version"])).stdout)).toEqual({ version: pkg.version })
  })

  it("usage errors exit 2 and say how to get help", async () => {
    const unknown = await run(["-H", "unix:/x", "exec", "--foo", "--", "ls"])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toBe(
      "cuvette: unknown option --foo for `cuvette exec`; see `cuvette exec --help`\n",
    )
    expect((await run(["frobnicate"])).code).toBe(2)
    expect((await run([])).code).toBe(2)
    expect((await run(["-H", "unix:/x", "read"])).stderr).toContain("missing GUEST_PATH")
    expect((await run(["-H", "unix:/x", "cp", "a", "b"])).stderr).toContain(":PATH")
    expect((await run(["-H", "unix:/x", "--timeout", "soon", "ping"])).code).toBe(2)
    expect((await run(["-H", "unix:/x", "deploy"])).code).toBe(2)
  })

  it("-H is the target's short flag; -t belongs to exec (--tty)", async () => {
    const r = await run(["-t", "unix:/x", "ping"])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("unknown option -t for `cuvette` (the target is -H or --target)")
    const help = await run(["exec", "--help"])
    expect(help.stdout).toContain("-t, --tty")
    expect(help.stdout).toContain("-i, --interactive")
    expect(help.stdout).toContain("-H, --target T")
  })

  it("a missing target is a usage error that says how to set one", async () => {
    const r = await run(["ping"])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("--target")
    expect(r.stderr).toContain("CUVETTE_TARGET")
  })

  it("usage errors in --json mode are one document on stdout", async () => {
    const r = await run(["--json", "ping"])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout)).toMatchObject({ error: { code: "USAGE", target: null } })
    expect(r.stderr).toBe("")
  })

  it("resolves --vm, --vtl2 and CUVETTE_TARGET", () => {
    const parse = (argv: Array<string>) =>
      Args.parse(argv, Object.values(Cli.globalOptions), { command: "cuvette" })
    expect(Cli.resolveTarget(parse(["--vm", "myvm", "--vtl2"]), {}).target).toBe("hyperv:myvm?vtl=2")
    // A GUID-shaped --vm is still a name (fleet VMs are named with GUIDs); ids go through -H hyperv-id:GUID.
    expect(Cli.resolveTarget(parse(["--vm", "6F2D3C1E-1111-2222-3333-444455556666"]), {}).target).toBe(
      "hyperv:6F2D3C1E-1111-2222-3333-444455556666",
    )
    expect(
      Cli.resolveTarget(parse(["--vm", "{6f2d3c1e-1111-2222-3333-444455556666}", "--vtl2"]), {}),
    ).toEqual({
      target: "hyperv:{6f2d3c1e-1111-2222-3333-444455556666}?vtl=2",
      vtl2: true,
    })
    expect(() => Cli.resolveTarget(parse(["--vm", ""]), {})).toThrow(/--vm needs a VM name.*hyperv-id:GUID/)
    expect(Cli.resolveTarget(parse([]), { CUVETTE_TARGET: "tcp:127.0.0.1:4919" }).target).toBe(
      "tcp:127.0.0.1:4919",
    )
    expect(Cli.resolveTarget(parse(["-H", "unix:/a"]), { CUVETTE_TARGET: "tcp:h:1" }).target).toBe("unix:/a")
    expect(() => Cli.resolveTarget(parse(["-H", "unix:/a", "--vm", "x"]), {})).toThrow(
      /either --target or --vm/,
    )
  })
})
