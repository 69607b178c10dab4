/**
 * exec under a pseudo-terminal (`cuvette exec --tty`, `cuvette shell`), through Bun's PTY (`Bun.spawn` with
 * `terminal`), so it needs the Bun-built agent on Linux; under Node, or on Windows, it is UNSUPPORTED. The
 * terminal's output is the call's stdout (stderr is the same terminal), the call's stdin is typed into it,
 * Resize inputs resize it, and the process leads its own session: one kill of its group reaches
 * everything it started, as with exec.
 */
import { Errors, type Operations, type Session } from "@cuvette/protocol"
import { Effect, Exit } from "effect"
import * as fs from "node:fs"
import { isSignal, signalGroup, startTimeout } from "../internal/processGroup.js"
import { runFile } from "../internal/runFile.js"
import type { PtyBackend, Subprocess, Terminal } from "./ptyBackend.js"

// Bun's PTY, loaded only inside Bun: bunPty.ts reaches Bun's API, typechecked against bun-types in its
// own project (tsconfig.bun.json). Bun's own `require` loads it (and bundles it into `bun build
// --compile` executables); under Node it is never loaded.
const bun: PtyBackend | undefined =
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  process.versions.bun !== undefined ? (require("./bunPty.js") as PtyBackend) : undefined

/** True where this agent can run commands under a terminal (listed as "pty" in info's capabilities). */
export const supported = (): boolean => process.platform !== "win32" && typeof bun?.Terminal === "function"

// asm-generic/termbits.h: c_lflag ICANON (x86-64 and arm64 agree).
const ICANON = 0o2
const END_OF_FILE = "\x04"
const ENTER = "\r"
/** After the process exited, output still in the terminal is delivered once it is quiet this long. */
const QUIET_AFTER_EXIT_MS = 100
const MAX_DRAIN_MS = 2_000

export interface Prepared {
  readonly env: NodeJS.ProcessEnv
  readonly cwd: string
  readonly timeout: Parameters<typeof startTimeout>[1]
  readonly log: (line: string) => void
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const DEVPTS = "/dev/pts"

/**
 * Terminals need devpts on /dev/pts. Minimal guests (a busybox initramfs, possibly VTL2) may not mount it;
 * an agent running as root then mounts it, as init would have. Fails with what to do otherwise.
 */
const ensureDevpts = async (log: (line: string) => void): Promise<Errors.AgentError | undefined> => {
  if (process.platform !== "linux" || fs.existsSync(`${DEVPTS}/ptmx`)) return undefined
  const missing = `no pseudo-terminals on this guest: devpts is not mounted on ${DEVPTS}`
  if (process.getuid?.() !== 0)
    return Errors.make(
      "UNSUPPORTED",
      `${missing}; mount it (mount -t devpts devpts ${DEVPTS}) or run the agent as root`,
    )
  fs.mkdirSync(DEVPTS, { recursive: true })
  const r = await runFile("mount", ["-t", "devpts", "-o", "mode=620,ptmxmode=666", "devpts", DEVPTS])
  if (r.code !== 0)
    return Errors.make(
      "UNSUPPORTED",
      `${missing}, and mounting it failed: ${r.error?.message ?? r.stderr.trim()}`,
    )
  log(`mounted devpts on ${DEVPTS} for terminals`)
  return undefined
}

// x86-64 and arm64 numbers, as /proc/PID/syscall shows them, of read(2) and of the calls that wait for
// input on descriptors (select, poll, pselect6, ppoll: bash's readline waits in pselect6).
const READ_SYSCALL: Partial<Record<string, number>> = { x64: 0, arm64: 63 }
const WAIT_SYSCALLS: Partial<Record<string, ReadonlyArray<number>>> = {
  x64: [23, 7, 270, 271],
  arm64: [72, 73],
}

// Fields of /proc/PID/stat after "PID (comm) ": state ppid pgrp session tty_nr tpgid ...
const statFields = (pid: number): Array<string> => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
}

/** `pid` and every process below it. */
const descendants = (pid: number): Array<number> => {
  const all = [pid]
  for (let i = 0; i < all.length; i++) {
    try {
      const children = fs.readFileSync(`/proc/${all[i]}/task/${all[i]}/children`, "utf8").trim()
      if (children.length > 0) all.push(...children.split(" ").map(Number))
    } catch {
      // it exited meanwhile
    }
  }
  return all
}

/** Whether `pid` is blocked reading (or waiting to read) the terminal. */
const readsTerminal = (pid: number): boolean => {
  const [nr, arg0] = fs.readFileSync(`/proc/${pid}/syscall`, "utf8").trim().split(" ")
  if (nr === "running") return false
  const onTerminal = (fd: number) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(`${DEVPTS}/`)
  if (Number(nr) === READ_SYSCALL[process.arch]) return onTerminal(Number(arg0))
  return (WAIT_SYSCALLS[process.arch] ?? []).includes(Number(nr)) && onTerminal(0)
}

/**
 * Whether a process of the terminal's foreground group (the shell at its prompt, or the job it runs:
 * `cat` under `sh -c 'cat; echo done'`) is blocked waiting for terminal input, i.e. has taken all the
 * input so far; undefined when /proc cannot tell.
 */
const waitsForInput = (leader: number): boolean | undefined => {
  try {
    const foreground = Number(statFields(leader)[5])
    return descendants(leader).some((pid) => {
      try {
        return Number(statFields(pid)[2]) === foreground && readsTerminal(pid)
      } catch (e) {
        // Gone meanwhile: not waiting. Not ours to read: cannot tell.
        if ((e as NodeJS.ErrnoException).code === "ENOENT" || (e as NodeJS.ErrnoException).code === "ESRCH")
          return false
        throw e
      }
    })
  } catch {
    return undefined
  }
}

// asm-generic/termbits.h: c_lflag ISIG.
const ISIG = 0o1
const EOF_POLL_MS = 50
const EOF_TRIES = 3

/**
 * The client's input ended (`echo ls | cuvette shell`): type ^D, as a user would, when the program waits
 * for input: a line-mode reader (sh, cat) gets EOF, a line editor (bash's readline, which reads in raw
 * mode) ends on ^D at an empty line. Written any earlier, ^D would sit in the line discipline while the
 * program starts and reach readline as a NUL byte, and bash would never end. A full-screen program
 * (raw, without ISIG: an editor) is left alone. ^D is typed again if the program still waits (in line
 * mode a partial last line takes two). A line editor ignores ^D on a line that is not empty, so input
 * that ended mid-line (`printf 'echo hi' | cuvette shell`) gets Enter first, as `bash < file` would
 * still run that last line.
 */
const endOfInput = async (proc: Subprocess, terminal: Terminal, partialLine: boolean): Promise<void> => {
  let exited = false
  void proc.exited.then(() => (exited = true))
  for (let sent = 0; sent < EOF_TRIES; ) {
    await sleep(EOF_POLL_MS)
    if (exited || terminal.closed) return
    const lineMode = (terminal.localFlags & ICANON) !== 0
    if (!lineMode && (terminal.localFlags & ISIG) === 0) return
    const waits = waitsForInput(proc.pid)
    if (waits === undefined) {
      // No /proc to ask: the line-mode case, at once, as before.
      if (lineMode) terminal.write(END_OF_FILE)
      return
    }
    if (waits && !lineMode && partialLine) {
      terminal.write(ENTER)
      partialLine = false
      await sleep(10 * EOF_POLL_MS)
    } else if (waits) {
      terminal.write(END_OF_FILE)
      sent++
      await sleep(10 * EOF_POLL_MS)
    }
  }
}

/** Whether input ending with `chunk` leaves a line not yet entered. */
const endsMidLine = (chunk: Uint8Array): boolean => {
  const last = chunk[chunk.length - 1]
  return last !== 0x0a && last !== 0x0d && last !== 0x04
}

/** Runs `args.argv` under a terminal of `args.pty`'s size. */
export const execPty = (
  args: Operations.Args<"exec">,
  call: Session.ServerCall<"exec">,
  { env, cwd, timeout, log }: Prepared,
) =>
  Effect.gen(function* () {
    const size = args.pty!
    const program = args.argv[0]
    if (!supported() || !bun)
      return yield* Effect.fail(
        Errors.make(
          "UNSUPPORTED",
          process.platform === "win32"
            ? "a terminal (--tty, shell) is not supported on Windows guests yet: run the command without one"
            : "a terminal (--tty, shell) needs the Bun-built agent (npm run build:agent); this one runs on Node",
        ),
      )
    const noDevpts = yield* Effect.promise(() => ensureDevpts(log))
    if (noDevpts) return yield* Effect.fail(noDevpts)
    const started = Date.now()
    // Output goes out in order, each chunk waiting for the client's credit. Bun's terminal cannot be
    // paused, so output a stalled client has not taken waits here (a terminal's output is rarely bulk).
    let sending: Promise<unknown> = Promise.resolve()
    let lastOutput = Date.now()
    const onData = (_: Terminal, data: Uint8Array) => {
      lastOutput = Date.now()
      const copy = data.slice()
      sending = sending.then(() => call.stdout.write(copy)).catch(() => undefined)
    }
    const proc = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          bun.spawn(args.argv, {
            cwd,
            // An explicit TERM in the request's env wins over the client terminal's.
            env: { ...env, TERM: args.env?.set?.TERM ?? size.term ?? "xterm-256color" },
            terminal: { cols: size.cols, rows: size.rows, data: onData },
          }),
        catch: (cause) => {
          const code = (cause as NodeJS.ErrnoException).code
          return code === "ENOENT"
            ? Errors.make(
                "ENOENT",
                `cannot run ${Errors.quote(program)}: program not found in PATH=${Errors.quote(env.PATH ?? "(unset)")}`,
              )
            : Errors.fromUnknown(cause, `cannot run ${Errors.quote(program)} under a terminal`)
        },
      }),
      (proc, exit) =>
        Effect.sync(() => {
          if (Exit.isFailure(exit)) signalGroup(proc.pid, "SIGKILL")
          if (!proc.terminal.closed) proc.terminal.close()
        }),
    )
    const terminal = proc.terminal
    call.emit({ _tag: "Started", pid: proc.pid })
    call.onInput((input) => {
      if (input._tag === "Resize") terminal.resize(input.cols, input.rows)
      else if (isSignal(input.signal)) signalGroup(proc.pid, input.signal)
    })
    void (async () => {
      let partialLine = false
      try {
        for await (const chunk of call.stdin) {
          if (chunk.length > 0) partialLine = endsMidLine(chunk)
          if (!terminal.closed) terminal.write(chunk)
        }
      } catch {
        return // the operation ended
      }
      if (args.stdin === "pipe") await endOfInput(proc, terminal, partialLine)
    })()

    return yield* Effect.promise(async () => {
      const timer = startTimeout(proc.pid, timeout)
      try {
        await proc.exited
      } finally {
        timer.clear()
      }
      // As for exec: background jobs end with their leader.
      signalGroup(proc.pid, "SIGKILL")
      const exitedAt = Date.now()
      while (Date.now() - lastOutput < QUIET_AFTER_EXIT_MS && Date.now() - exitedAt < MAX_DRAIN_MS)
        await sleep(QUIET_AFTER_EXIT_MS / 2)
      await sending
      return {
        exitCode: proc.exitCode,
        signal: proc.signalCode,
        ...timer.outcome(),
        durationMs: Date.now() - started,
        pid: proc.pid,
      } satisfies Operations.ExecResult
    })
  })
