// How a guest process's end becomes cuvette's exit code, shared by `exec` and the terminal commands.
import * as ExitCode from "../ExitCode.js"
import type { ExecResult } from "./client.js"
import type { Context } from "./command.js"
import { wrap } from "./command.js"
import { CliError } from "./errors.js"

/** The exit code for a finished guest process: its own, 128+N for signal N. */
export const exitCodeOf = (r: Pick<ExecResult, "exitCode" | "signal">): number =>
  r.exitCode !== null ? r.exitCode : r.signal !== null ? ExitCode.fromSignal(r.signal) : ExitCode.ExecFailed

/** A failure to run `prog`, with the exit code exec reserves for cuvette's own failures. */
export const execFailure = (error: unknown, ctx: Context, prog: string): CliError => {
  const e = wrap(error, { action: `run \`${prog}\``, target: ctx.target() })
  // Unreachable stays 3 so scripts can tell "no agent" from "the command failed"; other failures of
  // cuvette itself are 255, never a code the guest command could have returned.
  return e.exitCode === ExitCode.Unreachable || e.exitCode === ExitCode.Usage
    ? e
    : new CliError({ code: e.code, detail: e.detail, exitCode: ExitCode.ExecFailed, cause: error })
}
