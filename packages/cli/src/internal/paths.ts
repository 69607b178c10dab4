// Guest paths are written `:PATH` (as scp writes `host:PATH`); file commands that only ever mean the
// guest also accept a bare path.
import { UsageError } from "./errors.js"

/** True when `arg` names a guest path (`:PATH`). */
export const isGuest = (arg: string): boolean => arg.startsWith(":")

/** The guest path of `arg`, with or without the leading colon. */
export const guestPath = (arg: string, command: string): string => {
  const p = isGuest(arg) ? arg.slice(1) : arg
  if (p.length === 0)
    throw new UsageError({ detail: `an empty guest path for \`${command}\`; write it as :PATH` })
  return p
}

/** The last component of a guest path, POSIX (`/a/b`) or Windows (`C:\a\b`). */
export const guestBasename = (p: string): string =>
  p
    .split(/[\\/]/)
    .filter((c) => c !== "")
    .pop() ?? p

/** `dir` joined with `name`, with the separator `dir` uses (a Windows guest path keeps backslashes). */
export const guestJoin = (dir: string, name: string): string => {
  const sep = dir.includes("\\") && !dir.includes("/") ? "\\" : "/"
  return dir.endsWith(sep) ? `${dir}${name}` : `${dir}${sep}${name}`
}
