/**
 * exec: runs a program in its own process group, streams its stdout/stderr with backpressure, feeds
 * its stdin, and kills the whole group when its leader exits, the operation is cancelled, or the client
 * goes away (a scope finalizer), so nothing the command started outlives it; a timeout signals the
 * group, then kills it if it lives on. Only a detached exec starts something meant to outlive the call.
 */
import { Errors, Hints, Operations, type Session } from "@cuvette/protocol"
import { Effect, Exit } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Readable } from "node:stream"
import { type Config, logger } from "../internal/config.js"
import { drained } from "../internal/drained.js"
import { isSignal, signalGroup, startTimeout } from "../internal/processGroup.js"
import { execPty } from "./Pty.js"

/** After the main process exited, pipes still held open by a background child end the operation once quiet this long. */
const QUIET_AFTER_EXIT_MS = 250

const buildEnv = (env: Operations.ExecArgs["env"]): NodeJS.ProcessEnv => {
  const out: NodeJS.ProcessEnv = env?.clear ? {} : { ...process.env }
  for (const name of env?.unset ?? []) delete out[name]
  Object.assign(out, env?.set ?? {})
  return out
}

/** Finds `program` the way execvp would, so a missing program is reported by name before any wrapper runs. */
const resolveProgram = (program: string, env: NodeJS.ProcessEnv, cwd: string): string | undefined => {
  const ok = (p: string) => {
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return fs.statSync(p).isFile()
    } catch {
      return false
    }
  }
  if (program.includes("/")) return ok(path.resolve(cwd, program)) ? program : undefined
  for (const dir of (env.PATH ?? "/usr/local/bin:/usr/bin:/bin").split(":"))
    if (dir && ok(path.join(dir, program))) return program
  return undefined
}

const notFound = (program: string, env: NodeJS.ProcessEnv) =>
  Errors.make(
    "ENOENT",
    `cannot run ${Errors.quote(program)}: program not found${program.includes("/") ? "" : ` in PATH=${Errors.quote(env.PATH ?? "(unset)")}`}; check the name or give a full path`,
  )

/** The working directory is the problem, not the program (spawn says ENOENT for both). */
const cwdError = (cwd: string, st: fs.Stats | undefined) =>
  Errors.make(
    st ? "ENOTDIR" : "ENOENT",
    `working directory ${cwd} ${st ? "is not a directory" : "does not exist"}: no process was started`,
  )

const statOrUndefined = (p: string) => {
  try {
    return fs.statSync(p)
  } catch {
    return undefined
  }
}

const spawnError = (program: string, env: NodeJS.ProcessEnv, cwd: string, cause: unknown) => {
  const code = (cause as NodeJS.ErrnoException).code
  if (code === "ENOENT" || code === "ENOTDIR") {
    // Checked before spawning, but it may have gone since.
    const st = statOrUndefined(cwd)
    if (!st?.isDirectory()) return cwdError(cwd, st)
  }
  if (code === "ENOENT") return notFound(program, env)
  if (code === "EACCES")
    return Errors.make("EACCES", `cannot run ${Errors.quote(program)}: permission denied (is it executable?)`)
  const known = Errors.codeOf(cause)
  if (known === undefined) return Errors.fromUnknown(cause, `cannot run ${Errors.quote(program)}`)
  const hint = Hints.forCode(known)
  return Errors.make(
    known,
    `cannot run ${Errors.quote(program)}: ${Errors.describeErrno(known)}${hint ? ` (${hint})` : ""}`,
  )
}

const invalid = (message: string) => Errors.make("EINVAL", message)

/** Refuses what no process could be started with, before spawning: EINVAL naming the field. */
const checkArgs = (args: Operations.Args<"exec">): Errors.AgentError | undefined => {
  const nul = (text: string) => text.includes("\0")
  if (args.argv[0] === "") return invalid("argv[0], the program, is empty: give a program name or path")
  const arg = args.argv.findIndex(nul)
  if (arg >= 0) return invalid(`argv[${arg}] contains a NUL byte, which no argument can hold`)
  if (args.cwd !== undefined && nul(args.cwd)) return invalid("cwd contains a NUL byte")
  for (const [name, value] of Object.entries(args.env?.set ?? {})) {
    if (name === "" || name.includes("=") || nul(name))
      return invalid(
        `environment variable name ${JSON.stringify(Errors.quote(name, 60))} is invalid: a name is not empty and has no "=" or NUL byte`,
      )
    if (nul(value))
      return invalid(`the value of environment variable ${Errors.quote(name, 60)} contains a NUL byte`)
  }
  for (const name of args.env?.unset ?? [])
    if (name === "" || name.includes("=") || nul(name))
      return invalid(`cannot unset ${JSON.stringify(Errors.quote(name, 60))}: not a variable name`)
  if ((args.timeoutMs ?? 0) > Operations.MAX_TIMEOUT_MS)
    return invalid(
      `timeoutMs ${args.timeoutMs} is above the maximum of ${Operations.MAX_TIMEOUT_MS} ms (about 24.8 days); use 0 for no timeout`,
    )
  if ((args.killAfterMs ?? 0) > Operations.MAX_TIMEOUT_MS)
    return invalid(`killAfterMs ${args.killAfterMs} is above the maximum of ${Operations.MAX_TIMEOUT_MS} ms`)
  if (args.detach && args.pty) return invalid("a detached exec cannot have a terminal: drop pty or detach")
  if (args.detach && args.stdin === "pipe")
    return invalid("a detached exec has no stdin (it reads /dev/null): drop stdin or detach")
  if (args.detach && args.timeoutMs)
    return invalid("a detached exec outlives the call: it takes no timeoutMs")
  return undefined
}

/** Copies a child's output to a channel, one chunk at a time: while a write waits for credit the pipe fills and the child blocks. */
const pump = async (from: Readable, to: Session.Outgoing, activity: { last: number; writing: number }) => {
  for await (const chunk of from as AsyncIterable<Buffer>) {
    activity.last = Date.now()
    activity.writing++
    try {
      // Node hands out a fresh buffer per read, as the protocol requires.
      await to.write(chunk)
    } finally {
      activity.writing--
      activity.last = Date.now()
    }
  }
}

/** Feeds the client's stdin to the child, waiting for the pipe to drain; ends it at EOF. */
const feed = async (from: Session.Incoming, child: ChildProcess) => {
  const sink = child.stdin!
  sink.on("error", () => {}) // EPIPE once the child exits without reading: not our failure.
  try {
    for await (const chunk of from) {
      if (sink.destroyed) return
      if (!sink.write(chunk)) await drained(sink)
    }
  } catch {
    // The operation finished or was cancelled: just close the child's stdin.
  }
  sink.end()
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The exec handler. */
export const exec = (config: Config) => (args: Operations.Args<"exec">, call: Session.ServerCall<"exec">) =>
  Effect.gen(function* () {
    const program = args.argv[0]
    const refused = checkArgs(args)
    if (refused) return yield* Effect.fail(refused)
    const killSignal = args.killSignal ?? "SIGKILL"
    if (!isSignal(killSignal))
      return yield* Effect.fail(
        Errors.make("EINVAL", `unknown killSignal ${Errors.quote(killSignal, 40)}: use a name like SIGTERM`),
      )
    const env = buildEnv(args.env)
    const cwd = args.cwd ?? process.cwd()
    if (args.cwd !== undefined) {
      const st = yield* Effect.promise(() => fs.promises.stat(cwd).catch(() => undefined))
      if (!st?.isDirectory()) return yield* Effect.fail(cwdError(cwd, st))
    }
    const timeout = {
      timeoutMs: args.timeoutMs ?? 0,
      killSignal,
      killAfterMs: args.killAfterMs ?? Operations.DEFAULT_KILL_AFTER_MS,
    }
    if (args.pty) return yield* execPty(args, call, { env, cwd, timeout, log: logger(config) })
    if (args.detach) return yield* execDetached(args, call, env, cwd)
    const stdin = args.stdin ?? "null"
    const stdout = args.stdout ?? "pipe"
    const stderr = args.stderr ?? "pipe"
    // Combined output shares one OS pipe, as `2>&1` does, so lines keep their order. Node cannot make a
    // pipe pair itself; a shell that `exec`s the program does it (same pid). Windows merges the two pipes instead.
    const wrap = stderr === "stdout" && stdout === "pipe" && process.platform !== "win32"
    if (wrap && !resolveProgram(program, env, cwd)) return yield* Effect.fail(notFound(program, env))
    const [file, argv] = wrap
      ? ["/bin/sh", ["-c", 'exec "$0" "$@" 2>&1', ...args.argv]]
      : [program, args.argv.slice(1)]
    const started = Date.now()

    const child = yield* Effect.acquireRelease(
      Effect.async<ChildProcess, Errors.AgentError>((resume) => {
        let child: ChildProcess
        try {
          child = spawn(file, argv, {
            cwd,
            env,
            detached: true, // own session and process group: one kill reaches everything it starts
            windowsHide: true,
            stdio: [
              stdin === "pipe" ? "pipe" : "ignore",
              stdout === "pipe" ? "pipe" : "ignore",
              stderr === "null" || wrap || (stderr === "stdout" && stdout !== "pipe") ? "ignore" : "pipe",
            ],
          })
        } catch (cause) {
          return resume(Effect.fail(spawnError(program, env, cwd, cause)))
        }
        child.once("error", (cause) => resume(Effect.fail(spawnError(program, env, cwd, cause))))
        child.once("spawn", () => resume(Effect.succeed(child)))
      }),
      // Cancelled or the client vanished: nothing of the command may stay behind.
      (child, exit) =>
        Effect.sync(() => {
          // Even if the leader already exited, its group may live on (`sleep 1000 &`).
          if (Exit.isFailure(exit) && child.pid !== undefined) signalGroup(child.pid, "SIGKILL")
          child.stdout?.destroy()
          child.stderr?.destroy()
          child.stdin?.destroy()
        }),
    )
    const pid = child.pid!
    call.emit({ _tag: "Started", pid })
    call.onInput((input) => {
      if (input._tag !== "Signal") return // Resize: only under a terminal (Pty.ts).
      if (isSignal(input.signal)) signalGroup(pid, input.signal)
    })

    return yield* Effect.tryPromise({
      try: async () => {
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null)
            resolve({ code: child.exitCode, signal: child.signalCode })
          child.once("exit", (code, signal) => resolve({ code, signal }))
        })
        const timer = startTimeout(pid, timeout)
        const activity = { last: Date.now(), writing: 0 }
        const pumps: Array<Promise<void>> = []
        if (child.stdout) pumps.push(pump(child.stdout, call.stdout, activity))
        if (child.stderr)
          pumps.push(pump(child.stderr, stderr === "stdout" ? call.stdout : call.stderr, activity))
        if (child.stdin) void feed(call.stdin, child)
        const drained = Promise.all(pumps)
        drained.catch(() => {})
        try {
          const status = await exited
          timer.clear()
          // The rule for background jobs: they end with their leader. What they wrote is still delivered.
          signalGroup(pid, "SIGKILL")
          // Output still in the pipes is delivered; a child that left the group holding them does not hold the operation.
          let done = false
          void drained.then(
            () => (done = true),
            () => (done = true),
          )
          while (!done) {
            if (activity.writing === 0 && Date.now() - activity.last > QUIET_AFTER_EXIT_MS) break
            await Promise.race([drained.catch(() => {}), sleep(50)])
          }
          await Promise.race([drained, sleep(0)])
          return {
            ...timer.outcome(),
            exitCode: status.code,
            signal: status.signal,
            durationMs: Date.now() - started,
            pid,
          }
        } finally {
          timer.clear()
        }
      },
      catch: (cause) => Errors.fromUnknown(cause, `exec ${program}`),
    })
  })

/**
 * A detached exec: its own session with stdio on /dev/null, left running; the result comes once it
 * started. The agent still reaps it when it exits, so it never lingers as a zombie.
 */
const execDetached = (
  args: Operations.Args<"exec">,
  call: Session.ServerCall<"exec">,
  env: NodeJS.ProcessEnv,
  cwd: string,
) =>
  Effect.async<Operations.ExecResult, Errors.AgentError>((resume) => {
    const program = args.argv[0]
    const started = Date.now()
    let child: ChildProcess
    try {
      child = spawn(program, args.argv.slice(1), {
        cwd,
        env,
        detached: true,
        windowsHide: true,
        stdio: "ignore",
      })
    } catch (cause) {
      return resume(Effect.fail(spawnError(program, env, cwd, cause)))
    }
    child.once("error", (cause) => resume(Effect.fail(spawnError(program, env, cwd, cause))))
    child.once("spawn", () => {
      child.unref()
      call.emit({ _tag: "Started", pid: child.pid! })
      resume(
        Effect.succeed({
          exitCode: null,
          signal: null,
          timedOut: false,
          durationMs: Date.now() - started,
          pid: child.pid!,
          detached: true,
        }),
      )
    })
  })
