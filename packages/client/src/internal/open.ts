// Opening a session to a target: dial (or accept) a byte stream, run the handshake, map failures to
// ConnectError, and retry on the shared backoff schedule when asked to.
import { type ByteStream, Errors, Hints, Retry, Session } from "@cuvette/protocol"
import { Cause, Effect, Exit, Option } from "effect"
import { ConnectError, isConnectError, isRetryable } from "../ConnectError.js"
import * as Target from "../Target.js"
import * as hybrid from "./transports/hybrid.js"
import * as hyperv from "./transports/hyperv.js"
import * as listen from "./transports/listen.js"
import { type DialOptions, remaining } from "./transports/net.js"
import * as serial from "./transports/serial.js"
import * as tcp from "./transports/tcp.js"
import * as unix from "./transports/unix.js"
import * as vsock from "./transports/vsock.js"

/** Everything an attempt needs. */
export interface OpenOptions extends DialOptions {
  readonly session: Session.ClientOptions
  readonly retry: boolean
  /** After the handshake, also round-trip a ping (wait: the agent really answers). */
  readonly ping: boolean
  readonly runner?: hyperv.Runner | undefined
}

/** Dials a connecting target and returns its byte stream. */
const dial = (t: Target.Target, text: string, o: OpenOptions): Promise<ByteStream.ByteStream> => {
  switch (t._tag) {
    case "unix":
      return unix.dial(t.path, text, o)
    case "tcp":
      return tcp.dial(t.host, t.port, text, o)
    case "serial":
      return serial.dial(t.path, text, o)
    case "hybrid":
      return hybrid.dial(t.path, t.port, text, o)
    case "vsock":
      return vsock.dial(t.cid, t.port, text, o)
    case "hyperv":
      return hyperv.dial(t, text, o)
    case "listen-unix":
    case "listen-vsock":
      throw new Error(`${t._tag} is not dialled`)
  }
}

/** Turns a handshake failure (an AgentError) into a ConnectError. */
export const handshakeError = (text: string, e: unknown): ConnectError => {
  if (isConnectError(e)) return e
  if (Errors.isAgentError(e)) {
    const reason =
      e.code === "DENIED"
        ? "DENIED"
        : e.code === "ETIMEDOUT"
          ? "TIMEOUT"
          : e.code === "DISCONNECTED"
            ? "REFUSED"
            : "PROTOCOL"
    return new ConnectError({
      reason,
      target: text,
      detail: reason === "REFUSED" ? `the connection closed during the handshake (${e.message})` : e.message,
      ...(reason === "DENIED" ? { hint: Hints.token } : {}),
      cause: e,
    })
  }
  return new ConnectError({
    reason: "PROTOCOL",
    target: text,
    detail: String((e as Error)?.message ?? e),
    cause: e,
  })
}

const withDeadline = (session: Session.ClientOptions, deadline: number): Session.ClientOptions => ({
  ...session,
  handshakeTimeoutMs: Math.min(session.handshakeTimeoutMs ?? 10_000, remaining(deadline)),
})

const pingWithin = async (session: Session.ClientSession, text: string, deadline: number) => {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([
      session.ping(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () =>
            reject(
              new ConnectError({
                reason: "TIMEOUT",
                target: text,
                detail: "the agent did not answer a ping after the handshake",
              }),
            ),
          remaining(deadline),
        )
      }),
    ])
  } catch (e) {
    session.close()
    throw handshakeError(text, e)
  } finally {
    clearTimeout(timer)
  }
}

/** One attempt: a session, or a ConnectError. */
const attempt = async (t: Target.Target, text: string, o: OpenOptions): Promise<Session.ClientSession> => {
  if (t._tag === "listen-unix" || t._tag === "listen-vsock") {
    const server =
      t._tag === "listen-unix" ? await listen.listenUnix(t.path, text) : await vsock.listen(t.port, text)
    const session = await listen.acceptSession(server, text, withDeadline(o.session, o.deadline), {
      ...o,
      cleanup: () => {
        if (t._tag === "listen-unix") listenCleanup(t.path)
      },
    })
    if (o.ping) await pingWithin(session, text, o.deadline)
    return session
  }
  const stream = await dial(t, text, o)
  let session: Session.ClientSession
  try {
    session = await Session.openClient(stream, withDeadline(o.session, o.deadline))
  } catch (e) {
    stream.destroy()
    throw handshakeError(text, e)
  }
  if (o.ping) await pingWithin(session, text, o.deadline)
  return session
}

const listenCleanup = (path: string) => {
  // Once accepted, the path is no longer needed: a later listener must not trip over it.
  import("node:fs").then((fs) => fs.rmSync(path, { force: true })).catch(() => {})
}

/**
 * Opens a session, retrying retryable failures on {@link Retry.backoff} (50 ms ×2 up to 1 s) until the
 * deadline when `retry` is set. The abort signal interrupts a wait as well as an attempt.
 */
export const open = async (
  t: Target.Target,
  text: string,
  o: OpenOptions,
): Promise<Session.ClientSession> => {
  let tries = 0
  const once = Effect.tryPromise({
    try: () => {
      tries++
      return attempt(t, text, o)
    },
    catch: (e) => (isConnectError(e) ? e : handshakeError(text, e)),
  })
  const exit = await Effect.runPromiseExit(
    Retry.retry(once, {
      schedule: Retry.backoff,
      deadline: o.deadline,
      while: (e) => o.retry && isRetryable(e),
      onRetry: o.onRetry,
    }),
    o.signal ? { signal: o.signal } : undefined,
  )
  if (Exit.isSuccess(exit)) return exit.value
  const error = Cause.failureOption(exit.cause)
  if (Option.isNone(error))
    throw new ConnectError({ reason: "ABORTED", target: text, detail: "aborted", cause: o.signal?.reason })
  throw tries > 1 && error.value.attempts === undefined ? withAttempts(error.value, tries) : error.value
}

const withAttempts = (e: ConnectError, attempts: number): ConnectError =>
  new ConnectError({
    reason: e.reason,
    target: e.target,
    detail: e.detail,
    ...(e.hint !== undefined ? { hint: e.hint } : {}),
    attempts,
    cause: e.cause,
  })
