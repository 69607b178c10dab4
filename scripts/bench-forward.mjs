#!/usr/bin/env node
/**
 * Port forwarding figures: the throughput of one forwarded connection whose guest end is a Unix socket
 * (both directions, beside a raw Unix socket copy of the same bytes in the same run), and connections
 * per second through `agent.forward` (one after another, and 32 at a time). The agent runs in a child
 * process on a Unix socket (Bun from its sources by default, `--agent node` for Node + tsx); the "guest"
 * services and the host clients run in this process. Prints a table; writes reports/bench/forward.json.
 *
 *   node scripts/bench-forward.mjs [--agent bun|node]   (FORWARD_BYTES, FORWARD_CONNECTIONS override sizes)
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { runFromSources } from "./lib/sourceRun.mjs"

const self = fileURLToPath(import.meta.url)
const root = path.resolve(path.dirname(self), "..")

runFromSources(import.meta.url)

const { Client } = await import("@cuvette/client")

const MiB = 1024 * 1024
const BYTES = Number(process.env.FORWARD_BYTES ?? 512 * MiB)
const CONNECTIONS = Number(process.env.FORWARD_CONNECTIONS ?? 2000)
const PARALLEL = 32
const agentKind = process.argv.includes("--agent") ? process.argv[process.argv.indexOf("--agent") + 1] : "bun"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-bench-forward-"))
let agentProc
const cleanup = () => {
  if (agentProc?.exitCode === null) agentProc.kill("SIGKILL")
  fs.rmSync(dir, { recursive: true, force: true })
}
process.on("exit", cleanup)
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130))
const log = (...a) => console.error("bench-forward:", ...a)
const mibs = (bytes, ms) => bytes / MiB / (ms / 1000)

const startAgent = async () => {
  const sock = path.join(dir, "agent.sock")
  const entry = path.join(root, "packages/agent/src/bin.ts")
  const [cmd, args] =
    agentKind === "node"
      ? [process.execPath, ["--conditions=@cuvette/source", "--import", "tsx", entry]]
      : [path.join(root, "node_modules/bun/bin/bun.exe"), ["--conditions=@cuvette/source", entry]]
  agentProc = spawn(cmd, [...args, "--listen", `unix:${sock}`], { stdio: ["ignore", "ignore", "pipe"] })
  let err = ""
  await new Promise((resolve, reject) => {
    agentProc.stderr.on("data", (d) => {
      err += d
      if (err.includes("CUVETTE READY")) resolve()
    })
    agentProc.once("exit", (code) => reject(new Error(`agent exited ${code}: ${err}`)))
  })
  return `unix:${sock}`
}

const listen = (server, where) =>
  new Promise((resolve) => server.listen(where, () => resolve(server.address())))

/** A Unix socket service: `down` writes BYTES to each client; otherwise it counts what it reads and answers "ok". */
const unixService = async (name, mode) => {
  const file = path.join(dir, name)
  const chunk = Buffer.alloc(256 * 1024, 0x5a)
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on("error", () => {})
    if (mode === "down") {
      let left = BYTES
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, chunk.length)
          left -= n
          if (!s.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void s.once("drain", pump)
        }
        s.end()
      }
      pump()
    } else {
      let got = 0
      s.on("data", (d) => (got += d.length))
      s.on("end", () => s.end(got === BYTES ? "ok" : `got ${got}`))
    }
  })
  await listen(server, file)
  return { server, file }
}

/** One connection to `where`: sends `send` bytes (then half-closes), reads to the end; resolves the bytes read. */
const transfer = (where, send) =>
  new Promise((resolve, reject) => {
    const c = net.connect({ ...where, allowHalfOpen: true })
    let got = 0
    c.on("data", (d) => (got += d.length))
    c.on("end", () => resolve(got))
    c.on("error", reject)
    const chunk = Buffer.alloc(256 * 1024, 0xa5)
    let left = send
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length)
        left -= n
        if (!c.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void c.once("drain", pump)
      }
      c.end()
    }
    c.once("connect", pump)
  })

const timed = async (f) => {
  const t0 = performance.now()
  const value = await f()
  return { ms: performance.now() - t0, value }
}

const target = await startAgent()
const agent = await Client.connect(target)
log(`agent: ${agentKind}, ${BYTES / MiB} MiB per transfer, ${CONNECTIONS} connections`)

const down = await unixService("down.sock", "down")
const up = await unixService("up.sock", "up")
const rows = []
const row = (name, value, unit, note = "") => {
  rows.push({ name, value: Math.round(value * 10) / 10, unit, note })
  log(`${name}: ${value.toFixed(1)} ${unit} ${note}`)
}

// Raw: the same Unix socket services, no agent between.
const rawDown = await timed(() => transfer({ path: down.file }, 0))
const rawUp = await timed(() => transfer({ path: up.file }, BYTES))
for (const [fwdName, to] of [
  ["down", down.file],
  ["up", up.file],
]) {
  const fwd = await agent.forward({ listen: { port: 0 }, to: { _tag: "unix", path: to } })
  const port = Number(fwd.address.split(":").pop())
  const r = await timed(() => transfer({ host: "127.0.0.1", port }, fwdName === "down" ? 0 : BYTES))
  if (fwdName === "down" && r.value !== BYTES) throw new Error(`down: got ${r.value} bytes`)
  if (fwdName === "up" && r.value !== 2) throw new Error("up: the service did not confirm the bytes")
  const raw = fwdName === "down" ? rawDown : rawUp
  row(
    `one forwarded connection, ${fwdName === "down" ? "guest -> host" : "host -> guest"} (unix target)`,
    mibs(BYTES, r.ms),
    "MiB/s",
    `(raw unix socket ${mibs(BYTES, raw.ms).toFixed(0)} MiB/s, ratio ${(raw.ms / r.ms).toFixed(2)})`,
  )
  await fwd.close()
}

// Connections per second: a 1-byte echo per connection, through one forward on one session.
const echo = net.createServer({ allowHalfOpen: true }, (s) => {
  s.on("error", () => {})
  s.pipe(s)
})
await listen(echo, path.join(dir, "echo.sock"))
const fwd = await agent.forward({
  listen: { port: 0 },
  to: { _tag: "unix", path: path.join(dir, "echo.sock") },
})
const port = Number(fwd.address.split(":").pop())
const one = () =>
  transfer({ host: "127.0.0.1", port }, 1).then((n) => {
    if (n !== 1) throw new Error(`echo: got ${n} bytes`)
  })
const serial = await timed(async () => {
  for (let i = 0; i < CONNECTIONS; i++) await one()
})
row(
  "connections per second, one at a time",
  CONNECTIONS / (serial.ms / 1000),
  "conn/s",
  "(connect, 1 byte each way, close)",
)
const parallel = await timed(async () => {
  let next = 0
  await Promise.all(
    Array.from({ length: PARALLEL }, async () => {
      while (next++ < CONNECTIONS) await one()
    }),
  )
})
row(
  `connections per second, ${PARALLEL} at a time`,
  CONNECTIONS / (parallel.ms / 1000),
  "conn/s",
  "(one session)",
)
await fwd.close()
echo.close()
down.server.close()
up.server.close()
await agent.close()

const out = path.join(root, "reports/bench/forward.json")
fs.mkdirSync(path.dirname(out), { recursive: true })
fs.writeFileSync(
  out,
  JSON.stringify(
    { agent: agentKind, bytes: BYTES, connections: CONNECTIONS, cpus: os.cpus().length, rows },
    null,
    2,
  ) + "\n",
)
console.log(
  [
    "",
    "| measurement | value | |",
    "|---|---|---|",
    ...rows.map((r) => `| ${r.name} | ${r.value} ${r.unit} | ${r.note} |`),
  ].join("\n"),
)
log(`wrote ${path.relative(root, out)}`)
// The agent's pipes would keep this process alive: the exit handler stops it.
process.exit(0)
