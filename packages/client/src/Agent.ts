/**
 * A connected agent: {@link Agent} has one method per protocol operation (processes, files, kernel log,
 * power), each failing with an AgentError. File bodies stream with backpressure both ways, so a 10 GiB
 * copy never sits in memory.
 */
import * as fs from "node:fs"
import type { Readable, Writable } from "node:stream"
import { Errors, Operations, Path, Records, type Session } from "@cuvette/protocol"
import { checkExecStdin, checkOptions, defined, optionKeys, processArgs } from "./internal/args.js"
import * as Files from "./internal/files.js"
import * as Forward from "./Forward.js"
import { HostFileError } from "./HostError.js"
import { cancelOn, collect, feed, orCallError, toBytes } from "./internal/streams.js"
import { type KmsgRecord, parseKmsg } from "./Kmsg.js"
import { type ExecOptions, type ExecResult, Process, type SpawnOptions } from "./Process.js"

/**
 * A guest path or file name: a string, or its bytes when it is not valid UTF-8 (a Latin-1 name such
 * as `caf\xE9.txt`). Listings and stat return names the same way, so what they give can be passed
 * back as is; bytes that are valid UTF-8 are sent as the string.
 */
export type GuestPath = Path.Path

/**
 * A host path: a string, or a Buffer for a name that is not UTF-8 (POSIX names are bytes; Node's fs
 * passes a Buffer to the kernel as is).
 */
export type HostPath = string | Buffer

/** Progress callback: bytes done so far and the total when known. */
export type OnProgress = (done: number, total: number | undefined) => void

/** Options of {@link Agent.download} / {@link Agent.readFile}. */
export interface DownloadOptions {
  readonly offset?: number
  readonly length?: number
  readonly onProgress?: OnProgress
  /** End a Writable destination when done (default true). */
  readonly end?: boolean
  /** Cancels the download: it rejects with CANCELLED and leaves no temporary file. */
  readonly signal?: AbortSignal
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
  /** Cancels the upload: it rejects with CANCELLED and the agent removes its temporary file. */
  readonly signal?: AbortSignal
}

const CHUNK = 1024 * 1024

/** Opens an upload's host file; failures are HostFileErrors about its path. */
const openSource = async (file: string) => {
  const handle = await fs.promises.open(file, "r").catch((e: unknown) => {
    throw Files.hostFileError("upload", file, e)
  })
  const st = await handle.stat()
  if (st.isDirectory()) {
    await handle.close()
    throw new HostFileError({ operation: "upload", path: file, code: "EISDIR", detail: "is a directory" })
  }
  return { handle, path: file, size: st.size }
}

/** The refusal to remove the root directory, as the agent words it. */
const refuseRoot = (p: GuestPath) =>
  Errors.make(
    "DENIED",
    `refusing to remove ${Path.display(p)}: it is the root directory (pass noPreserveRoot to remove it anyway)`,
  )

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

  /**
   * This agent, with every operation started through it cancelled when `signal` aborts: the agent
   * kills what a cancelled exec started and removes a cancelled copy's temporary files.
   */
  withSignal(signal: AbortSignal): Agent {
    const session = this.session
    const open: Session.ClientSession["open"] = (op, args) => {
      const call = session.open(op, args)
      const cancel = () => call.cancel()
      if (signal.aborted) cancel()
      else {
        signal.addEventListener("abort", cancel, { once: true })
        void call.result.finally(() => signal.removeEventListener("abort", cancel)).catch(() => {})
      }
      return call
    }
    // The same session; only how operations are opened differs.
    const view = Object.create(session, { open: { value: open } }) as Session.ClientSession
    return new Agent(view, this.target)
  }

  private run<N extends Operations.Name>(op: N, args: Operations.Args<N>): Promise<Operations.Result<N>> {
    try {
      return this.session.open(op, args).result
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** Round trip of a ping operation, in milliseconds. */
  ping(): Promise<number> {
    const t0 = performance.now()
    return this.run("ping", {}).then(() => performance.now() - t0)
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
    const args = processArgs("exec", argv, o)
    checkExecStdin(o.stdin)
    const call = this.session.open("exec", {
      ...args,
      stdin: o.stdin === undefined ? "null" : "pipe",
      stdout: "pipe",
      stderr: o.stderr ?? "pipe",
    })
    // A process may exit without reading its input: that is not a failure of exec.
    // Not awaited: once the call settled its stdin refuses writes, and a stdin stream that never ends
    // must not hold the result.
    if (o.stdin !== undefined) feed(call.stdin, o.stdin).catch(() => {})
    const [stdout, stderr] = await orCallError(
      call,
      Promise.all([collect(call.stdout), collect(call.stderr)]),
    )
    const result = await call.result
    return { ...result, stdout, stderr }
  }

  /** Starts a process with streamed stdio (see {@link Process}); a bad option throws an OptionError at once. */
  spawn(argv: ReadonlyArray<string>, o: SpawnOptions = {}): Process {
    const call = this.session.open("exec", {
      ...processArgs("spawn", argv, o),
      stdin: o.stdin ?? "null",
      stdout: o.stdout ?? "pipe",
      stderr: o.stderr ?? "pipe",
    })
    return new Process(call, o)
  }

  /** Reads a guest file (or a range of it) into memory. Use {@link download} for big files. */
  async readFile(
    guestPath: GuestPath,
    o: { readonly offset?: number; readonly length?: number } = {},
  ): Promise<Uint8Array> {
    checkOptions("readFile", o, optionKeys.readFile)
    const call = this.session.open(
      "readFile",
      defined({ path: Path.normalize(guestPath), offset: o.offset, length: o.length }),
    )
    const body = await orCallError(call, collect(call.stdout))
    await call.result
    return body
  }

  /**
   * Streams a guest file to a host file (written to a temporary name, renamed when complete) or to a
   * Writable, with backpressure both ways. A host path is a string, or a Buffer for a name that is not
   * UTF-8 (as Node's fs takes it).
   */
  async download(
    guestPath: GuestPath,
    dest: HostPath | Writable,
    o: DownloadOptions = {},
  ): Promise<{ readonly bytes: number }> {
    checkOptions("download", o, optionKeys.download)
    // The host side first: a destination that cannot be written fails before the guest does any work.
    const sink =
      typeof dest === "string" || Buffer.isBuffer(dest)
        ? await Files.fileSink(dest)
        : Files.writableSink(dest, o.end ?? true)
    try {
      const call = this.session.open(
        "readFile",
        defined({ path: Path.normalize(guestPath), offset: o.offset, length: o.length }),
      )
      const uncancel = cancelOn(o.signal, () => call.cancel())
      if (o.signal?.aborted) call.cancel()
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
      try {
        await orCallError(call, transfer())
        const result = await call.result
        await sink.commit()
        return result
      } finally {
        uncancel()
      }
    } catch (e) {
      await sink.abort()
      throw e
    }
  }

  /** Writes bytes or text to a guest file (atomically by default). */
  writeFile(
    guestPath: GuestPath,
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
    guestPath: GuestPath,
    o: UploadOptions = {},
  ): Promise<{ readonly bytes: number }> {
    checkOptions("upload", o, optionKeys.upload)
    // The host file first: one that cannot be read fails before the guest does any work.
    const file = typeof source === "string" ? await openSource(source) : undefined
    try {
      const size = o.size ?? (file ? file.size : source instanceof Uint8Array ? source.byteLength : undefined)
      const call = this.session.open(
        "writeFile",
        defined({
          path: Path.normalize(guestPath),
          mode: o.mode,
          createParents: o.createParents,
          atomic: o.atomic,
          size,
        }),
      )
      const uncancel = cancelOn(o.signal, () => call.cancel())
      if (o.signal?.aborted) call.cancel()
      let done = 0
      const progress = (n: number) => {
        done += n
        o.onProgress?.(done, size)
      }
      const send = async () => {
        o.onProgress?.(0, size)
        if (file) {
          for await (const chunk of Files.uploadChunks(file.handle, file.path, file.size)) {
            await call.stdin.write(chunk)
            progress(chunk.byteLength)
          }
        } else if (source instanceof Uint8Array) {
          for (let off = 0; off < source.byteLength; off += CHUNK) {
            const part = source.subarray(off, Math.min(source.byteLength, off + CHUNK))
            await call.stdin.write(part)
            progress(part.byteLength)
          }
        } else {
          // A failed or cancelled call ends the upload even while the stream is waiting for data.
          const chunks = (source as Readable)[Symbol.asyncIterator]()
          const failed = call.result.then(() => new Promise<never>(() => {}))
          try {
            for (let n = await Promise.race([chunks.next(), failed]); !n.done; ) {
              const bytes = toBytes(n.value)
              await call.stdin.write(bytes)
              progress(bytes.byteLength)
              n = await Promise.race([chunks.next(), failed])
            }
          } finally {
            void chunks.return?.()?.catch(() => {})
          }
        }
        call.stdin.end()
      }
      try {
        await orCallError(call, send())
        return await call.result
      } finally {
        uncancel()
      }
    } finally {
      await file?.handle.close().catch(() => {})
    }
  }

  /** File metadata, of a symlink itself unless `follow` resolves it (then a dangling one is ENOENT). */
  stat(guestPath: GuestPath, o: { readonly follow?: boolean } = {}): Promise<Operations.Result<"stat">> {
    return this.run("stat", defined({ path: Path.normalize(guestPath), follow: o.follow }))
  }

  /**
   * The entries of a guest directory as they stream in, in the directory's own order, so a directory
   * of a million entries takes no more memory than one batch. Leaving the loop early, or `signal`,
   * cancels the listing.
   */
  entries(
    guestPath: GuestPath,
    o: { readonly signal?: AbortSignal } = {},
  ): AsyncIterable<Operations.DirEntry> {
    const session = this.session
    return {
      async *[Symbol.asyncIterator]() {
        const call = session.open("list", { path: Path.normalize(guestPath) })
        const onAbort = () => call.cancel()
        if (o.signal?.aborted) call.cancel()
        o.signal?.addEventListener("abort", onAbort, { once: true })
        try {
          // A failed listing ends the stream; its result then carries the agent's error.
          yield* Records.decode(call.stdout, Operations.DirEntry, `listing of ${Path.display(guestPath)}`)
          await call.result
        } finally {
          o.signal?.removeEventListener("abort", onAbort)
          if (!call.isSettled) call.cancel()
        }
      },
    }
  }

  /**
   * All entries of a guest directory, sorted by their names' bytes (see {@link entries} for large
   * directories). A name that is not UTF-8 is a Uint8Array.
   */
  async list(guestPath: GuestPath): Promise<ReadonlyArray<Operations.DirEntry>> {
    const all: Array<Operations.DirEntry> = []
    for await (const e of this.entries(guestPath)) all.push(e)
    return all.sort((a, b) => Buffer.compare(Path.toBytes(a.name), Path.toBytes(b.name)))
  }

  /** Creates a directory (`parents` like mkdir -p). */
  async mkdir(
    guestPath: GuestPath,
    o: { readonly parents?: boolean; readonly mode?: number } = {},
  ): Promise<void> {
    await this.run("mkdir", defined({ path: Path.normalize(guestPath), parents: o.parents, mode: o.mode }))
  }

  /**
   * Removes a file or directory (`recursive` like rm -r, `force` ignores a missing path). The root
   * directory, however spelled (`/`, `//`, `/tmp/..`), is refused with DENIED unless `noPreserveRoot`,
   * as GNU rm does: here before anything is sent, and by the agent for paths only it can resolve.
   */
  async remove(
    guestPath: GuestPath,
    o: { readonly recursive?: boolean; readonly force?: boolean; readonly noPreserveRoot?: boolean } = {},
  ): Promise<void> {
    if (o.noPreserveRoot !== true && Path.isRoot(guestPath)) throw refuseRoot(guestPath)
    await this.run(
      "remove",
      defined({
        path: Path.normalize(guestPath),
        recursive: o.recursive,
        force: o.force,
        noPreserveRoot: o.noPreserveRoot,
      }),
    )
  }

  /** Renames a file or directory (exactly: `to` is the new name, never a directory to move into). */
  async rename(from: GuestPath, to: GuestPath): Promise<void> {
    await this.run("rename", { from: Path.normalize(from), to: Path.normalize(to) })
  }

  /** Sets the permission bits of a guest path exactly (no umask). */
  async chmod(guestPath: GuestPath, mode: number): Promise<void> {
    await this.run("chmod", { path: Path.normalize(guestPath), mode })
  }

  /** Kernel log records; with `follow` it keeps streaming until the signal aborts or the loop breaks. */
  kmsg(o: { readonly follow?: boolean; readonly signal?: AbortSignal } = {}): AsyncIterable<KmsgRecord> {
    checkOptions("kmsg", o, optionKeys.kmsg)
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

  /**
   * Opens one connection from inside the guest (TCP, a Unix socket, AF_VSOCK) as a Duplex: it emits
   * "connect" once the guest connection is up, and "error" with ECONNREFUSED, ECONNRESET,
   * EHOSTUNREACH or ETIMEDOUT when the guest refused or reset it; `end()` half-closes.
   */
  connect(to: Forward.GuestAddress, o: { readonly timeoutMs?: number } = {}): Forward.Connection {
    return Forward.connect(this.session, to, o)
  }

  /**
   * Listens on this host (loopback unless `bindAny`) and carries each connection to a guest address,
   * all on this session. A connection the guest refuses is closed alone; the listener stays up.
   */
  forward(o: Forward.ForwardOptions): Promise<Forward.Forwarder> {
    return Forward.forward(this.session, o)
  }

  /** The other way: the agent listens in the guest and each connection there reaches a host address. */
  reverse(o: Forward.ReverseOptions): Promise<Forward.Forwarder> {
    return Forward.reverse(this.session, o)
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
