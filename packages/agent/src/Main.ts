/**
 * `cuvette-agent` command line: parses flags, starts the transports, prints the ready marker, and
 * runs until SIGTERM/SIGINT (or the Windows service manager says stop). Composition only: the work
 * is in Agent, the handlers and the transports.
 */
import { Constants, Handshake, Operations } from "@cuvette/protocol"
import * as fs from "node:fs"
import * as Agent from "./Agent.js"
import { AGENT_VERSION } from "./internal/version.js"
import * as Service from "./transports/windowsService.js"

/** Parsed command line. */
export interface Flags {
  readonly listen: ReadonlyArray<string>
  readonly connect: ReadonlyArray<string>
  readonly serial: ReadonlyArray<string>
  readonly tokenFile?: string
  readonly logFile?: string
  /** Operations to serve (`--allow`); undefined: all. */
  readonly allow?: ReadonlyArray<string>
  readonly allowCrash: boolean
  readonly powerCommand?: string
  readonly crashCommand?: string
  readonly service: boolean
  readonly vsockConnect: boolean
  readonly help: boolean
  readonly version: boolean
}

/** A usage error: the message says which flag and what is expected. */
export class UsageError extends Error {
  override readonly name = "UsageError"
}

export const usage = `cuvette-agent ${AGENT_VERSION}: the Cuvette guest agent

Usage: cuvette-agent [options]

With no transport options it listens on AF_VSOCK (any CID, port ${Constants.DEFAULT_PORT}), keeps connecting
out to the host (CID 2, port ${Constants.DEFAULT_PORT}), and serves the virtio-serial port org.cuvette.agent.0
when present (AF_HYPERV on Windows).

  --listen ADDR          unix:PATH | tcp:HOST[:PORT] | vsock[:any[:PORT]]   (repeatable)
  --connect ADDR         unix:PATH | tcp:HOST[:PORT] | vsock:CID[:PORT]: dial the host, reconnect after a disconnect
                         (PORT defaults to ${Constants.DEFAULT_PORT}, as for cuvette --target)
  --serial PATH          serve a virtio-serial port (character device)   (repeatable)
  --token-file FILE      require clients to prove this shared token (needed for TCP off loopback)
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

/** Parses argv (without node and the script). */
export const parse = (argv: ReadonlyArray<string>): Flags => {
  const listen: Array<string> = []
  const connect: Array<string> = []
  const serial: Array<string> = []
  const out: {
    tokenFile?: string
    logFile?: string
    allow?: Array<string>
    powerCommand?: string
    crashCommand?: string
  } = {}
  let allowCrash = false
  let service = false
  let vsockConnect = true
  let help = false
  let version = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1
    const name = eq > 0 ? arg.slice(0, eq) : arg
    const value = (): string => {
      if (eq > 0) return arg.slice(eq + 1)
      const v = argv[++i]
      if (v === undefined) throw new UsageError(`${name} needs a value (see --help)`)
      return v
    }
    switch (name) {
      case "--listen":
        listen.push(value())
        break
      case "--connect":
        connect.push(value())
        break
      case "--serial":
        serial.push(value())
        break
      case "--token-file":
        out.tokenFile = value()
        break
      case "--log-file":
        out.logFile = value()
        break
      case "--allow":
        for (const op of value()
          .split(",")
          .map((o) => o.trim())
          .filter((o) => o !== "")) {
          if (!Operations.isName(op))
            throw new UsageError(
              `--allow ${op}: not an operation; choose from ${Operations.names.join(", ")}`,
            )
          ;(out.allow ??= []).push(op)
        }
        break
      case "--power-command":
        out.powerCommand = value()
        break
      case "--crash-command":
        out.crashCommand = value()
        break
      case "--allow-crash":
        allowCrash = true
        break
      case "--service":
        service = true
        break
      case "--no-vsock-connect":
        vsockConnect = false
        break
      case "--help":
      case "-h":
        help = true
        break
      case "--version":
        version = true
        break
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(arg)} (see --help)`)
    }
  }
  return { listen, connect, serial, allowCrash, service, vsockConnect, help, version, ...out }
}

const readToken = (file: string): Uint8Array => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (e) {
    throw new UsageError(`cannot read the token file ${file}: ${(e as Error).message}`)
  }
  const token = Handshake.tokenFromText(text)
  if (token.byteLength === 0) throw new UsageError(`the token file ${file} is empty`)
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
    throw new UsageError(`cannot open the log file ${file}: ${(e as Error).message}`)
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
    const options: Agent.StartOptions = {
      listen: flags.listen,
      connect: flags.connect,
      serial: flags.serial,
      allowCrash: flags.allowCrash,
      vsockConnect: flags.vsockConnect,
      log,
      ...(flags.allow !== undefined ? { allow: flags.allow } : {}),
      ...(token ? { token } : {}),
      ...(flags.powerCommand !== undefined ? { powerCommand: flags.powerCommand } : {}),
      ...(flags.crashCommand !== undefined ? { crashCommand: flags.crashCommand } : {}),
    }
    log(
      `starting (${AGENT_VERSION}, ${process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.version}`}, pid ${process.pid})`,
    )
    const serveConsole = () => serveUntilSignal(options, log)
    return flags.service ? await Service.run({ options, log, serveConsole }) : await serveConsole()
  } catch (e) {
    log(e instanceof Error ? e.message : String(e))
    return e instanceof UsageError ? 2 : 1
  }
}
