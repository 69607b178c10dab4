/**
 * The Effect service: the same operations as {@link Client.Agent}, as Effects (failing with the
 * protocol's AgentError for the guest's failures, HostFileError, HostStreamError and OptionError for the
 * host's) and
 * Streams, with layers that connect to a target (`layer`) or to an in-memory
 * agent whose handlers the test supplies (`layerTest`).
 *
 * ```ts
 * const program = Effect.gen(function* () {
 *   const agent = yield* AgentClient.AgentClient
 *   const r = yield* agent.exec(["uname", "-r"])
 * })
 * Effect.runPromise(program.pipe(Effect.provide(AgentClient.layer("unix:/tmp/agent.sock"))))
 * ```
 *
 * Interrupting an operation (a timeout, a race, a closed scope) cancels it on the agent and waits until
 * the agent confirmed: the guest process group is gone and temporary files are removed. An agent that
 * does not confirm within `cancelTimeoutMs` (default 5 s: it is stopped, or its host link is stalled)
 * has its connection closed, which cancels everything on it once it reads again, and the interruption
 * completes; later operations on the service fail with DISCONNECTED.
 */
import type { Readable, Writable } from "node:stream"
import { ByteStream, Errors, type Operations, Path, Session } from "@cuvette/protocol"
import { Context, Duration, Effect, Layer, type Scope, Stream } from "effect"
import * as Client from "./Client.js"
import type { ConnectError } from "./ConnectError.js"
import * as Forward from "./Forward.js"
import {
  type HostFileError,
  type HostStreamError,
  isHostError,
  isOptionError,
  type OptionError,
} from "./HostError.js"
import type * as Target from "./Target.js"

type AgentError = Errors.AgentError
/** Failures of a copy: the guest's (AgentError) or this host's (HostFileError, HostStreamError), or a bad option. */
export type CopyError = Errors.AgentError | HostFileError | HostStreamError | OptionError

/** The operations, as Effects and Streams. */
export interface Service {
  /** The Promise-based handle underneath (for what is easier with Node streams). */
  readonly agent: Client.Agent
  readonly ping: Effect.Effect<number, AgentError>
  readonly info: Effect.Effect<Operations.Result<"info">, AgentError>
  readonly time: Effect.Effect<Operations.Result<"time">, AgentError>
  readonly exec: (
    argv: ReadonlyArray<string>,
    options?: Client.ExecOptions,
  ) => Effect.Effect<Client.ExecResult, AgentError | OptionError>
  /** Starts a process; it is cancelled when the scope closes if it is still running. */
  readonly spawn: (
    argv: ReadonlyArray<string>,
    options?: Client.SpawnOptions,
  ) => Effect.Effect<Client.Process, AgentError | OptionError, Scope.Scope>
  readonly readFile: (
    path: Client.GuestPath,
    options?: { readonly offset?: number; readonly length?: number },
  ) => Effect.Effect<Uint8Array, AgentError | OptionError>
  /** A guest file's body as a stream of chunks (flow-controlled: pulled as consumed). */
  readonly readFileStream: (
    path: Client.GuestPath,
    options?: { readonly offset?: number; readonly length?: number },
  ) => Stream.Stream<Uint8Array, AgentError>
  readonly writeFile: (
    path: Client.GuestPath,
    data: Uint8Array | string,
    options?: Client.UploadOptions,
  ) => Effect.Effect<{ readonly bytes: number }, CopyError>
  readonly upload: (
    source: string | Readable | Uint8Array,
    path: Client.GuestPath,
    options?: Client.UploadOptions,
  ) => Effect.Effect<{ readonly bytes: number }, CopyError>
  readonly download: (
    path: Client.GuestPath,
    dest: string | Buffer | Writable,
    options?: Client.DownloadOptions,
  ) => Effect.Effect<{ readonly bytes: number }, CopyError>
  readonly stat: (
    path: Client.GuestPath,
    options?: { readonly follow?: boolean },
  ) => Effect.Effect<Operations.Stat, AgentError>
  /** All entries, sorted by name. */
  readonly list: (path: Client.GuestPath) => Effect.Effect<ReadonlyArray<Operations.DirEntry>, AgentError>
  /** Entries as they stream in, in directory order, with bounded memory; interrupting cancels the listing. */
  readonly entries: (path: Client.GuestPath) => Stream.Stream<Operations.DirEntry, AgentError>
  readonly mkdir: (
    path: Client.GuestPath,
    options?: { readonly parents?: boolean; readonly mode?: number },
  ) => Effect.Effect<void, AgentError>
  readonly remove: (
    path: Client.GuestPath,
    options?: { readonly recursive?: boolean; readonly force?: boolean; readonly noPreserveRoot?: boolean },
  ) => Effect.Effect<void, AgentError>
  readonly rename: (from: Client.GuestPath, to: Client.GuestPath) => Effect.Effect<void, AgentError>
  readonly chmod: (path: Client.GuestPath, mode: number) => Effect.Effect<void, AgentError>
  /** Kernel log records; with `follow` the stream runs until interrupted. */
  readonly kmsg: (options?: { readonly follow?: boolean }) => Stream.Stream<Client.KmsgRecord, AgentError>
  readonly mount: (args: Operations.Args<"mount">) => Effect.Effect<void, AgentError>
  readonly shutdown: (options?: { readonly reboot?: boolean }) => Effect.Effect<void, AgentError>
  readonly crash: (kind: "agent" | "kernel") => Effect.Effect<void, AgentError>
  /** One connection from inside the guest, as a Duplex; destroyed (the guest side reset) with the scope. */
  readonly connect: (
    to: Forward.GuestAddress,
    options?: { readonly timeoutMs?: number },
  ) => Effect.Effect<Forward.Connection, AgentError, Scope.Scope>
  /** A host listener carrying its connections to the guest (see Client.Agent.forward), closed with the scope. */
  readonly forward: (
    options: Forward.ForwardOptions,
  ) => Effect.Effect<Forward.Forwarder, AgentError | OptionError | Forward.HostSocketError, Scope.Scope>
  /** A guest listener carrying its connections to this host (see Client.Agent.reverse), closed with the scope. */
  readonly reverse: (
    options: Forward.ReverseOptions,
  ) => Effect.Effect<Forward.Forwarder, AgentError | OptionError, Scope.Scope>
}

/** The connected agent, as a service. */
export class AgentClient extends Context.Tag("@cuvette/client/AgentClient")<AgentClient, Service>() {}

/** The host's typed failures as they are; anything else as an AgentError. */
const toError = (e: unknown): CopyError => (isHostError(e) || isOptionError(e) ? e : Errors.fromUnknown(e))
const toAgentError = (e: unknown): AgentError => Errors.fromUnknown(e)

/** How the service is made. */
export interface Options {
  /**
   * How long an interruption waits for the agent to confirm a cancel before it closes the connection
   * instead (default 5000 ms).
   */
  readonly cancelTimeoutMs?: number | undefined
}

const DEFAULT_CANCEL_TIMEOUT_MS = 5_000

/**
 * Waits for a cancelled operation to settle, at most `timeoutMs`; past that the agent is not answering,
 * and closing the connection is the one cancel left (the agent ends a closed session's work).
 */
const settledOrClosed = (agent: Client.Agent, settled: Promise<unknown>, timeoutMs: number) =>
  Effect.promise(() =>
    settled.then(
      () => {},
      () => {},
    ),
  ).pipe(
    // Finalizers run uninterruptibly; the wait itself must yield to the timeout.
    Effect.interruptible,
    Effect.timeout(Duration.millis(timeoutMs)),
    Effect.catchAll(() => Effect.sync(() => agent.session.close())),
  )

/**
 * Runs an operation of `agent`; interrupting the Effect cancels it on the agent and waits until it
 * settled (bounded: see settledOrClosed), so nothing it started outlives the interruption. `E` is what
 * the operation can fail with: AgentError, plus HostFileError / OptionError for those that take host
 * files or options.
 */
const cancellable = <A, E = AgentError>(
  agent: Client.Agent,
  f: (agent: Client.Agent) => Promise<A>,
  cancelTimeoutMs: number,
): Effect.Effect<A, E> =>
  Effect.async<A, E>((resume) => {
    const ac = new AbortController()
    const running = Promise.resolve().then(() => f(agent.withSignal(ac.signal)))
    running.then(
      (a) => resume(Effect.succeed(a)),
      (e: unknown) => resume(Effect.fail(toError(e) as E)),
    )
    return Effect.suspend(() => {
      ac.abort()
      return settledOrClosed(agent, running, cancelTimeoutMs)
    })
  })

/** A forwarder that runs while the scope is open; its start fails with the host's or the guest's error. */
const listening = <E>(start: () => Promise<Forward.Forwarder>) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: start,
      catch: (e) =>
        (e instanceof Forward.HostSocketError || isOptionError(e) ? e : Errors.fromUnknown(e)) as E,
    }),
    (f) => Effect.promise(() => f.close()),
  )

/**
 * A Stream of an agent call's records whose interruption cancels the call first. Without that, ending
 * the iteration waits for the call's next chunk (an async generator cannot return while it awaits one),
 * which a quiet FIFO or a followed kernel log may never send.
 */
const cancellableStream = <A>(
  open: (signal: AbortSignal) => AsyncIterable<A>,
): Stream.Stream<A, AgentError> =>
  Stream.suspend(() => {
    const abort = new AbortController()
    const records = open(abort.signal)[Symbol.asyncIterator]()
    const iterable: AsyncIterable<A> = {
      [Symbol.asyncIterator]: () => ({
        next: () => records.next(),
        return: (value?: unknown) => {
          abort.abort()
          return records.return?.(value) ?? Promise.resolve({ done: true, value: undefined })
        },
      }),
    }
    return Stream.fromAsyncIterable(iterable, toAgentError)
  })

/** Wraps a connected Client.Agent as the service. */
export const make = (agent: Client.Agent, options: Options = {}): Service => {
  const cancelTimeoutMs = options.cancelTimeoutMs ?? DEFAULT_CANCEL_TIMEOUT_MS
  const run = <A, E = AgentError>(f: (agent: Client.Agent) => Promise<A>) =>
    cancellable<A, E>(agent, f, cancelTimeoutMs)
  return {
    agent,
    ping: run((a) => a.ping()),
    info: run((a) => a.info()),
    time: run((a) => a.time()),
    exec: (argv, o) => run((a) => a.exec(argv, o)),
    spawn: (argv, o) =>
      Effect.acquireRelease(
        Effect.try({ try: () => agent.spawn(argv, o), catch: (e) => toError(e) as AgentError | OptionError }),
        // The scope is done with its output: drop it, cancel, and wait for the agent to confirm.
        (p) =>
          Effect.suspend(() => {
            p.stdout?.destroy()
            p.stderr?.destroy()
            p.cancel()
            return settledOrClosed(agent, p.exited, cancelTimeoutMs)
          }),
      ),
    readFile: (path, o) => run((a) => a.readFile(path, o)),
    readFileStream: (path, o = {}) =>
      cancellableStream((signal) => {
        const call = agent.session.open(
          "readFile",
          Object.assign(
            { path: Path.normalize(path) },
            o.offset !== undefined ? { offset: o.offset } : {},
            o.length !== undefined ? { length: o.length } : {},
          ),
        )
        signal.addEventListener("abort", () => call.cancel(), { once: true })
        async function* body() {
          try {
            for await (const chunk of call.stdout) yield chunk
            await call.result
          } finally {
            if (!call.isSettled) call.cancel()
          }
        }
        return body()
      }),
    writeFile: (path, data, o) => run((a) => a.writeFile(path, data, o)),
    upload: (source, path, o) => run((a) => a.upload(source, path, o)),
    download: (path, dest, o) => run((a) => a.download(path, dest, o)),
    stat: (path, o) => run((a) => a.stat(path, o)),
    list: (path) => run((a) => a.list(path)),
    entries: (path) => cancellableStream((signal) => agent.entries(path, { signal })),
    mkdir: (path, o) => run((a) => a.mkdir(path, o)),
    remove: (path, o) => run((a) => a.remove(path, o)),
    rename: (from, to) => run((a) => a.rename(from, to)),
    chmod: (path, mode) => run((a) => a.chmod(path, mode)),
    kmsg: (o = {}) =>
      cancellableStream((signal) =>
        agent.kmsg(o.follow !== undefined ? { follow: o.follow, signal } : { signal }),
      ),
    mount: (args) => run((a) => a.mount(args)),
    shutdown: (o) => run((a) => a.shutdown(o)),
    crash: (kind) => run((a) => a.crash(kind)),
    connect: (to, o) =>
      Effect.acquireRelease(Effect.try({ try: () => agent.connect(to, o), catch: toAgentError }), (c) =>
        Effect.sync(() => c.destroy()),
      ),
    forward: (o) => listening(() => agent.forward(o)),
    reverse: (o) => listening(() => agent.reverse(o)),
  }
}

/** Connects (scoped: closed with the scope) and yields the service. */
export const makeConnected = (
  target: string | Target.Target,
  options: Client.ConnectOptions & Options = {},
): Effect.Effect<Service, ConnectError, Scope.Scope> => {
  const { cancelTimeoutMs, ...connect } = options
  return Effect.acquireRelease(
    Effect.tryPromise({ try: () => Client.connect(target, connect), catch: (e) => e as ConnectError }),
    (agent) => Effect.promise(() => agent.close()),
  ).pipe(Effect.map((agent) => make(agent, { cancelTimeoutMs })))
}

/** A layer that connects to `target` and closes the connection when the layer is released. */
export const layer = (
  target: string | Target.Target,
  options: Client.ConnectOptions & Options = {},
): Layer.Layer<AgentClient, ConnectError> => Layer.scoped(AgentClient, makeConnected(target, options))

/** Identity of the in-memory test agent. */
const testIdentity = { name: "test-agent", version: "0", os: "test", arch: "test", hostname: "memory" }

/**
 * An in-memory agent serving the given handlers (default: ping only), connected through a
 * ByteStream pair: the real session machinery, no sockets.
 */
export const layerTest = <R = never>(
  handlers: Session.Handlers<R> = { ping: () => Effect.succeed({}) } as Session.Handlers<R>,
  options: Options = {},
): Layer.Layer<AgentClient, ConnectError, R> =>
  Layer.scoped(
    AgentClient,
    Effect.gen(function* () {
      const runtime = yield* Effect.runtime<R>()
      const [a, b] = ByteStream.pair()
      yield* Effect.acquireRelease(
        Effect.sync(() => Session.startAgent(b, { identity: testIdentity, handlers }, runtime)),
        (s) => Effect.sync(() => s.close()),
      )
      const agent = yield* Effect.acquireRelease(
        Effect.tryPromise({ try: () => Client.fromStream(a), catch: (e) => e as ConnectError }),
        (agent) => Effect.promise(() => agent.close()),
      )
      return make(agent, options)
    }),
  )
