/**
 * The agent under hostile input, on real Bun: each case of scripts/limits.mjs (a fresh agent each, a
 * healthy session pinging and exec'ing throughout) and a small seeded run of scripts/fuzz.mjs. Each
 * asserts the outcome: the agent up, the healthy session answering, memory and descriptors bounded.
 */
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const repo = fileURLToPath(new URL("../../../", import.meta.url))
const hasBun = fs.existsSync(path.join(repo, "node_modules", "bun", "bin", "bun.exe"))

interface Outcome {
  agentAlive: boolean
  healthySessionOpen: boolean
  failures: Array<string>
  baselinePeakMiB: number
  peakMiB: number
  worstPingMs: number
  replyBytes?: Array<number>
  agentFds?: number
  held?: number
}

// Asynchronous: a worker blocked in spawnSync for seconds cannot answer vitest's RPC, which then
// fails the whole run with "Timeout calling onTaskUpdate".
const run = async (script: string, args: ReadonlyArray<string>): Promise<Record<string, unknown>> => {
  const r = await promisify(execFile)(process.execPath, [path.join(repo, "scripts", script), ...args], {
    cwd: repo,
    encoding: "utf8",
    timeout: 120_000,
    maxBuffer: 64 * 1024 * 1024,
  }).catch((e: { stdout?: string; stderr?: string }) => ({
    stdout: e.stdout ?? "",
    stderr: e.stderr ?? String(e),
  }))
  const last = r.stdout.trim().split("\n").at(-1) ?? ""
  if (!last.startsWith("{")) throw new Error(`${script} printed no result:\n${r.stdout}\n${r.stderr}`)
  return JSON.parse(last) as Record<string, unknown>
}
const scenario = async (name: string) => (await run("limits.mjs", [name, "--quick"])) as unknown as Outcome

const healthy = (o: Outcome) => {
  expect(o.agentAlive).toBe(true)
  expect(o.healthySessionOpen).toBe(true)
  expect(o.failures).toEqual([])
}

describe.skipIf(!hasBun)("the Bun agent under hostile input", () => {
  it("refuses a 1 MiB Hello of a million integers at once: a short refusal, no memory", async () => {
    const o = await scenario("hello")
    healthy(o)
    expect(o.replyBytes).toEqual([148]) // the magic and a Refusal naming the limit; it used to be 1.5 MB
    expect(o.peakMiB - o.baselinePeakMiB).toBeLessThan(64) // it used to take 1.1 GiB
    expect(o.worstPingMs).toBeLessThan(1000) // the healthy session stalled 1.7 s
  }, 60_000)

  it("keeps at most its pending handshakes open: 500 half-open connections, the fds stay bounded", async () => {
    const o = await scenario("pending")
    healthy(o)
    expect(o.held).toBe(500)
    expect(o.agentFds).toBeLessThan(64 + 40)
  }, 60_000)

  it("stops reading a session that sends Pings and never reads the Pongs", async () => {
    const o = await scenario("pings")
    healthy(o)
    expect(o.peakMiB).toBeLessThan(300) // 119 MiB of them took it to 3.7 GiB
  }, 60_000)

  it("bounds 5,000 readFile calls whose data is never read", async () => {
    const o = await scenario("reads")
    healthy(o)
    expect(o.peakMiB).toBeLessThan(400) // 1.6 GiB before the open-call cap
  }, 60_000)

  it("bounds data sent on channels no operation reads", async () => {
    const o = await scenario("channel")
    healthy(o)
    expect(o.peakMiB).toBeLessThan(400) // 5 GiB sent took it to 5.3 GiB
  }, 60_000)

  it("survives a seeded fuzz run pre- and post-auth with the healthy session answering", async () => {
    const o = await run("fuzz.mjs", ["--frames", "2000", "--seed", "7", "--json"])
    expect(o).toMatchObject({ ok: true, agentAlive: true, healthySessionOpen: true, healthyFailures: [] })
    expect(o.frames).toBeGreaterThanOrEqual(2000)
  }, 120_000)
})
