import { it as effectIt } from "@effect/vitest"
import { Clock, type Duration, Effect, Runtime, TestClock } from "effect"
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import { ByteStream, Constants, Frame, Handshake, Messages, Session } from "../src/index.js"
import { AgentError } from "../src/Errors.js"
import {
  connected,
  handlers,
  identity,
  type Probe,
  readAll,
  sleep,
  startAgent,
  welcome,
} from "./fixtures/agent.js"
import { concat, flush, pattern, RawPeer, rechunk, serialLine, tap, unixPair } from "./fixtures/streams.js"

const T = Frame.FrameType

/** How many times `needle` occurs in `haystack`. */
const countOf = (haystack: Uint8Array, needle: Uint8Array): number => {
  const h = Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength)
  let n = 0
  for (let i = h.indexOf(Buffer.from(needle)); i >= 0; i = h.indexOf(Buffer.from(needle), i + 1)) n++
  return n
}

/** Runs a mixed workload on an open session and checks every byte. */
const workload = async (client: Session.ClientSession, seed: number) => {
  const up = pattern(70_000 + (seed % 5000), seed)
  const echo = client.open("exec", { argv: ["echo"] })
  const read = client.open("readFile", { path: "/x".repeat(1 + (seed % 7)), length: 300_000 + seed })
  const ping = client.open("ping", {})
  const writing = (async () => {
    for (let off = 0; off < up.byteLength; off += 7_001) await echo.stdin.write(up.slice(off, off + 7_001))
    echo.stdin.end()
  })()
  const [echoed, body] = await Promise.all([readAll(echo.stdout), readAll(read.stdout), writing])
  expect(await ping.result).toEqual({})
  expect(await echo.nextEvent()).toEqual({ _tag: "Started", pid: 42 })
  expect((await echo.result).exitCode).toBe(0)
  expect(await read.result).toEqual({ bytes: 300_000 + seed })
  expect(Buffer.compare(echoed, up)).toBe(0)
  expect(Buffer.compare(body, pattern(300_000 + seed, 2 * (1 + (seed % 7))))).toBe(0)
}

describe("sessions over split and coalesced byte streams", () => {
  it("serve a mixed workload whatever the read boundaries (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 1000 }),
        async (toAgent, toClient, seed) => {
          const [a, b] = ByteStream.pair()
          const agent = startAgent(rechunk(b, toAgent), { chunkSize: 16_384 + seed })
          const client = await Session.openClient(rechunk(a, toClient))
          await workload(client, seed)
          client.close()
          await agent.ended
        },
      ),
      { numRuns: 12 },
    )
  })

  it("serve the workload with every frame split into 1-byte reads", async () => {
    const [a, b] = ByteStream.pair()
    const agent = startAgent(rechunk(b, [1]), { chunkSize: 4096 })
    const client = await Session.openClient(rechunk(a, [1, 2, 3]), { window: 64 * 1024 })
    await workload(client, 3)
    client.close()
    await agent.ended
  })

  it("serve the workload over a real Unix socket pair", async () => {
    const pair = await unixPair()
    try {
      const agent = startAgent(pair.agent)
      const client = await Session.openClient(pair.client)
      for (let seed = 1; seed <= 3; seed++) await workload(client, seed)
      const big = client.open("readFile", { path: "/big", length: 64 * 1024 * 1024 })
      const body = await readAll(big.stdout)
      expect(Buffer.compare(body, pattern(64 * 1024 * 1024, 4))).toBe(0)
      client.close()
      expect(await agent.ended).toMatchObject({ code: "DISCONNECTED" })
    } finally {
      pair.close()
    }
  })

  effectIt.scoped("work as scoped Effects (serve + client)", () =>
    Effect.gen(function* () {
      const [a, b] = ByteStream.pair()
      const served = yield* Effect.fork(Session.serve(b, { identity, handlers: handlers() }))
      const client = yield* Session.client(a)
      const result = yield* Effect.promise(() => client.open("ping", {}).result)
      expect(result).toEqual({})
      const echo = client.open("exec", { argv: ["echo"] })
      yield* Effect.promise(() => echo.stdin.write(new Uint8Array([1, 2, 3])))
      echo.stdin.end()
      expect(Array.from(yield* Effect.promise(() => readAll(echo.stdout)))).toEqual([1, 2, 3])
      client.close()
      const end = yield* served.await
      expect(end._tag === "Success" && end.value?.code).toBe("DISCONNECTED")
    }),
  )
})

describe("malformed input (raw frames against a real Session.serve)", () => {
  const setup = async (options: Partial<Session.AgentOptions> & { probe?: Probe } = {}) => {
    const [a, b] = ByteStream.pair()
    const agent = startAgent(b, options)
    const peer = new RawPeer(a)
    const welcome = await peer.handshake()
    expect(welcome._tag).toBe("Welcome")
    const ping = async (call: number) => {
      peer.control(call, { _tag: "Open", op: "ping", args: {} })
      expect(await peer.reply(call)).toEqual({ _tag: "Result", value: {} })
    }
    return { agent, peer, ping }
  }

  it("answers malformed msgpack with PROTOCOL and keeps serving", async () => {
    const { agent, peer, ping } = await setup()
    peer.send(T.Control, 0, 1, new Uint8Array([0xc1, 0xc1, 0xc1]))
    const reply = await peer.reply(1)
    expect(reply).toMatchObject({ _tag: "Failure", code: "PROTOCOL" })
    expect(reply.message).toContain("not valid msgpack")
    await ping(2)
    agent.close()
  })

  it("answers an unknown control _tag with PROTOCOL naming _tag", async () => {
    const { agent, peer, ping } = await setup()
    peer.control(1, { _tag: "Bogus", x: 1 })
    const reply = await peer.reply(1)
    expect(reply).toMatchObject({ _tag: "Failure", code: "PROTOCOL" })
    expect(reply.message).toContain("_tag")
    await ping(2)
    agent.close()
  })

  it("answers an unknown operation with UNSUPPORTED listing what it serves", async () => {
    const { agent, peer, ping } = await setup()
    peer.control(1, { _tag: "Open", op: "format-c", args: {} })
    const reply = await peer.reply(1)
    expect(reply).toMatchObject({ _tag: "Failure", code: "UNSUPPORTED" })
    expect(reply.message).toMatch(/"format-c".*ping, info, exec, readFile/)
    await ping(2)
    agent.close()
  })

  it("answers an unknown frame type with an Error frame and keeps serving", async () => {
    const { agent, peer, ping } = await setup()
    peer.send(0x2a, 0, 0, new Uint8Array([1]))
    expect(await peer.error(0)).toMatchObject({
      code: "PROTOCOL",
      message: expect.stringContaining("type 0x2a"),
    })
    await ping(1)
    agent.close()
  })

  it("names the invalid field of a request, nested fields with their path", async () => {
    const { agent, peer, ping } = await setup()
    peer.control(1, { _tag: "Open", op: "readFile", args: { path: 5 } })
    const r1 = await peer.reply(1)
    expect(r1).toMatchObject({ _tag: "Failure", code: "PROTOCOL" })
    expect(r1.message).toMatch(/invalid readFile request: path: Expected string/)
    peer.control(2, { _tag: "Open", op: "exec", args: { argv: ["x"], env: { set: { A: 1 } } } })
    const r2 = await peer.reply(2)
    expect(r2.message).toContain("env.set.A")
    peer.control(3, { _tag: "Open", op: "exec", args: { argv: [] } })
    expect((await peer.reply(3)).message).toContain("argv")
    await ping(4)
    agent.close()
  })

  it("rejects an invalid input to a running call without ending it or others", async () => {
    const probe: Probe = { finalizers: 0 }
    const { agent, peer, ping } = await setup({ probe })
    peer.control(1, { _tag: "Open", op: "exec", args: { argv: ["echo"] } })
    await peer.next((f) => f.type === T.Control && f.call === 1) // Started
    peer.control(1, { _tag: "Input", input: { _tag: "Resize", rows: -1, cols: 2 } })
    expect(await peer.error(1)).toMatchObject({ code: "PROTOCOL", message: expect.stringContaining("rows") })
    await ping(2)
    // The call still works: echo, then end.
    peer.send(T.Data, Constants.Channel.stdin, 1, new Uint8Array([7, 7]))
    const data = await peer.next((f) => f.type === T.Data && f.call === 1)
    expect(Array.from(data.payload)).toEqual([7, 7])
    peer.send(T.Eof, Constants.Channel.stdin, 1)
    expect(await peer.reply(1)).toMatchObject({ _tag: "Result", value: { exitCode: 0 } })
    agent.close()
  })

  it("ends a call whose control frame is not msgpack, tells the peer, and keeps the others", async () => {
    const probe: Probe = { finalizers: 0 }
    const { agent, peer, ping } = await setup({ probe })
    peer.control(1, { _tag: "Open", op: "exec", args: { argv: ["hang"] } })
    peer.control(2, { _tag: "Open", op: "exec", args: { argv: ["echo"] } })
    await peer.next((f) => f.type === T.Control && f.call === 1)
    await peer.next((f) => f.type === T.Control && f.call === 2)
    peer.send(T.Control, 0, 1, new Uint8Array([0x82, 0xa1, 0x61])) // a map cut short
    expect(await peer.error(1)).toMatchObject({ code: "PROTOCOL" })
    await ping(3)
    await sleep(10)
    expect(probe.finalizers).toBe(1) // the hanging handler of call 1 was interrupted
    expect(agent.running()).toBe(1) // call 2 still runs
    peer.send(T.Eof, Constants.Channel.stdin, 2)
    expect(await peer.reply(2)).toMatchObject({ _tag: "Result" })
    agent.close()
  })

  it("rejects a sender that exceeds its credit and keeps the session", async () => {
    const { agent, peer, ping } = await setup({ window: 1000 })
    peer.control(1, { _tag: "Open", op: "exec", args: { argv: ["hang"] } })
    await peer.next((f) => f.type === T.Control && f.call === 1)
    peer.send(T.Data, 0, 1, new Uint8Array(1001))
    expect(await peer.error(1)).toMatchObject({
      code: "PROTOCOL",
      message: expect.stringContaining("flow control violated"),
    })
    await ping(2)
    agent.close()
  })

  it("skips an oversize frame with a clear error and stays in sync", async () => {
    const { agent, peer, ping } = await setup({ maxFrame: 4096 })
    peer.stream.write(Frame.encodeHeader(T.Data, 0, 9, 5000))
    peer.stream.write(new Uint8Array(5000).fill(0xb5))
    const error = await peer.error(9)
    expect(error.code).toBe("PROTOCOL")
    expect(error.message).toContain("frame of 5000 bytes (Data) exceeds the 4096-byte limit")
    await ping(1)
    agent.close()
  })

  it("ignores late data and credit for finished calls", async () => {
    const { agent, peer, ping } = await setup()
    await ping(1)
    peer.send(T.Data, 0, 1, new Uint8Array(10))
    peer.send(T.Credit, 1, 1, new Uint8Array([0, 0, 1, 0]))
    peer.send(T.Eof, 0, 1)
    peer.send(T.Cancel, 0, 1)
    await ping(2)
    expect(peer.frames.filter((f) => f.type === T.Error)).toEqual([])
    agent.close()
  })
})

describe("flow control", () => {
  it("bounds what a sender buffers when the consumer stops reading", async () => {
    const window = 256 * 1024
    const probe: Probe = { finalizers: 0 }
    const { client, agent } = await connected({ client: { window }, agent: { probe } })
    const call = client.open("exec", { argv: ["emit", String(16 * 1024 * 1024), "5"] })
    await sleep(200)
    // The agent has sent exactly one window and waits for credit; the client holds it, unread.
    expect(probe.lastStdout?.sent).toBe(window)
    expect(call.stdout.buffered).toBe(window)
    await sleep(100)
    expect(probe.lastStdout?.sent).toBe(window)
    // Reading resumes the flow; every byte arrives intact, and the bound held all along.
    let maxBuffered = 0
    const parts: Array<Uint8Array> = []
    for await (const chunk of call.stdout) {
      maxBuffered = Math.max(maxBuffered, call.stdout.buffered)
      expect(probe.lastStdout!.sent - call.stdout.received).toBeLessThanOrEqual(window)
      parts.push(chunk)
    }
    expect(maxBuffered).toBeLessThanOrEqual(window)
    expect(Buffer.compare(concat(parts), pattern(16 * 1024 * 1024, 5))).toBe(0)
    await call.result
    client.close()
    await agent.ended
  })

  it("bounds the client's upload to the agent's window when the handler does not read", async () => {
    const window = 100_000
    const { client, agent } = await connected({ agent: { window } })
    const call = client.open("exec", { argv: ["hang"] })
    let written = 0
    const writer = (async () => {
      for (;;) {
        await call.stdin.write(new Uint8Array(10_000))
        written += 10_000
      }
    })()
    writer.catch(() => {})
    await sleep(100)
    expect(call.stdin.sent).toBe(window)
    expect(written).toBeLessThanOrEqual(window)
    call.cancel()
    await expect(call.result).rejects.toMatchObject({ code: "CANCELLED" })
    await expect(writer).rejects.toMatchObject({ code: "DISCONNECTED" })
    client.close()
    await agent.ended
  })

  it("interleaves 64 concurrent streaming calls with correct bytes", async () => {
    const probe: Probe = { finalizers: 0 }
    const { client, agent } = await connected({ client: { window: 128 * 1024 }, agent: { probe } })
    const size = 512 * 1024
    const calls = Array.from({ length: 64 }, (_, i) => {
      const up = pattern(size, 1000 + i)
      const echo = client.open("exec", { argv: ["echo"] })
      const emit = client.open("exec", { argv: ["emit", String(size), String(i + 1)] })
      return { i, up, echo, emit }
    })
    await Promise.all(
      calls.map(async ({ i, up, echo, emit }) => {
        const send = (async () => {
          for (let off = 0; off < size; off += 50_000) await echo.stdin.write(up.slice(off, off + 50_000))
          echo.stdin.end()
        })()
        const [echoed, emitted] = await Promise.all([readAll(echo.stdout), readAll(emit.stdout), send])
        expect(Buffer.compare(echoed, up)).toBe(0)
        expect(Buffer.compare(emitted, pattern(size, i + 1))).toBe(0)
        expect((await echo.result).exitCode).toBe(0)
        expect((await emit.result).exitCode).toBe(0)
      }),
    )
    expect(probe.maxActive).toBeGreaterThanOrEqual(100) // echo and emit handlers all ran at once
    expect(agent.tracked()).toBe(0)
    client.close()
    await agent.ended
  })
})

describe("frame limits (each side sends what the other accepts)", () => {
  it("sends data in frames within the peer's limit: a client with a 4 KiB limit reads 1 MiB", async () => {
    const { client, agent } = await connected({ client: { maxFrame: 4096 } })
    const read = client.open("readFile", { path: "/abc", length: 1024 * 1024 })
    const body = await readAll(read.stdout)
    expect(await read.result).toEqual({ bytes: 1024 * 1024 })
    expect(Buffer.compare(body, pattern(1024 * 1024, 4))).toBe(0)
    client.close()
    await agent.ended
  })

  it("fails a result larger than the client's limit with EMSGSIZE, and the session goes on", async () => {
    const probe: Probe = { finalizers: 0, infoSize: 2 * 1024 * 1024 }
    const { client, agent } = await connected({ agent: { probe } })
    const error = await client.open("info", {}).result.catch((e) => e)
    expect(error).toMatchObject({ code: "EMSGSIZE" })
    expect(error.message).toMatch(
      /^info cannot send its result: a control message of \d+ bytes exceeds the 1048576-byte frame limit/,
    )
    expect(agent.tracked()).toBe(0)
    await expect(client.open("ping", {}).result).resolves.toEqual({})
    client.close()
    await agent.ended
  })

  it("fails a request larger than the agent's limit at once (EMSGSIZE), without sending it", async () => {
    const [a, b] = ByteStream.pair()
    const agent = startAgent(b, { maxFrame: 4096 })
    const wire = tap(a)
    const client = await Session.openClient(wire.stream)
    const before = wire.bytes().byteLength
    const error = await client.open("exec", { argv: ["echo", "x".repeat(10_000)] }).result.catch((e) => e)
    expect(error).toMatchObject({
      code: "EMSGSIZE",
      message: expect.stringContaining("4096-byte frame limit"),
    })
    expect(wire.bytes().byteLength).toBe(before)
    expect(client.engine.calls.size).toBe(0)
    await expect(client.open("ping", {}).result).resolves.toEqual({})
    client.close()
    await agent.ended
  })
})

describe("the cost of one operation", () => {
  /** A client and an agent over an in-memory pair, each side's writes counted after the handshake. */
  const counted = async (extra: Session.Handlers<never> = {}) => {
    const [a, b] = ByteStream.pair()
    const writes = { client: 0, agent: 0 }
    const count = (stream: ByteStream.ByteStream, side: "client" | "agent"): ByteStream.ByteStream => ({
      ...stream,
      write: (chunk) => (writes[side]++, stream.write(chunk)),
      writev: (chunks) => (writes[side]++, stream.writev!(chunks)),
    })
    const agentTap = tap(count(b, "agent"))
    const clientTap = tap(count(a, "client"))
    Session.startAgent(
      agentTap.stream,
      { identity, handlers: { ...handlers(), ...extra } },
      Runtime.defaultRuntime,
    )
    const client = await Session.openClient(clientTap.stream)
    const frames = (bytes: Uint8Array) => {
      const d = new Frame.Decoder(Constants.MAX_FRAME_CEILING)
      d.push(bytes)
      const out: Array<Frame.Frame> = []
      for (let r = d.next(); r; r = d.next()) if (r._tag === "Frame") out.push(r.frame)
      return out
    }
    const mark = () => {
      const at = { client: clientTap.bytes().byteLength, agent: agentTap.bytes().byteLength }
      const w = { ...writes }
      return () => ({
        client: frames(clientTap.bytes().subarray(at.client)),
        agent: frames(agentTap.bytes().subarray(at.agent)),
        writes: { client: writes.client - w.client, agent: writes.agent - w.agent },
      })
    }
    return { client, mark }
  }

  it("is one frame each way for a ping, each in one write", async () => {
    const { client, mark } = await counted()
    await client.open("ping", {}).result
    const since = mark()
    expect(await client.open("ping", {}).result).toEqual({})
    const { client: sent, agent: answered, writes } = since()
    expect(sent.map((f) => Frame.typeName(f.type))).toEqual(["Control"])
    expect(answered.map((f) => Frame.typeName(f.type))).toEqual(["Control"])
    expect(Messages.unpack(answered[0]!.payload, "reply")).toEqual(
      Messages.unpack(Messages.pack({ _tag: "Result", value: {} }), "reply"),
    )
    expect(writes).toEqual({ client: 1, agent: 1 })
    client.close()
  })

  it("fails with INTERNAL, and goes on serving, when a handler throws before returning its Effect", async () => {
    const { client } = await counted({
      stat: () => {
        throw new Error("no Effect here")
      },
    })
    const failed = await client.open("stat", { path: "/x" }).result.catch((e) => e)
    expect(failed).toMatchObject({ code: "INTERNAL", message: expect.stringMatching(/no Effect here/) })
    expect(await client.open("ping", {}).result).toEqual({})
    client.close()
  })

  it("answers an Effect.fail handler at once with its error, as a Failure", async () => {
    const { client, mark } = await counted({
      stat: () => Effect.fail(new AgentError({ code: "ENOENT", message: "no /x" })),
    })
    const since = mark()
    const failed = await client.open("stat", { path: "/x" }).result.catch((e) => e)
    expect(failed).toMatchObject({ code: "ENOENT", message: "no /x" })
    expect(since().agent.map((f) => Frame.typeName(f.type))).toEqual(["Control"])
    client.close()
  })

  it("answers pings at once while other calls run, and cancels those still", async () => {
    const probe: Probe = { finalizers: 0 }
    const { agent, client } = await connected({ agent: { probe } })
    const hang = client.open("exec", { argv: ["hang"] })
    const streaming = client.open("readFile", { path: "/big", length: 2_000_000 })
    const pings = await Promise.all(Array.from({ length: 100 }, () => client.open("ping", {}).result))
    expect(pings).toEqual(Array.from({ length: 100 }, () => ({})))
    expect(await hang.nextEvent()).toEqual({ _tag: "Started", pid: 42 })
    hang.cancel()
    await expect(hang.result).rejects.toMatchObject({ code: "CANCELLED" })
    expect((await readAll(streaming.stdout)).byteLength).toBe(2_000_000)
    expect(await streaming.result).toEqual({ bytes: 2_000_000 })
    expect(probe.finalizers).toBe(1)
    expect(agent.running()).toBe(0)
    client.close()
  })

  it("gives a call's channels, asked for only after it settled, as ended (input refused)", async () => {
    const { client } = await connected()
    const ping = client.open("ping", {})
    await ping.result
    expect((await readAll(ping.stdout)).byteLength).toBe(0)
    expect(await ping.stderr.read()).toBeUndefined()
    await expect(ping.stdin.write(new Uint8Array(1))).rejects.toMatchObject({ code: "DISCONNECTED" })
    const bad = client.open("stat", { path: 42 as never })
    await expect(bad.result).rejects.toMatchObject({ code: "EINVAL" })
    expect(await bad.stdout.read()).toBeUndefined()
    await expect(bad.stdin.write(new Uint8Array(1))).rejects.toMatchObject({ code: "EINVAL" })
    client.close()
  })
})

describe("cancellation", () => {
  it("frees a cancelled call's channels: no call left, writer unblocked, finalizer ran", async () => {
    const probe: Probe = { finalizers: 0 }
    const { client, agent } = await connected({ client: { window: 64 * 1024 }, agent: { probe } })
    const call = client.open("exec", { argv: ["emit", String(64 * 1024 * 1024)] })
    expect(await call.nextEvent()).toEqual({ _tag: "Started", pid: 42 })
    await sleep(50)
    expect(agent.running()).toBe(1)
    call.cancel()
    const error = await call.result.catch((e) => e)
    expect(error).toMatchObject({ code: "CANCELLED", message: "exec was cancelled" })
    await sleep(20)
    expect(probe.finalizers).toBe(1)
    expect(probe.writeFailure?.code).toBe("CANCELLED") // the writer blocked on credit got an error
    expect(agent.running()).toBe(0)
    expect(agent.tracked()).toBe(0)
    expect(client.engine.calls.size).toBe(0)
    // Reading the cancelled call's stdout drains what arrived and then ends.
    await readAll(call.stdout)
    await expect(client.open("ping", {}).result).resolves.toEqual({})
    client.close()
    await agent.ended
  })

  it("cancels every call when the client goes away", async () => {
    const probe: Probe = { finalizers: 0 }
    const { client, agent } = await connected({ agent: { probe } })
    const calls = Array.from({ length: 5 }, () => client.open("exec", { argv: ["hang"] }))
    await Promise.all(calls.map((c) => c.nextEvent()))
    client.close()
    for (const c of calls) await expect(c.result).rejects.toMatchObject({ code: "DISCONNECTED" })
    await agent.ended
    await sleep(10)
    expect(probe.finalizers).toBe(5)
    expect(agent.running()).toBe(0)
  })

  it("fails a request with invalid arguments at once, naming the field (EINVAL)", async () => {
    const { client, agent } = await connected()
    await expect(client.open("stat", { path: "" }).result).rejects.toMatchObject({
      code: "EINVAL",
      message: expect.stringContaining("path"),
    })
    expect(client.engine.calls.size).toBe(0)
    client.close()
    await agent.ended
  })
})

/** A client whose agent is a RawPeer that answered the hello and does nothing else unless told. */
const rawAgent = async (options: Session.ClientOptions = {}) => {
  const [a, b] = ByteStream.pair()
  const peer = new RawPeer(b)
  const agentSide = (async () => {
    await peer.next((f) => f.type === T.Hello)
    b.write(Constants.MAGIC)
    peer.send(T.Hello, 0, 0, Messages.encode(Handshake.Message, welcome))
  })()
  const client = await Session.openClient(a, options)
  await agentSide
  return { client, peer }
}

describe("liveness and closing", () => {
  effectIt.effect("measures a ping round trip: the time until the peer's Pong", () =>
    Effect.gen(function* () {
      const clock = yield* Effect.clock
      const { client, peer } = yield* Effect.promise(() => rawAgent({ clock }))
      const pinged = peer.next((f) => f.type === T.Ping)
      const rtt = client.ping()
      const ping = yield* Effect.promise(() => pinged)
      yield* TestClock.adjust("60 millis")
      peer.send(T.Pong, 0, 0, ping.payload)
      expect(yield* Effect.promise(() => rtt)).toBe(60)
      client.close()
      yield* Effect.promise(() => expect(client.ping()).rejects.toMatchObject({ code: "DISCONNECTED" }))
    }),
  )

  effectIt.effect("declares a silent peer dead with ETIMEDOUT after the default 20 s, probing first", () =>
    Effect.gen(function* () {
      const clock = yield* Effect.clock
      const { client, peer } = yield* Effect.promise(() => rawAgent({ clock }))
      const call = client.open("ping", {})
      const error = call.result.catch((e) => e)
      const pings = () => peer.frames.filter((f) => f.type === T.Ping).length
      yield* TestClock.adjust("4 seconds")
      yield* flush
      expect(pings()).toBe(0) // quiet for less than the keepalive interval: no probe yet
      for (let s = 4; s < 19; s++) yield* Effect.andThen(TestClock.adjust("1 second"), flush)
      expect(pings()).toBeGreaterThan(0) // probed after 5 s of silence
      expect(client.isClosed).toBe(false) // and still hoping at 19 s
      yield* Effect.andThen(TestClock.adjust("3 seconds"), flush)
      expect(yield* Effect.promise(() => error)).toMatchObject({
        code: "ETIMEDOUT",
        message: expect.stringContaining("the peer is gone"),
      })
      expect(yield* Effect.promise(() => client.ended)).toMatchObject({ code: "ETIMEDOUT" })
    }),
  )

  effectIt.effect("keeps a quiet but live session open for minutes (pings are answered)", () =>
    Effect.gen(function* () {
      const clock = yield* Effect.clock
      const { client, agent } = yield* Effect.promise(() =>
        connected({ client: { clock }, agent: { clock } }),
      )
      for (let s = 0; s < 120; s++) yield* Effect.andThen(TestClock.adjust("1 second"), flush)
      expect(client.isClosed).toBe(false)
      yield* Effect.promise(() => expect(client.open("ping", {}).result).resolves.toEqual({}))
      client.close()
      yield* Effect.promise(() => agent.ended)
    }),
  )

  it("fails pending calls with DISCONNECTED and the reason on GoAway", async () => {
    const { client, agent } = await connected()
    const call = client.open("exec", { argv: ["hang"] })
    await call.nextEvent()
    agent.close("the agent is restarting for an update")
    const error = await call.result.catch((e) => e)
    expect(error.code).toBe("DISCONNECTED")
    expect(error.message).toBe("the peer closed the session: the agent is restarting for an update")
    expect(await client.ended).toMatchObject({ code: "DISCONNECTED" })
    expect(() => client.open("ping", {})).toThrow(/closed/)
  })
})

describe("serial resynchronisation (resync streams)", () => {
  it("skips garbage before a new handshake", async () => {
    const [a, b] = ByteStream.pair()
    const agent = startAgent({ ...b, resync: true })
    a.write(new TextEncoder().encode("\r\nlogin: boot noise \x00\xff\xb5CUVET"))
    a.write(Frame.encode(T.Data, 1, 3, new Uint8Array(20)))
    const client = await Session.openClient(a)
    await expect(client.open("ping", {}).result).resolves.toEqual({})
    client.close()
    await agent.ended
  })

  it("serves a second client after the first left in the middle of a frame", async () => {
    const line = serialLine()
    const probe: Probe = { finalizers: 0 }
    const agent = startAgent(line.agent, { probe, resyncStallMs: 100 })
    const host1 = line.attach()
    const first = await Session.openClient(host1)
    const running = first.open("exec", { argv: ["echo"] })
    await running.nextEvent()
    // The first client sends half a data frame and vanishes.
    host1.write(Frame.encodeHeader(T.Data, 0, running.id, 60_000))
    host1.write(new Uint8Array(1000))
    host1.destroy()
    const host2 = line.attach()
    const second = await Session.openClient(host2, { handshakeTimeoutMs: 5000 })
    const echo = second.open("exec", { argv: ["echo"] })
    await echo.stdin.write(new Uint8Array([4, 5, 6]))
    echo.stdin.end()
    expect(Array.from(await readAll(echo.stdout))).toEqual([4, 5, 6])
    await expect(second.open("ping", {}).result).resolves.toEqual({})
    expect(probe.finalizers).toBeGreaterThanOrEqual(1) // the first client's call was torn down
    second.close()
    await agent.ended
  })

  effectIt.effect("answers a client whose repeated hellos queued up before the agent opened the port", () =>
    Effect.gen(function* () {
      // QEMU holds what the host writes until the guest opens the port; the client repeats its hello
      // every 2 s meanwhile, so the agent's first read holds several.
      const clock = yield* Effect.clock
      const line = serialLine()
      const pending = Session.openClient(line.attach(), { handshakeTimeoutMs: 20_000, clock })
      for (let s = 0; s < 5; s++) yield* Effect.andThen(TestClock.adjust("1 second"), flush)
      const agent = startAgent(line.agent, { clock })
      const client = yield* Effect.promise(() => pending)
      yield* Effect.promise(() => expect(client.open("ping", {}).result).resolves.toEqual({}))
      yield* Effect.promise(() => expect(client.open("ping", {}).result).resolves.toEqual({}))
      client.close()
      yield* Effect.promise(() => agent.ended)
    }),
  )

  it("a repeat of the answered hello arriving after the handshake is ignored: calls go on", async () => {
    const line = serialLine()
    const agent = startAgent(line.agent)
    const host = line.attach()
    const sent: Array<Uint8Array> = []
    const recording = { ...host, write: (c: Uint8Array) => (sent.push(c.slice()), host.write(c)) }
    const client = await Session.openClient(recording)
    const hello = concat(sent) // the magic and the hello frame, as the client repeats them
    const running = client.open("exec", { argv: ["echo"] })
    await running.nextEvent()
    host.write(hello)
    await running.stdin.write(new Uint8Array([7, 8]))
    running.stdin.end()
    expect(Array.from(await readAll(running.stdout))).toEqual([7, 8])
    await expect(running.result).resolves.toMatchObject({ exitCode: 0 })
    await expect(client.open("ping", {}).result).resolves.toEqual({})
    client.close()
    await agent.ended
  }, 10_000)

  it("a client that gets its Welcome again mid-session skips it: calls go on", async () => {
    // The agent's answer to a repeated hello (magic + Welcome again) reaching a client whose decoder
    // already reads frames: the magic's first bytes read as a header, 0xB5435556 bytes long.
    const [a, b] = ByteStream.pair()
    const peer = new RawPeer(b)
    const opening = Session.openClient({ ...a, resync: true })
    await peer.next((f) => f.type === T.Hello)
    const answer = concat([
      Constants.MAGIC,
      Frame.encode(T.Hello, 0, 0, Messages.encode(Handshake.Message, welcome)),
    ])
    b.write(answer)
    const client = await opening
    b.write(answer)
    const ping = client.open("ping", {})
    expect(await peer.reply(ping.id)).toMatchObject({ _tag: "Open", op: "ping" })
    peer.control(ping.id, { _tag: "Result", value: {} })
    await expect(ping.result).resolves.toEqual({})
    expect(client.isClosed).toBe(false)
    client.close()
  })

  it("on a connection a magic where a header belongs stays a protocol error", async () => {
    const { client, peer } = await rawAgent()
    const ping = client.open("ping", {})
    await peer.reply(ping.id)
    peer.stream.write(Constants.MAGIC)
    peer.send(T.Hello, 0, 0, Messages.encode(Handshake.Message, welcome))
    const report = await peer.next((f) => f.type === T.Error)
    expect(Messages.unpack(report.payload, "error")).toMatchObject({
      right: {
        code: "PROTOCOL",
        message: expect.stringMatching(/^frame of 3041088854 bytes \(type 0x45\) exceeds/),
      },
    })
    expect(ping.isSettled).toBe(false) // not taken for a Welcome: its bytes are skipped as a frame's
    client.close()
  })

  effectIt.effect(
    "the agent never answers the same hello twice, even after a stall restarted its handshake",
    () =>
      Effect.gen(function* () {
        const clock = yield* Effect.clock
        const line = serialLine()
        const agentTap = tap(line.agent)
        const agent = startAgent(agentTap.stream, { clock })
        const host = line.attach()
        const sent: Array<Uint8Array> = []
        const recording = { ...host, write: (c: Uint8Array) => (sent.push(c.slice()), host.write(c)) }
        const client = yield* Effect.promise(() => Session.openClient(recording, { clock }))
        const hello = concat(sent)
        // A frame the agent holds half of for longer than the stall timeout: it gives the client up.
        host.write(Frame.encodeHeader(T.Data, 0, 1, 1000))
        yield* flush
        yield* Effect.andThen(TestClock.adjust("2 seconds"), flush)
        // The client's repeat of its hello, sent before it had the answer, arrives late.
        host.write(hello)
        yield* flush
        yield* flush
        const magics = countOf(agentTap.bytes(), Constants.MAGIC)
        expect(magics).toBe(1)
        client.close()
        agent.close()
        yield* Effect.promise(() => agent.ended)
      }),
  )

  effectIt.effect(
    "an agent starved past the stall timeout does not give up a client whose bytes wait unread",
    () =>
      Effect.gen(function* () {
        // A starved guest runs its timers before it reads what arrived meanwhile: the stall check then
        // runs seconds late, and the rest of the frame is there to be read.
        const testClock = yield* Effect.clock
        const starved = { ms: 0 }
        const clock = {
          [Clock.ClockTypeId]: Clock.ClockTypeId,
          unsafeCurrentTimeMillis: () => testClock.unsafeCurrentTimeMillis() + starved.ms,
          unsafeCurrentTimeNanos: () => testClock.unsafeCurrentTimeNanos() + BigInt(starved.ms) * 1_000_000n,
          currentTimeMillis: Effect.sync(() => testClock.unsafeCurrentTimeMillis() + starved.ms),
          currentTimeNanos: Effect.sync(() => testClock.unsafeCurrentTimeNanos()),
          sleep: (d: Duration.Duration) => testClock.sleep(d),
        } as Clock.Clock
        const line = serialLine()
        const agent = startAgent(line.agent, { clock, keepaliveMs: 0 })
        const host = line.attach()
        const client = yield* Effect.promise(() => Session.openClient(host, { keepaliveMs: 0 }))
        const running = client.open("exec", { argv: ["echo"] })
        yield* Effect.promise(() => running.nextEvent())
        host.write(concat([Frame.encodeHeader(T.Data, 0, running.id, 4), new Uint8Array([1, 2])]))
        yield* flush
        starved.ms = 5_000
        yield* Effect.andThen(TestClock.adjust("1 second"), flush)
        expect(agent.running()).toBe(1) // the echo still runs: the session was not given up
        host.write(new Uint8Array([3, 4]))
        yield* flush
        running.stdin.end()
        const echoed = yield* Effect.promise(() => readAll(running.stdout))
        expect(Array.from(echoed)).toEqual([1, 2, 3, 4])
        yield* Effect.promise(() => expect(running.result).resolves.toMatchObject({ exitCode: 0 }))
        client.close()
        yield* Effect.promise(() => agent.ended)
      }),
  )

  it("serves a second client that arrives at a frame boundary (magic read as oversize)", async () => {
    const line = serialLine()
    const agent = startAgent(line.agent)
    const first = await Session.openClient(line.attach())
    await expect(first.open("ping", {}).result).resolves.toEqual({})
    const second = await Session.openClient(line.attach())
    await expect(second.open("ping", {}).result).resolves.toEqual({})
    second.close()
    await agent.ended
  })
})
