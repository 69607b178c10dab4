/**
 * virtio-serial ports (and anything that behaves like one: a pty, a FIFO pair). The port has no
 * connection semantics: a read returns EOF while no host is attached (wait and read again, never
 * exit), writes block until a host attaches, and a new host may appear at any time, even mid-frame
 * of the previous one (the protocol resynchronises on its magic: `resync: true`).
 *
 * Reads and writes go through fs.read/fs.write on one fd, which both Node and Bun implement for
 * character devices (net.Socket cannot adopt a char device fd). A blocked read holds one libuv
 * thread: bin.ts raises UV_THREADPOOL_SIZE so file operations keep theirs.
 */
import type { ByteStream, Session } from "@cuvette/protocol"
import * as fs from "node:fs"
import * as path from "node:path"
import { StartError } from "./sockets.js"

/** The virtio-serial port name the host side uses (QEMU `-device virtserialport,name=...`). */
export const PORT_NAME = "org.cuvette.agent.0"

/** Poll interval while no host is attached (reads return EOF at once then). */
const IDLE_POLL_MS = 100
/** The most one read asks for, and the slab reads share. */
const READ_SIZE = 64 * 1024
const READ_SLAB = 1024 * 1024
/** What one write hands the port at most when it gathers: virtio_console takes 32 KiB per write(). */
const WRITE_BATCH = 32 * 1024
/** Queued outbound bytes before write() reports backpressure. */
const HIGH_WATER = 1024 * 1024

/** Finds the agent's virtio-serial port: udev's symlink, or /sys/class/virtio-ports/* /name without udev. */
export const findPort = (name = PORT_NAME, root = "/"): string | undefined => {
  const byName = path.join(root, "dev/virtio-ports", name)
  if (fs.existsSync(byName)) return byName
  const sys = path.join(root, "sys/class/virtio-ports")
  let entries: Array<string> = []
  try {
    entries = fs.readdirSync(sys)
  } catch {
    return undefined
  }
  for (const entry of entries) {
    try {
      if (fs.readFileSync(path.join(sys, entry, "name"), "utf8").trim() !== name) continue
    } catch {
      continue
    }
    const dev = path.join(root, "dev", entry)
    if (fs.existsSync(dev)) return dev
  }
  return undefined
}

const read = (fd: number, buffer: Buffer, off: number, length: number) =>
  new Promise<number>((resolve, reject) =>
    fs.read(fd, buffer, off, length, null, (e, n) => (e ? reject(e) : resolve(n))),
  )
const write = (fd: number, buffer: Uint8Array, off: number, length: number) =>
  new Promise<number>((resolve, reject) =>
    fs.write(fd, buffer, off, length, null, (e, n) => (e ? reject(e) : resolve(n))),
  )
/** What a read of a port with no host attached returns: nothing (not an error). */
const EOF = "EOF"
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * CUVETTE_SERIAL_TRACE=FILE: one line per read and write of the port (ms since start, event, bytes),
 * kept in memory and appended to FILE a moment later, so tracing costs no syscall on the data path.
 */
const tracer = (file: string | undefined) => {
  if (!file) return undefined
  let lines: Array<string> = []
  let timer: ReturnType<typeof setTimeout> | undefined
  return (event: string, bytes: number) => {
    lines.push(`${performance.now().toFixed(3)} ${event} ${bytes}`)
    timer ??= setTimeout(() => {
      fs.appendFileSync(file, lines.join("\n") + "\n")
      lines = []
      timer = undefined
    }, 300)
  }
}

/** A served serial port. */
export interface SerialPort {
  readonly address: string
  readonly close: () => Promise<void>
}

/** The port's file operations (fs by default; tests count them). */
export interface PortIo {
  readonly open: (file: string) => Promise<number>
  readonly read: (fd: number, buffer: Buffer, off: number, length: number) => Promise<number>
  readonly write: (fd: number, buffer: Uint8Array, off: number, length: number) => Promise<number>
  readonly close: (fd: number) => void
}

const fsIo: PortIo = {
  open: (file) =>
    new Promise<number>((resolve, reject) =>
      fs.open(file, fs.constants.O_RDWR | fs.constants.O_NOCTTY, (e, fd) => (e ? reject(e) : resolve(fd))),
    ),
  read,
  write,
  close: (fd) => fs.close(fd, () => {}),
}

/**
 * Opens `file` read/write and serves it for as long as the agent runs: one session after another
 * on the same fd, each a ByteStream with `resync: true`.
 */
export const serve = async (
  file: string,
  startSession: (stream: ByteStream.ByteStream) => Session.AgentSession,
  log: (line: string) => void,
  io: PortIo = fsIo,
): Promise<SerialPort> => {
  const fd = await io.open(file).catch((e: NodeJS.ErrnoException) => {
    throw new StartError({
      message: `cannot open serial port ${file}: ${e.code === "ENOENT" ? "no such device" : e.code === "EACCES" ? "permission denied (run as root)" : e.message}`,
    })
  })
  const trace = tracer(process.env.CUVETTE_SERIAL_TRACE)
  let closed = false
  let sink: ByteStream.Sink | undefined

  // Outbound: one writer at a time, in order; the queue belongs to the current session only. Each
  // write is a thread-pool round trip and, in a VM, an exit to the host: what is queued leaves
  // together, small chunks (frame headers, control frames) gathered into one batch of up to
  // WRITE_BATCH bytes, a chunk at least that large written in place.
  let queue: Array<Uint8Array> = []
  let headOffset = 0 // bytes of queue[0] already written
  let queued = 0
  let writing = false
  let drainListeners: Array<() => void> = []
  const batch = Buffer.allocUnsafe(WRITE_BATCH)
  /** Copies the queue's first bytes into `batch`, up to WRITE_BATCH; returns how many. */
  const gather = () => {
    let n = 0
    for (let i = 0, off = headOffset; i < queue.length && n < WRITE_BATCH; i++, off = 0) {
      const chunk = queue[i]!
      const take = Math.min(chunk.byteLength - off, WRITE_BATCH - n)
      batch.set(chunk.subarray(off, off + take), n)
      n += take
    }
    return n
  }
  /** Drops `n` written bytes off the front of the queue. */
  const consume = (n: number) => {
    queued -= n
    while (n > 0) {
      const left = queue[0]!.byteLength - headOffset
      if (n < left) {
        headOffset += n
        return
      }
      n -= left
      queue.shift()
      headOffset = 0
    }
  }
  // The pump starts after the current turn, so a frame's header and payload, and the other frames
  // written in the same turn, are queued by then and leave in one write.
  let pumpScheduled = false
  const schedulePump = () => {
    if (writing || pumpScheduled) return
    pumpScheduled = true
    queueMicrotask(() => {
      pumpScheduled = false
      void pumpWrites()
    })
  }
  const pumpWrites = async () => {
    if (writing) return
    writing = true
    try {
      while (queue.length > 0 && !closed) {
        const head = queue[0]!
        const left = head.byteLength - headOffset
        const [buffer, off, length] = left >= WRITE_BATCH ? [head, headOffset, left] : [batch, 0, gather()]
        trace?.("write", length)
        const n = await io.write(fd, buffer, off, length)
        trace?.("wrote", n)
        consume(n)
        if (queued < HIGH_WATER) for (const l of drainListeners) l()
      }
    } catch (e) {
      // EIO on a pty whose other side closed: drop what this session queued; the next host starts afresh.
      log(`write to ${file} failed (${(e as Error).message}); waiting for the next host`)
      queue = []
      headOffset = 0
      queued = 0
    } finally {
      writing = false
    }
  }

  // Inbound: keep reading; EOF (no host) and EIO (pty hung up) mean "wait and read again", never "exit".
  // A virtio-serial read returns at most one of the port's 4 KiB buffers: reads land one after
  // another in a shared slab, each handed on as its own view (never written again), so a read costs
  // no allocation of its own.
  void (async () => {
    let slab = Buffer.allocUnsafe(READ_SLAB)
    let used = 0
    let quietReason: string | undefined
    while (!closed) {
      if (READ_SLAB - used < READ_SIZE) {
        slab = Buffer.allocUnsafe(READ_SLAB)
        used = 0
      }
      let reason = EOF
      try {
        const n = await io.read(fd, slab, used, READ_SIZE)
        if (n > 0) {
          const chunk = slab.subarray(used, used + n)
          used += n
          quietReason = undefined
          trace?.("read", n)
          sink?.data(chunk)
          continue
        }
      } catch (e) {
        reason = (e as NodeJS.ErrnoException).code ?? String(e)
      }
      if (closed) break
      if (reason !== EOF && reason !== quietReason) {
        log(`reading ${file}: ${reason}; waiting for a host`)
        quietReason = reason
      }
      await sleep(IDLE_POLL_MS)
    }
  })()

  const makeStream = (): ByteStream.ByteStream => {
    let active = true
    const enqueue = (chunk: Uint8Array) => {
      if (!active) return false
      // An empty chunk (a frame with no payload, written as header + payload) has nothing to write:
      // queued, it would be a head that no write ever consumes.
      if (chunk.byteLength === 0) return queued < HIGH_WATER
      queue.push(chunk)
      queued += chunk.byteLength
      schedulePump()
      return queued < HIGH_WATER
    }
    return {
      description: `serial:${file}`,
      resync: true,
      start: (s) => void (sink = s),
      write: enqueue,
      writev: (chunks) => {
        let ok = true
        for (const c of chunks) ok = enqueue(c)
        return ok
      },
      onDrain: (l) => void drainListeners.push(l),
      // A port cannot be half-closed: the next session reuses it.
      end: () => {},
      destroy: () => {
        if (!active) return
        active = false
        sink = undefined
        drainListeners = []
      },
    }
  }

  // Sessions follow each other on the same port for the life of the agent.
  const done = (async () => {
    while (!closed) {
      const stream = makeStream()
      const session = startSession(stream)
      const error = await session.ended
      stream.destroy()
      if (!closed)
        log(`session on ${file} ended${error ? `: ${error.message}` : ""}; waiting for the next host`)
    }
  })()
  void done

  return {
    address: `serial:${file}`,
    close: async () => {
      closed = true
      sink?.end()
      // A read blocked in the kernel is not interrupted by close(); it ends when the process does.
      io.close(fd)
    },
  }
}
