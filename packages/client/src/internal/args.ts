// Operation arguments from user options. Every option key is checked against the ones the operation
// knows (a misspelt or misplaced option fails with an OptionError instead of doing nothing), and
// optional fields are dropped rather than sent empty, since the exact schemas reject `undefined`.
import { Operations } from "@cuvette/protocol"
import { Readable } from "node:stream"
import { OptionError } from "../HostError.js"
import type { CommonProcessOptions, Env } from "../Process.js"

/** Drops undefined values so optional fields stay absent (exactOptionalPropertyTypes, exact schemas). */
type Defined<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>
}
export const defined = <T extends object>(o: T): Defined<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Defined<T>

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** The option keys each operation takes (an undefined value counts as absent). */
export const optionKeys = {
  exec: ["env", "cwd", "timeoutMs", "killSignal", "killAfterMs", "detach", "pty", "stdin", "stderr"],
  spawn: [
    "env",
    "cwd",
    "timeoutMs",
    "killSignal",
    "killAfterMs",
    "detach",
    "pty",
    "stdin",
    "stdout",
    "stderr",
  ],
  readFile: ["offset", "length"],
  download: ["offset", "length", "onProgress", "end", "signal"],
  upload: ["mode", "createParents", "atomic", "size", "onProgress", "signal"],
  kmsg: ["follow", "signal"],
} as const

/** Fails with an OptionError when `o` is not an object or has a key `known` does not list. */
export const checkOptions = (
  operation: string,
  o: unknown,
  known: ReadonlyArray<string>,
  prefix?: string,
): void => {
  if (o === undefined) return
  const name = (k: string) => (prefix === undefined ? k : `${prefix}.${k}`)
  if (!isRecord(o))
    throw new OptionError({ operation, option: prefix ?? "options", detail: "must be an object" })
  for (const [k, v] of Object.entries(o))
    if (v !== undefined && !known.includes(k))
      throw new OptionError({
        operation,
        option: name(k),
        detail: `unknown option (known: ${known.join(", ")})`,
      })
}

/**
 * The structured `{ set, unset, clear }` form, or a plain `{ NAME: "value" }` record (the form
 * child_process takes), which means `set`.
 */
const toEnv = (operation: string, env: unknown): Env => {
  if (!isRecord(env)) throw new OptionError({ operation, option: "env", detail: "must be an object" })
  if (Object.values(env).every((v) => typeof v === "string")) return { set: env as Record<string, string> }
  for (const [k, v] of Object.entries(env))
    if (v !== undefined && k !== "set" && k !== "unset" && k !== "clear")
      throw new OptionError({
        operation,
        option: `env.${k}`,
        detail: 'env is either { NAME: "value", ... } or { set, unset, clear }, not a mix',
      })
  return env as Env
}

/** The `exec` arguments every process option set shares (argv, env, cwd, timeout, pty). */
export const processArgs = (
  operation: "exec" | "spawn",
  argv: ReadonlyArray<string>,
  o: CommonProcessOptions,
) => {
  checkOptions(operation, o, optionKeys[operation])
  checkOptions(operation, o.pty, ["rows", "cols", "term"], "pty")
  checkDuration(operation, "timeoutMs", o.timeoutMs)
  checkDuration(operation, "killAfterMs", o.killAfterMs)
  if (o.detach === true && o.timeoutMs !== undefined && o.timeoutMs > 0)
    throw new OptionError({
      operation,
      option: "timeoutMs",
      detail: "a detached process outlives the call: drop timeoutMs or detach",
    })
  return defined({
    argv: argv as [string, ...Array<string>],
    env: o.env ? (defined({ ...toEnv(operation, o.env) }) as Operations.ExecArgs["env"]) : undefined,
    cwd: o.cwd,
    timeoutMs: o.timeoutMs,
    killSignal: o.killSignal,
    killAfterMs: o.killAfterMs,
    detach: o.detach,
    pty: o.pty ? defined({ ...o.pty }) : undefined,
  })
}

/** A duration option: whole milliseconds from 0 (none) to the protocol's maximum. */
const checkDuration = (operation: string, option: string, ms: number | undefined): void => {
  if (ms === undefined || (Number.isInteger(ms) && ms >= 0 && ms <= Operations.MAX_TIMEOUT_MS)) return
  throw new OptionError({
    operation,
    option,
    detail: `must be whole milliseconds from 0 (none) to ${Operations.MAX_TIMEOUT_MS} (about 24.8 days); got ${String(ms).slice(0, 40)}`,
  })
}

/** exec's stdin is fed from here, so its type is checked here (the protocol only sees "pipe"). */
export const checkExecStdin = (stdin: unknown): void => {
  if (
    stdin === undefined ||
    typeof stdin === "string" ||
    stdin instanceof Uint8Array ||
    stdin instanceof Readable ||
    (isRecord(stdin) && Symbol.asyncIterator in stdin)
  )
    return
  throw new OptionError({
    operation: "exec",
    option: "stdin",
    detail: "must be bytes, a string or a Readable (spawn takes stdin: 'pipe')",
  })
}
