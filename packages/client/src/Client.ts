/**
 * The Promise API: `connect(target)` or `wait(target)` gives an {@link Agent} with every operation of
 * protocol v1. Process stdio and file bodies are streams with end-to-end flow control, so a 10 GiB copy
 * never sits in memory and a guest process that writes faster than the host reads is paused.
 *
 * ```ts
 * const agent = await Client.connect("unix:/tmp/agent.sock")
 * const { exitCode, stdout } = await agent.exec(["uname", "-a"])
 * await agent.upload("./big.img", "/tmp/big.img", { onProgress: (done, total) => {} })
 * await agent.close()
 * ```
 */
import { once } from "node:events"
import * as fs from "node:fs"
import * as path from "node:path"
import { Readable, Writable } from "node:stream"
import { type ByteStream, Constants, Errors, Handshake, type Operations, Session } from "@cuvette/protocol"
import { ConnectError } from "./ConnectError.js"
import type { Runner } from "./internal/transports/hyperv.js"
import { open } from "./internal/open.js"
import * as Target from "./Target.js"

/** Options of {@link connect} and {@link wait}. */
export interface ConnectOptions {
  /** Shared secret the agent requires (raw key bytes). */
  readonly token?: Uint8Array
  /** File holding the token (surrounding whitespace ignored). */
  readonly tokenFile?: string
  /** Overall deadline for connecting, including retries and the handshake (default 10 s). */
  readonly timeoutMs?: number
  /** Retry with backoff while the agent is not there yet (refused, missing socket, timeout). */
  readonly retry?: boolean
  /** Connect to VTL2 (hyperv targets; the same as `?vtl=2`). */
  readonly vtl2?: boolean
  /** Ping after this long without traffic (default 5 s). */
  readonly keepaliveMs?: number
  /** Declare the agent dead after this long without a frame (default 20 s). */
  readonly deadPeerMs?: number
  /** Called before each retry with the attempt number and why it failed. */
  readonly onRetry?: (attempt: number, error: Error) => void
  /** Cancels connecting. */
  readonly signal?: AbortSignal
  /** Who is connecting, shown to the agent. */
  readonly identity?: { readonly name: string; readonly version: string }
  /** Resolves Hyper-V VM names (tests stub it; default runs hvc.exe / PowerShell). */
  readonly commandRunner?: Runner
}

/** How a process ended, with its collected output. */
export interface ExecResult extends Operations.Result<"exec"> {
  readonly stdout: Uint8Array
  readonly stderr: Uint8Array
}

/** Environment changes for a process. */
export interface Env {
  readonly set?: Readonly<Record<string, string>>
  readonly unset?: ReadonlyArray<string>
  /** Start from an empty environment. */
  readonly clear?: boolean
}

interface CommonProcessOptions {
  readonly env?: Env
  readonly cwd?: string
  /** Kill the process group after this long (the result then has `timedOut: true`). */
  readonly timeoutMs?: number
  /** Signal used on timeout or cancel (default SIGKILL). */
  readonly killSignal?: string
  /** Run under a pseudo-terminal of this size. */
  readonly pty?: { readonly rows: number; readonly cols: number; readonly term?: string }
}

/** Options of {@link Agent.exec}. */
export interface ExecOptions extends CommonProcessOptions {
  /** Bytes, text or a stream fed to the process's stdin (none: stdin is /dev/null). */
  readonly stdin?: Uint8Array | string | Readable
  /** "stdout" merges stderr into stdout. */
  readonly stderr?: "pipe" | "null" | "stdout"
}

/** Options of {@link Agent.spawn}. */
export interface SpawnOptions extends CommonProcessOptions {
  readonly stdin?: "pipe" | "null"
  readonly stdout?: "pipe" | "null"
  readonly stderr?: "pipe" | "null" | "stdout"
}

/** Progress callback: bytes done so far and the total when known. */
export type OnProgress = (done: number, total: number | undefined) => void

/** Options of {@link Agent.download} / {@link Agent.readFile}. */
export interface DownloadOptions {
  readonly offset?: number
  readonly length?: number
  readonly onProgress?: OnProgress
  /** End a Writable destination when done (default true). */
  readonly end?: boolean
}

/** Options of {@link Agent.upload} / {@link Agent.writeFile}. */
export interface UploadOptions {
  /** Permission bits of a new file (default 0o644). */
  readonly mode?: number
  readonly createParents?: boolean
  /** Write a temporary file and rename it over the target (default true). */
  readonly atomic?: boolean
  /** Expected size (known for files and buffers); the agent fails the write if it differs. */
  readonly size?: number
  readonly onProgress?: OnProgress
}

/** One `/dev/kmsg` record. */
export interface KmsgRecord {
  /** Syslog level, 0 (emerg) .. 7 (debug): prio & 7. */
  readonly level: number
  /** Syslog facility: prio >> 3 (0 = kernel). */
  readonly facility: number
  readonly seq: number
  /** Microseconds since boot. */
  readonly timeUs: number
  /** "-" normally, "c" for a continuation. */
  readonly flags: string
  readonly message: string
}

const CHUNK = 1024 * 1024
const encoder = new TextEncoder()

/** Drops undefined values so optional fields stay absent (exactOptionalPropertyTypes, exact schemas). */
type Defined<T> = { [K in keyof T as undefined extends T[K] ? never : K]: T[K] } & {
  [K in keyof T as undefined extends T[K] ? K : never]?: Exclude<T[K], undefined>
}
const defined = <T extends object>(o: T): Defined<T> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Defined<T>

const processArgs = (argv: ReadonlyArray<string>, o: CommonProcessOptions) =>
  defined({
    argv: argv as [string, ...Array<string>],
    env: o.env ? (defined({ ...o.env }) as Operations.ExecArgs["env"]) : undefined,
    cwd: o.cwd,
    timeoutMs: o.timeoutMs,
    killSignal: o.killSignal,
    pty: o.pty ? defined({ ...o.pty }) : undefined,
  })

const toBytes = (chunk: unknown): Uint8Array =>
  typeof chunk === "string" ? encoder.encode(chunk) : (chunk as Uint8Array)

const concat = (chunks: ReadonlyArray<Uint8Array>, n: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(n)
  let off = 0
  for (const c of chunks) {
    out.set(c, off)
    off += c.byteLength
  }
  return out
}

const collect = async (incoming: Session.Incoming): Promise<Uint8Array> => {
  const chunks: Array<Uint8Array> = []
  let n = 0
  for await (const c of incoming) {
    chunks.push(c)
    n += c.byteLength
  }
  return concat(chunks, n)
}

/** Runs `work`; when it fails because the call failed, the call's own error (code + message) wins. */
const orCallError = async <T>(
  call: { readonly result: Promise<unknown>; cancel(): void },
  work: Promise<T>,
): Promise<T> => {
  try {
    return await work
  } catch (e) {
    call.cancel()
    await call.result
    throw e
  }
}

/** Feeds bytes, text or a stream into an Outgoing channel, then ends it. */
const feed = async (out: Session.Outgoing, data: Uint8Array | string | Readable): Promise<void> => {
  if (typeof data === "string" || data instanceof Uint8Array) {
    const bytes = toBytes(data)
    if (bytes.byteLength > 0) await out.write(bytes)
  } else {
    // Readable chunks are fresh buffers the producer no longer touches: sent as they are.
    for await (const chunk of data) await out.write(toBytes(chunk))
  }
  out.end()
}

/** A Node Readable that pulls from an Incoming only when its consumer wants more (flow control to the guest). */
const toReadable = (incoming: Session.Incoming): Readable =>
  new Readable({
    read() {
      incoming.read().then(
        (c) => this.push(c === undefined ? null : Buffer.from(c.buffer, c.byteOffset, c.byteLength)),
        // The operation's own outcome (exited) carries the error; the stream just ends.
        () => this.push(null),
      )
    },
    destroy(error, callback) {
      incoming.discard()
      callback(error)
    },
  })

/** A guest process started with {@link Agent.spawn}. */
export class Process {
  /** The guest pid, once the process started. */
  readonly pid: Promise<number>
  /** Its stdin; each write waits for the agent's credit. Null unless `stdin: "pipe"`. */
  readonly stdin: Writable | null
  /** Its stdout; not reading it pauses the guest process. Null with `stdout: "null"`. */
  readonly stdout: Readable | null
  /** Its stderr. Null with `stderr: "null"` or `"stdout"`. */
  readonly stderr: Readable | null
  /** How it ended; rejects with an AgentError (CANCELLED after cancel()). */
  readonly exited: Promise<Operations.Result<"exec">>

  /** @internal */
  constructor(
    private readonly call: Session.ClientCall<"exec">,
    o: SpawnOptions,
  ) {
    this.exited = call.result
    this.pid = (async () => {
      for (let e = await call.nextEvent(); e !== undefined; e = await call.nextEvent())
        if (e._tag === "Started") return e.pid
      await call.result
      throw new Errors.AgentError({
        code: "INTERNAL",
        message: "the process ended without reporting its pid",
      })
    })()
    this.pid.catch(() => {})
    const stdin = call.stdin
    this.stdin =
      o.stdin === "pipe"
        ? new Writable({
            write(chunk, _encoding, callback) {
              // A private copy: the caller may reuse its buffer once the write callback fired.
              const bytes =
                typeof chunk === "string" ? encoder.encode(chunk) : new Uint8Array(chunk as Uint8Array)
              stdin.write(bytes).then(
                () => callback(),
                // Writing to a process that already ended is not an error worth crashing for (like EPIPE ignored).
                (e) => callback(call.isSettled ? null : e),
              )
            },
            final(callback) {
              stdin.end()
              callback()
            },
          })
        : null
    this.stdout = o.stdout === "null" ? null : toReadable(call.stdout)
    this.stderr = o.stderr === "null" || o.stderr === "stdout" ? null : toReadable(call.stderr)
  }

  /** Sends a signal to the process group (default SIGTERM). */
  kill(signal = "SIGTERM"): void {
    this.call.input({ _tag: "Signal", signal })
  }

  /** Resizes its terminal (pty). */
  resize(rows: number, cols: number): void {
    this.call.input({ _tag: "Resize", rows, cols })
  }

  /** Cancels: the agent kills the process group; `exited` rejects with CANCELLED. */
  cancel(): void {
    this.call.cancel()
  }
}

/** Parses one `/dev/kmsg` record (`prio,seq,ts_us,flags[,...];message`); undefined for continuation lines. */
export const parseKmsg = (line: string): KmsgRecord | undefined => {
  const semi = line.indexOf(";")
  if (semi < 0 || line.startsWith(" ")) return undefined
  const [prio, seq, ts, flags] = line.slice(0, semi).split(",")
  const p = Number(prio)
  if (!Number.isInteger(p) || seq === undefined || ts === undefined) return undefined
  const message = line
    .slice(semi + 1)
    .replace(/\\x([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
  return {
    level: p & 7,
    facility: p >> 3,
    seq: Number(seq),
    timeUs: Number(ts),
    flags: flags ?? "-",
    message,
  }
}

/** A connected agent. Every method maps to one protocol operation; failures are AgentErrors. */
export class Agent {
  constructor(
    /** The low-level session (for callers that open operations themselves). */
    readonly session: Session.ClientSession,
    /** The target this agent was reached at. */
    readonly target: string,
  ) {}

  /** The agent's Welcome: protocol version, identity (name, version, os, arch, hostname). */
  get welcome(): Session.ClientSession["welcome"] {
    return this.session.welcome
  }

  /** Resolves when the connection ends, with the reason if it failed. */
  get closed(): Promise<Errors.AgentError | undefined> {
    return this.session.ended
  }

  private run<N extends Operations.Name>(op: N, args: Operations.Args<N>): Promise<Operations.Result<N>> {
    try {
      return this.session.open(op, args).result
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** Round trip of a ping operation, in milliseconds. */
  async ping(): Promise<number> {
    const t0 = performance.now()
    await this.run("ping", {})
    return performance.now() - t0
  }

  /** Agent, OS and kernel information. */
  info(): Promise<Operations.Result<"info">> {
    return this.run("info", {})
  }

  /** The guest's clock. */
  time(): Promise<Operations.Result<"time">> {
    return this.run("time", {})
  }

  /** Runs a process to completion and collects its output. */
  async exec(argv: ReadonlyArray<string>, o: ExecOptions = {}): Promise<ExecResult> {
    const call = this.session.open("exec", {
      ...processArgs(argv, o),
      stdin: o.stdin === undefined ? "null" : "pipe",
      stdout: "pipe",
      stderr: o.stderr ?? "pipe",
    })
    // A process may exit without reading its input: that is not a failure of exec.
    const feeding = o.stdin === undefined ? Promise.resolve() : feed(call.stdin, o.stdin).catch(() => {})
    const [stdout, stderr] = await orCallError(
      call,
      Promise.all([collect(call.stdout), collect(call.stderr)]),
    )
    const result = await call.result
    await feeding
    return { ...result, stdout, stderr }
  }

  /** Starts a process with streamed stdio (see {@link Process}). */
  spawn(argv: ReadonlyArray<string>, o: SpawnOptions = {}): Process {
    const call = this.session.open("exec", {
      ...processArgs(argv, o),
      stdin: o.stdin ?? "null",
      stdout: o.stdout ?? "pipe",
      stderr: o.stderr ?? "pipe",
    })
    return new Process(call, o)
  }

  /** Reads a guest file (or a range of it) into memory. Use {@link download} for big files. */
  async readFile(
    guestPath: string,
    o: { readonly offset?: number; readonly length?: number } = {},
  ): Promise<Uint8Array> {
    const call = this.session.open(
      "readFile",
      defined({ path: guestPath, offset: o.offset, length: o.length }),
    )
    const body = await orCallError(call, collect(call.stdout))
    await call.result
    return body
  }

  /**
   * Streams a guest file to a host file (written to a temporary name, renamed when complete) or to a
   * Writable, with backpressure both ways.
   */
  async download(
    guestPath: string,
    dest: string | Writable,
    o: DownloadOptions = {},
  ): Promise<{ readonly bytes: number }> {
    const call = this.session.open(
      "readFile",
      defined({ path: guestPath, offset: o.offset, length: o.length }),
    )
    const sink = typeof dest === "string" ? await fileSink(dest) : writableSink(dest, o.end ?? true)
    try {
      const transfer = async () => {
        const opened = await call.nextEvent()
        const available = opened ? Math.max(0, opened.size - (o.offset ?? 0)) : undefined
        const total =
          available === undefined
            ? undefined
            : o.length === undefined
              ? available
              : Math.min(o.length, available)
        let done = 0
        o.onProgress?.(0, total)
        for await (const chunk of call.stdout) {
          await sink.write(chunk)
          done += chunk.byteLength
          o.onProgress?.(done, total)
        }
      }
      await orCallError(call, transfer())
      const result = await call.result
      await sink.commit()
      return result
    } catch (e) {
      await sink.abort()
      throw e
    }
  }

  /** Writes bytes or text to a guest file (atomically by default). */
  writeFile(
    guestPath: string,
    data: Uint8Array | string,
    o: UploadOptions = {},
  ): Promise<{ readonly bytes: number }> {
    return this.upload(toBytes(data), guestPath, o)
  }

  /**
   * Streams a host file (path), a Readable or bytes to a guest file. A host file is read in fresh 1 MiB
   * chunks, each sent once the agent has room for it, so memory stays bounded whatever the size.
   */
  async upload(
    source: string | Readable | Uint8Array,
    guestPath: string,
    o: UploadOptions = {},
  ): Promise<{ readonly bytes: number }> {
    const size =
      o.size ??
      (typeof source === "string"
        ? (await fs.promises.stat(source)).size
        : source instanceof Uint8Array
          ? source.byteLength
          : undefined)
    const call = this.session.open(
      "writeFile",
      defined({ path: guestPath, mode: o.mode, createParents: o.createParents, atomic: o.atomic, size }),
    )
    let done = 0
    const progress = (n: number) => {
      done += n
      o.onProgress?.(done, size)
    }
    const send = async () => {
      o.onProgress?.(0, size)
      if (typeof source === "string") {
        const fh = await fs.promises.open(source, "r")
        try {
          while (true) {
            // A fresh buffer per chunk: the session queues it as is.
            const buf = Buffer.allocUnsafe(CHUNK)
            const { bytesRead } = await fh.read(buf, 0, CHUNK, null)
            if (bytesRead === 0) break
            await call.stdin.write(buf.subarray(0, bytesRead))
            progress(bytesRead)
          }
        } finally {
          await fh.close()
        }
      } else if (source instanceof Uint8Array) {
        for (let off = 0; off < source.byteLength; off += CHUNK) {
          const part = source.subarray(off, Math.min(source.byteLength, off + CHUNK))
          await call.stdin.write(part)
          progress(part.byteLength)
        }
      } else {
        for await (const chunk of source) {
          const bytes = toBytes(chunk)
          await call.stdin.write(bytes)
          progress(bytes.byteLength)
        }
      }
      call.stdin.end()
    }
    await orCallError(call, send())
    return await call.result
  }

  /** File metadata (`follow` resolves symlinks). */
  stat(guestPath: string, o: { readonly follow?: boolean } = {}): Promise<Operations.Result<"stat">> {
    return this.run("stat", defined({ path: guestPath, follow: o.follow }))
  }

  /** Directory entries. */
  async list(guestPath: string): Promise<ReadonlyArray<Operations.DirEntry>> {
    return (await this.run("list", { path: guestPath })).entries
  }

  /** Creates a directory (`parents` like mkdir -p). */
  async mkdir(
    guestPath: string,
    o: { readonly parents?: boolean; readonly mode?: number } = {},
  ): Promise<void> {
    await this.run("mkdir", defined({ path: guestPath, parents: o.parents, mode: o.mode }))
  }

  /** Removes a file or directory (`recursive` like rm -r, `force` ignores a missing path). */
  async remove(
    guestPath: string,
    o: { readonly recursive?: boolean; readonly force?: boolean } = {},
  ): Promise<void> {
    await this.run("remove", defined({ path: guestPath, recursive: o.recursive, force: o.force }))
  }

  /** Renames a file or directory. */
  async rename(from: string, to: string): Promise<void> {
    await this.run("rename", { from, to })
  }

  /** Kernel log records; with `follow` it keeps streaming until the signal aborts or the loop breaks. */
  kmsg(o: { readonly follow?: boolean; readonly signal?: AbortSignal } = {}): AsyncIterable<KmsgRecord> {
    const session = this.session
    return {
      async *[Symbol.asyncIterator]() {
        const call = session.open("kmsg", defined({ follow: o.follow }))
        const onAbort = () => call.cancel()
        if (o.signal?.aborted) call.cancel()
        o.signal?.addEventListener("abort", onAbort, { once: true })
        try {
          const decoder = new TextDecoder()
          let rest = ""
          for await (const chunk of call.stdout) {
            rest += decoder.decode(chunk, { stream: true })
            let nl: number
            while ((nl = rest.indexOf("\n")) >= 0) {
              const record = parseKmsg(rest.slice(0, nl))
              rest = rest.slice(nl + 1)
              if (record) yield record
            }
          }
          const last = rest ? parseKmsg(rest) : undefined
          if (last) yield last
          try {
            await call.result
          } catch (e) {
            if (!(o.signal?.aborted && Errors.isAgentError(e) && e.code === "CANCELLED")) throw e
          }
        } finally {
          o.signal?.removeEventListener("abort", onAbort)
          if (!call.isSettled) call.cancel()
        }
      },
    }
  }

  /** Mounts a file system (Linux guests). */
  async mount(args: Operations.Args<"mount">): Promise<void> {
    await this.run("mount", args)
  }

  /** Powers the guest off (or reboots it); the agent replies first, then acts. */
  async shutdown(o: { readonly reboot?: boolean } = {}): Promise<void> {
    await this.run("shutdown", defined({ reboot: o.reboot }))
  }

  /** Crashes the agent or the kernel (fault tests; DENIED unless the agent allows it). */
  async crash(kind: "agent" | "kernel"): Promise<void> {
    await this.run("crash", { kind })
  }

  /** Closes the connection; running operations are cancelled on the agent. */
  async close(): Promise<void> {
    this.session.close()
    await this.session.ended
  }
}

interface Sink {
  write(chunk: Uint8Array): Promise<void>
  commit(): Promise<void>
  abort(): Promise<void>
}

const FILE_WRITE_BATCH = 1024 * 1024

const fileSink = async (dest: string): Promise<Sink> => {
  const temp = path.join(path.dirname(dest), `.${path.basename(dest)}.cuvette-${process.pid}-${Date.now()}`)
  const fh = await fs.promises.open(temp, "w")
  let closed = false
  const close = async () => {
    if (!closed) {
      closed = true
      await fh.close()
    }
  }
  // Chunks are gathered and written 1 MiB at a time: each write is a trip through the thread pool,
  // which cost more than the copy itself at 256 KiB per write.
  let pending: Array<Uint8Array> = []
  let pendingBytes = 0
  const flush = async () => {
    let parts = pending
    pending = []
    pendingBytes = 0
    while (parts.length > 0) {
      let { bytesWritten } = await fh.writev(parts)
      // A short write (the kernel caps a writev at IOV_MAX buffers): drop what went out, keep the rest.
      while (parts.length > 0 && bytesWritten >= parts[0]!.byteLength)
        bytesWritten -= parts.shift()!.byteLength
      if (parts.length > 0 && bytesWritten > 0) parts = [parts[0]!.subarray(bytesWritten), ...parts.slice(1)]
    }
  }
  return {
    write: async (chunk) => {
      pending.push(chunk)
      pendingBytes += chunk.byteLength
      if (pendingBytes >= FILE_WRITE_BATCH || pending.length >= 256) await flush()
    },
    commit: async () => {
      await flush()
      await close()
      await fs.promises.rename(temp, dest)
    },
    abort: async () => {
      await close().catch(() => {})
      await fs.promises.rm(temp, { force: true })
    },
  }
}

const writableSink = (w: Writable, end: boolean): Sink => ({
  write: async (chunk) => {
    if (w.destroyed) throw new Error("the destination stream was destroyed")
    if (!w.write(chunk)) {
      const ac = new AbortController()
      // Resolves on drain; rejects if the stream errors or closes first.
      await Promise.race([
        once(w, "drain", { signal: ac.signal }),
        once(w, "close", { signal: ac.signal }).then(() => {
          throw new Error("the destination stream closed")
        }),
      ]).finally(() => ac.abort())
    }
  },
  commit: async () => {
    if (!end) return
    w.end()
    await once(w, "finish")
  },
  abort: async () => {},
})

const resolveToken = async (o: ConnectOptions, target: string): Promise<Uint8Array | undefined> => {
  if (o.token) return o.token
  if (!o.tokenFile) return undefined
  try {
    return Handshake.tokenFromText(await fs.promises.readFile(o.tokenFile, "utf8"))
  } catch (cause) {
    throw new ConnectError({
      reason: "DENIED",
      target,
      detail: `cannot read the token file ${o.tokenFile}: ${(cause as Error).message}`,
      hint: "check the path given as tokenFile / --token-file",
      cause,
    })
  }
}

/** Parses a target string or passes a parsed one through; a bad string is a ConnectError INVALID_TARGET. */
const resolveTarget = (
  target: string | Target.Target,
  vtl2: boolean | undefined,
): { t: Target.Target; text: string } => {
  if (typeof target !== "string") {
    const t = Target.withVtl2(target, vtl2)
    return { t, text: Target.format(t) }
  }
  try {
    const t = Target.withVtl2(Target.parse(target), vtl2)
    return { t, text: vtl2 ? Target.format(t) : target.trim() }
  } catch (cause) {
    throw new ConnectError({
      reason: "INVALID_TARGET",
      target,
      detail: (cause as Error).message,
      cause,
    })
  }
}

const sessionOptions = async (o: ConnectOptions, text: string): Promise<Session.ClientOptions> => {
  const token = await resolveToken(o, text)
  return defined({
    identity: o.identity ?? { name: "cuvette-client", version: "0.1.0" },
    token,
    keepaliveMs: o.keepaliveMs,
    deadPeerMs: o.deadPeerMs,
  })
}

const openAgent = async (
  target: string | Target.Target,
  o: ConnectOptions,
  ping: boolean,
  retry: boolean,
  timeoutMs: number,
) => {
  const { t, text } = resolveTarget(target, o.vtl2)
  const session = await open(t, text, {
    deadline: Date.now() + timeoutMs,
    session: await sessionOptions(o, text),
    retry,
    ping,
    signal: o.signal,
    onRetry: o.onRetry,
    runner: o.commandRunner,
  })
  return new Agent(session, text)
}

/** Connects to the agent at `target` (a string such as "unix:/tmp/agent.sock", or a parsed Target). */
export const connect = (target: string | Target.Target, o: ConnectOptions = {}): Promise<Agent> =>
  openAgent(target, o, false, o.retry ?? false, o.timeoutMs ?? 10_000)

/**
 * Waits for the agent: retries with backoff (50 ms doubling to 1 s, reported through onRetry) until it
 * answers a handshake and a ping, or `timeoutMs` (default 60 s) passes.
 */
export const wait = (target: string | Target.Target, o: ConnectOptions = {}): Promise<Agent> =>
  openAgent(target, o, true, true, o.timeoutMs ?? 60_000)

/** Runs the client handshake over an established byte stream (any transport, or an in-memory pair). */
export const fromStream = async (
  stream: ByteStream.ByteStream,
  o: Omit<ConnectOptions, "retry" | "vtl2" | "onRetry" | "commandRunner"> = {},
): Promise<Agent> => {
  const text = stream.description
  const session = await Session.openClient(
    stream,
    defined({ ...(await sessionOptions(o, text)), handshakeTimeoutMs: o.timeoutMs }),
  ).catch(async (e) => {
    stream.destroy()
    const { handshakeError } = await import("./internal/open.js")
    throw handshakeError(text, e)
  })
  return new Agent(session, text)
}

/** The default agent port (0x1337). */
export const DEFAULT_PORT = Constants.DEFAULT_PORT
