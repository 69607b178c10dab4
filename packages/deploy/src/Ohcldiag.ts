/**
 * Drives OpenHCL's `ohcldiag-dev` to start the agent inside VTL2: wait until the diag server answers, mount the
 * cidata disk by label (idempotently), start the launcher detached with every fd redirected (otherwise `run`
 * waits forever on the inherited stdout), then wait for the agent through a caller-supplied callback (the CLI
 * connects with the client; this package does not depend on it). Commands are argv arrays: no host shell.
 */
import * as Retry from "@cuvette/protocol/Retry"
import { Data, Effect, Either } from "effect"
import { spawn } from "node:child_process"
import * as Bundle from "./Bundle.js"
import { errorText } from "./internal/errorText.js"

/** The bring-up steps, in order; errors name the one that failed. */
export type Step = "wait-for-diag" | "mount" | "start-agent" | "wait-for-agent"

/** One ohcldiag-dev invocation: argv[0] is the ohcldiag-dev path. */
export interface Command {
  readonly step: Exclude<Step, "wait-for-agent">
  readonly argv: ReadonlyArray<string>
}

/** How to reach the VM and what to start. */
export interface Options {
  /** The VM as ohcldiag-dev takes it: a Hyper-V `NAME`, `hyperv-id:GUID`, or `vsock:PATH` (OpenVMM's VTL2 hybrid vsock socket). */
  readonly vm: string
  /** Path of ohcldiag-dev; defaults to `ohcldiag-dev` on PATH. */
  readonly ohcldiag?: string
  /** Volume label to mount; defaults to "cidata". */
  readonly label?: string
  /** Where to mount it in VTL2; defaults to "/cidata". */
  readonly mountPoint?: string
  /** Arguments for the agent (none: its default transports, vsock port 4919). */
  readonly agentArgs?: ReadonlyArray<string>
  /** Where the agent's stdout/stderr go: nowhere (default) or the VTL2 kernel log (`ohcldiag-dev VM kmsg` shows it). */
  readonly log?: "none" | "kmsg"
  /** Resolves once the agent answers (e.g. a client connect with retries); omitted: do not wait. */
  readonly waitForAgent?: () => Promise<void>
  /** Backoff while the diag server does not answer: first delay, cap, and total budget. */
  readonly retry?: {
    readonly initialDelayMs?: number
    readonly maxDelayMs?: number
    readonly timeoutMs?: number
  }
  /** Longest one ohcldiag-dev invocation may take before it is killed; default 60 s. */
  readonly commandTimeoutMs?: number
  /** Only compute the commands; run nothing. */
  readonly dryRun?: boolean
  /** Told when a step starts (and on each diag retry), e.g. to print progress. */
  readonly onStep?: (step: Step, detail: string) => void
}

/** What ran (or would run). */
export interface Result {
  readonly commands: ReadonlyArray<Command>
  readonly dryRun: boolean
  /** How many times the diag server was asked before it answered. */
  readonly diagAttempts: number
}

/** A bring-up step failed: which step, the command line and what it printed. */
export class OhcldiagError extends Data.TaggedError("OhcldiagError")<{
  readonly step: Step
  readonly command?: ReadonlyArray<string>
  readonly exitCode?: number | null
  readonly output?: string
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    const cmd = this.command ? `\n  command: ${formatCommand(this.command)}` : ""
    const out = this.output?.trim() ? `\n  output: ${this.output.trim().slice(-2000)}` : ""
    return `VTL2 deploy step "${this.step}" failed: ${this.detail}${cmd}${out}`
  }
}

/** POSIX single-quoting, for commands run by VTL2's sh and for display. */
export const shQuote = (s: string): string =>
  /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`

/** A command line as one copy-pasteable string (display only: nothing is run through a host shell). */
export const formatCommand = (argv: ReadonlyArray<string>): string => argv.map(shQuote).join(" ")

/**
 * The VTL2 shell line that mounts the disk unless it is mounted: shell built-ins plus `mkdir` and `mount`
 * (`while read` instead of `grep`, which `--min-interactive` OpenHCL images may lack).
 */
export const mountScript = (label = "cidata", mountPoint = "/cidata"): string =>
  `mkdir -p ${shQuote(mountPoint)} && { while read -r _ m _; do [ "$m" = ${shQuote(mountPoint)} ] && exit 0; done </proc/mounts; mount LABEL=${shQuote(label)} ${shQuote(mountPoint)}; }`

/** The VTL2 shell line that starts the launcher in the background with stdin, stdout and stderr all redirected. */
export const startScript = (
  mountPoint = "/cidata",
  agentArgs: ReadonlyArray<string> = [],
  log: "none" | "kmsg" = "none",
): string =>
  `${[`${mountPoint}/${Bundle.LAUNCHER}`, ...agentArgs].map(shQuote).join(" ")} </dev/null >${log === "kmsg" ? "/dev/kmsg" : "/dev/null"} 2>&1 &`

/** The three ohcldiag-dev command lines of a bring-up. */
export const commands = (options: Options): ReadonlyArray<Command> => {
  const base = [options.ohcldiag ?? "ohcldiag-dev", options.vm]
  return [
    { step: "wait-for-diag", argv: [...base, "inspect", "build_info"] },
    {
      step: "mount",
      argv: [...base, "run", "--", "sh", "-c", mountScript(options.label, options.mountPoint)],
    },
    {
      step: "start-agent",
      argv: [
        ...base,
        "run",
        "--",
        "sh",
        "-c",
        startScript(options.mountPoint, options.agentArgs, options.log),
      ],
    },
  ]
}

interface Outcome {
  readonly code: number | null
  readonly output: string
  readonly timedOut: boolean
}

const exec = (argv: ReadonlyArray<string>, timeoutMs: number): Promise<Outcome> =>
  new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], windowsHide: true })
    let output = ""
    const collect = (b: Buffer) => {
      output = (output + b.toString("utf8")).slice(-64 * 1024)
    }
    child.stdout.on("data", collect)
    child.stderr.on("data", collect)
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL")
    }, timeoutMs)
    child.once("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.once("close", (code) => {
      clearTimeout(timer)
      resolve({ code, output, timedOut })
    })
  })

/** wait-for-diag's answer was not 0 yet: worth another try. */
class NotAnswering extends Data.TaggedError("NotAnswering")<{ readonly outcome: Outcome }> {}

/** Runs the bring-up; rejects with OhcldiagError naming the step. */
export const deploy = async (options: Options): Promise<Result> => {
  const cmds = commands(options)
  if (options.dryRun) return { commands: cmds, dryRun: true, diagAttempts: 0 }
  const timeoutMs = options.commandTimeoutMs ?? 60_000
  const run = async (c: Command): Promise<Outcome> => {
    try {
      return await exec(c.argv, timeoutMs)
    } catch (cause) {
      throw new OhcldiagError({
        step: c.step,
        command: c.argv,
        detail: `cannot run ${c.argv[0]}: ${(cause as { code?: unknown }).code === "ENOENT" ? "no such file (ENOENT)" : errorText(cause)}; install ohcldiag-dev or pass its path (--ohcldiag)`,
        cause,
      })
    }
  }
  const failed = (c: Command, o: Outcome, hint: string) =>
    new OhcldiagError({
      step: c.step,
      command: c.argv,
      exitCode: o.code,
      output: o.output,
      detail: o.timedOut
        ? `no answer within ${timeoutMs} ms; ${hint}`
        : `exited with code ${o.code}; ${hint}`,
    })

  // wait-for-diag: the diag server answers once OpenHCL is up, so try again on a doubling wait.
  const [wait, mount, start] = cmds as [Command, Command, Command]
  const { initialDelayMs = 250, maxDelayMs = 5000, timeoutMs: budget = 120_000 } = options.retry ?? {}
  let attempts = 0
  const ask = Effect.suspend(() => {
    attempts++
    options.onStep?.("wait-for-diag", attempts === 1 ? formatCommand(wait.argv) : `retry ${attempts}`)
    return Effect.tryPromise({ try: () => run(wait), catch: (e) => e as OhcldiagError })
  }).pipe(
    Effect.filterOrFail(
      (o) => o.code === 0,
      (o) => new NotAnswering({ outcome: o }),
    ),
  )
  const answered = await Effect.runPromise(
    Effect.either(
      Retry.retry(ask, {
        schedule: Retry.doubling(initialDelayMs, maxDelayMs),
        deadline: Date.now() + budget,
        while: (e) => e instanceof NotAnswering,
      }),
    ),
  )
  if (Either.isLeft(answered)) {
    const e = answered.left
    if (!(e instanceof NotAnswering)) throw e
    throw failed(
      wait,
      e.outcome,
      `the diag server did not answer in ${attempts} attempts over ${budget} ms: is the VM running OpenHCL, and is the VM id right?`,
    )
  }

  options.onStep?.("mount", formatCommand(mount.argv))
  const m = await run(mount)
  if (m.code !== 0)
    throw failed(
      mount,
      m,
      `is a disk labelled ${options.label ?? "cidata"} attached to VTL2 (a SCSI controller targeting VTL 2)?`,
    )

  options.onStep?.("start-agent", formatCommand(start.argv))
  const s = await run(start)
  if (s.code !== 0)
    throw failed(start, s, `is ${options.mountPoint ?? "/cidata"}/${Bundle.LAUNCHER} on the disk?`)

  if (options.waitForAgent) {
    options.onStep?.("wait-for-agent", "waiting for the agent to answer")
    try {
      await options.waitForAgent()
    } catch (cause) {
      throw new OhcldiagError({
        step: "wait-for-agent",
        detail: `the agent was started but did not answer: ${errorText(cause)}; \`ohcldiag-dev ${shQuote(options.vm)} kmsg\` shows VTL2's log (deploy with log: "kmsg" to see the agent's output there)`,
        cause,
      })
    }
  }
  return { commands: cmds, dryRun: false, diagAttempts: attempts }
}

/** Effect variant of deploy. */
export const make = (options: Options): Effect.Effect<Result, OhcldiagError> =>
  Effect.tryPromise({
    try: () => deploy(options),
    catch: (e) =>
      e instanceof OhcldiagError
        ? e
        : new OhcldiagError({ step: "wait-for-diag", detail: errorText(e), cause: e }),
  })
