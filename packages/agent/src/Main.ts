/**
 * `cuvette-agent` command line: parses flags, starts the transports, prints the ready marker, and
 * runs until SIGTERM/SIGINT (or the Windows service manager says stop). Composition only: the work
 * is in Agent, the handlers and the transports.
 */
import { Constants, Handshake, Operations } from "@cuvette/protocol"
import { Data } from "effect"
import * as fs from "node:fs"
import { parseArgs, type ParseArgsConfig } from "node:util"
import * as Agent from "./Agent.js"
import { AGENT_VERSION } from "./internal/version.js"
import { AddressError } from "./transports/address.js"
import * as Service from "./transports/windowsService.js"

/** Parsed command line. */
export interface Flags {
  readonly listen: ReadonlyArray<string>
  readonly connect: ReadonlyArray<string>
  readonly serial: ReadonlyArray<string>
  readonly tokenFile?: string
  /** Seal the sessions of every transport, not only TCP's (`--seal`). */
  readonly seal: boolean
  readonly logFile?: string
  /** Operations to serve (`--allow`); undefined: all. */
  readonly allow?: ReadonlyArray<string>
  readonly allowCrash: boolean
  readonly powerCommand?: string
  readonly crashCommand?: string
  /** `--socket-mode`: permission bits of Unix listening sockets. */
  readonly socketMode?: number
  readonly service: boolean
  readonly vsockConnect: boolean
  readonly help: boolean
  readonly version: boolean
}

/** A usage error: the message says which flag and what is expected; the agent exits 2. */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

export const usage = `cuvette-agent ${AGENT_VERSION}: the Cuvette guest agent

Usage: cuvette-agent [options]

With no transport options it listens on AF_VSOCK (any CID, port ${Constants.DEFAULT_PORT}), keeps connecting
out to the host (CID 2, port ${Constants.DEFAULT_PORT}), and serves the virtio-serial port org.cuvette.agent.0
when present (AF_HYPERV on Windows).

  --listen ADDR          unix:PATH | tcp:HOST[:PORT] | vsock[:any[:PORT]]   (repeatable)
  --connect ADDR         unix:PATH | tcp:HOST[:PORT] | vsock:CID[:PORT]: dial the host, reconnect after a disconnect
                         (PORT defaults to ${Constants.DEFAULT_PORT}, as for cuvette --target)
  --serial PATH          serve a virtio-serial port (character device)   (repeatable)
  --socket-mode MODE     permission bits of --listen unix: sockets, octal (default 600: this user only,
                         whatever the umask; 660 lets the socket's group in)
  --token-file FILE      require clients to prove this shared token (needed for TCP off loopback);
                         TCP sessions are then sealed: every frame after the handshake is encrypted and
                         authenticated, and clients that cannot seal are refused
  --seal                 with --token-file, seal the sessions of every transport (vsock, Unix sockets), not
                         only TCP's
  --allow OPS            serve only these operations (comma-separated, repeatable; ping and info always),
                         e.g. --allow readFile,stat,list,kmsg for a read-only agent; others answer DENIED
  --no-vsock-connect     with the defaults, do not dial out to the host
  --allow-crash          serve crash agent/kernel (fault tests only)
  --power-command CMD    run "CMD poweroff|reboot" instead of powering off
  --crash-command CMD    run "CMD kernel" instead of crashing the kernel
  --service              run under the Windows service manager (a console start serves as usual)
  --log-file FILE        append log lines, with timestamps, to FILE instead of stderr
  --version, --help
`

const options = {
  listen: { type: "string", multiple: true },
  connect: { type: "string", multiple: true },
  serial: { type: "string", multiple: true },
  "token-file": { type: "string" },
  seal: { type: "boolean" },
  "socket-mode": { type: "string" },
  "log-file": { type: "string" },
  allow: { type: "string", multiple: true },
  "no-vsock-connect": { type: "boolean" },
  "allow-crash": { type: "boolean" },
  "power-command": { type: "string" },
  "crash-command": { type: "string" },
  service: { type: "boolean" },
  version: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"]

/** parseArgs' complaint, in the agent's words. */
const usageError = (e: unknown): UsageError => {
  const { code, message } = e as { code?: string; message?: string }
  const quoted = /'([^']*)'/.exec(message ?? "")?.[1] ?? ""
  const option = quoted.split(" ")[0]!.replace(/,$/, "")
  switch (code) {
    case "ERR_PARSE_ARGS_UNKNOWN_OPTION":
      return new UsageError({ message: `unknown option ${quoted} (see --help)` })
    case "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL":
      return new UsageError({
        message: `unexpected argument "${quoted}": the agent takes options only (see --help)`,
      })
    case "ERR_PARSE_ARGS_INVALID_OPTION_VALUE":
      return new UsageError({
        message: /does not take an argument/.test(message ?? "")
          ? `${quoted.split(", ").pop()} takes no value (see --help)`
          : `${option} needs a value (see --help; a value starting with - is written ${option}=VALUE)`,
      })
    default:
      return new UsageError({ message: `${message ?? String(e)} (see --help)` })
  }
}

/** Parses argv (without node and the script). */
export const parse = (argv: ReadonlyArray<string>): Flags => {
  let values
  try {
    ;({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }))
  } catch (e) {
    throw usageError(e)
  }
  const allow = values.allow?.flatMap((list) =>
    list
      .split(",")
      .map((o) => o.trim())
      .filter((o) => o !== ""),
  )
  for (const op of allow ?? [])
    if (!Operations.isName(op))
      throw new UsageError({
        message: `--allow ${op}: not an operation; choose from ${Operations.names.join(", ")}`,
      })
  const socketMode = values["socket-mode"]
  if (socketMode !== undefined && !/^0?o?[0-7]{3}$/.test(socketMode))
    throw new UsageError({
      message: `--socket-mode ${socketMode}: give octal permission bits, e.g. 600 or 660`,
    })
  return {
    listen: values.listen ?? [],
    connect: values.connect ?? [],
    serial: values.serial ?? [],
    allowCrash: values["allow-crash"] ?? false,
    seal: values.seal ?? false,
    service: values.service ?? false,
    vsockConnect: !(values["no-vsock-connect"] ?? false),
    help: values.help ?? false,
    version: values.version ?? false,
    ...(values["token-file"] !== undefined ? { tokenFile: values["token-file"] } : {}),
    ...(values["log-file"] !== undefined ? { logFile: values["log-file"] } : {}),
    ...(allow !== undefined && allow.length > 0 ? { allow } : {}),
    ...(values["power-command"] !== undefined ? { powerCommand: values["power-command"] } : {}),
    ...(values["crash-command"] !== undefined ? { crashCommand: values["crash-command"] } : {}),
    ...(socketMode !== undefined ? { socketMode: parseInt(socketMode.replace(/^0?o?/, ""), 8) } : {}),
  }
}

const readToken = (file: string): Uint8Array => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (e) {
    throw new UsageError({ message: `cannot read the token file ${file}: ${(e as Error).message}` })
  }
  const token = Handshake.tokenFromText(text)
  if (token.byteLength === 0) throw new UsageError({ message: `the token file ${file} is empty` })
  return token
}

const waitForStop = () =>
  new Promise<string>((resolve) => {
    const on = (signal: string) => () => resolve(signal)
    process.once("SIGTERM", on("SIGTERM"))
    process.once("SIGINT", on("SIGINT"))
  })

/**
 * Where log lines go: stderr, or appended to `--log-file` with a timestamp (a Windows service has no
 * stderr). An unwritable log file is a usage error before anything starts.
 */
const logSink = (file: string | undefined): ((line: string) => void) => {
  if (file === undefined) return (line) => void process.stderr.write(`cuvette-agent: ${line}\n`)
  let fd: number
  try {
    fd = fs.openSync(file, "a")
  } catch (e) {
    throw new UsageError({ message: `cannot open the log file ${file}: ${(e as Error).message}` })
  }
  return (line) => {
    try {
      fs.writeSync(fd, `${new Date().toISOString()} ${line}\n`)
    } catch {
      // A full disk must not stop the agent.
    }
  }
}

/** Serves until SIGTERM/SIGINT; the ready marker tells scripts and the VM tests that it listens. */
const serveUntilSignal = async (
  options: Agent.StartOptions,
  log: (line: string) => void,
): Promise<number> => {
  const running = await Agent.start(options)
  log(`serving on ${running.addresses.join(", ")}`)
  // Handlers first: whoever reads the marker may send SIGTERM at once.
  const stop = waitForStop()
  process.stderr.write(`${Constants.READY_MARKER}\n`)
  const signal = await stop
  log(`${signal}: stopping`)
  await running.stop()
  return 0
}

/** Runs the agent; resolves with the process exit code (bin.ts exits with it). */
export const run = async (argv: ReadonlyArray<string>): Promise<number> => {
  let flags: Flags
  let log: (line: string) => void
  try {
    flags = parse(argv)
    log = logSink(flags.logFile)
  } catch (e) {
    process.stderr.write(`cuvette-agent: ${(e as Error).message}\n`)
    return 2
  }
  if (flags.help) {
    process.stdout.write(usage)
    return 0
  }
  if (flags.version) {
    process.stdout.write(`${AGENT_VERSION}\n`)
    return 0
  }
  try {
    const token = flags.tokenFile !== undefined ? readToken(flags.tokenFile) : undefined
    if (flags.seal && !token)
      throw new UsageError({ message: "--seal needs --token-file: the session keys come from the token" })
    const options: Agent.StartOptions = {
      listen: flags.listen,
      connect: flags.connect,
      serial: flags.serial,
      allowCrash: flags.allowCrash,
      seal: flags.seal,
      vsockConnect: flags.vsockConnect,
      log,
      ...(flags.allow !== undefined ? { allow: flags.allow } : {}),
      ...(token ? { token } : {}),
      ...(flags.powerCommand !== undefined ? { powerCommand: flags.powerCommand } : {}),
      ...(flags.crashCommand !== undefined ? { crashCommand: flags.crashCommand } : {}),
      ...(flags.socketMode !== undefined ? { socketMode: flags.socketMode } : {}),
    }
    log(
      `starting (${AGENT_VERSION}, ${process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.version}`}, pid ${process.pid})`,
    )
    const serveConsole = () => serveUntilSignal(options, log)
    return flags.service ? await Service.run({ options, log, serveConsole }) : await serveConsole()
  } catch (e) {
    log(e instanceof Error ? e.message : String(e))
    // A bad --listen/--connect address is a usage error too, found once the transports are parsed.
    return e instanceof UsageError || e instanceof AddressError ? 2 : 1
  }
}
