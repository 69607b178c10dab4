// Typed option declarations: what a handler receives for each kind, defaults, environment, and usage errors.
import { describe, expect, it } from "vitest"
import * as Args from "../src/internal/args.js"
import * as Opt from "../src/internal/option.js"
import { commands } from "../src/internal/registry.js"
import * as Cli from "../src/Cli.js"

const set = {
  cwd: Opt.text("cwd", "D", "working directory"),
  os: Opt.text("os", "OS", "guest OS", { default: "linux" }),
  tokenFile: Opt.text("token-file", "F", "token", { env: "CUVETTE_TOKEN_FILE" }),
  env: Opt.list("env", "K=V", "variables", { short: "e" }),
  force: Opt.flag("force", "no error", { short: "f" }),
  timeout: Opt.duration("timeout", "D", "how long"),
  mode: Opt.mode("mode", "MODE", "bits"),
  format: Opt.choice("format", ["raw", "vhd"], "disk format"),
}
const specs = Object.values(set)
const decode = (argv: Array<string>, env: Record<string, string> = {}) =>
  Opt.decodeAll(set, Args.parse(argv, specs, { command: "cuvette x" }), env)

describe("typed options", () => {
  it("gives each handler value its type, with defaults when absent", () => {
    const v = decode(["-e", "A=1", "-f", "--timeout", "2s", "--mode", "0755", "--format", "vhd"])
    expect(v).toEqual({
      cwd: undefined,
      os: "linux",
      tokenFile: undefined,
      env: ["A=1"],
      force: true,
      timeout: 2000,
      mode: 0o755,
      format: "vhd",
    })
  })

  it("reads an absent option's environment variable; the flag wins", () => {
    expect(decode([], { CUVETTE_TOKEN_FILE: "/t" }).tokenFile).toBe("/t")
    expect(decode(["--token-file", "/f"], { CUVETTE_TOKEN_FILE: "/t" }).tokenFile).toBe("/f")
    expect(decode([], { CUVETTE_TOKEN_FILE: "" }).tokenFile).toBeUndefined()
  })

  it("rejects a value outside a choice, naming the choices", () => {
    expect(() => decode(["--format", "qcow2"])).toThrow("--format qcow2: use raw or vhd")
    expect(() => decode(["--timeout", "soon"])).toThrow("not a duration")
  })

  it("no command declares a long or short name twice, nor clashes with a global option", () => {
    const globals = Object.values(Cli.globalOptions)
    const all = commands.flatMap((c) => ("subcommands" in c ? c.subcommands : [c]))
    for (const c of all) {
      const own = Object.values(c.options)
      const longs = own.map((o) => o.name)
      expect(new Set(longs).size, c.name).toBe(longs.length)
      const shorts = [
        ...own.flatMap((o) => (o.short !== undefined ? [o.short] : [])),
        ...globals
          .filter((g) => !longs.includes(g.name))
          .flatMap((g) => (g.short !== undefined ? [g.short] : [])),
      ]
      expect(new Set(shorts).size, c.name).toBe(shorts.length)
    }
  })
})
