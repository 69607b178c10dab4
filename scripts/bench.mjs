#!/usr/bin/env node
/**
 * `npm run bench`: Cuvette against the QEMU guest agent (`qemu-ga -m unix-listen`), a raw Unix socket
 * copy in Node and the kernel's own ceiling (scripts/bench-ceiling.mjs), on this machine, in one run: the
 * library, the CLI's data paths as whole processes (scripts/bench-cli.mjs), ping, exec and the agent's RSS.
 * Prints a table with ratios and the targets stated in docs/benchmarks.md; writes
 * reports/bench/bench.json and redraws docs/benchmarks.svg (scripts/bench-chart.mjs). Also runs the
 * Cuvette rows through a hybrid vsock relay and over (sealed) TCP, and times `cuvette ping` as whole
 * processes (scripts/cli-start.mjs).
 *
 *   npm run bench        (BENCH_BYTES / BENCH_QGA_BYTES override the sizes, BENCH_DIR the files' place)
 *
 * The client is imported from TypeScript sources, so the script re-executes itself with
 * `--conditions=@cuvette/source --import tsx` when started without them.
 */
import { spawn, spawnSync } from "node:child_process"
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
const CliStart = await import("./cli-start.mjs")
const Ceiling = await import("./bench-ceiling.mjs")
const CliPaths = await import("./bench-cli.mjs")
const Chart = await import("./bench-chart.mjs")

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const BYTES = Number(process.env.BENCH_BYTES ?? GiB)
const QGA_BYTES = Number(process.env.BENCH_QGA_BYTES ?? 64 * MiB)
const PINGS = Number(process.env.BENCH_PINGS ?? 2000)
const EXECS = Number(process.env.BENCH_EXECS ?? 200)
const CONCURRENT = 64

// In RAM by default: every row writes GiBs of files, and this machine's disk writeback would set their pace.
const defaultDir = fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir()
const dir = fs.mkdtempSync(path.join(process.env.BENCH_DIR ?? defaultDir, "cuvette-bench-"))
const children = []
const log = (...a) => console.error("bench:", ...a)
const size = (n) => (n >= GiB ? `${n / GiB} GiB` : `${n / MiB} MiB`)
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const mibs = (bytes, ms) => bytes / MiB / (ms / 1000)

const cleanup = () => {
  for (const c of children) if (c.exitCode === null && c.pid) c.kill("SIGTERM")
  fs.rmSync(dir, { recursive: true, force: true })
}
process.on("exit", cleanup)
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130))

const waitFor = async (check, what, ms = 20_000) => {
  const until = Date.now() + ms
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

// ---- setup

const setup = spawnSync("bash", [path.join(root, "scripts/setup-system.sh")], { stdio: "inherit" })
if (setup.status !== 0) log("setup-system.sh failed; going on with what is installed")

/** A file of `n` bytes (incompressible-ish: one random MiB repeated). */
const makeFile = (file, n) => {
  const block = Buffer.alloc(MiB)
  for (let i = 0; i < block.length; i += 4) block.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i)
  const fd = fs.openSync(file, "w")
  for (let off = 0; off < n; off += MiB) fs.writeSync(fd, block, 0, Math.min(MiB, n - off))
  fs.closeSync(fd)
}

// The agent measured is the one that ships: the Bun-compiled executable (built here in ~1 s, offline).
// `--agent node` measures it under Node + tsx instead, as the tests run it.
const agentKind = process.argv.includes("--agent") ? process.argv[process.argv.indexOf("--agent") + 1] : "bun"
const agentCommand = () => {
  if (agentKind === "node") {
    return [
      process.execPath,
      ["--conditions=@cuvette/source", "--import", "tsx", path.join(root, "packages/agent/src/bin.ts")],
    ]
  }
  const exe = path.join(root, "dist/agent/linux-x64/cuvette-agent")
  const built = spawnSync(
    process.execPath,
    [path.join(root, "scripts/build-agent.mjs"), "--target", "linux-x64"],
    { cwd: root, stdio: ["ignore", "ignore", "inherit"] },
  )
  if (built.status !== 0 || !fs.existsSync(exe))
    throw new Error("could not build the Bun agent (npm run build:agent); try --agent node")
  return [exe, []]
}
let agentCmd

/** Starts the agent listening on `listen`; resolves with the process and the address it serves. */
const startAgent = async (listen, extra = []) => {
  agentCmd ??= agentCommand()
  const child = spawn(agentCmd[0], [...agentCmd[1], "--listen", listen, ...extra], {
    cwd: root,
    stdio: ["ignore", "ignore", "pipe"],
  })
  children.push(child)
  let err = ""
  child.stderr.on("data", (d) => (err += d))
  await waitFor(() => err.includes("CUVETTE READY") || child.exitCode !== null, "CUVETTE READY")
  if (child.exitCode !== null) throw new Error(`agent exited: ${err}`)
  return { child, address: /serving on ([^\s,]+)/.exec(err)?.[1] }
}

const vmHWM = (pid) => {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
  return m ? Number(m[1]) / 1024 : NaN
}

// A node child process: `raw` serves a file over a Unix socket; `relay` is a hybrid vsock relay.
const helperSource = `
const net = require("node:net"), fs = require("node:fs")
const [mode, listen, arg] = process.argv.slice(1)
const server = net.createServer((s) => {
  if (mode === "raw") {
    fs.createReadStream(arg, { highWaterMark: 1 << 20 }).pipe(s)
    return
  }
  let line = Buffer.alloc(0)
  const onData = (d) => {
    line = Buffer.concat([line, d])
    const nl = line.indexOf(10)
    if (nl < 0) return
    s.off("data", onData)
    s.pause()
    if (!/^CONNECT \\d+$/.test(line.subarray(0, nl).toString())) return s.destroy()
    const up = net.connect(arg, () => {
      s.write("OK 1\\n")
      if (nl + 1 < line.length) up.write(line.subarray(nl + 1))
      s.pipe(up).pipe(s)
      s.resume()
    })
    const done = () => { s.destroy(); up.destroy() }
    up.on("error", done).on("close", done); s.on("error", done).on("close", done)
  }
  s.on("data", onData)
})
server.listen(listen, () => console.log("ready"))
process.on("SIGTERM", () => process.exit(0))
`
const startHelper = async (mode, listen, arg) => {
  const child = spawn(process.execPath, ["-e", helperSource, mode, listen, arg], {
    stdio: ["ignore", "pipe", "inherit"],
  })
  children.push(child)
  let out = ""
  child.stdout.on("data", (d) => (out += d))
  await waitFor(() => out.includes("ready"), `${mode} helper`)
  return child
}

// ---- qemu-ga

class Qga {
  constructor(socket) {
    this.socket = socket
    this.buf = ""
    this.waiters = []
    socket.setEncoding("utf8")
    socket.on("data", (d) => {
      this.buf += d
      for (let nl = this.buf.indexOf("\n"); nl >= 0; nl = this.buf.indexOf("\n")) {
        const line = this.buf.slice(0, nl).trim()
        this.buf = this.buf.slice(nl + 1)
        if (!line) continue
        const w = this.waiters.shift()
        const msg = JSON.parse(line)
        if (msg.error) w?.reject(new Error(`qemu-ga: ${JSON.stringify(msg.error)}`))
        else w?.resolve(msg.return)
      }
    })
  }
  static async connect(sock) {
    const s = net.connect(sock)
    await new Promise((resolve, reject) => s.once("connect", resolve).once("error", reject))
    return new Qga(s)
  }
  call(execute, args) {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject })
      this.socket.write(JSON.stringify(args ? { execute, arguments: args } : { execute }) + "\n")
    })
  }
  async exec(pathName) {
    const { pid } = await this.call("guest-exec", { path: pathName, "capture-output": true })
    // Polled as tightly as qemu-ga allows: the next status request as soon as the answer arrives.
    for (;;) {
      const st = await this.call("guest-exec-status", { pid })
      if (st.exited) return st
    }
  }
  async readFile(file, n) {
    const fromBase64 = (s) => Buffer.from(s, "base64")
    const h = await this.call("guest-file-open", { path: file, mode: "r" })
    let got = 0
    for (;;) {
      const r = await this.call("guest-file-read", { handle: h, count: MiB })
      got += fromBase64(r["buf-b64"]).byteLength
      if (r.eof || r.count === 0) break
    }
    await this.call("guest-file-close", { handle: h })
    if (got !== n) throw new Error(`qemu-ga read ${got} of ${n} bytes`)
  }
  async writeFile(file, source) {
    const h = await this.call("guest-file-open", { path: file, mode: "w" })
    const fd = fs.openSync(source, "r")
    const buf = Buffer.alloc(4 * MiB)
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null)
      if (n === 0) break
      await this.call("guest-file-write", { handle: h, "buf-b64": buf.subarray(0, n).toString("base64") })
    }
    fs.closeSync(fd)
    await this.call("guest-file-close", { handle: h })
  }
  close() {
    this.socket.destroy()
  }
}

const startQga = async (sock) => {
  const state = path.join(dir, "qga-state")
  fs.mkdirSync(state)
  const child = spawn(
    "qemu-ga",
    ["-m", "unix-listen", "-p", sock, "-t", state, "-f", path.join(state, "qemu-ga.pid")],
    { stdio: ["ignore", "ignore", "pipe"] },
  )
  children.push(child)
  let err = ""
  child.stderr.on("data", (d) => (err += d))
  await waitFor(() => fs.existsSync(sock) || child.exitCode !== null, "qemu-ga socket")
  if (child.exitCode !== null) throw new Error(`qemu-ga exited: ${err}`)
  return child
}

// ---- measurements

const timeMs = async (f) => {
  const t = performance.now()
  await f()
  return performance.now() - t
}

const cuvettePing = async (agent, n = PINGS) => {
  for (let i = 0; i < 200; i++) await agent.ping()
  const xs = []
  for (let i = 0; i < n; i++) xs.push(await agent.ping())
  return median(xs) * 1000
}

const cuvetteCopy = async (agent, src, n) => {
  const down = path.join(dir, "down.bin")
  const up = path.join(dir, "up.bin")
  const readMs = await timeMs(() => agent.download(src, down))
  if (fs.statSync(down).size !== n) throw new Error("download size mismatch")
  fs.rmSync(down)
  const writeMs = await timeMs(() => agent.upload(src, up))
  if (fs.statSync(up).size !== n) throw new Error("upload size mismatch")
  fs.rmSync(up)
  return { readMiBs: mibs(n, readMs), writeMiBs: mibs(n, writeMs) }
}

const rawCopy = async (sock, n) => {
  const dest = path.join(dir, "raw.bin")
  const ms = await timeMs(async () => {
    const s = net.connect(sock)
    const out = fs.createWriteStream(dest, { highWaterMark: MiB })
    s.pipe(out)
    await new Promise((resolve, reject) => out.on("finish", resolve).on("error", reject))
  })
  if (fs.statSync(dest).size !== n) throw new Error("raw copy size mismatch")
  fs.rmSync(dest)
  return mibs(n, ms)
}

const main = async () => {
  const started = performance.now()
  const src = path.join(dir, "src.bin")
  const qsrc = path.join(dir, "qsrc.bin")
  log(`writing ${size(BYTES)} and ${size(QGA_BYTES)} source files in ${dir}`)
  makeFile(src, BYTES)
  makeFile(qsrc, QGA_BYTES)

  // Raw Unix socket copy: file -> socket (child process) -> file (this process).
  const rawSock = path.join(dir, "raw.sock")
  await startHelper("raw", rawSock, src)
  log("raw copy")
  const raw1 = await rawCopy(rawSock, BYTES)

  // Cuvette over a Unix socket; a fresh agent, so its VmHWM covers streaming, not the other rows.
  const agentSock = path.join(dir, "agent.sock")
  const { child: agentProc } = await startAgent(`unix:${agentSock}`)
  let agent = await Client.connect(`unix:${agentSock}`)
  const idleRssMiB = vmHWM(agentProc.pid)
  log("cuvette warm-up + 1 GiB read/write")
  const warm = path.join(dir, "warm.bin")
  makeFile(warm, 64 * MiB)
  await cuvetteCopy(agent, warm, 64 * MiB)
  const copy = await cuvetteCopy(agent, src, BYTES)
  const rssMiB = vmHWM(agentProc.pid)
  log("cuvette ping / exec")
  const ping = await cuvettePing(agent)
  log("cuvette ping as whole processes: the single-file CLI and the npm CLI")
  const built = spawnSync(
    process.execPath,
    [path.join(root, "scripts/build-cli.mjs"), "--target", "linux-x64"],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  )
  if (built.status !== 0) throw new Error("could not build the single-file CLI (npm run build:cli)")
  // measure() blocks this event loop for seconds (spawnSync), longer than the agent waits for a silent
  // client's answer to its keepalive: the library's connection is closed meanwhile and opened again.
  await agent.close()
  const start = CliStart.measure(`unix:${agentSock}`)
  agent = await Client.connect(`unix:${agentSock}`)
  for (let i = 0; i < 20; i++) await agent.exec(["/bin/true"])
  const execs = []
  for (let i = 0; i < EXECS; i++) execs.push(await timeMs(() => agent.exec(["/bin/true"])))
  const execMs = median(execs)
  const concMs = await timeMs(async () => {
    const rs = await Promise.all(Array.from({ length: CONCURRENT }, () => agent.exec(["/bin/true"])))
    if (rs.some((r) => r.exitCode !== 0)) throw new Error("a concurrent exec failed")
  })
  log(`CLI data paths, ${size(BYTES)} each, whole processes: the npm CLI and the single file`)
  const cli = await CliPaths.measure(
    { npm: CliStart.npmCli, singleFile: [CliStart.singleFile] },
    `unix:${agentSock}`,
    src,
    BYTES,
    dir,
    log,
  )
  const rssAfterCliMiB = vmHWM(agentProc.pid)
  const raw2 = await rawCopy(rawSock, BYTES)
  const raw = Math.max(raw1, raw2)
  log("kernel ceiling: sendfile over a socketpair")
  const ceiling = Ceiling.measure(Ceiling.prepare(dir), src, dir, BYTES)
  const kernel = ceiling.socketMiBs

  // Cuvette through a hybrid vsock relay (CONNECT <port> / OK 1, then spliced to the agent socket).
  const relaySock = path.join(dir, "relay.sock")
  await startHelper("relay", relaySock, agentSock)
  const hagent = await Client.connect(`hybrid:${relaySock}`)
  log("hybrid relay ping + 1 GiB read/write")
  const hping = await cuvettePing(hagent)
  await cuvetteCopy(hagent, warm, 64 * MiB)
  const hcopy = await cuvetteCopy(hagent, src, BYTES)
  await hagent.close()
  await agent.close()

  // Cuvette over loopback TCP: unsealed (no token) and sealed (a token: every frame in AEAD records),
  // each on a fresh agent with the same file; best of 2 alternating runs, as the machine's load varies.
  const tokenFile = path.join(dir, "token")
  fs.writeFileSync(tokenFile, "bench-token\n")
  const tcpAgent = async (extra, options) => {
    const { address } = await startAgent("tcp:127.0.0.1:0", extra)
    const tagent = await Client.connect(address, options)
    if (tagent.welcome.features.includes("seal") !== (options.tokenFile !== undefined))
      throw new Error(`${address}: the session is not sealed as expected`)
    await cuvetteCopy(tagent, warm, 64 * MiB)
    return tagent
  }
  log("tcp and sealed tcp 1 GiB read/write, twice each")
  const tcpAgents = [await tcpAgent([], {}), await tcpAgent(["--token-file", tokenFile], { tokenFile })]
  const tcpRuns = [[], []]
  for (let round = 0; round < 2; round++)
    for (const [i, a] of tcpAgents.entries()) tcpRuns[i].push(await cuvetteCopy(a, src, BYTES))
  for (const a of tcpAgents) await a.close()
  const best = (runs) => ({
    readMiBs: Math.max(...runs.map((r) => r.readMiBs)),
    writeMiBs: Math.max(...runs.map((r) => r.writeMiBs)),
  })
  const [tcp, sealed] = tcpRuns.map(best)

  // qemu-ga on a Unix socket.
  const qgaSock = path.join(dir, "qga.sock")
  await startQga(qgaSock)
  const qga = await Qga.connect(qgaSock)
  log("qemu-ga ping / exec / files")
  for (let i = 0; i < 200; i++) await qga.call("guest-ping")
  const qpings = []
  for (let i = 0; i < PINGS; i++) qpings.push(await timeMs(() => qga.call("guest-ping")))
  const qping = median(qpings) * 1000
  for (let i = 0; i < 5; i++) await qga.exec("/bin/true")
  const qexecs = []
  for (let i = 0; i < Math.min(EXECS, 100); i++) qexecs.push(await timeMs(() => qga.exec("/bin/true")))
  const qexecMs = median(qexecs)
  const qconcMs = await timeMs(async () => {
    for (let i = 0; i < CONCURRENT; i++) await qga.exec("/bin/true")
  })
  const qreadMs = await timeMs(() => qga.readFile(qsrc, QGA_BYTES))
  const qdest = path.join(dir, "qdest.bin")
  const qwriteMs = await timeMs(() => qga.writeFile(qdest, qsrc))
  if (fs.statSync(qdest).size !== QGA_BYTES) throw new Error("qemu-ga write size mismatch")
  qga.close()
  const q = {
    pingUs: qping,
    execMs: qexecMs,
    sequential64ExecMs: qconcMs,
    readMiBs: mibs(QGA_BYTES, qreadMs),
    writeMiBs: mibs(QGA_BYTES, qwriteMs),
  }
  const totalS = (performance.now() - started) / 1000

  // ---- table: one row per path; the targets (docs/benchmarks.md), ratios where a reference applies.
  const f0 = (x) => x.toFixed(0)
  const f1 = (x) => x.toFixed(1)
  const GiBs = 1024
  const rate = (path, cuvette, target, extra = {}) => ({
    path,
    unit: "MiB/s",
    cuvette,
    raw,
    kernel,
    target: `≥ ${target / GiBs} GiB/s`,
    targetMiBs: target,
    met: cuvette >= target,
    ...extra,
  })
  const cliRow = (cliName, key, target) => {
    const r = cli[cliName][key]
    const who = cliName === "npm" ? "npm CLI" : "single file"
    return rate(`${r.label}, ${who}`, r.miBs, target, {
      chartLabel: `${r.label.replace("CLI ", "")} (${who})`,
    })
  }
  const rows = [
    {
      path: "ping round trip (median)",
      unit: "µs",
      qemuGa: q.pingUs,
      cuvette: ping,
      hybrid: hping,
      target: "≤ 0.8× qemu-ga",
      met: ping <= 0.8 * q.pingUs,
    },
    {
      path: "exec /bin/true round trip (median)",
      unit: "ms",
      qemuGa: q.execMs,
      cuvette: execMs,
      target: "≤ qemu-ga",
      met: execMs <= q.execMs,
    },
    {
      path: "64 execs: Cuvette concurrent, qemu-ga sequential (wall)",
      unit: "ms",
      qemuGa: q.sequential64ExecMs,
      cuvette: concMs,
      target: "64 concurrent",
      met: true,
    },
    rate(
      `library download (file read), ${size(BYTES)}; qemu-ga ${size(QGA_BYTES)}`,
      copy.readMiBs,
      1.5 * GiBs,
      {
        qemuGa: q.readMiBs,
        hybrid: hcopy.readMiBs,
        chartLabel: "library download",
      },
    ),
    rate(
      `library upload (file write), ${size(BYTES)}; qemu-ga ${size(QGA_BYTES)}`,
      copy.writeMiBs,
      1.5 * GiBs,
      {
        qemuGa: q.writeMiBs,
        hybrid: hcopy.writeMiBs,
        chartLabel: "library upload",
      },
    ),
    ...["npm", "singleFile"].flatMap((c) => [
      cliRow(c, "readStdout", 1.5 * GiBs),
      cliRow(c, "cpDown", 1.5 * GiBs),
      cliRow(c, "writeStdin", 1.5 * GiBs),
      cliRow(c, "cpUp", 1.5 * GiBs),
      cliRow(c, "execCat", 1 * GiBs),
    ]),
    {
      path: `Node raw copy (file -> Unix socket -> file, 2 processes, best of 2)`,
      unit: "MiB/s",
      cuvette: raw,
      kernel,
      chartLabel: "Node raw copy",
      target: "",
      met: undefined,
    },
    {
      path: `kernel ceiling: sendfile -> socketpair -> read (${ceiling.tool}, best of 3)`,
      unit: "MiB/s",
      cuvette: kernel,
      target: "the ceiling",
      met: undefined,
    },
    {
      path: `  the same, received by splice into a file (best of 3)`,
      chartLabel: "kernel, into a file",
      unit: "MiB/s",
      cuvette: ceiling.fileMiBs,
      target: "",
      met: undefined,
    },
    {
      path: `cuvette ping, whole process, single file (median of ${start.singleFile.runs})`,
      unit: "ms",
      cuvette: start.singleFile.medianMs,
      target: "≤ 100 ms",
      met: start.singleFile.medianMs <= 100,
    },
    {
      path: `cuvette ping, whole process, npm CLI on node (median of ${start.npm.runs})`,
      unit: "ms",
      cuvette: start.npm.medianMs,
      target: "≤ 250 ms",
      met: start.npm.medianMs <= 250,
    },
    {
      path: `agent peak RSS (VmHWM) streaming ${size(BYTES)} each way`,
      unit: "MiB",
      cuvette: rssMiB,
      idle: idleRssMiB,
      target: "≤ 64 MiB",
      met: rssMiB <= 64,
    },
  ]
  for (const r of rows) {
    if (r.qemuGa !== undefined) r.vsQemuGa = r.cuvette / r.qemuGa
    if (r.raw !== undefined) r.vsRaw = r.cuvette / r.raw
    if (r.kernel !== undefined) r.vsKernel = r.cuvette / r.kernel
  }
  const value = (x, unit) =>
    x === undefined
      ? ""
      : `${(unit === "MiB/s" || unit === "ms") && x >= 100 ? f0(x) : unit === "ms" ? x.toFixed(2) : f1(x)} ${unit}`
  const ratio = (x) => (x === undefined ? "" : `${x.toFixed(2)}×`)
  const head = [
    "",
    "qemu-ga",
    "Cuvette",
    "Cuvette hybrid",
    "Node raw",
    "kernel",
    "÷qemu-ga",
    "÷raw",
    "÷kernel",
    "target",
    "met",
  ]
  const cells = [
    head,
    ...rows.map((r) => [
      r.path,
      value(r.qemuGa, r.unit),
      value(r.cuvette, r.unit) + (r.idle === undefined ? "" : ` (${f1(r.idle)} idle)`),
      value(r.hybrid, r.unit),
      value(r.raw, r.unit),
      value(r.kernel, r.unit),
      ratio(r.vsQemuGa),
      ratio(r.vsRaw),
      ratio(r.vsKernel),
      r.target,
      r.met === undefined ? "" : r.met ? "yes" : "NO",
    ]),
  ]
  const widths = head.map((_, i) => Math.max(...cells.map((r) => String(r[i]).length)))
  console.log(
    `Cuvette vs qemu-ga ${spawnSync("qemu-ga", ["-V"]).stdout?.toString().trim().split("\n")[0] ?? ""}` +
      ` — agent: ${agentKind === "node" ? "Node + tsx (--agent node)" : "Bun-compiled executable"}, host node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${totalS.toFixed(0)} s`,
  )
  for (const r of cells)
    console.log(
      "  " +
        r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join("  "),
    )
  const tcpCells = [
    [`loopback TCP, ${size(BYTES)} each way (best of 2)`, "file read", "file write"],
    ["Cuvette tcp", `${f0(tcp.readMiBs)} MiB/s`, `${f0(tcp.writeMiBs)} MiB/s`],
    ["Cuvette sealed tcp", `${f0(sealed.readMiBs)} MiB/s`, `${f0(sealed.writeMiBs)} MiB/s`],
    [
      "sealed/tcp",
      `${(sealed.readMiBs / tcp.readMiBs).toFixed(2)}×`,
      `${(sealed.writeMiBs / tcp.writeMiBs).toFixed(2)}×`,
    ],
  ]
  const tcpWidths = tcpCells[0].map((_, i) => Math.max(...tcpCells.map((r) => r[i].length)))
  for (const r of tcpCells)
    console.log(
      "  " + r.map((c, i) => (i === 0 ? c.padEnd(tcpWidths[i]) : c.padStart(tcpWidths[i]))).join("  "),
    )
  console.log(
    `  Node raw = best of 2 runs (${f0(raw1)}, ${f0(raw2)} MiB/s); kernel = sendfile over a socketpair (${ceiling.tool}), best of 3 (${ceiling.socketRunsMiBs.map(f0).join(", ")} MiB/s); ` +
      `qemu-ga files use ${size(QGA_BYTES)} (base64 JSON); hybrid = through a CONNECT/OK relay process; CLI rows = whole processes, files in ${path.dirname(dir)}; ` +
      `agent VmHWM after the CLI rows too: ${f1(rssAfterCliMiB)} MiB`,
  )

  // Port forwarding in its own process (its agent, its services): one connection's throughput and
  // connections per second; its table prints here and its figures join this report.
  log("port forwarding (scripts/bench-forward.mjs)")
  const { CUVETTE_SCRIPT_CHILD: _child, ...forwardEnv } = process.env
  await new Promise((resolve) =>
    spawn(process.execPath, [path.join(root, "scripts/bench-forward.mjs")], {
      stdio: "inherit",
      env: forwardEnv,
    }).on("exit", resolve),
  )
  const forwardFile = path.join(root, "reports", "bench", "forward.json")
  const forward = fs.existsSync(forwardFile) ? JSON.parse(fs.readFileSync(forwardFile, "utf8")) : undefined

  const report = {
    date: new Date().toISOString(),
    agent: agentKind === "node" ? "node+tsx" : "bun-compiled",
    node: process.version,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    seconds: totalS,
    bytes: BYTES,
    qgaBytes: QGA_BYTES,
    qemuGa: q,
    cuvette: {
      unix: {
        pingUs: ping,
        execMs,
        concurrent64ExecMs: concMs,
        readMiBs: copy.readMiBs,
        writeMiBs: copy.writeMiBs,
        agentPeakRssMiB: rssMiB,
        agentIdlePeakRssMiB: idleRssMiB,
      },
      hybrid: { pingUs: hping, readMiBs: hcopy.readMiBs, writeMiBs: hcopy.writeMiBs },
      cliStart: start,
      tcp: { readMiBs: tcp.readMiBs, writeMiBs: tcp.writeMiBs },
      sealedTcp: { readMiBs: sealed.readMiBs, writeMiBs: sealed.writeMiBs },
      cli,
      agentPeakRssAfterCliMiB: rssAfterCliMiB,
    },
    forward,
    kernelCeiling: ceiling,
    rawUnixMiBs: raw,
    rawUnixRunsMiBs: [raw1, raw2],
    ratios: {
      pingVsQemuGa: ping / q.pingUs,
      execVsQemuGa: execMs / q.execMs,
      readVsQemuGa: copy.readMiBs / q.readMiBs,
      writeVsQemuGa: copy.writeMiBs / q.writeMiBs,
      readVsRaw: copy.readMiBs / raw,
      writeVsRaw: copy.writeMiBs / raw,
      readVsKernel: copy.readMiBs / kernel,
      writeVsKernel: copy.writeMiBs / kernel,
      rawVsKernel: raw / kernel,
      sealedVsTcpRead: sealed.readMiBs / tcp.readMiBs,
      sealedVsTcpWrite: sealed.writeMiBs / tcp.writeMiBs,
    },
    // Every row of the table, with its target and whether it is met (null: a reference, no target).
    rows: rows.map((r) => ({ ...r, met: r.met ?? null })),
  }
  fs.mkdirSync(path.join(root, "reports", "bench"), { recursive: true })
  fs.writeFileSync(path.join(root, "reports", "bench", "bench.json"), JSON.stringify(report, null, 2) + "\n")
  log(`wrote reports/bench/bench.json and ${path.relative(root, Chart.write("local"))}`)
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
