/**
 * Guest processes: the options of `Agent.exec` and `Agent.spawn`, and the {@link Process}
 * handle `spawn` returns, whose stdio are Node streams flow-controlled end to end.
 */
import { type Readable, Writable } from "node:stream"
import { finished } from "node:stream/promises"
import { Errors, type Operations, type Session } from "@cuvette/protocol"
import { toReadable } from "./internal/streams.js"

/** How a process ended, with its collected output. */
export interface ExecResult extends Operations.Result<"exec"> {
  readonly stdout: Uint8Array
  readonly stderr: Uint8Array
}

/** Environment changes for a process. */
export interface Env {
  readonly set?: Readonly<Record<string, string>>
  readonly unset?: ReadonlyArray<string>
  /** Start from an empty environment. */
  readonly clear?: boolean
}

/** Options shared by `Agent.exec` and `Agent.spawn`. */
export interface CommonProcessOptions {
  /** `{ set, unset, clear }`, or a plain `{ NAME: "value" }` record, which means `set`. */
  readonly env?: Env | Readonly<Record<string, string>>
  readonly cwd?: string
  /**
   * Signal the process group after this long (the result then has `timedOut: true` and
   * `timeoutSignal`); at most `Operations.MAX_TIMEOUT_MS` (about 24.8 days), 0 or absent for none.
   */
  readonly timeoutMs?: number
  /** Signal sent on timeout (default SIGKILL). */
  readonly killSignal?: string
  /** SIGKILL this long after a `killSignal` the process outlives (default 5000). */
  readonly killAfterMs?: number
  /**
   * Start it to outlive the call (a daemon): the result comes once it started, with its `pid`; its
   * stdio is /dev/null and no timeout applies. Otherwise its background jobs are killed when it exits.
   */
  readonly detach?: boolean
  /** Run under a pseudo-terminal of this size. */
  readonly pty?: { readonly rows: number; readonly cols: number; readonly term?: string }
}

/** Options of `Agent.exec`. */
export interface ExecOptions extends CommonProcessOptions {
  /** Bytes, text or a stream fed to the process's stdin (none: stdin is /dev/null). */
  readonly stdin?: Uint8Array | string | Readable
  /** "stdout" merges stderr into stdout. */
  readonly stderr?: "pipe" | "null" | "stdout"
}

/** Options of `Agent.spawn`. */
export interface SpawnOptions extends CommonProcessOptions {
  readonly stdin?: "pipe" | "null"
  readonly stdout?: "pipe" | "null"
  readonly stderr?: "pipe" | "null" | "stdout"
}

const encoder = new TextEncoder()

/** A guest process started with `Agent.spawn`. */
export class Process {
  /** The guest pid, once the process started. */
  readonly pid: Promise<number>
  /** Its stdin; each write waits for the agent's credit. Null unless `stdin: "pipe"`. */
  readonly stdin: Writable | null
  /** Its stdout; not reading it pauses the guest process. Null with `stdout: "null"`. */
  readonly stdout: Readable | null
  /** Its stderr. Null with `stderr: "null"` or `"stdout"`. */
  readonly stderr: Readable | null
  /**
   * How it ended, once its stdout and stderr have ended too (read to the end, or destroyed), so every
   * byte it wrote was delivered first; rejects with an AgentError (CANCELLED after cancel()).
   */
  readonly exited: Promise<Operations.Result<"exec">>

  /** @internal */
  constructor(
    private readonly call: Session.ClientCall<"exec">,
    o: SpawnOptions,
  ) {
    this.pid = (async () => {
      for (let e = await call.nextEvent(); e !== undefined; e = await call.nextEvent())
        if (e._tag === "Started") return e.pid
      await call.result
      throw new Errors.AgentError({
        code: "INTERNAL",
        message: "the process ended without reporting its pid",
      })
    })()
    this.pid.catch(() => {})
    const stdin = call.stdin
    this.stdin =
      o.stdin === "pipe"
        ? new Writable({
            write(chunk, _encoding, callback) {
              // A private copy: the caller may reuse its buffer once the write callback fired.
              const bytes =
                typeof chunk === "string" ? encoder.encode(chunk) : new Uint8Array(chunk as Uint8Array)
              stdin.write(bytes).then(
                () => callback(),
                // Writing to a process that already ended is not an error worth crashing for (like EPIPE ignored).
                (e) => callback(call.isSettled ? null : e),
              )
            },
            final(callback) {
              stdin.end()
              callback()
            },
          })
        : null
    this.stdout = o.stdout === "null" ? null : toReadable(call.stdout)
    this.stderr = o.stderr === "null" || o.stderr === "stdout" ? null : toReadable(call.stderr)
    // The result frame follows the last output frame, but the Readables hand their chunks out later:
    // the exit is reported only after they ended, as child_process's "close" event does.
    const outputs = [this.stdout, this.stderr].filter((s) => s !== null)
    this.exited = call.result.then(async (result) => {
      await Promise.all(outputs.map((s) => finished(s).catch(() => {})))
      return result
    })
    this.exited.catch(() => {})
  }

  /** Sends a signal to the process group (default SIGTERM). */
  kill(signal = "SIGTERM"): void {
    this.call.input({ _tag: "Signal", signal })
  }

  /** Resizes its terminal (pty). */
  resize(rows: number, cols: number): void {
    this.call.input({ _tag: "Resize", rows, cols })
  }

  /** Cancels: the agent kills the process group; `exited` rejects with CANCELLED. */
  cancel(): void {
    this.call.cancel()
  }
}
