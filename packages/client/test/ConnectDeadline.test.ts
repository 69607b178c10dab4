// Connecting is bounded by the caller's deadline (a silent port costs timeoutMs, not 10 s), retries
// follow the shared backoff, and an auth failure is never retried: it says once how to pass the token.
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as Client from "../src/Client.js"
import { isRetryable } from "../src/ConnectError.js"
import { agent } from "./fixtures/agent.js"

const count = (text: string, part: string) => text.split(part).length - 1
const cleanups: Array<() => unknown> = []
afterAll(async () => {
  for (const c of cleanups) await c()
})

/** A TCP port that accepts and then never says a word. */
const silentPort = async () => {
  const sockets: Array<net.Socket> = []
  const server = net.createServer((s) => void sockets.push(s))
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  cleanups.push(() => {
    for (const s of sockets) s.destroy()
    return new Promise((r) => server.close(r))
  })
  return (server.address() as net.AddressInfo).port
}

/** A TCP port nothing listens on. */
const refusedPort = async () => {
  const server = net.createServer()
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  const { port } = server.address() as net.AddressInfo
  await new Promise((r) => server.close(r))
  return port
}

describe("connect deadline", () => {
  it("a silent listening port fails with TIMEOUT when timeoutMs passes, not after 10 s", async () => {
    const port = await silentPort()
    const started = Date.now()
    const e = await Client.connect(`tcp:127.0.0.1:${port}`, { timeoutMs: 1000 }).catch((x) => x)
    const took = Date.now() - started
    expect(e).toMatchObject({ _tag: "ConnectError", reason: "TIMEOUT" })
    expect(took).toBeGreaterThanOrEqual(900)
    expect(took).toBeLessThan(2500)
    // One hint, the transport's: the handshake's own text states the fact only.
    expect(e.message).toMatch(
      /^cannot connect to tcp:127\.0\.0\.1:\d+: no handshake from tcp:127\.0\.0\.1:\d+ within [\d.]+ s \(is the agent running\? /,
    )
    expect(count(e.message, "?")).toBe(1)
  })

  it("wait on a refused port retries on the backoff (50, 100, 200 ms ...) and stops before the deadline", async () => {
    const port = await refusedPort()
    const retries: Array<number> = []
    const started = Date.now()
    const e = await Client.wait(`tcp:127.0.0.1:${port}`, {
      timeoutMs: 1000,
      onRetry: (n) => retries.push(n),
    }).catch((x) => x)
    const took = Date.now() - started
    // Attempts at ~0, 50, 150, 350, 750 ms; the next wait (800 ms) would pass the 1 s deadline.
    expect(e).toMatchObject({ reason: "REFUSED", attempts: 5 })
    expect(retries).toEqual([1, 2, 3, 4])
    expect(took).toBeLessThan(1000)
    expect(e.message).toContain("after 5 attempts")
  })

  it("an abort signal ends a wait at once with ABORTED", async () => {
    const port = await refusedPort()
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 200)
    const started = Date.now()
    const e = await Client.wait(`tcp:127.0.0.1:${port}`, {
      timeoutMs: 10_000,
      signal: controller.signal,
    }).catch((x) => x)
    expect(e).toMatchObject({ reason: "ABORTED" })
    expect(Date.now() - started).toBeLessThan(1000)
  })
})

describe("auth failures", () => {
  const start = async () => {
    const sock = path.join(
      os.tmpdir(),
      `cuvette-deny-${process.pid}-${Math.random().toString(36).slice(2)}.sock`,
    )
    const running = await (
      await agent
    ).start({ listen: [`unix:${sock}`], token: new TextEncoder().encode("s3cret") })
    cleanups.push(() => running.stop())
    return `unix:${sock}`
  }

  it("a missing token is DENIED, never retried, with one hint saying how to pass the token", async () => {
    const target = await start()
    const retries: Array<number> = []
    const e = await Client.wait(target, { timeoutMs: 3000, onRetry: (n) => retries.push(n) }).catch((x) => x)
    expect(e).toMatchObject({ _tag: "ConnectError", reason: "DENIED" })
    expect(isRetryable(e)).toBe(false)
    expect(retries).toEqual([])
    expect(e.message).toBe(
      `cannot connect to ${target}: the agent at ${target} requires a token (pass the agent's token with --token-file FILE or CUVETTE_TOKEN_FILE; in the library, the token or tokenFile option)`,
    )
  })

  it("a wrong token is DENIED with the same single hint", async () => {
    const target = await start()
    const e = await Client.connect(target, { token: new TextEncoder().encode("wrong") }).catch((x) => x)
    expect(e).toMatchObject({ reason: "DENIED" })
    expect(count(e.message, "--token-file")).toBe(1)
    expect(count(e.message, "CUVETTE_TOKEN_FILE")).toBe(1)
  })
})
