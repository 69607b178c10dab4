/**
 * Relay: joins a virtio-serial port to AF_VSOCK connections, byte for byte, so a host client on the
 * port reaches a guest service that listens on vsock (the e2e suite's agent on CID 1, vsock_loopback).
 *
 * A port has no connections, a vsock stream does; the relay maps one to the other:
 * - A session starts at the protocol's magic from the port: bytes before it are dropped, then one
 *   vsock connection is opened and carries everything from the magic on, in both directions.
 * - The host leaving (a read returns EOF) ends the session: the connection is destroyed and what it
 *   still had for the port is dropped. The next magic opens a fresh connection (one per host client).
 * - The vsock side closing ends the session too; port bytes are dropped until the next magic (a
 *   serial client repeats its hello with the magic when unanswered, and so gets a new connection).
 * - A new host taking over the port without an EOF in between (a race of milliseconds) is not
 *   detected here: its magic lands inside the old connection, the agent rejects it and closes, and
 *   the client's repeated hello opens the next connection. Enough for the e2e suite's clients, which
 *   come one after another.
 */
import { MAGIC } from "@cuvette/protocol/Constants"
import * as fs from "node:fs"
import type { Duplex } from "node:stream"

/** Reads of a port with no host attached return EOF at once: poll this often then. */
const IDLE_POLL_MS = 100
const READ_SIZE = 64 * 1024
/** Port-bound bytes queued before the vsock side is paused. */
const HIGH_WATER = 1024 * 1024
/** How long a session may wait for the vsock service to accept (it may still be starting). */
const CONNECT_DEADLINE_MS = 10_000

/** A virtio-serial port as the relay uses it. */
export interface Port {
  readonly description: string
  /** Reads into `buffer`: the byte count, or 0 when no host is attached (a real port returns EOF then). */
  readonly read: (buffer: Buffer) => Promise<number>
  /** Writes all of `chunk`; waits while no host is attached (as a real port's write blocks). */
  readonly write: (chunk: Uint8Array) => Promise<void>
}

/** The character device of a virtio-serial port, read and written through fs on one fd. */
export const openPort = (file: string): Port => {
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_NOCTTY)
  return {
    description: file,
    read: (buffer) =>
      new Promise<number>((resolve, reject) =>
        fs.read(fd, buffer, 0, buffer.byteLength, null, (e, n) => (e ? reject(e) : resolve(n))),
      ),
    write: async (chunk) => {
      for (let off = 0; off < chunk.byteLength; )
        off += await new Promise<number>((resolve, reject) =>
          fs.write(fd, chunk, off, chunk.byteLength - off, null, (e, n) => (e ? reject(e) : resolve(n))),
        )
    },
  }
}

export interface Options {
  readonly port: Port
  /** Opens one vsock connection (Vsock.connect in the relay, any socket in tests). */
  readonly connect: () => Promise<Duplex>
  readonly log: (line: string) => void
  /** Stops the relay (tests); the real one serves until the process ends. */
  readonly signal?: AbortSignal
}

interface Session {
  readonly id: number
  readonly socket: Duplex
  open: boolean
  /** Its host left: what it still had for the port must not reach the next host. */
  hostLeft: boolean
  toVsock: number
  toPort: number
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves when `socket` can take more, or is gone. */
const drained = (socket: Duplex) =>
  new Promise<void>((resolve) => {
    const done = () => {
      socket.off("drain", done)
      socket.off("close", done)
      resolve()
    }
    socket.on("drain", done)
    socket.on("close", done)
  })

/** Serves the port until `signal` aborts. */
export const run = async (options: Options): Promise<void> => {
  const { log, port } = options
  let session: Session | undefined
  let sessions = 0

  // Port-bound bytes: one writer, in order; a chunk of a session that has ended is dropped.
  const queue: Array<{ session: Session; chunk: Buffer }> = []
  let queued = 0
  let writing = false
  const pump = async () => {
    if (writing) return
    writing = true
    while (queue.length > 0) {
      const { session: s, chunk } = queue.shift()!
      queued -= chunk.byteLength
      // After a vsock close the host is still there and gets the rest; after the host left, nobody is.
      if (s.hostLeft) continue
      try {
        await port.write(chunk)
        s.toPort += chunk.byteLength
      } catch (e) {
        log(`session ${s.id}: write to ${port.description} failed (${(e as Error).message})`)
      }
      if (queued < HIGH_WATER && s.open) s.socket.resume()
    }
    writing = false
  }

  const end = (s: Session, why: string) => {
    if (!s.open) return
    s.open = false
    if (session === s) session = undefined
    s.socket.destroy()
    // Counts so far: after a vsock close the port may still be receiving the rest.
    log(`session ${s.id} closed (${why}): host->vsock ${s.toVsock} bytes, vsock->host ${s.toPort} bytes`)
  }

  const open = async (): Promise<Session | undefined> => {
    const id = ++sessions
    const deadline = Date.now() + CONNECT_DEADLINE_MS
    for (;;) {
      try {
        const socket = await options.connect()
        const s: Session = { id, socket, open: true, hostLeft: false, toVsock: 0, toPort: 0 }
        socket.on("data", (chunk: Buffer) => {
          if (!s.open) return
          queue.push({ session: s, chunk })
          queued += chunk.byteLength
          if (queued >= HIGH_WATER) socket.pause()
          void pump()
        })
        socket.once("error", (e) => end(s, `vsock error: ${e.message}`))
        socket.once("close", () => end(s, "vsock closed"))
        socket.once("end", () => end(s, "vsock EOF"))
        log(`session ${id} open`)
        return s
      } catch (e) {
        if (Date.now() >= deadline) {
          log(`session ${id}: cannot connect (${(e as Error).message}); waiting for the next magic`)
          return undefined
        }
        await sleep(200)
      }
    }
  }

  // Bytes kept between reads while looking for the magic (it may be split across two reads).
  let scanned: Buffer = Buffer.alloc(0)
  while (!options.signal?.aborted) {
    const buffer = Buffer.allocUnsafe(READ_SIZE)
    let n: number
    try {
      n = await port.read(buffer)
    } catch (e) {
      log(`reading ${port.description}: ${(e as Error).message}`)
      n = 0
    }
    if (n === 0) {
      if (session) {
        session.hostLeft = true
        end(session, "host left")
      }
      scanned = Buffer.alloc(0)
      await sleep(IDLE_POLL_MS)
      continue
    }
    let data = buffer.subarray(0, n)
    if (!session) {
      const haystack = Buffer.concat([scanned, data])
      const at = haystack.indexOf(MAGIC)
      if (at < 0) {
        scanned = haystack.subarray(Math.max(0, haystack.byteLength - (MAGIC.byteLength - 1)))
        continue
      }
      scanned = Buffer.alloc(0)
      data = haystack.subarray(at)
      session = await open()
      if (!session) continue
    }
    const s = session
    s.toVsock += data.byteLength
    if (!s.socket.write(data)) await drained(s.socket)
  }
  session?.socket.destroy()
}
