// A VM's serial console as a byte stream: what SOURCE text names (a Unix socket, a Windows named pipe,
// a tty device, tcp:HOST:PORT) and opening it as one Duplex, with failures that say what to try next.
// Shared by `cuvette console` and its WebSocket bridge.
import * as fs from "node:fs"
import * as net from "node:net"
import type { Duplex } from "node:stream"
import * as tty from "node:tty"
import * as Data from "effect/Data"

/** Where a console is. */
export type Source =
  /** A filesystem path: a Unix socket or a tty device (which one is known only when opening it). */
  | { readonly kind: "path"; readonly path: string }
  /** A Windows named pipe, `\\.\pipe\NAME` (a Hyper-V COM port). */
  | { readonly kind: "pipe"; readonly path: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number }

/** SOURCE was not one of the forms. */
export class InvalidSource extends Data.TaggedError("InvalidSource")<{
  readonly text: string
  readonly detail: string
}> {
  override get message(): string {
    return `not a console source: ${JSON.stringify(this.text)}: ${this.detail}`
  }
}

/** Nothing there to connect to: no socket or pipe, or no one listening on it (the VM is not running). */
export class NothingListening extends Data.TaggedError("NothingListening")<{
  readonly source: Source
  /** The system's code: ENOENT, ECONNREFUSED. */
  readonly code: string
}> {
  override get message(): string {
    const what = describeSource(this.source)
    const why = this.code === "ENOENT" ? "it does not exist" : "connection refused"
    return `nothing is listening on ${what} (${why}): ${startHint(this.source)} Pass --reconnect to wait for it`
  }
}

/** The system refused us: the socket, pipe or device is not ours to open. */
export class PermissionDenied extends Data.TaggedError("PermissionDenied")<{
  readonly source: Source
  readonly code: string
}> {
  override get message(): string {
    const what = describeSource(this.source)
    const hint =
      this.source.kind === "pipe"
        ? "Hyper-V's COM port pipes need an elevated prompt: run as Administrator"
        : this.source.kind === "path"
          ? `check its permissions with \`ls -l ${this.source.path}\` (QEMU's socket belongs to the user running QEMU; serial devices usually to the dialout group)`
          : "check the host's firewall"
    return `permission denied opening ${what}: ${hint}`
  }
}

/** The path exists but is no console: a regular file, a directory, a device that is not a terminal. */
export class NotAConsole extends Data.TaggedError("NotAConsole")<{
  readonly source: Source
  /** What it is instead: "a regular file", "a directory". */
  readonly what: string
}> {
  override get message(): string {
    return `${describeSource(this.source)} is ${this.what}, not a console: give the VM's console socket, a tty device (/dev/ttyS0, /dev/pts/N), a named pipe (\\\\.\\pipe\\NAME) or tcp:HOST:PORT`
  }
}

/** Any other failure to open it (a host that does not resolve, a busy device). */
export class SourceFailed extends Data.TaggedError("SourceFailed")<{
  readonly source: Source
  readonly code: string
  readonly detail: string
}> {
  override get message(): string {
    return `cannot open ${describeSource(this.source)}: ${this.detail}`
  }
}

export type SourceError = InvalidSource | NothingListening | PermissionDenied | NotAConsole | SourceFailed

// `\\.\pipe\NAME`, and `//./pipe/NAME` (the same path as some shells leave it).
const PIPE = /^(?:\\\\|\/\/)[.?][\\/]pipe[\\/](.+)$/i

/** Reads SOURCE: `tcp:HOST:PORT` (IPv6 as `tcp:[::1]:PORT`), `unix:PATH`, `\\.\pipe\NAME`, or a path. */
export const parseSource = (text: string): Source => {
  const invalid = (detail: string) => new InvalidSource({ text, detail })
  if (text.length === 0) throw invalid("give a socket path, a tty device, \\\\.\\pipe\\NAME or tcp:HOST:PORT")
  if (text.startsWith("tcp:")) {
    const m = /^tcp:(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(text)
    const port = m !== null ? Number(m[3]) : NaN
    if (m === null || !(port >= 1 && port <= 65535))
      throw invalid("expected tcp:HOST:PORT with a port from 1 to 65535 (IPv6: tcp:[::1]:PORT)")
    return { kind: "tcp", host: m[1] ?? m[2]!, port }
  }
  if (text.startsWith("unix:")) {
    const path = text.slice("unix:".length)
    if (path.length === 0) throw invalid("expected unix:PATH")
    return { kind: "path", path }
  }
  const pipe = PIPE.exec(text)
  if (pipe !== null) return { kind: "pipe", path: `\\\\.\\pipe\\${pipe[1]!.replace(/\//g, "\\")}` }
  return { kind: "path", path: text }
}

/** SOURCE as messages show it. */
export const describeSource = (source: Source): string =>
  source.kind === "tcp"
    ? `tcp:${source.host.includes(":") ? `[${source.host}]` : source.host}:${source.port}`
    : source.path

/** How a VM gets a console there, for "nothing is listening". */
const startHint = (source: Source): string => {
  switch (source.kind) {
    case "pipe":
      return `is the VM running, with its COM port on that pipe (\`Set-VMComPort -VMName VM -Number 1 -Path ${source.path}\`)?`
    case "tcp":
      return `is the VM running, with its serial port on that port (QEMU: \`-serial tcp:${source.host}:${source.port},server=on,wait=off\`)?`
    case "path":
      return `is the VM running, with its console on that socket (QEMU: \`-chardev socket,id=con,path=${source.path},server=on,wait=off -serial chardev:con\`)?`
  }
}

/** Turns a system error while opening `source` into one of ours. */
const classify = (source: Source, error: unknown): SourceError => {
  const e = error as { code?: unknown; message?: unknown }
  const code = typeof e?.code === "string" ? e.code : "ERROR"
  switch (code) {
    case "ENOENT":
    case "ECONNREFUSED":
      return new NothingListening({ source, code })
    case "EACCES":
    case "EPERM":
      return new PermissionDenied({ source, code })
    case "ENOTSOCK":
      return new NotAConsole({ source, what: "not a socket" })
    default:
      return new SourceFailed({
        source,
        code,
        detail: typeof e?.message === "string" ? e.message : String(error),
      })
  }
}

const abortError = (signal: AbortSignal): unknown =>
  signal.reason ?? new DOMException("The operation was aborted", "AbortError")

/** Connects a socket (Unix, TCP or, on Windows, a named pipe); settles once connected or failed. */
const connect = (source: Source, options: net.NetConnectOpts, signal?: AbortSignal): Promise<Duplex> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted === true) return reject(abortError(signal))
    const socket = net.connect(options)
    const onAbort = () => {
      socket.destroy()
      reject(abortError(signal!))
    }
    const settle = () => {
      signal?.removeEventListener("abort", onAbort)
      socket.off("error", onError)
      socket.off("connect", onConnect)
    }
    const onError = (error: unknown) => {
      settle()
      reject(classify(source, error))
    }
    const onConnect = () => {
      settle()
      resolve(socket)
    }
    signal?.addEventListener("abort", onAbort, { once: true })
    socket.once("error", onError)
    socket.once("connect", onConnect)
  })

/** What a non-console path is, for {@link NotAConsole}. */
const kindOf = (stat: fs.Stats): string =>
  stat.isFile()
    ? "a regular file"
    : stat.isDirectory()
      ? "a directory"
      : stat.isFIFO()
        ? "a FIFO"
        : stat.isCharacterDevice()
          ? "a device that is not a terminal"
          : "not a socket or terminal"

/** Opens a tty device raw (no echo, no line editing: the guest's own terminal does those). */
const openTty = async (source: Source & { kind: "path" }): Promise<Duplex> => {
  let fd: number
  try {
    // O_NOCTTY: a serial line must not become our controlling terminal.
    fd = (await fs.promises.open(source.path, fs.constants.O_RDWR | fs.constants.O_NOCTTY)).fd
  } catch (error) {
    throw classify(source, error)
  }
  if (!tty.isatty(fd)) {
    fs.closeSync(fd)
    throw new NotAConsole({ source, what: "a device that is not a terminal" })
  }
  // A tty stream is a socket over the device: it reads and writes without tying up a thread.
  const stream = new tty.ReadStream(fd)
  stream.setRawMode(true)
  return stream
}

/**
 * Opens the console at `source` as a byte stream: what the guest prints comes out, what is written goes
 * to it. Rejects with a {@link SourceError}, or with the signal's reason when `signal` aborts first.
 */
export const openSource = async (
  source: Source,
  options: { readonly signal?: AbortSignal } = {},
): Promise<Duplex> => {
  const { signal } = options
  switch (source.kind) {
    case "tcp":
      return connect(source, { host: source.host, port: source.port }, signal)
    case "pipe":
      if (process.platform !== "win32")
        throw new SourceFailed({
          source,
          code: "UNSUPPORTED",
          detail: "named pipes are Windows-only: run cuvette on the Hyper-V host",
        })
      return connect(source, { path: source.path }, signal)
    case "path": {
      let stat: fs.Stats
      try {
        stat = await fs.promises.stat(source.path)
      } catch (error) {
        throw classify(source, error)
      }
      if (signal?.aborted === true) throw abortError(signal)
      if (stat.isSocket()) return connect(source, { path: source.path }, signal)
      if (stat.isCharacterDevice()) return openTty(source)
      throw new NotAConsole({ source, what: kindOf(stat) })
    }
  }
}

/** True for the errors that mean the console is not there (yet): what --reconnect waits through. */
export const isAbsent = (error: unknown): error is NothingListening => error instanceof NothingListening
