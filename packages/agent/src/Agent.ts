/**
 * The Cuvette guest agent: the handler of every v1 operation, a session per connection, and
 * `start`, which brings up the transports asked for (or the defaults, as OpenVMM's pipette does:
 * AF_VSOCK listen + connect out to the host, plus the virtio-serial port when there is one).
 */
import {
  Address as ProtocolAddress,
  type ByteStream,
  Constants,
  Errors,
  Operations,
  Session,
} from "@cuvette/protocol"
import { ByteStream as Streams } from "@cuvette/protocol"
import { Effect, Runtime } from "effect"
import type { Duplex } from "node:stream"
import * as os from "node:os"
import * as Exec from "./handlers/Exec.js"
import * as Files from "./handlers/Files.js"
import * as Forward from "./handlers/Forward.js"
import * as System from "./handlers/System.js"
import { trackWrites } from "./internal/bufferPool.js"
import { type Config, logger } from "./internal/config.js"
import { AGENT_NAME, AGENT_VERSION } from "./internal/version.js"
import * as Address from "./transports/address.js"
import * as native from "./transports/native.js"
import * as Serial from "./transports/serial.js"
import { connectLoop, dial, listen, type Listener, StartError } from "./transports/sockets.js"

export type { Config } from "./internal/config.js"
export { StartError } from "./transports/sockets.js"

/** Operations an agent serves whatever `allow` says: liveness and what it allows. */
export const ALWAYS_ALLOWED: ReadonlyArray<Operations.Name> = ["ping", "info"]

/** Operations served along with another: a connection to accept exists only through a listen. */
const IMPLIED_BY: Partial<Record<Operations.Name, Operations.Name>> = { accept: "listen" }

/** The operations `config.allow` admits (all when unset). */
export const allowed = (config: Config): ReadonlyArray<Operations.Name> =>
  config.allow === undefined
    ? Operations.names
    : Operations.names.filter(
        (n) =>
          ALWAYS_ALLOWED.includes(n) ||
          config.allow!.includes(n) ||
          (IMPLIED_BY[n] !== undefined && config.allow!.includes(IMPLIED_BY[n])),
      )

/** The handler of every v1 operation this agent serves (exec under a terminal needs Bun: Pty.ts). */
export const handlers = (config: Config): Session.Handlers<never> => {
  const served = allowed(config)
  const all: Session.Handlers<never> = {
    ping: System.ping,
    info: System.info(config, served),
    time: System.time,
    exec: Exec.exec(config),
    readFile: Files.readFile,
    writeFile: Files.writeFile,
    stat: Files.stat,
    list: Files.list,
    mkdir: Files.mkdir,
    remove: Files.remove,
    rename: Files.rename,
    chmod: Files.chmod,
    kmsg: System.kmsg,
    mount: System.mount,
    shutdown: System.shutdown(config),
    crash: System.crash(config),
    connect: Forward.connect,
    listen: Forward.listen,
    accept: Forward.accept,
  }
  if (config.allow === undefined) return all
  const denied = (op: string) => () =>
    Effect.fail(
      Errors.make(
        "DENIED",
        `${op} is not allowed on this agent (it serves ${served.join(", ")}; see its --allow option)`,
      ),
    )
  return Object.fromEntries(
    Operations.names.map((op) => [op, served.includes(op) ? all[op] : denied(op)]),
  ) as Session.Handlers<never>
}

/** What the agent announces in its Welcome. */
export const identity = () => ({
  name: AGENT_NAME,
  version: AGENT_VERSION,
  os: process.platform,
  arch: process.arch,
  hostname: os.hostname(),
})

/**
 * Serves one established byte stream (a socket, a serial port, an in-memory pair). `tcp`: it came
 * over TCP, where a session with a token is always sealed.
 */
export const serveStream = (
  stream: ByteStream.ByteStream,
  config: Config,
  transport: { readonly tcp?: boolean } = {},
): Session.AgentSession =>
  Session.startAgent(
    stream,
    {
      identity: identity(),
      handlers: handlers(config),
      ...(config.token ? { token: config.token } : {}),
      ...(config.seal || transport.tcp ? { seal: true } : {}),
      ...(config.keepaliveMs !== undefined ? { keepaliveMs: config.keepaliveMs } : {}),
      ...(config.deadPeerMs !== undefined ? { deadPeerMs: config.deadPeerMs } : {}),
    },
    Runtime.defaultRuntime,
  )

/** Options of {@link start}: the config plus the transports. With none given, the defaults run. */
export interface StartOptions extends Config {
  /** `unix:PATH`, `tcp:HOST[:PORT]`, `vsock[:any[:PORT]]`. */
  readonly listen?: ReadonlyArray<string>
  /** `unix:PATH`, `tcp:HOST[:PORT]`, `vsock:CID[:PORT]`: guest-initiated, kept connected. */
  readonly connect?: ReadonlyArray<string>
  /** Serial ports (virtio-serial character devices) to serve. */
  readonly serial?: ReadonlyArray<string>
  /** Default transports even though others were given (implied when none are). */
  readonly defaults?: boolean
  /** Defaults: also dial out to the host (CID 2:4919). Off in tests: never dial a real host from a test machine. */
  readonly vsockConnect?: boolean
  /** Defaults: the vsock / Hyper-V socket port (4919). */
  readonly vsockPort?: number
  /** Defaults: look for the virtio-serial port under this root (tests). */
  readonly serialRoot?: string
}

/** A running agent. */
export interface Running {
  /** Where it listens or connects (`unix:/run/b.sock`, `tcp:127.0.0.1:41234`, `vsock:any:4919`, `serial:/dev/vport1p1`). */
  readonly addresses: ReadonlyArray<string>
  /** Why default transports that could not come up are missing. */
  readonly unavailable: ReadonlyArray<string>
  /** Sessions open now. */
  readonly sessions: () => number
  /** Closes listeners and sessions, stops connecting. */
  readonly stop: () => Promise<void>
}

/** Starts the agent's transports; resolves once every listener listens. */
export const start = async (options: StartOptions = {}): Promise<Running> => {
  const log = logger(options)
  const config: Config = options
  const sessions = new Set<Session.AgentSession>()
  const closers: Array<() => Promise<void>> = []
  const addresses: Array<string> = []
  const unavailable: Array<string> = []
  const abort = new AbortController()

  const serve = (stream: ByteStream.ByteStream, tcp = false): Session.AgentSession => {
    const session = serveStream(stream, config, { tcp })
    sessions.add(session)
    void session.ended.then((error) => {
      sessions.delete(session)
      if (error && error.code !== "DISCONNECTED") log(`session ${stream.description} ended: ${error.message}`)
    })
    return session
  }
  // Its writes hand pooled output buffers back to the pool once the socket let go of them.
  const serveSocket = (socket: Duplex, description: string, tcp = false) =>
    serve(Streams.fromDuplex(trackWrites(socket), { description }), tcp)

  const stop = async () => {
    abort.abort()
    for (const s of sessions) s.close("the agent is stopping")
    await Promise.all(closers.map((c) => c().catch(() => {})))
  }

  const keepConnecting = (address: Address.Address, timeoutMs: number) => {
    const describe = Address.format(address)
    addresses.push(describe)
    void connectLoop({
      describe,
      dial: () => dial(address, timeoutMs),
      serve: async (socket) => void (await serveSocket(socket, describe, address._tag === "tcp").ended),
      log,
      signal: abort.signal,
    })
  }

  try {
    for (const text of options.listen ?? []) {
      const address = Address.parse(text, "listen")
      const listener: Listener = await listen(
        address,
        { token: options.token, socketMode: options.socketMode },
        (socket, description) => serveSocket(socket, description, address._tag === "tcp"),
      )
      closers.push(listener.close)
      addresses.push(listener.address)
    }
    for (const text of options.connect ?? []) keepConnecting(Address.parse(text, "connect"), 5000)
    for (const file of options.serial ?? []) {
      const port = await Serial.serve(file, serve, log)
      closers.push(port.close)
      addresses.push(port.address)
    }
    const explicit =
      (options.listen?.length ?? 0) + (options.connect?.length ?? 0) + (options.serial?.length ?? 0)
    if (options.defaults || explicit === 0) await startDefaults()
  } catch (e) {
    await stop()
    throw e
  }
  if (addresses.length === 0)
    throw new StartError({
      message: `no transport could start: ${unavailable.join("; ")}. Pass --listen unix:PATH or --listen tcp:127.0.0.1, or --serial PATH`,
    })
  return { addresses, unavailable, sessions: () => sessions.size, stop }

  async function startDefaults() {
    const port = options.vsockPort ?? Constants.DEFAULT_PORT
    if (process.platform === "win32") {
      try {
        const server = await native.listenHvsock(port)
        const listener = trackServer(server, `hvsock:wildcard:${port}`)
        closers.push(listener)
        addresses.push(`hvsock:wildcard:${port}`)
      } catch (e) {
        unavailable.push(`AF_HYPERV listen: ${native.reason(e)}`)
      }
    } else {
      try {
        const listener = await listen(
          { _tag: "vsock", cid: ProtocolAddress.VSOCK_CID_ANY, port },
          {},
          serveSocket,
        )
        closers.push(listener.close)
        addresses.push(listener.address)
      } catch (e) {
        unavailable.push(`AF_VSOCK listen on any:${port}: ${native.reason(e)}`)
      }
      // The host connects in on Hyper-V and vhost-vsock; OpenVMM's hybrid vsock needs the guest to dial out.
      if (options.vsockConnect !== false) {
        if (addresses.some((a) => a.startsWith("vsock:")))
          keepConnecting({ _tag: "vsock", cid: ProtocolAddress.VSOCK_CID_HOST, port }, 5000)
        else unavailable.push("AF_VSOCK connect to the host: no vsock here")
      }
      const file = Serial.findPort(Serial.PORT_NAME, options.serialRoot ?? "/")
      if (file) {
        try {
          const serialPort = await Serial.serve(file, serve, log)
          closers.push(serialPort.close)
          addresses.push(serialPort.address)
        } catch (e) {
          unavailable.push(native.reason(e))
        }
      } else unavailable.push(`no virtio-serial port named ${Serial.PORT_NAME}`)
    }
    for (const u of unavailable) log(`default transport unavailable: ${u}`)
  }

  function trackServer(server: native.Server, description: string) {
    const sockets = new Set<Duplex>()
    server.on("connection", (socket: Duplex) => {
      sockets.add(socket)
      socket.once("close", () => sockets.delete(socket))
      serveSocket(socket, description)
    })
    server.on("error", (e: Error) => log(`${description}: ${e.message}`))
    return () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      })
  }
}

/** Effect form of {@link start}: the agent runs while the scope is open. */
export const make = (options: StartOptions = {}) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => start(options),
      catch: (e) => Errors.make("INTERNAL", e instanceof Error ? e.message : String(e)),
    }),
    (running) => Effect.promise(() => running.stop()),
  )
