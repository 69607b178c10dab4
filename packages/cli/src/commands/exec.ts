// `cuvette exec -- PROG ARGS...`: runs a guest command, streams its output live, forwards piped stdin
// and exits with its exit code (128+N for signal N; 255 when cuvette itself fails, as ssh does).
// Ctrl-C cancels the guest process (the agent kills its process group) and exits 130.
import type { Readable } from "node:stream"
import type { ExecOptions, Process, SpawnOptions } from "../internal/client.js"
import { type AgentContext, define, type Context } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { UsageError } from "../internal/errors.js"
import { execFailure, exitCodeOf, guestTimeout } from "../internal/guestProcess.js"
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

/** `exec --detach`: starts PROG in its own session on the guest and prints its pid. */
const runDetached = async (
  ctx: AgentContext<unknown>,
  argv: ReadonlyArray<string>,
  opts: Pick<ExecOptions, "env" | "cwd">,
) => {
  const agent = await ctx.connect().catch((e: unknown) => {
    throw execFailure(e, ctx, argv[0]!)
  })
  const r = await agent.exec(argv, { ...opts, detach: true }).catch((e: unknown) => {
    throw execFailure(e, ctx, argv[0]!)
  })
  if (ctx.out.json) ctx.out.result({ pid: r.pid, detached: true })
  else await writeAll(ctx.io.stdout, new TextEncoder().encode(`${r.pid}\n`))
  return ExitCode.Ok
}

export const command = define({
  name: "exec",
  summary: "run a command in the guest, streaming its output; exits with its exit code",
  usage:
    "[-e K=V]... [--unset K]... [--clear-env] [--cwd D] [-t] [-i] [--stderr-to-stdout] [--timeout D | --detach] -- PROG ARGS...",
  description:
    "stdout and stderr stream live to this terminal's stdout and stderr; stdin is forwarded when it is piped\n" +
    "(not a terminal), or with -i. -t runs it under a terminal, as `ssh -t` and `docker exec -it` do. The exit\n" +
    "code is the guest command's own, 128+N when signal N ended it, and 255 when cuvette itself failed (3 when\n" +
    "the agent is unreachable). Ctrl-C kills the guest process group and exits 130.\n" +
    "Background jobs end with the command: when PROG exits, its process group is killed. --detach starts\n" +
    "PROG to outlive this call instead (a daemon): stdio on /dev/null, its pid printed, exit 0.\n" +
    "--timeout D sends the guest process group SIGKILL after D (0: no timeout; at most 596h); a command that\n" +
    "exits by itself after it exits 124, as GNU timeout does.",
  options: {
    env: Opt.list("env", "K=V", "set an environment variable (repeatable)", { short: "e" }),
    unset: Opt.list("unset", "K", "remove an environment variable (repeatable)"),
    clearEnv: Opt.flag("clear-env", "start from an empty environment"),
    cwd: Opt.text("cwd", "D", "working directory in the guest"),
    tty: Opt.flag("tty", "run under a pseudo-terminal sized like this one (raw keys; see `cuvette shell`)", {
      short: "t",
    }),
    interactive: Opt.flag("interactive", "forward stdin even when it is a terminal (piped stdin always is)", {
      short: "i",
    }),
    stderrToStdout: Opt.flag("stderr-to-stdout", "merge the command's stderr into its stdout"),
    detach: Opt.flag("detach", "start it to outlive this call (a daemon): print its pid and exit 0"),
  },
  args: "argv",
  needsAgent: true,
  handlesInterrupt: true,
  streamsStdout: true,
  timeoutKillsGuest: true,
  failureExitCode: ExitCode.ExecFailed,
  examples: [
    "cuvette -H unix:/tmp/agent.sock exec -- uname -a",
    "cuvette -H unix:/tmp/agent.sock exec -e GREETING=hi -- sh -c 'echo $GREETING from $(hostname)'",
    "printf 'a\\nb\\n' | cuvette -H unix:/tmp/agent.sock exec -- wc -l",
    "cuvette -H unix:/tmp/agent.sock --json exec -- cat /etc/hostname",
    "cuvette -H unix:/tmp/agent.sock exec --detach -- sh -c 'exec my-server >/var/log/my-server.log 2>&1'",
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
    const timeout = guestTimeout(ctx.globals.timeoutMs)
    if (options.detach) {
      const clash = options.tty
        ? "--tty"
        : options.interactive
          ? "-i"
          : timeout.timeoutMs
            ? "--timeout"
            : undefined
      if (clash !== undefined)
        throw new UsageError({
          detail: `--detach starts something that outlives this call: it cannot take ${clash}`,
        })
      return runDetached(ctx, argv, {
        ...(env !== undefined ? { env } : {}),
        ...(cwd !== undefined ? { cwd } : {}),
      })
    }
    if (options.tty) {
      if (options.stderrToStdout)
        throw new UsageError({
          detail: "--tty already sends stderr to the terminal: drop --stderr-to-stdout",
        })
      return runTerminal(ctx, argv, {
        ...(env !== undefined ? { env } : {}),
        ...(cwd !== undefined ? { cwd } : {}),
        ...timeout,
      })
    }
    const forwardStdin = options.interactive || ctx.io.stdin.isTTY !== true
    const opts: Pick<ExecOptions, "env" | "cwd" | "timeoutMs"> & Pick<SpawnOptions, "stderr"> = {
      ...(env !== undefined ? { env } : {}),
      ...(cwd !== undefined ? { cwd } : {}),
      ...timeout,
      ...(options.stderrToStdout ? { stderr: "stdout" as const } : {}),
    }
    const target = ctx.target
    const agent = await ctx.connect().catch((e: unknown) => {
      throw execFailure(e, ctx, argv[0])
    })
    if (ctx.signal.aborted) return ctx.stopped()

    if (ctx.out.json) {
      const run = agent.exec(argv, { ...opts, ...(forwardStdin ? { stdin: ctx.io.stdin } : {}) })
      const aborted = new Promise<"aborted">((resolve) =>
        ctx.signal.addEventListener("abort", () => resolve("aborted"), { once: true }),
      )
      const r = await Promise.race([run, aborted]).catch((e: unknown) => {
        throw execFailure(e, ctx, argv[0])
      })
      if (r === "aborted") {
        ctx.out.result({ error: { code: "INTERRUPTED", message: "interrupted", target } })
        return ctx.stopped()
      }
      const out = encodeBytes(r.stdout)
      const err = encodeBytes(r.stderr)
      ctx.out.result({
        exitCode: r.exitCode,
        signal: r.signal,
        timedOut: r.timedOut,
        ...(r.timeoutSignal !== undefined ? { timeoutSignal: r.timeoutSignal } : {}),
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
      proc = agent.spawn(argv, { ...opts, stdin: forwardStdin ? "pipe" : "null" })
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
        return ctx.stopped(`cancelled \`${argv[0]}\` on ${target}`)
      }
      // Output may still be in flight after the exit status; print all of it before exiting.
      await streams.catch(() => undefined)
      if (result === undefined) return ExitCode.ExecFailed
      if (result.timedOut) {
        const end = result.signal !== null ? `ended by ${result.signal}` : `exited ${result.exitCode ?? "?"}`
        ctx.out.note(
          `\`${argv[0]}\` timed out after ${timeout.timeoutMs ?? 0} ms on ${target}: sent ${result.timeoutSignal ?? "a signal"}, ${end}`,
        )
      }
      return exitCodeOf(result)
    } finally {
      ctx.signal.removeEventListener("abort", onAbort)
    }
  },
})
