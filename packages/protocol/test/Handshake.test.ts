import { it } from "@effect/vitest"
import { Effect, Either, TestClock } from "effect"
import { describe, expect } from "vitest"
import { ByteStream, Constants, Frame, Handshake, Messages, Session } from "../src/index.js"
import { connected, startAgent, welcome } from "./fixtures/agent.js"
import { clientHello, concat, contains, flush, tap } from "./fixtures/streams.js"

const token = new TextEncoder().encode("s3cret-token-value")

describe("Handshake.negotiate", () => {
  it.effect("picks the highest shared version", () =>
    Effect.gen(function* () {
      expect(
        yield* Handshake.negotiate({ minVersion: 1, maxVersion: 3 }, { minVersion: 2, maxVersion: 5 }),
      ).toBe(3)
      expect(
        yield* Handshake.negotiate({ minVersion: 1, maxVersion: 1 }, { minVersion: 1, maxVersion: 1 }),
      ).toBe(1)
    }),
  )

  it.effect("fails with VERSION naming both ranges", () =>
    Effect.gen(function* () {
      const r = yield* Effect.either(
        Handshake.negotiate({ minVersion: 2, maxVersion: 3 }, { minVersion: 1, maxVersion: 1 }),
      )
      expect(Either.isLeft(r) && r.left.code).toBe("VERSION")
      expect(Either.isLeft(r) && r.left.message).toMatch(/client speaks v2\.\.v3.*agent speaks v1/)
    }),
  )
})

describe("Handshake.proof", () => {
  it.effect("is an HMAC-SHA256 bound to its role and inputs", () =>
    Effect.gen(function* () {
      const a = new Uint8Array([1, 2])
      const b = new Uint8Array([3])
      const client = yield* Handshake.proof(token, "client", a, b)
      expect(client.byteLength).toBe(32)
      expect(Handshake.equalProofs(client, yield* Handshake.proof(token, "client", a, b))).toBe(true)
      expect(Handshake.equalProofs(client, yield* Handshake.proof(token, "agent", a, b))).toBe(false)
      expect(Handshake.equalProofs(client, yield* Handshake.proof(token, "client", b, a))).toBe(false)
      expect(Handshake.equalProofs(client, yield* Handshake.proof(new Uint8Array([0]), "client", a, b))).toBe(
        false,
      )
      expect(Handshake.equalProofs(client, client.subarray(0, 31))).toBe(false)
    }),
  )

  it("reads token files without surrounding whitespace", () => {
    expect(Array.from(Handshake.tokenFromText("  abc\n"))).toEqual([97, 98, 99])
  })
})

describe("session handshake", () => {
  it("opens with the agent's identity and negotiated limits", async () => {
    const { client, agent } = await connected({ agent: { window: 123_456 } })
    expect(client.welcome).toMatchObject({ _tag: "Welcome", version: 1, window: 123_456 })
    expect(client.welcome.agent.name).toBe("test-agent")
    expect(client.welcome.challenge).toBeUndefined()
    client.close()
    await agent.ended
  })

  it("refuses a version mismatch naming both versions, on both sides", async () => {
    const [a, b] = ByteStream.pair()
    const agent = startAgent(b)
    const error = await Session.openClient(a, { minVersion: 2, maxVersion: 3 }).catch((e) => e)
    expect(error).toMatchObject({ code: "VERSION" })
    expect(error.message).toContain("v2..v3")
    expect(error.message).toContain("v1")
    expect(await agent.ended).toMatchObject({ code: "VERSION" })
  })

  it("accepts the right token and proves the agent knows it", async () => {
    const { client, agent } = await connected({ agent: { token }, client: { token } })
    expect(client.welcome.challenge?.byteLength).toBe(32)
    await expect(client.open("ping", {}).result).resolves.toEqual({})
    client.close()
    await agent.ended
  })

  it("rejects a wrong token with DENIED", async () => {
    const [a, b] = ByteStream.pair()
    const agent = startAgent(b, { token })
    const error = await Session.openClient(a, { token: new TextEncoder().encode("wrong") }).catch((e) => e)
    expect(error).toMatchObject({ code: "DENIED" })
    expect(error.message).toContain("wrong token")
    expect(await agent.ended).toMatchObject({ code: "DENIED" })
  })

  it("rejects a missing token with DENIED, saying so once (how to pass one is the client's hint)", async () => {
    const [a, b] = ByteStream.pair()
    const agent = startAgent(b, { token })
    const error = await Session.openClient(a).catch((e) => e)
    expect(error).toMatchObject({ code: "DENIED" })
    expect(error.message).toMatch(/^the agent at .* requires a token$/)
    await agent.ended
  })

  it("rejects an agent that cannot prove the token (client holds a different one)", async () => {
    const [a, b] = ByteStream.pair()
    startAgent(b, { token })
    const other = new TextEncoder().encode("other")
    const error = await Session.openClient(a, { token: other }).catch((e) => e)
    expect(error).toMatchObject({ code: "DENIED" })
  })

  it("never puts the token on the wire, in either direction", async () => {
    const [a, b] = ByteStream.pair()
    const up = tap(a)
    const down = tap(b)
    const agent = startAgent(down.stream, { token })
    const client = await Session.openClient(up.stream, { token })
    await client.open("ping", {}).result
    client.close()
    await agent.ended
    const wire = concat([up.bytes(), down.bytes()])
    expect(wire.byteLength).toBeGreaterThan(100)
    expect(contains(wire, Constants.MAGIC)).toBe(true) // the tap does see the traffic
    expect(contains(wire, token)).toBe(false)
    expect(contains(wire, token.subarray(0, 8))).toBe(false)
  })

  it("refuses a peer that does not start with the magic", async () => {
    const [a, b] = ByteStream.pair()
    const agent = startAgent(b)
    a.start({ data: () => {}, end: () => {} })
    a.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"))
    const end = await agent.ended
    expect(end).toMatchObject({ code: "PROTOCOL" })
    expect(end?.message).toContain("does not speak the Cuvette protocol")
  })

  // The magic before the rename (CHANGELOG.md): "\xB5" and the former name in ASCII.
  const previousMagic = new Uint8Array([0xb5, 0x42, 0x55, 0x52, 0x45, 0x54, 0x54, 0x45])
  const helloFrame = (message: Handshake.Message) =>
    Frame.encode(Frame.FrameType.Hello, 0, 0, Messages.encode(Handshake.Message, message))

  it("refuses a client of the previous release (old magic) at once, in a way it reports", async () => {
    const [a, b] = ByteStream.pair()
    const agent = startAgent(b)
    const received: Array<Uint8Array> = []
    let closed = false
    a.start({ data: (chunk) => void received.push(chunk.slice()), end: () => void (closed = true) })
    a.write(concat([previousMagic, helloFrame(clientHello())]))
    const end = await agent.ended
    expect(end).toMatchObject({ code: "PROTOCOL" })
    expect(end?.message).toContain("does not speak the Cuvette protocol")
    // The old client reads a magic it does not know (its own "does not speak" refusal), then EOF.
    const wire = concat(received)
    expect(wire.subarray(0, 8)).toEqual(Constants.MAGIC)
    expect(contains(wire, previousMagic)).toBe(false)
    await expect.poll(() => closed).toBe(true)
  })

  it("fails fast with PROTOCOL against an agent of the previous release", async () => {
    const [a, b] = ByteStream.pair()
    b.start({ data: () => {}, end: () => {} })
    b.write(concat([previousMagic, helloFrame(welcome)]))
    const started = Date.now()
    const error = await Session.openClient(a, { handshakeTimeoutMs: 10_000 }).catch((e) => e)
    expect(error).toMatchObject({ code: "PROTOCOL" })
    expect(error.message).toContain("does not speak the Cuvette protocol")
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it.effect("times out a silent agent with ETIMEDOUT after the default 10 s", () =>
    Effect.gen(function* () {
      const [a, b] = ByteStream.pair()
      b.start({ data: () => {}, end: () => {} })
      const opening = Session.openClient(a, { clock: yield* Effect.clock }).catch((e) => e)
      let settled = false
      void opening.then(() => (settled = true))
      yield* TestClock.adjust("9999 millis")
      yield* flush
      expect(settled).toBe(false)
      yield* TestClock.adjust("1 millis")
      const error = yield* Effect.promise(() => opening)
      expect(error).toMatchObject({ code: "ETIMEDOUT" })
      // What to try is the client's hint (by transport), so the message does not carry a second one.
      expect(error.message).toBe("no handshake from memory:a within 10 s")
    }),
  )
})
