/**
 * Sessions: one per connection. The client opens operations with typed arguments and gets their
 * channels, events and result (internal/clientSession.ts); the agent serves them with Effect
 * handlers, one fiber per operation (internal/agentSession.ts). Both run on the same engine
 * (internal/engine.ts) after the handshake of {@link Handshake}.
 */
import { Effect, type Runtime, type Scope } from "effect"
import type { ByteStream } from "./ByteStream.js"
import { AgentError } from "./Errors.js"
import * as AgentSide from "./internal/agentSession.js"
import * as ClientSide from "./internal/clientSession.js"

export type { Incoming, Outgoing } from "./internal/channel.js"
export type { AgentOptions, AgentSession, Handlers, ServerCall } from "./internal/agentSession.js"
export { ClientCall, type ClientOptions, ClientSession } from "./internal/clientSession.js"
export { PendingHandshakes } from "./internal/pending.js"

/** Runs the client handshake over `stream` and resolves with the open session. */
export const openClient = (
  stream: ByteStream,
  options: ClientSide.ClientOptions = {},
): Promise<ClientSide.ClientSession> => ClientSide.open(stream, options)

/** The client handshake as a scoped Effect: the session closes when the scope does. */
export const client = (
  stream: ByteStream,
  options: ClientSide.ClientOptions = {},
): Effect.Effect<ClientSide.ClientSession, AgentError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => ClientSide.open(stream, options),
      catch: (e) => (e instanceof AgentError ? e : new AgentError({ code: "INTERNAL", message: String(e) })),
    }),
    (session) => Effect.sync(() => session.close()),
  )

/**
 * Serves one connection: runs the agent handshake and then every operation the client opens, each
 * in its own fiber. The Effect completes when the session ends; interrupting it closes the session.
 */
export const serve = <R>(
  stream: ByteStream,
  options: AgentSide.AgentOptions & { readonly handlers: AgentSide.Handlers<R> },
): Effect.Effect<AgentError | undefined, never, R> =>
  Effect.flatMap(Effect.runtime<R>(), (runtime) => {
    const session = AgentSide.start(stream, options, runtime)
    return Effect.promise(() => session.ended).pipe(
      Effect.onInterrupt(() => Effect.sync(() => session.close("the agent is shutting down"))),
    )
  })

/** Starts serving one connection with an explicit runtime (for callers outside Effect). */
export const startAgent = <R>(
  stream: ByteStream,
  options: AgentSide.AgentOptions & { readonly handlers: AgentSide.Handlers<R> },
  runtime: Runtime.Runtime<R>,
): AgentSide.AgentSession => AgentSide.start(stream, options, runtime)
