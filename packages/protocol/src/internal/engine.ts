/**
 * The session engine shared by both roles: it owns the byte stream, decodes frames, runs the
 * handshake, routes frames to operations, keeps flow control and liveness. It is plain TypeScript
 * on purpose: it is the data path, and every frame of a 1 GiB copy passes through it.
 */
import { Effect, Either, Schema } from "effect"
import type { ByteStream } from "../ByteStream.js"
import * as C from "../Constants.js"
import { AgentError, ErrorCode } from "../Errors.js"
import * as Frame from "../Frame.js"
import * as Handshake from "../Handshake.js"
import * as Messages from "../Messages.js"
import { type ChannelHost, Incoming, Outgoing } from "./channel.js"

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
}

/** One operation on the wire, as either side sees it. */
export class Call {
  readonly outgoing = new Map<number, Outgoing>()
  readonly incoming = new Map<number, Incoming>()
  /** Control messages for this call, already unpacked (validated by the owner). */
  onMessage: (message: unknown) => void = () => {}
  /** The call ended abnormally (session gone, protocol violation). */
  onAbort: (error: AgentError) => void = () => {}
  /** Agent side: the client cancelled. */
  onCancel: () => void = () => {}
  finished = false
  private readonly host: ChannelHost

  constructor(
    readonly engine: Engine,
    readonly id: number,
  ) {
    this.host = {
      chunkSize: engine.chunkSize,
      get congested() {
        return engine.congested
      },
      sendData: (ch, bytes) => engine.writeData(id, ch, bytes),
      sendEof: (ch) => engine.writeFrame(Frame.FrameType.Eof, ch, id),
      sendCredit: (ch, n) => engine.writeCredit(id, ch, n),
      waitWritable: () => engine.waitWritable(),
    }
  }

  /** The sending half of channel `ch` (created on first use). */
  out(ch: number): Outgoing {
    let c = this.outgoing.get(ch)
    if (!c) this.outgoing.set(ch, (c = new Outgoing(this.host, ch, this.engine.peerWindow)))
    return c
  }

  /** The receiving half of channel `ch` (created on first use; early data is buffered). */
  in(ch: number): Incoming {
    let c = this.incoming.get(ch)
    if (!c) this.incoming.set(ch, (c = new Incoming(this.host, ch, this.engine.window)))
    return c
  }

  /** Sends a control message of this call. */
  send(message: unknown): void {
    this.engine.writeFrame(Frame.FrameType.Control, 0, this.id, Messages.pack(message))
  }

  /** Fails every channel; used when the call is over for good. */
  abortChannels(error: AgentError): void {
    for (const c of this.outgoing.values()) c.fail(error)
    for (const c of this.incoming.values()) c.fail(error)
  }
}

/** Role-specific behaviour plugged into the engine. */
export interface Role {
  /** Runs the handshake over the frames the engine hands it; resolves when the session is open. */
  readonly handshake: (engine: Engine) => Promise<void>
  /** A Control frame for a call id that has no Call yet (agent: an Open). */
  readonly unknownCall: (engine: Engine, id: number, payload: Uint8Array) => void
  /** The client cancelled a call (agent only). */
  readonly cancel?: (call: Call) => void
}

/** Why a session ended. */
export type End = { readonly error?: AgentError }

/**
 * Runs a session over a byte stream. The handshake completes (or fails) through `opened`; the
 * session's end is reported through `ended`.
 */
export class Engine {
  readonly calls = new Map<number, Call>()
  readonly window: number
  readonly chunkSize: number
  readonly maxFrame: number
  readonly token: Uint8Array | undefined
  peerWindow: number
  peerMaxFrame: number
  congested = false
  private readonly decoder: Frame.Decoder
  private drainWaiters: Array<() => void> = []
  private handshakeFrames: Array<Frame.Frame> = []
  private handshakeWaiter: ((frame: Frame.Frame | undefined) => void) | undefined
  private state: "handshake" | "open" | "closed" = "handshake"
  private magicSent = false
  private pongWaiters: Array<() => void> = []
  private stallTimer: ReturnType<typeof setTimeout> | undefined
  private readonly resyncStallMs: number
  private lastHeard = Date.now()
  private timer: ReturnType<typeof setInterval> | undefined
  private readonly keepaliveMs: number
  private readonly deadPeerMs: number
  readonly handshakeTimeoutMs: number
  private endedResolve!: (end: End) => void
  /** Resolves once, when the session is over. */
  readonly ended: Promise<End> = new Promise((resolve) => (this.endedResolve = resolve))
  /** Resolves when the handshake succeeded, rejects with its error otherwise. */
  opened: Promise<void>
  /** Handed to the role during a resync restart (agent on serial ports). */
  generation = 0
  /** Negotiated protocol version and the peer's handshake message. */
  version = 0
  peerHello: unknown
  /** The payload of the hello the agent answered: the same bytes again are that client repeating itself. */
  answeredHello: Uint8Array | undefined
  /** Set when an open serial session met something that may be a new client's magic (see onOversize). */
  private takeover: AgentError | undefined

  constructor(
    readonly stream: ByteStream,
    readonly role: Role,
    options: EngineOptions,
  ) {
    this.maxFrame = Math.min(options.maxFrame ?? C.DEFAULT_MAX_FRAME, C.MAX_FRAME_CEILING)
    this.window = options.window ?? C.DEFAULT_WINDOW
    this.chunkSize = Math.min(options.chunkSize ?? C.DEFAULT_CHUNK, this.maxFrame)
    this.peerWindow = this.window
    this.peerMaxFrame = this.maxFrame
    this.keepaliveMs = options.keepaliveMs ?? C.DEFAULT_KEEPALIVE_MS
    this.deadPeerMs = options.deadPeerMs ?? C.DEFAULT_DEAD_PEER_MS
    this.handshakeTimeoutMs = options.handshakeTimeoutMs ?? C.DEFAULT_HANDSHAKE_TIMEOUT_MS
    this.token = options.token
    this.resyncStallMs = options.resyncStallMs ?? C.DEFAULT_RESYNC_STALL_MS
    // A connection must open with the magic; a serial port may carry anything before it.
    this.decoder = new Frame.Decoder(this.maxFrame, { scan: stream.resync ? "search" : "strict" })
    stream.onDrain(() => {
      this.congested = false
      for (const w of this.drainWaiters.splice(0)) w()
    })
    this.opened = this.runHandshake()
    stream.start({ data: (chunk) => this.onBytes(chunk), end: (error) => this.onStreamEnd(error) })
  }

  /** True once the session ended. */
  get isClosed(): boolean {
    return this.state === "closed"
  }

  // ---- writing

  writeFrame(type: number, channel: number, call: number, payload?: Uint8Array): void {
    if (this.state === "closed") return
    if (!this.stream.write(Frame.encode(type, channel, call, payload))) this.congested = true
  }

  writeData(call: number, channel: number, bytes: Uint8Array): void {
    if (this.state === "closed") return
    const header = Frame.encodeHeader(Frame.FrameType.Data, channel, call, bytes.byteLength)
    const ok = this.stream.writev
      ? this.stream.writev([header, bytes])
      : this.stream.write(header) && this.stream.write(bytes)
    if (!ok) this.congested = true
  }

  writeCredit(call: number, channel: number, bytes: number): void {
    const payload = new Uint8Array(4)
    new DataView(payload.buffer).setUint32(0, bytes)
    this.writeFrame(Frame.FrameType.Credit, channel, call, payload)
  }

  /**
   * Sends a handshake message, preceded by the magic the first time in each handshake (the peer's
   * decoder consumes the magic once; a second one mid-stream would read as an oversize header).
   * `magic: true` forces it (a client repeating its hello on a serial port).
   */
  writeHello(message: Handshake.Message, options: { readonly magic?: boolean } = {}): void {
    if (options.magic ?? !this.magicSent) this.stream.write(C.MAGIC)
    this.magicSent = true
    this.writeFrame(Frame.FrameType.Hello, 0, 0, Messages.encode(Handshake.Message, message))
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

  // ---- handshake plumbing

  /** Next Hello frame, or undefined on timeout/end. Non-Hello frames during the handshake are a violation. */
  nextHello(timeoutMs = this.handshakeTimeoutMs): Promise<Frame.Frame | undefined> {
    const queued = this.handshakeFrames.shift()
    if (queued) return Promise.resolve(queued)
    if (this.state === "closed") return Promise.resolve(undefined)
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.handshakeWaiter = undefined
        resolve(undefined)
      }, timeoutMs)
      this.handshakeWaiter = (f) => {
        clearTimeout(t)
        resolve(f)
      }
    })
  }

  private async runHandshake(): Promise<void> {
    try {
      await this.role.handshake(this)
    } catch (cause) {
      const error =
        cause instanceof AgentError ? cause : new AgentError({ code: "INTERNAL", message: String(cause) })
      this.close(error)
      throw error
    }
    // The stream may have ended while the handshake awaited.
    if ((this.state as string) === "closed") throw (await this.ended).error ?? closedError()
    this.state = "open"
    // Repeats of the hello that queued up during the handshake (serial ports) are answered already.
    this.handshakeFrames = []
    this.decoder.setMaxFrame(this.maxFrame)
    this.lastHeard = Date.now()
    this.startKeepalive()
  }

  // ---- reading

  private onBytes(chunk: Uint8Array): void {
    if (this.state === "closed") return
    this.lastHeard = Date.now()
    this.decoder.push(chunk)
    this.decode()
    if (this.stream.resync && !this.isClosed) this.watchStall()
  }

  /**
   * On a serial port a client may leave mid-frame and a new one start talking: its magic then sits
   * inside what the decoder takes for the rest of the old frame. When a partial frame sees no byte
   * for `resyncStallMs`, the buffered bytes are scanned for the magic instead.
   */
  private watchStall(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer)
    this.stallTimer = undefined
    if (this.decoder.pending === 0 || this.decoder.isScanning) return
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined
      if (this.isClosed || this.decoder.pending === 0 || this.decoder.isScanning) return
      this.decoder.scan()
      if (this.state === "open")
        this.restart(
          new AgentError({
            code: "DISCONNECTED",
            message: `the client on ${this.stream.description} left in the middle of a frame`,
          }),
        )
      this.decode()
      if (!this.isClosed) this.watchStall()
    }, this.resyncStallMs)
    ;(this.stallTimer as { unref?: () => void }).unref?.()
  }

  private decode(): void {
    for (let r = this.decoder.next(); r !== undefined && !this.isClosed; r = this.decoder.next()) {
      if (r._tag === "Oversize") this.onOversize(r)
      else if (r._tag === "BadMagic") {
        const error = new AgentError({
          code: "PROTOCOL",
          message: `${this.stream.description} does not speak the Cuvette protocol (no magic at the start of the stream)`,
        })
        this.writeHello({ _tag: "Refusal", code: error.code, message: error.message })
        this.close(error, false)
      } else this.onFrame(r.frame)
    }
  }

  private onOversize(r: Extract<Frame.DecodeResult, { _tag: "Oversize" }>): void {
    const error = new AgentError({
      code: "PROTOCOL",
      message: `frame of ${r.length} bytes (${Frame.typeName(r.type)}) exceeds the ${this.maxFrame}-byte limit; it was skipped`,
    })
    if (this.stream.resync) {
      // On a serial port an absurd length is most likely a magic at a frame boundary: look for it. The
      // hello after it says whether a new client took over or this one repeated itself (onFrame).
      this.decoder.scan(r.header)
      if (this.state === "open") this.takeover = error
      return
    }
    this.writeError(error, r.call)
    const call = this.calls.get(r.call)
    if (call) this.abortCall(call, error)
  }

  private onFrame(frame: Frame.Frame): void {
    const T = Frame.FrameType
    if (frame.type === T.Hello) {
      if (this.state === "handshake") return this.deliverHello(frame)
      if (this.stream.resync) {
        const takeover = this.takeover
        this.takeover = undefined
        // A client on a serial port repeats its hello until answered; a late repeat is not a new client.
        if (this.answeredHello && equalBytes(frame.payload, this.answeredHello)) return
        this.restart(
          takeover ??
            new AgentError({ code: "DISCONNECTED", message: "a new client took over the serial port" }),
        )
        return this.deliverHello(frame)
      }
      return this.writeError(
        new AgentError({ code: "PROTOCOL", message: "unexpected Hello after the handshake" }),
      )
    }
    if (this.takeover) {
      // A magic followed by something other than a hello: the old client is gone all the same.
      const takeover = this.takeover
      this.takeover = undefined
      this.restart(takeover)
    }
    if (this.state === "handshake") {
      // On a serial port, leftovers of an old session: look for the next magic.
      if (this.stream.resync) return this.decoder.scan()
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
        if (!call) return this.role.unknownCall(this, frame.call, frame.payload)
        const message = Messages.unpack(frame.payload, "control message")
        if (Either.isLeft(message)) return this.rejectCall(call, message.left)
        return call.onMessage(message.right)
      }
      case T.Data: {
        const call = this.calls.get(frame.call)
        if (!call) return // The operation already finished; late data is expected and harmless.
        const violation = call.in(frame.channel).push(frame.payload)
        if (violation) this.rejectCall(call, violation)
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
        return this.writeFrame(T.Pong, 0, 0, frame.payload.slice())
      case T.Pong:
        for (const w of this.pongWaiters.splice(0)) w()
        return
      case T.GoAway: {
        const reason = Messages.unpack(frame.payload, "GoAway")
        const text = Either.isRight(reason)
          ? (reason.right as { message?: string } | undefined)?.message
          : undefined
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
        if (Either.isRight(report)) {
          const call = this.calls.get(frame.call)
          const error = new AgentError({
            code: report.right.code,
            message: `the peer rejected a frame: ${report.right.message}`,
          })
          if (call) this.abortCall(call, error)
        }
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

  private deliverHello(frame: Frame.Frame): void {
    const f = { ...frame, payload: frame.payload.slice() }
    const w = this.handshakeWaiter
    this.handshakeWaiter = undefined
    if (w) w(f)
    else this.handshakeFrames.push(f)
  }

  /**
   * The peer broke the protocol within one call: the call ends here, and the peer is told with an
   * Error frame for that call so its side of the call ends too (instead of waiting forever).
   */
  rejectCall(call: Call, error: AgentError): void {
    this.writeError(error, call.id)
    this.abortCall(call, error)
  }

  /** Ends a call abnormally: its channels fail, the owner hears why. */
  abortCall(call: Call, error: AgentError): void {
    if (call.finished) return
    this.calls.delete(call.id)
    call.abortChannels(error)
    call.onAbort(error)
  }

  /**
   * On a serial port, a new client replaces the old one: every call of the old session is aborted and
   * the handshake starts again on the same stream.
   */
  private restart(error: AgentError): void {
    for (const call of [...this.calls.values()]) this.abortCall(call, error)
    this.stopKeepalive()
    this.state = "handshake"
    this.generation++
    this.handshakeFrames = []
    this.magicSent = false
    this.opened = this.runHandshake()
    this.opened.catch(() => {})
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
    if (this.timer || this.keepaliveMs <= 0) return
    const tick = Math.max(10, Math.min(this.keepaliveMs, this.deadPeerMs) / 2)
    this.timer = setInterval(() => {
      const quiet = Date.now() - this.lastHeard
      if (quiet >= this.deadPeerMs) {
        this.close(
          new AgentError({
            code: "ETIMEDOUT",
            message: `no answer from ${this.stream.description} for ${Math.round(quiet / 1000)} s: the peer is gone`,
          }),
        )
      } else if (quiet >= this.keepaliveMs) {
        this.writeFrame(Frame.FrameType.Ping, 0, 0, new Uint8Array(8))
      }
    }, tick)
    ;(this.timer as { unref?: () => void }).unref?.()
  }

  private stopKeepalive(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  /** Pings the peer and resolves with the round trip in milliseconds. */
  ping(): Promise<number> {
    if (this.state === "closed") return Promise.reject(closedError())
    const started = performance.now()
    return new Promise((resolve, reject) => {
      this.pongWaiters.push(() =>
        this.state === "closed" ? reject(closedError()) : resolve(performance.now() - started),
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
    this.stopKeepalive()
    const reason = error ?? closedError()
    for (const call of [...this.calls.values()]) this.abortCall(call, reason)
    this.handshakeWaiter?.(undefined)
    for (const w of this.drainWaiters.splice(0)) w()
    for (const w of this.pongWaiters.splice(0)) w()
    if (this.stallTimer) clearTimeout(this.stallTimer)
    this.decoder.reset()
    this.stream.end()
    // Give queued bytes (the GoAway) a moment, then make sure the stream is gone.
    setTimeout(() => this.stream.destroy(), 50)
    this.endedResolve(error ? { error } : {})
  }
}

const closedError = () => new AgentError({ code: "DISCONNECTED", message: "the session is closed" })

const ErrorReport = Schema.Struct({ code: ErrorCode, message: Schema.String })

/** Runs a handshake-time Effect as a promise (proofs use WebCrypto). */
export const run = <A>(effect: Effect.Effect<A, AgentError>): Promise<A> => Effect.runPromise(effect)

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i])
