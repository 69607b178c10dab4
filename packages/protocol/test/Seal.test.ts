import { describe, expect, it } from "vitest"
import { ByteStream, Errors, Handshake, Seal, Session } from "../src/index.js"
import { type Probe, readAll, startAgent } from "./fixtures/agent.js"
import { attacks, execFrame, splitter, type Attack } from "./fixtures/relay.js"
import { concat, contains, pattern, RawPeer, rechunk, tap } from "./fixtures/streams.js"

const token = new TextEncoder().encode("s3cret-token-value")
const challenge = pattern(32, 1)
const nonce = pattern(32, 2)

describe("Seal records", () => {
  const client = Seal.deriveKeys(token, challenge, nonce, "client")
  const agent = Seal.deriveKeys(token, challenge, nonce, "agent")

  it("derives one key per direction, shared by both sides, fresh for each challenge and nonce", () => {
    expect(client.send).toEqual(agent.receive)
    expect(client.receive).toEqual(agent.send)
    expect(client.send).not.toEqual(client.receive)
    const other = Seal.deriveKeys(token, challenge, pattern(32, 3), "client")
    expect(other.send).not.toEqual(client.send)
    expect(Seal.deriveKeys(new TextEncoder().encode("other"), challenge, nonce, "client").send).not.toEqual(
      client.send,
    )
  })

  it("opens what was sealed whatever the read boundaries, and cuts long writes into bounded records", () => {
    const sealer = new Seal.Sealer(client.send)
    const opener = new Seal.Opener(agent.receive, "test")
    const writes = [pattern(10, 1), pattern(Seal.MAX_RECORD * 2 + 5, 2), pattern(1, 3)]
    const wire = concat(writes.flatMap((w) => sealer.seal([w.subarray(0, 3), w.subarray(3)])))
    const plain: Array<Uint8Array> = []
    for (let off = 0; off < wire.byteLength; off += 7_777) {
      const out = opener.open(wire.subarray(off, off + 7_777))
      if (out instanceof Errors.AgentError) throw out
      plain.push(...out)
    }
    expect(Buffer.compare(concat(plain), concat(writes))).toBe(0)
    // 10 B, three records for the long write (limit, limit, 5 + 3), 1 B.
    expect(wire.byteLength).toBe(concat(writes).byteLength + 5 * 20)
  })

  it("rejects a modified, replayed, reordered or foreign record, and everything after it", () => {
    const records = () => {
      const sealer = new Seal.Sealer(client.send)
      return [sealer.seal([pattern(100, 1)]), sealer.seal([pattern(100, 2)])].map(concat)
    }
    const [first, second] = records()
    const flipped = first!.slice()
    flipped[50]! ^= 1
    const foreign = concat(new Seal.Sealer(pattern(32, 9)).seal([pattern(100, 1)]))
    for (const wire of [[flipped], [first!, first!], [second!, first!], [foreign]]) {
      const opener = new Seal.Opener(agent.receive, "tcp:peer")
      const results = wire.map((r) => opener.open(r))
      const error = results.find((r) => r instanceof Errors.AgentError) as Errors.AgentError
      expect(error.code).toBe("PROTOCOL")
      expect(error.message).toMatch(/^sealed record #\d from tcp:peer failed authentication/)
      expect(opener.open(records()[0]!)).toBe(error)
    }
    const opener = new Seal.Opener(agent.receive, "tcp:peer")
    const huge = new Uint8Array(4)
    new DataView(huge.buffer).setUint32(0, Seal.MAX_RECORD + 1)
    expect((opener.open(huge) as Errors.AgentError).message).toContain(
      `announces ${Seal.MAX_RECORD + 1} bytes (the limit is ${Seal.MAX_RECORD})`,
    )
  })
})

/** A client stream whose outbound bytes pass an attacker first. */
const through = (stream: ByteStream.ByteStream, attack: Attack): ByteStream.ByteStream => {
  const push = splitter(attack, (bytes) => stream.write(bytes))
  return {
    ...stream,
    write: (chunk) => (push(chunk.slice()), true),
    writev: (chunks) => (chunks.forEach((c) => push(c.slice())), true),
  }
}

const sealedPair = (attack?: Attack, probe: Probe = { finalizers: 0 }) => {
  const [a, b] = ByteStream.pair()
  const wire = tap(attack ? through(a, attack) : a)
  const agent = startAgent(b, { token, seal: true, probe })
  return { agent, wire, open: () => Session.openClient(wire.stream, { token, seal: true }) }
}

describe("sealed sessions", () => {
  it("seal every frame after the handshake: operations work and no frame crosses in clear", async () => {
    const { agent, wire, open } = sealedPair()
    const client = await open()
    expect(client.welcome.features).toContain("seal")
    const up = pattern(3_000_000, 7)
    const echo = client.open("exec", { argv: ["echo", "marker-argv-in-clear"] })
    const writing = (async () => {
      for (let off = 0; off < up.byteLength; off += 100_000)
        await echo.stdin.write(up.slice(off, off + 100_000))
      echo.stdin.end()
    })()
    const [echoed] = await Promise.all([readAll(echo.stdout), writing])
    expect((await echo.result).exitCode).toBe(0)
    expect(Buffer.compare(echoed, up)).toBe(0)
    expect(await client.open("ping", {}).result).toEqual({})
    const sent = wire.bytes()
    expect(contains(sent, new TextEncoder().encode("marker-argv-in-clear"))).toBe(false)
    expect(contains(sent, up.subarray(1000, 1064))).toBe(false)
    client.close()
    await agent.ended
  })

  it("work whatever the read boundaries", async () => {
    const [a, b] = ByteStream.pair()
    const agent = startAgent(rechunk(b, [1, 3, 70_000]), { token, seal: true })
    const client = await Session.openClient(rechunk(a, [100_000]), { token, seal: true })
    const read = client.open("readFile", { path: "/x", length: 500_000 })
    expect((await readAll(read.stdout)).byteLength).toBe(500_000)
    client.close()
    await agent.ended
  })

  it("open a record that arrives in the same read as AuthOk, instead of misreading it as a frame", async () => {
    const [a, b] = ByteStream.pair()
    // The client's first two reads (magic, Welcome) pass; the rest (AuthOk, then the agent's first
    // keepalive Ping, sealed) is delivered as one read.
    const coalesced: ByteStream.ByteStream = {
      ...a,
      start: (sink) => {
        let reads = 0
        let held: Array<Uint8Array> = []
        a.start({
          data: (chunk) => {
            if (++reads <= 2) return sink.data(chunk)
            if (held.length === 0)
              setTimeout(() => {
                sink.data(concat(held))
                held = []
              }, 200)
            held.push(chunk)
          },
          end: sink.end,
        })
      },
    }
    const agent = startAgent(b, { token, seal: true, keepaliveMs: 20 })
    const client = await Session.openClient(coalesced, { token, seal: true })
    expect(await client.open("ping", {}).result).toEqual({})
    expect(client.isClosed).toBe(false)
    client.close()
    await agent.ended
  })

  for (const [name, attack] of Object.entries(attacks(0, execFrame(["hang"], 9)))) {
    it(`close on both sides when a relay ${name}, and what it sent never runs`, async () => {
      const probe: Probe = { finalizers: 0 }
      const { agent, open } = sealedPair(attack, probe)
      const client = await open()
      // Two calls leave in two records: #0 opens ping, #1 opens exec.
      const first = client.open("ping", {}).result.catch((e) => e)
      const second = client.open("exec", { argv: ["hang"] }).result.catch((e) => e)
      const agentError = await agent.ended
      expect(agentError?.code).toBe("PROTOCOL")
      expect(agentError?.message).toMatch(/sealed record #[01] from memory:b failed authentication/)
      const clientError = (await client.ended)!
      expect(clientError.message).toMatch(
        /peer closed the session: sealed record #[01] .* failed authentication/,
      )
      // Nothing the attacker sent ran; the agent stopped at the first record that did not open.
      expect(probe.maxActive ?? 0).toBe(0)
      expect(Errors.isAgentError(await second)).toBe(true)
      await first
    })
  }
})

describe("sealing is negotiated", () => {
  it("an agent that seals refuses a client without the feature, clearly", async () => {
    const [a, b] = ByteStream.pair()
    const agent = startAgent(b, { token, seal: true })
    const old = new RawPeer(a)
    const refusal = (await old.handshake({
      features: ["keepalive", "resync", "auth", "cancel"],
    })) as unknown as {
      _tag: string
      code: string
      message: string
    }
    expect(refusal).toMatchObject({ _tag: "Refusal", code: "UNSUPPORTED" })
    expect(refusal.message).toMatch(/this agent seals its sessions on memory:b and the client cannot/)
    expect((await agent.ended)?.code).toBe("UNSUPPORTED")
  })

  it("a client that insists on sealing refuses an agent that does not seal, or asks no token", async () => {
    for (const agentToken of [token, undefined]) {
      const [a, b] = ByteStream.pair()
      startAgent(b, agentToken ? { token: agentToken } : {})
      const error = await Session.openClient(a, { token, seal: true }).catch((e) => e)
      expect(error.code).toBe("UNSUPPORTED")
      expect(error.message).toMatch(
        agentToken
          ? /does not seal the session/
          : /does not ask for the token, so the session cannot be sealed/,
      )
    }
  })

  it("without the option neither side seals, and the client still seals for an agent that asks", async () => {
    const [a, b] = ByteStream.pair()
    const wire = tap(a)
    startAgent(b, { token })
    const client = await Session.openClient(wire.stream, { token })
    expect(client.welcome.features).not.toContain("seal")
    await client.open("exec", { argv: ["emit", "0", "visible-argv"] }).result
    expect(contains(wire.bytes(), new TextEncoder().encode("visible-argv"))).toBe(true)
    client.close()
    const [c, d] = ByteStream.pair()
    startAgent(d, { token, seal: true })
    const sealed = await Session.openClient(c, { token })
    expect(sealed.welcome.features).toContain("seal")
    expect(await sealed.open("ping", {}).result).toEqual({})
    sealed.close()
  })

  it("offers the feature in every hello", () => {
    expect(Handshake.FEATURES).toContain(Seal.FEATURE)
  })
})
