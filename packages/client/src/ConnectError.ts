/**
 * The one local error of the client: a connection to an agent could not be made (or was lost before
 * the handshake finished). Its message says what failed, where, and what to try next; the raw cause
 * (an errno error, a native error, the handshake's AgentError) is kept in `cause`.
 */
import { Hints } from "@cuvette/protocol"
import { Data } from "effect"

/** Why a connection failed. */
export type Reason =
  /** Nothing listens there (ECONNREFUSED), or the peer closed before the handshake. */
  | "REFUSED"
  /** No answer within the deadline. */
  | "TIMEOUT"
  /** No route to the peer (EHOSTUNREACH, ENETUNREACH, no VM with that id). */
  | "UNREACHABLE"
  /** The socket file, host name or VM does not exist. */
  | "NOT_FOUND"
  /** This host cannot open that kind of transport (AF_HYPERV on Linux, AF_VSOCK without the module). */
  | "UNSUPPORTED"
  /** The native addon needed for this transport is not built. */
  | "NOT_BUILT"
  /** Permission denied, or the agent refused the token. */
  | "DENIED"
  /** The peer does not speak the expected protocol (hybrid vsock line, Cuvette handshake, versions). */
  | "PROTOCOL"
  /** The target string is not valid. */
  | "INVALID_TARGET"
  /** The attempt was aborted by the caller (AbortSignal). */
  | "ABORTED"

/** A connection to an agent failed. */
export class ConnectError extends Data.TaggedError("ConnectError")<{
  readonly reason: Reason
  /** The target as the user wrote it ("unix:/tmp/agent.sock"). */
  readonly target: string
  /** What went wrong, in words ("no such socket"). */
  readonly detail: string
  /** What to try next; computed from the reason and target when absent. */
  readonly hint?: string
  /** Attempts made before giving up (retrying connects). */
  readonly attempts?: number
  readonly cause?: unknown
}> {
  override get message(): string {
    const hint = this.hint ?? hintFor(this.reason, this.target)
    const tries = this.attempts && this.attempts > 1 ? ` after ${this.attempts} attempts` : ""
    return `cannot connect to ${this.target}: ${this.detail}${tries}${hint ? ` (${hint})` : ""}`
  }
}

/** True when `u` is a ConnectError. */
export const isConnectError = (u: unknown): u is ConnectError => u instanceof ConnectError

/** Reasons worth another attempt when retrying (the peer may simply not be up yet). */
export const isRetryable = (e: ConnectError): boolean =>
  e.reason === "REFUSED" || e.reason === "TIMEOUT" || e.reason === "UNREACHABLE" || e.reason === "NOT_FOUND"

/** Maps a Node/OS error code (errno name) to a reason: the one place errno becomes a reason. */
const reasonOfCode = (code: unknown): Reason => {
  switch (code) {
    case "ECONNREFUSED":
    case "ECONNRESET":
    case "EPIPE":
    case "ECONNABORTED":
      return "REFUSED"
    case "ETIMEDOUT":
    case "ERR_SOCKET_CONNECTION_TIMEOUT":
      return "TIMEOUT"
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "ENETDOWN":
    case "EADDRNOTAVAIL":
      return "UNREACHABLE"
    case "ENOENT":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "NOT_FOUND"
    case "EACCES":
    case "EPERM":
      return "DENIED"
    case "EAFNOSUPPORT":
    case "ENODEV":
    case "UNSUPPORTED":
      return "UNSUPPORTED"
    case "NOT_BUILT":
      return "NOT_BUILT"
    default:
      return "REFUSED"
  }
}

const detailOfReason: Record<Reason, string> = {
  REFUSED: "connection refused",
  TIMEOUT: "timed out",
  UNREACHABLE: "unreachable",
  NOT_FOUND: "not found",
  UNSUPPORTED: "not supported on this host",
  NOT_BUILT: "the native addon is not built",
  DENIED: "permission denied",
  PROTOCOL: "protocol error",
  INVALID_TARGET: "invalid target",
  ABORTED: "aborted",
}

/** Builds a ConnectError from an OS/Node error raised while connecting to `target`. */
export const fromCause = (target: string, cause: unknown, detail?: string): ConnectError => {
  if (isConnectError(cause)) return cause
  const c = cause as { code?: unknown; reason?: unknown; message?: unknown } | undefined
  // A NativeError carries `reason`; a Node error carries `code`.
  const reason = reasonOfCode(c?.reason ?? c?.code)
  const words =
    detail ??
    (target.startsWith("unix:") || target.startsWith("serial:") || target.startsWith("hybrid:")
      ? c?.code === "ENOENT"
        ? "no such socket"
        : c?.code === "ECONNREFUSED"
          ? "nothing is listening on the socket"
          : undefined
      : undefined) ??
    (typeof c?.message === "string" ? c.message : detailOfReason[reason])
  return new ConnectError({ reason, target, detail: words, cause })
}

/** What to try next, by reason and transport (from the one hint table, protocol `Hints`). */
export const hintFor = (reason: Reason, target: string): string | undefined =>
  Hints.forConnection(reason, target)
