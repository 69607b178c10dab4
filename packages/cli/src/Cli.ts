/**
 * The root `cuvette` command: global options (target, --json, --timeout, --token-file), help and
 * version, dispatch to one command per file in `commands/`, and the one place that turns failures
 * into messages and exit codes. `bin.ts` calls {@link run} and exits with what it returns.
 */
import { isGuid } from "@cuvette/protocol/Address"
import * as Args from "./internal/args.js"
import type { Agent } from "./internal/client.js"
import * as ClientApi from "./internal/client.js"
import type { Command, Context, Globals } from "./internal/command.js"
import { wrap } from "./internal/command.js"
import { describe, UsageError } from "./internal/errors.js"
import { Output, type Io } from "./internal/output.js"
import * as ExitCode from "./ExitCode.js"
import { commands } from "./internal/registry.js"
import { CLI_VERSION } from "./internal/version.js"

/** The global options, accepted before or after the command name. */
export const globalOptions: ReadonlyArray<Args.OptionSpec> = [
  {
    name: "target",
    short: "t",
    kind: "string",
    value: "T",
    env: "CUVETTE_TARGET",
    description:
      "the agent: unix:PATH, tcp:HOST:PORT, vsock:CID[:PORT], hybrid:PATH[:PORT], hyperv:NAME, serial:PATH, listen-unix:PATH, ...",
  },
  {
    name: "vm",
    kind: "string",
    value: "NAME",
    description: "Hyper-V VM by name (same as --target hyperv:NAME)",
  },
  {
    name: "vtl2",
    kind: "boolean",
    description: "talk to the agent in VTL2 (OpenHCL) instead of VTL0 (Hyper-V targets)",
  },
  {
    name: "json",
    kind: "boolean",
    description: "print exactly one JSON document on stdout (errors as {error: {...}})",
  },
  {
    name: "timeout",
    kind: "string",
    value: "D",
    description:
      "how long to wait (500ms, 10s, 2m): to connect (default 10s); exec: kill the guest process after D; wait: give up after D",
  },
  {
    name: "token-file",
    kind: "string",
    value: "F",
    env: "CUVETTE_TOKEN_FILE",
    description: "file holding the agent's shared token",
  },
  { name: "help", short: "h", kind: "boolean", description: "show help" },
  { name: "version", kind: "boolean", description: "print cuvette's version" },
]

/** cuvette's version. */
export const version = (): string => CLI_VERSION

const pad = (s: string, n: number) => (s.length >= n ? `${s}  ` : s.padEnd(n))

const optionLines = (specs: ReadonlyArray<Args.OptionSpec>): Array<string> =>
  specs.map((o) => {
    const names = `${o.short !== undefined ? `-${o.short}, ` : "    "}--${o.name}${o.kind === "boolean" ? "" : ` ${o.value ?? "V"}`}${o.kind === "list" ? "..." : ""}`
    const env = o.env !== undefined ? ` (env ${o.env})` : ""
    return `  ${pad(names, 26)}${o.description}${env}`
  })

/** Help text of the root command. */
export const rootHelp = (): string =>
  [
    "Usage: cuvette [--target T | --vm NAME [--vtl2]] [--json] [--timeout D] <command> [args]",
    "",
    "Run commands, move files, read kernel logs and power off VMs through the Cuvette agent.",
    "",
    "Commands:",
    ...commands.map((c) => `  ${pad(c.name, 12)}${c.summary}`),
    "",
    "Global options:",
    ...optionLines(globalOptions),
    "",
    "Exit codes:",
    ...ExitCode.table.map(([code, meaning]) => `  ${pad(String(code), 6)}${meaning}`),
    "",
    "Run `cuvette <command> --help` for a command's options and examples.",
  ].join("\n")

/** Help text of one command. */
export const commandHelp = (c: Command, prefix = "cuvette"): string => {
  const full = `${prefix} ${c.name}`
  return [
    `Usage: ${full} ${c.usage}`.trimEnd(),
    "",
    c.summary,
    ...(c.description !== undefined ? ["", c.description] : []),
    ...(c.subcommands !== undefined
      ? ["", "Subcommands:", ...c.subcommands.map((s) => `  ${pad(s.name, 10)}${s.summary}`)]
      : []),
    ...(c.options.length > 0 ? ["", "Options:", ...optionLines(c.options)] : []),
    "",
    "Global options:",
    ...optionLines(globalOptions),
    ...(c.examples.length > 0 ? ["", "Examples:", ...c.examples.map((e) => `  ${e}`)] : []),
  ].join("\n")
}

/** Resolves --target / --vm / --vtl2 / CUVETTE_TARGET. */
export const resolveTarget = (
  parsed: Args.Parsed,
  env: Readonly<Record<string, string | undefined>>,
): { readonly target: string | undefined; readonly vtl2: boolean } => {
  const flagTarget = Args.str(parsed, "target")
  const vm = Args.str(parsed, "vm")
  const vtl2 = Args.flag(parsed, "vtl2")
  if (flagTarget !== undefined && vm !== undefined) {
    throw new UsageError({ detail: "give either --target or --vm, not both; see `cuvette --help`" })
  }
  if (vm !== undefined) {
    if (vm.length === 0) throw new UsageError({ detail: "--vm needs a VM name or GUID" })
    const guid = isGuid(vm)
    return { target: `${guid ? "hyperv-id" : "hyperv"}:${vm}${vtl2 ? "?vtl=2" : ""}`, vtl2 }
  }
  const target =
    flagTarget ??
    (env.CUVETTE_TARGET !== undefined && env.CUVETTE_TARGET !== "" ? env.CUVETTE_TARGET : undefined)
  return { target, vtl2 }
}

const findCommand = (name: string, list: ReadonlyArray<Command>): Command | undefined =>
  list.find((c) => c.name === name)

const suggest = (name: string, list: ReadonlyArray<Command>): string => {
  const close = list.find((c) => c.name.startsWith(name.slice(0, 2)))
  return close !== undefined ? ` (did you mean \`cuvette ${close.name}\`?)` : ""
}

/** Runs `cuvette` with `argv` (without node and the script); resolves to the exit code. */
export const run = async (argv: ReadonlyArray<string>, io: Io, signal?: AbortSignal): Promise<number> => {
  let json = argv.includes("--json")
  let out = new Output(io, json)
  let target: string | undefined
  try {
    const head = Args.parse(argv, globalOptions, { command: "cuvette", leading: true })
    if (Args.flag(head, "version")) {
      out.result({ version: version() }, `cuvette ${version()}`)
      return ExitCode.Ok
    }
    const [name, ...tail] = head.rest
    if (name === undefined) {
      if (Args.flag(head, "help")) {
        io.stdout.write(rootHelp() + "\n")
        return ExitCode.Ok
      }
      throw new UsageError({ detail: "no command given; see `cuvette --help`" })
    }
    let command = findCommand(name, commands)
    if (command === undefined) {
      throw new UsageError({
        detail: `unknown command \`${name}\`${suggest(name, commands)}; see \`cuvette --help\``,
      })
    }
    let prefix = "cuvette"
    let rest = tail
    if (command.subcommands !== undefined) {
      const sub = rest[0]
      const found =
        sub !== undefined && !sub.startsWith("-") ? findCommand(sub, command.subcommands) : undefined
      if (found === undefined) {
        if (rest.includes("--help") || rest.includes("-h") || Args.flag(head, "help")) {
          io.stdout.write(commandHelp(command) + "\n")
          return ExitCode.Ok
        }
        const what =
          sub === undefined || sub.startsWith("-") ? "a subcommand" : `a known subcommand (not \`${sub}\`)`
        throw new UsageError({
          detail: `\`cuvette ${command.name}\` needs ${what}: ${command.subcommands.map((s) => s.name).join(", ")}; see \`cuvette ${command.name} --help\``,
        })
      }
      prefix = `cuvette ${command.name}`
      command = found
      rest = rest.slice(1)
    }
    const full = `${prefix} ${command.name}`
    const own = new Set(command.options.map((o) => o.name))
    const specs = [...command.options, ...globalOptions.filter((g) => !own.has(g.name))]
    const tailParsed = Args.parse(rest, specs, {
      command: full,
      ...(command.stopAtPositional === true ? { stopAtPositional: true } : {}),
    })
    const parsed: Args.Parsed = {
      options: { ...head.options, ...tailParsed.options },
      positionals: tailParsed.positionals,
      dashDash: tailParsed.dashDash,
    }
    if (Args.flag(parsed, "help")) {
      io.stdout.write(commandHelp(command, prefix) + "\n")
      return ExitCode.Ok
    }
    json = Args.flag(parsed, "json")
    out = new Output(io, json)
    // A command with its own --vm (deploy vtl2: the VM as ohcldiag-dev names it) derives its target itself.
    const { vm: _vm, ...withoutVm } = parsed.options
    const resolved = resolveTarget(own.has("vm") ? { ...parsed, options: withoutVm } : parsed, io.env)
    target = resolved.target
    const timeout = Args.str(parsed, "timeout")
    const tokenFile =
      Args.str(parsed, "token-file") ??
      (io.env.CUVETTE_TOKEN_FILE !== "" ? io.env.CUVETTE_TOKEN_FILE : undefined)
    const globals: Globals = {
      target: resolved.target,
      vtl2: resolved.vtl2,
      json,
      timeoutMs: timeout !== undefined ? Args.parseDuration(timeout, "--timeout") : undefined,
      tokenFile,
    }
    return await runCommand(command, full, parsed, globals, io, out, signal)
  } catch (error) {
    const failure = describe(error, { action: "run", ...(target !== undefined ? { target } : {}) })
    out.error(failure, target)
    return failure.exitCode
  }
}

const runCommand = async (
  command: Command,
  full: string,
  parsed: Args.Parsed,
  globals: Globals,
  io: Io,
  out: Output,
  outer: AbortSignal | undefined,
): Promise<number> => {
  const controller = new AbortController()
  const onAbort = () => controller.abort()
  outer?.addEventListener("abort", onAbort, { once: true })
  if (outer?.aborted === true) controller.abort()
  let agent: Promise<Agent> | undefined
  const requireTarget = (): string => {
    if (globals.target === undefined) {
      throw new UsageError({
        detail: `no target for \`${full}\`: pass --target T (e.g. -t unix:/tmp/agent.sock), --vm NAME, or set CUVETTE_TARGET`,
      })
    }
    return globals.target
  }
  const ctx: Context = {
    io,
    out,
    globals,
    parsed,
    command: full,
    signal: controller.signal,
    target: requireTarget,
    connect: () => {
      if (agent === undefined) {
        const target = requireTarget()
        agent = ClientApi.load().then((client) =>
          client
            .connect(target, {
              timeoutMs:
                globals.timeoutMs !== undefined && command.name !== "exec" ? globals.timeoutMs : 10_000,
              ...(globals.vtl2 ? { vtl2: true } : {}),
              ...(globals.tokenFile !== undefined ? { tokenFile: globals.tokenFile } : {}),
              signal: controller.signal,
            })
            .catch((error: unknown) => {
              throw wrap(error, { action: "connect", target })
            }),
        )
      }
      return agent
    },
    attempt: async (what, f) => {
      try {
        return await f()
      } catch (error) {
        throw wrap(error, { ...what, ...(globals.target !== undefined ? { target: globals.target } : {}) })
      }
    },
  }
  try {
    if (command.handlesInterrupt === true) return await command.run(ctx)
    const interrupted = new Promise<number>((resolve) => {
      if (controller.signal.aborted) resolve(ExitCode.Interrupted)
      controller.signal.addEventListener("abort", () => resolve(ExitCode.Interrupted), { once: true })
    })
    const code = await Promise.race([command.run(ctx), interrupted])
    if (code === ExitCode.Interrupted && controller.signal.aborted) out.note("interrupted")
    return code
  } catch (error) {
    if (controller.signal.aborted) {
      out.note("interrupted")
      return ExitCode.Interrupted
    }
    throw error
  } finally {
    outer?.removeEventListener("abort", onAbort)
    if (agent !== undefined) {
      // Closing tells the agent to cancel what is still running (an interrupted copy removes its temp file).
      await agent.then(
        (a) => Promise.race([a.close(), new Promise((r) => setTimeout(r, 2000).unref())]),
        () => undefined,
      )
    }
  }
}
