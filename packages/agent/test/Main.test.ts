/** The agent's command line: node:util parseArgs behind the same options, usage errors exit 2. */
import { execFileSync } from "node:child_process"
import { describe, expect, it } from "vitest"
import * as Agent from "../src/Agent.js"
import { parse, UsageError, usage } from "../src/Main.js"
import * as Address from "../src/transports/address.js"
import { BIN, spawnAgent } from "./fixtures/agent.js"

const usageError = (argv: ReadonlyArray<string>) => {
  try {
    parse(argv)
  } catch (e) {
    return e
  }
  throw new Error(`parse(${argv.join(" ")}) did not fail`)
}

describe("parse", () => {
  it("reads every option: repeatable, --name=value, -h, comma-separated --allow", () => {
    expect(
      parse([
        "--listen",
        "unix:/a",
        "--listen=tcp:127.0.0.1:1",
        "--connect",
        "vsock:2",
        "--serial",
        "/dev/vport0p1",
        "--token-file",
        "/t",
        "--seal",
        "--log-file=/l",
        "--allow",
        "stat, list",
        "--allow=readFile",
        "--no-vsock-connect",
        "--allow-crash",
        "--power-command",
        "echo",
        "--crash-command=true",
        "--service",
        "-h",
        "--version",
      ]),
    ).toEqual({
      listen: ["unix:/a", "tcp:127.0.0.1:1"],
      connect: ["vsock:2"],
      serial: ["/dev/vport0p1"],
      tokenFile: "/t",
      seal: true,
      logFile: "/l",
      allow: ["stat", "list", "readFile"],
      vsockConnect: false,
      allowCrash: true,
      powerCommand: "echo",
      crashCommand: "true",
      service: true,
      help: true,
      version: true,
    })
    expect(parse([])).toEqual({
      listen: [],
      connect: [],
      serial: [],
      allowCrash: false,
      seal: false,
      service: false,
      vsockConnect: true,
      help: false,
      version: false,
    })
  })

  it("bad command lines are tagged UsageErrors that say what is wrong", () => {
    expect(usageError(["--bogus"])).toMatchObject({
      _tag: "UsageError",
      message: "unknown option --bogus (see --help)",
    })
    expect(usageError(["-q"])).toMatchObject({
      _tag: "UsageError",
      message: "unknown option -q (see --help)",
    })
    expect(usageError(["--listen"])).toMatchObject({
      _tag: "UsageError",
      message: expect.stringMatching(/^--listen needs a value/),
    })
    expect(usageError(["--listen", "--service"])).toMatchObject({
      message: expect.stringContaining("--listen=VALUE"),
    })
    expect(usageError(["serve"])).toMatchObject({
      _tag: "UsageError",
      message: expect.stringContaining('unexpected argument "serve"'),
    })
    expect(usageError(["--help=yes"])).toMatchObject({ message: "--help takes no value (see --help)" })
    expect(usageError(["--allow", "stat,nope"])).toMatchObject({
      _tag: "UsageError",
      message: expect.stringContaining("--allow nope: not an operation"),
    })
    expect(usageError(["--bogus"])).toBeInstanceOf(UsageError)
  })
})

describe("the cuvette-agent command", () => {
  it("exits 2 with a clear message on a bad option, and 0 with the usage for --help", async () => {
    const bad = await spawnAgent(["--listne", "unix:/tmp/x.sock"], { ready: false })
    expect(await bad.exited).toEqual({ code: 2, signal: null })
    expect(bad.stderr).toBe("cuvette-agent: unknown option --listne (see --help)\n")
    // Exits 0 (execFileSync throws otherwise).
    expect(execFileSync(process.execPath, [BIN, "--help"], { encoding: "utf8" })).toBe(usage)
  })
})

describe("--seal", () => {
  it("needs --token-file: exit 2 with the reason", async () => {
    const agent = await spawnAgent(["--listen", "tcp:127.0.0.1:0", "--seal"], { ready: false })
    expect(await agent.exited).toEqual({ code: 2, signal: null })
    expect(agent.stderr).toContain("--seal needs --token-file: the session keys come from the token")
  })
})

describe("a bad transport address", () => {
  it("is a usage error: exit 2, and the message lists the accepted forms", async () => {
    const bad = await spawnAgent(["--listen", "carrier-pigeon:coop"], { ready: false })
    expect(await bad.exited).toEqual({ code: 2, signal: null })
    expect(bad.stderr).toContain('invalid address "carrier-pigeon:coop"')
    expect(bad.stderr).toContain("accepted forms: unix:PATH · tcp:HOST[:PORT]")
    const hybrid = await spawnAgent(["--listen", "hybrid:/run/vm.sock"], { ready: false })
    expect(await hybrid.exited).toEqual({ code: 2, signal: null })
    expect(hybrid.stderr).toContain("accepted forms: unix:PATH · tcp:HOST[:PORT] · vsock[:any[:PORT]] (")
  })
})

describe("the agent's own errors are tagged", () => {
  it("a bad address, a refused listen and a missing serial port", async () => {
    expect(() => Address.parse("carrier-pigeon:coop", "listen")).toThrow(
      expect.objectContaining({ _tag: "AddressError", message: expect.stringContaining("tcp:HOST[:PORT]") }),
    )
    await expect(Agent.start({ listen: ["tcp:0.0.0.0:0"], log: () => {} })).rejects.toMatchObject({
      _tag: "StartError",
      message: expect.stringContaining("without --token-file"),
    })
    await expect(Agent.start({ serial: ["/dev/no-such-port"], log: () => {} })).rejects.toMatchObject({
      _tag: "StartError",
    })
  })
})
