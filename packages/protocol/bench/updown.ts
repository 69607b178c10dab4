/**
 * Focused upload/download comparison over a Unix socket (agent in a child process), repeated, for
 * profiling the data path: `node --import tsx packages/protocol/bench/updown.ts [MiB] [rounds]`.
 * BENCH_AGENT_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the agent child.
 */
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { fork } from "node:child_process"
import { ByteStream, Session } from "../src/index.js"

const MiB = 1024 * 1024
const BYTES = Number(process.argv[2] ?? 256) * MiB
const ROUNDS = Number(process.argv[3] ?? 3)

const main = async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-updown-"))
  const agentPath = path.join(dir, "agent.sock")
  const agent = fork(
    fileURLToPath(new URL("./agent.ts", import.meta.url)),
    [path.join(dir, "raw.sock"), agentPath, String(BYTES)],
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
  const socket = net.connect(agentPath)
  await new Promise((resolve) => socket.once("connect", resolve))
  const client = await Session.openClient(ByteStream.fromDuplex(socket, { description: "unix:bench" }))
  const chunk = new Uint8Array(256 * 1024).fill(0xa5)
  const up: Array<number> = []
  const down: Array<number> = []
  const upCpu: Array<number> = []
  for (let r = 0; r < ROUNDS; r++) {
    let t = performance.now()
    const cpu0 = process.cpuUsage()
    const w = client.open("writeFile", { path: "/bench" })
    for (let sent = 0; sent < BYTES; sent += chunk.byteLength) await w.stdin.write(chunk)
    w.stdin.end()
    await w.result
    up.push(BYTES / MiB / ((performance.now() - t) / 1000))
    const c1 = process.cpuUsage(cpu0)
    upCpu.push((c1.user + c1.system) / 1000)
    if (process.env.UPDOWN_MODE === "up") continue
    t = performance.now()
    const rd = client.open("readFile", { path: "/bench", length: BYTES })
    for await (const c of rd.stdout) void c
    await rd.result
    down.push(BYTES / MiB / ((performance.now() - t) / 1000))
  }
  client.close()
  agent.kill()
  await new Promise((r) => agent.once("exit", r))
  fs.rmSync(dir, { recursive: true, force: true })
  const f = (xs: Array<number>) => xs.map((x) => x.toFixed(0)).join(" ")
  console.log(`upload MiB/s: ${f(up)} (sender CPU ms: ${f(upCpu)})  |  download MiB/s: ${f(down)}`)
}

void main().then(() => process.exit(0))
