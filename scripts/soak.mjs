#!/usr/bin/env node
/**
 * `npm run soak [-- --execs N --gib G --node]`: one connection to a fresh agent (Bun by default)
 * runs thousands of execs and moves tens of GiB both ways (exec `head -c` down, `wc -c` up),
 * printing the agent's RSS at the start, the middle and the end, and how far it rose after the first
 * minute (sampled every second; the target is flat within 16 MiB of that minute). Not part of
 * `npm test`: it takes minutes. Defaults: 5,000 execs and 20 GiB.
 */
import { runFromSources } from "./lib/sourceRun.mjs"

runFromSources(import.meta.url)

const H = await import("./lib/hostile.mjs")
const argv = process.argv.slice(2)
const option = (name, fallback) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 ? Number(argv[i + 1]) : fallback
}
const EXECS = option("execs", 5000)
const GIB = option("gib", 20)
const runtime = argv.includes("--node") ? "node" : "bun"
const PIECE = 1 << 30 // each transfer moves 1 GiB

const agent = await H.startAgent({ runtime })
const { session } = await H.client(agent.sock)
const rss = (label) => {
  const m = agent.memory()
  console.log(`${label.padEnd(8)} agent RSS ${m.rssMiB.toFixed(0)} MiB (peak ${m.peakMiB.toFixed(0)} MiB)`)
  return m.rssMiB
}
const started = Date.now()
const readings = [rss("start")]
// RSS once a second: the level the first minute reached, and the highest reading after it.
let firstMinute = 0
let afterwards = 0
const sampler = setInterval(() => {
  const now = agent.memory().rssMiB
  if (Date.now() - started <= 60_000) firstMinute = Math.max(firstMinute, now)
  else afterwards = Math.max(afterwards, now)
}, 1000)

const execOnce = async () => {
  const call = session.open("exec", { argv: ["echo", "soak"] })
  let out = ""
  for await (const c of call.stdout) out += Buffer.from(c).toString()
  const r = await call.result
  if (r.exitCode !== 0 || out !== "soak\n")
    throw new Error(`exec: exit ${r.exitCode}, ${JSON.stringify(out)}`)
}
const download = async () => {
  const call = session.open("exec", { argv: ["head", "-c", String(PIECE), "/dev/zero"] })
  let n = 0
  for await (const c of call.stdout) n += c.byteLength
  await call.result
  if (n !== PIECE) throw new Error(`download: ${n} bytes, expected ${PIECE}`)
}
const upload = async () => {
  const call = session.open("exec", { argv: ["sh", "-c", "wc -c"], stdin: "pipe" })
  const chunk = new Uint8Array(256 * 1024)
  for (let sent = 0; sent < PIECE; sent += chunk.byteLength) await call.stdin.write(chunk)
  call.stdin.end()
  let out = ""
  for await (const c of call.stdout) out += Buffer.from(c).toString()
  await call.result
  if (Number(out.trim()) !== PIECE) throw new Error(`upload: the guest counted ${out.trim()} bytes`)
}

let moved = 0
let execs = 0
const steps = Math.max(EXECS, GIB)
for (let i = 0; i < steps; i++) {
  // Execs spread evenly between the transfers; transfers alternate down and up.
  for (; execs < Math.round(((i + 1) * EXECS) / steps); execs++) await execOnce()
  if (moved < GIB && (i * GIB) / steps >= moved) {
    await (moved % 2 === 0 ? download() : upload())
    moved++
  }
  if (i === Math.floor(steps / 2)) readings.push(rss("middle"))
}
for (; moved < GIB; moved++) await (moved % 2 === 0 ? download() : upload())
readings.push(rss("end"))
clearInterval(sampler)
const seconds = (Date.now() - started) / 1000
console.log(
  `${execs} execs and ${moved} GiB on one connection in ${seconds.toFixed(0)} s ` +
    `(${((moved * 1024) / seconds).toFixed(0)} MiB/s); RSS start/middle/end ${readings.map((r) => r.toFixed(0)).join("/")} MiB`,
)
const drift = afterwards - firstMinute
console.log(
  seconds > 60
    ? `RSS up to ${firstMinute.toFixed(0)} MiB in the first minute, up to ${afterwards.toFixed(0)} MiB after it ` +
        `(${drift >= 0 ? "+" : ""}${drift.toFixed(0)} MiB; flat means at most +16); peak ${agent.memory().peakMiB.toFixed(0)} MiB`
    : "the soak took less than a minute: no drift after its first minute to report",
)
session.close()
await agent.stop()
process.exit(0)
