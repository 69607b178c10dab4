#!/usr/bin/env node
/**
 * `npm run bench`: Cuvette against the QEMU guest agent (`qemu-ga -m unix-listen`) and a raw Unix
 * socket copy, on this machine, in one run. Prints a table with ratios and the targets stated in
 * docs/benchmarks.md; writes reports/bench/bench.json. Also runs the Cuvette rows through a hybrid
 * vsock relay, and times `cuvette ping` as whole processes (scripts/cli-start.mjs).
 *
 *   npm run bench                         (BENCH_BYTES / BENCH_QGA_BYTES override the sizes)
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

const self = fileURLToPath(import.meta.url)
const root = path.resolve(path.dirname(self), "..")

if (!process.env.CUVETTE_BENCH_CHILD) {
  const r = spawnSync(
    process.execPath,
    ["--conditions=@cuvette/source", "--import", "tsx", self, ...process.argv.slice(2)],
    { stdio: "inherit", cwd: root, env: { ...process.env, CUVETTE_BENCH_CHILD: "1" } },
  )
  process.exit(r.status ?? 1)
}

const { Client } = await import("@cuvette/client")
const CliStart = await import("./cli-start.mjs")

const MiB = 1024 * 1024
const GiB = 1024 * MiB
const BYTES = Number(process.env.BENCH_BYTES ?? GiB)
const QGA_BYTES = Number(process.env.BENCH_QGA_BYTES ?? 64 * MiB)
const PINGS = Number(process.env.BENCH_PINGS ?? 2000)
const EXECS = Number(process.env.BENCH_EXECS ?? 200)
const CONCURRENT = 64

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-bench-"))
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
  const agent = await Client.connect(`unix:${agentSock}`)
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
  const start = CliStart.measure(`unix:${agentSock}`)
  for (let i = 0; i < 20; i++) await agent.exec(["/bin/true"])
  const execs = []
  for (let i = 0; i < EXECS; i++) execs.push(await timeMs(() => agent.exec(["/bin/true"])))
  const execMs = median(execs)
  const concMs = await timeMs(async () => {
    const rs = await Promise.all(Array.from({ length: CONCURRENT }, () => agent.exec(["/bin/true"])))
    if (rs.some((r) => r.exitCode !== 0)) throw new Error("a concurrent exec failed")
  })
  const raw2 = await rawCopy(rawSock, BYTES)
  const raw = Math.max(raw1, raw2)

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

  // ---- table
  const f0 = (x) => x.toFixed(0)
  const f1 = (x) => x.toFixed(1)
  const ratio = (a, b) => `${(a / b).toFixed(2)}×`
  const copyTarget = (x) => x >= 1024 && x >= raw / 2
  const rows = [
    [
      "ping round trip (median)",
      `${f1(q.pingUs)} µs`,
      `${f1(ping)} µs`,
      `${f1(hping)} µs`,
      "",
      ratio(ping, q.pingUs),
      "",
      "≤ 100 µs",
      ping <= 100,
    ],
    [
      "exec /bin/true round trip (median)",
      `${q.execMs.toFixed(2)} ms`,
      `${execMs.toFixed(2)} ms`,
      "",
      "",
      ratio(execMs, q.execMs),
      "",
      "≤ 3 ms",
      execMs <= 3,
    ],
    [
      `64 execs: Cuvette concurrent, qemu-ga sequential (wall)`,
      `${f0(q.sequential64ExecMs)} ms`,
      `${f0(concMs)} ms`,
      "",
      "",
      ratio(concMs, q.sequential64ExecMs),
      "",
      "64 concurrent",
      true,
    ],
    [
      `file read (Cuvette ${size(BYTES)}, qemu-ga ${size(QGA_BYTES)})`,
      `${f1(q.readMiBs)} MiB/s`,
      `${f0(copy.readMiBs)} MiB/s`,
      `${f0(hcopy.readMiBs)} MiB/s`,
      `${f0(raw)} MiB/s`,
      ratio(copy.readMiBs, q.readMiBs),
      ratio(copy.readMiBs, raw),
      "≥ 1 GiB/s, ≥ ½ raw",
      copyTarget(copy.readMiBs),
    ],
    [
      `file write (Cuvette ${size(BYTES)}, qemu-ga ${size(QGA_BYTES)})`,
      `${f1(q.writeMiBs)} MiB/s`,
      `${f0(copy.writeMiBs)} MiB/s`,
      `${f0(hcopy.writeMiBs)} MiB/s`,
      `${f0(raw)} MiB/s`,
      ratio(copy.writeMiBs, q.writeMiBs),
      ratio(copy.writeMiBs, raw),
      "≥ 1 GiB/s, ≥ ½ raw",
      copyTarget(copy.writeMiBs),
    ],
    [
      `cuvette ping, whole process, single file (median of ${start.singleFile.runs})`,
      "",
      `${f1(start.singleFile.medianMs)} ms`,
      "",
      "",
      "",
      "",
      "≤ 100 ms",
      start.singleFile.medianMs <= 100,
    ],
    [
      `cuvette ping, whole process, npm CLI on node (median of ${start.npm.runs})`,
      "",
      `${f1(start.npm.medianMs)} ms`,
      "",
      "",
      "",
      "",
      "≤ 250 ms",
      start.npm.medianMs <= 250,
    ],
    [
      `agent peak RSS (VmHWM) streaming ${size(BYTES)} each way`,
      "",
      `${f1(rssMiB)} MiB (${f1(idleRssMiB)} idle)`,
      "",
      "",
      "",
      "",
      "≤ 64 MiB",
      rssMiB <= 64,
    ],
  ]
  const head = [
    "",
    "qemu-ga",
    "Cuvette unix",
    "Cuvette hybrid",
    "raw unix",
    "Cuvette/qemu-ga",
    "Cuvette/raw",
    "target",
    "met",
  ]
  const cells = [head, ...rows.map((r) => [...r.slice(0, 8), r[8] ? "yes" : "NO"])]
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
    ["sealed/tcp", ratio(sealed.readMiBs, tcp.readMiBs), ratio(sealed.writeMiBs, tcp.writeMiBs)],
  ]
  const tcpWidths = tcpCells[0].map((_, i) => Math.max(...tcpCells.map((r) => r[i].length)))
  for (const r of tcpCells)
    console.log(
      "  " + r.map((c, i) => (i === 0 ? c.padEnd(tcpWidths[i]) : c.padStart(tcpWidths[i]))).join("  "),
    )
  console.log(
    `  raw unix copy = best of 2 runs (${f0(raw1)}, ${f0(raw2)} MiB/s); qemu-ga files use ${size(QGA_BYTES)} (base64 JSON, ~20-30 MiB/s); hybrid = through a CONNECT/OK relay process`,
  )

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
    },
    rawUnixMiBs: raw,
    rawUnixRunsMiBs: [raw1, raw2],
    ratios: {
      pingVsQemuGa: ping / q.pingUs,
      execVsQemuGa: execMs / q.execMs,
      readVsQemuGa: copy.readMiBs / q.readMiBs,
      writeVsQemuGa: copy.writeMiBs / q.writeMiBs,
      readVsRaw: copy.readMiBs / raw,
      writeVsRaw: copy.writeMiBs / raw,
      sealedVsTcpRead: sealed.readMiBs / tcp.readMiBs,
      sealedVsTcpWrite: sealed.writeMiBs / tcp.writeMiBs,
    },
    targets: {
      copyAtLeast1GiBsAndHalfRaw: copyTarget(copy.readMiBs) && copyTarget(copy.writeMiBs),
      pingAtMost100us: ping <= 100,
      execAtMost3ms: execMs <= 3,
      concurrent64: true,
      rssAtMost64MiB: rssMiB <= 64,
      singleFileStartAtMost100ms: start.singleFile.medianMs <= 100,
      npmCliStartAtMost250ms: start.npm.medianMs <= 250,
    },
  }
  fs.mkdirSync(path.join(root, "reports", "bench"), { recursive: true })
  fs.writeFileSync(path.join(root, "reports", "bench", "bench.json"), JSON.stringify(report, null, 2) + "\n")
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
