#!/usr/bin/env node
/**
 * The local data paths, one at a time, against the Bun-compiled agent on a Unix socket: the library's
 * download and upload, and the CLI's `read > file`, `cp :guest host`, `write < file`, `cp host :guest`
 * and `exec -- cat FILE > file` as whole processes (start to exit). Each path moves PERF_BYTES
 * (default 1 GiB) PERF_RUNS times (default 3) and prints the median in MiB/s, then the agent's peak
 * RSS (VmHWM). A profiling aid beside `npm run bench`, not part of it.
 *
 *   node scripts/perf-paths.mjs [path ...]        (paths: download upload read cp-down write cp-up exec)
 *   PERF_DIR=/tmp node scripts/perf-paths.mjs     (files on disk instead of /dev/shm)
 *   PERF_AGENT=node node scripts/perf-paths.mjs   (the agent under Node + tsx instead of Bun)
 *   PERF_CLI_ARGS="--cpu-prof --cpu-prof-dir=DIR" (extra node flags for the CLI processes)
 *   PERF_SELF_ARGS="--cpu-prof ..."              (extra node flags for this process: the library rows)
 *   PERF_WRAP="strace -f -c -o FILE"              (a command the CLI processes run under)
 *   PERF_LISTEN=tcp | sealed                      (loopback TCP instead of the Unix socket; sealed:
 *                                                  with a token, every frame in AEAD records)
 *
 * The client is imported from TypeScript sources (PERF_BUILT=1: from its built dist/), the CLI is the
 * built bundle (packages/cli/dist).
 */
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const self = fileURLToPath(import.meta.url)
const root = path.resolve(path.dirname(self), "..")

// PERF_BUILT=1: the library from its built dist/ (as an npm user runs it) instead of the sources.
if (!process.env.CUVETTE_PERF_CHILD && !process.env.PERF_BUILT) {
  const r = spawnSync(
    process.execPath,
    [
      ...(process.env.PERF_SELF_ARGS ?? "").split(" ").filter(Boolean),
      "--conditions=@cuvette/source",
      "--import",
      "tsx",
      self,
      ...process.argv.slice(2),
    ],
    { stdio: "inherit", cwd: root, env: { ...process.env, CUVETTE_PERF_CHILD: "1" } },
  )
  process.exit(r.status ?? 1)
}

const { Client } = await import("@cuvette/client")

const MiB = 1024 * 1024
const BYTES = Number(process.env.PERF_BYTES ?? 1024 * MiB)
const RUNS = Number(process.env.PERF_RUNS ?? 3)
const ALL = ["download", "upload", "read", "cp-down", "write", "cp-up", "exec"]
const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ALL

// On tmpfs by default: on a disk the page cache's writeback throttling, not the data path, decides
// how fast a 1 GiB file is written (PERF_DIR=/tmp to include it).
const base = process.env.PERF_DIR ?? (fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir())
const dir = fs.mkdtempSync(path.join(base, "cuvette-perf-"))
const sock = path.join(dir, "agent.sock")
const source = path.join(dir, "source")
let agent
process.on("exit", () => {
  if (agent?.exitCode === null) agent.kill("SIGTERM")
  fs.rmSync(dir, { recursive: true, force: true })
})
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130))

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const mibs = (ms) => BYTES / MiB / (ms / 1000)

{
  const block = Buffer.alloc(MiB)
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i)
  const fd = fs.openSync(source, "w")
  for (let off = 0; off < BYTES; off += MiB) fs.writeSync(fd, block, 0, Math.min(MiB, BYTES - off))
  fs.closeSync(fd)
}

const agentCommand = () => {
  if (process.env.PERF_AGENT === "node")
    return [
      process.execPath,
      ["--conditions=@cuvette/source", "--import", "tsx", path.join(root, "packages/agent/src/bin.ts")],
    ]
  const built = spawnSync(
    process.execPath,
    [path.join(root, "scripts/build-agent.mjs"), "--target", "linux-x64"],
    {
      cwd: root,
      stdio: ["ignore", "ignore", "inherit"],
    },
  )
  if (built.status !== 0) throw new Error("could not build the Bun agent")
  return [path.join(root, "dist/agent/linux-x64/cuvette-agent"), []]
}

const listen = process.env.PERF_LISTEN ?? "unix"
const tokenFile = path.join(dir, "token")
fs.writeFileSync(tokenFile, "perf-paths-token\n")
const [cmd, cmdArgs] = agentCommand()
agent = spawn(
  cmd,
  [
    ...cmdArgs,
    "--listen",
    listen === "unix" ? `unix:${sock}` : "tcp:127.0.0.1:0",
    ...(listen === "sealed" ? ["--token-file", tokenFile] : []),
  ],
  { cwd: root, stdio: ["ignore", "ignore", "pipe"] },
)
let agentErr = ""
agent.stderr.on("data", (d) => (agentErr += d))
for (let until = Date.now() + 20_000; !agentErr.includes("CUVETTE READY"); ) {
  if (Date.now() > until || agent.exitCode !== null) throw new Error(`agent did not start: ${agentErr}`)
  await new Promise((r) => setTimeout(r, 20))
}
/** The agent's CPU seconds so far (utime + stime, from /proc). */
const agentCpu = () => {
  const f = fs.readFileSync(`/proc/${agent.pid}/stat`, "utf8").split(") ")[1].split(" ")
  return (Number(f[11]) + Number(f[12])) / 100
}
const vmHWM = () =>
  Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${agent.pid}/status`, "utf8"))[1]) / 1024

const target = listen === "unix" ? `unix:${sock}` : /serving on (tcp:127\.0\.0\.1:\d+)/.exec(agentErr)[1]
const tokenArgs = listen === "sealed" ? ["--token-file", tokenFile] : []
const cli = path.join(root, "packages/cli/bin/cuvette.mjs")
const cliFlags = (process.env.PERF_CLI_ARGS ?? "").split(" ").filter(Boolean)
/** A command the CLI runs under, for profiling: PERF_WRAP="strace -f -c -o /tmp/cp.strace". */
const wrap = (process.env.PERF_WRAP ?? "").split(" ").filter(Boolean)

/**
 * Runs the CLI (under /usr/bin/time for its CPU time) with stdin/stdout redirected to files; resolves
 * with its wall time in ms and its CPU seconds.
 */
const runCli = (args, { stdin, stdout } = {}) =>
  new Promise((resolve, reject) => {
    const inFd = stdin ? fs.openSync(stdin, "r") : "ignore"
    const outFd = stdout ? fs.openSync(stdout, "w") : "ignore"
    const started = performance.now()
    const child = spawn(
      "/usr/bin/time",
      ["-f", "CPU %U %S", ...wrap, process.execPath, ...cliFlags, cli, "-H", target, ...tokenArgs, ...args],
      { stdio: [inFd, outFd, "pipe"] },
    )
    let err = ""
    child.stderr.on("data", (d) => (err += d))
    child.on("exit", (code) => {
      const ms = performance.now() - started
      if (typeof inFd === "number") fs.closeSync(inFd)
      if (typeof outFd === "number") fs.closeSync(outFd)
      const cpu = /CPU ([\d.]+) ([\d.]+)/.exec(err)
      if (code !== 0) reject(new Error(`cuvette ${args.join(" ")} exited ${code}: ${err}`))
      else resolve({ ms, cpu: cpu ? Number(cpu[1]) + Number(cpu[2]) : NaN })
    })
  })

const out = path.join(dir, "out")
const guestOut = path.join(dir, "guest-out")
const checkSize = (file) => {
  const n = fs.statSync(file).size
  if (n !== BYTES) throw new Error(`${file} has ${n} bytes, expected ${BYTES}`)
}

const client = await Client.connect(target, listen === "sealed" ? { tokenFile } : {})
const timed = async (f) => {
  const started = performance.now()
  const cpu = process.cpuUsage()
  await f()
  const used = process.cpuUsage(cpu)
  return { ms: performance.now() - started, cpu: (used.user + used.system) / 1e6 }
}
const paths = {
  download: () => timed(() => client.download(source, out)).finally(() => checkSize(out)),
  upload: () => timed(() => client.upload(source, guestOut)).finally(() => checkSize(guestOut)),
  read: () => runCli(["read", source], { stdout: out }).finally(() => checkSize(out)),
  "cp-down": () => runCli(["cp", `:${source}`, out]).finally(() => checkSize(out)),
  write: () => runCli(["write", guestOut], { stdin: source }).finally(() => checkSize(guestOut)),
  "cp-up": () => runCli(["cp", source, `:${guestOut}`]).finally(() => checkSize(guestOut)),
  exec: () => runCli(["exec", "--", "cat", source], { stdout: out }).finally(() => checkSize(out)),
}

// Warm-up: the first transfer of a session runs at about half speed (docs/benchmarks.md).
await client.download(source, out)
await client.upload(source, guestOut)
const results = {}
for (const name of wanted) {
  const runs = []
  for (let i = 0; i < RUNS; i++) {
    const before = agentCpu()
    const r = await paths[name]()
    runs.push({ ...r, agentCpu: agentCpu() - before })
    fs.rmSync(out, { force: true })
    fs.rmSync(guestOut, { force: true })
  }
  // CPU seconds per GiB moved: steadier than wall time on a shared machine.
  const perGiB = (s) => (s * 1024 * MiB) / BYTES
  results[name] = {
    mibs: mibs(median(runs.map((r) => r.ms))),
    runs: runs.map((r) => Math.round(mibs(r.ms))),
    clientCpuPerGiB: perGiB(median(runs.map((r) => r.cpu))),
    agentCpuPerGiB: perGiB(median(runs.map((r) => r.agentCpu))),
  }
  const r = results[name]
  console.log(
    `${name.padEnd(9)} ${r.mibs.toFixed(0).padStart(6)} MiB/s  (${r.runs.join(", ")})  CPU s/GiB client ${r.clientCpuPerGiB.toFixed(2)} agent ${r.agentCpuPerGiB.toFixed(2)}`,
  )
}
await client.close()
console.log(`agent peak RSS ${vmHWM().toFixed(1)} MiB`)
if (process.env.PERF_JSON)
  fs.writeFileSync(process.env.PERF_JSON, JSON.stringify({ bytes: BYTES, results }, null, 2))
// The agent's stderr pipe would keep this process alive; the exit hook stops the agent.
process.exit(0)
