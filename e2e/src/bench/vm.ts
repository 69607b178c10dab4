/**
 * `npm run bench:vm`: the data paths inside one QEMU guest (TCG, as the e2e suite boots it; not part of
 * `npm test`, it takes minutes). The guest runs Cuvette's agent and qemu-ga (mode qga), each on its own
 * virtio-serial port, and two more ports: one for a raw copy with no protocol (rawPort.ts, the agent's
 * Bun runtime reading and writing the port) and one for the vsock relay (e2e/relay: port -> AF_VSOCK in
 * the guest -> the agent's vsock listener). The same execs and the same copy go through each, timed in
 * this process; prints a table, writes reports/bench/vm.json and redraws docs/benchmarks-vm.svg.
 *
 *   npm run bench:vm          (BENCH_VM_MIB=64 the copy's size, BENCH_VM_EXECS=9 the runs per exec row,
 *                              BENCH_VM_AGENT=FILE a prebuilt linux-x64 agent instead of this tree's)
 */
import { spawnSync } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import type * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import * as Qga from "../Qga.js"
import { e2eRoot, setup } from "../setup.js"
import * as Vm from "../Vm.js"

const MiB = 2 ** 20
const COPY_MIB = Number(process.env.BENCH_VM_MIB ?? 64)
const EXEC_RUNS = Number(process.env.BENCH_VM_EXECS ?? 9)
const PINGS = 20
const RAW_PORT = "org.cuvette.raw.0"

const repoRoot = path.resolve(e2eRoot, "..")
const log = (line: string) => console.error(`bench:vm: ${line}`)
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")
const timeMs = async <A>(f: () => Promise<A>): Promise<[A, number]> => {
  const t0 = performance.now()
  const a = await f()
  return [a, performance.now() - t0]
}

/** `scripts/build-agent.mjs` for an entry (the agent by default); returns the executable. */
const build = (entry?: string, out?: string): string => {
  const args = ["scripts/build-agent.mjs", "--target", "linux-x64"]
  if (entry) args.push("--entry", entry, "--out", out!)
  const r = spawnSync(process.execPath, args, { cwd: repoRoot, stdio: ["ignore", "ignore", "inherit"] })
  if (r.status !== 0) throw new Error(`build-agent ${entry ?? "(agent)"} failed`)
  return path.join(repoRoot, out ?? "dist/agent", "linux-x64", "cuvette-agent")
}

/** The guest command running a Bun-compiled program from the disk with the agent bundle's glibc. */
const guestCommand = (exe: string, args: string): string =>
  `/cidata/lib/ld-linux-x86-64.so.2 --library-path /cidata/relay/lib:/cidata/lib ${exe} ${args}`

/** Bytes from a socket as they come, awaited by count. */
const reader = (socket: net.Socket) => {
  const chunks: Array<Buffer> = []
  let have = 0
  let wake: (() => void) | undefined
  socket.on("data", (b: Buffer) => {
    chunks.push(b)
    have += b.length
    wake?.()
  })
  return async (n: number): Promise<Buffer> => {
    while (have < n) await new Promise<void>((resolve) => (wake = resolve))
    const all = Buffer.concat(chunks)
    chunks.length = 0
    if (all.length > n) chunks.push(all.subarray(n))
    have = all.length - n
    return all.subarray(0, n)
  }
}

interface Row {
  readonly path: string
  readonly unit: "ms" | "MiB/s"
  readonly cuvette: number
  readonly qemuGa?: number
  readonly raw?: number
  readonly relay?: number
  readonly target: string
  readonly met: boolean | null
}

const main = async () => {
  const env = await setup()
  const skip = env.skipReason ?? env.qgaSkipReason
  if (skip !== undefined) throw new Error(`cannot boot the e2e guest here: ${skip}`)
  const assets = env.assets!
  log("building the agent, the vsock relay and raw-port (Bun, linux-x64)")
  // BENCH_VM_AGENT: a prebuilt agent instead of this tree's (a before/after comparison).
  const agentBin = process.env.BENCH_VM_AGENT ?? build()
  const relayBin = build("e2e/relay/main.ts", "dist/relay")
  const rawBin = build("e2e/src/bench/rawPort.ts", "dist/bench-raw")
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-bench-vm-"))
  const { Cidata, Image } = await import("@cuvette/deploy")
  const runtime = ["libstdc++.so.6", "libgcc_s.so.1"]
    .map((l) => path.join("/lib/x86_64-linux-gnu", l))
    .filter((f) => fs.existsSync(f))
  const extra = [
    { path: "relay/vsock-relay", source: relayBin, mode: 0o755 },
    { path: "relay/raw-port", source: rawBin, mode: 0o755 },
    ...runtime.map((f) => ({ path: `relay/lib/${path.basename(f)}`, source: f, mode: 0o755 })),
  ]
  const disk = path.join(dir, "cidata.img")
  const contents = await Cidata.linux({
    agent: agentBin,
    instanceId: "bench-vm",
    hostname: "bench-vm",
    extra,
  })
  await Image.write({ out: disk, format: "raw", ...contents })

  const vm = await Vm.start({
    kernel: assets.vmlinux,
    initrd: assets.initrdQga!,
    disk,
    mode: "qga",
    memoryMiB: 1024,
    serialPorts: [Vm.Ports.agent, Vm.Ports.qga, Vm.Ports.relay, RAW_PORT],
    watchdogMs: 30 * 60_000,
  })
  const rows: Array<Row> = []
  const started = performance.now()
  try {
    const { Client } = await import("@cuvette/client")
    log("booting (TCG)")
    const qga = await Qga.make(await vm.connect(Vm.Ports.qga, 60_000), { syncTimeoutMs: 60_000 })
    const agent = await Client.wait(`serial:${vm.sockets[Vm.Ports.agent]}`, { timeoutMs: 120_000 })
    log(`booted in ${((performance.now() - vm.startedAt) / 1000).toFixed(1)} s; starting the vsock relay`)
    // Detached: the agent kills what a command leaves behind when its leader exits.
    await agent.exec(
      [
        "sh",
        "-c",
        `exec ${guestCommand("/cidata/relay/vsock-relay", `--serial /dev/virtio-ports/${Vm.Ports.relay}`)} </dev/null >/dev/console 2>&1`,
      ],
      { detach: true },
    )
    await vm.waitForConsole(/VSOCK-RELAY READY/, 60_000)
    const relay = await Client.wait(`serial:${vm.sockets[Vm.Ports.relay]}`, { timeoutMs: 60_000 })
    const rawSocket = await vm.connect(RAW_PORT)
    const rawRead = reader(rawSocket)

    const rawRun = async (args: string, during: () => Promise<void>) => {
      const exec = agent.exec([
        "sh",
        "-c",
        guestCommand("/cidata/relay/raw-port", `--serial /dev/virtio-ports/${RAW_PORT} ${args}`),
      ])
      await rawRead(1) // "R": the guest has the port open
      const [, ms] = await timeMs(during)
      const r = await exec
      if (r.exitCode !== 0)
        throw new Error(`raw-port ${args}: exit ${r.exitCode}: ${Buffer.from(r.stderr).toString()}`)
      return ms
    }

    /** The median of PINGS one-byte round trips through raw-port --echo (after 2 warm-ups). */
    const rawRoundTrip = async () => {
      const times: Array<number> = []
      await rawRun(`--echo ${PINGS + 2}`, async () => {
        for (let i = 0; i < PINGS + 2; i++) {
          const [, ms] = await timeMs(async () => {
            rawSocket.write("p")
            await rawRead(1)
          })
          if (i >= 2) times.push(ms)
        }
      })
      return median(times)
    }

    // ping and exec: warmed once each, then alternating runs, medians.
    const pings = { cuvette: [] as number[], qemuGa: [] as number[], relay: [] as number[] }
    for (let i = 0; i < PINGS + 2; i++) {
      const [, c] = await timeMs(() => agent.ping())
      const [, q] = await timeMs(() => qga.ping())
      const [, r] = await timeMs(() => relay.ping())
      if (i < 2) continue // warm-ups
      pings.cuvette.push(c)
      pings.qemuGa.push(q)
      pings.relay.push(r)
    }
    rows.push({
      path: `ping round trip (median of ${PINGS})`,
      unit: "ms",
      cuvette: median(pings.cuvette),
      qemuGa: median(pings.qemuGa),
      raw: await rawRoundTrip(),
      relay: median(pings.relay),
      target: "",
      met: null,
    })
    for (const argv of [["/bin/true"], ["/bin/echo", "hi"]] as const) {
      log(`exec ${argv.join(" ")}`)
      const want = argv[0] === "/bin/echo" ? "hi\n" : ""
      const runs = { cuvette: [] as number[], qemuGa: [] as number[], relay: [] as number[] }
      for (let i = 0; i <= EXEC_RUNS; i++) {
        const [c, cms] = await timeMs(() => agent.exec(argv))
        const [q, qms] = await timeMs(() => qga.exec(argv[0], argv.slice(1)))
        const [r, rms] = await timeMs(() => relay.exec(argv))
        for (const out of [Buffer.from(c.stdout), q.stdout, Buffer.from(r.stdout)])
          if (out.toString() !== want)
            throw new Error(`exec ${argv.join(" ")} printed ${JSON.stringify(out)}`)
        if (i === 0) continue // the warm-up
        runs.cuvette.push(cms)
        runs.qemuGa.push(qms)
        runs.relay.push(rms)
      }
      const cuvette = median(runs.cuvette)
      const qemuGa = median(runs.qemuGa)
      rows.push({
        path: `exec ${argv.join(" ")} (median of ${EXEC_RUNS})`,
        unit: "ms",
        cuvette,
        qemuGa,
        relay: median(runs.relay),
        target: "≤ qemu-ga",
        met: cuvette <= qemuGa,
      })
    }

    // The copy: the same random bytes through each path, checked by sha256 on both sides.
    const data = randomBytes(COPY_MIB * MiB)
    const want = sha256(data)
    const guestSums = async (files: ReadonlyArray<string>) => {
      const r = await agent.exec(["sha256sum", ...files])
      const sums = Buffer.from(r.stdout).toString().trim().split("\n")
      if (sums.some((l) => l.split(" ")[0] !== want))
        throw new Error(`guest sha256 mismatch:\n${sums.join("\n")}`)
    }
    const rate = (ms: number) => COPY_MIB / (ms / 1000)
    log(`${COPY_MIB} MiB host -> guest: Cuvette, qemu-ga, raw, relay`)
    const [, cUp] = await timeMs(() => agent.upload(data, "/tmp/cuvette.bin"))
    const [, qUp] = await timeMs(() => qga.writeFile("/tmp/qga.bin", data))
    const rUp = await rawRun(`--receive ${data.length} --out /tmp/raw.bin`, async () => {
      rawSocket.write(data)
      await rawRead(1) // "D": all of it is in the guest's file
    })
    const [, vUp] = await timeMs(() => relay.upload(data, "/tmp/relay.bin"))
    await guestSums(["/tmp/cuvette.bin", "/tmp/qga.bin", "/tmp/raw.bin", "/tmp/relay.bin"])
    await agent.exec(["rm", "/tmp/qga.bin", "/tmp/relay.bin"])

    log(`${COPY_MIB} MiB guest -> host: Cuvette, qemu-ga, raw, relay`)
    const [cBack, cDown] = await timeMs(() => agent.readFile("/tmp/cuvette.bin"))
    await agent.exec(["cp", "/tmp/cuvette.bin", "/tmp/qga.bin"])
    const [qBack, qDown] = await timeMs(() => qga.readFile("/tmp/qga.bin"))
    let rBack: Buffer = Buffer.alloc(0)
    const rDown = await rawRun("--send /tmp/raw.bin", async () => {
      rawSocket.write("G")
      rBack = await rawRead(data.length)
    })
    const [vBack, vDown] = await timeMs(() => relay.readFile("/tmp/cuvette.bin"))
    for (const [who, back] of [
      ["Cuvette", cBack],
      ["qemu-ga", qBack],
      ["raw", rBack],
      ["relay", vBack],
    ] as const)
      if (sha256(back) !== want) throw new Error(`${who}: guest -> host bytes differ`)

    for (const [dir, c, q, r, v] of [
      ["host -> guest", cUp, qUp, rUp, vUp],
      ["guest -> host", cDown, qDown, rDown, vDown],
    ] as const) {
      rows.push({
        path: `${COPY_MIB} MiB ${dir}`,
        unit: "MiB/s",
        cuvette: rate(c),
        qemuGa: rate(q),
        raw: rate(r),
        relay: rate(v),
        target: "≥ 0.8× raw",
        met: rate(c) >= 0.8 * rate(r),
      })
    }
    await relay.close()
    await agent.close()
    qga.close()
    rawSocket.destroy()
  } catch (e) {
    log(`failed; the guest console's last lines:\n${vm.consoleText().split("\n").slice(-30).join("\n")}`)
    throw e
  } finally {
    await vm.kill()
    fs.rmSync(dir, { recursive: true, force: true })
  }

  // ---- table
  const fmt = (x: number | undefined, unit: string) =>
    x === undefined ? "" : `${unit === "ms" ? x.toFixed(1) : x.toFixed(1)} ${unit}`
  const ratio = (a: number, b: number | undefined) => (b === undefined ? "" : `${(a / b).toFixed(2)}×`)
  const head = ["", "qemu-ga", "Cuvette", "raw port", "via vsock relay", "÷qemu-ga", "÷raw", "target", "met"]
  const cells = [
    head,
    ...rows.map((r) => [
      r.path,
      fmt(r.qemuGa, r.unit),
      fmt(r.cuvette, r.unit),
      fmt(r.raw, r.unit),
      fmt(r.relay, r.unit),
      ratio(r.cuvette, r.qemuGa),
      ratio(r.cuvette, r.raw),
      r.target,
      r.met === null ? "" : r.met ? "yes" : "NO",
    ]),
  ]
  const widths = head.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)))
  const seconds = (performance.now() - started) / 1000
  console.log(
    `In one QEMU guest (${process.env.E2E_ACCEL ?? "tcg"}, 1 vCPU, kernel ${assets.kernelRelease}), each path on its own virtio-serial port; ` +
      `${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, load ${os.loadavg()[0]!.toFixed(1)}, ${seconds.toFixed(0)} s`,
  )
  for (const r of cells)
    console.log("  " + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "))
  console.log(
    "  raw port = rawPort.ts (Bun-compiled, fs.read/fs.write on the port, no protocol); via vsock relay = port -> e2e/relay -> AF_VSOCK (vsock_loopback) -> the agent",
  )

  const report = {
    date: new Date().toISOString(),
    accel: process.env.E2E_ACCEL ?? "tcg",
    kernel: assets.kernelRelease,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    loadAverage: os.loadavg(),
    seconds,
    copyMiB: COPY_MIB,
    execRuns: EXEC_RUNS,
    rows: rows.map((r) => ({
      ...r,
      ...(r.qemuGa === undefined ? {} : { vsQemuGa: r.cuvette / r.qemuGa }),
      ...(r.raw === undefined ? {} : { vsRaw: r.cuvette / r.raw }),
    })),
  }
  const out = path.join(repoRoot, "reports", "bench", "vm.json")
  fs.mkdirSync(path.dirname(out), { recursive: true })
  fs.writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`)
  // @ts-expect-error: a plain .mjs module without types
  const Chart = await import("../../../scripts/bench-chart.mjs")
  log(`wrote reports/bench/vm.json and ${path.relative(repoRoot, Chart.write("vm"))}`)
}

main().then(
  () => process.exit(0),
  async (e: unknown) => {
    console.error(e)
    await Vm.killAll()
    process.exit(1)
  },
)
