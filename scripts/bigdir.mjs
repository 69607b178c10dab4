#!/usr/bin/env node
/**
 * `npm run bigdir [-- --files N] [--size BYTES] [--list-only]`: one directory of N files (default
 * 1,000,000, empty) and the CLI's directory commands on it, against a Bun agent on a Unix socket (the built
 * CLI: `npm run build` first): `ls DIR | wc -l`, `ls -l DIR`, `cp -r :DIR host`, `cp -r host :DIR2` and
 * `rm -r :DIR2` (only the two listings with --list-only). For each,
 * the wall time and the peak RSS (VmHWM) of the CLI process and of the agent; every copy is checked
 * complete. Prints JSON.
 *
 * As root the files live on a tmpfs of their own, mounted in a private mount namespace (`unshare --mount`),
 * so three million inodes neither fill /dev/shm nor outlive the run; otherwise in a temp dir under
 * /dev/shm (or the system's).
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { parseArgs } from "node:util"

const root = path.resolve(import.meta.dirname, "..")
const BUN = path.join(root, "node_modules", "bun", "bin", "bun.exe")
const CLI = path.join(root, "packages", "cli", "bin", "cuvette.mjs")
const AGENT = path.join(root, "packages", "agent", "src", "bin.ts")

const { values } = parseArgs({
  options: {
    files: { type: "string", default: "1000000" },
    size: { type: "string", default: "0" },
    "list-only": { type: "boolean", default: false },
  },
})
const listOnly = values["list-only"]
const files = Number(values.files)
const size = Number(values.size)

// Root: re-run inside a private mount namespace, where a tmpfs mounted on the work dir vanishes with it.
if (process.getuid?.() === 0 && !process.env.CUVETTE_BIGDIR_NS) {
  const r = spawnSync(
    "unshare",
    ["--mount", "--propagation", "private", process.execPath, ...process.argv.slice(1)],
    { stdio: "inherit", env: { ...process.env, CUVETTE_BIGDIR_NS: "1" } },
  )
  process.exit(r.status ?? 1)
}

const base = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir()
const work = fs.mkdtempSync(path.join(base, "cuvette-bigdir-"))
if (process.env.CUVETTE_BIGDIR_NS) {
  // Three trees of N inodes, plus room; data pages only for non-empty files.
  const inodes = (listOnly ? 1 : 3) * files + 10_000
  const bytes = Math.max(64 * 1024 * 1024, 3 * files * Math.ceil(size / 4096) * 4096 * 2)
  const m = spawnSync("mount", ["-t", "tmpfs", "-o", `nr_inodes=${inodes},size=${bytes}`, "tmpfs", work])
  if (m.status !== 0) throw new Error(`mount tmpfs: ${m.stderr}`)
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const peakKiB = (pid) =>
  Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0)
/** Resets a process's VmHWM to its current RSS (Linux: clear_refs 5). */
const resetPeak = (pid) => fs.writeFileSync(`/proc/${pid}/clear_refs`, "5")
const mib = (kib) => Math.round((kib / 1024) * 10) / 10

// The CLI's peak, written as it exits (/proc no longer has it after).
const preload = path.join(work, "maxrss.mjs")
fs.writeFileSync(
  preload,
  `import * as fs from "node:fs"
process.on("exit", () => {
  const peak = /VmHWM:\\s+(\\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"))?.[1] ?? "0"
  fs.writeFileSync(process.env.CUVETTE_BIGDIR_MAXRSS, peak)
})
`,
)

/** Creates `dir` with `n` files named f0000000...; `size` bytes each. */
const populate = (dir, n) => {
  fs.mkdirSync(dir)
  const body = Buffer.alloc(size, 0x61)
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(dir, `f${String(i).padStart(7, "0")}`), body)
}

/** Names, sizes and modes of a host directory's files, counted; throws on the first difference. */
const compare = (a, b) => {
  const names = fs.readdirSync(a)
  const other = new Set(fs.readdirSync(b))
  if (names.length !== other.size) throw new Error(`${b}: ${other.size} entries, ${a}: ${names.length}`)
  for (const name of names) {
    const [sa, sb] = [fs.lstatSync(path.join(a, name)), fs.lstatSync(path.join(b, name))]
    if (sa.size !== sb.size || (sa.mode & 0o7777) !== (sb.mode & 0o7777))
      throw new Error(`${name} differs between ${a} and ${b}`)
  }
  return names.length
}

const startAgent = async (sock) => {
  const child = spawn(
    BUN,
    [
      "--conditions=@cuvette/source",
      AGENT,
      "--listen",
      `unix:${sock}`,
      "--allow",
      "stat,list,readFile,writeFile,mkdir,chmod,remove",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  )
  let log = ""
  child.stderr.on("data", (d) => (log = (log + d).slice(-100_000)))
  const deadline = Date.now() + 60_000
  while (!log.includes("CUVETTE READY")) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`agent did not start:\n${log}`)
    await sleep(50)
  }
  return child
}

/** One CLI run: wall time, the CLI's peak RSS, the agent's peak over the run, stdout's line count. */
const measure = async (agent, sock, args) => {
  const maxrss = path.join(work, "maxrss")
  resetPeak(agent.pid)
  const t0 = performance.now()
  const child = spawn(process.execPath, [CLI, "-H", `unix:${sock}`, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      NODE_OPTIONS: `--import=${preload}`,
      CUVETTE_BIGDIR_MAXRSS: maxrss,
    },
  })
  let lines = 0
  let stderr = ""
  child.stdout.on("data", (d) => {
    for (let i = d.indexOf(10); i !== -1; i = d.indexOf(10, i + 1)) lines++
  })
  child.stderr.on("data", (d) => (stderr = (stderr + d).slice(-10_000)))
  const code = await new Promise((r) => child.once("close", r))
  const seconds = (performance.now() - t0) / 1000
  if (code !== 0) throw new Error(`cuvette ${args.join(" ")} exited ${code}: ${stderr}`)
  return {
    command: `cuvette ${args.map((a) => a.replace(work, "$WORK")).join(" ")}`,
    seconds: Math.round(seconds * 100) / 100,
    perSecond: Math.round(files / seconds),
    cliPeakMiB: mib(Number(fs.readFileSync(maxrss, "utf8"))),
    agentPeakMiB: mib(peakKiB(agent.pid)),
    lines,
  }
}

const sock = path.join(work, "agent.sock")
const src = path.join(work, "src")
const host = path.join(work, "host")
const back = path.join(work, "back")
let agent
try {
  let t0 = performance.now()
  populate(src, files)
  const createSeconds = (performance.now() - t0) / 1000
  agent = await startAgent(sock)
  const agentStartMiB = mib(peakKiB(agent.pid))
  const steps = {}
  const step = async (name, args, check) => {
    const r = await measure(agent, sock, args)
    check(r)
    delete r.lines
    steps[name] = r
    // Each step as it completes, for a run stopped before the end.
    console.error(JSON.stringify({ step: name, ...r }))
  }
  const lines = (r) => {
    if (r.lines !== files) throw new Error(`${r.command} printed ${r.lines} lines, not ${files}`)
  }
  await step("ls", ["ls", src], lines)
  await step("lsLong", ["ls", "-l", src], lines)
  if (!listOnly) {
    await step("download", ["cp", "-r", `:${src}`, host], () => compare(src, host))
    await step("upload", ["cp", "-r", host, `:${back}`], () => compare(host, back))
    await step("remove", ["rm", "-r", `:${back}`], () => {
      if (fs.existsSync(back)) throw new Error(`${back} is still there after rm -r`)
    })
  }
  console.log(
    JSON.stringify(
      {
        files,
        fileBytes: size,
        runtime: `bun ${spawnSync(BUN, ["--version"]).stdout.toString().trim()}`,
        node: process.version,
        cpus: os.cpus().length,
        createSeconds: Math.round(createSeconds * 10) / 10,
        agentStartMiB,
        steps,
      },
      null,
      2,
    ),
  )
} finally {
  if (agent && agent.exitCode === null) {
    agent.kill("SIGKILL")
    await new Promise((r) => agent.once("exit", r))
  }
  if (process.env.CUVETTE_BIGDIR_NS) spawnSync("umount", [work])
  fs.rmSync(work, { recursive: true, force: true })
}
