#!/usr/bin/env node
/**
 * The CLI's start time: whole-process wall time of `cuvette ping` against a local agent on a Unix socket, for the
 * single-file CLI (dist/cli/linux-x64/cuvette, `npm run build:cli`) and the npm CLI (node packages/cli/bin/cuvette.mjs).
 * `npm run bench` adds these rows to its table; run alone it builds what it needs and prints them:
 *
 *   node scripts/cli-start.mjs [--runs N]        (default 25)
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
export const singleFile = path.join(root, "dist/cli/linux-x64/cuvette")
export const npmCli = [process.execPath, path.join(root, "packages/cli/bin/cuvette.mjs")]

/** Median, min and max wall time in ms of `runs` runs of `argv` (after one untimed warm-up run). */
export const startTimes = (argv, runs) => {
  const once = () => {
    const t0 = performance.now()
    const r = spawnSync(argv[0], argv.slice(1), { stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" })
    if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status}: ${r.stderr}`)
    return performance.now() - t0
  }
  once()
  const xs = Array.from({ length: runs }, once).sort((a, b) => a - b)
  return { medianMs: xs[Math.floor(runs / 2)], minMs: xs[0], maxMs: xs[runs - 1], runs }
}

/** Both CLIs' `ping` start times against the agent at `target`. */
export const measure = (target, runs = 25) => ({
  singleFile: startTimes([singleFile, "-H", target, "ping"], runs),
  npm: startTimes([...npmCli, "-H", target, "ping"], runs),
})

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const runs = process.argv.includes("--runs") ? Number(process.argv[process.argv.indexOf("--runs") + 1]) : 25
  for (const [script, args] of [
    ["build-cli.mjs", ["--target", "linux-x64"]],
    ["build-agent.mjs", ["--target", "linux-x64"]],
  ]) {
    const r = spawnSync(process.execPath, [path.join(root, "scripts", script), ...args], { stdio: "inherit" })
    if (r.status !== 0) process.exit(1)
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-cli-start-"))
  const sock = path.join(dir, "agent.sock")
  const agent = spawn(path.join(root, "dist/agent/linux-x64/cuvette-agent"), ["--listen", `unix:${sock}`], {
    stdio: ["ignore", "ignore", "pipe"],
  })
  let log = ""
  agent.stderr.on("data", (d) => (log += d))
  try {
    while (!log.includes("CUVETTE READY")) {
      if (agent.exitCode !== null) throw new Error(`the agent exited: ${log}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    const m = measure(`unix:${sock}`, runs)
    const row = (name, t, target) =>
      console.log(
        `  ${name.padEnd(34)} median ${t.medianMs.toFixed(1).padStart(6)} ms  (min ${t.minMs.toFixed(1)}, max ${t.maxMs.toFixed(1)}, ${t.runs} runs)  target ≤ ${target} ms`,
      )
    console.log(`cuvette ping, whole process, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}:`)
    row("single file (dist/cli/linux-x64)", m.singleFile, 100)
    row(`npm CLI (node ${process.version})`, m.npm, 250)
  } finally {
    agent.kill("SIGKILL")
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
