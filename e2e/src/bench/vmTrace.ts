/**
 * Where a round trip's time goes over a virtio-serial port in the QEMU guest (the split in
 * docs/benchmarks.md's bench:vm section). Boots the e2e guest as bench:vm does and starts this tree's
 * agent on a second port with CUVETTE_SERIAL_TRACE (each read and write of the port, guest clock),
 * records the host socket's writes and reads (host clock), and prints per ping the guest's own work,
 * its write and the rest (host, QEMU, port); per exec the spawn, the run to the Result and the rest;
 * the read and write counts and sizes of a copy each way.
 *
 *   node --conditions=@cuvette/source --import tsx e2e/src/bench/vmTrace.ts
 *     TRACE_AGENT_B=FILE  a second agent (e.g. main's build) on a third port, alternating with this one
 *     TRACE_RAW=1         first the port alone: raw-port --echo and --echo-overlapped (a read pending during each write)
 *     TRACE_STRACE=1      the second agent is this one under strace -f -tt -T (the temp directory's vm-trace-strace.log)
 *     TRACE_PINGS=20 TRACE_EXECS=5 TRACE_MIB=8 TRACE_ROUNDS=2
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { e2eRoot, setup } from "../setup.js"
import * as Vm from "../Vm.js"

const repoRoot = path.resolve(e2eRoot, "..")
const log = (line: string) => console.error(`vm-trace: ${line}`)
const PORT_A = "org.cuvette.raw.0"
const PORT_B = Vm.Ports.relay
const agentB = process.env.TRACE_AGENT_B
const ROUNDS = Number(process.env.TRACE_ROUNDS ?? 2)
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const PINGS = Number(process.env.TRACE_PINGS ?? 20)
const EXECS = Number(process.env.TRACE_EXECS ?? 5)
const COPY = Number(process.env.TRACE_MIB ?? 8) * 2 ** 20

// Host events: every chunk the host's sockets hand the kernel and every chunk they read.
const hostEvents: Array<string> = []
let recording = false
const at = () => performance.now().toFixed(3)
const proto = net.Socket.prototype as unknown as Record<string, (...a: Array<unknown>) => unknown>
const origWrite = proto._write!
const origWritev = proto._writev!
const origEmit = proto.emit!
proto._write = function (this: net.Socket, chunk: unknown, ...rest: Array<unknown>) {
  if (recording) hostEvents.push(`${at()} write ${(chunk as Buffer).length}`)
  return origWrite.call(this, chunk, ...rest)
}
proto._writev = function (this: net.Socket, chunks: unknown, ...rest: Array<unknown>) {
  const list = chunks as Array<{ chunk: Buffer }>
  if (recording) hostEvents.push(`${at()} write ${list.reduce((n, c) => n + c.chunk.length, 0)}`)
  return origWritev.call(this, chunks, ...rest)
}
proto.emit = function (this: net.Socket, event: unknown, ...rest: Array<unknown>) {
  if (recording && event === "data") hostEvents.push(`${at()} read ${(rest[0] as Buffer).length}`)
  return origEmit.call(this, event, ...rest)
}

const build = (entry?: string, out?: string) => {
  const extra = entry ? ["--entry", entry, "--out", out!] : []
  const r = spawnSync(process.execPath, ["scripts/build-agent.mjs", "--target", "linux-x64", ...extra], {
    cwd: repoRoot,
    stdio: ["ignore", "ignore", "inherit"],
  })
  if (r.status !== 0) throw new Error("build-agent failed")
  return path.join(repoRoot, out ?? "dist/agent", "linux-x64/cuvette-agent")
}

const main = async () => {
  const env = await setup()
  if (env.skipReason ?? env.qgaSkipReason) throw new Error(env.skipReason ?? env.qgaSkipReason)
  const assets = env.assets!
  const agentBin = build()
  const rawBin = build("e2e/src/bench/rawPort.ts", "dist/bench-raw")
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-vm-trace-"))
  const { Cidata, Image } = await import("@cuvette/deploy")
  const straceLibs = ["libunwind-ptrace.so.0", "libunwind-x86_64.so.8", "liblzma.so.5", "libunwind.so.8"]
  const extra = [
    { path: "trace/strace", source: "/usr/bin/strace", mode: 0o755 },
    { path: "trace/raw-port", source: rawBin, mode: 0o755 },
    ...(agentB ? [{ path: "b/cuvette-agent", source: agentB, mode: 0o755 }] : []),
    ...straceLibs.map((l) => ({
      path: `trace/lib/${l}`,
      source: fs.realpathSync(`/lib/x86_64-linux-gnu/${l}`),
      mode: 0o755,
    })),
  ]
  const disk = path.join(dir, "cidata.img")
  const contents = await Cidata.linux({ agent: agentBin, instanceId: "trace", hostname: "trace", extra })
  await Image.write({ out: disk, format: "raw", ...contents })
  const vm = await Vm.start({
    kernel: assets.vmlinux,
    initrd: assets.initrdQga!,
    disk,
    mode: "qga",
    memoryMiB: 1024,
    serialPorts: [Vm.Ports.agent, Vm.Ports.qga, PORT_A, PORT_B],
    watchdogMs: 20 * 60_000,
  })
  try {
    const { Client } = await import("@cuvette/client")
    const agent = await Client.wait(`serial:${vm.sockets[Vm.Ports.agent]}`, { timeoutMs: 120_000 })
    const ld = "/cidata/lib/ld-linux-x86-64.so.2 --library-path /cidata/trace/lib:/cidata/lib"
    const start = async (port: string, exe: string, wrap = "") => {
      log(`starting ${exe} on ${port}`)
      await agent.exec(
        [
          "sh",
          "-c",
          `CUVETTE_SERIAL_TRACE=/tmp/${port}.trace exec ${wrap} ${ld} ${exe} --serial /dev/virtio-ports/${port} </dev/null >/dev/console 2>&1`,
        ],
        { detach: true },
      )
      return Client.wait(`serial:${vm.sockets[port]}`, { timeoutMs: 180_000 })
    }
    const guestTrace = async (port: string) => {
      await new Promise((r) => setTimeout(r, 800))
      const file = `/tmp/${port}.trace`
      const r = await agent.exec(["sh", "-c", `cat ${file} 2>/dev/null; : > ${file}`])
      return Buffer.from(r.stdout).toString().trim().split("\n").filter(Boolean)
    }
    // The port alone: one byte echoed by raw-port, with and without a read pending during the write.
    const rawSocket = await vm.connect(PORT_B)
    const rawEcho = async (mode: string) => {
      const got: Array<() => void> = []
      rawSocket.on("data", () => got.shift()?.())
      const exec = agent.exec([
        "sh",
        "-c",
        `${ld} /cidata/trace/raw-port --serial /dev/virtio-ports/${PORT_B} --${mode} ${PINGS + 1}`,
      ])
      await new Promise<void>((r) => got.push(r)) // "R"
      const times: Array<number> = []
      for (let i = 0; i < PINGS; i++) {
        const t0 = performance.now()
        const echoed = new Promise<void>((r) => got.push(r))
        rawSocket.write("p")
        await echoed
        times.push(performance.now() - t0)
      }
      const last = new Promise<void>((r) => got.push(r))
      rawSocket.write("p")
      await last
      await exec
      rawSocket.removeAllListeners("data")
      return times
    }
    if (process.env.TRACE_RAW === "1") {
      for (let round = 0; round < ROUNDS; round++)
        for (const mode of ["echo", "echo-overlapped"]) {
          const t = await rawEcho(mode)
          console.log(
            `raw-port --${mode}: median ${median(t).toFixed(2)} ms over ${t.length} (${t
              .slice(0, 12)
              .map((x) => x.toFixed(1))
              .join(" ")} ...)`,
          )
        }
    }
    rawSocket.destroy()
    const strace = process.env.TRACE_STRACE === "1"
    const sides = [
      { name: "A (this tree)", port: PORT_A, client: await start(PORT_A, "/cidata/cuvette-agent") },
      {
        name: strace ? "A under strace" : "B (TRACE_AGENT_B)",
        port: PORT_B,
        client: strace
          ? await start(
              PORT_B,
              "/cidata/cuvette-agent",
              `${ld} /cidata/trace/strace -f -tt -T -o /tmp/strace.log`,
            )
          : agentB
            ? await start(PORT_B, "/cidata/b/cuvette-agent")
            : undefined,
      },
    ]
    for (let round = 0; round < ROUNDS; round++)
      for (const side of sides) {
        const c = side.client
        if (!c) continue
        console.log(`==== round ${round + 1}, ${side.name}`)
        log(`round ${round + 1}, ${side.name}`)
        await guestTrace(side.port)
        hostEvents.length = 0
        recording = true
        const rtts: Array<number> = []
        for (let i = 0; i < PINGS; i++) {
          const t0 = performance.now()
          await c.ping()
          rtts.push(performance.now() - t0)
        }
        recording = false
        const host = hostEvents.splice(0)
        console.log(pingSplit(host, await guestTrace(side.port), rtts))
        const execMs: Array<number> = []
        for (let i = 0; i < EXECS; i++) {
          const t0 = performance.now()
          await c.exec(["/bin/true"])
          execMs.push(performance.now() - t0)
        }
        console.log(
          `exec /bin/true: median ${median(execMs).toFixed(1)} ms (${execMs.map((x) => x.toFixed(0)).join(" ")})`,
        )
        console.log(execSplit(await guestTrace(side.port), execMs))
        const data = Buffer.alloc(COPY, 7)
        let t0 = performance.now()
        await c.upload(data, `/tmp/${side.port}.bin`)
        console.log(
          `upload ${COPY >> 20} MiB: ${(COPY / 2 ** 20 / ((performance.now() - t0) / 1000)).toFixed(1)} MiB/s`,
        )
        console.log(summary(await guestTrace(side.port)))
        t0 = performance.now()
        const back = await c.readFile(`/tmp/${side.port}.bin`)
        if (!Buffer.from(back).equals(data)) throw new Error("download differs")
        console.log(
          `download ${COPY >> 20} MiB: ${(COPY / 2 ** 20 / ((performance.now() - t0) / 1000)).toFixed(1)} MiB/s`,
        )
        console.log(summary(await guestTrace(side.port)))
      }
    if (strace) {
      const text = Buffer.from(await agent.readFile("/tmp/strace.log")).toString()
      fs.writeFileSync(path.join(os.tmpdir(), "vm-trace-strace.log"), text)
      console.log(`strace: ${text.split("\n").length} lines in the temp dir's vm-trace-strace.log`)
    }
    for (const side of sides) await side.client?.close()
    await agent.close()
  } catch (e) {
    console.log(`guest console (tail):\n${vm.consoleText().split("\n").slice(-40).join("\n")}`)
    throw e
  } finally {
    await vm.kill()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * Per ping (guest events come in threes: read, write, wrote): the guest from the read's callback to the
 * write's start (the agent's own work), the write's start to its callback, and the rest (the host, QEMU
 * and the port), as medians over successive groups of pings, so warm-up shows.
 */
const pingSplit = (
  host: ReadonlyArray<string>,
  guest: ReadonlyArray<string>,
  rtts: ReadonlyArray<number>,
) => {
  // A ping is a 39-byte read, then a 34-byte write (the Pong) and its completion.
  const ev = (name: string, bytes: string) =>
    guest
      .filter((l) => l.split(" ")[1] === name && l.split(" ")[2] === bytes)
      .map((l) => Number(l.split(" ")[0]))
  const [reads, writes, wrotes] = [ev("read", "39"), ev("write", "34"), ev("wrote", "34")]
  const traced =
    reads.length === rtts.length && writes.length === rtts.length && wrotes.length === rtts.length
  const g = traced ? reads.flatMap((r, i) => [r, writes[i]!, wrotes[i]!]) : []
  const rows: Array<string> = []
  const group = Math.max(5, Math.floor(rtts.length / 8))
  for (let from = 0; from < rtts.length; from += group) {
    const work: Array<number> = []
    const write: Array<number> = []
    const rest: Array<number> = []
    for (let i = from; i < Math.min(rtts.length, from + group); i++) {
      const [r, w, d] = [g[3 * i]!, g[3 * i + 1]!, g[3 * i + 2]!]
      work.push(w - r)
      write.push(d - w)
      rest.push(rtts[i]! - (d - r))
    }
    const m = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!.toFixed(2)
    if (!traced) {
      rows.push(
        `pings ${from}-${from + work.length - 1}: rtt ${m(rtts.slice(from, from + group) as Array<number>)} ms`,
      )
      continue
    }
    rows.push(
      `pings ${from}-${from + work.length - 1}: rtt ${m(rtts.slice(from, from + group) as Array<number>)} ms = guest work ${m(work)} + guest write ${m(write)} + host/port ${m(rest)}`,
    )
  }
  return `${host.length} host events, ${guest.length} guest events\n${rows.join("\n")}`
}

/**
 * Per exec, from the guest's trace: the Open's read to the first write (Started: the spawn), from
 * there to the last write (the Result: the child's run, its exit and the pipes' end), and the rest
 * of the host's round trip (host, QEMU, port).
 */
const execSplit = (guest: ReadonlyArray<string>, execMs: ReadonlyArray<number>) => {
  const spawn: Array<number> = []
  const exit: Array<number> = []
  const rest: Array<number> = []
  let open: number | undefined
  let writes: Array<number> = []
  const close = () => {
    if (open === undefined || writes.length === 0) return
    spawn.push(writes[0]! - open)
    exit.push(writes.at(-1)! - writes[0]!)
    rest.push(execMs[spawn.length - 1]! - (writes.at(-1)! - open))
  }
  for (const l of guest) {
    const [t, ev] = l.split(" ")
    if (ev === "read") {
      close()
      open = Number(t)
      writes = []
    } else if (ev === "write") writes.push(Number(t))
  }
  close()
  const m = (xs: Array<number>) =>
    xs.length ? [...xs].sort((a, b) => a - b)[xs.length >> 1]!.toFixed(1) : "-"
  return `${summary(guest)}\nexec split (medians): Open read -> Started write ${m(spawn)} ms, -> Result write ${m(exit)} ms, host/port ${m(rest)} ms`
}

/** Counts and sizes of a guest trace's reads and writes. */
const summary = (lines: ReadonlyArray<string>) => {
  const by = new Map<string, Array<number>>()
  for (const l of lines) {
    const [, ev, n] = l.split(" ")
    if (!ev) continue
    ;(by.get(ev) ?? by.set(ev, []).get(ev)!).push(Number(n))
  }
  return [...by]
    .map(([ev, ns]) => {
      const sorted = [...ns].sort((a, b) => a - b)
      return `${ev}: ${ns.length} calls, ${ns.reduce((a, b) => a + b, 0)} bytes, median ${sorted[sorted.length >> 1]}, max ${sorted.at(-1)}`
    })
    .join("\n")
}

main().then(
  () => process.exit(0),
  async (e: unknown) => {
    console.error(e)
    await Vm.killAll()
    process.exit(1)
  },
)
