/** Turns thrown errno errors into AgentErrors that say what failed, on which guest path, and what to try. */
import { Errors, Hints } from "@cuvette/protocol"

// Only the hints about the guest itself: the others name cuvette commands, which the CLI adds.
const guestHints = new Set(["EACCES", "EPERM", "EROFS", "ENOSPC"])

/** `what` is the action ("read", "write into"); `path` the guest path it concerns. */
export const fsError = (what: string, path: string, cause: unknown): Errors.AgentError => {
  if (Errors.isAgentError(cause)) return cause
  const base = Errors.fromUnknown(cause, path)
  if (base.code === "INTERNAL") return Errors.make("INTERNAL", `cannot ${what} ${path}: ${base.message}`)
  const hint = guestHints.has(base.code) ? Hints.forCode(base.code) : undefined
  return Errors.make(
    base.code,
    `cannot ${what} ${path}: ${Errors.describeErrno(base.code)}${hint ? ` (${hint})` : ""}`,
  )
}
