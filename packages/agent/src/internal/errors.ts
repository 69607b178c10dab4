/** Turns thrown errno errors into AgentErrors that say what failed, on which guest path, and what to try. */
import { Errors } from "@cuvette/protocol"

const hints: Partial<Record<Errors.ErrorCode, string>> = {
  EACCES: "the agent's user may not access it; run the agent as root or fix the permissions",
  EPERM: "the agent's user may not do this; run the agent as root",
  EROFS: "the file system is mounted read-only",
  ENOSPC: "free some space on the guest",
}

/** `what` is the action ("read", "write into"); `path` the guest path it concerns. */
export const fsError = (what: string, path: string, cause: unknown): Errors.AgentError => {
  if (Errors.isAgentError(cause)) return cause
  const base = Errors.fromUnknown(cause, path)
  if (base.code === "INTERNAL") return Errors.make("INTERNAL", `cannot ${what} ${path}: ${base.message}`)
  const hint = hints[base.code]
  return Errors.make(
    base.code,
    `cannot ${what} ${path}: ${Errors.describeErrno(base.code)}${hint ? ` (${hint})` : ""}`,
  )
}
