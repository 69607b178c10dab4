// A listening socket the addon accepts on itself (src/stream_io.cc's accept thread), shaped like the part
// of net.Server the agent and client use: "connection" (a NativeSocket), "error", "close", close(),
// address(), listening, ref()/unref(). One accept path for AF_VSOCK and AF_HYPERV, in Node and Bun (libuv's
// Windows listen could not accept AF_HYPERV connections at all).
import { EventEmitter } from "node:events"
import type { ServerHandle, StreamBinding } from "./binding.js"
import { load } from "./loader.js"
import { fromCause } from "./NativeError.js"
import { NativeSocket } from "./socket.js"

// src/stream_io.cc: enum Kind.
const ERROR = 2
const CLOSED = 5
const CONNECTION = 6

export interface ServerOptions<A> {
  readonly allowHalfOpen?: boolean | undefined
  /** "vsock listen", "hvsock listen": for messages. */
  readonly operation: string
  readonly target: string
  /** What address() returns. */
  readonly address: A
  /** Called with each accepted socket and its fd / SOCKET before "connection" (e.g. to read its peer address). */
  readonly onAccept?: (socket: NativeSocket, fd: number) => void
}

export class NativeServer<A = unknown> extends EventEmitter {
  readonly #binding: StreamBinding
  readonly #handle: ServerHandle
  readonly #address: A
  #open = true
  #closed = false

  /** Takes ownership of a bound, listening socket (fd / SOCKET). */
  constructor(socket: number, options: ServerOptions<A>) {
    super()
    this.#binding = load()
    this.#address = options.address
    const accept = options.operation.replace(/listen$/, "accept")
    this.#handle = this.#binding.serverOpen(socket, (kind, value) => {
      if (kind === CONNECTION) {
        const fd = value as number
        // A connection that raced close() is dropped, as a closed net.Server would never have accepted it.
        if (!this.#open)
          return void new NativeSocket(fd, { operation: accept, target: options.target }).destroy()
        try {
          const connection = new NativeSocket(fd, {
            allowHalfOpen: options.allowHalfOpen,
            operation: accept,
            target: options.target,
          })
          options.onAccept?.(connection, fd)
          this.emit("connection", connection)
        } catch (cause) {
          this.emit("error", fromCause(accept, options.target, cause))
        }
      } else if (kind === ERROR) {
        // Accept errors (EMFILE, a peer that gave up) are reported; a fatal one also ends with CLOSED.
        this.emit("error", fromCause(accept, options.target, value))
      } else if (kind === CLOSED) {
        this.#open = false
        this.#closed = true
        this.emit("close")
      }
    })
  }

  get listening(): boolean {
    return this.#open
  }

  address(): A {
    return this.#address
  }

  /** Stops accepting; `callback` runs on "close", once the accept thread is gone and the socket closed. */
  close(callback?: (error?: Error) => void): this {
    if (this.#closed) {
      if (callback) process.nextTick(callback, new Error("Server is not running."))
      return this
    }
    this.#open = false
    if (callback) this.once("close", () => callback())
    this.#binding.serverClose(this.#handle)
    return this
  }

  ref(): this {
    if (!this.#closed) this.#binding.serverRef(this.#handle, true)
    return this
  }

  unref(): this {
    if (!this.#closed) this.#binding.serverRef(this.#handle, false)
    return this
  }
}
