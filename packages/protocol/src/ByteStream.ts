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

/** Adapts a Node.js Duplex (a `net.Socket`, a `tls.TLSSocket`, a PassThrough pair) to a ByteStream. */
export const fromDuplex = (
  socket: DuplexLike,
  options: { readonly description: string; readonly resync?: boolean },
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
      socket.on("data", sink.data)
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
