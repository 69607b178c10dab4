/**
 * Socket transports: listeners (Unix, TCP, AF_VSOCK, AF_HYPERV) that serve every connection as its own
 * session, and the guest-initiated connect loop that keeps dialling the host and serves each
 * connection until it ends.
 */
import { Retry } from "@cuvette/protocol"
import { Data, Effect } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import type { Duplex } from "node:stream"
import { type Address, format, isLoopback } from "./address.js"
import * as native from "./native.js"

/** A listening transport. */
export interface Listener {
  /** `unix:/run/cuvette.sock`, `tcp:127.0.0.1:4919` (the real port when 0 was asked). */
  readonly address: string
  readonly close: () => Promise<void>
}

/** Refusing to start: says why and what to do. */
export class StartError extends Data.TaggedError("StartError")<{ readonly message: string }> {}

/** One attempt to dial the host failed; the connect loop logs it and tries again. */
export class DialError extends Data.TaggedError("DialError")<{ readonly message: string }> {}

const listening = (server: net.Server, options: net.ListenOptions, where: string) =>
  new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new StartError({
          message: `cannot listen on ${where}: ${e.code === "EADDRINUSE" ? "address already in use (another agent running?)" : e.code === "EACCES" ? "permission denied" : e.message}`,
        }),
      ),
    )
    server.listen(options, () => resolve())
  })

/** A net.Server or a native (vsock) one: the same "connection"/"error" events and close(). */
type AnyServer = net.Server | native.Server

const closeServer = (server: AnyServer, sockets: Set<Duplex>) =>
  new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy()
    server.close(() => resolve())
  })

const track = (server: AnyServer, onSocket: (socket: Duplex, description: string) => void, base: string) => {
  const sockets = new Set<Duplex>()
  let n = 0
  server.on("connection", (socket: Duplex & { remoteAddress?: string; remotePort?: number }) => {
    sockets.add(socket)
    socket.once("close", () => sockets.delete(socket))
    const peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : `#${++n}`
    onSocket(socket, `${base} (client ${peer})`)
  })
  // An accept error (EMFILE) must not take the agent down: the listener stays up.
  server.on("error", () => {})
  return sockets
}

/** Permission bits of a Unix listening socket unless the agent is told otherwise: its owner only. */
export const DEFAULT_SOCKET_MODE = 0o600

/** Sets the umask, where this thread may (a worker thread may not); returns the previous one. */
const setUmask = (mask: number): number | undefined => {
  try {
    return process.umask(mask)
  } catch {
    return undefined
  }
}

/**
 * Listens on a Unix, TCP or vsock address. TCP off loopback needs a token: anyone who reaches the port
 * could otherwise run commands as the agent's user. A Unix socket is created owner-only whatever the
 * umask (anyone who can connect to it drives the agent), then set to `socketMode` when one is given.
 */
export const listen = async (
  address: Address,
  options: { readonly token?: Uint8Array | undefined; readonly socketMode?: number | undefined },
  onSocket: (socket: Duplex, description: string) => void,
): Promise<Listener> => {
  const where = format(address)
  switch (address._tag) {
    case "unix": {
      // A socket file left by an agent that died is in the way; anything else there is not ours to delete.
      const st = fs.lstatSync(address.path, { throwIfNoEntry: false })
      if (st?.isSocket()) fs.rmSync(address.path, { force: true })
      else if (st)
        throw new StartError({
          message: `cannot listen on ${where}: the path exists and is not a socket; remove it or choose another`,
        })
      const server = net.createServer()
      const sockets = track(server, onSocket, where)
      const mode = options.socketMode ?? DEFAULT_SOCKET_MODE
      const umask = setUmask(0o177)
      try {
        await listening(server, { path: address.path }, where)
      } finally {
        if (umask !== undefined) process.umask(umask)
      }
      if (process.platform !== "win32") fs.chmodSync(address.path, mode)
      return {
        address: where,
        close: async () => {
          await closeServer(server, sockets)
          fs.rmSync(address.path, { force: true })
        },
      }
    }
    case "tcp": {
      if (!isLoopback(address.host) && !options.token)
        throw new StartError({
          message:
            `refusing to listen on ${where} without --token-file: anyone who can reach this address could run commands as this agent's user. ` +
            `Pass --token-file FILE (clients then need the same file), or listen on 127.0.0.1`,
        })
      const server = net.createServer({ noDelay: true })
      const sockets = track(server, onSocket, where)
      await listening(server, { host: address.host, port: address.port }, where)
      const bound = server.address() as net.AddressInfo
      return {
        address: format({ ...address, port: bound.port }),
        close: () => closeServer(server, sockets),
      }
    }
    case "vsock": {
      const server = await native.listenVsock(address.port)
      const sockets = track(server, onSocket, where)
      return { address: where, close: () => closeServer(server, sockets) }
    }
  }
}

/** Dials a Unix, TCP or vsock address once, within `timeoutMs`. */
export const dial = (address: Address, timeoutMs: number): Promise<Duplex> => {
  if (address._tag === "vsock") return native.connectVsock(address.cid, address.port, timeoutMs)
  return new Promise((resolve, reject) => {
    const socket =
      address._tag === "unix"
        ? net.connect({ path: address.path })
        : net.connect({ host: address.host, port: address.port })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new DialError({ message: `no answer within ${timeoutMs / 1000} s` }))
    }, timeoutMs)
    socket.once("connect", () => {
      clearTimeout(timer)
      socket.removeAllListeners("error")
      resolve(socket)
    })
    socket.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(
        e.code === "ENOENT"
          ? new DialError({ message: "no such socket (the host is not listening yet)" })
          : e.code === "ECONNREFUSED"
            ? new DialError({ message: "connection refused (the host is not listening yet)" })
            : e,
      )
    })
  })
}

/**
 * Keeps a guest-initiated connection up: dial, serve until it ends, dial again, a second apart
 * ({@link Retry.every}). Each distinct failure reason is logged once, so a host that is not there yet does not
 * flood the log. Ends when the signal aborts.
 */
export const connectLoop = (options: {
  readonly describe: string
  readonly dial: () => Promise<Duplex>
  readonly serve: (socket: Duplex) => Promise<void>
  readonly log: (line: string) => void
  readonly signal: AbortSignal
  readonly retryMs?: number
}): Promise<void> => {
  const schedule = Retry.every(options.retryMs ?? 1000)
  let lastReason: string | undefined
  const dialOnce = Effect.tryPromise({
    // A socket that arrives after the loop was stopped is closed, never served.
    try: (interrupted) =>
      options.dial().then((socket) => (interrupted.aborted ? (socket.destroy(), socket) : socket)),
    catch: (e) => (e instanceof Error ? e.message : String(e)),
  })
  const connected = Retry.retry(dialOnce, {
    schedule,
    onRetry: (_, reason) => {
      if (reason !== lastReason)
        options.log(`cannot connect to ${options.describe}: ${reason}; retrying every second`)
      lastReason = reason
    },
  })
  const serveOne = Effect.flatMap(connected, (socket) =>
    Effect.promise(() => {
      lastReason = undefined
      options.log(`connected to ${options.describe}`)
      return options.serve(socket)
    }).pipe(
      Effect.onInterrupt(() => Effect.sync(() => socket.destroy())),
      Effect.tap(() => options.log(`disconnected from ${options.describe}; connecting again`)),
    ),
  )
  return Effect.runPromiseExit(Effect.repeat(serveOne, schedule), { signal: options.signal }).then(
    () => undefined,
  )
}
