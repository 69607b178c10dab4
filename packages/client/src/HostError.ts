/**
 * Failures on the host side of a call, never the agent's: an option the library cannot use
 * ({@link OptionError}), a host file that cannot be read or written ({@link HostFileError}) and a
 * caller's stream that failed ({@link HostStreamError}). Guest failures stay the protocol's AgentError,
 * so a caller can tell which side to blame.
 */
import * as Data from "effect/Data"

/** An option the operation does not know, or a value it cannot use: nothing is silently ignored. */
export class OptionError extends Data.TaggedError("OptionError")<{
  /** The operation: "exec", "spawn", "download", ... */
  readonly operation: string
  /** The option, as a dotted path: "env.FOO", "pty.size". */
  readonly option: string
  readonly detail: string
}> {
  override get message(): string {
    return `${this.operation}: option ${this.option}: ${this.detail}`
  }
}

/** A host file of an upload or download failed: `path` is the user's path (or its missing directory). */
export class HostFileError extends Data.TaggedError("HostFileError")<{
  readonly operation: "upload" | "download"
  /** The host path to blame, as the user knows it (never a temporary name). */
  readonly path: string
  /** The errno code: ENOENT, EACCES, ENOSPC, EISDIR, ... */
  readonly code: string
  /** What is wrong with `path`: "no such directory", "permission denied". */
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `host: ${this.path}: ${this.detail}`
  }
}

/** A caller's stream failed: a download's destination Writable errored, or closed before the end. */
export class HostStreamError extends Data.TaggedError("HostStreamError")<{
  readonly operation: "upload" | "download"
  /**
   * The stream error's code (EPIPE, ENOSPC, ...), or Node's ERR_STREAM_DESTROYED /
   * ERR_STREAM_PREMATURE_CLOSE for a stream destroyed or closed before the transfer ended.
   */
  readonly code: string
  /** What went wrong: "broken pipe", "closed before the download ended". */
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `host: the ${this.operation === "download" ? "destination" : "source"} stream: ${this.detail}`
  }
}

/** True when `u` is an {@link OptionError}. */
export const isOptionError = (u: unknown): u is OptionError => u instanceof OptionError

/** True when `u` is a {@link HostFileError}. */
export const isHostFileError = (u: unknown): u is HostFileError => u instanceof HostFileError

/** True when `u` is a {@link HostStreamError}. */
export const isHostStreamError = (u: unknown): u is HostStreamError => u instanceof HostStreamError

/** True when `u` is a failure of this host's side of a copy: a {@link HostFileError} or a {@link HostStreamError}. */
export const isHostError = (u: unknown): u is HostFileError | HostStreamError =>
  isHostFileError(u) || isHostStreamError(u)
