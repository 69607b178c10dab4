/**
 * Serial ports (streams with `resync`) have no connections: a client may leave mid-frame and a new
 * one start talking on the same byte stream. These rules tell a new client's magic from the old
 * session's bytes, and a client repeating its hello from a new client.
 */
import { AgentError } from "../Errors.js"
import type * as Frame from "../Frame.js"
import type { Timers } from "./timers.js"

/** What the rules act on in the engine. */
export interface ResyncHost {
  /**
   * The agent: a new client may take the port over mid-session. The client never is taken over: a
   * magic and a hello in its open session are the agent's answer to a hello it repeated, dropped.
   */
  readonly newClients: boolean
  readonly isOpen: () => boolean
  /** Aborts every call of the old session and starts a new handshake. */
  readonly restart: (error: AgentError) => void
  /** Decodes what is buffered (after a scan found a magic). */
  readonly decode: () => void
  readonly where: string
}

export class Resync {
  private cancelStall: (() => void) | undefined
  /** Set when an open session met something that may be a new client's magic. */
  private takeover: AgentError | undefined
  private answeredHello: Uint8Array | undefined

  constructor(
    private readonly decoder: Frame.Decoder,
    private readonly timers: Timers,
    private readonly stallMs: number,
    private readonly host: ResyncHost,
  ) {}

  /** The hello the agent answered: the same bytes again are that client repeating itself. */
  answered(payload: Uint8Array): void {
    this.answeredHello = payload
  }

  /**
   * A repeat of the hello already answered, met in a handshake (one the agent restarted after giving
   * the client up): answering it again would hand that client a second Welcome.
   */
  isRepeat(payload: Uint8Array): boolean {
    return this.answeredHello !== undefined && equalBytes(payload, this.answeredHello)
  }

  /**
   * A client that leaves mid-frame leaves a partial frame behind, and the next client's magic sits
   * inside what the decoder takes for its rest. When a partial frame sees no byte for `stallMs`, the
   * buffered bytes are scanned for the magic instead: silence this side heard, not time it slept.
   */
  watchStall(): void {
    this.stop()
    if (this.decoder.pending === 0 || this.decoder.isScanning) return
    // A client's open session is never given up here: a slow agent is the keepalive's to judge.
    if (!this.host.newClients && this.host.isOpen()) return
    const due = this.timers.now() + this.stallMs
    this.cancelStall = this.timers.after(this.stallMs, () => {
      this.cancelStall = undefined
      if (this.decoder.pending === 0 || this.decoder.isScanning) return
      // A check that runs late means this side was starved (a loaded guest runs its timers before it
      // reads what arrived meanwhile): the rest of the frame may be waiting unread. Look again later.
      if (this.timers.now() - due > this.stallMs) return this.watchStall()
      this.decoder.scan()
      if (this.host.isOpen())
        this.host.restart(
          new AgentError({
            code: "DISCONNECTED",
            message: `the client on ${this.host.where} left in the middle of a frame`,
          }),
        )
      this.host.decode()
      this.watchStall()
    })
  }

  /**
   * An absurd length is most likely a magic at a frame boundary: look for it. The hello after it says
   * whether a new client took over or this one repeated itself.
   */
  onOversize(header: Uint8Array, error: AgentError): void {
    this.decoder.scan(header)
    if (this.host.newClients && this.host.isOpen()) this.takeover = error
  }

  /** A hello on an open session: true when it is a new client's (the session restarted for it). */
  onHello(payload: Uint8Array): boolean {
    const takeover = this.takeover
    this.takeover = undefined
    // A client on a serial port repeats its hello until answered; a late repeat is not a new client.
    if (!this.host.newClients || this.isRepeat(payload)) return false
    this.host.restart(
      takeover ?? new AgentError({ code: "DISCONNECTED", message: "a new client took over the serial port" }),
    )
    return true
  }

  /** Any other frame: a magic followed by something other than a hello ends the old client all the same. */
  onFrame(): void {
    const takeover = this.takeover
    if (!takeover) return
    this.takeover = undefined
    this.host.restart(takeover)
  }

  stop(): void {
    this.cancelStall?.()
    this.cancelStall = undefined
  }
}

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i])
