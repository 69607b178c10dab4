/**
 * CPU per ping operation with both sides in one thread over the in-memory pair: the protocol's own
 * work (frames, msgpack, schemas, calls), without sockets or syscalls. Best of 5 rounds.
 *
 *   node --import tsx packages/protocol/bench/ping-cpu.ts [N=50000]
 *   bun packages/protocol/bench/ping-cpu.ts [N]
 */
import { ByteStream, Session } from "../src/index.js"
import { serve } from "./agent.js"

const N = Number(process.argv[2] ?? 50_000)
const [a, b] = ByteStream.pair()
serve(b)
const client = await Session.openClient(a)
for (let i = 0; i < 5000; i++) await client.open("ping", {}).result
const cpu: Array<number> = []
for (let r = 0; r < 5; r++) {
  const c = process.cpuUsage()
  for (let i = 0; i < N; i++) await client.open("ping", {}).result
  const d = process.cpuUsage(c)
  cpu.push((d.user + d.system) / N)
}
console.log(`ping op in memory, both sides, CPU per op (best of 5): ${Math.min(...cpu).toFixed(2)} µs`)
client.close()
