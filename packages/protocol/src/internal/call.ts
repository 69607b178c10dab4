/**
 * One operation on the wire, as either side sees it: its channels, its control messages, and its
 * end. A call ends exactly once, through {@link Call.end}: it stops being routed, its channels are
 * settled, and its owner (the client's call or the agent's dispatcher) hears why.
 */
import { Schema } from "effect"
import { AgentError } from "../Errors.js"
import * as Ops from "../Operations.js"
import { type ChannelHost, Incoming, Outgoing } from "./channel.js"

/** What a call needs from the session that carries it. */
export interface CallHost {
  /** Largest data frame to send: this side's chunk size within the peer's frame limit. */
  readonly chunkSize: number
  readonly congested: boolean
  /** Credit the peer grants per channel, and this side grants the peer. */
  readonly peerWindow: number
  readonly window: number
  readonly writeData: (call: number, channel: number, bytes: Uint8Array) => void
  readonly writeEof: (call: number, channel: number) => void
  readonly writeCredit: (call: number, channel: number, bytes: number) => void
  readonly waitWritable: () => Promise<void>
  /** Sends a control message; fails (without sending) when it is larger than the peer accepts. */
  readonly sendControl: (call: number, message: unknown) => AgentError | undefined
  readonly sendCancel: (call: number) => void
  /** Stops routing frames of this call. */
  readonly forget: (call: Call) => void
}

/** A call is its channels' host: no per-call closures (a ping allocates as little as it can). */
export class Call implements ChannelHost {
  readonly outgoing = new Map<number, Outgoing>()
  readonly incoming = new Map<number, Incoming>()
  /** Control messages for this call, already unpacked (validated by the owner). */
  onMessage: (message: unknown) => void = ignore
  /** The call ended: `error` when abnormally (session gone, protocol violation, peer's Error frame). */
  onEnd: (error: AgentError | undefined) => void = ignore
  /** Agent side: the client cancelled. */
  onCancel: () => void = ignore
  private ended = false

  constructor(
    readonly host: CallHost,
    readonly id: number,
  ) {}

  get chunkSize(): number {
    return this.host.chunkSize
  }

  get congested(): boolean {
    return this.host.congested
  }

  sendData(ch: number, bytes: Uint8Array): void {
    this.host.writeData(this.id, ch, bytes)
  }

  sendEof(ch: number): void {
    this.host.writeEof(this.id, ch)
  }

  sendCredit(ch: number, n: number): void {
    this.host.writeCredit(this.id, ch, n)
  }

  waitWritable(): Promise<void> {
    return this.host.waitWritable()
  }

  /** True once the call ended. */
  get finished(): boolean {
    return this.ended
  }

  /** The sending half of channel `ch` (created on first use). */
  out(ch: number): Outgoing {
    let c = this.outgoing.get(ch)
    if (!c) this.outgoing.set(ch, (c = new Outgoing(this, ch, this.host.peerWindow)))
    return c
  }

  /** The receiving half of channel `ch` (created on first use; early data is buffered). */
  in(ch: number): Incoming {
    let c = this.incoming.get(ch)
    if (!c) this.incoming.set(ch, (c = new Incoming(this, ch, this.host.window)))
    return c
  }

  /** Asks the peer to cancel (client side). */
  cancel(): void {
    if (!this.ended) this.host.sendCancel(this.id)
  }

  /** Sends a control message of this call, or says why it cannot be sent. */
  send(message: unknown): AgentError | undefined {
    return this.host.sendControl(this.id, message)
  }

  /**
   * Ends the call, once. With an error every channel fails with it; without, the owner settles the
   * channels itself (normal completion keeps what was received readable).
   */
  end(error?: AgentError): boolean {
    if (this.ended) return false
    this.ended = true
    this.host.forget(this)
    if (error) {
      for (const c of this.outgoing.values()) c.fail(error)
      for (const c of this.incoming.values()) c.fail(error)
    }
    this.onEnd(error)
    return true
  }
}

const ignore = () => {}

/**
 * Errors that mark a finished call's channels, one per message: building an Error captures a stack
 * trace, which cost ~8% of a ping round trip when done per call.
 */
const finishedErrors = new Map<string, AgentError>()
export const finishedError = (code: "DISCONNECTED" | "CANCELLED", message: string): AgentError => {
  let e = finishedErrors.get(message)
  if (!e) finishedErrors.set(message, (e = new AgentError({ code, message })))
  return e
}

/** Encodes a value with its operation schema before packing (keeps the wire honest). */
export const encodeWith = (schema: unknown, value: unknown): unknown =>
  Schema.encodeSync(schema as Schema.Schema<unknown>)(value)

/** `build` run once per operation and kept: schema codecs cost too much to build for every call. */
export const perOperation = <A>(
  build: (op: Ops.Name, spec: (typeof Ops.operations)[Ops.Name]) => A,
): ((op: Ops.Name) => A) => {
  const built = new Map<Ops.Name, A>()
  return (op) => {
    let a = built.get(op)
    if (a === undefined) built.set(op, (a = build(op, Ops.operations[op])))
    return a
  }
}
