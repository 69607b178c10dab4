// Local errors of the CLI and the one place that turns any failure (usage, ConnectError, AgentError,
// the client's HostFileError and HostStreamError, host fs errors) into a message that says what failed,
// where, and what to try next, plus its exit code.
import * as path from "node:path/posix"
import { Errors, Hints } from "@cuvette/protocol"
import * as Data from "effect/Data"
import * as ExitCode from "../ExitCode.js"

/** The command line is wrong: exit 2. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly detail: string }> {
  override get message(): string {
    return this.detail
  }
}

/** A failure the CLI itself detected, already worded; `code` is a stable word for --json. */
export class CliError extends Data.TaggedError("CliError")<{
  readonly code: string
  readonly detail: string
  readonly exitCode: number
  readonly path?: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return this.detail
  }
}

/** What the command was doing when it failed, for the message. */
export interface FailureContext {
  /** A verb phrase: "read", "list", "copy to". */
  readonly action: string
  /** The guest path involved, without the leading colon. */
  readonly path?: string
  /** The host path involved. */
  readonly hostPath?: string
  /** The target string. */
  readonly target?: string
}

/** A failure ready to print: message, stable code, exit code. */
export interface Failure {
  readonly code: string
  readonly message: string
  readonly exitCode: number
  readonly path?: string
}

// The protocol's errno wording, when it has one.
const errnoText = (code: string): string | undefined => {
  const text = Errors.describeErrno(code)
  return text !== code ? text : undefined
}

const waitHint = (target: string | undefined) =>
  `is the agent running? try \`cuvette wait -H ${target ?? "TARGET"}\``

const hintFor = (code: string, ctx: FailureContext): string | undefined => {
  const guest = ctx.path
  switch (code) {
    case "ENOENT":
    case "ENOTDIR":
      // The shell passed bytes that are not UTF-8, and they reached us as U+FFFD.
      if (guest?.includes("\ufffd"))
        return `a name that is not UTF-8 cannot be typed as it is: pass -b and write it as \`cuvette ls\` shows it (caf\\351.txt)`
      if (guest !== undefined && (ctx.action === "write" || ctx.action === "copy to"))
        return `does the directory exist? create it with \`cuvette mkdir -p :${path.dirname(guest)}\`${ctx.action === "write" ? " or pass -p" : ""}`
      if (guest !== undefined) return `check the path with \`cuvette ls :${path.dirname(guest)}\``
      if (ctx.hostPath !== undefined) return `check the host path ${ctx.hostPath}`
      return undefined
    case "EISDIR":
      return ctx.action === "read" || ctx.action.startsWith("copy")
        ? "use `cuvette cp -r` for a directory"
        : undefined
    case "DISCONNECTED":
      return waitHint(ctx.target)
    default:
      // Only a host path involved (a host directory of `cp -r` that cannot be listed): not the guest's.
      return guest === undefined && ctx.hostPath !== undefined
        ? hostHint(code, undefined, ctx.hostPath)
        : Hints.forCode(code)
  }
}

const where = (ctx: FailureContext): string => {
  const parts: Array<string> = []
  if (ctx.path !== undefined) parts.push(`:${ctx.path}`)
  if (ctx.hostPath !== undefined) parts.push(ctx.hostPath)
  const subject = parts.length > 0 ? ` ${parts.join(" ")}` : ""
  return ctx.target !== undefined ? `${subject} on ${ctx.target}` : subject
}

/** What to try for a failed host file of a copy: the path's own advice, else the protocol's host hint. */
const hostHint = (code: string, operation: unknown, hostPath: string): string | undefined => {
  switch (code) {
    case "ENOENT":
      return operation === "download" ? `create it with \`mkdir -p ${hostPath}\`` : "check the host path"
    case "EISDIR":
      return operation === "upload" ? "use `cuvette cp -r` for a directory" : undefined
    default:
      return Hints.forCode(code, "host")
  }
}

/** Turns anything thrown into a {@link Failure}. */
export const describe = (error: unknown, ctx: FailureContext): Failure => {
  const withPath = (f: Omit<Failure, "path">): Failure =>
    ctx.path !== undefined ? { ...f, path: ctx.path } : f
  const e = error as {
    _tag?: unknown
    code?: unknown
    reason?: unknown
    message?: unknown
    syscall?: unknown
    cause?: unknown
  }
  if (error instanceof UsageError) return { code: "USAGE", message: error.detail, exitCode: ExitCode.Usage }
  if (error instanceof CliError) {
    return {
      code: error.code,
      message: error.detail,
      exitCode: error.exitCode,
      ...(error.path !== undefined ? { path: error.path } : {}),
    }
  }
  const message = typeof e?.message === "string" ? e.message : String(error)
  if (e?._tag === "HostFileError") {
    // The client's HostFileError: this host's file is at fault, not the guest's; its message is "host: PATH: what".
    const h = error as { code: string; path: string; operation: unknown }
    const hint = hostHint(h.code, h.operation, h.path)
    return {
      code: h.code,
      message: `cannot ${ctx.action}${where(ctx)}: ${message}${hint !== undefined ? ` (${hint})` : ""}`,
      exitCode: ExitCode.Failed,
    }
  }
  if (e?._tag === "HostStreamError") {
    // The client's HostStreamError: our stdout (the CLI's only download stream) failed, not the guest.
    const h = error as { code: string; detail: string }
    const hint = h.code === "ENOSPC" ? "free some space on this host" : undefined
    return {
      code: h.code,
      message: `cannot ${ctx.action}${where(ctx)}: host: stdout: ${h.detail}${hint !== undefined ? ` (${hint})` : ""}`,
      exitCode: ExitCode.Failed,
    }
  }
  if (e?._tag === "ConnectError") {
    // The client's message already names the target and what to try; add `cuvette wait` when it does not.
    const reason = typeof e.reason === "string" ? e.reason : "UNREACHABLE"
    if (reason === "INVALID_TARGET") {
      return {
        code: reason,
        message: `${message}; see \`cuvette --help\` for target forms`,
        exitCode: ExitCode.Usage,
      }
    }
    // The agent answered and refused our token at the handshake (not a socket's permissions): exit 4.
    if (reason === "DENIED" && Errors.isAgentError(e.cause)) {
      const why = /wrong token/.test(String(e.cause.message))
        ? "it refused our token (wrong token)"
        : "it requires a token and none was given"
      const where =
        typeof (e as { target?: unknown }).target === "string" ? (e as { target: string }).target : ctx.target
      return {
        code: "DENIED",
        message: `the agent on ${where ?? "the target"} did not let us in: ${why}; pass its token with --token-file FILE or CUVETTE_TOKEN_FILE`,
        exitCode: ExitCode.Denied,
      }
    }
    const retryable =
      reason === "REFUSED" || reason === "TIMEOUT" || reason === "NOT_FOUND" || reason === "UNREACHABLE"
    const text =
      retryable && !message.includes("cuvette wait") ? `${message}; ${waitHint(ctx.target)}` : message
    return withPath({ code: reason, message: text, exitCode: ExitCode.Unreachable })
  }
  const code = typeof e?.code === "string" ? e.code : "ERROR"
  // Agent errors carry the path already ("no such file or directory: /x"); say it once, our way.
  const text = errnoText(code) ?? (message.length > 0 ? message : code)
  const hint = hintFor(code, ctx)
  return withPath({
    code,
    message: `cannot ${ctx.action}${where(ctx)}: ${text}${hint !== undefined ? ` (${hint})` : ""}`,
    exitCode: ExitCode.Failed,
  })
}
