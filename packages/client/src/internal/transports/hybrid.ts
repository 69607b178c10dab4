// hybrid:PATH[:PORT] — hybrid vsock (OpenVMM, Firecracker, Cloud Hypervisor): connect to the VMM's Unix
// socket, send `CONNECT <port>\n`, read exactly one `OK <n>\n` line; after it the socket is a raw stream
// to the guest listener. While nothing listens in the guest the VMM closes the socket without a word
// (firecracker#1253), so EOF/reset before OK means "not yet": retry with backoff until the deadline.
import type * as net from "node:net"
import { ByteStream, Retry } from "@cuvette/protocol"
import { Cause, Effect, Exit, Option } from "effect"
import { ConnectError, isConnectError } from "../../ConnectError.js"
import { connectSocket, type DialOptions, remaining } from "./net.js"

/** Longest acceptable reply line ("OK 4294967295" is 13 bytes): anything longer is not a VMM. */
const MAX_LINE = 64

/** Why reading the OK line failed. */
type LineFailure = "closed" | "timeout" | "garbage"

/** A readable the OK-line reader can use: paused-mode reads and unshift (a net.Socket). */
export interface LineSource {
  read(): Buffer | null
  unshift(chunk: Uint8Array): void
  on(event: string, listener: (...args: Array<any>) => void): unknown
  off(event: string, listener: (...args: Array<any>) => void): unknown
  readonly readableEnded?: boolean
}

/**
 * Reads one `OK <n>\n` line under a deadline, never consuming a byte past the newline (those belong to
 * the agent and are unshifted back). Resolves with the VMM's port number; rejects with a ConnectError
 * whose `cause` is "closed" (retryable), "timeout" or "garbage".
 */
const readOkLine = (socket: LineSource, target: string, timeoutMs: number): Promise<number> =>
  new Promise((resolve, reject) => {
    let line = Buffer.alloc(0)
    let settled = false
    const fail = (why: LineFailure, detail: string, cause?: unknown) =>
      finish(() =>
        reject(
          new ConnectError({
            reason: why === "timeout" ? "TIMEOUT" : why === "closed" ? "REFUSED" : "PROTOCOL",
            target,
            detail,
            ...(why === "garbage"
              ? {
                  hint: "is this a hybrid vsock socket (OpenVMM, Firecracker, Cloud Hypervisor)? for a plain agent socket use unix:PATH",
                }
              : {}),
            cause: cause ?? why,
          }),
        ),
      )
    const finish = (then: () => void) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.off("readable", onReadable)
      socket.off("end", onEnd)
      socket.off("close", onEnd)
      socket.off("error", onError)
      then()
    }
    const onReadable = () => {
      let chunk: Buffer | null
      while (!settled && (chunk = socket.read()) !== null) {
        const nl = chunk.indexOf(10)
        if (nl < 0) {
          line = Buffer.concat([line, chunk])
          if (line.byteLength > MAX_LINE)
            return fail("garbage", `expected "OK <port>" from the VMM, got ${show(line)}...`)
          continue
        }
        const full = Buffer.concat([line, chunk.subarray(0, nl)])
        const rest = chunk.subarray(nl + 1)
        // Give back what follows the line before anyone else reads: the agent's first bytes.
        if (rest.byteLength > 0) socket.unshift(rest)
        const text = full.toString("latin1").replace(/\r$/, "")
        const m = /^OK (\d+)$/.exec(text)
        if (!m)
          return fail(
            "garbage",
            `expected "OK <port>" from the VMM, got ${JSON.stringify(text.slice(0, 40))}`,
          )
        return finish(() => resolve(Number(m[1])))
      }
    }
    const onEnd = () => fail("closed", "the VMM closed the connection before OK")
    const onError = (e: Error) => fail("closed", `the VMM reset the connection before OK (${e.message})`, e)
    const timer = setTimeout(
      () => fail("timeout", `no "OK" line from the VMM within ${timeoutMs} ms`),
      timeoutMs,
    )
    socket.on("readable", onReadable)
    socket.on("end", onEnd)
    socket.on("close", onEnd)
    socket.on("error", onError)
    if (socket.readableEnded) onEnd()
  })

const show = (b: Uint8Array): string => JSON.stringify(Buffer.from(b.subarray(0, 40)).toString("latin1"))

/** One attempt: connect, CONNECT, OK. */
const attempt = async (
  path: string,
  port: number,
  target: string,
  options: DialOptions,
): Promise<net.Socket> => {
  const socket = await connectSocket({ path }, target, options)
  try {
    socket.write(`CONNECT ${port}\n`)
    await readOkLine(socket, target, remaining(options.deadline))
    return socket
  } catch (e) {
    socket.destroy()
    throw e
  }
}

/**
 * Connects through the hybrid vsock socket, retrying on {@link Retry.backoff} (50 ms, doubling, up to 1 s)
 * while the VMM closes before OK, until the deadline. A missing socket file fails at once (the VM is not running).
 */
export const dial = async (
  path: string,
  port: number,
  target: string,
  options: DialOptions,
): Promise<ByteStream.ByteStream> => {
  let tries = 0
  const once = Effect.tryPromise({
    try: () => {
      tries++
      return attempt(path, port, target, options)
    },
    catch: (e) => e as Error,
  })
  const exit = await Effect.runPromiseExit(
    Retry.retry(once, {
      schedule: Retry.backoff,
      deadline: options.deadline,
      while: notYet,
      onRetry: options.onRetry,
    }),
    options.signal ? { signal: options.signal } : undefined,
  )
  if (Exit.isSuccess(exit)) {
    const socket = exit.value
    const stream = ByteStream.fromDuplex(socket, { description: target })
    // The OK reader left the socket paused (readable mode): resume once the session listens for data.
    return {
      ...stream,
      start: (sink) => {
        stream.start(sink)
        socket.resume()
      },
    }
  }
  const error = Cause.failureOption(exit.cause)
  if (Option.isNone(error))
    throw new ConnectError({ reason: "ABORTED", target, detail: "aborted", cause: options.signal?.reason })
  if (!notYet(error.value)) throw error.value
  throw new ConnectError({
    reason: "TIMEOUT",
    target,
    detail: `the guest did not accept on vsock port ${port} (the VMM closed the connection before OK)`,
    attempts: tries,
    cause: error.value,
  })
}

/** The VMM closed before OK: nothing listens in the guest yet. */
const notYet = (e: Error): boolean =>
  isConnectError(e) && e.reason === "REFUSED" && e.detail.includes("before OK")
