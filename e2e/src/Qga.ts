/**
 * Qga: a minimal QEMU guest agent client over the host socket of the org.qemu.guest_agent.0 port, the
 * reference peer that Cuvette's exec and copy are timed against. It speaks QGA's JSON lines:
 * `guest-sync-delimited` (resynchronise on the 0xFF sentinel), `guest-exec` + `guest-exec-status`
 * polled back to back, and the `guest-file-*` calls with base64 bodies.
 */
import type * as net from "node:net"

/** A QGA error response (`{"error": {"class", "desc"}}`). */
export class QgaError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(`qemu-ga ${command} failed: ${errorClass}: ${desc}`)
    this.name = "QgaError"
  }
}

/** A finished guest-exec. */
export interface ExecResult {
  readonly exitcode: number | undefined
  readonly signal: number | undefined
  readonly stdout: Buffer
  readonly stderr: Buffer
  /** guest-exec-status calls it took until `exited`. */
  readonly polls: number
  readonly elapsedMs: number
}

/** A connected client; one request in flight at a time, as qemu-ga answers in order. */
export interface Qga {
  /** Sends any command and returns its `return` value. */
  readonly execute: <A = unknown>(
    command: string,
    args?: Record<string, unknown>,
    timeoutMs?: number,
  ) => Promise<A>
  /** guest-sync-delimited: discards whatever an earlier client left in the channel. */
  readonly sync: (timeoutMs?: number) => Promise<void>
  readonly ping: () => Promise<void>
  readonly exec: (
    path: string,
    args?: ReadonlyArray<string>,
    options?: { readonly input?: Uint8Array; readonly timeoutMs?: number },
  ) => Promise<ExecResult>
  readonly writeFile: (path: string, data: Uint8Array, chunkBytes?: number) => Promise<void>
  readonly readFile: (path: string, chunkBytes?: number) => Promise<Buffer>
  /** guest-shutdown (mode powerdown): qemu-ga sends no reply on success. */
  readonly shutdown: () => Promise<void>
  readonly close: () => void
}

// qemu-ga prefixes its guest-sync-delimited reply with this byte, which never occurs in JSON text.
const SENTINEL = 0xff
const CHUNK = 1 << 20

interface Pending {
  readonly command: string
  readonly resolve: (value: unknown) => void
  readonly reject: (err: Error) => void
}

/** Wraps a socket connected to the port (Vm.connect(Ports.qga)) and synchronises. */
export const make = async (
  socket: net.Socket,
  options: { readonly syncTimeoutMs?: number } = {},
): Promise<Qga> => {
  let buffer: Buffer = Buffer.alloc(0)
  let waitingForSentinel = false
  let pending: Pending | undefined
  let closed: Error | undefined
  let chain: Promise<unknown> = Promise.resolve()

  const drain = () => {
    for (;;) {
      if (waitingForSentinel) {
        const i = buffer.indexOf(SENTINEL)
        if (i < 0) {
          buffer = Buffer.alloc(0)
          return
        }
        buffer = buffer.subarray(i + 1)
        waitingForSentinel = false
      }
      const nl = buffer.indexOf(0x0a)
      if (nl < 0) return
      const line = buffer.subarray(0, nl).toString("utf8").trim()
      buffer = buffer.subarray(nl + 1)
      if (line.length === 0) continue
      const current = pending
      if (!current) continue // an event or a stale reply: nobody asked
      let message: { return?: unknown; error?: { class?: string; desc?: string } }
      try {
        message = JSON.parse(line)
      } catch {
        continue
      }
      if ("return" in message || "error" in message) {
        pending = undefined
        if (message.error)
          current.reject(new QgaError(current.command, message.error.class ?? "?", message.error.desc ?? ""))
        else current.resolve(message.return)
      }
    }
  }
  socket.on("data", (chunk: Buffer) => {
    buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
    drain()
  })
  socket.on("close", () => {
    closed = new Error("qemu-ga connection closed")
    pending?.reject(closed)
    pending = undefined
  })
  socket.on("error", () => {})

  const send = <A>(
    command: string,
    args: Record<string, unknown> | undefined,
    timeoutMs: number,
    delimited: boolean,
  ) => {
    const next = chain.then(
      () =>
        new Promise<A>((resolve, reject) => {
          if (closed) return reject(closed)
          const timer = setTimeout(() => {
            pending = undefined
            reject(new Error(`qemu-ga ${command}: no reply within ${timeoutMs} ms`))
          }, timeoutMs)
          pending = {
            command,
            resolve: (v) => {
              clearTimeout(timer)
              resolve(v as A)
            },
            reject: (e) => {
              clearTimeout(timer)
              reject(e)
            },
          }
          if (delimited) {
            waitingForSentinel = true
            buffer = Buffer.alloc(0)
          }
          const body = JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })
          // The leading 0xFF makes qemu-ga drop any partial request an earlier client left behind.
          socket.write(delimited ? Buffer.concat([Buffer.from([SENTINEL]), Buffer.from(body)]) : body)
        }),
    )
    chain = next.catch(() => undefined)
    return next
  }

  const execute = <A = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 30_000) =>
    send<A>(command, args, timeoutMs, false)

  const sync = async (timeoutMs = options.syncTimeoutMs ?? 30_000) => {
    const id = Math.floor(Math.random() * 2 ** 31)
    const got = await send<number>("guest-sync-delimited", { id }, timeoutMs, true)
    if (got !== id) throw new Error(`qemu-ga guest-sync-delimited: expected ${id}, got ${String(got)}`)
  }

  const exec: Qga["exec"] = async (path, args = [], opts = {}) => {
    const t0 = performance.now()
    const request: Record<string, unknown> = { path, arg: [...args], "capture-output": true }
    if (opts.input) request["input-data"] = Buffer.from(opts.input).toString("base64")
    const { pid } = await execute<{ pid: number }>("guest-exec", request)
    const deadline = t0 + (opts.timeoutMs ?? 30_000)
    // Poll back to back: a round trip is the only pacing qemu-ga allows (it has no completion event).
    for (let polls = 1; ; polls++) {
      const status = await execute<{
        exited: boolean
        exitcode?: number
        signal?: number
        "out-data"?: string
        "err-data"?: string
      }>("guest-exec-status", { pid })
      if (status.exited) {
        return {
          exitcode: status.exitcode,
          signal: status.signal,
          stdout: Buffer.from(status["out-data"] ?? "", "base64"),
          stderr: Buffer.from(status["err-data"] ?? "", "base64"),
          polls,
          elapsedMs: performance.now() - t0,
        }
      }
      if (performance.now() > deadline)
        throw new Error(`qemu-ga guest-exec ${path}: still running after ${opts.timeoutMs ?? 30_000} ms`)
    }
  }

  const writeFile: Qga["writeFile"] = async (path, data, chunkBytes = CHUNK) => {
    const handle = await execute<number>("guest-file-open", { path, mode: "w" })
    try {
      for (let off = 0; off < data.length; off += chunkBytes) {
        const part = Buffer.from(data.subarray(off, Math.min(data.length, off + chunkBytes)))
        const { count } = await execute<{ count: number }>("guest-file-write", {
          handle,
          "buf-b64": part.toString("base64"),
        })
        if (count !== part.length)
          throw new Error(`qemu-ga guest-file-write ${path}: wrote ${count} of ${part.length} bytes`)
      }
    } finally {
      await execute("guest-file-close", { handle })
    }
  }

  const readFile: Qga["readFile"] = async (path, chunkBytes = CHUNK) => {
    const handle = await execute<number>("guest-file-open", { path, mode: "r" })
    const parts: Array<Buffer> = []
    try {
      for (;;) {
        const r = await execute<{ count: number; "buf-b64": string; eof: boolean }>("guest-file-read", {
          handle,
          count: chunkBytes,
        })
        if (r.count > 0) parts.push(Buffer.from(r["buf-b64"], "base64"))
        if (r.eof || r.count === 0) break
      }
    } finally {
      await execute("guest-file-close", { handle })
    }
    return Buffer.concat(parts)
  }

  const shutdown = async () => {
    // No reply on success: the guest is gone. Write the request and let the caller wait for QEMU to exit.
    await chain
    socket.write(JSON.stringify({ execute: "guest-shutdown", arguments: { mode: "powerdown" } }))
  }

  const qga: Qga = {
    execute,
    sync,
    ping: async () => {
      await execute("guest-ping")
    },
    exec,
    writeFile,
    readFile,
    shutdown,
    close: () => socket.destroy(),
  }
  await sync()
  return qga
}
