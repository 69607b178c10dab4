/**
 * The one error type of `@cuvette/native`: what failed, where, a stable `reason`, and the raw OS error
 * (no advice: the caller adds it from the protocol's `Hints` by `reason`).
 * errno (Linux) and WSA/Win32 codes (Windows) become reasons in one helper, {@link reasonOf}.
 */
import { Data } from "effect"

/** Stable failure reasons; OS codes outside this list become "UNKNOWN" (the raw code stays in `code`). */
export type Reason =
  | "ECONNREFUSED"
  | "ETIMEDOUT"
  | "EADDRINUSE"
  | "EADDRNOTAVAIL"
  | "EACCES"
  | "ENODEV"
  | "EAFNOSUPPORT"
  | "EHOSTUNREACH"
  | "ENETUNREACH"
  | "ECONNRESET"
  | "ECONNABORTED"
  | "EINVAL"
  | "EMFILE"
  | "UNSUPPORTED"
  | "NOT_BUILT"
  | "INVALID_ARGUMENT"
  | "UNKNOWN"

// Linux asm-generic/errno-base.h + errno.h. Fixed here (not os.constants) so the mapping is the same on
// every host, and tests can check Linux codes on any OS.
const linuxErrno: Record<number, Reason> = {
  1: "EACCES", // EPERM: same remedy as EACCES (privileges)
  2: "ENODEV", // ENOENT: opening /dev/vsock when the vsock module is not loaded
  13: "EACCES",
  19: "ENODEV",
  22: "EINVAL",
  23: "EMFILE", // ENFILE
  24: "EMFILE",
  32: "ECONNRESET", // EPIPE: sending to a peer that closed: the same remedy
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  101: "ENETUNREACH",
  103: "ECONNABORTED",
  104: "ECONNRESET",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
  113: "EHOSTUNREACH",
}

// winerror.h: WSAE* (100xx) and the Win32 errors Hyper-V socket calls report.
const windowsCodes: Record<number, Reason> = {
  5: "EACCES", // ERROR_ACCESS_DENIED
  1225: "ECONNREFUSED", // ERROR_CONNECTION_REFUSED
  1460: "ETIMEDOUT", // ERROR_TIMEOUT
  10013: "EACCES", // WSAEACCES
  10022: "EINVAL", // WSAEINVAL
  10024: "EMFILE", // WSAEMFILE
  10047: "EAFNOSUPPORT", // WSAEAFNOSUPPORT: no Hyper-V sockets (Hyper-V not enabled, or wine)
  10048: "EADDRINUSE", // WSAEADDRINUSE
  10049: "EADDRNOTAVAIL", // WSAEADDRNOTAVAIL
  10050: "ENETUNREACH", // WSAENETDOWN
  10051: "ENETUNREACH", // WSAENETUNREACH: VM exists but its VMBus channel is not up
  10053: "ECONNABORTED", // WSAECONNABORTED
  10054: "ECONNRESET", // WSAECONNRESET
  10060: "ETIMEDOUT", // WSAETIMEDOUT
  10061: "ECONNREFUSED", // WSAECONNREFUSED: VM up, nothing listening on the service id
  10065: "EHOSTUNREACH", // WSAEHOSTUNREACH: no VM with that id (or VM off)
}

const reasons = new Set<string>([
  ...Object.values(linuxErrno),
  ...Object.values(windowsCodes),
  "UNSUPPORTED",
  "NOT_BUILT",
])

const nameAliases: Record<string, Reason> = {
  EPERM: "EACCES",
  ENOENT: "ENODEV",
  ENFILE: "EMFILE",
  ENETDOWN: "ENETUNREACH",
  ERR_SOCKET_CONNECTION_TIMEOUT: "ETIMEDOUT",
}

/**
 * Maps an OS error code to a stable reason: a number is read as errno on Linux and as a WSA/Win32 code
 * on Windows (`platform` picks the table); a string code such as Node's `"ECONNRESET"` is taken by name.
 */
export const reasonOf = (code: number | string | undefined, platform: string = process.platform): Reason => {
  if (typeof code === "string") {
    if (reasons.has(code)) return code as Reason
    if (code in nameAliases) return nameAliases[code]
    if (/^WSA/.test(code)) return reasonOf(code.slice(3).replace(/^E?/, "E"), platform)
    return "UNKNOWN"
  }
  if (typeof code !== "number") return "UNKNOWN"
  const table = platform === "win32" ? windowsCodes : linuxErrno
  // Node reports libuv errors as negative errno values.
  return table[Math.abs(code)] ?? (code >= 10000 ? windowsCodes[code] : undefined) ?? "UNKNOWN"
}

/**
 * A failed native socket operation; `message` says what failed, where and why, computed from the fields.
 * It carries no hint: what to try depends on who called (the client picks one by transport, the agent
 * for its listeners), and both take it from the protocol's one table (`Hints`), keyed by `reason`.
 */
export class NativeError extends Data.TaggedError("NativeError")<{
  /** Stable reason to branch on. */
  readonly reason: Reason
  /** What was attempted, e.g. "vsock connect" or "hvsock listen". */
  readonly operation: string
  /** Where: "cid:port", "vmid:serviceid", a path. */
  readonly target?: string | undefined
  /** Extra words for the message (e.g. which argument is wrong). */
  readonly detail?: string | undefined
  /** Raw OS code (errno / WSA / Win32) or Node error code. */
  readonly code?: number | string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    const where = this.target === undefined ? "" : ` ${this.target}`
    const code =
      this.code === undefined
        ? ""
        : ` (${this.reason === "UNKNOWN" ? "" : `${this.reason}, `}code ${this.code})`
    const what = this.detail ?? (this.cause instanceof Error ? this.cause.message : this.reason)
    return `${this.operation}${where} failed: ${what}${code}`
  }
}

/** Wraps any thrown value (addon error with errno/syscall, Node error with code) into a NativeError. */
export const fromCause = (operation: string, target: string | undefined, cause: unknown): NativeError => {
  if (cause instanceof NativeError) return cause
  const raw = cause as { errno?: unknown; code?: unknown } | undefined
  // Node's own errors carry a string code and a libuv errno (negative, and platform-specific on Windows):
  // prefer the name. The addon's errors carry only the raw OS errno / WSA code.
  const code =
    typeof raw?.code === "string" ? raw.code : typeof raw?.errno === "number" ? raw.errno : undefined
  return new NativeError({ reason: reasonOf(code), operation, target, code, cause })
}

/** An argument error, raised before any system call. */
export const invalidArgument = (operation: string, detail: string, target?: string): NativeError =>
  new NativeError({ reason: "INVALID_ARGUMENT", operation, target, detail })

/** The operation exists only on another OS. */
export const unsupported = (operation: string, detail: string): NativeError =>
  new NativeError({ reason: "UNSUPPORTED", operation, detail })
