/**
 * Protocol benchmark (not a timed test): ping round trip and 1 GiB through one channel, in memory
 * and over a Unix socket with the agent in a child process, beside a raw Unix socket copy measured
 * in the same run and the same thread arrangement. Prints a table; writes reports/bench/protocol.json.
 *
 *   npm run bench:protocol            (BENCH_BYTES=268435456 for a quicker run)
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { fork } from "node:child_process"
import { ByteStream, Session } from "../src/index.js"
import { serve } from "./agent.js"

const GiB = 1024 * 1024 * 1024
const MiB = 1024 * 1024
const BYTES = Number(process.env.BENCH_BYTES ?? GiB)
const PINGS = Number(process.env.BENCH_PINGS ?? 5000)
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..")

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

const pingStats = async (client: Session.ClientSession) => {
  for (let i = 0; i < 200; i++) await client.open("ping", {}).result // warm-up
  const times: Array<number> = []
  for (let i = 0; i < PINGS; i++) {
    const t = performance.now()
    await client.open("ping", {}).result
    times.push((performance.now() - t) * 1000)
  }
  times.sort((a, b) => a - b)
  return { medianUs: quantile(times, 0.5), p99Us: quantile(times, 0.99) }
}

const download = async (client: Session.ClientSession, bytes = BYTES) => {
  const BYTES = bytes
  const t = performance.now()
  const call = client.open("readFile", { path: "/bench", length: BYTES })
  let n = 0
  for await (const chunk of call.stdout) n += chunk.byteLength
  await call.result
  if (n !== BYTES) throw new Error(`download got ${n} of ${BYTES} bytes`)
  return BYTES / MiB / ((performance.now() - t) / 1000)
}

const upload = async (client: Session.ClientSession, bytes = BYTES) => {
  const BYTES = bytes
  const chunk = new Uint8Array(256 * 1024).fill(0xa5) // never modified
  const t = performance.now()
  const call = client.open("writeFile", { path: "/bench" })
  for (let sent = 0; sent < BYTES; sent += chunk.byteLength) await call.stdin.write(chunk)
  call.stdin.end()
  const result = await call.result
  if (result.bytes !== BYTES) throw new Error(`upload delivered ${result.bytes} of ${BYTES} bytes`)
  return BYTES / MiB / ((performance.now() - t) / 1000)
}

const rawCopy = async (file: string) => {
  const socket = net.connect(file)
  const t = performance.now()
  let n = 0
  socket.on("data", (c) => (n += c.byteLength))
  await new Promise((resolve, reject) => socket.on("end", resolve).on("error", reject))
  if (n !== BYTES) throw new Error(`raw copy got ${n} of ${BYTES} bytes`)
  return BYTES / MiB / ((performance.now() - t) / 1000)
}

const main = async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-bench-"))
  const rawPath = path.join(dir, "raw.sock")
  const agentPath = path.join(dir, "agent.sock")
  const agent = fork(
    fileURLToPath(new URL("./agent.ts", import.meta.url)),
    [rawPath, agentPath, String(BYTES)],
    {
      execArgv: [
        "--import",
        "tsx",
        ...(process.env.BENCH_AGENT_ARGS ? process.env.BENCH_AGENT_ARGS.split(" ") : []),
      ],
      env: { ...process.env, BENCH_AGENT: "1" },
    },
  )
  await new Promise((resolve, reject) => agent.once("message", resolve).once("error", reject))

  // In memory: both sides in this thread (the pair delivers through microtasks).
  const [a, b] = ByteStream.pair()
  serve(b)
  const mem = await Session.openClient(a)
  const memPing = await pingStats(mem)
  const memDown = await download(mem)
  const memUp = await upload(mem)
  mem.close()

  // Unix socket: the agent in a child process.
  const raw1 = await rawCopy(rawPath)
  const socket = net.connect(agentPath)
  await new Promise((resolve) => socket.once("connect", resolve))
  const unix = await Session.openClient(ByteStream.fromDuplex(socket, { description: `unix:${agentPath}` }))
  const unixPing = await pingStats(unix)
  // Warm-up (JIT, socket buffers) in both directions: a cold first transfer ran at half speed.
  await download(unix, Math.min(BYTES, 128 * MiB))
  await upload(unix, Math.min(BYTES, 128 * MiB))
  const unixDown = await download(unix)
  const unixUp = await upload(unix)
  unix.close()
  const raw2 = await rawCopy(rawPath)
  const raw = Math.max(raw1, raw2)
  agent.kill()
  fs.rmSync(dir, { recursive: true, force: true })

  const size = BYTES >= GiB ? `${BYTES / GiB} GiB` : `${BYTES / MiB} MiB`
  const rows: Array<[string, string, string]> = [
    [
      "ping op, in memory (median / p99)",
      `${memPing.medianUs.toFixed(1)} µs / ${memPing.p99Us.toFixed(1)} µs`,
      "",
    ],
    [
      "ping op, Unix socket (median / p99)",
      `${unixPing.medianUs.toFixed(1)} µs / ${unixPing.p99Us.toFixed(1)} µs`,
      "target ≤ 100 µs (full stack)",
    ],
    [`${size} download, in memory`, `${memDown.toFixed(0)} MiB/s`, `${(memDown / raw).toFixed(2)}× raw`],
    [`${size} upload, in memory`, `${memUp.toFixed(0)} MiB/s`, `${(memUp / raw).toFixed(2)}× raw`],
    [`${size} download, Unix socket`, `${unixDown.toFixed(0)} MiB/s`, `${(unixDown / raw).toFixed(2)}× raw`],
    [`${size} upload, Unix socket`, `${unixUp.toFixed(0)} MiB/s`, `${(unixUp / raw).toFixed(2)}× raw`],
    [
      `${size} raw Unix socket copy (best of 2: ${raw1.toFixed(0)}, ${raw2.toFixed(0)})`,
      `${raw.toFixed(0)} MiB/s`,
      "1.00× raw",
    ],
  ]
  const w0 = Math.max(...rows.map((r) => r[0].length))
  const w1 = Math.max(...rows.map((r) => r[1].length))
  console.log(
    `Cuvette protocol benchmark — node ${process.version}, ${os.cpus()[0]?.model ?? "cpu"}; agent side in a child process for the Unix socket rows`,
  )
  for (const [k, v, n] of rows) console.log(`  ${k.padEnd(w0)}  ${v.padStart(w1)}  ${n}`)
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    bytes: BYTES,
    pings: PINGS,
    arrangement: "Unix socket rows: agent (and raw source) in a child process, client in this process",
    memory: { ping: memPing, downloadMiBs: memDown, uploadMiBs: memUp },
    unix: { ping: unixPing, downloadMiBs: unixDown, uploadMiBs: unixUp },
    rawUnixMiBs: raw,
    rawUnixRunsMiBs: [raw1, raw2],
    ratios: { unixDownloadVsRaw: unixDown / raw, unixUploadVsRaw: unixUp / raw },
  }
  fs.mkdirSync(path.join(root, "reports", "bench"), { recursive: true })
  fs.writeFileSync(
    path.join(root, "reports", "bench", "protocol.json"),
    JSON.stringify(report, null, 2) + "\n",
  )
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
