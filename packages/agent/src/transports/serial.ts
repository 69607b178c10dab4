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
import { type ByteStream, Retry, type Session } from "@cuvette/protocol"
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { StartError } from "./sockets.js"

/** The virtio-serial port name the host side uses (QEMU `-device virtserialport,name=...`). */
export const PORT_NAME = "org.cuvette.agent.0"

/** Poll interval while no host is attached (reads return EOF at once then). */
const IDLE_POLL_MS = 100
const READ_SIZE = 64 * 1024
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

const read = (fd: number, buffer: Buffer) =>
  new Promise<number>((resolve, reject) =>
    fs.read(fd, buffer, 0, buffer.byteLength, null, (e, n) => (e ? reject(e) : resolve(n))),
  )
const write = (fd: number, buffer: Uint8Array, off: number) =>
  new Promise<number>((resolve, reject) =>
    fs.write(fd, buffer, off, buffer.byteLength - off, null, (e, n) => (e ? reject(e) : resolve(n))),
  )
/** What a read of a port with no host attached returns: nothing (not an error). */
const EOF = "EOF"

/** A served serial port. */
export interface SerialPort {
  readonly address: string
  readonly close: () => Promise<void>
}

/**
 * Opens `file` read/write and serves it for as long as the agent runs: one session after another
 * on the same fd, each a ByteStream with `resync: true`.
 */
export const serve = async (
  file: string,
  startSession: (stream: ByteStream.ByteStream) => Session.AgentSession,
  log: (line: string) => void,
): Promise<SerialPort> => {
  const fd = await new Promise<number>((resolve, reject) =>
    fs.open(file, fs.constants.O_RDWR | fs.constants.O_NOCTTY, (e, fd) =>
      e
        ? reject(
            new StartError({
              message: `cannot open serial port ${file}: ${e.code === "ENOENT" ? "no such device" : e.code === "EACCES" ? "permission denied (run as root)" : e.message}`,
            }),
          )
        : resolve(fd),
    ),
  )
  let closed = false
  let sink: ByteStream.Sink | undefined
  // Outbound: one writer at a time, in order; the queue belongs to the current session only.
  let queue: Array<Uint8Array> = []
  let queued = 0
  let writing = false
  let drainListeners: Array<() => void> = []
  const pumpWrites = async () => {
    if (writing) return
    writing = true
    try {
      while (queue.length > 0 && !closed) {
        const chunk = queue[0]
        let off = 0
        while (off < chunk.byteLength) off += await write(fd, chunk, off)
        queue.shift()
        queued -= chunk.byteLength
        if (queued < HIGH_WATER) for (const l of drainListeners) l()
      }
    } catch (e) {
      // EIO on a pty whose other side closed: drop what this session queued; the next host starts afresh.
      log(`write to ${file} failed (${(e as Error).message}); waiting for the next host`)
      queue = []
      queued = 0
    } finally {
      writing = false
    }
  }

  // Inbound: keep reading; EOF (no host) and EIO (pty hung up) mean "wait and read again", never "exit".
  let quietReason: string | undefined
  const readChunk = Effect.suspend(() => {
    const buffer = Buffer.allocUnsafe(READ_SIZE)
    return Effect.tryPromise({
      try: () => read(fd, buffer),
      catch: (e) => (e as NodeJS.ErrnoException).code ?? String(e),
    }).pipe(Effect.flatMap((n) => (n === 0 ? Effect.fail(EOF) : Effect.succeed(buffer.subarray(0, n)))))
  })
  const nextChunk = Retry.retry(readChunk, {
    schedule: Retry.every(IDLE_POLL_MS),
    while: () => !closed,
    onRetry: (_, reason) => {
      if (reason === EOF || reason === quietReason) return
      log(`reading ${file}: ${reason}; waiting for a host`)
      quietReason = reason
    },
  })
  void (async () => {
    while (!closed) {
      const chunk = await Effect.runPromise(Effect.option(nextChunk))
      if (Option.isNone(chunk)) continue
      quietReason = undefined
      sink?.data(chunk.value)
    }
  })()

  const makeStream = (): ByteStream.ByteStream => {
    let active = true
    const enqueue = (chunk: Uint8Array) => {
      if (!active) return false
      queue.push(chunk)
      queued += chunk.byteLength
      void pumpWrites()
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
      fs.close(fd, () => {})
    },
  }
}
