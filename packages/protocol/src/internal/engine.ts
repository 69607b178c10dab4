/**
 * The session engine shared by both roles: it owns the byte stream, decodes frames, runs the
 * handshake the role gives it, routes frames to calls, and keeps liveness. It is plain TypeScript on
 * purpose: it is the data path, and every frame of a 1 GiB copy passes through it. What each role
 * does with a call lives in clientSession.ts and agentSession.ts; a call's lifecycle in call.ts; the
 * serial-port takeover rules in resync.ts.
 */
import { type Clock, Either, Schema } from "effect"
import type { ByteStream } from "../ByteStream.js"
import * as C from "../Constants.js"
import { AgentError, ErrorCode } from "../Errors.js"
import * as Frame from "../Frame.js"
import * as Handshake from "../Handshake.js"
import * as Messages from "../Messages.js"
import * as Seal from "../Seal.js"
import { Call, type CallHost } from "./call.js"
import { Resync } from "./resync.js"
import * as Timers from "./timers.js"

/** Settings common to both roles. */
export interface EngineOptions {
  readonly maxFrame?: number
  readonly window?: number
  readonly chunkSize?: number
  readonly keepaliveMs?: number
  readonly deadPeerMs?: number
  readonly handshakeTimeoutMs?: number
  /**
   * Resync streams only: a frame left incomplete with no byte arriving for this long means its sender
   * left mid-frame; the buffered bytes are then scanned for a new client's magic.
   */
  readonly resyncStallMs?: number
  /** Shared secret; the agent requires it when set, the client proves it when asked. */
  readonly token?: Uint8Array
  /** The clock for keepalive, deadlines and stall detection (tests pass Effect's TestClock). */
  readonly clock?: Clock.Clock
}

/** Role-specific behaviour plugged into the engine. */
export interface Role {
  /** Runs the handshake; resolves with what was agreed when the session is open. */
  readonly handshake: (
    io: Handshake.HelloIo,
  ) => Promise<Handshake.Negotiated & { readonly answered?: Uint8Array }>
  /** A Control frame for a call id that has no Call yet (agent: an Open). */
  readonly unknownCall: (engine: Engine, id: number, payload: Uint8Array) => void
  /** The client cancelled a call (agent only). */
  readonly cancel?: (call: Call) => void
  /** The channels the peer may send Data on; Data on any other is a protocol error for its call. */
  readonly inbound: ReadonlyArray<number>
  /**
   * Channel data this side holds unread for the whole session before it closes the session (the
   * agent: {@link C.MAX_SESSION_UNREAD}); unlimited when unset.
   */
  readonly maxUnread?: number
  /**
   * Bytes written and not drained above which this side stops reading (the agent:
   * {@link C.MAX_UNDRAINED}). Only one side may do this: two sides that both stopped reading until
   * the other drains would wait for each other forever.
   */
  readonly maxUndrained?: number
  /** Resync streams: a new peer's hello may take the stream over mid-session (the agent's side). */
  readonly takeover?: boolean
}

/** Why a session ended. */
export type End = { readonly error?: AgentError }

/**
 * Runs a session over a byte stream. The handshake completes (or fails) through `opened`; the
 * session's end is reported through `ended`.
 */
export class Engine implements CallHost {
  readonly calls = new Map<number, Call>()
  readonly window: number
  readonly maxFrame: number
  readonly timers: Timers.Timers
  /** What the peer accepts; until the handshake says otherwise, this side's own limits. */
  peerWindow: number
  peerMaxFrame: number
  congested = false
  private readonly ownChunk: number
  private readonly decoder: Frame.Decoder
  private readonly resync: Resync | undefined
  private drainWaiters: Array<() => void> = []
  private hellos: Array<Uint8Array> = []
  private helloWaiter: ((payload: Uint8Array | undefined) => void) | undefined
  private state: "handshake" | "open" | "closed" = "handshake"
  private magicSent = false
  /** The decoder stopped after a handshake message: what follows it may already be sealed. */
  private held = false
  /** Opens inbound records once the session is sealed. */
  private opener: Seal.Opener | undefined
  private pongWaiters: Array<() => void> = []
  private lastHeard: number
  /** Bytes handed to the stream since it last reported room (a lower bound of what it holds). */
  private undrained = 0
  /** Why reading is paused: the peer does not drain what this side writes, or other sessions' turn. */
  private holding: "drain" | "yield" | undefined
  private turnFrames = 0
  private turnOpens = 0
  private stopKeepalive: (() => void) | undefined
  private readonly keepaliveMs: number
  private readonly deadPeerMs: number
  private readonly handshakeTimeoutMs: number
  private readonly io: Handshake.HelloIo
  private endedResolve!: (end: End) => void
  /** Resolves once, when the session is over. */
  readonly ended: Promise<End> = new Promise((resolve) => (this.endedResolve = resolve))
  /** Resolves when the handshake succeeded, rejects with its error otherwise. */
  opened: Promise<void>

  constructor(
    /** The transport; after a sealing handshake, the same transport behind {@link Seal.sealing}. */
    public stream: ByteStream,
    private readonly role: Role,
    options: EngineOptions,
  ) {
    this.maxFrame = Math.min(options.maxFrame ?? C.DEFAULT_MAX_FRAME, C.MAX_FRAME_CEILING)
    this.window = options.window ?? C.DEFAULT_WINDOW
    this.ownChunk = Math.min(options.chunkSize ?? C.DEFAULT_CHUNK, this.maxFrame)
    this.peerWindow = this.window
    this.peerMaxFrame = this.maxFrame
    this.keepaliveMs = options.keepaliveMs ?? C.DEFAULT_KEEPALIVE_MS
    this.deadPeerMs = options.deadPeerMs ?? C.DEFAULT_DEAD_PEER_MS
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? C.DEFAULT_HANDSHAKE_TIMEOUT_MS
    this.timers = Timers.make(options.clock)
    this.lastHeard = this.timers.now()
    // A connection must open with the magic; a serial port may carry anything before it.
    this.decoder = new Frame.Decoder(this.preauthMaxFrame, { scan: stream.resync ? "search" : "strict" })
    this.resync = stream.resync
      ? new Resync(this.decoder, this.timers, options.resyncStallMs ?? C.DEFAULT_RESYNC_STALL_MS, {
          newClients: role.takeover === true,
          isOpen: () => this.state === "open",
          restart: (error) => this.restart(error),
          decode: () => this.decode(),
          where: stream.description,
        })
      : undefined
    stream.onDrain(() => {
      this.congested = false
      this.undrained = 0
      for (const w of this.drainWaiters.splice(0)) w()
      if (this.holding === "drain") this.unhold()
    })
    this.io = {
      where: stream.description,
      resync: stream.resync === true,
      maxFrame: this.maxFrame,
      window: this.window,
      timeoutMs: this.handshakeTimeoutMs,
      token: options.token,
      send: (message, options) => this.writeHello(message, options),
      next: (timeoutMs) => this.nextHello(timeoutMs),
      ended: () => (this.state === "closed" ? this.ended.then((e) => e.error) : undefined),
      now: () => this.timers.now(),
    }
    this.opened = this.runHandshake()
    stream.start({ data: (chunk) => this.onBytes(chunk), end: (error) => this.onStreamEnd(error) })
  }

  /** Until the handshake is done a frame is a hello: a few hundred bytes (docs/protocol.md, Limits). */
  private get preauthMaxFrame(): number {
    return Math.min(C.PREAUTH_MAX_FRAME, this.maxFrame)
  }

  /** True once the session ended. */
  get isClosed(): boolean {
    return this.state === "closed"
  }

  /** Data frames never exceed what the peer accepts. */
  get chunkSize(): number {
    return Math.min(this.ownChunk, this.peerMaxFrame)
  }

  // ---- calls

  /** Starts routing frames of `id` to a new call. */
  register(id: number): Call {
    const call = new Call(this, id)
    this.calls.set(id, call)
    return call
  }

  forget(call: Call): void {
    if (this.calls.get(call.id) === call) this.calls.delete(call.id)
  }

  // ---- writing

  writeFrame(type: number, channel: number, call: number, payload?: Uint8Array): void {
    if (this.state === "closed") return
    const frame = Frame.encode(type, channel, call, payload)
    this.wrote(this.stream.write(frame), frame.byteLength)
  }

  writeData(call: number, channel: number, bytes: Uint8Array): void {
    if (this.state === "closed") return
    const header = Frame.encodeHeader(Frame.FrameType.Data, channel, call, bytes.byteLength)
    const ok = this.stream.writev
      ? this.stream.writev([header, bytes])
      : this.stream.write(header) && this.stream.write(bytes)
    this.wrote(ok, header.byteLength + bytes.byteLength)
  }

  /** Counts what the stream holds: a stream that reports room holds less than its buffer size. */
  private wrote(ok: boolean, bytes: number): void {
    if (ok) this.undrained = 0
    else {
      this.congested = true
      this.undrained += bytes
    }
  }

  writeEof(call: number, channel: number): void {
    this.writeFrame(Frame.FrameType.Eof, channel, call)
  }

  writeCredit(call: number, channel: number, bytes: number): void {
    const payload = new Uint8Array(4)
    new DataView(payload.buffer).setUint32(0, bytes)
    this.writeFrame(Frame.FrameType.Credit, channel, call, payload)
  }

  sendCancel(call: number): void {
    this.writeFrame(Frame.FrameType.Cancel, 0, call)
  }

  /**
   * Sends a control message of a call. A message larger than the peer's frame limit is not sent: the
   * peer would skip it and the call would never end. The caller turns the error into a failure.
   */
  sendControl(call: number, message: unknown): AgentError | undefined {
    const payload = Messages.pack(message)
    if (payload.byteLength > this.peerMaxFrame)
      return new AgentError({
        code: "EMSGSIZE",
        message: `a control message of ${payload.byteLength} bytes exceeds the ${this.peerMaxFrame}-byte frame limit of ${this.stream.description}`,
      })
    this.writeFrame(Frame.FrameType.Control, 0, call, payload)
    return undefined
  }

  waitWritable(): Promise<void> {
    if (!this.congested || this.state === "closed") return Promise.resolve()
    return new Promise((resolve) => this.drainWaiters.push(resolve))
  }

  /** Reports a problem with a frame to the peer; the session goes on. */
  writeError(error: AgentError, call = 0): void {
    this.writeFrame(
      Frame.FrameType.Error,
      0,
      call,
      Messages.pack({ code: error.code, message: error.message }),
    )
  }

  // ---- handshake

  /**
   * Sends a handshake message, preceded by the magic the first time in each handshake (the peer's
   * decoder consumes the magic once; a second one mid-stream would read as an oversize header).
   */
  private writeHello(message: Handshake.Message, options: { readonly magic?: boolean } = {}): void {
    if (options.magic ?? !this.magicSent) this.stream.write(C.MAGIC)
    this.magicSent = true
    this.writeFrame(Frame.FrameType.Hello, 0, 0, Messages.encode(Handshake.Message, message))
  }

  /** Next Hello payload, or undefined on timeout or end. */
  private nextHello(timeoutMs = this.handshakeTimeoutMs): Promise<Uint8Array | undefined> {
    if (this.held) {
      this.held = false
      this.decode()
    }
    const queued = this.hellos.shift()
    if (queued) return Promise.resolve(queued)
    if (this.state === "closed") return Promise.resolve(undefined)
    return new Promise((resolve) => {
      const cancel = this.timers.after(timeoutMs, () => {
        this.helloWaiter = undefined
        resolve(undefined)
      })
      this.helloWaiter = (payload) => {
        cancel()
        resolve(payload)
      }
    })
  }

  private async runHandshake(): Promise<void> {
    let agreed: Awaited<ReturnType<Role["handshake"]>>
    try {
      agreed = await this.role.handshake(this.io)
    } catch (cause) {
      const error =
        cause instanceof AgentError ? cause : new AgentError({ code: "INTERNAL", message: String(cause) })
      this.close(error)
      throw error
    }
    // The stream may have ended while the handshake awaited.
    if ((this.state as string) === "closed") throw (await this.ended).error ?? closedError()
    this.peerWindow = agreed.peerWindow
    this.peerMaxFrame = Math.min(agreed.peerMaxFrame, C.MAX_FRAME_CEILING)
    if (agreed.answered) this.resync?.answered(agreed.answered)
    this.state = "open"
    // Repeats of the hello that queued up during the handshake (serial ports) are answered already.
    this.hellos = []
    this.decoder.setMaxFrame(this.maxFrame)
    this.lastHeard = this.timers.now()
    this.startKeepalive()
    this.held = false
    if (agreed.seal) this.seal(agreed.seal)
    else this.decode()
  }

  /** From here on every byte is sealed; bytes that followed the last handshake message are records. */
  private seal(keys: Seal.Keys): void {
    this.stream = Seal.sealing(this.stream, keys)
    this.opener = new Seal.Opener(keys.receive, this.stream.description)
    for (const chunk of this.decoder.drain()) this.onBytes(chunk)
  }

  private deliverHello(frame: Frame.Frame): void {
    // One handshake message at a time (connections): the handshake decides how to read what follows.
    if (this.state === "handshake" && !this.resync) this.held = true
    const payload = frame.payload.slice()
    const w = this.helloWaiter
    this.helloWaiter = undefined
    if (w) w(payload)
    else this.hellos.push(payload)
  }

  /**
   * On a serial port, a new client replaces the old one: every call of the old session is aborted and
   * the handshake starts again on the same stream.
   */
  private restart(error: AgentError): void {
    for (const call of [...this.calls.values()]) call.end(error)
    this.stopKeepalive?.()
    this.stopKeepalive = undefined
    this.state = "handshake"
    this.hellos = []
    this.magicSent = false
    this.decoder.setMaxFrame(this.preauthMaxFrame)
    this.opened = this.runHandshake()
    this.opened.catch(() => {})
  }

  // ---- reading

  private onBytes(chunk: Uint8Array): void {
    if (this.state === "closed") return
    this.lastHeard = this.timers.now()
    if (this.opener) {
      const plain = this.opener.open(chunk)
      if (plain instanceof AgentError) return this.close(plain)
      for (const p of plain) this.decoder.push(p)
    } else this.decoder.push(chunk)
    this.decode()
    if (!this.isClosed) this.resync?.watchStall()
  }

  private decode(): void {
    if (this.holding) return
    this.turnFrames = 0
    this.turnOpens = 0
    while (!this.held && !this.isClosed) {
      const r = this.decoder.next()
      if (r === undefined) return
      if (r._tag === "Oversize") this.onOversize(r)
      else if (r._tag === "BadMagic") {
        const error = new AgentError({
          code: "PROTOCOL",
          message: `${this.stream.description} does not speak the Cuvette protocol (no magic at the start of the stream)`,
        })
        this.writeHello({ _tag: "Refusal", code: error.code, message: error.message })
        this.close(error, false)
      } else this.onFrame(r.frame)
      if (this.mustPause()) return
    }
  }

  /**
   * Reading stops while the peer does not drain what this side writes (its Pings would otherwise
   * queue Pongs without bound), and after a batch of frames or Opens, so that one session's flood
   * leaves the other sessions their turn. The stream's own buffer bounds what arrives meanwhile.
   */
  private mustPause(): boolean {
    if (this.isClosed) return true
    // Not on a serial port: there the host's next client must be heard even while the last one's
    // bytes wait (a port with no host attached does not drain).
    if (!this.resync && this.role.maxUndrained !== undefined && this.undrained > this.role.maxUndrained)
      return this.hold("drain")
    // Yielding matters only when more is waiting: a lone Open must not wait for the next turn.
    const turnOver = ++this.turnFrames >= C.MAX_FRAMES_PER_TURN || this.turnOpens >= C.MAX_OPENS_PER_TURN
    if (turnOver && this.decoder.pending > 0) return this.hold("yield")
    return false
  }

  private hold(reason: "drain" | "yield"): true {
    this.holding = reason
    this.stream.pause?.()
    // After the I/O of other connections: a macrotask, not a microtask (setImmediate where the
    // runtime has it, as Node and Bun do: setTimeout would wait at least a millisecond).
    if (reason === "yield") nextTurn(() => this.unhold())
    return true
  }

  private unhold(): void {
    if (this.isClosed || !this.holding) return
    this.holding = undefined
    this.decode()
    if (!this.holding && !this.isClosed) this.stream.resume?.()
  }

  private onOversize(r: Extract<Frame.DecodeResult, { _tag: "Oversize" }>): void {
    const limit = this.state === "open" ? this.maxFrame : this.preauthMaxFrame
    const error = new AgentError({
      code: "PROTOCOL",
      message: `frame of ${r.length} bytes (${Frame.typeName(r.type)}) exceeds the ${limit}-byte limit; it was skipped`,
    })
    if (this.resync) return this.resync.onOversize(r.header, error)
    if (this.state === "handshake") {
      // Nothing that large belongs in a handshake: refuse before holding any of it.
      const refused = new AgentError({
        code: "PROTOCOL",
        message: `a frame of ${r.length} bytes (${Frame.typeName(r.type)}) before the handshake finished exceeds the ${limit}-byte limit`,
      })
      this.writeHello({ _tag: "Refusal", code: refused.code, message: refused.message })
      return this.close(refused, false)
    }
    this.writeError(error, r.call)
    this.calls.get(r.call)?.end(error)
  }

  private onFrame(frame: Frame.Frame): void {
    const T = Frame.FrameType
    if (frame.type === T.Hello) {
      if (this.state === "handshake") {
        if (this.resync?.isRepeat(frame.payload)) return
        return this.deliverHello(frame)
      }
      if (this.resync) {
        if (this.resync.onHello(frame.payload)) this.deliverHello(frame)
        return
      }
      return this.writeError(
        new AgentError({ code: "PROTOCOL", message: "unexpected Hello after the handshake" }),
      )
    }
    this.resync?.onFrame()
    if (this.state === "handshake") {
      // On a serial port, leftovers of an old session: look for the next magic.
      if (this.resync) return this.decoder.scan()
      return this.close(
        new AgentError({
          code: "PROTOCOL",
          message: `${Frame.typeName(frame.type)} frame before the handshake finished`,
        }),
      )
    }
    switch (frame.type) {
      case T.Control: {
        const call = this.calls.get(frame.call)
        if (!call) {
          this.turnOpens++
          return this.role.unknownCall(this, frame.call, frame.payload)
        }
        const message = Messages.unpack(frame.payload, "control message")
        if (Either.isLeft(message)) return this.rejectCall(call, message.left)
        return call.onMessage(message.right)
      }
      case T.Data: {
        const call = this.calls.get(frame.call)
        if (!call) return // The operation already finished; late data is expected and harmless.
        if (!this.role.inbound.includes(frame.channel))
          return this.rejectCall(
            call,
            new AgentError({
              code: "PROTOCOL",
              message: `channel ${frame.channel} carries no data in this direction`,
            }),
          )
        const violation = call.in(frame.channel).push(frame.payload)
        if (violation) return this.rejectCall(call, violation)
        if (this.role.maxUnread !== undefined && this.unread() > this.role.maxUnread)
          return this.close(
            new AgentError({
              code: "PROTOCOL",
              message: `the session holds more than ${this.role.maxUnread} bytes of channel data its operations have not read; it was closed`,
            }),
          )
        return
      }
      case T.Credit: {
        if (frame.payload.byteLength !== 4)
          return this.writeError(
            new AgentError({ code: "PROTOCOL", message: "Credit frame must carry 4 bytes" }),
            frame.call,
          )
        const n = new DataView(frame.payload.buffer, frame.payload.byteOffset, 4).getUint32(0)
        this.calls.get(frame.call)?.out(frame.channel).grant(n)
        return
      }
      case T.Eof:
        this.calls.get(frame.call)?.in(frame.channel).end()
        return
      case T.Cancel: {
        const call = this.calls.get(frame.call)
        if (call) this.role.cancel?.(call)
        return
      }
      case T.Ping:
        // The payload is echoed; one that the peer itself would not accept back is not.
        if (frame.payload.byteLength <= this.peerMaxFrame)
          this.writeFrame(T.Pong, 0, 0, frame.payload.slice())
        return
      case T.Pong:
        for (const w of this.pongWaiters.splice(0)) w()
        return
      case T.GoAway: {
        const reason = Messages.unpack(frame.payload, "GoAway")
        const said = Either.isRight(reason)
          ? (reason.right as { message?: unknown } | undefined)?.message
          : undefined
        const text = typeof said === "string" ? Messages.bounded(said) : undefined
        return this.close(
          new AgentError({
            code: "DISCONNECTED",
            message: `the peer closed the session${text ? `: ${text}` : ""}`,
          }),
          false,
        )
      }
      case T.Error: {
        const report = Messages.unpackAs(ErrorReport, "Error frame")(frame.payload)
        if (Either.isRight(report))
          this.calls.get(frame.call)?.end(
            new AgentError({
              code: report.right.code,
              message: Messages.bounded(`the peer rejected a frame: ${report.right.message}`),
            }),
          )
        return
      }
      default:
        return this.writeError(
          new AgentError({
            code: "PROTOCOL",
            message: `unknown frame ${Frame.typeName(frame.type)}; it was ignored`,
          }),
          frame.call,
        )
    }
  }

  /**
   * The peer broke the protocol within one call: the call ends here, and the peer is told with an
   * Error frame for that call so its side of the call ends too (instead of waiting forever).
   */
  rejectCall(call: Call, error: AgentError): void {
    this.writeError(error, call.id)
    call.end(error)
  }

  /** Channel data received and not yet read by the session's operations (with a per-chunk cost). */
  private unread(): number {
    let n = 0
    for (const call of this.calls.values()) for (const c of call.incoming.values()) n += c.held
    return n
  }

  private onStreamEnd(error: unknown): void {
    if (this.state === "closed") return
    const message = error
      ? `connection to ${this.stream.description} failed: ${String((error as Error)?.message ?? error)}`
      : `connection to ${this.stream.description} closed`
    this.close(new AgentError({ code: "DISCONNECTED", message }), false)
  }

  // ---- liveness and closing

  private startKeepalive(): void {
    if (this.stopKeepalive || this.keepaliveMs <= 0) return
    const tick = Math.max(10, Math.min(this.keepaliveMs, this.deadPeerMs) / 2)
    let due = this.timers.now() + tick
    const check = () => {
      // A check that runs late means this side was busy, not that the peer fell silent: bytes it
      // sent meanwhile may still wait to be read. The delay does not count as the peer's silence.
      const late = this.timers.now() - due
      if (late > tick) this.lastHeard += late
      const quiet = this.timers.now() - this.lastHeard
      if (quiet >= this.deadPeerMs) {
        this.stopKeepalive = undefined
        return this.close(
          new AgentError({
            code: "ETIMEDOUT",
            message: `no answer from ${this.stream.description} for ${Math.round(quiet / 1000)} s: the peer is gone`,
          }),
        )
      }
      if (quiet >= this.keepaliveMs) this.writeFrame(Frame.FrameType.Ping, 0, 0, new Uint8Array(8))
      due = this.timers.now() + tick
      this.stopKeepalive = this.timers.after(tick, check)
    }
    this.stopKeepalive = this.timers.after(tick, check)
  }

  /** Pings the peer and resolves with the round trip in milliseconds. */
  ping(): Promise<number> {
    if (this.state === "closed") return Promise.reject(closedError())
    const started = this.timers.now()
    return new Promise((resolve, reject) => {
      this.pongWaiters.push(() =>
        this.state === "closed" ? reject(closedError()) : resolve(this.timers.now() - started),
      )
      this.writeFrame(Frame.FrameType.Ping, 0, 0, new Uint8Array(8))
    })
  }

  /**
   * Ends the session: every call fails with `error` (or DISCONNECTED), the stream is closed. With
   * `goAway` the peer is told first.
   */
  close(error?: AgentError, goAway = true): void {
    if (this.state === "closed") return
    if (goAway) {
      this.writeFrame(Frame.FrameType.GoAway, 0, 0, Messages.pack({ message: error?.message ?? "closed" }))
    }
    this.state = "closed"
    this.stopKeepalive?.()
    this.stopKeepalive = undefined
    const reason = error ?? closedError()
    for (const call of [...this.calls.values()]) call.end(reason)
    this.helloWaiter?.(undefined)
    for (const w of this.drainWaiters.splice(0)) w()
    for (const w of this.pongWaiters.splice(0)) w()
    this.resync?.stop()
    this.decoder.reset()
    this.stream.end()
    // Give queued bytes (the GoAway) a moment, then make sure the stream is gone.
    setTimeout(() => this.stream.destroy(), 50)
    this.endedResolve(error ? { error } : {})
  }
}

const nextTurn: (f: () => void) => void =
  typeof globalThis.setImmediate === "function" ? (f) => void setImmediate(f) : (f) => void setTimeout(f, 0)

const closedError = () => new AgentError({ code: "DISCONNECTED", message: "the session is closed" })

const ErrorReport = Schema.Struct({ code: ErrorCode, message: Schema.String })
