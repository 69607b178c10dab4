// `cuvette shell [-- PROG ARGS...]` and `cuvette exec --tty`: a guest command under a pseudo-terminal.
// This terminal goes raw while it runs (keys, Ctrl-C included, go to the guest, as with ssh), its size
// follows this window, and the exit code is the guest command's. Needs the Bun-built agent on
// a Linux guest.
import type { ExecOptions, Process } from "../internal/client.js"
import { define, type AgentContext, type Context } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { UsageError } from "../internal/errors.js"
import { writeAll } from "../internal/output.js"
import * as ExitCode from "../ExitCode.js"
import { execFailure, exitCodeOf, guestTimeout } from "../internal/guestProcess.js"

/** The guest's login shell: bash where it exists, else sh (busybox, VTL2). */
export const DEFAULT_SHELL = [
  "/bin/sh",
  "-c",
  "if command -v bash >/dev/null 2>&1; then exec bash -l; fi; exec sh -l",
] as const

type TtyIn = Context["io"]["stdin"] & { setRawMode?: (raw: boolean) => unknown }
type TtyOut = Context["io"]["stdout"] & { readonly rows?: number }

/** Runs `argv` under a guest terminal sized like this one; resolves with the exit code. */
export const runTerminal = async (
  ctx: AgentContext,
  argv: ReadonlyArray<string>,
  opts: Pick<ExecOptions, "env" | "cwd" | "timeoutMs">,
): Promise<number> => {
  if (ctx.out.json)
    throw new UsageError({
      detail: "--json and a terminal do not mix: drop --tty, or use `cuvette exec` for JSON output",
    })
  const stdin = ctx.io.stdin as TtyIn
  const stdout = ctx.io.stdout as TtyOut
  const size = () => ({
    rows: stdout.rows || Number(ctx.io.env.LINES) || 24,
    cols: stdout.columns || Number(ctx.io.env.COLUMNS) || 80,
  })
  const agent = await ctx.connect().catch((e: unknown) => {
    throw execFailure(e, ctx, argv[0]!)
  })
  if (ctx.signal.aborted) return ctx.stopped()
  let proc: Process
  try {
    proc = agent.spawn(argv, {
      ...opts,
      stdin: "pipe",
      stderr: "null",
      pty: { ...size(), term: ctx.io.env.TERM ?? "xterm-256color" },
    })
  } catch (e) {
    throw execFailure(e, ctx, argv[0]!)
  }
  // A real terminal goes raw: the guest's line discipline does the echo and the editing.
  const raw = stdin.isTTY === true && typeof stdin.setRawMode === "function"
  if (raw) stdin.setRawMode!(true)
  proc.stdin!.on("error", () => undefined)
  stdin.pipe(proc.stdin!)
  const onResize = () => {
    const { rows, cols } = size()
    proc.resize(rows, cols)
  }
  // A terminal's stdout emits "resize" after it has re-read its size on SIGWINCH.
  if (stdout.isTTY) stdout.on("resize", onResize)
  // Piped input (not raw): Ctrl-C here cancels the guest command, as in exec.
  let interrupted = false
  const onAbort = () => {
    interrupted = true
    proc.cancel()
  }
  ctx.signal.addEventListener("abort", onAbort, { once: true })
  try {
    const output = (async () => {
      for await (const chunk of proc.stdout!) await writeAll(stdout, chunk as Uint8Array)
    })()
    const result = await proc.exited.catch((e: unknown) => {
      if (interrupted) return undefined
      throw execFailure(e, ctx, argv[0]!)
    })
    await output.catch(() => undefined)
    if (interrupted || result === undefined) return ctx.stopped()
    return exitCodeOf(result)
  } finally {
    ctx.signal.removeEventListener("abort", onAbort)
    stdout.off("resize", onResize)
    stdin.unpipe(proc.stdin!)
    if (raw) stdin.setRawMode!(false)
    stdin.pause()
  }
}

export const command = define({
  name: "shell",
  summary: "an interactive shell in the guest (a pseudo-terminal), or PROG under one",
  usage: "[--cwd D] [-- PROG ARGS...]",
  description:
    "Runs the guest's login shell (bash where it exists, else sh) under a terminal the size of this one, with\n" +
    "this terminal in raw mode: every key, Ctrl-C included, goes to the guest. Exits with the shell's exit code.\n" +
    "Needs the Bun-built agent on a Linux guest. `cuvette exec --tty -- PROG` is the same for one command.",
  options: { cwd: Opt.text("cwd", "D", "working directory in the guest") },
  args: "argv",
  needsAgent: true,
  handlesInterrupt: true,
  streamsStdout: true,
  failureExitCode: ExitCode.ExecFailed,
  examples: ["cuvette -H serial:/tmp/vm/agent.sock shell", "cuvette -H unix:/tmp/agent.sock shell -- top"],
  run: async (ctx, { cwd }) => {
    const argv = ctx.args.length > 0 ? ctx.args : DEFAULT_SHELL
    return runTerminal(ctx, argv, {
      ...(cwd !== undefined ? { cwd } : {}),
      ...guestTimeout(ctx.globals.timeoutMs),
    })
  },
})
