// What a command is (its spec and run function) and what it gets to run (the context): the parsed
// options, the output channel, the target, a lazily opened agent connection and an abort signal.
import type { OptionSpec, Parsed } from "./args.js"
import type { Agent } from "./client.js"
import { describe, CliError, type FailureContext } from "./errors.js"
import type { Io, Output } from "./output.js"

/** The global options, resolved. */
export interface Globals {
  /** The target string, when one was given (flag, --vm or CUVETTE_TARGET). */
  readonly target: string | undefined
  /** Set VTL2 on Hyper-V targets. */
  readonly vtl2: boolean
  readonly json: boolean
  readonly timeoutMs: number | undefined
  readonly tokenFile: string | undefined
}

/** Everything a command runs with. */
export interface Context {
  readonly io: Io
  readonly out: Output
  readonly globals: Globals
  readonly parsed: Parsed
  /** How the command is typed ("cuvette exec"), for messages. */
  readonly command: string
  /** Aborted on Ctrl-C (SIGINT) or SIGTERM. */
  readonly signal: AbortSignal
  /** The target; a usage error (exit 2) saying how to set it when there is none. */
  target(): string
  /** Connects to the target once (later calls reuse the connection). */
  connect(): Promise<Agent>
  /** Runs `f`, turning a failure into a worded {@link CliError} naming `what` (action, guest path). */
  attempt<A>(what: Omit<FailureContext, "target">, f: () => Promise<A>): Promise<A>
}

/** A command as the user types it. */
export interface Command {
  readonly name: string
  /** One line for the command list. */
  readonly summary: string
  /** What follows the command name in the usage line. */
  readonly usage: string
  /** A paragraph for `--help`. */
  readonly description?: string
  readonly options: ReadonlyArray<OptionSpec>
  /** Options end at the first positional (exec: the rest is the guest's argv). */
  readonly stopAtPositional?: boolean
  /** Examples for `--help`, each runnable as written. */
  readonly examples: ReadonlyArray<string>
  /** The command cancels its own work on Ctrl-C and returns its own exit code. */
  readonly handlesInterrupt?: boolean
  /** Subcommands (deploy image, deploy vtl2). */
  readonly subcommands?: ReadonlyArray<Command>
  /** Runs the command; resolves to the exit code. */
  run(ctx: Context): Promise<number>
}

/** Wraps a failure in a worded CliError (see {@link describe}). */
export const wrap = (error: unknown, ctx: FailureContext): CliError => {
  if (error instanceof CliError) return error
  const f = describe(error, ctx)
  return new CliError({
    code: f.code,
    detail: f.message,
    exitCode: f.exitCode,
    cause: error,
    ...(f.path !== undefined ? { path: f.path } : {}),
  })
}
