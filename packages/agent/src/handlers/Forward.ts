/**
 * Forwarding: `connect` dials a socket inside the guest (TCP, Unix, AF_VSOCK) and carries it on the
 * call's channels, client to guest on stdin and guest to client on stdout; `listen` listens in the
 * guest and announces each connection it accepts, which an `accept` call then carries the same way.
 * An Eof from the client shuts the socket's write side down, the socket's end is an Eof to the client,
 * so half-close works both ways; a refusal or a reset fails the call with its errno code, and a
 * cancelled call resets the guest connection.
 */
import { Address, Errors, Hints, Operations, type Session } from "@cuvette/protocol"
import { Effect, Exit } from "effect"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as net from "node:net"
import type { Duplex } from "node:stream"
import { drained } from "../internal/drained.js"
import * as native from "../transports/native.js"

/** Connections one listener holds for their `accept` calls; more are closed at once (a full backlog). */
const MAX_WAITING = 64

/** `tcp:127.0.0.1:80`, `unix:/run/app.sock`, `vsock:1:5000`. */
export const describe = (a: Operations.SocketAddress): string =>
  Address.format(a._tag === "vsock" ? { ...a, cid: a.cid ?? Operations.VSOCK_CID_LOCAL } : a)

// Node's codes (and the native addon's reasons) for what the protocol reports under one code.
const aliases: Record<string, Errors.ErrorCode> = {
  EPIPE: "ECONNRESET",
  ECONNABORTED: "ECONNRESET",
  ENETUNREACH: "EHOSTUNREACH",
  ENOTFOUND: "EHOSTUNREACH",
  EAI_AGAIN: "EHOSTUNREACH",
  EAI_NONAME: "EHOSTUNREACH",
  ENODEV: "UNSUPPORTED",
  EAFNOSUPPORT: "UNSUPPORTED",
}

/** A socket failure as an AgentError: "cannot connect to tcp:127.0.0.1:9 in the guest: connection refused". */
export const socketError = (what: string, where: string, cause: unknown): Errors.AgentError => {
  if (Errors.isAgentError(cause)) return cause
  const c = cause as { code?: unknown; reason?: unknown; message?: unknown } | undefined
  const raw = typeof c?.reason === "string" ? c.reason : typeof c?.code === "string" ? c.code : undefined
  const code = (raw !== undefined ? aliases[raw] : undefined) ?? Errors.codeOf({ code: raw })
  if (code === undefined)
    return Errors.make(
      "INTERNAL",
      `cannot ${what} ${where} in the guest: ${typeof c?.message === "string" ? c.message : String(cause)}`,
    )
  const text =
    raw === "ENOTFOUND" || raw === "EAI_NONAME" || raw === "EAI_AGAIN"
      ? "the host name does not resolve"
      : code === "UNSUPPORTED"
        ? "AF_VSOCK is not available here"
        : Errors.describeErrno(code)
  const hint = Hints.forCode(code)
  return Errors.make(code, `cannot ${what} ${where} in the guest: ${text}${hint ? ` (${hint})` : ""}`)
}

const timedOut = (where: string, ms: number) =>
  Errors.make("ETIMEDOUT", `cannot connect to ${where} in the guest: no answer within ${ms / 1000} s`)

/** Dials `to` with half-open sockets (its end does not end ours); interrupting it abandons the attempt. */
const dial = (to: Operations.SocketAddress, timeoutMs: number, where: string) =>
  Effect.async<Duplex, Errors.AgentError>((resume) => {
    if (to._tag === "vsock") {
      let abandoned = false
      native.connectVsock(to.cid ?? Operations.VSOCK_CID_LOCAL, to.port, timeoutMs, true).then(
        (socket) => (abandoned ? socket.destroy() : resume(Effect.succeed(socket))),
        (e: unknown) =>
          resume(
            Effect.fail(
              (e as { reason?: unknown }).reason === "ETIMEDOUT"
                ? timedOut(where, timeoutMs)
                : socketError("connect to", where, e),
            ),
          ),
      )
      return Effect.sync(() => void (abandoned = true))
    }
    if (to._tag === "tcp" && to.port === 0)
      return resume(Effect.fail(Errors.make("EINVAL", `cannot connect to ${where}: port 0 is not a port`)))
    const socket =
      to._tag === "unix"
        ? net.connect({ path: to.path, allowHalfOpen: true })
        : net.connect({ host: to.host, port: to.port, allowHalfOpen: true, noDelay: true })
    const timer = setTimeout(() => {
      socket.destroy()
      resume(Effect.fail(timedOut(where, timeoutMs)))
    }, timeoutMs)
    const onError = (e: unknown) => {
      clearTimeout(timer)
      resume(Effect.fail(socketError("connect to", where, e)))
    }
    socket.once("error", onError)
    socket.once("connect", () => {
      clearTimeout(timer)
      socket.off("error", onError)
      resume(Effect.succeed(socket))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      socket.destroy()
    })
  })

/** Resets a TCP socket (RST); other sockets (Unix, vsock), which have no reset, are closed. */
const reset = (socket: Duplex): void => {
  const s = socket as Duplex & { resetAndDestroy?: () => void }
  try {
    if (typeof s.resetAndDestroy === "function" && !s.destroyed) return void s.resetAndDestroy()
  } catch {
    // ERR_INVALID_HANDLE_TYPE: not a TCP socket.
  }
  s.destroy()
}

/** Closes a guest socket when its call ends; a cancelled call resets it, as the host side was reset. */
const release = (socket: Duplex, exit: Exit.Exit<unknown, unknown>) =>
  Effect.sync(() => (Exit.isInterrupted(exit) ? reset(socket) : socket.destroy()))

/**
 * Carries `socket` on the call's channels until both directions ended: the result then counts the
 * bytes each way. Each direction keeps its own flow control: a chunk read from the socket is sent once
 * the client granted credit for it (the socket is paused meanwhile), and a chunk from the client is
 * read only once the socket drained the previous one.
 */
const carry = (socket: Duplex, call: Session.ServerCall<"connect" | "accept">, where: string) =>
  Effect.async<Operations.Result<"connect">, Errors.AgentError>((resume) => {
    let sent = 0
    let received = 0
    let open = 2
    let settled = false
    const settle = (error?: Errors.AgentError) => {
      if (settled) return
      settled = true
      resume(error ? Effect.fail(error) : Effect.succeed({ sent, received }))
    }
    const directionDone = () => {
      if (--open === 0) settle()
    }
    socket.on("error", (e) => settle(socketError("carry the connection to", where, e)))
    // guest -> client: each chunk waits for the client's credit while the socket is paused.
    let delivered: Promise<void> = Promise.resolve()
    socket.on("data", (chunk: Buffer) => {
      received += chunk.byteLength
      socket.pause()
      delivered = delivered.then(() => call.stdout.write(chunk)).then(() => void socket.resume())
      // A write fails when the call ended (its interruption closes the socket) or could not send.
      delivered.catch((e: unknown) => settle(Errors.fromUnknown(e, `carry ${where}`)))
    })
    socket.once("end", () => {
      delivered.then(
        () => {
          call.stdout.end()
          directionDone()
        },
        () => {},
      )
    })
    // A socket closed with a direction still open was destroyed (a reset without an error event):
    // the call must not wait for that direction forever.
    const closedEarly = () => {
      if (open > 0)
        settle(Errors.make("ECONNRESET", `the connection to ${where} in the guest closed before its end`))
    }
    socket.once("close", () => void delivered.then(closedEarly, closedEarly))
    socket.resume()
    // client -> guest: the client's Eof shuts down the socket's write side.
    void (async () => {
      for await (const chunk of call.stdin) {
        sent += chunk.byteLength
        if (!socket.write(chunk)) await drained(socket)
        if (socket.destroyed) return
      }
      socket.end()
      directionDone()
    })().catch(() => {
      // The call ended (cancelled, or the session went away): its interruption closes the socket.
    })
    return Effect.sync(() => void (settled = true))
  })

/** connect: dials `args.to` in the guest and carries the connection. */
export const connect = (args: Operations.Args<"connect">, call: Session.ServerCall<"connect">) =>
  Effect.gen(function* () {
    const where = describe(args.to)
    const timeoutMs = args.timeoutMs || Operations.DEFAULT_CONNECT_TIMEOUT_MS
    const socket = yield* Effect.acquireRelease(dial(args.to, timeoutMs, where), release)
    const s = socket as Duplex & { localAddress?: string; localPort?: number }
    call.emit({
      _tag: "Connected",
      local: s.localAddress !== undefined ? `${s.localAddress}:${s.localPort}` : "",
      remote: where,
    })
    return yield* carry(socket, call, where)
  })

// ---- listen and accept

interface Waiting {
  readonly socket: Duplex
  readonly where: string
  readonly owner: symbol
  readonly timer: ReturnType<typeof setTimeout>
}

/**
 * Connections accepted and not yet claimed, by a random id: unguessable, so only the session that saw
 * the Accepted event can carry the connection.
 */
const waiting = new Map<string, Waiting>()

const forget = (id: string) => {
  const w = waiting.get(id)
  if (w === undefined) return undefined
  waiting.delete(id)
  clearTimeout(w.timer)
  return w
}

type AnyServer = net.Server | native.Server

const listenOn = (on: Operations.SocketAddress, where: string) =>
  Effect.tryPromise({
    try: async (): Promise<{ server: AnyServer; address: string }> => {
      if (on._tag === "vsock") {
        const server = await native.listenVsock(on.port, true)
        return { server, address: where }
      }
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true })
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject)
        server.listen(on._tag === "unix" ? { path: on.path } : { host: on.host, port: on.port }, () => {
          server.off("error", reject)
          resolve()
        })
      })
      const bound = server.address()
      return {
        server,
        address:
          on._tag === "tcp" && bound !== null && typeof bound === "object"
            ? describe({ ...on, port: bound.port })
            : where,
      }
    },
    catch: (e) => socketError("listen on", where, e),
  })

/** listen: listens on `args.on` in the guest until cancelled, announcing each connection. */
export const listen = (args: Operations.Args<"listen">, call: Session.ServerCall<"listen">) =>
  Effect.gen(function* () {
    const where = describe(args.on)
    const owner = Symbol(where)
    const { server, address } = yield* Effect.acquireRelease(listenOn(args.on, where), ({ server }) =>
      Effect.sync(() => {
        server.close()
        for (const [id, w] of waiting)
          if (w.owner === owner) {
            forget(id)
            w.socket.destroy()
          }
        if (args.on._tag === "unix") fs.rmSync(args.on.path, { force: true })
      }),
    )
    call.emit({ _tag: "Listening", address })
    server.on("error", () => {}) // A failed accept (EMFILE) does not end the listener.
    server.on("connection", (socket: Duplex & { remoteAddress?: string; remotePort?: number }) => {
      socket.on("error", () => {})
      let mine = 0
      for (const w of waiting.values()) if (w.owner === owner) mine++
      if (mine >= MAX_WAITING) return void socket.destroy()
      socket.pause()
      const id = crypto.randomBytes(16).toString("hex")
      const peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : where
      const timer = setTimeout(() => forget(id)?.socket.destroy(), Operations.ACCEPT_TIMEOUT_MS)
      waiting.set(id, { socket, where: `${address} (client ${peer})`, owner, timer })
      socket.once("close", () => void forget(id))
      call.emit({ _tag: "Accepted", connection: id, peer })
    })
    return yield* Effect.never
  })

/** accept: carries a connection a listen accepted. */
export const accept = (args: Operations.Args<"accept">, call: Session.ServerCall<"accept">) =>
  Effect.gen(function* () {
    const w = forget(args.connection)
    if (w === undefined)
      return yield* Effect.fail(
        Errors.make(
          "ENOENT",
          `no connection ${Errors.quote(args.connection, 40)} waits to be accepted: it was accepted already, waited longer than ${Operations.ACCEPT_TIMEOUT_MS / 1000} s, or its listener closed`,
        ),
      )
    const socket = yield* Effect.acquireRelease(Effect.succeed(w.socket), release)
    return yield* carry(socket, call, w.where)
  })
