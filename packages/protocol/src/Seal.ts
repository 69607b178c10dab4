/**
 * Sealed sessions. After an authenticated handshake that negotiated the `seal` feature, every byte in
 * both directions travels in AEAD records, so a relay on the path can neither read the frames nor
 * inject, replay, reorder, drop-and-continue or modify them: the receiver closes the session at the
 * first record that does not open.
 *
 * Keys: HKDF-SHA256 over the token, salted with the handshake's challenge and client nonce, one key
 * per direction (distinct labels). Record: `length (u32 BE) ‖ ciphertext ‖ tag (16)`, AES-256-GCM
 * with the length as additional data and the record's number in its direction as nonce.
 *
 * Uses node:crypto's ciphers (synchronous, present in Node and Bun); no I/O.
 */
// eslint-disable-next-line no-restricted-imports -- ciphers only: the one Node module the protocol uses, Bun has it too
import { createCipheriv, createDecipheriv, type DecipherGCM, hkdfSync } from "node:crypto"
import type { ByteStream, Sink } from "./ByteStream.js"
import { AgentError } from "./Errors.js"

/** The handshake feature that turns sealing on. */
export const FEATURE = "seal"

/** Largest plaintext in one record (1 MiB); longer writes are cut into several records. */
export const MAX_RECORD = 1024 * 1024

const CIPHER = "aes-256-gcm"
const HEADER = 4
const TAG = 16
const KEY_BYTES = 32

/** One key per direction, as seen from one side. */
export interface Keys {
  readonly send: Uint8Array
  readonly receive: Uint8Array
}

const label = (direction: "client-to-agent" | "agent-to-client") =>
  new TextEncoder().encode(`cuvette-v1-seal ${direction}`)

/**
 * Derives both directions' keys from the token and the handshake's fresh values: a new session (new
 * challenge, new nonce) never reuses a key, so record numbers can start at 0.
 */
export const deriveKeys = (
  token: Uint8Array,
  challenge: Uint8Array,
  nonce: Uint8Array,
  side: "client" | "agent",
): Keys => {
  const salt = new Uint8Array(challenge.byteLength + nonce.byteLength)
  salt.set(challenge)
  salt.set(nonce, challenge.byteLength)
  const key = (direction: "client-to-agent" | "agent-to-client") =>
    new Uint8Array(hkdfSync("sha256", token, salt, label(direction), KEY_BYTES))
  const up = key("client-to-agent")
  const down = key("agent-to-client")
  return side === "client" ? { send: up, receive: down } : { send: down, receive: up }
}

/** 96-bit GCM nonce: 4 zero bytes and the record number (u64 BE). */
const nonceOf = (n: number): Uint8Array => {
  const iv = new Uint8Array(12)
  const view = new DataView(iv.buffer)
  view.setUint32(4, Math.floor(n / 2 ** 32))
  view.setUint32(8, n >>> 0)
  return iv
}

const headerOf = (length: number): Uint8Array => {
  const header = new Uint8Array(HEADER)
  new DataView(header.buffer).setUint32(0, length)
  return header
}

/** Seals outbound plaintext into records, numbered from 0. */
export class Sealer {
  private count = 0
  constructor(private readonly key: Uint8Array) {}

  /** The records carrying `parts` (in order), as pieces to write together. */
  seal(parts: ReadonlyArray<Uint8Array>): Array<Uint8Array> {
    const out: Array<Uint8Array> = []
    let record: Array<Uint8Array> = []
    let size = 0
    const flush = () => {
      if (size === 0) return
      const header = headerOf(size)
      const cipher = createCipheriv(CIPHER, this.key, nonceOf(this.count++), { authTagLength: TAG })
      cipher.setAAD(header)
      out.push(header)
      for (const p of record) out.push(cipher.update(p))
      const last = cipher.final()
      if (last.byteLength > 0) out.push(last)
      out.push(cipher.getAuthTag())
      record = []
      size = 0
    }
    for (let p of parts) {
      while (p.byteLength > 0) {
        const take = Math.min(p.byteLength, MAX_RECORD - size)
        record.push(p.subarray(0, take))
        size += take
        p = p.subarray(take)
        if (size === MAX_RECORD) flush()
      }
    }
    flush()
    return out
  }
}

/**
 * Opens inbound records incrementally, whatever the read boundaries. Plaintext is handed on only once
 * its record's tag verified; at most one record's plaintext is held.
 */
export class Opener {
  private count = 0
  private header = new Uint8Array(HEADER)
  private have = 0
  private length = -1
  private remaining = 0
  private decipher: DecipherGCM | undefined
  private plain: Array<Uint8Array> = []
  private tag = new Uint8Array(TAG)
  private failed: AgentError | undefined

  constructor(
    private readonly key: Uint8Array,
    private readonly where: string,
  ) {}

  /** The plaintext of the records `chunk` completes, or why the stream cannot be trusted. */
  open(chunk: Uint8Array): Array<Uint8Array> | AgentError {
    if (this.failed) return this.failed
    const out: Array<Uint8Array> = []
    let at = 0
    while (at < chunk.byteLength) {
      if (this.length < 0) {
        const take = Math.min(HEADER - this.have, chunk.byteLength - at)
        this.header.set(chunk.subarray(at, at + take), this.have)
        this.have += take
        at += take
        if (this.have < HEADER) break
        const length = new DataView(this.header.buffer).getUint32(0)
        if (length === 0 || length > MAX_RECORD)
          return this.fail(`announces ${length} bytes (the limit is ${MAX_RECORD})`)
        this.length = length
        this.remaining = length
        this.have = 0
        this.decipher = createDecipheriv(CIPHER, this.key, nonceOf(this.count), { authTagLength: TAG })
        this.decipher.setAAD(this.header)
      }
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.byteLength - at)
        this.plain.push(this.decipher!.update(chunk.subarray(at, at + take)))
        this.remaining -= take
        at += take
        continue
      }
      const take = Math.min(TAG - this.have, chunk.byteLength - at)
      this.tag.set(chunk.subarray(at, at + take), this.have)
      this.have += take
      at += take
      if (this.have < TAG) break
      try {
        this.decipher!.setAuthTag(this.tag)
        const last = this.decipher!.final()
        if (last.byteLength > 0) this.plain.push(last)
      } catch {
        return this.fail("failed authentication (modified, injected, replayed or reordered on the way)")
      }
      out.push(...this.plain)
      this.plain = []
      this.decipher = undefined
      this.length = -1
      this.have = 0
      this.count++
    }
    return out
  }

  private fail(why: string): AgentError {
    this.plain = []
    this.decipher = undefined
    this.failed = new AgentError({
      code: "PROTOCOL",
      message: `sealed record #${this.count} from ${this.where} ${why}: the session is closed`,
    })
    return this.failed
  }
}

/**
 * Wraps the stream a session runs on once the handshake is done: writes leave as sealed records (each
 * write or writev — one frame, or a frame's header and payload — one record). Inbound bytes are
 * opened with {@link Opener} by the session, which already owns the stream's sink.
 */
export const sealing = (stream: ByteStream, keys: Keys): ByteStream => {
  const sealer = new Sealer(keys.send)
  const write = (parts: ReadonlyArray<Uint8Array>) => {
    const records = sealer.seal(parts)
    if (stream.writev) return stream.writev(records)
    let ok = true
    for (const r of records) ok = stream.write(r)
    return ok
  }
  return {
    description: stream.description,
    start: (_sink: Sink) => {
      throw new Error("a sealed stream is started by the session that sealed it")
    },
    write: (chunk) => write([chunk]),
    writev: write,
    onDrain: (listener) => stream.onDrain(listener),
    // The session pauses reading while the peer does not drain: the transport underneath must hear it.
    ...(stream.pause && stream.resume
      ? { pause: () => stream.pause?.(), resume: () => stream.resume?.() }
      : {}),
    end: () => stream.end(),
    destroy: () => stream.destroy(),
  }
}
