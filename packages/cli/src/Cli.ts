/**
 * The root `cuvette` command: global options (target, --json, --timeout, --token-file), help and
 * version, dispatch to one command per file in `commands/`, and the one place that turns failures
 * into messages and exit codes. `bin.ts` calls {@link run} and exits with what it returns.
 */
import * as Args from "./internal/args.js"
import type { Agent } from "./internal/client.js"
import * as ClientApi from "./internal/client.js"
import type { AgentContext, Command, Globals, Group } from "./internal/command.js"
import { StdoutClosed, stopCode, wrap } from "./internal/command.js"
import { CliError, describe, UsageError } from "./internal/errors.js"
import { globalOptions } from "./internal/globalOptions.js"
import * as Opt from "./internal/option.js"
import type { OptionSet } from "./internal/option.js"
import { Output, type Io } from "./internal/output.js"
import * as ExitCode from "./ExitCode.js"
import { commands } from "./internal/registry.js"
import { CLI_VERSION } from "./internal/version.js"

export { globalOptions }

/** cuvette's version. */
export const version = (): string => CLI_VERSION

/** How long a connection may take unless --timeout says otherwise. */
const DEFAULT_CONNECT_MS = 10_000

const pad = (s: string, n: number) => (s.length >= n ? `${s}  ` : s.padEnd(n))

const optionLines = (set: OptionSet): Array<string> =>
  Object.values(set).map((o) => {
    const names = `${o.short !== undefined ? `-${o.short}, ` : "    "}--${o.name}${o.kind === "boolean" ? "" : ` ${o.value ?? "V"}`}${o.kind === "list" ? "..." : ""}`
    const dflt = o.defaultText !== undefined ? ` (default ${o.defaultText})` : ""
    const env = o.env !== undefined ? ` (env ${o.env})` : ""
    return `  ${pad(names, 26)}${o.description}${dflt}${env}`
  })

const isGroup = (c: Command | Group): c is Group => "subcommands" in c

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

/** Help text of one command or group. */
export const commandHelp = (c: Command | Group, prefix = "cuvette"): string => {
  const full = `${prefix} ${c.name}`
  const options = isGroup(c) ? {} : c.options
  return [
    `Usage: ${full} ${c.usage}`.trimEnd(),
    "",
    c.summary,
    ...(!isGroup(c) && c.description !== undefined ? ["", c.description] : []),
    ...(isGroup(c)
      ? ["", "Subcommands:", ...c.subcommands.map((s) => `  ${pad(s.name, 10)}${s.summary}`)]
      : []),
    ...(Object.keys(options).length > 0 ? ["", "Options:", ...optionLines(options)] : []),
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
  // The flags alone first: --vm wins over CUVETTE_TARGET, but not over --target.
  const {
    target: flagTarget,
    vm,
    vtl2,
  } = Opt.decodeAll(
    { target: globalOptions.target, vm: globalOptions.vm, vtl2: globalOptions.vtl2 },
    parsed,
    {},
  )
  if (flagTarget !== undefined && vm !== undefined) {
    throw new UsageError({ detail: "give either --target or --vm, not both; see `cuvette --help`" })
  }
  if (vm !== undefined) {
    if (vm.length === 0)
      throw new UsageError({ detail: "--vm needs a VM name (for a VM id: -H hyperv-id:GUID)" })
    // Always a name, even a GUID-shaped one: fleet hosts name their VMs with GUIDs that are not their ids.
    return { target: `hyperv:${vm}${vtl2 ? "?vtl=2" : ""}`, vtl2 }
  }
  const target =
    flagTarget ??
    (env.CUVETTE_TARGET !== undefined && env.CUVETTE_TARGET !== "" ? env.CUVETTE_TARGET : undefined)
  return { target, vtl2 }
}

const findCommand = <C extends { readonly name: string }>(name: string, list: ReadonlyArray<C>) =>
  list.find((c) => c.name === name)

const suggest = (name: string, list: ReadonlyArray<{ readonly name: string }>): string => {
  const close = list.find((c) => c.name.startsWith(name.slice(0, 2)))
  return close !== undefined ? ` (did you mean \`cuvette ${close.name}\`?)` : ""
}

/** The positional arguments `command` declares, checked; "argv" passes them through. */
const checkArgs = (
  command: Command,
  parsed: Args.Parsed,
  full: string,
): ReadonlyArray<string | undefined> => {
  if (command.args === "argv" || command.args === "list") return parsed.positionals
  const names = command.args.map((n) => n.replace(/\?$/, ""))
  const optional = command.args.filter((n) => n.endsWith("?")).length
  const given = Args.expectPositionals(parsed, full, names, optional)
  return names.map((_, i) => given[i])
}

/** Runs `cuvette` with `argv` (without node and the script); resolves to the exit code. */
export const run = async (argv: ReadonlyArray<string>, io: Io, signal?: AbortSignal): Promise<number> => {
  let json = argv.includes("--json")
  let out = new Output(io, json)
  let target: string | undefined
  try {
    const head = Args.parse(argv, Object.values(globalOptions), { command: "cuvette", leading: true })
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
    const entry = findCommand(name, commands)
    if (entry === undefined) {
      throw new UsageError({
        detail: `unknown command \`${name}\`${suggest(name, commands)}; see \`cuvette --help\``,
      })
    }
    let prefix = "cuvette"
    let rest = tail
    let command: Command
    if (isGroup(entry)) {
      const sub = rest[0]
      const found =
        sub !== undefined && !sub.startsWith("-") ? findCommand(sub, entry.subcommands) : undefined
      if (found === undefined) {
        if (rest.includes("--help") || rest.includes("-h") || Args.flag(head, "help")) {
          io.stdout.write(commandHelp(entry) + "\n")
          return ExitCode.Ok
        }
        const what =
          sub === undefined || sub.startsWith("-") ? "a subcommand" : `a known subcommand (not \`${sub}\`)`
        throw new UsageError({
          detail: `\`cuvette ${entry.name}\` needs ${what}: ${entry.subcommands.map((s) => s.name).join(", ")}; see \`cuvette ${entry.name} --help\``,
        })
      }
      prefix = `cuvette ${entry.name}`
      command = found
      rest = rest.slice(1)
    } else {
      command = entry
    }
    const full = `${prefix} ${command.name}`
    // A command's own option shadows a global one of the same name (deploy vtl2 --vm).
    const own = new Set(Object.values(command.options).map((o) => o.name))
    const globals = Object.fromEntries(
      Object.entries(globalOptions).filter(([, g]) => !own.has(g.name)),
    ) as Partial<typeof globalOptions>
    const tailParsed = Args.parse(rest, [...Object.values(command.options), ...Object.values(globals)], {
      command: full,
      ...(command.args === "argv" ? { stopAtPositional: true } : {}),
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
    const resolved = own.has("vm")
      ? resolveTarget({ ...parsed, options: { ...parsed.options, vm: false } }, io.env)
      : resolveTarget(parsed, io.env)
    target = resolved.target
    const { timeout, tokenFile } = Opt.decodeAll(
      { timeout: globalOptions.timeout, tokenFile: globalOptions.tokenFile },
      parsed,
      io.env,
    )
    const args = checkArgs(command, parsed, full)
    const values = Opt.decodeAll(command.options, parsed, io.env)
    return await runCommand(
      command,
      full,
      args,
      values,
      { target: resolved.target, vtl2: resolved.vtl2, json, timeoutMs: timeout, tokenFile },
      io,
      out,
      signal,
    )
  } catch (error) {
    const failure = describe(error, { action: "run", ...(target !== undefined ? { target } : {}) })
    out.error(failure, target)
    return failure.exitCode
  }
}

const runCommand = async (
  command: Command,
  full: string,
  args: ReadonlyArray<string | undefined>,
  values: Record<string, unknown>,
  globals: Globals,
  io: Io,
  out: Output,
  outer: AbortSignal | undefined,
): Promise<number> => {
  if (command.needsAgent && globals.target === undefined) {
    throw new UsageError({
      detail: `no target for \`${full}\`: pass --target T (e.g. -H unix:/tmp/agent.sock), --vm NAME, or set CUVETTE_TARGET`,
    })
  }
  const controller = new AbortController()
  const onAbort = () => controller.abort(outer?.reason)
  outer?.addEventListener("abort", onAbort, { once: true })
  if (outer?.aborted === true) onAbort()
  // A reader that went away (`cuvette exec -- yes | head -1`) stops the command like SIGPIPE would.
  const onStdoutError = (error: { code?: unknown }) => {
    if (error.code === "EPIPE") controller.abort(StdoutClosed)
  }
  if (command.streamsStdout === true) io.stdout.on("error", onStdoutError)
  const stopped = (cancelled?: string): number => {
    const reason: unknown = controller.signal.reason
    if (reason !== StdoutClosed)
      out.note(cancelled !== undefined ? `interrupted; ${cancelled}` : "interrupted")
    return stopCode(reason)
  }
  let agent: Promise<Agent> | undefined
  const target = globals.target ?? ""
  const ctx: AgentContext<ReadonlyArray<string | undefined>> = {
    io,
    out,
    globals,
    args,
    command: full,
    signal: controller.signal,
    stopped,
    target,
    connect: () => {
      agent ??= ClientApi.load().then((client) =>
        client
          .connect(target, {
            // exec's --timeout bounds the guest process, and the connection too: never longer than D (0: none).
            timeoutMs:
              globals.timeoutMs === undefined ||
              (command.timeoutKillsGuest === true && globals.timeoutMs === 0)
                ? DEFAULT_CONNECT_MS
                : command.timeoutKillsGuest === true
                  ? Math.min(globals.timeoutMs, DEFAULT_CONNECT_MS)
                  : globals.timeoutMs,
            ...(globals.vtl2 ? { vtl2: true } : {}),
            ...(globals.tokenFile !== undefined ? { tokenFile: globals.tokenFile } : {}),
            signal: controller.signal,
          })
          .catch((error: unknown) => {
            throw wrap(error, { action: "connect", target })
          }),
      )
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
    if (command.handlesInterrupt === true) return await command.run(ctx, values)
    const aborted = new Promise<"aborted">((resolve) => {
      if (controller.signal.aborted) resolve("aborted")
      controller.signal.addEventListener("abort", () => resolve("aborted"), { once: true })
    })
    const code = await Promise.race([command.run(ctx, values), aborted])
    return code === "aborted" ? stopped() : code
  } catch (error) {
    if (controller.signal.aborted) return stopped()
    throw ownFailure(command, error, globals.target)
  } finally {
    outer?.removeEventListener("abort", onAbort)
    io.stdout.off("error", onStdoutError)
    if (agent !== undefined) {
      // Closing tells the agent to cancel what is still running (an interrupted copy removes its temp file).
      await agent.then(
        (a) => Promise.race([a.close(), new Promise((r) => setTimeout(r, 2000).unref())]),
        () => undefined,
      )
    }
  }
}

/** A failure of cuvette itself, with the exit code the command reserves for those (exec: 255). */
const ownFailure = (command: Command, error: unknown, target: string | undefined): unknown => {
  if (command.failureExitCode === undefined) return error
  const e = wrap(error, { action: "run", ...(target !== undefined ? { target } : {}) })
  // Unreachable (3), usage (2) and denied (4) stay, so scripts can tell "no agent" from "the command failed".
  if (e.exitCode === ExitCode.Unreachable || e.exitCode === ExitCode.Usage || e.exitCode === ExitCode.Denied)
    return e
  return new CliError({
    code: e.code,
    detail: e.detail,
    exitCode: command.failureExitCode,
    cause: error,
    ...(e.path !== undefined ? { path: e.path } : {}),
  })
}
