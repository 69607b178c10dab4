// The limits that keep one hostile peer from taking the agent down (docs/protocol.md, "Limits").
import { it as effectIt } from "@effect/vitest"
import { Clock, Effect, TestClock } from "effect"
import { describe, expect, it } from "vitest"
import { ByteStream, Constants, Frame, Handshake, Messages, Session } from "../src/index.js"
import { connected, identity, readAll, sleep, startAgent } from "./fixtures/agent.js"
import { clientHello, concat, flush, RawPeer } from "./fixtures/streams.js"

const T = Frame.FrameType
const open = (op: string, args: unknown) => ({ _tag: "Open", op, args })

/** A raw peer that finished the handshake (no token). */
const rawSession = async (options: Partial<Session.AgentOptions> = {}) => {
  const [a, b] = ByteStream.pair({ highWaterMark: 1 << 30 })
  const agent = startAgent(b, { pendingHandshakes: new Session.PendingHandshakes(), ...options })
  const peer = new RawPeer(a)
  await peer.handshake()
  return { agent, peer }
}

describe("before the handshake", () => {
  it(`refuses a Hello over ${Constants.PREAUTH_MAX_FRAME} bytes without buffering it, and closes`, async () => {
    const [a, b] = ByteStream.pair()
    const agent = startAgent(b, { pendingHandshakes: new Session.PendingHandshakes() })
    const peer = new RawPeer(a)
    const big = Messages.pack({ ...clientHello(), features: new Array(1_000_000).fill(7) })
    // Only the header and a first piece: the agent must not wait for (or hold) the rest.
    a.write(
      concat([Constants.MAGIC, Frame.encodeHeader(T.Hello, 0, 0, big.byteLength), big.subarray(0, 1000)]),
    )
    const refusal = Messages.unpack((await peer.next((f) => f.type === T.Hello)).payload, "refusal")
    expect(refusal).toMatchObject({
      right: {
        _tag: "Refusal",
        code: "PROTOCOL",
        message: `a frame of ${big.byteLength} bytes (Hello) before the handshake finished exceeds the 4096-byte limit`,
      },
    })
    expect((await agent.ended)?.code).toBe("PROTOCOL")
  })

  effectIt.effect("drops the oldest pending handshake beyond the cap; the rest wait out their deadline", () =>
    Effect.gen(function* () {
      const clock = yield* Effect.clock
      const pendingHandshakes = new Session.PendingHandshakes(3)
      const [ca, cb] = ByteStream.pair()
      const served = startAgent(cb, { pendingHandshakes, clock })
      const client = yield* Effect.promise(() => Session.openClient(ca, { clock }))
      const ended: Array<string | undefined> = []
      const waiting = Array.from({ length: 5 }, (_, i) => {
        const [a, b] = ByteStream.pair()
        a.write(Constants.MAGIC) // and never a Hello
        const s = startAgent(b, { pendingHandshakes, clock })
        void s.ended.then((e) => (ended[i] = e?.message ?? "ended"))
        return s
      })
      for (let i = 0; i < 5; i++) yield* flush
      const dropped = "too many connections are in their handshake (the limit is 3); the oldest was dropped"
      expect(ended).toEqual([dropped, dropped])
      expect(pendingHandshakes.size).toBe(3)
      yield* Effect.promise(() => expect(client.open("ping", {}).result).resolves.toEqual({}))
      // The other three hold their slots until their own deadline, and not a moment longer.
      yield* TestClock.adjust(Constants.DEFAULT_HANDSHAKE_TIMEOUT_MS - 1)
      for (let i = 0; i < 5; i++) yield* flush
      expect(ended).toHaveLength(2)
      yield* TestClock.adjust(1)
      for (let i = 0; i < 5; i++) yield* flush
      expect(ended.slice(2)).toEqual(Array(3).fill(expect.stringMatching(/^no hello from .* within 10 s$/)))
      expect(pendingHandshakes.size).toBe(0)
      for (const s of waiting) s.close()
      client.close()
      yield* Effect.promise(() => served.ended)
    }),
  )

  effectIt.effect("gives the client one deadline for the whole handshake", () =>
    Effect.gen(function* () {
      const clock = yield* Effect.clock
      const [a, b] = ByteStream.pair()
      const agent = startAgent(b, {
        token: new TextEncoder().encode("secret"),
        handshakeTimeoutMs: 300,
        pendingHandshakes: new Session.PendingHandshakes(),
        clock,
      })
      let ended: string | undefined
      void agent.ended.then((e) => (ended = e?.code))
      const peer = new RawPeer(a)
      yield* TestClock.adjust("200 millis")
      yield* Effect.promise(() => peer.handshake()) // a Welcome with a challenge, never answered
      // The deadline counts from the start, not from the hello: 100 ms are left, not 300.
      yield* Effect.andThen(TestClock.adjust("99 millis"), flush)
      expect(ended).toBeUndefined()
      yield* Effect.andThen(TestClock.adjust("1 millis"), flush)
      expect(ended).toBe("ETIMEDOUT")
    }),
  )

  it("says who the agent is only after the token was proved", async () => {
    const token = new TextEncoder().encode("secret")
    const who = {
      name: "test-agent",
      version: "7.7.7-v",
      os: "plan9-os",
      arch: "mips-arch",
      hostname: "guest-host",
    }
    const [a, b] = ByteStream.pair()
    startAgent(b, { token, identity: who, pendingHandshakes: new Session.PendingHandshakes() })
    const seen: Array<Uint8Array> = []
    const tapped: ByteStream.ByteStream = {
      ...a,
      start: (sink) => a.start({ ...sink, data: (c) => (seen.push(c.slice()), sink.data(c)) }),
    }
    const raw = new RawPeer(tapped)
    const welcome = await raw.handshake()
    expect(welcome.challenge?.byteLength).toBe(32)
    expect(welcome.agent).toBeUndefined()
    const text = Buffer.from(concat(seen)).toString("latin1")
    for (const secret of [who.hostname, who.version, who.os, who.arch]) expect(text).not.toContain(secret)
    // A client that proves the token learns it from AuthOk.
    const [c, d] = ByteStream.pair()
    startAgent(d, { token, pendingHandshakes: new Session.PendingHandshakes() })
    const client = await Session.openClient(c, { token })
    expect(client.welcome.agent).toEqual(identity)
    client.close()
  })
})

describe("within a session", () => {
  it(`fails an Open beyond ${Constants.MAX_OPEN_CALLS} open operations with EBUSY; the session goes on`, async () => {
    const { agent, peer } = await rawSession()
    for (let id = 1; id <= Constants.MAX_OPEN_CALLS; id++) peer.control(id, open("exec", { argv: ["hang"] }))
    peer.control(1000, open("ping", {}))
    expect(await peer.reply(1000)).toMatchObject({ _tag: "Failure", code: "EBUSY" })
    expect(agent.running()).toBe(Constants.MAX_OPEN_CALLS)
    peer.send(T.Cancel, 0, 1)
    while ((await peer.reply(1))._tag !== "Failure"); // past its Started event
    peer.control(1001, open("ping", {}))
    expect(await peer.reply(1001)).toEqual({ _tag: "Result", value: {} })
    agent.close()
  })

  it("accepts Data only on a channel the agent reads, and only within its credit", async () => {
    const { agent, peer } = await rawSession()
    peer.control(1, open("exec", { argv: ["hang"] }))
    peer.send(T.Data, 2, 1, new Uint8Array(10))
    expect(await peer.error(1)).toEqual({
      code: "PROTOCOL",
      message: "channel 2 carries no data in this direction",
    })
    peer.control(2, open("exec", { argv: ["hang"] }))
    for (let i = 0; i < 8; i++) peer.send(T.Data, 0, 2, new Uint8Array(Constants.DEFAULT_WINDOW / 8))
    peer.send(T.Data, 0, 2, new Uint8Array(1))
    expect((await peer.error(2)).message).toBe(
      "flow control violated on channel 0: 1 bytes beyond the granted window",
    )
    expect(agent.running()).toBe(0)
    agent.close()
  })

  it(`closes a session holding over ${Constants.MAX_SESSION_UNREAD >> 20} MiB of unread channel data; another goes on`, async () => {
    const other = await connected()
    const { agent, peer } = await rawSession()
    const chunk = new Uint8Array(Constants.DEFAULT_CHUNK)
    for (let id = 1; id <= 40; id++) {
      peer.control(id, open("exec", { argv: ["hang"] }))
      for (let i = 0; i < Constants.DEFAULT_WINDOW / chunk.byteLength; i++) peer.send(T.Data, 0, id, chunk)
    }
    expect(await agent.ended).toMatchObject({
      code: "PROTOCOL",
      message: `the session holds more than ${Constants.MAX_SESSION_UNREAD} bytes of channel data its operations have not read; it was closed`,
    })
    expect(await other.client.open("ping", {}).result).toEqual({})
    other.client.close()
  })

  it("stops reading from a peer that does not drain what the agent writes", async () => {
    // A stream whose writes never drain: every Pong the agent writes stays queued.
    const [a, b] = ByteStream.pair({ highWaterMark: 1 << 30 })
    let queued = 0
    let paused = false
    const stuck: ByteStream.ByteStream = {
      ...b,
      write: (c) => (b.write(c), (queued += c.byteLength), queued < 64 * 1024),
      pause: () => void (paused = true),
      resume: () => void (paused = false),
    }
    startAgent(stuck, { pendingHandshakes: new Session.PendingHandshakes() })
    const peer = new RawPeer(a)
    await peer.handshake()
    const pings = concat(new Array(200_000).fill(Frame.encode(T.Ping, 0, 0, new Uint8Array(8))))
    a.write(pings)
    await sleep(50)
    expect(paused).toBe(true)
    // It stopped within a bound of what it wrote, not after answering all 200,000 (3.6 MB of Pongs).
    expect(queued).toBeLessThan(Constants.MAX_UNDRAINED + 64 * 1024 + 4096)
  })

  it("answers other sessions while one floods Opens: admitted in batches", async () => {
    const other = await connected()
    const { agent, peer } = await rawSession()
    const opens = concat(
      Array.from({ length: 3000 }, (_, i) =>
        Frame.encode(T.Control, 0, i + 1, Messages.pack(open("ping", {}))),
      ),
    )
    peer.stream.write(opens)
    // The flood is still being admitted when the other session's ping is answered.
    const rtt = await other.client.ping()
    const answered = peer.frames.filter((f) => f.type === T.Control).length
    expect(answered).toBeLessThan(3000)
    expect(rtt).toBeLessThan(1000)
    await peer.reply(3000)
    other.client.close()
    agent.close()
  })

  effectIt.effect("does not call a live peer gone after the agent itself was busy", () =>
    Effect.gen(function* () {
      const clock = yield* Effect.clock
      // The agent's clock may run ahead of the test clock: its timers then fire late, as they do
      // when the agent's event loop was blocked, and it has read nothing in the meantime.
      let busyMs = 0
      const agentClock: Clock.Clock = {
        [Clock.ClockTypeId]: Clock.ClockTypeId,
        unsafeCurrentTimeMillis: () => clock.unsafeCurrentTimeMillis() + busyMs,
        currentTimeMillis: Effect.sync(() => clock.unsafeCurrentTimeMillis() + busyMs),
        unsafeCurrentTimeNanos: () => clock.unsafeCurrentTimeNanos() + BigInt(busyMs) * 1_000_000n,
        currentTimeNanos: Effect.sync(() => clock.unsafeCurrentTimeNanos() + BigInt(busyMs) * 1_000_000n),
        sleep: (d) => clock.sleep(d),
      }
      const { client, agent } = yield* Effect.promise(() =>
        connected({ agent: { keepaliveMs: 50, deadPeerMs: 300, clock: agentClock }, client: { clock } }),
      )
      for (let ms = 0; ms < 200; ms += 10) yield* Effect.andThen(TestClock.adjust("10 millis"), flush)
      busyMs += 700 // blocked for 0.7 s, more than twice the dead-peer time
      for (let ms = 0; ms < 200; ms += 10) yield* Effect.andThen(TestClock.adjust("10 millis"), flush)
      expect(client.isClosed).toBe(false)
      yield* Effect.promise(() => expect(client.open("ping", {}).result).resolves.toEqual({}))
      client.close()
      yield* Effect.promise(() => agent.ended)
    }),
  )
})

it("the Welcome's identity is optional on the wire, and a client gets it either way", async () => {
  expect(Handshake.Welcome.fields.agent).toBeDefined()
  const { client } = await connected()
  expect(client.welcome.agent).toEqual(identity)
  expect(await readAll(client.open("readFile", { path: "/x", length: 10 }).stdout)).toHaveLength(10)
  client.close()
})
