/**
 * The client's side of a session: it opens operations with typed arguments and gets their
 * channels, events and result.
 */
import { Either, type ParseResult, Schema } from "effect"
import * as C from "../Constants.js"
import { AgentError } from "../Errors.js"
import * as Handshake from "../Handshake.js"
import * as Messages from "../Messages.js"
import * as Ops from "../Operations.js"
import { type Call, encodeWith, finishedError, perOperation } from "./call.js"
import type { Incoming, Outgoing } from "./channel.js"
import { Engine, type EngineOptions } from "./engine.js"

/** Options of a client session. */
export interface ClientOptions extends EngineOptions, Handshake.ClientOptions {}

/** An open client session. */
export class ClientSession {
  private nextId = 1
  /** @internal */
  readonly engine: Engine

  /** @internal */
  constructor(
    engine: Engine,
    /** The agent's Welcome: its version, identity and limits. */
    readonly welcome: Handshake.Welcomed,
  ) {
    this.engine = engine
  }

  /** Starts an operation. */
  open<N extends Ops.Name>(op: N, args: Ops.Args<N>): ClientCall<N> {
    if (this.engine.isClosed)
      throw new AgentError({
        code: "DISCONNECTED",
        message: `the session with ${this.engine.stream.description} is closed`,
      })
    return new ClientCall(this.engine, this.nextId++, op, args)
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

/**
 * An operation's schemas as ready-made parsers, built once per operation rather than per call: a
 * ping's own work is a few microseconds, and building them was a good part of it.
 */
interface Codec {
  readonly encodeArgs: (args: unknown) => Either.Either<unknown, ParseResult.ParseError>
  readonly reply: (raw: unknown) => Either.Either<Messages.AgentMessage, AgentError>
  readonly result: (raw: unknown) => Either.Either<unknown, AgentError>
  readonly event: (raw: unknown) => Either.Either<unknown, AgentError>
  /** What the input channel of a finished call fails with. */
  readonly inputClosed: AgentError
}
const codecOf = perOperation(
  (op, spec): Codec => ({
    encodeArgs: Schema.encodeEither(spec.args as Schema.Schema<unknown>, { errors: "all" }),
    reply: Messages.decode(Messages.AgentMessage, `${op} reply`),
    result: Messages.decode(spec.result as Schema.Schema<unknown>, `${op} result`),
    event: Messages.decode(spec.event as Schema.Schema<unknown>, `${op} event`),
    inputClosed: finishedError("DISCONNECTED", `${op} finished; its input is closed`),
  }),
)

/** A running operation, client side. */
export class ClientCall<N extends Ops.Name> {
  /** Settles with the operation's result, or rejects with its AgentError. */
  readonly result: Promise<Ops.Result<N>>
  private readonly call: Call
  private readonly codec: Codec
  private events: Array<Ops.Event<N>> = []
  private eventWaiter: (() => void) | undefined
  private resolve!: (value: Ops.Result<N>) => void
  private reject!: (error: AgentError) => void
  private outcome: Either.Either<Ops.Result<N>, AgentError> | undefined
  /** Why the call ended abnormally (for channels first asked for after the end). */
  private endError: AgentError | undefined

  /** @internal */
  constructor(
    engine: Engine,
    readonly id: number,
    readonly op: N,
    args: Ops.Args<N>,
  ) {
    const codec = (this.codec = codecOf(op))
    const call = (this.call = engine.register(id))
    this.result = new Promise((res, rej) => ((this.resolve = res), (this.reject = rej)))
    this.result.catch(ignore) // Callers that only read channels must not see an unhandled rejection.
    call.onEnd = (error) => this.ended(error)
    call.onMessage = (raw) => this.onMessage(raw)
    // Arguments are checked here too, so a bad call fails at once with the field named.
    const encoded = codec.encodeArgs(args)
    const error = Either.isLeft(encoded)
      ? new AgentError({
          code: "EINVAL",
          message: `invalid ${op} request: ${Messages.formatIssue(encoded.left)}`,
        })
      : call.send({ _tag: "Open", op, args: encoded.right })
    if (error) call.end(error)
  }

  /**
   * exec stdin / writeFile body (client → agent). Channels come into being on first use: most
   * operations (ping, stat, ...) never touch them.
   */
  get stdin(): Outgoing {
    const created = !this.call.outgoing.has(C.Channel.stdin)
    const c = this.call.out(C.Channel.stdin)
    if (created && this.call.finished) this.settleOut(c)
    return c
  }

  /** exec stdout / readFile body / kmsg records (agent → client). */
  get stdout(): Incoming {
    return this.incoming(C.Channel.stdout)
  }

  /** exec stderr (agent → client). */
  get stderr(): Incoming {
    return this.incoming(C.Channel.stderr)
  }

  private incoming(ch: number): Incoming {
    const created = !this.call.incoming.has(ch)
    const c = this.call.in(ch)
    if (created && this.call.finished) this.settleIn(c)
    return c
  }

  /** A finished call's channels: as Call.end leaves them, then as {@link ended} does. */
  private settleIn(c: Incoming): void {
    if (this.endError) c.fail(this.endError)
    // Everything the agent sent precedes its final message: channels it never ended end here.
    c.end()
  }

  private settleOut(c: Outgoing): void {
    if (this.endError) c.fail(this.endError)
    c.fail(this.codec.inputClosed)
  }

  private ended(error: AgentError | undefined): void {
    this.endError = error
    for (const c of this.call.incoming.values()) c.end()
    for (const c of this.call.outgoing.values()) this.settleOut(c)
    this.wakeEvents()
    const outcome = error ? Either.left(error) : this.outcome!
    if (Either.isRight(outcome)) this.resolve(outcome.right)
    else this.reject(outcome.left)
  }

  private onMessage(raw: unknown): void {
    const message = this.codec.reply(raw)
    if (Either.isLeft(message)) return this.fail(message.left)
    const m = message.right
    switch (m._tag) {
      case "Event": {
        const event = this.codec.event(m.event)
        if (Either.isLeft(event)) return this.fail(event.left)
        this.events.push(event.right as Ops.Event<N>)
        return this.wakeEvents()
      }
      case "Result":
        return this.finish(this.codec.result(m.value) as Either.Either<Ops.Result<N>, AgentError>)
      case "Failure":
        return this.finish(Either.left(new AgentError({ code: m.code, message: m.message })))
    }
  }

  /** The next event (exec: Started; readFile: Opened), or undefined once the operation finished. */
  async nextEvent(): Promise<Ops.Event<N> | undefined> {
    while (true) {
      const e = this.events.shift()
      if (e !== undefined) return e
      if (this.call.finished) return undefined
      await new Promise<void>((resolve) => (this.eventWaiter = resolve))
    }
  }

  /** Sends an input to the running operation (exec: a signal or a terminal resize). */
  input(input: Ops.Input<N>): void {
    if (this.call.finished) return
    const error = this.call.send({ _tag: "Input", input: encodeWith(Ops.operations[this.op].input, input) })
    if (error) this.fail(error)
  }

  /** Asks the agent to cancel; `result` then rejects with CANCELLED (or settles if it had finished). */
  cancel(): void {
    this.call.cancel()
  }

  /** True once the result arrived (or the call failed). */
  get isSettled(): boolean {
    return this.call.finished
  }

  /** The agent's final message. */
  private finish(outcome: Either.Either<Ops.Result<N>, AgentError>): void {
    this.outcome = outcome
    this.call.end()
  }

  /** The call cannot go on (a reply it cannot read, an input too large): it ends, and the agent is told. */
  private fail(error: AgentError): void {
    this.call.cancel()
    this.call.end(error)
  }

  private wakeEvents(): void {
    const w = this.eventWaiter
    this.eventWaiter = undefined
    w?.()
  }
}

const ignore = () => {}

/** Runs the client handshake over `stream` and resolves with the open session. */
export const open = async (
  stream: ConstructorParameters<typeof Engine>[0],
  options: ClientOptions = {},
): Promise<ClientSession> => {
  let welcome: Handshake.Welcomed | undefined
  const engine = new Engine(
    stream,
    {
      handshake: async (io) => {
        const agreed = await Handshake.runClient(io, options)
        welcome = agreed.welcome
        return agreed
      },
      // A late event for an operation that already settled (e.g. after a cancel): nothing to do.
      unknownCall: () => {},
      inbound: [C.Channel.stdout, C.Channel.stderr],
    },
    options,
  )
  await engine.opened
  return new ClientSession(engine, welcome!)
}
