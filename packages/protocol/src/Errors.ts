/**
 * The error model shared by agent and client: every failure that crosses the wire is an
 * `AgentError` with a stable `code` and a message that says what failed and where.
 */
import { Schema } from "effect"

/** Stable error codes. errno-style codes mirror POSIX; the upper-case words are Cuvette's own. */
export const ErrorCode = Schema.Literal(
  "ENOENT",
  "EACCES",
  "EPERM",
  "EEXIST",
  "ENOTDIR",
  "EISDIR",
  "ENOTEMPTY",
  "EINVAL",
  "EIO",
  "ENOSPC",
  "EBUSY",
  "EROFS",
  "ETIMEDOUT",
  /** A message is larger than the receiver's frame limit. */
  "EMSGSIZE",
  /** The agent refused: a token is wrong or missing, or the operation is disabled. */
  "DENIED",
  /** The agent cannot do this here (no /dev/kmsg, PTY on Windows, an unknown operation). */
  "UNSUPPORTED",
  /** The peer broke the protocol: malformed frame or message, schema violation. */
  "PROTOCOL",
  /** The two sides share no protocol version. */
  "VERSION",
  /** The operation was cancelled by the client. */
  "CANCELLED",
  /** The connection went away before the operation finished. */
  "DISCONNECTED",
  /** A bug or unexpected failure inside the agent. */
  "INTERNAL",
)
/** One of the codes of the {@link ErrorCode} schema, as a string. */
export type ErrorCode = typeof ErrorCode.Type

/** An error reported by the agent or by the session; it travels as `{ code, message }`. */
export class AgentError extends Schema.TaggedError<AgentError>()("AgentError", {
  code: ErrorCode,
  message: Schema.String,
}) {}

/** Builds an AgentError. */
export const make = (code: ErrorCode, message: string): AgentError => new AgentError({ code, message })

/** True when `u` is an AgentError. */
export const isAgentError = (u: unknown): u is AgentError => u instanceof AgentError

const errnoCodes = new Set<string>(ErrorCode.literals)

/**
 * Turns anything thrown by a handler into an AgentError: errno errors keep their code and say which
 * path; anything else becomes INTERNAL.
 */
export const fromUnknown = (cause: unknown, context?: string): AgentError => {
  if (isAgentError(cause)) return cause
  const err = cause as { code?: unknown; message?: unknown; path?: unknown; syscall?: unknown } | undefined
  const code = typeof err?.code === "string" && errnoCodes.has(err.code) ? (err.code as ErrorCode) : undefined
  const raw = typeof err?.message === "string" ? err.message : String(cause)
  if (code) {
    const where = typeof err?.path === "string" ? err.path : context
    return make(code, where ? `${describeErrno(code)}: ${where}` : raw)
  }
  return make("INTERNAL", context ? `${context}: ${raw}` : raw)
}

const errnoText: Partial<Record<ErrorCode, string>> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EEXIST: "already exists",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  ENOTEMPTY: "directory not empty",
  EINVAL: "invalid argument",
  EIO: "input/output error",
  ENOSPC: "no space left on device",
  EBUSY: "device or resource busy",
  EROFS: "read-only file system",
  EMSGSIZE: "message too long",
}

/** Human text for an errno-style code ("no such file or directory"). */
export const describeErrno = (code: ErrorCode): string => errnoText[code] ?? code
