// Throughput of the addon's own I/O route against the runtime's own socket I/O on the same socket types:
//   npx tsx scripts/bench-route.ts [MiB=1024]     (Node: vs libuv through the tcp_wrap handle, and net)
//   bun scripts/bench-route.ts [MiB=1024]         (Bun: vs Bun's own adoption of the fd, and net)
// One direction, 256 KiB writes honouring backpressure, median of 3. Prints a markdown table.
import * as net from "node:net"
import type { LinuxBinding } from "../lib/binding.js"
import { load } from "../lib/loader.js"
import * as Loopback from "../lib/Loopback.js"
import type { Duplex } from "node:stream"

const MiB = 1024 * 1024
const total = Number(process.argv[2] ?? 1024) * MiB
const chunk = Buffer.alloc(256 * 1024, 0x5a)
const runtime = process.versions.bun ? `Bun ${process.versions.bun}` : `Node ${process.version}`
const b = load() as LinuxBinding

/** Seconds to move `total` bytes from a to z. */
const pump = async (a: Duplex, z: Duplex): Promise<number> => {
  const t0 = performance.now()
  const done = new Promise<void>((resolve) => {
    let n = 0
    z.on("data", (d: Buffer) => {
      n += d.length
      if (n >= total) resolve()
    })
  })
  for (let off = 0; off < total; off += chunk.length)
    if (!a.write(chunk)) await new Promise((r) => a.once("drain", r))
  await done
  const s = (performance.now() - t0) / 1000
  a.destroy()
  z.destroy()
  return s
}

// The old route, kept here only to compare: libuv adopting the fd through Node's internal TCP wrap.
const tcpWrap = (fd: number): Duplex => {
  const wrap = (process as unknown as { binding(n: string): any }).binding("tcp_wrap")
  const handle = new wrap.TCP(wrap.constants.SOCKET)
  if (handle.open(fd) !== 0) throw new Error("tcp_wrap open failed")
  return new net.Socket({ handle, readable: true, writable: true } as net.SocketConstructorOpts)
}

const netPair = async (): Promise<[Duplex, Duplex]> => {
  const server = net.createServer()
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  const accepted = new Promise<net.Socket>((r) => server.once("connection", r))
  const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1")
  const peer = await accepted
  server.close()
  return [client, peer]
}

const nativeTcpPair = async (): Promise<[Duplex, Duplex]> => {
  const server = Loopback.listen()
  const accepted = new Promise<Duplex>((r) => server.once("connection", r))
  const client = Loopback.connect({ port: server.address() })
  const peer = await accepted
  server.close()
  return [client, peer]
}

const cases: Array<[string, string, () => Promise<[Duplex, Duplex]>]> = [
  ["AF_UNIX socketpair", "native route", async () => Loopback.pair()],
  [
    "AF_UNIX socketpair",
    process.versions.bun ? "Bun's own (net.connect({ fd }))" : "libuv via tcp_wrap",
    async () => {
      const [x, y] = b.socketpair()
      return process.versions.bun
        ? [net.connect({ fd: x } as net.NetConnectOpts), net.connect({ fd: y } as net.NetConnectOpts)]
        : [tcpWrap(x), tcpWrap(y)]
    },
  ],
  ["TCP 127.0.0.1", "native route", nativeTcpPair],
  ["TCP 127.0.0.1", process.versions.bun ? "Bun's net" : "libuv (net, the tcp_wrap handle)", netPair],
]

console.log(`| ${runtime}, ${total / MiB} MiB one way | route | MiB/s (median of 3) | runs |`)
console.log("| --- | --- | --- | --- |")
for (const [socket, route, open] of cases) {
  const rates: Array<number> = []
  for (let i = 0; i < 3; i++) {
    const [a, z] = await open()
    rates.push(total / MiB / (await pump(a, z)))
  }
  const sorted = [...rates].sort((x, y) => x - y)
  console.log(
    `| ${socket} | ${route} | ${sorted[1].toFixed(0)} | ${rates.map((r) => r.toFixed(0)).join(", ")} |`,
  )
}
process.exit(0)
