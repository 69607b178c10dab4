// The console bridge (`cuvette console --serve`): an HTTP server whose WebSocket sessions attach to serial
// consoles (GET /consoles/NAME) and to agent shells under a guest pseudo-terminal (GET /shell/NAME), in the
// protocol Cloud Hypervisor-style tooling and websocat speak: a {"type":"connected"} text frame first, then
// the guest's output as binary frames; binary frames from the client go to the guest as they are; text
// frames are JSON control messages (resize, reset_session). The browser terminal page is served at /.
//
// Several viewers of one console share one connection to it: everyone sees all output from the moment they
// join, and input from every viewer goes to the guest. The console closes when its last viewer leaves.
import * as crypto from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Duplex, Readable, Writable } from "node:stream"
import { Data } from "effect"
import { WebSocket, WebSocketServer } from "ws"
import { pageAsset } from "./page/assets.js"

/** A terminal size in characters. */
export interface Size {
  readonly rows: number
  readonly cols: number
}

/** A guest program under a pseudo-terminal, as a shell session drives it. */
export interface Shell {
  readonly input: Writable
  readonly output: Readable
  resize(size: Size): void
  /** Its exit code once it ended and all its output was read; rejects when the agent failed. */
  readonly exited: Promise<number>
  /** Ends it (its viewer left). */
  close(): void
}

/** What the bridge serves and how it opens things. */
export interface BridgeOptions {
  readonly host: string
  /** 0 picks a free port. */
  readonly port: number
  /** Console name → SOURCE. */
  readonly consoles: ReadonlyMap<string, string>
  /** Shell name → agent target. */
  readonly shells: ReadonlyMap<string, string>
  readonly openConsole: (source: string) => Promise<Duplex>
  readonly openShell: (target: string, size: Size) => Promise<Shell>
  /** Required on every request but the page's files, when set. */
  readonly token: string | undefined
  /** Told why a console or shell could not be opened (a browser sees only a failed WebSocket). */
  readonly log?: (message: string) => void
}

/** A running bridge. */
export interface Bridge {
  /** http://HOST:PORT/ */
  readonly url: string
  readonly port: number
  /** Closes every session and the server. */
  close(): Promise<void>
}

/** A control message that cannot be understood; answered with an error frame, the session stays. */
export class ControlError extends Data.TaggedError("ControlError")<{ readonly message: string }> {}

/** A control message from the client. */
export type Control =
  | {
      readonly type: "resize"
      readonly cols: number
      readonly rows: number
      readonly width?: number
      readonly height?: number
    }
  | { readonly type: "reset_session" }

const isDimension = (v: unknown, max: number): v is number =>
  typeof v === "number" && Number.isInteger(v) && v > 0 && v <= max

/** Parses a text frame into a {@link Control}; throws a ControlError saying what is wrong. */
export const parseControl = (text: string): Control => {
  let m: unknown
  try {
    m = JSON.parse(text)
  } catch {
    throw new ControlError({
      message: `a control message must be JSON: ${JSON.stringify(text.slice(0, 60))}`,
    })
  }
  if (typeof m !== "object" || m === null || Array.isArray(m))
    throw new ControlError({ message: 'a control message must be a JSON object with a "type"' })
  const o = m as Record<string, unknown>
  switch (o.type) {
    case "resize": {
      if (!isDimension(o.cols, 10_000) || !isDimension(o.rows, 10_000))
        throw new ControlError({ message: "resize needs cols and rows: whole numbers from 1 to 10000" })
      for (const px of ["width", "height"] as const)
        if (o[px] !== undefined && !isDimension(o[px], 1_000_000))
          throw new ControlError({ message: `resize: ${px} must be a positive whole number of pixels` })
      return {
        type: "resize",
        cols: o.cols,
        rows: o.rows,
        ...(o.width !== undefined ? { width: o.width as number } : {}),
        ...(o.height !== undefined ? { height: o.height as number } : {}),
      }
    }
    case "reset_session":
      return { type: "reset_session" }
    default:
      throw new ControlError({
        message: `unknown control message type ${JSON.stringify(o.type)} (known: resize, reset_session)`,
      })
  }
}

/** What reset_session types, with a short gap after each: interrupt, a fresh line, end of input. */
export const RESET_SEQUENCE = ["\x03", "\r", "\x04"] as const
const RESET_GAP_MS = 100

/** Output waits (the source is paused) while a viewer has this much not yet sent. */
const HIGH_WATER = 1 << 20

/** True for an address only this machine can reach. */
export const isLoopback = (host: string): boolean => {
  const h = host.replace(/^\[(.*)\]$/, "$1").toLowerCase()
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1"
}

const hostnameOf = (hostHeader: string): string => {
  try {
    return new URL(`http://${hostHeader}`).hostname
  } catch {
    return ""
  }
}

const sameToken = (given: string, token: string): boolean => {
  const digest = (s: string) => crypto.createHash("sha256").update(s).digest()
  return crypto.timingSafeEqual(digest(given), digest(token))
}

interface Refusal {
  readonly status: number
  readonly message: string
}

/** `text` cut to what a close frame's reason holds (123 bytes). */
const closeReason = (text: string): string => {
  let t = text
  while (Buffer.byteLength(t) > 123) t = t.slice(0, -1)
  return t
}

const send = (ws: WebSocket, message: Record<string, unknown>) => {
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message))
}

/** Types the reset sequence into `input`, a short gap after each key. */
const reset = async (input: Writable) => {
  for (const key of RESET_SEQUENCE) {
    if (input.destroyed || input.writableEnded) return
    input.write(key)
    await new Promise((r) => setTimeout(r, RESET_GAP_MS))
  }
}

/** Binary frames to `input` (the WebSocket waits while `input` is full); text frames to `onControl`. */
const readFrames = (ws: WebSocket, input: Writable, onControl: (c: Control) => void) => {
  ws.on("message", (data, isBinary) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer)
    if (isBinary) {
      if (input.destroyed || input.writableEnded) return
      if (!input.write(bytes)) {
        ws.pause()
        input.once("drain", () => ws.resume())
      }
      return
    }
    try {
      onControl(parseControl(bytes.toString("utf8")))
    } catch (e) {
      send(ws, { type: "error", message: e instanceof ControlError ? e.message : String(e) })
    }
  })
}

/** Sends `output` to every viewer as binary frames, pausing it while any viewer is behind. */
const fanOut = (output: Readable, viewers: () => ReadonlyArray<WebSocket>) => {
  const behind = () => viewers().some((ws) => ws.bufferedAmount > HIGH_WATER)
  const sent = () => {
    if (output.isPaused() && !behind()) output.resume()
  }
  output.on("data", (chunk: Buffer) => {
    for (const ws of viewers()) if (ws.readyState === WebSocket.OPEN) ws.send(chunk, { binary: true }, sent)
    if (behind()) output.pause()
  })
  return sent
}

/** One open console and the viewers sharing it. */
class SharedConsole {
  readonly viewers = new Set<WebSocket>()
  private readonly resumeOutput: () => void

  constructor(
    readonly name: string,
    readonly source: string,
    readonly stream: Duplex,
    private readonly onGone: () => void,
  ) {
    this.resumeOutput = fanOut(stream, () => [...this.viewers])
    // Held until the first viewer has joined, so what the console prints on connecting is not lost.
    stream.pause()
    const end = (code: number, reason: string) => {
      this.onGone()
      for (const ws of this.viewers) ws.close(code, reason)
    }
    stream.on("error", (e: Error) => end(1011, closeReason(`console error: ${e.message}`)))
    stream.on("close", () => end(1000, "the console closed"))
    stream.on("end", () => stream.destroy())
  }

  join(ws: WebSocket) {
    // It closed while this viewer's upgrade was under way.
    if (this.stream.destroyed) return ws.close(1000, "the console closed")
    this.viewers.add(ws)
    send(ws, {
      type: "connected",
      kind: "console",
      name: this.name,
      source: this.source,
      viewers: this.viewers.size,
    })
    // A serial line has no size to set: resize is accepted (so terminals may send it) and changes nothing.
    readFrames(ws, this.stream, (c) => {
      if (c.type === "reset_session") void reset(this.stream)
    })
    this.resumeOutput()
    ws.on("close", () => {
      this.viewers.delete(ws)
      this.resumeOutput()
      if (this.viewers.size === 0) {
        this.onGone()
        this.stream.destroy()
      }
    })
  }
}

/**
 * The request's path and query (never read as a host: a path of "//x" stays a path); undefined for a
 * request that names no path of ours (a proxy's absolute URL).
 */
const requestUrl = (req: http.IncomingMessage): URL | undefined => {
  if (req.url === undefined || !req.url.startsWith("/")) return undefined
  try {
    return new URL(`http://bridge${req.url}`)
  } catch {
    return undefined
  }
}

/** Parses `?cols=&rows=` (the size a shell starts with); 80x24 otherwise. */
const initialSize = (url: URL): Size => {
  const n = (k: string, dflt: number) => {
    const v = Number(url.searchParams.get(k))
    return isDimension(v, 10_000) ? v : dflt
  }
  return { cols: n("cols", 80), rows: n("rows", 24) }
}

/** Starts the bridge; resolves once it listens. */
export const serve = async (options: BridgeOptions): Promise<Bridge> => {
  const loopback = isLoopback(options.host)
  const open = new Map<string, Promise<SharedConsole>>()
  const shells = new Set<Shell>()
  const wss = new WebSocketServer({ noServer: true })

  /** Why a request is refused before anything is opened, or undefined. */
  const refusal = (req: http.IncomingMessage, url: URL, needsToken: boolean): Refusal | undefined => {
    const host = req.headers.host ?? ""
    // On a loopback bind only loopback names are served: a page on another site whose name was pointed at
    // 127.0.0.1 (DNS rebinding) sends its own name as Host.
    if (loopback && !isLoopback(hostnameOf(host)))
      return { status: 421, message: `this bridge serves localhost only, not ${JSON.stringify(host)}` }
    const origin = req.headers.origin
    if (origin !== undefined && origin !== "null") {
      let originHost: string | undefined
      try {
        originHost = new URL(origin).host
      } catch {
        originHost = undefined
      }
      if (originHost !== host)
        return {
          status: 403,
          message: `cross-origin request refused: Origin ${origin} is not this bridge (${host})`,
        }
    } else if (origin === "null") {
      return { status: 403, message: "cross-origin request refused: Origin null" }
    }
    if (needsToken && options.token !== undefined) {
      const auth = req.headers.authorization
      const given =
        url.searchParams.get("token") ?? (auth?.startsWith("Bearer ") ? auth.slice(7).trim() : undefined)
      if (given === undefined)
        return { status: 401, message: "this bridge needs a token: ?token=T or Authorization: Bearer T" }
      if (!sameToken(given, options.token)) return { status: 401, message: "wrong token" }
    }
    return undefined
  }

  /** The console or shell a path names: [kind, name], or undefined. */
  const route = (url: URL): readonly ["consoles" | "shell", string] | undefined => {
    const m = /^\/(consoles|shell)\/([^/]+)$/.exec(url.pathname)
    if (m === null) return undefined
    try {
      return [m[1] as "consoles" | "shell", decodeURIComponent(m[2]!)]
    } catch {
      return undefined
    }
  }

  const lookup = (kind: "consoles" | "shell", name: string): Refusal | undefined =>
    (kind === "consoles" ? options.consoles : options.shells).has(name)
      ? undefined
      : {
          status: 404,
          message: `no ${kind === "consoles" ? "console" : "shell"} named ${JSON.stringify(name)} (known: ${
            [...(kind === "consoles" ? options.consoles : options.shells).keys()].join(", ") || "none"
          })`,
        }

  const shareConsole = (name: string): Promise<SharedConsole> => {
    let shared = open.get(name)
    if (shared === undefined) {
      const source = options.consoles.get(name)!
      const gone = () => {
        if (open.get(name) === shared) open.delete(name)
      }
      shared = options.openConsole(source).then((stream) => new SharedConsole(name, source, stream, gone))
      shared.catch(gone)
      open.set(name, shared)
    }
    return shared
  }

  const server = http.createServer((req, res) => {
    const reply = (status: number, body: string | Buffer, contentType = "text/plain; charset=utf-8") => {
      res.writeHead(status, {
        "Content-Type": contentType,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy":
          "default-src 'self'; connect-src 'self' ws: wss:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
      })
      res.end(typeof body === "string" ? body + (body.endsWith("\n") ? "" : "\n") : body)
    }
    const url = requestUrl(req)
    if (url === undefined) return reply(400, "a request must name a path")
    if (req.method !== "GET" && req.method !== "HEAD") return reply(405, "only GET is served")
    let asset: ReturnType<typeof pageAsset>
    try {
      asset = pageAsset(url.pathname)
    } catch (e) {
      return reply(500, `the page's files are missing: ${e instanceof Error ? e.message : String(e)}`)
    }
    const refused = refusal(req, url, asset === undefined)
    if (refused !== undefined) return reply(refused.status, refused.message)
    if (asset !== undefined) return reply(200, asset.body, asset.contentType)
    if (url.pathname === "/consoles") {
      const list = {
        consoles: [...options.consoles].map(([name, source]) => ({ name, source })),
        shells: [...options.shells].map(([name, target]) => ({ name, target })),
      }
      return reply(200, JSON.stringify(list), "application/json")
    }
    const found = route(url)
    if (found === undefined) return reply(404, `nothing at ${url.pathname}`)
    const missing = lookup(...found)
    if (missing !== undefined) return reply(missing.status, missing.message)
    return reply(
      426,
      `${url.pathname} is a WebSocket: connect with a WebSocket client (websocat, the page at /)`,
    )
  })

  const reject = (socket: Duplex, { status, message }: Refusal) => {
    const body = `${message}\n`
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}\r\nContent-Type: text/plain; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
  }

  const unopenable = (socket: Duplex, what: string, error: unknown) => {
    const message = `${what}: ${error instanceof Error ? error.message : String(error)}`
    options.log?.(message)
    reject(socket, { status: 502, message })
  }

  const upgrade = async (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = requestUrl(req)
    if (url === undefined) return reject(socket, { status: 400, message: "a request must name a path" })
    const found = route(url)
    const refused =
      refusal(req, url, true) ??
      (found === undefined ? { status: 404, message: `no WebSocket at ${url.pathname}` } : lookup(...found))
    if (refused !== undefined || found === undefined) return reject(socket, refused!)
    const [kind, name] = found
    if (kind === "consoles") {
      let shared: SharedConsole
      try {
        shared = await shareConsole(name)
      } catch (e) {
        return unopenable(socket, `console ${name} (${options.consoles.get(name)})`, e)
      }
      if (socket.destroyed) return
      wss.handleUpgrade(req, socket, head, (ws) => shared.join(ws))
      return
    }
    const target = options.shells.get(name)!
    let shell: Shell
    try {
      shell = await options.openShell(target, initialSize(url))
    } catch (e) {
      return unopenable(socket, `shell ${name} (${target})`, e)
    }
    if (socket.destroyed) return shell.close()
    shells.add(shell)
    wss.handleUpgrade(req, socket, head, (ws) =>
      runShell(ws, name, target, shell, () => shells.delete(shell)),
    )
  }

  server.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => undefined)
    upgrade(req, socket, head).catch((e: unknown) =>
      reject(socket, { status: 500, message: e instanceof Error ? e.message : String(e) }),
    )
  })

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(options.port, options.host, () => {
      server.off("error", reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const shown = options.host.includes(":") ? `[${options.host}]` : options.host
  return {
    url: `http://${shown}:${port}/`,
    port,
    close: async () => {
      for (const ws of wss.clients) ws.close(1001, "the bridge is stopping")
      for (const shared of open.values())
        void shared.then(
          (s) => s.stream.destroy(),
          () => undefined,
        )
      for (const shell of shells) shell.close()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
        for (const ws of wss.clients) ws.terminate()
      })
    },
  }
}

/** One shell session: output out, input and resizes in, and its exit code as the last frame. */
const runShell = (ws: WebSocket, name: string, target: string, shell: Shell, onEnd: () => void) => {
  send(ws, { type: "connected", kind: "shell", name, target })
  fanOut(shell.output, () => [ws])
  readFrames(ws, shell.input, (c) => {
    if (c.type === "resize") shell.resize({ rows: c.rows, cols: c.cols })
    else void reset(shell.input)
  })
  shell.exited.then(
    (code) => {
      send(ws, { type: "exit", code })
      ws.close(1000, "the shell exited")
    },
    (e: unknown) => {
      send(ws, { type: "error", message: e instanceof Error ? e.message : String(e) })
      ws.close(1011, "the shell failed")
    },
  )
  ws.on("close", () => {
    onEnd()
    shell.close()
  })
}
