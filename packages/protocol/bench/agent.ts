/**
 * The far side of the protocol benchmark: a raw Unix socket source/sink and a Cuvette agent session
 * per connection. Runs as a child process (so agent and client do not share an event loop or a
 * CPU core), or is imported by the benchmark for the in-memory case.
 */
import * as net from "node:net"
import { Effect, Runtime } from "effect"
import { ByteStream, Session } from "../src/index.js"

const CHUNK = 256 * 1024
const source = new Uint8Array(CHUNK).fill(0x5a) // never modified, so it may be queued repeatedly

const identity = {
  name: "bench-agent",
  version: "0",
  os: process.platform,
  arch: process.arch,
  hostname: "bench",
}

/** ping, readFile (streams `length` bytes) and writeFile (counts what arrives). */
export const handlers: Session.Handlers<never> = {
  ping: () => Effect.succeed({}),
  readFile: (args, call) =>
    Effect.promise(async () => {
      const total = args.length ?? 0
      let sent = 0
      while (sent < total) {
        const n = Math.min(CHUNK, total - sent)
        await call.stdout.write(n === CHUNK ? source : source.subarray(0, n))
        sent += n
      }
      return { bytes: total }
    }),
  writeFile: (_args, call) =>
    Effect.promise(async () => {
      let bytes = 0
      for await (const chunk of call.stdin) bytes += chunk.byteLength
      return { bytes }
    }),
}

/** Serves a Cuvette session on `stream`. */
export const serve = (stream: ByteStream.ByteStream) =>
  Session.startAgent(stream, { identity, handlers }, Runtime.defaultRuntime)

const writeRaw = (socket: net.Socket, total: number) => {
  let sent = 0
  const pump = () => {
    while (sent < total) {
      const n = Math.min(CHUNK, total - sent)
      sent += n
      if (!socket.write(n === CHUNK ? source : source.subarray(0, n))) return void socket.once("drain", pump)
    }
    socket.end()
  }
  pump()
}

if (process.send && process.env.BENCH_AGENT === "1") {
  const [rawPath, agentPath, bytes] = process.argv.slice(2) as [string, string, string]
  const rawBytes = Number(bytes)
  const raw = net.createServer((socket) => writeRaw(socket, rawBytes))
  const agent = net.createServer(
    (socket) => void serve(ByteStream.fromDuplex(socket, { description: "unix:bench" })),
  )
  // Exit normally on SIGTERM so `--cpu-prof` (BENCH_AGENT_ARGS) writes its profile.
  process.on("SIGTERM", () => process.exit(0))
  raw.listen(rawPath, () => agent.listen(agentPath, () => process.send!("ready")))
}
