// How a guest process's end becomes cuvette's exit code, shared by `exec` and the terminal commands.
import * as ExitCode from "../ExitCode.js"
import type { ExecResult } from "./client.js"
import type { AgentContext } from "./command.js"
import { wrap } from "./command.js"
import { CliError } from "./errors.js"

/** The exit code for a finished guest process: its own, 128+N for signal N. */
export const exitCodeOf = (r: Pick<ExecResult, "exitCode" | "signal">): number =>
  r.exitCode !== null ? r.exitCode : r.signal !== null ? ExitCode.fromSignal(r.signal) : ExitCode.ExecFailed

/** The agent's words for a working directory that is missing or not a directory (not the program's fault). */
const CWD_PROBLEM = /^(working directory .*): no process was started$/

/** A failure to run `prog`, worded as such (the dispatcher gives it exec's exit code, 255). */
export const execFailure = (error: unknown, ctx: AgentContext<unknown>, prog: string): CliError => {
  const e = error as { _tag?: unknown; code?: unknown; message?: unknown }
  const cwd = e?._tag === "AgentError" && typeof e.message === "string" ? CWD_PROBLEM.exec(e.message) : null
  if (cwd !== null)
    return new CliError({
      code: String(e.code),
      detail: `${cwd[1]} on ${ctx.target}: \`${prog}\` was not started`,
      exitCode: ExitCode.Failed,
      cause: error,
    })
  return wrap(error, { action: `run \`${prog}\``, target: ctx.target })
}
