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
  "ENAMETOOLONG",
  "ELOOP",
  "EXDEV",
  "E2BIG",
  "ENXIO",
  /** Nothing listens at the address a connection was made to. */
  "ECONNREFUSED",
  /** The peer reset a connection (or closed it while data was still being sent to it). */
  "ECONNRESET",
  /** A host or network that cannot be reached, or a host name that does not resolve. */
  "EHOSTUNREACH",
  /** Another socket listens at that address already. */
  "EADDRINUSE",
  /** An address that is not one of this machine's own, so nothing can listen on it. */
  "EADDRNOTAVAIL",
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

/** The longest message an AgentError carries: it says what failed, it never echoes a payload in full. */
export const MAX_MESSAGE = 512

/** A value quoted in a message: long ones keep their start and end around an ellipsis. */
export const quote = (value: string, max = 160): string =>
  value.length <= max ? value : `${value.slice(0, max - 41)}…${value.slice(-40)}`

/** Builds an AgentError; the message is cut to {@link MAX_MESSAGE} characters. */
export const make = (code: ErrorCode, message: string): AgentError =>
  new AgentError({ code, message: quote(message, MAX_MESSAGE) })

/** True when `u` is an AgentError. */
export const isAgentError = (u: unknown): u is AgentError => u instanceof AgentError

const errnoCodes = new Set<string>(ErrorCode.literals)

// The runtime's own refusals of an argument (a NUL byte in a path, a mode out of range) are invalid
// arguments, not bugs: Node and Bun throw these before making the system call.
// (A wrong type, ERR_INVALID_ARG_TYPE, cannot come from a validated request: that one is a bug.)
const invalidArgument = new Set(["ERR_INVALID_ARG_VALUE", "ERR_OUT_OF_RANGE"])

/** The AgentError code of a thrown error: its errno, EINVAL for a refused argument, else undefined. */
export const codeOf = (cause: unknown): ErrorCode | undefined => {
  const code = (cause as { code?: unknown } | undefined)?.code
  if (typeof code !== "string") return undefined
  if (errnoCodes.has(code)) return code as ErrorCode
  return invalidArgument.has(code) ? "EINVAL" : undefined
}

/**
 * Turns anything thrown by a handler into an AgentError: errno errors keep their code and say which
 * path; anything else becomes INTERNAL. Values are quoted shortened, never echoed in full.
 */
export const fromUnknown = (cause: unknown, context?: string): AgentError => {
  if (isAgentError(cause)) return cause
  const err = cause as { message?: unknown; path?: unknown } | undefined
  const code = codeOf(cause)
  const raw = quote(typeof err?.message === "string" ? err.message : String(cause), MAX_MESSAGE)
  if (code) {
    const where = typeof err?.path === "string" ? quote(err.path) : context
    return make(code, where ? `${describeErrno(code)}: ${where}` : raw)
  }
  return make("INTERNAL", context ? `${context}: ${raw}` : raw)
}

const errnoText: Partial<Record<string, string>> = {
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
  ENAMETOOLONG: "file name too long",
  ELOOP: "too many levels of symbolic links",
  EXDEV: "not on the same file system",
  E2BIG: "argument list too long",
  ENXIO: "no such device or address",
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset by peer",
  EHOSTUNREACH: "no route to host",
  EADDRINUSE: "address already in use",
  EADDRNOTAVAIL: "cannot assign requested address",
  EMSGSIZE: "message too long",
  ETIMEDOUT: "timed out",
  // Seen on the host only (writing into a closed pipe), never sent by the agent.
  EPIPE: "broken pipe",
}

/** Human text for an errno-style code ("no such file or directory"); the code itself when there is none. */
export const describeErrno = (code: ErrorCode | (string & {})): string => errnoText[code] ?? code
