#!/usr/bin/env node
/**
 * Latency and CPU per operation, each side: sequential `Agent.ping()` and `Agent.exec(["/bin/true"])`
 * against a running agent, with this process's CPU (process.cpuUsage) and the agent's (utime + stime
 * from /proc/PID/stat, so Linux only) divided by the count. CPU per op is steadier than wall time on a
 * shared machine. The client runs from TypeScript sources, as in `npm run bench`.
 *
 *   node scripts/op-cpu.mjs AGENT_PID unix:SOCK [PINGS=20000] [EXECS=300]
 */
import * as fs from "node:fs"
import { runFromSources } from "./lib/sourceRun.mjs"

runFromSources(import.meta.url)

const { Client } = await import("@cuvette/client")
const [pid, target, pings = "20000", execs = "300"] = process.argv.slice(2)
if (!pid || !target) {
  console.error("usage: node scripts/op-cpu.mjs AGENT_PID unix:SOCK [PINGS] [EXECS]")
  process.exit(2)
}

/** The agent's CPU so far, in µs (clock ticks of 10 ms: divide over thousands of operations). */
const agentCpuUs = () => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ")
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]

const measure = async (label, op, count) => {
  for (let i = 0; i < Math.min(2000, Math.ceil(count / 5)); i++) await op()
  const times = []
  const cpu = process.cpuUsage()
  const agent0 = agentCpuUs()
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    await op()
    times.push(performance.now() - t)
  }
  const used = process.cpuUsage(cpu)
  const agent = agentCpuUs() - agent0
  console.log(
    `${label}: median ${(median(times) * 1000).toFixed(1)} µs; CPU per op: client ${((used.user + used.system) / count).toFixed(1)} µs, agent ${(agent / count).toFixed(1)} µs`,
  )
}

const agent = await Client.connect(target)
if (Number(pings) > 0) await measure("ping", () => agent.ping(), Number(pings))
if (Number(execs) > 0) await measure("exec /bin/true", () => agent.exec(["/bin/true"]), Number(execs))
agent.session.close()
