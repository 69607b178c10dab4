/**
 * Sessions: one per connection. The client opens operations with typed arguments and gets their
 * channels, events and result; the agent serves them with Effect handlers, one fiber per operation,
 * interrupted when the client cancels or goes away (so a cancelled exec kills its process group and
 * a cancelled write removes its temporary file, through the handlers' finalizers).
 */
import { Cause, Effect, Either, Exit, type Fiber, Runtime, Schema, type Scope } from "effect"
import type { ByteStream } from "./ByteStream.js"
import * as C from "./Constants.js"
import { AgentError } from "./Errors.js"
import * as Frame from "./Frame.js"
import * as Handshake from "./Handshake.js"
import { Call, Engine, type EngineOptions, run } from "./internal/engine.js"
import type { Incoming, Outgoing } from "./internal/channel.js"
import * as Messages from "./Messages.js"
import * as Ops from "./Operations.js"

export type { Incoming, Outgoing } from "./internal/channel.js"

/** Options of a client session. */
export interface ClientOptions extends EngineOptions {
  /** Who is connecting, shown to the agent. */
  readonly identity?: { readonly name: string; readonly version: string }
  /** Versions offered (defaults to this build's range). */
  readonly minVersion?: number
  readonly maxVersion?: number
}

/** Options of an agent session. */
export interface AgentOptions extends EngineOptions {
  /** Identity announced in the Welcome. */
  readonly identity: Handshake.Welcome["agent"]
  readonly minVersion?: number
  readonly maxVersion?: number
}

const FEATURES = ["keepalive", "resync", "auth", "cancel"]

// ------------------------------------------------------------------------------------------------
// Client

/** An open client session. */
export class ClientSession {
  private nextId = 1

  /** @internal */
  constructor(
    /** @internal */ readonly engine: Engine,
    /** The agent's Welcome: its version, identity and limits. */
    readonly welcome: Handshake.Welcome,
  ) {}

  /** Starts an operation. */
  open<N extends Ops.Name>(op: N, args: Ops.Args<N>): ClientCall<N> {
    if (this.engine.isClosed)
      throw new AgentError({
        code: "DISCONNECTED",
        message: `the session with ${this.engine.stream.description} is closed`,
      })
    const id = this.nextId++
    return new ClientCall(this.engine, id, op, args)
  }

  /** Round trip of a Ping frame, in milliseconds. */
  ping(): Promise<number> {
    return this.engine.ping()
  }

  /** Resolves when the session ends, with the reason if it failed. */
  get ended(): Promise<AgentError | undefined> {
    return this.engine.ended.then((e) => e.error)
  }

  /** True once the session ended. */
  get isClosed(): boolean {
    return this.engine.isClosed
  }

  /** Closes the session: running operations are cancelled on the agent. */
  close(): void {
    this.engine.close()
  }
}

/** A running operation, client side. */
export class ClientCall<N extends Ops.Name> {
  /** Settles with the operation's result, or rejects with its AgentError. */
  readonly result: Promise<Ops.Result<N>>
  /** exec stdin / writeFile body (client → agent). */
  readonly stdin: Outgoing
  /** exec stdout / readFile body / kmsg records (agent → client). */
  readonly stdout: Incoming
  /** exec stderr (agent → client). */
  readonly stderr: Incoming
  private readonly call: Call
  private events: Array<Ops.Event<N>> = []
  private eventWaiter: (() => void) | undefined
  private settled = false

  /** @internal */
  constructor(
    engine: Engine,
    readonly id: number,
    readonly op: N,
    args: Ops.Args<N>,
  ) {
    const spec = Ops.operations[op]
    const call = (this.call = new Call(engine, id))
    this.stdin = call.out(C.Channel.stdin)
    this.stdout = call.in(C.Channel.stdout)
    this.stderr = call.in(C.Channel.stderr)
    let resolve!: (value: Ops.Result<N>) => void
    let reject!: (error: AgentError) => void
    this.result = new Promise((res, rej) => ((resolve = res), (reject = rej)))
    this.result.catch(() => {}) // Callers that only read channels must not see an unhandled rejection.
    const settle = (outcome: Either.Either<Ops.Result<N>, AgentError>) => {
      if (this.settled) return
      this.settled = true
      call.finished = true
      engine.calls.delete(id)
      // Everything the agent sent precedes its final message: channels it never used end here.
      for (const c of call.incoming.values()) c.end()
      this.stdin.fail(finishedError("DISCONNECTED", `${op} finished; its input is closed`))
      this.wakeEvents()
      if (Either.isRight(outcome)) resolve(outcome.right)
      else reject(outcome.left)
    }
    call.onAbort = (error) => settle(Either.left(error))
    call.onMessage = (raw) => {
      const message = Messages.decode(Messages.AgentMessage, `${op} reply`)(raw)
      if (Either.isLeft(message)) return settle(Either.left(message.left))
      const m = message.right
      switch (m._tag) {
        case "Event": {
          const event = Messages.decode(spec.event as any, `${op} event`)(m.event)
          if (Either.isLeft(event)) return settle(Either.left(event.left))
          this.events.push(event.right as Ops.Event<N>)
          return this.wakeEvents()
        }
        case "Result":
          return settle(
            Messages.decode(spec.result as any, `${op} result`)(m.value) as Either.Either<
              Ops.Result<N>,
              AgentError
            >,
          )
        case "Failure":
          return settle(Either.left(new AgentError({ code: m.code, message: m.message })))
      }
    }
    // Arguments are checked here too, so a bad call fails at once with the field named.
    const encoded = Schema.encodeEither(spec.args as Schema.Schema<unknown>, { errors: "all" })(args)
    if (Either.isLeft(encoded)) {
      settle(
        Either.left(
          new AgentError({
            code: "EINVAL",
            message: `invalid ${op} request: ${Messages.formatIssue(encoded.left)}`,
          }),
        ),
      )
      return
    }
    engine.calls.set(id, call)
    call.send({ _tag: "Open", op, args: encoded.right })
  }

  /** The next event (exec: Started; readFile: Opened), or undefined once the operation finished. */
  async nextEvent(): Promise<Ops.Event<N> | undefined> {
    while (true) {
      const e = this.events.shift()
      if (e !== undefined) return e
      if (this.settled) return undefined
      await new Promise<void>((resolve) => (this.eventWaiter = resolve))
    }
  }

  /** Sends an input to the running operation (exec: a signal or a terminal resize). */
  input(input: Ops.Input<N>): void {
    if (this.settled) return
    this.call.send({ _tag: "Input", input: encodeWith(Ops.operations[this.op].input, input) })
  }

  /** Asks the agent to cancel; `result` then rejects with CANCELLED (or settles if it had finished). */
  cancel(): void {
    if (this.settled) return
    this.call.engine.writeFrame(Frame.FrameType.Cancel, 0, this.id)
  }

  /** True once the result arrived (or the call failed). */
  get isSettled(): boolean {
    return this.settled
  }

  private wakeEvents(): void {
    const w = this.eventWaiter
    this.eventWaiter = undefined
    w?.()
  }
}

/**
 * Errors that mark a finished call's channels, one per message: building an Error captures a stack
 * trace, which cost ~8% of a ping round trip when done per call.
 */
const finishedErrors = new Map<string, AgentError>()
const finishedError = (code: "DISCONNECTED" | "CANCELLED", message: string): AgentError => {
  let e = finishedErrors.get(message)
  if (!e) finishedErrors.set(message, (e = new AgentError({ code, message })))
  return e
}

/** Encodes a value with its operation schema before packing (a no-op for plain data, but keeps the wire honest). */
const encodeWith = (schema: unknown, value: unknown): unknown =>
  Schema.encodeSync(schema as Schema.Schema<unknown>)(value)

const clientRole = (options: ClientOptions) => {
  let welcome: Handshake.Welcome | undefined
  const role = {
    welcome: () => welcome!,
    // A late event for an operation that already settled (e.g. after a cancel): nothing to do.
    unknownCall: () => {},
    handshake: async (engine: Engine) => {
      const hello: Handshake.Message = {
        _tag: "Hello",
        minVersion: options.minVersion ?? C.PROTOCOL_VERSION_MIN,
        maxVersion: options.maxVersion ?? C.PROTOCOL_VERSION_MAX,
        features: FEATURES,
        client: options.identity ?? { name: "cuvette-client", version: "0" },
        maxFrame: engine.maxFrame,
        window: engine.window,
        // Tells this client's repeated hellos (serial ports) apart from another client's.
        nonce: Handshake.randomBytes(16),
      }
      const where = engine.stream.description
      const deadline = Date.now() + engine.handshakeTimeoutMs
      engine.writeHello(hello)
      let frame: Frame.Frame | undefined
      while (
        !(frame = await engine.nextHello(
          // Longer than the agent's resync stall timeout, so a hello swallowed by a half-received
          // frame of an old session is found by the agent before it is repeated.
          engine.stream.resync
            ? Math.min(2 * C.DEFAULT_RESYNC_STALL_MS, deadline - Date.now())
            : deadline - Date.now(),
        ))
      ) {
        if (engine.isClosed)
          throw (
            (await engine.ended).error ??
            new AgentError({ code: "DISCONNECTED", message: `${where} closed during the handshake` })
          )
        if (Date.now() >= deadline) {
          throw new AgentError({
            code: "ETIMEDOUT",
            message: `no handshake from ${where} within ${engine.handshakeTimeoutMs / 1000} s`,
          })
        }
        // On a serial port the agent may still be draining an old session: say hello again, with
        // the magic, so an agent that lost the first one finds this one.
        engine.writeHello(hello, { magic: true })
      }
      const reply = await expect(frame, where)
      if (reply._tag === "Refusal") throw refusal(reply, where)
      if (reply._tag !== "Welcome")
        throw new AgentError({ code: "PROTOCOL", message: `${where} answered the hello with ${reply._tag}` })
      if (reply.version < hello.minVersion || reply.version > hello.maxVersion) {
        throw new AgentError({
          code: "VERSION",
          message: `the agent at ${where} chose protocol v${reply.version}, the client speaks v${hello.minVersion}..v${hello.maxVersion}`,
        })
      }
      engine.version = reply.version
      engine.peerWindow = reply.window
      engine.peerMaxFrame = reply.maxFrame
      engine.peerHello = reply
      if (reply.challenge) {
        if (!engine.token) {
          throw new AgentError({
            code: "DENIED",
            message: `the agent at ${where} requires a token`,
          })
        }
        const nonce = Handshake.randomBytes()
        const proof = await run(Handshake.proof(engine.token, "client", reply.challenge, nonce))
        engine.writeFrame(
          Frame.FrameType.Hello,
          0,
          0,
          Messages.encode(Handshake.Message, { _tag: "Auth", proof, nonce }),
        )
        const answer = await expect(await engine.nextHello(), where)
        if (answer._tag === "Refusal") throw refusal(answer, where)
        const expected = await run(Handshake.proof(engine.token, "agent", nonce, reply.challenge))
        if (answer._tag !== "AuthOk" || !Handshake.equalProofs(answer.proof, expected)) {
          throw new AgentError({
            code: "DENIED",
            message: `the agent at ${where} could not prove it knows the token: wrong agent, or a different token file`,
          })
        }
      }
      welcome = reply
    },
  }
  return role
}

const expect = async (frame: Frame.Frame | undefined, where: string): Promise<Handshake.Message> => {
  if (!frame)
    throw new AgentError({ code: "ETIMEDOUT", message: `${where} stopped answering during the handshake` })
  const message = Messages.unpackAs(Handshake.Message, "handshake message")(frame.payload)
  if (Either.isLeft(message)) throw message.left
  return message.right
}

const refusal = (r: { readonly code: string; readonly message: string }, where: string) =>
  new AgentError({
    code: (AgentErrorCodes.has(r.code) ? r.code : "PROTOCOL") as AgentError["code"],
    message: `${where} refused the session: ${r.message}`,
  })
const AgentErrorCodes = new Set<string>(["DENIED", "VERSION", "PROTOCOL", "UNSUPPORTED", "INTERNAL"])

/** Runs the client handshake over `stream` and resolves with the open session. */
export const openClient = async (stream: ByteStream, options: ClientOptions = {}): Promise<ClientSession> => {
  const role = clientRole(options)
  const engine = new Engine(stream, role, options)
  await engine.opened
  return new ClientSession(engine, role.welcome())
}

/** The client handshake as a scoped Effect: the session closes when the scope does. */
export const client = (
  stream: ByteStream,
  options: ClientOptions = {},
): Effect.Effect<ClientSession, AgentError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => openClient(stream, options),
      catch: (e) => (e instanceof AgentError ? e : new AgentError({ code: "INTERNAL", message: String(e) })),
    }),
    (session) => Effect.sync(() => session.close()),
  )

// ------------------------------------------------------------------------------------------------
// Agent

/** A running operation, agent side, as handlers see it. */
export interface ServerCall<N extends Ops.Name> {
  readonly id: number
  readonly op: N
  /** exec stdin / writeFile body (client → agent). */
  readonly stdin: Incoming
  /** exec stdout / readFile body / kmsg records (agent → client). */
  readonly stdout: Outgoing
  /** exec stderr (agent → client). */
  readonly stderr: Outgoing
  /** Sends an event to the client. */
  readonly emit: (event: Ops.Event<N>) => void
  /** Registers the receiver of the client's inputs (exec: signals and resizes). */
  readonly onInput: (listener: (input: Ops.Input<N>) => void) => void
}

/** A handler per operation: an Effect that produces the result, with a Scope for its resources. */
export type Handlers<R> = {
  readonly [N in Ops.Name]?: (
    args: Ops.Args<N>,
    call: ServerCall<N>,
  ) => Effect.Effect<Ops.Result<N>, AgentError, R | Scope.Scope>
}

const agentRole = <R>(options: AgentOptions, handlers: Handlers<R>, runtime: Runtime.Runtime<R>) => {
  const runFork = Runtime.runFork(runtime)
  const fibers = new Map<Call, Fiber.RuntimeFiber<unknown, unknown>>()
  const served = Ops.names.filter((n) => handlers[n] !== undefined)

  const reply = (engine: Engine, id: number, message: Messages.AgentMessage) =>
    engine.writeFrame(Frame.FrameType.Control, 0, id, Messages.encode(Messages.AgentMessage, message))
  const failure = (error: AgentError): Messages.AgentMessage => ({
    _tag: "Failure",
    code: error.code,
    message: error.message,
  })

  const start = (engine: Engine, id: number, payload: Uint8Array) => {
    const decoded = Messages.unpackAs(Messages.ClientMessage, "control message")(payload)
    if (Either.isLeft(decoded)) return reply(engine, id, failure(decoded.left))
    const message = decoded.right
    // Input for an operation that just finished: expected, not an error.
    if (message._tag !== "Open") return
    const op = message.op
    const handler = Ops.isName(op) ? (handlers[op] as Handlers<R>[Ops.Name] | undefined) : undefined
    if (!Ops.isName(op) || !handler) {
      return reply(
        engine,
        id,
        failure(
          new AgentError({
            code: "UNSUPPORTED",
            message: `unknown operation "${op}"; this agent serves: ${served.join(", ")}`,
          }),
        ),
      )
    }
    const spec = Ops.operations[op]
    const args = Messages.decode(spec.args as any, `${op} request`)(message.args)
    if (Either.isLeft(args)) return reply(engine, id, failure(args.left))

    const call = new Call(engine, id)
    engine.calls.set(id, call)
    let inputListener: (input: unknown) => void = () => {}
    call.onMessage = (raw) => {
      const m = Messages.decode(Messages.ClientMessage, `${op} input`)(raw)
      if (Either.isLeft(m)) return engine.writeError(m.left, id)
      if (m.right._tag !== "Input")
        return engine.writeError(
          new AgentError({ code: "PROTOCOL", message: `operation ${id} is already open` }),
          id,
        )
      const input = Messages.decode(spec.input as any, `${op} input`)(m.right.input)
      if (Either.isLeft(input)) return engine.writeError(input.left, id)
      inputListener(input.right)
    }
    const serverCall: ServerCall<any> = {
      id,
      op,
      // Channels come into being on first use: most operations (ping, stat, ...) never touch them.
      get stdin() {
        return call.in(C.Channel.stdin)
      },
      get stdout() {
        return call.out(C.Channel.stdout)
      },
      get stderr() {
        return call.out(C.Channel.stderr)
      },
      emit: (event) => {
        if (!call.finished) call.send({ _tag: "Event", event: encodeWith(spec.event, event) })
      },
      onInput: (listener) => void (inputListener = listener as (input: unknown) => void),
    }
    const fiber = runFork(
      Effect.scoped(
        (handler as any)(args.right, serverCall) as Effect.Effect<unknown, AgentError, R | Scope.Scope>,
      ),
    )
    fibers.set(call, fiber)
    const interrupt = () => fiber.unsafeInterruptAsFork(fiber.id())
    call.onCancel = interrupt
    call.onAbort = interrupt
    fiber.addObserver((exit) => {
      fibers.delete(call)
      if (call.finished || !engine.calls.has(id)) return
      call.finished = true
      engine.calls.delete(id)
      // Data first, then the end of each stream, then the final message: the client sees them in order.
      // A channel that never carried data needs no Eof: the final message ends it on the client.
      for (const c of call.outgoing.values()) if (c.sent > 0) c.end()
      const outcome: Messages.AgentMessage = Exit.isSuccess(exit)
        ? { _tag: "Result", value: encodeWith(spec.result, exit.value) }
        : failure(exitError(exit, op))
      reply(engine, id, outcome)
      const done = finishedError("CANCELLED", `${op} finished`)
      for (const c of call.outgoing.values()) c.fail(done)
      for (const c of call.incoming.values()) c.fail(done)
    })
  }

  return {
    fibers,
    unknownCall: start,
    cancel: (call: Call) => call.onCancel(),
    handshake: async (engine: Engine) => {
      const where = engine.stream.description
      const frame = await engine.nextHello(engine.stream.resync ? 2 ** 31 - 1 : engine.handshakeTimeoutMs)
      if (!frame)
        throw new AgentError({
          code: "ETIMEDOUT",
          message: `no hello from ${where} within ${engine.handshakeTimeoutMs / 1000} s`,
        })
      engine.answeredHello = frame.payload
      const decoded = Messages.unpackAs(Handshake.ClientHello, "hello")(frame.payload)
      const refuse = (error: AgentError) => {
        // After the Welcome (wrong token) the magic was already sent: writeHello does not repeat it.
        engine.writeHello({ _tag: "Refusal", code: error.code, message: error.message })
        return error
      }
      if (Either.isLeft(decoded)) throw refuse(decoded.left)
      const hello = decoded.right
      const ours = {
        minVersion: options.minVersion ?? C.PROTOCOL_VERSION_MIN,
        maxVersion: options.maxVersion ?? C.PROTOCOL_VERSION_MAX,
      }
      const version = await Effect.runPromise(Effect.either(Handshake.negotiate(hello, ours)))
      if (Either.isLeft(version)) throw refuse(version.left)
      const challenge = engine.token ? Handshake.randomBytes() : undefined
      engine.version = version.right
      engine.peerWindow = hello.window
      engine.peerMaxFrame = hello.maxFrame
      engine.peerHello = hello
      engine.writeHello({
        _tag: "Welcome",
        version: version.right,
        features: FEATURES.filter((f) => hello.features.includes(f)),
        agent: options.identity,
        maxFrame: engine.maxFrame,
        window: engine.window,
        ...(challenge ? { challenge } : {}),
      })
      if (!challenge || !engine.token) return
      const answer = await expect(await engine.nextHello(), where)
      if (answer._tag !== "Auth")
        throw refuse(new AgentError({ code: "DENIED", message: "this agent requires a token" }))
      const expected = await run(Handshake.proof(engine.token, "client", challenge, answer.nonce))
      if (!Handshake.equalProofs(answer.proof, expected))
        throw refuse(new AgentError({ code: "DENIED", message: "wrong token" }))
      const proof = await run(Handshake.proof(engine.token, "agent", answer.nonce, challenge))
      engine.writeFrame(
        Frame.FrameType.Hello,
        0,
        0,
        Messages.encode(Handshake.Message, { _tag: "AuthOk", proof }),
      )
    },
  }
}

const exitError = (exit: Exit.Exit<unknown, AgentError>, op: string): AgentError => {
  if (Exit.isSuccess(exit)) return new AgentError({ code: "INTERNAL", message: "no error" })
  if (Exit.isInterrupted(exit)) return new AgentError({ code: "CANCELLED", message: `${op} was cancelled` })
  const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
  if (failure instanceof AgentError) return failure
  const squashed = Cause.squash(exit.cause)
  return (
    failure ??
    new AgentError({
      code: "INTERNAL",
      message: `${op} failed inside the agent: ${String((squashed as Error)?.message ?? squashed)}`,
    })
  )
}

/** A served session: its end, and a way to close it. */
export interface AgentSession {
  /** Resolves when the session ends, with the reason if it failed. */
  readonly ended: Promise<AgentError | undefined>
  /** Closes the session (GoAway), cancelling its operations. */
  readonly close: (reason?: string) => void
  /** Operations currently running. */
  readonly running: () => number
  /** Operations the session still routes frames to (running or finishing); 0 when all were freed. */
  readonly tracked: () => number
}

/**
 * Serves one connection: runs the agent handshake and then every operation the client opens, each
 * in its own fiber. The Effect completes when the session ends; interrupting it closes the session.
 */
export const serve = <R>(
  stream: ByteStream,
  options: AgentOptions & { readonly handlers: Handlers<R> },
): Effect.Effect<AgentError | undefined, never, R> =>
  Effect.flatMap(Effect.runtime<R>(), (runtime) => {
    const session = startAgent(stream, options, runtime)
    return Effect.promise(() => session.ended).pipe(
      Effect.onInterrupt(() => Effect.sync(() => session.close("the agent is shutting down"))),
    )
  })

/** Starts serving one connection with an explicit runtime (for callers outside Effect). */
export const startAgent = <R>(
  stream: ByteStream,
  options: AgentOptions & { readonly handlers: Handlers<R> },
  runtime: Runtime.Runtime<R>,
): AgentSession => {
  const role = agentRole(options, options.handlers, runtime)
  const engine = new Engine(stream, role, options)
  engine.opened.catch(() => {})
  return {
    ended: engine.ended.then((e) => e.error),
    close: (reason) =>
      engine.close(reason ? new AgentError({ code: "DISCONNECTED", message: reason }) : undefined),
    running: () => role.fibers.size,
    tracked: () => engine.calls.size,
  }
}
