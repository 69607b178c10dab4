/**
 * The one local error of the client: a connection to an agent could not be made (or was lost before
 * the handshake finished). Its message says what failed, where, and what to try next; the raw cause
 * (an errno error, a native error, the handshake's AgentError) is kept in `cause`.
 */
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
export const reasonOfCode = (code: unknown): Reason => {
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

const kind = (target: string): string => target.slice(0, Math.max(0, target.indexOf(":"))) || target

/** What to try next, by reason and transport. */
export const hintFor = (reason: Reason, target: string): string | undefined => {
  const k = kind(target)
  const rest = target.slice(k.length + 1)
  switch (reason) {
    case "REFUSED":
    case "NOT_FOUND":
    case "TIMEOUT":
      if (k === "unix" || k === "tcp")
        return `is the agent running? start it with \`npx cuvette-agent --listen ${target}\`, or use \`cuvette wait\` to wait for it`
      if (k === "hybrid")
        return "is the VM running and the agent started in the guest? the hybrid vsock socket closes until the guest listens; retry with a longer --timeout"
      if (k === "serial")
        return "is QEMU running with a chardev socket server on that path, and the agent serving the virtio-serial port org.cuvette.agent.0?"
      if (k === "vsock")
        return "is the guest up and the agent listening on vsock? check the CID (`cuvette --target vsock:CID:PORT`) and that vhost_vsock is loaded"
      if (k === "hyperv" || k === "hyperv-id")
        return "is the VM running and the agent started in the guest (VTL2 needs ?vtl=2)?"
      if (k === "listen-unix")
        return `no guest connected: start the agent with \`--connect unix:${rest}\`, or check the VMM's <vsock_path>_4919 socket path`
      if (k === "listen-vsock")
        return "no guest connected: is the agent in the guest connecting out to CID 2?"
      return undefined
    case "UNREACHABLE":
      return "check the address, and that the VM is running"
    case "DENIED":
      return "check the socket's permissions"
    case "UNSUPPORTED":
      return k === "hyperv" || k === "hyperv-id"
        ? "Hyper-V sockets need a Windows host with Hyper-V"
        : "AF_VSOCK needs a Linux host with the vsock modules loaded (vhost_vsock / vsock_loopback)"
    case "NOT_BUILT":
      return "build it with `npm run build:native` from the repository root"
    case "PROTOCOL":
      return "is a Cuvette agent (of a compatible release) listening there?"
    case "INVALID_TARGET":
    case "ABORTED":
      return undefined
  }
}
