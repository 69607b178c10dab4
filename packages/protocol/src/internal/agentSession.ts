/**
 * The agent's side of a session: it serves the operations a client opens with Effect handlers, one
 * fiber per operation, interrupted when the client cancels or goes away (so a cancelled exec kills
 * its process group and a cancelled write removes its temporary file, through the handlers'
 * finalizers).
 */
import { Cause, Effect, Either, Exit, type Fiber, Runtime, type Scope } from "effect"
import * as C from "../Constants.js"
import { AgentError } from "../Errors.js"
import * as Handshake from "../Handshake.js"
import * as Messages from "../Messages.js"
import * as Ops from "../Operations.js"
import { type Call, type CallHost, encodeWith, finishedError, perOperation } from "./call.js"
import type { Incoming, Outgoing } from "./channel.js"
import { Engine, type EngineOptions } from "./engine.js"
import * as Pending from "./pending.js"

/** Options of an agent session. */
export interface AgentOptions extends EngineOptions, Handshake.AgentOptions {
  /** Where this agent counts the handshakes still waiting (default: one count per process). */
  readonly pendingHandshakes?: Pending.PendingHandshakes
}

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

/** Starts serving one connection with an explicit runtime. */
export const start = <R>(
  stream: ConstructorParameters<typeof Engine>[0],
  options: AgentOptions & { readonly handlers: Handlers<R> },
  runtime: Runtime.Runtime<R>,
): AgentSession => {
  const dispatcher = new Dispatcher(options.handlers, runtime)
  const engine = new Engine(
    stream,
    {
      handshake: (io) => Handshake.runAgent(io, options),
      unknownCall: (engine, id, payload) => dispatcher.open(engine, id, payload),
      cancel: (call) => call.onCancel(),
      inbound: [C.Channel.stdin],
      maxUnread: C.MAX_SESSION_UNREAD,
      maxUndrained: C.MAX_UNDRAINED,
      takeover: true,
    },
    options,
  )
  // A serial port has one session, which waits for its client as long as it takes.
  if (!stream.resync) {
    const pending = options.pendingHandshakes ?? Pending.shared
    const done = pending.admit(() =>
      engine.close(
        new AgentError({
          code: "PROTOCOL",
          message: `too many connections are in their handshake (the limit is ${pending.max}); the oldest was dropped`,
        }),
        false,
      ),
    )
    void engine.opened.then(done, done)
  }
  engine.opened.catch(() => {})
  return {
    ended: engine.ended.then((e) => e.error),
    close: (reason) =>
      engine.close(reason ? new AgentError({ code: "DISCONNECTED", message: reason }) : undefined),
    running: () => dispatcher.running,
    tracked: () => engine.calls.size,
  }
}

/** Opens calls: validates the Open, runs the handler in a fiber, and sends its outcome. */
class Dispatcher<R> {
  private readonly runFork: ReturnType<typeof Runtime.runFork<R>>
  private readonly fibers = new Set<Fiber.RuntimeFiber<unknown, unknown>>()
  private readonly served: ReadonlyArray<string>

  constructor(
    private readonly handlers: Handlers<R>,
    runtime: Runtime.Runtime<R>,
  ) {
    this.runFork = Runtime.runFork(runtime)
    this.served = Ops.names.filter((n) => handlers[n] !== undefined)
  }

  get running(): number {
    return this.fibers.size
  }

  open(engine: Engine, id: number, payload: Uint8Array): void {
    const decoded = decodeClientMessage(payload)
    if (Either.isLeft(decoded)) return reply(engine, id, failure(decoded.left))
    const message = decoded.right
    // Input for an operation that just finished: expected, not an error.
    if (message._tag !== "Open") return
    const op = message.op
    const handler = Ops.isName(op) ? (this.handlers[op] as Handlers<R>[Ops.Name] | undefined) : undefined
    if (!Ops.isName(op) || !handler) {
      return reply(
        engine,
        id,
        failure(
          new AgentError({
            code: "UNSUPPORTED",
            message: `unknown operation "${Messages.bounded(op, 40)}"; this agent serves: ${this.served.join(", ")}`,
          }),
        ),
      )
    }
    if (engine.calls.size >= C.MAX_OPEN_CALLS)
      return reply(
        engine,
        id,
        failure(
          new AgentError({
            code: "EBUSY",
            message: `${op}: this session has ${C.MAX_OPEN_CALLS} operations open, the most an agent runs for one session; wait for some to finish`,
          }),
        ),
      )
    const codec = codecOf(op)
    const args = codec.args(message.args)
    if (Either.isLeft(args)) return reply(engine, id, failure(args.left))

    const call = engine.register(id)
    let inputListener: (input: unknown) => void = () => {}
    call.onMessage = (raw) => {
      const m = codec.message(raw)
      if (Either.isLeft(m)) return engine.writeError(m.left, id)
      if (m.right._tag !== "Input")
        return engine.writeError(
          new AgentError({ code: "PROTOCOL", message: `operation ${id} is already open` }),
          id,
        )
      const input = codec.input(m.right.input)
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
        if (call.finished) return
        const error = call.send({ _tag: "Event", event: encodeWith(codec.spec.event, event) })
        if (error) abandon(call, error)
      },
      onInput: (listener) => void (inputListener = listener as (input: unknown) => void),
    }
    let effect: Effect.Effect<unknown, AgentError, R | Scope.Scope>
    try {
      effect = (handler as any)(args.right, serverCall)
    } catch (cause) {
      return finish(call, codec, Exit.die(cause))
    }
    // A handler that answered at once (ping: Effect.succeed) needs no fiber, no scope: nothing of it
    // runs later, so there is nothing to interrupt or to finalize. The reply leaves in this turn.
    if (Exit.isExit(effect)) return finish(call, codec, effect as Exit.Exit<unknown, AgentError>)
    const fiber = this.runFork(Effect.scoped(effect))
    this.fibers.add(fiber)
    const interrupt = () => fiber.unsafeInterruptAsFork(fiber.id())
    call.onCancel = interrupt
    // A call that ends while its handler runs (session gone, protocol violation) stops the handler.
    call.onEnd = () => {
      if (this.fibers.has(fiber)) interrupt()
    }
    fiber.addObserver((exit) => {
      this.fibers.delete(fiber)
      finish(call, codec, exit)
    })
  }
}

/** An operation's schemas as ready-made parsers, built once per operation rather than per call. */
interface Codec {
  readonly spec: (typeof Ops.operations)[Ops.Name]
  readonly args: (raw: unknown) => Either.Either<unknown, AgentError>
  readonly message: (raw: unknown) => Either.Either<Messages.ClientMessage, AgentError>
  readonly input: (raw: unknown) => Either.Either<unknown, AgentError>
  /** What the finished call's channels fail with. */
  readonly finished: AgentError
  readonly op: Ops.Name
}
const codecOf = perOperation(
  (op, spec): Codec => ({
    spec,
    op,
    args: Messages.decode(spec.args as any, `${op} request`),
    message: Messages.decode(Messages.ClientMessage, `${op} input`),
    input: Messages.decode(spec.input as any, `${op} input`),
    finished: finishedError("CANCELLED", `${op} finished`),
  }),
)

const decodeClientMessage = Messages.unpackAs(Messages.ClientMessage, "control message")

/** The call cannot go on (an event too large for the client): it fails, and the handler stops. */
const abandon = (call: Call, error: AgentError): void => {
  if (call.finished) return
  reply(call.host, call.id, failure(error))
  call.end(error)
}

/** Sends the handler's outcome and ends the call. */
const finish = (call: Call, codec: Codec, exit: Exit.Exit<unknown, AgentError>): void => {
  if (call.finished) return
  // Data first, then the end of each stream, then the final message: the client sees them in order.
  // A channel that never carried data needs no Eof: the final message ends it on the client.
  for (const c of call.outgoing.values()) if (c.sent > 0) c.end()
  const outcome: Messages.AgentMessage = Exit.isSuccess(exit)
    ? { _tag: "Result", value: encodeWith(codec.spec.result, exit.value) }
    : failure(exitError(exit, codec.op))
  const tooLarge = call.send(outcome._tag === "Failure" ? encodeMessage(outcome) : outcome)
  if (tooLarge)
    reply(
      call.host as Engine,
      call.id,
      failure(
        new AgentError({
          code: tooLarge.code,
          message: `${codec.op} cannot send its result: ${tooLarge.message}`,
        }),
      ),
    )
  call.end(codec.finished)
}

const encodeMessage = (message: Messages.AgentMessage): unknown => encodeWith(Messages.AgentMessage, message)

/** A reply outside a running call (or in place of one too large to send). */
const reply = (engine: Pick<CallHost, "sendControl">, id: number, message: Messages.AgentMessage): void => {
  if (engine.sendControl(id, encodeMessage(message)) === undefined) return
  // Even the failure is too large (it echoes the request): say so without the echo.
  engine.sendControl(
    id,
    encodeMessage(
      failure(new AgentError({ code: "EMSGSIZE", message: "the reply exceeds the client's frame limit" })),
    ),
  )
}

const failure = (error: AgentError): Messages.AgentMessage => ({
  _tag: "Failure",
  code: error.code,
  message: error.message,
})

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
