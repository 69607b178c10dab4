/**
 * The abstract byte stream a session runs on: any reliable ordered transport (Unix, TCP, AF_VSOCK,
 * AF_HYPERV, hybrid vsock, virtio-serial) or an in-memory pair. The protocol does no I/O itself;
 * transports adapt to this shape, usually with {@link fromDuplex}.
 */

/** Receives inbound bytes and the end of the stream. */
export interface Sink {
  readonly data: (chunk: Uint8Array) => void
  /** The stream ended: cleanly (no error) or with an error. Called at most once. */
  readonly end: (error?: unknown) => void
}

/** A reliable ordered byte stream. */
export interface ByteStream {
  /** Starts delivering inbound bytes to `sink`. Called once. */
  readonly start: (sink: Sink) => void
  /** Queues bytes. Returns false when the transport's buffer is full: wait for `onDrain` before more data. */
  readonly write: (chunk: Uint8Array) => boolean
  /** Queues a frame's parts so they leave together (one writev where the transport has it). */
  readonly writev?: (chunks: ReadonlyArray<Uint8Array>) => boolean
  /** Registers a listener called each time a full buffer has drained. */
  readonly onDrain: (listener: () => void) => void
  /** Half-closes the sending side once queued bytes are flushed. */
  readonly end: () => void
  /** Tears the stream down now. */
  readonly destroy: () => void
  /** Stops delivering inbound bytes until `resume` (the session is not reading for now). */
  readonly pause?: () => void
  readonly resume?: () => void
  /**
   * True for transports without connection semantics (virtio-serial): the agent does not end the
   * session on EOF alone and resynchronises on the magic when a new client appears.
   */
  readonly resync?: boolean
  /** Where this stream goes, for messages ("unix:/run/agent.sock"). */
  readonly description: string
}

/** The subset of a Node.js `stream.Duplex` / `net.Socket` the adapter needs (structural: no Node import). */
export interface DuplexLike {
  on(event: "data", listener: (chunk: Uint8Array) => void): unknown
  on(event: "end" | "close" | "drain", listener: () => void): unknown
  on(event: "error", listener: (error: Error) => void): unknown
  write(chunk: Uint8Array): boolean
  end(): unknown
  destroy(error?: Error): unknown
  cork?(): void
  uncork?(): void
  setNoDelay?(noDelay?: boolean): unknown
  pause?(): unknown
  resume?(): unknown
}

/** What a socket created with `onread` (`net.connect`'s option, in Node and Bun) reads with. */
export interface OnRead {
  readonly buffer: () => Uint8Array
  /** Returns true: go on reading (false would pause the socket). */
  readonly callback: (nread: number, buffer: Uint8Array) => boolean
}

/** A socket's inbound bytes delivered some other way than its "data" events (see {@link slabReader}). */
export interface Reader {
  readonly listen: (data: (chunk: Uint8Array) => void) => void
}

/**
 * Size of a {@link slabReader}'s slab; a read never gets less than MIN_READ of it. With 4 MiB slabs a
 * long-lived client's downloads rose from 1.1 to 2 CPU s/GiB; 512 KiB and 1 MiB stayed at 1.0–1.1.
 */
export const SLAB_SIZE = 1024 * 1024
const MIN_READ = 64 * 1024

/**
 * Reads a socket into consecutive regions of a large slab (`net.connect({ onread })`) instead of a
 * fresh 64 KiB buffer per read: one read takes what the socket holds, no buffer is allocated per read,
 * and bytes of consecutive reads lie side by side, so the decoder hands out a frame that spans reads as
 * one view instead of copying it together. No region is read into twice (the next read goes after the
 * last, the next slab is a new one): every chunk delivered, and every payload viewing it, stays intact.
 */
export const slabReader = (slabSize = SLAB_SIZE): Reader & { readonly onread: OnRead } => {
  let slab = new Uint8Array(slabSize)
  let used = 0
  let deliver: ((chunk: Uint8Array) => void) | undefined
  const early: Array<Uint8Array> = []
  return {
    onread: {
      buffer: () => {
        if (slab.byteLength - used < MIN_READ) {
          slab = new Uint8Array(slabSize)
          used = 0
        }
        return slab.subarray(used)
      },
      callback: (nread, buffer) => {
        let chunk: Uint8Array
        if (buffer.buffer === slab.buffer) {
          chunk = buffer.subarray(0, nread)
          used = buffer.byteOffset + nread
        } else chunk = buffer.slice(0, nread) // a runtime that read into its own buffer may reuse it
        if (deliver) deliver(chunk)
        else early.push(chunk)
        return true
      },
    },
    listen: (data) => {
      deliver = data
      for (const c of early.splice(0)) data(c)
    },
  }
}

/** Adapts a Node.js Duplex (a `net.Socket`, a `tls.TLSSocket`, a PassThrough pair) to a ByteStream. */
export const fromDuplex = (
  socket: DuplexLike,
  options: {
    readonly description: string
    readonly resync?: boolean
    /** Where the socket's bytes come from when it was created with `onread` ({@link slabReader}). */
    readonly reader?: Reader
  },
): ByteStream => {
  let ended = false
  let error: unknown
  // Frames written in the same turn (Eof + Result, header + payload, several data frames) leave in
  // one writev instead of one syscall each: cork on the first write, uncork once the turn is over.
  let corked = false
  const batch = () => {
    if (corked || !socket.cork || !socket.uncork) return
    corked = true
    socket.cork()
    queueMicrotask(() => {
      corked = false
      socket.uncork!()
    })
  }
  try {
    socket.setNoDelay?.(true)
  } catch {
    // Not every socket kind has Nagle (vsock, hvsock): nothing to turn off.
  }
  return {
    description: options.description,
    ...(options.resync ? { resync: true } : {}),
    start: (sink) => {
      const finish = () => {
        if (ended) return
        ended = true
        sink.end(error)
      }
      if (options.reader) {
        options.reader.listen(sink.data)
        // Without a "data" listener the stream must be set flowing, or it never emits "end".
        socket.resume?.()
      } else socket.on("data", sink.data)
      socket.on("error", (e) => {
        error ??= e
        finish()
      })
      socket.on("end", finish)
      socket.on("close", finish)
    },
    write: (chunk) => {
      batch()
      return socket.write(chunk)
    },
    writev: (chunks) => {
      batch()
      let ok = true
      for (const c of chunks) ok = socket.write(c)
      return ok
    },
    onDrain: (listener) => void socket.on("drain", listener),
    end: () => void socket.end(),
    destroy: () => void socket.destroy(),
    ...(socket.pause && socket.resume
      ? { pause: () => void socket.pause!(), resume: () => void socket.resume!() }
      : {}),
  }
}

/**
 * Two connected in-memory streams, for tests and in-process use. `highWaterMark` bounds how much one
 * side may queue before `write` reports backpressure.
 */
export const pair = (
  options: { readonly highWaterMark?: number } = {},
): readonly [ByteStream, ByteStream] => {
  const hwm = options.highWaterMark ?? 1024 * 1024
  interface End {
    sink?: Sink
    early: Array<Uint8Array>
    ended: boolean
    endPending: boolean
    queued: number
    drain: Array<() => void>
  }
  const mk = (): End => ({ early: [], ended: false, endPending: false, queued: 0, drain: [] })
  const ends = [mk(), mk()] as const
  const make = (self: End, peer: End, name: string): ByteStream => {
    const deliver = (chunk: Uint8Array) => {
      self.queued += chunk.byteLength
      queueMicrotask(() => {
        self.queued -= chunk.byteLength
        if (peer.ended) return
        if (peer.sink) peer.sink.data(chunk)
        else peer.early.push(chunk)
        if (self.queued < hwm) for (const l of self.drain) l()
      })
      return self.queued < hwm
    }
    const endPeer = (error?: unknown) => {
      if (peer.ended) return
      queueMicrotask(() => {
        if (peer.ended) return
        peer.ended = true
        peer.sink?.end(error)
      })
    }
    return {
      description: name,
      start: (sink) => {
        self.sink = sink
        for (const c of self.early.splice(0)) sink.data(c)
      },
      // Copy: the sender may reuse its buffer, as with a real socket.
      write: (chunk) => deliver(chunk.slice()),
      writev: (chunks) => {
        let ok = true
        for (const c of chunks) ok = deliver(c.slice())
        return ok
      },
      onDrain: (l) => void self.drain.push(l),
      end: () => endPeer(),
      destroy: () => {
        endPeer(new Error("destroyed"))
        if (!self.ended) {
          self.ended = true
          queueMicrotask(() => self.sink?.end(new Error("destroyed")))
        }
      },
    }
  }
  return [make(ends[0], ends[1], "memory:a"), make(ends[1], ends[0], "memory:b")] as const
}
