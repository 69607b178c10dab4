// Operation arguments from user options: exact schemas reject an explicit `undefined`, so optional
// fields are dropped rather than sent empty.
import type { Operations } from "@cuvette/protocol"
import type { CommonProcessOptions } from "../Process.js"

/** Drops undefined values so optional fields stay absent (exactOptionalPropertyTypes, exact schemas). */
export type Defined<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>
}
export const defined = <T extends object>(o: T): Defined<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Defined<T>

/** The `exec` arguments every process option set shares (argv, env, cwd, timeout, pty). */
export const processArgs = (argv: ReadonlyArray<string>, o: CommonProcessOptions) =>
  defined({
    argv: argv as [string, ...Array<string>],
    env: o.env ? (defined({ ...o.env }) as Operations.ExecArgs["env"]) : undefined,
    cwd: o.cwd,
    timeoutMs: o.timeoutMs,
    killSignal: o.killSignal,
    pty: o.pty ? defined({ ...o.pty }) : undefined,
  })
