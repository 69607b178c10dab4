#!/usr/bin/env node
/**
 * `npm run limits [-- scenario...] [--node] [--quick]`: the hostile cases of the agent's limits, measured on a
 * fresh agent each (Bun by default): the agent's peak memory, the healthy session's worst ping and
 * whether its pings and execs kept working. Prints one JSON line per scenario.
 *
 *   hello    one 1 MiB Hello whose features are a million integers (pre-auth)
 *   hello3   three of them in parallel
 *   flood    7,000 exec Opens in one write, the healthy session pinging every 10 ms
 *   pings    119 MiB of Pings whose Pongs are never read
 *   reads    5,000 readFile calls whose responses are never read
 *   channel  data on channels no call reads
 *   pending  500 connections that never finish their Hello (the agent's open fds counted)
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { runFromSources } from "./lib/sourceRun.mjs"

runFromSources(import.meta.url)

const H = await import("./lib/hostile.mjs")
const { Frame } = await import("@cuvette/protocol")
const T = Frame.FrameType

const args = process.argv.slice(2)
/** Smaller and shorter (the agent's tests): still far beyond what the limits allow. */
const quick = args.includes("--quick")

const bigHello = () => H.opening(H.hello({ features: new Array(1_000_000 - 100).fill(7) }))

const scenarios = {
  hello: async (agent) => attackHello(agent, 1),
  hello3: async (agent) => attackHello(agent, 3),
  flood: async (agent) => {
    const { socket } = await H.client(agent.sock)
    const opens = []
    for (let id = 1; id <= 7000; id++)
      opens.push(H.control(id, { _tag: "Open", op: "exec", args: { argv: ["true"] } }))
    socket.write(H.concat(opens))
    await H.sleep(15_000)
    socket.destroy()
  },
  pings: async (agent) => {
    const { socket } = await H.client(agent.sock)
    socket.pause()
    const batch = H.concat(new Array(65536).fill(H.frame(T.Ping, 0, new Uint8Array(8))))
    const total = (quick ? 48 : 119) * 1024 * 1024
    const started = Date.now()
    for (
      let sent = 0;
      sent < total && Date.now() - started < (quick ? 8000 : 20_000);
      sent += batch.byteLength
    )
      if (!(await Promise.race([H.writeAll(socket, batch), H.sleep(3000).then(() => "stuck")]))) break
    await H.sleep(2000)
    socket.destroy()
  },
  reads: async (agent) => {
    const file = path.join(agent.dir, "big")
    fs.writeFileSync(file, Buffer.alloc(8 * 1024 * 1024, 1))
    const { socket } = await H.client(agent.sock)
    socket.pause()
    const opens = []
    for (let id = 1; id <= 5000; id++)
      opens.push(H.control(id, { _tag: "Open", op: "readFile", args: { path: file } }))
    await H.writeAll(socket, H.concat(opens))
    await H.sleep(quick ? 4000 : 8000)
    socket.destroy()
  },
  channel: async (agent) => {
    // Execs whose stdin nobody reads (sleep), and data on every channel of them, as fast as it goes.
    const { socket } = await H.client(agent.sock)
    socket.pause()
    let closedByAgent = false
    socket.on("close", () => (closedByAgent = true))
    const chunk = new Uint8Array(256 * 1024)
    const started = Date.now()
    let sent = 0
    for (let id = 1; id <= 256 && !closedByAgent && Date.now() - started < (quick ? 6000 : 12_000); id++) {
      socket.write(
        H.control(id, { _tag: "Open", op: "exec", args: { argv: ["sleep", "30"], stdin: "pipe" } }),
      )
      for (let ch = 0; ch < 256 && !closedByAgent; ch += 1)
        for (let i = 0; i < 8 && !closedByAgent; i++) {
          if (
            !(await Promise.race([
              H.writeAll(socket, H.frame(T.Data, id, chunk, ch)),
              H.sleep(3000).then(() => false),
            ]))
          )
            break
          sent += chunk.byteLength
        }
    }
    await H.sleep(1000)
    socket.destroy()
    return { sentMiB: Math.round(sent / 2 ** 20), closedByAgent }
  },
  pending: async (agent) => {
    const sockets = []
    // A Hello within the pre-auth cap, cut short: each connection waits for the rest.
    const partial = H.opening().subarray(0, 40)
    for (let i = 0; i < 500; i++) {
      try {
        const s = await H.raw(agent.sock)
        s.on("error", () => {})
        s.write(partial)
        sockets.push(s)
      } catch {
        break
      }
    }
    await H.sleep(3000)
    const fds = agent.fds()
    for (const s of sockets) s.destroy()
    return { held: sockets.length, agentFds: fds }
  },
}

async function attackHello(agent, n) {
  const payload = bigHello()
  const sockets = await Promise.all(Array.from({ length: n }, () => H.raw(agent.sock)))
  const replies = sockets.map(
    (s) =>
      new Promise((resolve) => {
        let bytes = 0
        s.on("data", (d) => (bytes += d.byteLength))
        s.on("error", () => {})
        s.on("close", () => resolve(bytes))
      }),
  )
  for (const s of sockets) s.write(payload)
  const replyBytes = await Promise.race([Promise.all(replies), H.sleep(30_000).then(() => "no close")])
  for (const s of sockets) s.destroy()
  return { replyBytes }
}

const runtime = args.includes("--node") ? "node" : "bun"
const chosen = args.filter((a) => !a.startsWith("--"))
for (const name of chosen.length > 0 ? chosen : Object.keys(scenarios)) {
  const agent = await H.startAgent({ runtime })
  const { session } = await H.client(agent.sock)
  const idle = H.watch(session)
  await H.sleep(1000)
  const before = await idle.stop()
  const baseline = agent.memory().peakMiB
  const healthy = H.watch(session)
  const peakRss = H.sampleMax(() => agent.memory().rssMiB)
  const started = Date.now()
  const detail = await scenarios[name](agent)
  const elapsedMs = Date.now() - started
  await H.sleep(500)
  const watched = await healthy.stop()
  const peak = Math.max(peakRss(), agent.memory().peakMiB)
  const logBytes = agent.stderr().length
  console.log(
    JSON.stringify({
      scenario: name,
      runtime,
      agentAlive: agent.alive(),
      baselinePeakMiB: Math.round(baseline),
      peakMiB: Math.round(peak),
      idleWorstPingMs: +before.worstPingMs.toFixed(1),
      worstPingMs: +watched.worstPingMs.toFixed(1),
      p50PingMs: +watched.p50PingMs.toFixed(1),
      p99PingMs: +watched.p99PingMs.toFixed(1),
      pings: watched.pings,
      execs: watched.execs,
      failures: watched.failures.slice(0, 3),
      healthySessionOpen: !session.isClosed,
      agentLogBytes: logBytes,
      elapsedMs,
      ...detail,
    }),
  )
  session.close()
  await agent.stop()
}
process.exit(0)
