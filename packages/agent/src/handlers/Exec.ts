/**
 * exec: runs a program in its own process group, streams its stdout/stderr with backpressure, feeds
 * its stdin, and kills the whole group when the operation is cancelled, times out, or the client
 * goes away (a scope finalizer), so nothing the command started outlives it unnoticed.
 */
import { Errors, type Operations, type Session } from "@cuvette/protocol"
import { Effect, Exit } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Readable } from "node:stream"
import { type Config, logger } from "../internal/config.js"
import { isSignal, signalGroup } from "../internal/processGroup.js"
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
    `cannot run ${program}: program not found${program.includes("/") ? "" : ` in PATH=${env.PATH ?? "(unset)"}`}; check the name or give a full path`,
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
    return Errors.make("EACCES", `cannot run ${program}: permission denied (is it executable?)`)
  return Errors.fromUnknown(cause, `cannot run ${program}`)
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
      if (!sink.write(chunk))
        await new Promise<void>((resolve) => {
          const done = () => {
            sink.off("drain", done)
            sink.off("close", done)
            resolve()
          }
          sink.on("drain", done)
          sink.on("close", done)
        })
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
    const killSignal = args.killSignal ?? "SIGKILL"
    if (!isSignal(killSignal))
      return yield* Effect.fail(
        Errors.make("EINVAL", `unknown killSignal ${killSignal}: use a name like SIGTERM`),
      )
    const env = buildEnv(args.env)
    const cwd = args.cwd ?? process.cwd()
    if (args.cwd !== undefined) {
      const st = yield* Effect.promise(() => fs.promises.stat(cwd).catch(() => undefined))
      if (!st?.isDirectory()) return yield* Effect.fail(cwdError(cwd, st))
    }
    if (args.pty) return yield* execPty(args, call, { env, cwd, killSignal, log: logger(config) })
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
      // Cancelled, timed out or the client vanished: nothing of the command may stay behind.
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
        let timedOut = false
        const timer =
          args.timeoutMs !== undefined
            ? setTimeout(() => {
                timedOut = true
                signalGroup(pid, killSignal)
              }, args.timeoutMs)
            : undefined
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
          // Output still in the pipes is delivered; a background child holding them open does not hold the operation.
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
            exitCode: status.code,
            signal: status.signal,
            timedOut,
            durationMs: Date.now() - started,
          }
        } finally {
          if (timer) clearTimeout(timer)
        }
      },
      catch: (cause) => Errors.fromUnknown(cause, `exec ${program}`),
    })
  })
