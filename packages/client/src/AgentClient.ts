/**
 * The Effect service: the same operations as {@link Client.Agent}, as Effects (failing with the
 * protocol's AgentError) and Streams, with layers that connect to a target (`layer`) or to an in-memory
 * agent whose handlers the test supplies (`layerTest`).
 *
 * ```ts
 * const program = Effect.gen(function* () {
 *   const agent = yield* AgentClient.AgentClient
 *   const r = yield* agent.exec(["uname", "-r"])
 * })
 * Effect.runPromise(program.pipe(Effect.provide(AgentClient.layer("unix:/tmp/agent.sock"))))
 * ```
 */
import type { Readable, Writable } from "node:stream"
import { ByteStream, Errors, type Operations, Session } from "@cuvette/protocol"
import { Context, Effect, Layer, type Scope, Stream } from "effect"
import * as Client from "./Client.js"
import type { ConnectError } from "./ConnectError.js"
import type * as Target from "./Target.js"

type AgentError = Errors.AgentError

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
  ) => Effect.Effect<Client.ExecResult, AgentError>
  /** Starts a process; it is cancelled when the scope closes if it is still running. */
  readonly spawn: (
    argv: ReadonlyArray<string>,
    options?: Client.SpawnOptions,
  ) => Effect.Effect<Client.Process, never, Scope.Scope>
  readonly readFile: (
    path: string,
    options?: { readonly offset?: number; readonly length?: number },
  ) => Effect.Effect<Uint8Array, AgentError>
  /** A guest file's body as a stream of chunks (flow-controlled: pulled as consumed). */
  readonly readFileStream: (
    path: string,
    options?: { readonly offset?: number; readonly length?: number },
  ) => Stream.Stream<Uint8Array, AgentError>
  readonly writeFile: (
    path: string,
    data: Uint8Array | string,
    options?: Client.UploadOptions,
  ) => Effect.Effect<{ readonly bytes: number }, AgentError>
  readonly upload: (
    source: string | Readable | Uint8Array,
    path: string,
    options?: Client.UploadOptions,
  ) => Effect.Effect<{ readonly bytes: number }, AgentError>
  readonly download: (
    path: string,
    dest: string | Writable,
    options?: Client.DownloadOptions,
  ) => Effect.Effect<{ readonly bytes: number }, AgentError>
  readonly stat: (
    path: string,
    options?: { readonly follow?: boolean },
  ) => Effect.Effect<Operations.Stat, AgentError>
  /** All entries, sorted by name. */
  readonly list: (path: string) => Effect.Effect<ReadonlyArray<Operations.DirEntry>, AgentError>
  /** Entries as they stream in, in directory order, with bounded memory; interrupting cancels the listing. */
  readonly entries: (path: string) => Stream.Stream<Operations.DirEntry, AgentError>
  readonly mkdir: (
    path: string,
    options?: { readonly parents?: boolean; readonly mode?: number },
  ) => Effect.Effect<void, AgentError>
  readonly remove: (
    path: string,
    options?: { readonly recursive?: boolean; readonly force?: boolean },
  ) => Effect.Effect<void, AgentError>
  readonly rename: (from: string, to: string) => Effect.Effect<void, AgentError>
  readonly chmod: (path: string, mode: number) => Effect.Effect<void, AgentError>
  /** Kernel log records; with `follow` the stream runs until interrupted. */
  readonly kmsg: (options?: { readonly follow?: boolean }) => Stream.Stream<Client.KmsgRecord, AgentError>
  readonly mount: (args: Operations.Args<"mount">) => Effect.Effect<void, AgentError>
  readonly shutdown: (options?: { readonly reboot?: boolean }) => Effect.Effect<void, AgentError>
  readonly crash: (kind: "agent" | "kernel") => Effect.Effect<void, AgentError>
}

/** The connected agent, as a service. */
export class AgentClient extends Context.Tag("@cuvette/client/AgentClient")<AgentClient, Service>() {}

/** Anything a Promise rejects with, as an AgentError (host-side file errors keep their errno code). */
const toAgentError = (e: unknown): AgentError => Errors.fromUnknown(e)

const lift =
  <Args extends ReadonlyArray<any>, A>(f: (...args: Args) => Promise<A>) =>
  (...args: Args): Effect.Effect<A, AgentError> =>
    Effect.tryPromise({ try: () => f(...args), catch: toAgentError })

/** Wraps a connected Client.Agent as the service. */
export const make = (agent: Client.Agent): Service => ({
  agent,
  ping: lift(() => agent.ping())(),
  info: lift(() => agent.info())(),
  time: lift(() => agent.time())(),
  exec: lift((argv: ReadonlyArray<string>, o?: Client.ExecOptions) => agent.exec(argv, o)),
  spawn: (argv, o) =>
    Effect.acquireRelease(
      Effect.sync(() => agent.spawn(argv, o)),
      (p) =>
        Effect.sync(() => {
          p.exited.catch(() => {})
          p.cancel()
        }),
    ),
  readFile: lift((path: string, o?: { readonly offset?: number; readonly length?: number }) =>
    agent.readFile(path, o),
  ),
  readFileStream: (path, o = {}) =>
    Stream.suspend(() => {
      const call = agent.session.open(
        "readFile",
        Object.assign(
          { path },
          o.offset !== undefined ? { offset: o.offset } : {},
          o.length !== undefined ? { length: o.length } : {},
        ),
      )
      async function* body() {
        try {
          for await (const chunk of call.stdout) yield chunk
          await call.result
        } finally {
          if (!call.isSettled) call.cancel()
        }
      }
      return Stream.fromAsyncIterable(body(), toAgentError)
    }),
  writeFile: lift((path: string, data: Uint8Array | string, o?: Client.UploadOptions) =>
    agent.writeFile(path, data, o),
  ),
  upload: lift((source: string | Readable | Uint8Array, path: string, o?: Client.UploadOptions) =>
    agent.upload(source, path, o),
  ),
  download: lift((path: string, dest: string | Writable, o?: Client.DownloadOptions) =>
    agent.download(path, dest, o),
  ),
  stat: lift((path: string, o?: { readonly follow?: boolean }) => agent.stat(path, o)),
  list: lift((path: string) => agent.list(path)),
  entries: (path) => Stream.suspend(() => Stream.fromAsyncIterable(agent.entries(path), toAgentError)),
  mkdir: lift((path: string, o?: { readonly parents?: boolean; readonly mode?: number }) =>
    agent.mkdir(path, o),
  ),
  remove: lift((path: string, o?: { readonly recursive?: boolean; readonly force?: boolean }) =>
    agent.remove(path, o),
  ),
  rename: lift((from: string, to: string) => agent.rename(from, to)),
  chmod: lift((path: string, mode: number) => agent.chmod(path, mode)),
  kmsg: (o = {}) =>
    Stream.suspend(() =>
      Stream.fromAsyncIterable(agent.kmsg(o.follow !== undefined ? { follow: o.follow } : {}), toAgentError),
    ),
  mount: lift((args: Operations.Args<"mount">) => agent.mount(args)),
  shutdown: lift((o?: { readonly reboot?: boolean }) => agent.shutdown(o)),
  crash: lift((kind: "agent" | "kernel") => agent.crash(kind)),
})

/** Connects (scoped: closed with the scope) and yields the service. */
export const makeConnected = (
  target: string | Target.Target,
  options: Client.ConnectOptions = {},
): Effect.Effect<Service, ConnectError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => Client.connect(target, options), catch: (e) => e as ConnectError }),
    (agent) => Effect.promise(() => agent.close()),
  ).pipe(Effect.map(make))

/** A layer that connects to `target` and closes the connection when the layer is released. */
export const layer = (
  target: string | Target.Target,
  options: Client.ConnectOptions = {},
): Layer.Layer<AgentClient, ConnectError> => Layer.scoped(AgentClient, makeConnected(target, options))

/** Identity of the in-memory test agent. */
const testIdentity = { name: "test-agent", version: "0", os: "test", arch: "test", hostname: "memory" }

/**
 * An in-memory agent serving the given handlers (default: ping only), connected through a
 * ByteStream pair: the real session machinery, no sockets.
 */
export const layerTest = <R = never>(
  handlers: Session.Handlers<R> = { ping: () => Effect.succeed({}) } as Session.Handlers<R>,
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
      return make(agent)
    }),
  )
