/**
 * The handshake: both sides send {@link MAGIC} and a Hello frame. The client offers a version range,
 * features and its identity; the agent answers with the chosen version and its identity, or a
 * refusal naming both versions. With a token, the agent adds a challenge and the client proves it
 * knows the token with an HMAC; the agent proves it back. The token never crosses the wire.
 */
import { Effect, Either, Schema } from "effect"
import * as C from "./Constants.js"
import { AgentError } from "./Errors.js"
import * as Messages from "./Messages.js"
import * as Seal from "./Seal.js"

const Bytes = Schema.Uint8ArrayFromSelf
const Version = Schema.Number.pipe(Schema.int(), Schema.between(0, 0xffff))

/** Who is speaking: name and version of the program. */
export const Identity = Schema.Struct({ name: Schema.String, version: Schema.String })

/** Client → agent: the opening offer. */
export const ClientHello = Schema.TaggedStruct("Hello", {
  minVersion: Version,
  maxVersion: Version,
  features: Schema.Array(Schema.String),
  client: Identity,
  /** Largest frame payload the client accepts. */
  maxFrame: Schema.Number,
  /** Initial credit the client grants per agent→client channel. */
  window: Schema.Number,
  /** Random per connection: an agent on a serial port tells a repeated hello from a new client's. */
  nonce: Schema.optional(Bytes),
})
/** A client's hello, as the {@link ClientHello} schema decodes it. */
export type ClientHello = typeof ClientHello.Type

/** Who the agent is; told only to a client that may use it (after the token was proved). */
export const AgentIdentity = Schema.Struct({
  name: Schema.String,
  version: Schema.String,
  os: Schema.String,
  arch: Schema.String,
  hostname: Schema.String,
})
/** The agent's identity, as the {@link AgentIdentity} schema decodes it. */
export type AgentIdentity = typeof AgentIdentity.Type

/**
 * Agent → client: the chosen version and limits. Its identity comes here only when no token is
 * required; otherwise in AuthOk, so a peer that has proved nothing learns nothing about the guest.
 */
export const Welcome = Schema.TaggedStruct("Welcome", {
  version: Version,
  features: Schema.Array(Schema.String),
  agent: Schema.optionalWith(AgentIdentity, { exact: true }),
  maxFrame: Schema.Number,
  window: Schema.Number,
  /** Present when the agent requires a token: random bytes to prove knowledge of it. */
  challenge: Schema.optionalWith(Bytes, { exact: true }),
})
/** The agent's welcome, as the {@link Welcome} schema decodes it. */
export type Welcome = typeof Welcome.Type
/** The Welcome as the client keeps it: with the identity, whichever message carried it. */
export type Welcomed = Welcome & { readonly agent: AgentIdentity }

/** Client → agent: HMAC proof over the challenge, and a nonce for the agent's proof. */
export const Auth = Schema.TaggedStruct("Auth", { proof: Bytes, nonce: Bytes })
/** Agent → client: the agent's proof over the client's nonce, and who it is. */
export const AuthOk = Schema.TaggedStruct("AuthOk", {
  proof: Bytes,
  agent: Schema.optionalWith(AgentIdentity, { exact: true }),
})
/** Either side: the handshake failed. */
export const Refusal = Schema.TaggedStruct("Refusal", { code: Schema.String, message: Schema.String })

/** Any handshake message. */
export const Message = Schema.Union(ClientHello, Welcome, Auth, AuthOk, Refusal)
/** Any handshake message, as the {@link Message} schema decodes it. */
export type Message = typeof Message.Type

/** Picks the highest version in both ranges, or fails naming both. */
export const negotiate = (
  client: { readonly minVersion: number; readonly maxVersion: number },
  agent: { readonly minVersion: number; readonly maxVersion: number },
): Effect.Effect<number, AgentError> => {
  const version = Math.min(client.maxVersion, agent.maxVersion)
  if (version >= client.minVersion && version >= agent.minVersion) return Effect.succeed(version)
  return Effect.fail(
    new AgentError({
      code: "VERSION",
      message:
        `protocol version mismatch: the client speaks ${range(client)}, the agent speaks ${range(agent)}; ` +
        `use a client and agent from the same Cuvette release`,
    }),
  )
}

const range = (r: { readonly minVersion: number; readonly maxVersion: number }) =>
  r.minVersion === r.maxVersion ? `v${r.minVersion}` : `v${r.minVersion}..v${r.maxVersion}`

const encoder = new TextEncoder()

/** HMAC-SHA256 of `parts` under `token`, with a role label so the two proofs can never be swapped. */
export const proof = (token: Uint8Array, role: "client" | "agent", ...parts: ReadonlyArray<Uint8Array>) =>
  Effect.promise(async () => {
    const key = await crypto.subtle.importKey("raw", token, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
    ])
    const label = encoder.encode(`cuvette-v1-${role}`)
    const data = new Uint8Array(label.byteLength + parts.reduce((n, p) => n + p.byteLength, 0))
    let off = 0
    for (const p of [label, ...parts]) {
      data.set(p, off)
      off += p.byteLength
    }
    return new Uint8Array(await crypto.subtle.sign("HMAC", key, data))
  })

/** Compares two proofs in constant time. */
export const equalProofs = (a: Uint8Array, b: Uint8Array): boolean => {
  if (a.byteLength !== b.byteLength) return false
  let diff = 0
  for (let i = 0; i < a.byteLength; i++) diff |= a[i]! ^ b[i]!
  return diff === 0
}

/** Fresh random bytes for challenges and nonces. */
export const randomBytes = (n = 32): Uint8Array => crypto.getRandomValues(new Uint8Array(n))

/** Reads a token file's contents into key bytes (surrounding whitespace ignored, so `echo secret > f` works). */
export const tokenFromText = (text: string): Uint8Array => encoder.encode(text.trim())

// ------------------------------------------------------------------------------------------------
// The two state machines. They see the stream only through HelloIo, and return what was negotiated;
// the session applies it.

/** What a handshake needs from the session it runs on. */
export interface HelloIo {
  /** The peer, for messages ("unix:/run/agent.sock"). */
  readonly where: string
  /** A serial port: the peer may need to hear the hello again, and bytes before it are noise. */
  readonly resync: boolean
  /** This side's limits, announced to the peer. */
  readonly maxFrame: number
  readonly window: number
  readonly timeoutMs: number
  readonly token: Uint8Array | undefined
  /** Sends a handshake message (the magic first, once per handshake, or again with `magic: true`). */
  readonly send: (message: Message, options?: { readonly magic?: boolean }) => void
  /** The payload of the peer's next Hello frame, or undefined on timeout or end of stream. */
  readonly next: (timeoutMs?: number) => Promise<Uint8Array | undefined>
  /** Why the stream ended, once it did. */
  readonly ended: () => Promise<AgentError | undefined> | undefined
  /** Current time in milliseconds (the session's clock). */
  readonly now: () => number
}

/** What both sides agreed on. */
export interface Negotiated {
  readonly version: number
  readonly peerWindow: number
  readonly peerMaxFrame: number
  /** Present when the session is sealed from here on ({@link Seal}). */
  readonly seal?: Seal.Keys
}

/** Features this build offers and accepts. */
export const FEATURES: ReadonlyArray<string> = ["keepalive", "resync", "auth", "cancel", Seal.FEATURE]

/** Options of the client side. */
export interface ClientOptions {
  /** Who is connecting, shown to the agent. */
  readonly identity?: { readonly name: string; readonly version: string }
  /** Versions offered (defaults to this build's range). */
  readonly minVersion?: number
  readonly maxVersion?: number
  /**
   * Insist on a sealed session: the agent must ask for the token and seal every frame after the
   * handshake, or the connection fails. Off: the client still seals when the agent asks to.
   */
  readonly seal?: boolean
}

/** Options of the agent side. */
export interface AgentOptions {
  /** Identity announced once the client may hear it (Welcome without a token, AuthOk with one). */
  readonly identity: AgentIdentity
  readonly minVersion?: number
  readonly maxVersion?: number
  /** Seal sessions that authenticate with the token; a client that cannot seal is refused. */
  readonly seal?: boolean
}

/** Client side: offers, reads the Welcome, answers a challenge and checks the agent's proof. */
export const runClient = async (
  io: HelloIo,
  options: ClientOptions,
): Promise<Negotiated & { readonly welcome: Welcomed }> => {
  const hello: Message = {
    _tag: "Hello",
    minVersion: options.minVersion ?? C.PROTOCOL_VERSION_MIN,
    maxVersion: options.maxVersion ?? C.PROTOCOL_VERSION_MAX,
    features: FEATURES,
    client: options.identity ?? { name: "cuvette-client", version: "0" },
    maxFrame: io.maxFrame,
    window: io.window,
    // Tells this client's repeated hellos (serial ports) apart from another client's.
    nonce: randomBytes(16),
  }
  const where = io.where
  const deadline = io.now() + io.timeoutMs
  io.send(hello)
  let payload: Uint8Array | undefined
  while (
    !(payload = await io.next(
      // Longer than the agent's resync stall timeout, so a hello swallowed by a half-received frame
      // of an old session is found by the agent before it is repeated.
      io.resync ? Math.min(2 * C.DEFAULT_RESYNC_STALL_MS, deadline - io.now()) : deadline - io.now(),
    ))
  ) {
    const ended = io.ended()
    if (ended)
      throw (
        (await ended) ??
        new AgentError({ code: "DISCONNECTED", message: `${where} closed during the handshake` })
      )
    if (io.now() >= deadline) {
      throw new AgentError({
        code: "ETIMEDOUT",
        message: `no handshake from ${where} within ${io.timeoutMs / 1000} s`,
      })
    }
    // On a serial port the agent may still be draining an old session: say hello again, with the
    // magic, so an agent that lost the first one finds this one.
    io.send(hello, { magic: true })
  }
  const reply = parse(payload, where)
  if (reply._tag === "Refusal") throw refusal(reply, where)
  if (reply._tag !== "Welcome")
    throw new AgentError({ code: "PROTOCOL", message: `${where} answered the hello with ${reply._tag}` })
  if (reply.version < hello.minVersion || reply.version > hello.maxVersion) {
    throw new AgentError({
      code: "VERSION",
      message: `the agent at ${where} chose protocol v${reply.version}, the client speaks v${hello.minVersion}..v${hello.maxVersion}`,
    })
  }
  const sealed = reply.features.includes(Seal.FEATURE)
  if (sealed && !reply.challenge)
    throw new AgentError({
      code: "PROTOCOL",
      message: `${where} chose a sealed session without asking for the token`,
    })
  if (options.seal && io.token && !sealed)
    throw new AgentError({
      code: "UNSUPPORTED",
      message: reply.challenge
        ? `the agent at ${where} does not seal the session (an older agent?): use an agent from the same Cuvette release`
        : `the agent at ${where} does not ask for the token, so the session cannot be sealed: give the agent the same --token-file, or connect without a token`,
    })
  let agent = reply.agent
  let seal: Seal.Keys | undefined
  if (reply.challenge) {
    if (!io.token) {
      throw new AgentError({
        code: "DENIED",
        message: `the agent at ${where} requires a token`,
      })
    }
    const nonce = randomBytes()
    io.send({ _tag: "Auth", proof: await run(proof(io.token, "client", reply.challenge, nonce)), nonce })
    const answer = parse(await io.next(), where)
    if (answer._tag === "Refusal") throw refusal(answer, where)
    const expected = await run(proof(io.token, "agent", nonce, reply.challenge))
    if (answer._tag !== "AuthOk" || !equalProofs(answer.proof, expected)) {
      throw new AgentError({
        code: "DENIED",
        message: `the agent at ${where} could not prove it knows the token: wrong agent, or a different token file`,
      })
    }
    agent ??= answer.agent
    if (sealed) seal = Seal.deriveKeys(io.token, reply.challenge, nonce, "client")
  }
  if (!agent)
    throw new AgentError({ code: "PROTOCOL", message: `the agent at ${where} did not say who it is` })
  return {
    version: reply.version,
    peerWindow: reply.window,
    peerMaxFrame: reply.maxFrame,
    welcome: { ...reply, agent },
    ...(seal ? { seal } : {}),
  }
}

/**
 * Agent side: reads the hello, picks the version, welcomes (with a challenge when a token is set) and
 * checks the client's proof. Resolves with what was agreed and the hello it answered (on a serial
 * port the same bytes again are that client repeating itself, not a new one).
 */
export const runAgent = async (
  io: HelloIo,
  options: AgentOptions,
): Promise<Negotiated & { readonly answered: Uint8Array }> => {
  const where = io.where
  const started = io.now()
  // A serial port waits for a client as long as it takes.
  const payload = await io.next(io.resync ? 2 ** 31 - 1 : io.timeoutMs)
  // One deadline for the whole handshake (on a serial port, from the hello on), so a client that
  // answers slowly holds its pending slot no longer.
  const deadline = (io.resync ? io.now() : started) + io.timeoutMs
  if (!payload)
    throw new AgentError({
      code: "ETIMEDOUT",
      message: `no hello from ${where} within ${io.timeoutMs / 1000} s`,
    })
  const refuse = (error: AgentError) => {
    // After the Welcome (wrong token) the magic was already sent: send does not repeat it.
    io.send({ _tag: "Refusal", code: error.code, message: error.message })
    return error
  }
  const decoded = Messages.unpackAs(ClientHello, "hello")(payload)
  if (Either.isLeft(decoded)) throw refuse(decoded.left)
  const hello = decoded.right
  const version = await Effect.runPromise(
    Effect.either(
      negotiate(hello, {
        minVersion: options.minVersion ?? C.PROTOCOL_VERSION_MIN,
        maxVersion: options.maxVersion ?? C.PROTOCOL_VERSION_MAX,
      }),
    ),
  )
  if (Either.isLeft(version)) throw refuse(version.left)
  // A serial port is never sealed: its takeover rules read a new client's hello mid-session.
  const sealed = options.seal === true && io.token !== undefined && !io.resync
  if (sealed && !hello.features.includes(Seal.FEATURE))
    throw refuse(
      new AgentError({
        code: "UNSUPPORTED",
        message: `this agent seals its sessions on ${where} and the client cannot (no "${Seal.FEATURE}" feature): use a client from the same Cuvette release`,
      }),
    )
  const challenge = io.token ? randomBytes() : undefined
  io.send({
    _tag: "Welcome",
    version: version.right,
    features: FEATURES.filter((f) => hello.features.includes(f) && (f !== Seal.FEATURE || sealed)),
    ...(challenge ? {} : { agent: options.identity }),
    maxFrame: io.maxFrame,
    window: io.window,
    ...(challenge ? { challenge } : {}),
  })
  const agreed = {
    version: version.right,
    peerWindow: hello.window,
    peerMaxFrame: hello.maxFrame,
    answered: payload,
  }
  if (!challenge || !io.token) return agreed
  const answer = parse(await io.next(Math.max(0, deadline - io.now())), where)
  if (answer._tag !== "Auth")
    throw refuse(new AgentError({ code: "DENIED", message: "this agent requires a token" }))
  const expected = await run(proof(io.token, "client", challenge, answer.nonce))
  if (!equalProofs(answer.proof, expected))
    throw refuse(new AgentError({ code: "DENIED", message: "wrong token" }))
  io.send({
    _tag: "AuthOk",
    proof: await run(proof(io.token, "agent", answer.nonce, challenge)),
    agent: options.identity,
  })
  return sealed ? { ...agreed, seal: Seal.deriveKeys(io.token, challenge, answer.nonce, "agent") } : agreed
}

const run = <A>(effect: Effect.Effect<A>): Promise<A> => Effect.runPromise(effect)

const parse = (payload: Uint8Array | undefined, where: string): Message => {
  if (!payload)
    throw new AgentError({ code: "ETIMEDOUT", message: `${where} stopped answering during the handshake` })
  const message = Messages.unpackAs(Message, "handshake message")(payload)
  if (Either.isLeft(message)) throw message.left
  return message.right
}

const refusalCodes = new Set<string>(["DENIED", "VERSION", "PROTOCOL", "UNSUPPORTED", "INTERNAL"])

const refusal = (r: { readonly code: string; readonly message: string }, where: string) =>
  new AgentError({
    code: (refusalCodes.has(r.code) ? r.code : "PROTOCOL") as AgentError["code"],
    message: Messages.bounded(`${where} refused the session: ${r.message}`),
  })
