/** The agent's configuration, shared by its handlers and transports. */

/** How an agent behaves; every field is optional and off by default. */
export interface Config {
  /** Shared secret: clients must prove they know it (HMAC challenge), required for TCP off loopback. */
  readonly token?: Uint8Array
  /**
   * With a token, seal the sessions of every transport (AEAD records after the handshake). TCP
   * sessions with a token are always sealed; serial ports never are.
   */
  readonly seal?: boolean
  /**
   * Only these operations (wire names) are served; the others answer DENIED. ping and info are always
   * served, so a host can tell a live agent and see what it allows. Unset: everything.
   */
  readonly allow?: ReadonlyArray<string>
  /** Serve `crash` (agent and kernel); DENIED otherwise. */
  readonly allowCrash?: boolean
  /** Run `CMD poweroff|reboot` instead of powering off the machine (tests record the call). */
  readonly powerCommand?: string
  /** Run `CMD kernel` instead of writing "c" to /proc/sysrq-trigger. */
  readonly crashCommand?: string
  /** How the agent "crashes" for `crash agent`; defaults to killing its own process with SIGKILL. */
  readonly onCrashAgent?: () => void
  /**
   * Permission bits of Unix listening sockets (default 0o600: the agent's user only, whatever the
   * umask). 0o660 lets the socket's group drive the agent too.
   */
  readonly socketMode?: number
  readonly keepaliveMs?: number
  readonly deadPeerMs?: number
  /** Where log lines go (default: stderr, prefixed with `cuvette-agent:`). */
  readonly log?: (line: string) => void
}

/** Logs through the configured sink. */
export const logger =
  (config: Config) =>
  (line: string): void =>
    config.log ? config.log(line) : void process.stderr.write(`cuvette-agent: ${line}\n`)
