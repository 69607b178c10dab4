// `cuvette exec -- PROG ARGS...`: runs a guest command, streams its output live, forwards piped stdin
// and exits with its exit code (128+N for signal N; 255 when cuvette itself fails, as ssh does).
// Ctrl-C cancels the guest process (the agent kills its process group) and exits 130.
import type { Readable } from "node:stream"
import type { ExecOptions, Process, SpawnOptions } from "../internal/client.js"
import { define, type Context } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { UsageError } from "../internal/errors.js"
import { execFailure, exitCodeOf } from "../internal/guestProcess.js"
import { encodeBytes, writeAll } from "../internal/output.js"
import * as ExitCode from "../ExitCode.js"
import { runTerminal } from "./shell.js"

/** Parses `-e K=V`, `--unset K` and `--clear-env` into the exec env option. */
export const envOption = (
  sets: ReadonlyArray<string>,
  unset: ReadonlyArray<string>,
  clear: boolean,
): ExecOptions["env"] => {
  if (sets.length === 0 && unset.length === 0 && !clear) return undefined
  const set: Record<string, string> = {}
  for (const kv of sets) {
    const eq = kv.indexOf("=")
    if (eq <= 0)
      throw new UsageError({ detail: `-e ${kv}: write it as NAME=VALUE; see \`cuvette exec --help\`` })
    set[kv.slice(0, eq)] = kv.slice(eq + 1)
  }
  return {
    ...(sets.length > 0 ? { set } : {}),
    ...(unset.length > 0 ? { unset } : {}),
    ...(clear ? { clear } : {}),
  }
}

const pump = async (from: Readable | null, to: Context["io"]["stdout"]): Promise<void> => {
  if (from === null) return
  for await (const chunk of from) await writeAll(to, chunk as Uint8Array)
}

export const command = define({
  name: "exec",
  summary: "run a command in the guest, streaming its output; exits with its exit code",
  usage:
    "[-e K=V]... [--unset K]... [--clear-env] [--cwd D] [--tty] [--stderr-to-stdout] [--timeout D] -- PROG ARGS...",
  description:
    "stdout and stderr stream live to this terminal's stdout and stderr; stdin is forwarded when it is piped\n" +
    "(not a terminal). The exit code is the guest command's own, 128+N when signal N ended it, and 255 when\n" +
    "cuvette itself failed (3 when the agent is unreachable). Ctrl-C kills the guest process group and exits 130.",
  options: {
    env: Opt.list("env", "K=V", "set an environment variable (repeatable)", { short: "e" }),
    unset: Opt.list("unset", "K", "remove an environment variable (repeatable)"),
    clearEnv: Opt.flag("clear-env", "start from an empty environment"),
    cwd: Opt.text("cwd", "D", "working directory in the guest"),
    tty: Opt.flag("tty", "run under a pseudo-terminal sized like this one (raw keys; see `cuvette shell`)"),
    stderrToStdout: Opt.flag("stderr-to-stdout", "merge the command's stderr into its stdout"),
  },
  args: "argv",
  needsAgent: true,
  handlesInterrupt: true,
  streamsStdout: true,
  timeoutKillsGuest: true,
  failureExitCode: ExitCode.ExecFailed,
  examples: [
    "cuvette -t unix:/tmp/agent.sock exec -- uname -a",
    "cuvette -t unix:/tmp/agent.sock exec -e GREETING=hi -- sh -c 'echo $GREETING from $(hostname)'",
    "printf 'a\\nb\\n' | cuvette -t unix:/tmp/agent.sock exec -- wc -l",
    "cuvette -t unix:/tmp/agent.sock --json exec -- cat /etc/hostname",
  ],
  run: async (ctx, options) => {
    const argv = ctx.args
    if (argv.length === 0) {
      throw new UsageError({
        detail: "missing PROG for `cuvette exec`; write `cuvette exec -- PROG ARGS...`",
      })
    }
    const env = envOption(options.env, options.unset, options.clearEnv)
    const cwd = options.cwd
    if (options.tty) {
      if (options.stderrToStdout)
        throw new UsageError({
          detail: "--tty already sends stderr to the terminal: drop --stderr-to-stdout",
        })
      return runTerminal(ctx, argv, {
        ...(env !== undefined ? { env } : {}),
        ...(cwd !== undefined ? { cwd } : {}),
        ...(ctx.globals.timeoutMs !== undefined ? { timeoutMs: ctx.globals.timeoutMs } : {}),
      })
    }
    const piped = ctx.io.stdin.isTTY !== true
    const opts: Pick<ExecOptions, "env" | "cwd" | "timeoutMs"> & Pick<SpawnOptions, "stderr"> = {
      ...(env !== undefined ? { env } : {}),
      ...(cwd !== undefined ? { cwd } : {}),
      ...(ctx.globals.timeoutMs !== undefined ? { timeoutMs: ctx.globals.timeoutMs } : {}),
      ...(options.stderrToStdout ? { stderr: "stdout" as const } : {}),
    }
    const target = ctx.target
    const agent = await ctx.connect().catch((e: unknown) => {
      throw execFailure(e, ctx, argv[0])
    })
    if (ctx.signal.aborted) return ExitCode.Interrupted

    if (ctx.out.json) {
      const run = agent.exec(argv, { ...opts, ...(piped ? { stdin: ctx.io.stdin } : {}) })
      const aborted = new Promise<"aborted">((resolve) =>
        ctx.signal.addEventListener("abort", () => resolve("aborted"), { once: true }),
      )
      const r = await Promise.race([run, aborted]).catch((e: unknown) => {
        throw execFailure(e, ctx, argv[0])
      })
      if (r === "aborted") {
        ctx.out.result({ error: { code: "INTERRUPTED", message: "interrupted", target } })
        return ExitCode.Interrupted
      }
      const out = encodeBytes(r.stdout)
      const err = encodeBytes(r.stderr)
      ctx.out.result({
        exitCode: r.exitCode,
        signal: r.signal,
        timedOut: r.timedOut,
        durationMs: r.durationMs,
        stdout: out.text,
        stderr: err.text,
        ...(out.encoding === "base64" ? { stdoutEncoding: "base64" } : {}),
        ...(err.encoding === "base64" ? { stderrEncoding: "base64" } : {}),
      })
      return exitCodeOf(r)
    }

    let proc: Process
    try {
      proc = agent.spawn(argv, { ...opts, stdin: piped ? "pipe" : "null" })
    } catch (e) {
      throw execFailure(e, ctx, argv[0])
    }
    let interrupted = false
    if (proc.stdin !== null) {
      // pipe() honours the agent's credit; a guest that exits without reading its input is not an error.
      proc.stdin.on("error", () => undefined)
      ctx.io.stdin.pipe(proc.stdin)
    }
    const onAbort = () => {
      interrupted = true
      proc.cancel()
    }
    ctx.signal.addEventListener("abort", onAbort, { once: true })
    try {
      const streams = Promise.all([pump(proc.stdout, ctx.io.stdout), pump(proc.stderr, ctx.io.stderr)])
      // After Ctrl-C, give the agent a moment to confirm the kill, but never hang on it.
      const deadline = new Promise<undefined>((resolve) =>
        ctx.signal.addEventListener("abort", () => setTimeout(() => resolve(undefined), 3000).unref(), {
          once: true,
        }),
      )
      const result = await Promise.race([
        proc.exited.catch((e: unknown) => {
          if (interrupted) return undefined
          throw execFailure(e, ctx, argv[0])
        }),
        deadline,
      ])
      if (interrupted) {
        ctx.out.note(`interrupted; cancelled \`${argv[0]}\` on ${target}`)
        return ExitCode.Interrupted
      }
      // Output may still be in flight after the exit status; print all of it before exiting.
      await streams.catch(() => undefined)
      if (result === undefined) return ExitCode.ExecFailed
      if (result.timedOut) {
        ctx.out.note(
          `\`${argv[0]}\` timed out after ${ctx.globals.timeoutMs ?? 0} ms on ${target} and was killed (${result.signal ?? "exit"})`,
        )
      }
      return exitCodeOf(result)
    } finally {
      ctx.signal.removeEventListener("abort", onAbort)
    }
  },
})
