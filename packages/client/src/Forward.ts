/**
 * Port forwarding through the agent. A {@link Connection} is one connection carried by a `connect`
 * (or `accept`) call, as a Node Duplex: what is written reaches the guest socket, what the guest sends
 * is read, `end()` half-closes. {@link forward} listens on this host and carries each connection it
 * accepts to a guest address; {@link reverse} has the agent listen in the guest and carries each
 * connection there to a host address. Many connections share one session, each with its own flow
 * control, so a slow one never stalls the others.
 */
import * as net from "node:net"
import { Duplex } from "node:stream"
import { Errors, Operations, type Session } from "@cuvette/protocol"
import * as Data from "effect/Data"
import { OptionError } from "./HostError.js"

/** A socket in the guest: `{ _tag: "tcp", host, port }`, `{ _tag: "unix", path }`, `{ _tag: "vsock", port, cid? }`. */
export type GuestAddress = Operations.SocketAddress

/** A socket on this host: a TCP port (on `host`, loopback unless said otherwise) or a Unix socket path. */
export type HostAddress = { readonly host?: string; readonly port: number } | { readonly path: string }

/** What a connection carried, once both directions ended. */
export type Carried = Operations.Result<"connect">

/** A host socket could not listen or connect: `code` is its errno (EADDRINUSE, ECONNREFUSED, ...). */
export class HostSocketError extends Data.TaggedError("HostSocketError")<{
  /** "listen on" or "connect to". */
  readonly action: string
  /** The host address, as `127.0.0.1:8080` or a path. */
  readonly address: string
  readonly code: string
  readonly cause?: unknown
}> {
  override get message(): string {
    const text = Errors.describeErrno(this.code as Errors.ErrorCode)
    return `cannot ${this.action} ${this.address} on this host: ${text === this.code ? String((this.cause as Error | undefined)?.message ?? text) : text}`
  }
}

/** `127.0.0.1:8080`, `[::1]:8080`, or the socket path. */
export const formatHost = (a: HostAddress): string =>
  "path" in a
    ? a.path
    : `${(a.host ?? "127.0.0.1").includes(":") ? `[${a.host}]` : (a.host ?? "127.0.0.1")}:${a.port}`

/** `tcp:127.0.0.1:80`, `unix:/run/app.sock`, `vsock:1:5000`. */
export const formatGuest = (a: GuestAddress): string =>
  a._tag === "unix"
    ? `unix:${a.path}`
    : a._tag === "vsock"
      ? `vsock:${a.cid ?? Operations.VSOCK_CID_LOCAL}:${a.port}`
      : `tcp:${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`

/** True for addresses only this machine reaches: 127.0.0.0/8, ::1, localhost. */
export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host) || host === "::ffff:127.0.0.1"

/**
 * One connection through the agent. It emits "connect" once the guest connection is established
 * (connect calls) and "error" with the agent's AgentError when the guest refused or reset it;
 * destroying it cancels the call, which resets the guest connection.
 */
export class Connection extends Duplex {
  /** What it carried, once both directions ended; rejects as the call failed. */
  readonly carried: Promise<Carried>

  /**
   * @internal `owned`: the writer never reuses a chunk it wrote (a socket's reads are fresh buffers),
   * so chunks are sent as they are instead of copied.
   */
  constructor(
    private readonly call: Session.ClientCall<"connect"> | Session.ClientCall<"accept">,
    private readonly owned = false,
  ) {
    super({ allowHalfOpen: true })
    this.carried = call.result
    this.carried.then(
      () => {},
      (e: unknown) => {
        if (!this.destroyed) this.destroy(e as Error)
      },
    )
    if (call.op === "connect")
      void (call as Session.ClientCall<"connect">).nextEvent().then((e) => {
        if (e?._tag === "Connected") this.emit("connect")
      })
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // Unless owned, a private copy: the caller may reuse its buffer once the callback fired, and the
    // session may not have sent it yet.
    this.call.stdin.write(this.owned ? chunk : new Uint8Array(chunk)).then(
      () => callback(),
      (e: unknown) => callback(e as Error),
    )
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.call.stdin.end()
    callback()
  }

  override _read(): void {
    this.call.stdout.read().then(
      (c) => {
        if (c !== undefined) return void this.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength))
        // The guest's end (Eof), or the call's end: a failed call destroys this with its error instead.
        if (!this.call.isSettled) return void this.push(null)
        this.call.result.then(
          () => this.push(null),
          () => {},
        )
      },
      () => {},
    )
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Both directions ended (autoDestroy): the agent's result is on its way, and closes this.
    if (error === null && this.readableEnded && this.writableFinished)
      return void this.call.result.then(
        () => callback(),
        (e: unknown) => callback(e as Error),
      )
    if (!this.call.isSettled) this.call.cancel()
    this.call.stdout.discard()
    callback(error)
  }
}

/** Opens one connection to `to` in the guest. */
export const connect = (
  session: Session.ClientSession,
  to: GuestAddress,
  o: { readonly timeoutMs?: number } = {},
): Connection =>
  new Connection(
    session.open("connect", { to, ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}) }),
  )

/** One forwarded connection, as callbacks see it. */
export interface ConnectionInfo {
  /** Where it came from: `127.0.0.1:53211` (forward) or the guest's peer (reverse). */
  readonly peer: string
  /** Where it goes. */
  readonly to: string
}

/** Callbacks of {@link forward} and {@link reverse}. */
export interface ForwardEvents {
  /** A connection was accepted. */
  readonly onConnection?: (info: ConnectionInfo) => void
  /** A connection failed (refused, reset): only it is closed, the listener stays up. */
  readonly onConnectionError?: (error: Error, info: ConnectionInfo) => void
}

/** Options of {@link forward}. */
export interface ForwardOptions extends ForwardEvents {
  /** Where to listen on this host: a port (on loopback unless `host` says otherwise), or a Unix socket path. */
  readonly listen: HostAddress
  /** Where each connection goes in the guest. */
  readonly to: GuestAddress
  /** Allow a `listen.host` other than loopback: whoever reaches that address reaches the guest service. */
  readonly bindAny?: boolean
}

/** Options of {@link reverse}. */
export interface ReverseOptions extends ForwardEvents {
  /** Where the agent listens in the guest (port 0: any free port). */
  readonly listen: GuestAddress
  /** Where each connection goes on this host. */
  readonly to: HostAddress
  /** Allow a guest `listen.host` other than loopback: whoever reaches it in the guest's network reaches `to`. */
  readonly bindAny?: boolean
}

/** A running forward (either direction). */
export interface Forwarder {
  /** Where it listens: `127.0.0.1:8080` on this host (forward), `tcp:127.0.0.1:8080` in the guest (reverse). */
  readonly address: string
  /** Connections carried now. */
  readonly connections: () => number
  /**
   * Resolves when it stopped: undefined after {@link close}, else why (the agent went away:
   * DISCONNECTED; the guest listener failed).
   */
  readonly closed: Promise<Error | undefined>
  /** Stops listening and resets every connection it carries. */
  readonly close: () => Promise<void>
}

/** Resets a TCP socket (RST); a Unix socket, which has no reset, is closed. */
const reset = (socket: net.Socket): void => {
  try {
    if (!socket.destroyed) return void socket.resetAndDestroy()
  } catch {
    // ERR_INVALID_HANDLE_TYPE: not a TCP socket.
  }
  socket.destroy()
}

/** Joins a host socket and a connection through the agent; either one's failure resets the other. */
const splice = (
  socket: net.Socket,
  conn: Connection,
  info: ConnectionInfo,
  events: ForwardEvents,
  done: () => void,
) => {
  let failed = false
  const fail = (error: Error, side: "host" | "guest") => {
    if (failed) return
    failed = true
    if (side === "guest") reset(socket)
    else conn.destroy()
    events.onConnectionError?.(error, info)
  }
  socket.on("error", (e) => fail(e, "host"))
  conn.on("error", (e) => fail(e, "guest"))
  socket.pipe(conn)
  conn.pipe(socket)
  // A host socket closed before its end was passed on (destroyed, reset) cuts the guest side off too.
  socket.once("close", () => {
    if (!conn.writableEnded) conn.destroy()
    if (conn.destroyed) done()
    else conn.once("close", done)
  })
}

const listenError = (address: string, e: unknown) =>
  new HostSocketError({
    action: "listen on",
    address,
    code: String((e as { code?: unknown }).code ?? "EIO"),
    cause: e,
  })

const checkBind = (operation: string, host: string | undefined, bindAny: boolean | undefined) => {
  if (host !== undefined && !isLoopback(host) && bindAny !== true)
    throw new OptionError({
      operation,
      option: "listen.host",
      detail: `${host} is not a loopback address: whoever reaches it reaches the service; pass bindAny: true to listen there anyway`,
    })
}

/**
 * Listens on this host (loopback by default) and carries every connection to `o.to` in the guest, one
 * `connect` call each. Resolves once it listens; a port in use rejects with a {@link HostSocketError}.
 */
export const forward = async (session: Session.ClientSession, o: ForwardOptions): Promise<Forwarder> => {
  if (!("path" in o.listen)) checkBind("forward", o.listen.host, o.bindAny)
  const to = formatGuest(o.to)
  const sockets = new Set<net.Socket>()
  const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.add(socket)
    const info = { peer: `${socket.remoteAddress ?? "local"}:${socket.remotePort ?? ""}`, to }
    o.onConnection?.(info)
    let conn: Connection
    try {
      // The host socket's reads are fresh buffers: sent without a copy.
      conn = new Connection(session.open("connect", { to: o.to }), true)
    } catch (e) {
      // The session is closed: the forwarder closes with it.
      reset(socket)
      o.onConnectionError?.(e as Error, info)
      return
    }
    splice(socket, conn, info, o, () => sockets.delete(socket))
  })
  const where = { ...o.listen, ...("path" in o.listen ? {} : { host: o.listen.host ?? "127.0.0.1" }) }
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) => reject(listenError(formatHost(where), e)))
    server.listen("path" in where ? { path: where.path } : { host: where.host, port: where.port }, () =>
      resolve(),
    )
  })
  server.on("error", () => {}) // An accept that failed (EMFILE): the listener stays up.
  const bound = server.address()
  const address = formatHost(
    typeof bound === "object" && bound !== null ? { ...where, port: bound.port } : where,
  )
  return running(server, sockets, address, session).forwarder
}

/** A Forwarder over `server`; it stops when asked (closed: undefined) or when the session ends (closed: why). */
const running = (
  server: net.Server,
  sockets: Set<net.Socket>,
  address: string,
  session: Session.ClientSession,
  onStop: () => Promise<void> = async () => {},
) => {
  let resolveClosed!: (e: Error | undefined) => void
  const closed = new Promise<Error | undefined>((r) => (resolveClosed = r))
  let stopping: Promise<void> | undefined
  const stop = (reason: Error | undefined): Promise<void> =>
    (stopping ??= (async () => {
      await onStop()
      for (const s of sockets) reset(s)
      if (server.listening) await new Promise<void>((r) => server.close(() => r()))
      resolveClosed(reason)
    })())
  void session.ended.then((e) =>
    stop(e ?? new Errors.AgentError({ code: "DISCONNECTED", message: "the session with the agent closed" })),
  )
  const forwarder: Forwarder = {
    address,
    connections: () => sockets.size,
    closed,
    close: () => stop(undefined),
  }
  return { forwarder, stop }
}

/**
 * Has the agent listen at `o.listen` in the guest and carries every connection there to `o.to` on this
 * host, one `accept` call each. Resolves once the guest listens; a failure to listen rejects with the
 * agent's AgentError (EADDRINUSE, ...).
 */
export const reverse = async (session: Session.ClientSession, o: ReverseOptions): Promise<Forwarder> => {
  if (o.listen._tag === "tcp") checkBind("reverse", o.listen.host, o.bindAny)
  const to = formatHost("path" in o.to ? o.to : { host: o.to.host ?? "127.0.0.1", port: o.to.port })
  const listener = session.open("listen", { on: o.listen })
  const first = await listener.nextEvent()
  if (first?._tag !== "Listening") {
    await listener.result
    throw new Errors.AgentError({ code: "INTERNAL", message: "the guest listener ended before it listened" })
  }
  const sockets = new Set<net.Socket>()
  const carry = (connection: string, peer: string) => {
    const info = { peer, to }
    o.onConnection?.(info)
    let conn: Connection
    try {
      conn = new Connection(session.open("accept", { connection }), true)
    } catch (e) {
      o.onConnectionError?.(e as Error, info)
      return
    }
    const socket =
      "path" in o.to
        ? net.connect({ path: o.to.path, allowHalfOpen: true })
        : net.connect({ host: o.to.host ?? "127.0.0.1", port: o.to.port, allowHalfOpen: true, noDelay: true })
    sockets.add(socket)
    const refused = (e: NodeJS.ErrnoException) => {
      sockets.delete(socket)
      conn.destroy()
      o.onConnectionError?.(
        new HostSocketError({ action: "connect to", address: to, code: e.code ?? "EIO", cause: e }),
        info,
      )
    }
    socket.once("error", refused)
    socket.once("connect", () => {
      socket.off("error", refused)
      splice(socket, conn, info, o, () => sockets.delete(socket))
    })
  }
  // No host server: the guest listener is the one to close.
  const { forwarder, stop } = running(new net.Server(), sockets, first.address, session, () => {
    listener.cancel()
    return listener.result.then(
      () => {},
      () => {},
    )
  })
  void (async () => {
    for (let e = await listener.nextEvent(); e !== undefined; e = await listener.nextEvent())
      if (e._tag === "Accepted") carry(e.connection, e.peer)
    // The listener ended: cancelled by close(), or it failed in the guest.
    const error = await listener.result.then(
      () => undefined,
      (err: unknown) => err as Error,
    )
    void stop(error)
  })()
  return forwarder
}
