/**
 * The handshake: both sides send {@link MAGIC} and a Hello frame. The client offers a version range,
 * features and its identity; the agent answers with the chosen version and its identity, or a
 * refusal naming both versions. With a token, the agent adds a challenge and the client proves it
 * knows the token with an HMAC; the agent proves it back. The token never crosses the wire.
 */
import { Effect, Schema } from "effect"
import { AgentError } from "./Errors.js"

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

/** Agent → client: the chosen version and the agent's identity. */
export const Welcome = Schema.TaggedStruct("Welcome", {
  version: Version,
  features: Schema.Array(Schema.String),
  agent: Schema.Struct({
    name: Schema.String,
    version: Schema.String,
    os: Schema.String,
    arch: Schema.String,
    hostname: Schema.String,
  }),
  maxFrame: Schema.Number,
  window: Schema.Number,
  /** Present when the agent requires a token: random bytes to prove knowledge of it. */
  challenge: Schema.optionalWith(Bytes, { exact: true }),
})
/** The agent's welcome, as the {@link Welcome} schema decodes it. */
export type Welcome = typeof Welcome.Type

/** Client → agent: HMAC proof over the challenge, and a nonce for the agent's proof. */
export const Auth = Schema.TaggedStruct("Auth", { proof: Bytes, nonce: Bytes })
/** Agent → client: the agent's proof over the client's nonce. */
export const AuthOk = Schema.TaggedStruct("AuthOk", { proof: Bytes })
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
