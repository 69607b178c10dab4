// What a command is: a typed definition (its options declared once, its positional arguments by name,
// flags for how the dispatcher treats it) and what its handler runs with (the context).
import * as ExitCode from "../ExitCode.js"
import type { Agent } from "./client.js"
import { describe, CliError, type FailureContext } from "./errors.js"
import type { OptionSet, Values } from "./option.js"
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

/** Everything a handler runs with. */
export interface Context<A = ReadonlyArray<string>> {
  readonly io: Io
  readonly out: Output
  readonly globals: Globals
  /** The positional arguments, checked against the definition's `args`. */
  readonly args: A
  /** How the command is typed ("cuvette exec"), for messages. */
  readonly command: string
  /** Aborted on Ctrl-C (SIGINT), SIGTERM, or when our stdout's reader went away. */
  readonly signal: AbortSignal
  /**
   * The exit code after {@link signal} aborted the work (130 for Ctrl-C, 143 for SIGTERM, 141 when our
   * stdout's reader went away), with a note saying what was cancelled (none for a closed stdout: a
   * pipeline member that stops early says nothing).
   */
  stopped(cancelled?: string): number
  /** Runs `f`, turning a failure into a worded {@link CliError} naming `what` (action, guest path). */
  attempt<R>(what: Omit<FailureContext, "target">, f: () => Promise<R>): Promise<R>
}

/** The context of a command that talks to the agent: it has a target and a connection. */
export interface AgentContext<A = ReadonlyArray<string>> extends Context<A> {
  readonly target: string
  /** Connects to the target once (later calls reuse the connection; the dispatcher closes it). */
  connect(): Promise<Agent>
}

/** The abort reason when our stdout's reader went away (EPIPE). */
export const StdoutClosed = "EPIPE"

/** The exit code for an abort with `reason`: a signal's name from bin.ts, or {@link StdoutClosed}. */
export const stopCode = (reason: unknown): number =>
  reason === StdoutClosed
    ? ExitCode.BrokenPipe
    : reason === "SIGTERM"
      ? ExitCode.Terminated
      : ExitCode.Interrupted

/**
 * Positional names: "PATH" is required, "PATH?" optional; "argv" takes everything after the options;
 * "list" takes any number of positionals, with options among them.
 */
type ArgNames = ReadonlyArray<string> | "argv" | "list"

/** The handler's view of its positional arguments. */
export type ArgValues<P extends ArgNames> = P extends "argv" | "list"
  ? ReadonlyArray<string>
  : { readonly [K in keyof P]: P[K] extends `${string}?` ? string | undefined : string }

/** How the dispatcher treats a command. */
export interface Behaviour {
  /** Needs a target: a usage error before the handler when there is none; the handler may connect. */
  readonly needsAgent: boolean
  /** Cancels its own work on Ctrl-C and returns its own exit code. */
  readonly handlesInterrupt?: boolean
  /** Writes a stream to stdout: when stdout's reader goes away the work is cancelled and we exit 141. */
  readonly streamsStdout?: boolean
  /** `--timeout` bounds the guest process (exec) rather than only the connection. */
  readonly timeoutKillsGuest?: boolean
  /** The exit code of cuvette's own failures other than usage and unreachable (exec: 255, as ssh). */
  readonly failureExitCode?: number
  /** The words the first positional argument may be, for shell completion (else: file names). */
  readonly argWords?: ReadonlyArray<string>
}

/** A command as its module declares it. */
export interface Definition<P extends ArgNames, O extends OptionSet, N extends boolean> extends Behaviour {
  readonly name: string
  /** One line for the command list. */
  readonly summary: string
  /** What follows the command name in the usage line. */
  readonly usage: string
  /** A paragraph for `--help`. */
  readonly description?: string
  /** Examples for `--help`, each runnable as written. */
  readonly examples: ReadonlyArray<string>
  readonly options: O
  readonly args: P
  readonly needsAgent: N
  /** Runs the command; resolves to the exit code. */
  run(
    ctx: N extends true ? AgentContext<ArgValues<P>> : Context<ArgValues<P>>,
    options: Values<O>,
  ): Promise<number>
}

/** A command with its types erased, as the registry and the dispatcher hold it. */
export interface Command extends Behaviour {
  readonly name: string
  readonly summary: string
  readonly usage: string
  readonly description?: string
  readonly examples: ReadonlyArray<string>
  readonly options: OptionSet
  readonly args: ArgNames
  run(ctx: AgentContext<ReadonlyArray<string | undefined>>, options: Record<string, unknown>): Promise<number>
}

/** A command made of subcommands (deploy image, deploy vtl2). */
export interface Group {
  readonly name: string
  readonly summary: string
  readonly usage: string
  readonly examples: ReadonlyArray<string>
  readonly subcommands: ReadonlyArray<Command>
}

/** Declares a command; the handler's options and arguments are typed from the declaration. */
export const define = <const P extends ArgNames, const O extends OptionSet, const N extends boolean>(
  definition: Definition<P, O, N>,
): Command =>
  // The dispatcher decodes options and checks arguments from the same declaration, so the erased
  // handler receives exactly the types it was written for.
  definition as unknown as Command

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
