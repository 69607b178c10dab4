// How a guest process's end becomes cuvette's exit code, shared by `exec` and the terminal commands.
import { MAX_TIMEOUT_MS } from "@cuvette/protocol/Operations"
import * as ExitCode from "../ExitCode.js"
import type { ExecResult } from "./client.js"
import type { AgentContext } from "./command.js"
import { wrap } from "./command.js"
import { CliError, UsageError } from "./errors.js"

/**
 * The exit code for a finished guest process: its own, 128+N for signal N; a timed-out one that exited
 * by itself on the timeout's signal exits 124 (as GNU timeout does), never 0.
 */
export const exitCodeOf = (
  r: Pick<ExecResult, "exitCode" | "signal"> & { readonly timedOut?: boolean },
): number =>
  r.signal !== null
    ? ExitCode.fromSignal(r.signal)
    : r.timedOut === true
      ? ExitCode.TimedOut
      : r.exitCode !== null
        ? r.exitCode
        : ExitCode.ExecFailed

const hours = (ms: number) => `${Math.floor((ms / 3_600_000) * 10) / 10}h`

/**
 * The guest timeout `--timeout` asks for: none for 0 (as GNU timeout), a usage error above the
 * protocol's maximum (the agent would refuse it).
 */
export const guestTimeout = (timeoutMs: number | undefined): { timeoutMs?: number } => {
  if (timeoutMs === undefined || timeoutMs === 0) return {}
  if (timeoutMs > MAX_TIMEOUT_MS)
    throw new UsageError({
      detail: `--timeout of ${hours(timeoutMs)} is above the longest guest timeout, ${hours(MAX_TIMEOUT_MS)} (${MAX_TIMEOUT_MS} ms, about 24.8 days); use 0 for none`,
    })
  return { timeoutMs }
}

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
