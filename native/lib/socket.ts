// A connected socket the addon drives itself (src/stream_io.cc), as a stream.Duplex usable where a
// net.Socket was: a reader thread pushes chunks (pausing while push() says the buffer is full), a writer
// thread sends each _write/_writev and completes it, _final half-closes, destroy wakes both threads and
// "close" follows once they are gone and the socket is closed. Only N-API, so Node and Bun run it alike.
import { Duplex } from "node:stream"
import type { StreamBinding, StreamHandle } from "./binding.js"
import { load } from "./loader.js"
import { fromCause } from "./NativeError.js"

// src/stream_io.cc: enum Kind.
const DATA = 0
const END = 1
const ERROR = 2
const WRITTEN = 3
const FINISHED = 4
const CLOSED = 5

export interface SocketOptions {
  /** Keep writing after the peer's EOF (net.Socket's option; default false). */
  readonly allowHalfOpen?: boolean | undefined
  /** For messages: what opened the socket ("vsock connect", "hvsock accept") and where ("3:4919"). */
  readonly operation: string
  readonly target: string
}

type Callback = (error?: Error | null) => void

export class NativeSocket extends Duplex {
  readonly #binding: StreamBinding
  readonly #handle: StreamHandle
  readonly #target: string
  // Each in-flight write keeps its chunks referenced: the writer thread reads them until WRITTEN.
  #writes: Array<{ readonly chunks: ReadonlyArray<Uint8Array>; readonly callback: Callback }> = []
  #final: Callback | undefined
  #closed: (() => void) | undefined
  #isClosed = false
  /** net.Socket compatibility: VM sockets have no IP peer. */
  readonly remoteAddress: string | undefined = undefined
  readonly remotePort: number | undefined = undefined

  /** Takes ownership of a connected socket (fd / SOCKET). */
  constructor(socket: number, options: SocketOptions) {
    // A 1 MiB write buffer lets _writev hand the writer thread several chunks while it sends (measured:
    // about twice the throughput of 16 KiB); the reader bounds its own side.
    super({ allowHalfOpen: options.allowHalfOpen === true, writableHighWaterMark: 1024 * 1024 })
    this.#binding = load()
    this.#target = options.target
    // "vsock connect" → errors read "vsock receive 3:4919 failed: …".
    const operation = options.operation.replace(/ (connect|accept)$/, "")
    this.#handle = this.#binding.streamOpen(socket, (kind, value) => {
      switch (kind) {
        case DATA:
          return this.destroyed || this.push(value as Buffer)
        case END:
          this.push(null)
          return
        case ERROR:
          this.destroy(fromCause(`${operation} receive`, this.#target, value))
          return
        case WRITTEN:
          this.#writes.shift()?.callback(this.#error(operation, "send", value))
          return
        case FINISHED: {
          const callback = this.#final
          this.#final = undefined
          callback?.(this.#error(operation, "half-close", value))
          return
        }
        case CLOSED:
          this.#isClosed = true
          this.#writes = []
          this.#closed?.()
          // The socket can only close after destroy: both threads wait for it.
          return
      }
    })
  }

  #error(operation: string, what: string, value: unknown): Error | null {
    return value ? fromCause(`${operation} ${what}`, this.#target, value) : null
  }

  override _read(): void {
    this.#binding.streamResume(this.#handle)
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    this.#writes.push({ chunks: [chunk], callback })
    this.#binding.streamWrite(this.#handle, [chunk])
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: Callback): void {
    const buffers = chunks.map((c) => c.chunk)
    this.#writes.push({ chunks: buffers, callback })
    this.#binding.streamWrite(this.#handle, buffers)
  }

  override _final(callback: Callback): void {
    this.#final = callback
    this.#binding.streamEnd(this.#handle)
  }

  override _destroy(error: Error | null, callback: Callback): void {
    if (this.#isClosed) return callback(error)
    this.#closed = () => callback(error)
    this.#binding.streamDestroy(this.#handle)
  }

  /** net.Socket compatibility: no Nagle on VM sockets, nothing to set. */
  setNoDelay(_noDelay?: boolean): this {
    return this
  }

  /** net.Socket compatibility: VM sockets have no TCP keepalive. */
  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this
  }

  /** Whether this socket keeps the event loop alive (as net.Socket's ref/unref). */
  ref(): this {
    if (!this.#isClosed) this.#binding.streamRef(this.#handle, true)
    return this
  }

  unref(): this {
    if (!this.#isClosed) this.#binding.streamRef(this.#handle, false)
    return this
  }
}
