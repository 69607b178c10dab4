import { describe, expect, it } from "vitest"
import * as Args from "../src/internal/args.js"
import { UsageError } from "../src/internal/errors.js"

const specs: ReadonlyArray<Args.OptionSpec> = [
  { name: "env", short: "e", kind: "list", description: "" },
  { name: "cwd", kind: "string", description: "" },
  { name: "recursive", short: "r", kind: "boolean", description: "" },
  { name: "force", short: "f", kind: "boolean", description: "" },
  { name: "target", short: "t", kind: "string", description: "" },
]
const ctx = { command: "cuvette exec" }

const usage = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError)
    return (e as UsageError).message
  }
  throw new Error("expected a usage error")
}

describe("Args.parse", () => {
  it("reads long, short, inline and repeated options", () => {
    const p = Args.parse(
      ["-e", "A=1", "--env=B=2", "-eC=3", "--cwd", "/tmp", "-t", "unix:/x", "pos"],
      specs,
      ctx,
    )
    expect(p.options.env).toEqual(["A=1", "B=2", "C=3"])
    expect(p.options.cwd).toBe("/tmp")
    expect(p.options.target).toBe("unix:/x")
    expect(p.positionals).toEqual(["pos"])
  })

  it("bundles short flags", () => {
    const p = Args.parse(["-rf", "x"], specs, ctx)
    expect(Args.flag(p, "recursive") && Args.flag(p, "force")).toBe(true)
  })

  it("ends options at -- and, for exec, at the first positional", () => {
    expect(Args.parse(["-r", "--", "-f", "--cwd"], specs, ctx).positionals).toEqual(["-f", "--cwd"])
    const p = Args.parse(["--cwd", "/", "ls", "-r", "--cwd"], specs, { ...ctx, stopAtPositional: true })
    expect(p.positionals).toEqual(["ls", "-r", "--cwd"])
    expect(p.options.cwd).toBe("/")
  })

  it("stops at the command name in leading mode", () => {
    const p = Args.parse(
      ["-t", "unix:/x", "--json", "exec", "--cwd", "/"],
      [...specs, { name: "json", kind: "boolean", description: "" }],
      {
        command: "cuvette",
        leading: true,
      },
    )
    expect(p.rest).toEqual(["exec", "--cwd", "/"])
  })

  it("names the command and its --help in usage errors", () => {
    expect(usage(() => Args.parse(["--foo"], specs, ctx))).toBe(
      "unknown option --foo for `cuvette exec`; see `cuvette exec --help`",
    )
    expect(usage(() => Args.parse(["-x"], specs, ctx))).toContain("unknown option -x")
    expect(usage(() => Args.parse(["--cwd"], specs, ctx))).toContain("--cwd needs a value")
    expect(usage(() => Args.parse(["--recursive=1"], specs, ctx))).toContain("takes no value")
  })

  it("checks positionals", () => {
    const p = Args.parse(["a", "b", "c"], specs, ctx)
    expect(usage(() => Args.expectPositionals(p, "cuvette mv", ["SRC", "DST"]))).toContain(
      "unexpected argument c",
    )
    expect(
      usage(() => Args.expectPositionals(Args.parse([], specs, ctx), "cuvette read", ["GUEST_PATH"])),
    ).toContain("missing GUEST_PATH for `cuvette read`")
  })
})

describe("Args.parseDuration / parseMode", () => {
  it("parses durations", () => {
    expect(Args.parseDuration("500ms", "--timeout")).toBe(500)
    expect(Args.parseDuration("10s", "--timeout")).toBe(10_000)
    expect(Args.parseDuration("2m", "--timeout")).toBe(120_000)
    expect(Args.parseDuration("1.5", "--timeout")).toBe(1500)
    expect(usage(() => Args.parseDuration("soon", "--timeout"))).toContain("not a duration")
  })

  it("parses octal modes", () => {
    expect(Args.parseMode("644", "--mode")).toBe(0o644)
    expect(Args.parseMode("0755", "--mode")).toBe(0o755)
    expect(usage(() => Args.parseMode("999", "--mode"))).toContain("octal")
  })
})
