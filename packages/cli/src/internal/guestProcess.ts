// How a guest process's end becomes cuvette's exit code, shared by `exec` and the terminal commands.
import * as ExitCode from "../ExitCode.js"
import type { ExecResult } from "./client.js"
import type { AgentContext } from "./command.js"
import { wrap } from "./command.js"
import type { CliError } from "./errors.js"

/** The exit code for a finished guest process: its own, 128+N for signal N. */
export const exitCodeOf = (r: Pick<ExecResult, "exitCode" | "signal">): number =>
  r.exitCode !== null ? r.exitCode : r.signal !== null ? ExitCode.fromSignal(r.signal) : ExitCode.ExecFailed

/** A failure to run `prog`, worded as such (the dispatcher gives it exec's exit code, 255). */
export const execFailure = (error: unknown, ctx: AgentContext<unknown>, prog: string): CliError =>
  wrap(error, { action: `run \`${prog}\``, target: ctx.target })
