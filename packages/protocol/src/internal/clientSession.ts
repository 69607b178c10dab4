/**
 * The client's side of a session: it opens operations with typed arguments and gets their
 * channels, events and result.
 */
import { Either, Schema } from "effect"
import * as C from "../Constants.js"
import { AgentError } from "../Errors.js"
import * as Handshake from "../Handshake.js"
import * as Messages from "../Messages.js"
import * as Ops from "../Operations.js"
import { type Call, encodeWith, finishedError } from "./call.js"
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
  private resolve!: (value: Ops.Result<N>) => void
  private reject!: (error: AgentError) => void
  private outcome: Either.Either<Ops.Result<N>, AgentError> | undefined

  /** @internal */
  constructor(
    engine: Engine,
    readonly id: number,
    readonly op: N,
    args: Ops.Args<N>,
  ) {
    const spec = Ops.operations[op]
    const call = (this.call = engine.register(id))
    this.stdin = call.out(C.Channel.stdin)
    this.stdout = call.in(C.Channel.stdout)
    this.stderr = call.in(C.Channel.stderr)
    this.result = new Promise((res, rej) => ((this.resolve = res), (this.reject = rej)))
    this.result.catch(() => {}) // Callers that only read channels must not see an unhandled rejection.
    call.onEnd = (error) => {
      // Everything the agent sent precedes its final message: channels it never ended end here.
      for (const c of call.incoming.values()) c.end()
      this.stdin.fail(finishedError("DISCONNECTED", `${op} finished; its input is closed`))
      this.wakeEvents()
      const outcome = error ? Either.left(error) : this.outcome!
      if (Either.isRight(outcome)) this.resolve(outcome.right)
      else this.reject(outcome.left)
    }
    call.onMessage = (raw) => {
      const message = Messages.decode(Messages.AgentMessage, `${op} reply`)(raw)
      if (Either.isLeft(message)) return this.fail(message.left)
      const m = message.right
      switch (m._tag) {
        case "Event": {
          const event = Messages.decode(spec.event as any, `${op} event`)(m.event)
          if (Either.isLeft(event)) return this.fail(event.left)
          this.events.push(event.right as Ops.Event<N>)
          return this.wakeEvents()
        }
        case "Result":
          return this.finish(
            Messages.decode(spec.result as any, `${op} result`)(m.value) as Either.Either<
              Ops.Result<N>,
              AgentError
            >,
          )
        case "Failure":
          return this.finish(Either.left(new AgentError({ code: m.code, message: m.message })))
      }
    }
    // Arguments are checked here too, so a bad call fails at once with the field named.
    const encoded = Schema.encodeEither(spec.args as Schema.Schema<unknown>, { errors: "all" })(args)
    const error = Either.isLeft(encoded)
      ? new AgentError({
          code: "EINVAL",
          message: `invalid ${op} request: ${Messages.formatIssue(encoded.left)}`,
        })
      : call.send({ _tag: "Open", op, args: encoded.right })
    if (error) call.end(error)
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
