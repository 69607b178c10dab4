/**
 * Listing a large directory with the agent on real Bun: the agent reads it as the client takes the
 * entries (Bun's own fs.opendir would read all of it on the first read), and the listing and a
 * recursive remove through that reader are complete.
 */
import type { Session } from "@cuvette/protocol"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { listAll, rssKiB } from "./fixtures/agent.js"
import { hasBun, type RunningAgent, runtimes, startAgent } from "./fixtures/runtimes.js"

const ENTRIES = 100_000
// tmpfs where there is one: a hundred thousand files are made in a second or two there.
const dir = fs.mkdtempSync(
  path.join(fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir(), "cuvette-bunlist-"),
)
const big = path.join(dir, "big")
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
let agent: RunningAgent
let s: Session.ClientSession

describe.skipIf(!hasBun)("a large directory, agent on Bun", { timeout: 60_000 }, () => {
  beforeAll(async () => {
    fs.mkdirSync(big)
    for (let i = 0; i < ENTRIES; i++) fs.closeSync(fs.openSync(path.join(big, `entry-${i}`), "w"))
    agent = await startAgent(runtimes.find((r) => r.name === "bun")!)
    s = await agent.connect()
  }, 60_000)
  afterAll(async () => {
    await s?.close()
    await agent?.stop()
  })

  it("a listing the client stops reading holds a window of entries in the agent, not the directory", async () => {
    const before = rssKiB(agent.proc.pid!)
    const call = s.open("list", { path: big })
    await call.stdout.read()
    // Time for an agent that reads ahead to read it all (Bun's opendir: ~25 MiB for these names).
    await new Promise((r) => setTimeout(r, 1500))
    const grewMiB = (rssKiB(agent.proc.pid!) - before) / 1024
    call.cancel()
    await call.result.catch(() => {})
    expect(grewMiB).toBeLessThan(12)
  })

  it("lists every entry once, then removes the tree", async () => {
    const { entries, count } = await listAll(s, big)
    expect(count).toBe(ENTRIES)
    const names = new Set(entries.map((e) => e.name))
    expect(names.size).toBe(ENTRIES)
    expect(names.has("entry-0") && names.has(`entry-${ENTRIES - 1}`) && !names.has(".")).toBe(true)
    await s.open("remove", { path: big, recursive: true }).result
    expect(fs.existsSync(big)).toBe(false)
  })
})
