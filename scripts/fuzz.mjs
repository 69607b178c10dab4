#!/usr/bin/env node
/**
 * `npm run fuzz [-- --frames N --seed S --node --json]`: random, mutated and oversize frames, before
 * and after the handshake, from many connections, while a healthy session keeps checking ping and
 * exec. Fails unless the agent stays up, the healthy session never fails, and the agent's peak memory
 * stays under the bound. Seeded: the same seed sends the same bytes.
 *
 * Random input may name any operation, so the agent serves only exec and readFile (plus ping, info)
 * and, when this runs as root, runs as the unprivileged user nobody: random input never reaches
 * shutdown, crash, remove or mount, and nothing it execs can change the system.
 */
import { runFromSources } from "./lib/sourceRun.mjs"

runFromSources(import.meta.url)

const H = await import("./lib/hostile.mjs")
const { Constants, Frame, Messages } = await import("@cuvette/protocol")
const T = Frame.FrameType

const argv = process.argv.slice(2)
const option = (name, fallback) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? Number(argv[i + 1]) : fallback
}
const FRAMES = option("frames", 50_000)
const SEED = option("seed", 1)
const RSS_BOUND_MIB = option("rss", 400)
const runtime = argv.includes("--node") ? "node" : "bun"

/** mulberry32: small, seeded, good enough to pick mutations. */
let state = SEED >>> 0
const random = () => {
  state = (state + 0x6d2b79f5) >>> 0
  let t = state
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
const int = (n) => Math.floor(random() * n)
const pick = (xs) => xs[int(xs.length)]
const bytes = (n) => Uint8Array.from({ length: n }, () => int(256))

/** Flips, inserts, deletes and overwrites a few bytes. */
const mutate = (input) => {
  const out = Array.from(input)
  for (let k = 1 + int(4); k > 0; k--) {
    const at = int(out.length + 1)
    const how = int(4)
    if (how === 0 && out.length > 0) out[at % out.length] ^= 1 << int(8)
    else if (how === 1) out.splice(at, 0, int(256))
    else if (how === 2 && out.length > 0) out.splice(at % out.length, 1)
    else out[at % Math.max(1, out.length)] = pick([0, 0x7f, 0x80, 0xff, 0xc1, 0xdc, 0xdd, 0xde, 0xdf])
  }
  return Uint8Array.from(out)
}

const harmless = [
  { op: "ping", args: {} },
  { op: "info", args: {} },
  { op: "exec", args: { argv: ["true"] } },
  { op: "exec", args: { argv: ["echo", "fuzz"], stdin: "pipe" } },
  { op: "readFile", args: { path: "/proc/self/status" } },
  { op: "readFile", args: { path: "/dev/null", length: 10 } },
  { op: "stat", args: { path: "/" } },
  { op: "nosuchop", args: {} },
]
const controlPayload = () => {
  const template = pick(harmless)
  const kind = int(5)
  if (kind === 0) return Messages.pack({ _tag: "Open", ...template })
  if (kind === 1)
    return Messages.pack({ _tag: "Input", input: { _tag: "Signal", signal: pick(["SIGTERM", 9, "x"]) } })
  if (kind === 2)
    return Messages.pack({
      _tag: pick(["Open", "Bogus", 7]),
      op: template.op,
      args: pick([5, "x", [], null]),
    })
  if (kind === 3) return mutate(Messages.pack({ _tag: "Open", ...template }))
  return bytes(int(64))
}

/** One random frame (or an oversize header, or garbage) for a session that finished its handshake. */
const sessionFrame = () => {
  const call = pick([0, 1, 2, 3, 1 + int(50), int(2 ** 32)])
  const roll = int(20)
  if (roll === 0)
    return Frame.encodeHeader(int(12), int(4), call, Constants.DEFAULT_MAX_FRAME + 1 + int(1 << 24))
  if (roll === 1) return bytes(1 + int(40))
  if (roll === 2) return Frame.encode(T.Data, int(4), call, bytes(int(100_000)))
  const type = pick([
    T.Control,
    T.Control,
    T.Control,
    T.Data,
    T.Credit,
    T.Eof,
    T.Cancel,
    T.Ping,
    T.Pong,
    T.GoAway,
    T.Error,
    T.Hello,
    int(256),
  ])
  const payload =
    type === T.Control
      ? controlPayload()
      : type === T.Credit
        ? pick([bytes(4), bytes(int(8))])
        : type === T.Ping
          ? bytes(pick([8, 0, 100]))
          : type === T.Data
            ? bytes(int(4096))
            : type === T.Hello
              ? H.hello()
              : bytes(int(32))
  return Frame.encode(type, int(4), call, payload)
}

/** What a connection that has not finished its handshake sends. */
const preauth = () => {
  const roll = int(6)
  if (roll === 0) return bytes(int(200))
  if (roll === 1) return H.concat([Constants.MAGIC, mutate(Frame.encode(T.Hello, 0, 0, H.hello()))])
  if (roll === 2) return H.concat([Constants.MAGIC, Frame.encode(T.Hello, 0, 0, mutate(H.hello()))])
  if (roll === 3)
    return H.concat([Constants.MAGIC, Frame.encodeHeader(T.Hello, 0, 0, 1 << 20), bytes(int(5000))])
  if (roll === 4) return H.concat([Constants.MAGIC, sessionFrame()])
  return H.opening(H.hello({ features: Array.from({ length: int(2000) }, () => int(100)) }))
}

const agent = await H.startAgent({ runtime, user: "nobody" })
const { session } = await H.client(agent.sock)
const healthy = H.watch(session, { everyMs: 20, execEveryMs: 200 })
const peak = H.sampleMax(() => agent.memory().rssMiB)
const counts = { frames: 0, preauthConnections: 0, sessions: 0, bytes: 0, closedByAgent: 0, replies: 0 }

/** A connection: sends its bytes, reads what comes back, and counts whether the agent closed it. */
const connection = async (handshake, frames) => {
  let socket
  try {
    socket = await H.raw(agent.sock)
  } catch {
    return
  }
  socket.on("error", () => {})
  let closed = false
  let welcomed
  const welcome = new Promise((r) => (welcomed = r))
  socket.on("data", (d) => ((counts.replies += d.byteLength), welcomed()))
  socket.on("close", () => ((closed = true), welcomed()))
  if (handshake) {
    socket.write(H.opening())
    await Promise.race([welcome, H.sleep(2000)])
    counts.sessions++
  } else counts.preauthConnections++
  for (let i = 0; i < frames.length && !closed; i++) {
    counts.frames++
    counts.bytes += frames[i].byteLength
    await Promise.race([H.writeAll(socket, frames[i]), H.sleep(1000)])
  }
  await H.sleep(20 + int(100))
  if (closed) counts.closedByAgent++
  socket.destroy()
}

const started = Date.now()
const rssAt = []
let nextReport = 0
while (counts.frames < FRAMES) {
  if (counts.frames >= nextReport) {
    rssAt.push(`${counts.frames}:${Math.round(agent.memory().rssMiB)}`)
    nextReport += Math.max(1000, Math.round(FRAMES / 5))
  }
  const batch = []
  for (let c = 0; c < 8 && counts.frames < FRAMES; c++) {
    const post = random() < 0.6
    const n = post ? 5 + int(60) : 1 + int(3)
    const frames = Array.from({ length: n }, () => (post ? sessionFrame() : preauth()))
    batch.push(connection(post, frames))
  }
  await Promise.all(batch)
}
await H.sleep(1000)
const watched = await healthy.stop()
const peakMiB = Math.max(peak(), agent.memory().peakMiB)
const summary = {
  seed: SEED,
  runtime,
  ...counts,
  seconds: Math.round((Date.now() - started) / 100) / 10,
  agentAlive: agent.alive(),
  peakMiB: Math.round(peakMiB),
  rssMiBAfterFrames: rssAt.join(" "),
  rssBoundMiB: RSS_BOUND_MIB,
  healthyPings: watched.pings,
  healthyExecs: watched.execs,
  worstPingMs: Math.round(watched.worstPingMs),
  healthyFailures: watched.failures.slice(0, 5),
  healthySessionOpen: !session.isClosed,
}
session.close()
await agent.stop()
const ok =
  summary.agentAlive && summary.healthySessionOpen && watched.failures.length === 0 && peakMiB < RSS_BOUND_MIB
if (argv.includes("--json")) console.log(JSON.stringify({ ok, ...summary }))
else {
  for (const [k, v] of Object.entries(summary))
    console.log(`${k.padEnd(20)} ${Array.isArray(v) ? v.join("; ") : v}`)
  console.log(ok ? "fuzz: ok" : "fuzz: FAILED")
}
process.exit(ok ? 0 : 1)
