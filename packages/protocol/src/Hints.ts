/**
 * What to try next, in one place: by error code (an errno name or an AgentError code) for a failure on
 * the guest or on this host, by reason and transport for failed connections (the client's ConnectError),
 * and the one wording for passing a token. Whoever reports a code composes on top of this table: the CLI
 * adds hints that need a command's paths, the client picks the connection hint by transport, and
 * `@cuvette/native` states its reason only, leaving the hint to whichever of them called it.
 */
import * as Constants from "./Constants.js"

/** How to pass the token an agent requires. */
export const token =
  "pass the agent's token with --token-file FILE or CUVETTE_TOKEN_FILE; in the library, the token or tokenFile option"

/** Where a failure happened: in the guest (the agent reported it) or on this host. */
export type Side = "guest" | "host"

// One entry per code; a code whose remedy depends on the side has a wording for each (none for a side
// where it does not apply: `cuvette rm -r` does not remove a host directory).
const byCode: Partial<Record<string, string | Partial<Record<Side, string>>>> = {
  EACCES: {
    guest: "the agent's user may not access it: run the agent as root or fix the permissions",
    host: "check its permissions on this host",
  },
  EPERM: {
    guest: "the agent's user may not do this: run the agent as root",
    host: "check its permissions on this host",
  },
  EROFS: "the file system is mounted read-only",
  ENOSPC: { guest: "free some space on the guest", host: "free some space on this host" },
  ENOTEMPTY: { guest: "use `cuvette rm -r` to remove it with its contents" },
  EEXIST: "remove it first or choose another name",
  DENIED: "the agent does not allow it (its --allow and --allow-crash options)",
  UNSUPPORTED: "this agent or guest cannot do it; `cuvette info` lists its capabilities",
  VERSION: "update the agent or cuvette so both speak a common protocol version",
  ETIMEDOUT: "raise --timeout",
  EXDEV: "rename works within one file system: copy it, then remove the original",
  E2BIG: "pass large data on stdin or in a file instead of in arguments or the environment",
  ELOOP: { guest: "a symbolic link on the path points back at itself: check it with `cuvette stat`" },
  ENAMETOOLONG: "a file name is limited to 255 bytes and a path to 4096",
  ECONNREFUSED: "nothing listens there: start the service, or check the address and port",
  ECONNRESET: "the service closed the connection abruptly: see its own log",
  EHOSTUNREACH: "check the host name or address, and that the network is up",
  EADDRINUSE: "another program listens there: stop it, or choose another port",
  EADDRNOTAVAIL: "that address is not one of the machine's own: use 127.0.0.1, or an address it has",
}

// A VM socket's (AF_VSOCK, AF_HYPERV) own failures, where the errno names what the OS lacks. Apart from
// byCode: a file operation's ENODEV is no missing vsock module.
const byVmSocketCode: Partial<Record<string, string>> = {
  ENODEV:
    "no vsock transport is loaded: in a guest load vmw_vsock_virtio_transport (or hv_sock / vmw_vsock_vmci_transport), on a host vhost_vsock",
  EAFNOSUPPORT:
    "this system has no VM sockets: on Linux `modprobe vsock` (CONFIG_VSOCKETS); on Windows enable Hyper-V",
}

/** The hint for a failed VM socket (a `@cuvette/native` reason), for the agent's log. */
export const forVmSocket = (code: string): string | undefined => byVmSocketCode[code] ?? forCode(code)

/** The hint for an error code (an errno name or an AgentError code) on that side, if there is one. */
export const forCode = (code: string, side: Side = "guest"): string | undefined => {
  const hint = byCode[code]
  return typeof hint === "object" ? hint[side] : hint
}

const kind = (target: string): string => target.slice(0, Math.max(0, target.indexOf(":"))) || target

/**
 * What to try when connecting to `target` failed for `reason` (a client ConnectError reason: REFUSED,
 * NOT_FOUND, TIMEOUT, UNREACHABLE, DENIED, UNSUPPORTED, NOT_BUILT, PROTOCOL, ...), by transport.
 */
export const forConnection = (reason: string, target: string): string | undefined => {
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
        return `no guest connected: start the agent with \`--connect unix:${rest}\`, or check the VMM's <vsock_path>_${Constants.DEFAULT_PORT} socket path`
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
      return "this platform has no prebuilt addon: in a source checkout run `npm run build:native`, elsewhere set CUVETTE_NATIVE_BINDING to an addon built for it"
    case "PROTOCOL":
      return "is a Cuvette agent (of a compatible release) listening there?"
    default:
      return undefined
  }
}
