/** Turns thrown errno errors into AgentErrors that say what failed, on which guest path, and what to try. */
import { Errors, Hints } from "@cuvette/protocol"

// Only the hints about the guest itself: the others name cuvette commands, which the CLI adds.
const guestHints = new Set(["EACCES", "EPERM", "EROFS", "ENOSPC", "EXDEV", "ENAMETOOLONG", "E2BIG"])

/** `what` is the action ("read", "write into"); `path` the guest path it concerns (quoted shortened). */
export const fsError = (what: string, path: string, cause: unknown): Errors.AgentError => {
  if (Errors.isAgentError(cause)) return cause
  const where = Errors.quote(path)
  if (path.includes("\0"))
    return Errors.make("EINVAL", `cannot ${what} ${where}: a path cannot contain a NUL byte`)
  const base = Errors.fromUnknown(cause, where)
  if (base.code === "INTERNAL") return Errors.make("INTERNAL", `cannot ${what} ${where}: ${base.message}`)
  const hint = guestHints.has(base.code) ? Hints.forCode(base.code) : undefined
  return Errors.make(
    base.code,
    `cannot ${what} ${where}: ${Errors.describeErrno(base.code)}${hint ? ` (${hint})` : ""}`,
  )
}

/** Permission bits are 0 to 0o7777; anything else is refused before it reaches chmod or open. */
export const checkMode = (
  mode: number | undefined,
  what: string,
  path: string,
): Errors.AgentError | undefined =>
  mode === undefined || (Number.isInteger(mode) && mode >= 0 && mode <= 0o7777)
    ? undefined
    : Errors.make(
        "EINVAL",
        `cannot ${what} ${Errors.quote(path)}: mode ${Errors.quote(String(mode), 40)} is not permission bits (0 to 0o7777)`,
      )
