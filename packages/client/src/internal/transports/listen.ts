// listen-unix:PATH and listen-vsock[:PORT] — the guest connects out (OpenVMM maps a guest connection to
// CID 2 onto `<vsock_path>_4919`; the agent's default transport dials CID 2). Accept connections and run
// the handshake on each; connections that close or stall before the handshake (stale entries left in the
// backlog, e.g. after save/restore) are dropped, and the first live one wins.
import * as fs from "node:fs"
import * as net from "node:net"
import type { Duplex } from "node:stream"
import { ByteStream, Session } from "@cuvette/protocol"
import { ConnectError, fromCause } from "../../ConnectError.js"
import { type DialOptions, remaining } from "./net.js"

/** Listens on a Unix socket path, removing a stale socket file first (never a regular file). */
export const listenUnix = async (path: string, target: string): Promise<net.Server> => {
  try {
    if (fs.lstatSync(path).isSocket()) fs.unlinkSync(path)
  } catch {
    // Nothing there: fine.
  }
  const server = net.createServer({ pauseOnConnect: false })
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) => reject(fromCause(target, e, `cannot listen on ${path}: ${e.message}`)))
    server.listen(path, () => resolve())
  })
  return server
}

/** A net.Server or @cuvette/native's vsock server: both emit "connection" and close(). */
export interface Accepting {
  on(event: "connection", listener: (socket: Duplex) => void): unknown
  off(event: "connection", listener: (socket: Duplex) => void): unknown
  close(): unknown
}

/** Accepts connections until one completes the handshake; closes the listener then. */
export const acceptSession = (
  server: Accepting,
  target: string,
  sessionOptions: Session.ClientOptions,
  options: DialOptions & { readonly cleanup?: () => void },
): Promise<Session.ClientSession> =>
  new Promise((resolve, reject) => {
    let done = false
    let drained = 0
    const pending = new Set<Duplex>()
    const finish = (outcome: () => void) => {
      if (done) return
      done = true
      clearTimeout(timer)
      server.off("connection", onConnection)
      options.signal?.removeEventListener("abort", onAbort)
      server.close()
      options.cleanup?.()
      outcome()
    }
    const onConnection = (socket: Duplex) => {
      pending.add(socket)
      const stream = ByteStream.fromDuplex(socket, { description: target })
      Session.openClient(stream, {
        ...sessionOptions,
        handshakeTimeoutMs: Math.min(
          sessionOptions.handshakeTimeoutMs ?? 10_000,
          remaining(options.deadline),
        ),
      }).then(
        (session) => {
          pending.delete(socket)
          if (done) return session.close()
          for (const s of pending) s.destroy()
          finish(() => resolve(session))
        },
        (e) => {
          pending.delete(socket)
          socket.destroy()
          if (done) return
          // DENIED / VERSION: a live agent that will not talk to us; waiting longer will not help.
          if (e?.code === "DENIED" || e?.code === "VERSION")
            return finish(() =>
              reject(
                new ConnectError({
                  reason: e.code === "DENIED" ? "DENIED" : "PROTOCOL",
                  target,
                  detail: e.message,
                  cause: e,
                }),
              ),
            )
          drained++
          options.onRetry?.(drained, e as Error)
        },
      )
    }
    const onAbort = () =>
      finish(() =>
        reject(
          new ConnectError({ reason: "ABORTED", target, detail: "aborted", cause: options.signal?.reason }),
        ),
      )
    const timeoutMs = remaining(options.deadline)
    const timer = setTimeout(
      () =>
        finish(() => {
          for (const s of pending) s.destroy()
          reject(
            new ConnectError({
              reason: "TIMEOUT",
              target,
              detail: `no guest connected within ${timeoutMs} ms${drained ? ` (${drained} connection(s) closed before the handshake)` : ""}`,
            }),
          )
        }),
      timeoutMs,
    )
    server.on("connection", onConnection)
    options.signal?.addEventListener("abort", onAbort, { once: true })
  })
