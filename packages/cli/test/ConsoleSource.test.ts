// Console sources: the SOURCE forms, and opening real Unix sockets, TCP on loopback and a pty (python's
// openpty) as one byte stream, with the worded failures for nothing there, permission and non-consoles.
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { Duplex } from "node:stream"
import { afterEach, describe, expect, it } from "vitest"
import {
  InvalidSource,
  NotAConsole,
  NothingListening,
  PermissionDenied,
  SourceFailed,
  openSource,
  parseSource,
} from "../src/internal/console/source.js"

const dirs: Array<string> = []
const cleanups: Array<() => void> = []
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-console-"))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const f of cleanups.splice(0)) f()
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true })
})

/** An echo server: what it receives comes back prefixed with "echo:". */
const echoServer = (listen: (s: net.Server) => void): Promise<net.Server> =>
  new Promise((resolve) => {
    const server = net.createServer((c) => c.on("data", (d) => c.write(`echo:${d}`)))
    server.on("listening", () => resolve(server))
    listen(server)
    cleanups.push(() => server.close())
  })

const firstData = (s: Duplex): Promise<string> =>
  new Promise((resolve, reject) => {
    s.once("data", (d: Buffer) => resolve(d.toString()))
    s.once("error", reject)
  })

const rejection = async (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  )

describe("parseSource", () => {
  it("reads paths, unix:PATH, tcp:HOST:PORT (IPv6 in brackets) and named pipes", () => {
    expect(parseSource("/tmp/vm/console.sock")).toEqual({ kind: "path", path: "/tmp/vm/console.sock" })
    expect(parseSource("/dev/ttyS0")).toEqual({ kind: "path", path: "/dev/ttyS0" })
    expect(parseSource("unix:rel/console.sock")).toEqual({ kind: "path", path: "rel/console.sock" })
    expect(parseSource("tcp:127.0.0.1:4555")).toEqual({ kind: "tcp", host: "127.0.0.1", port: 4555 })
    expect(parseSource("tcp:localhost:1")).toEqual({ kind: "tcp", host: "localhost", port: 1 })
    expect(parseSource("tcp:[::1]:65535")).toEqual({ kind: "tcp", host: "::1", port: 65535 })
    expect(parseSource("\\\\.\\pipe\\vm-com1")).toEqual({ kind: "pipe", path: "\\\\.\\pipe\\vm-com1" })
    // As a POSIX shell or a config file may leave it: forward slashes, or the \\?\ prefix.
    expect(parseSource("//./pipe/vm-com1")).toEqual({ kind: "pipe", path: "\\\\.\\pipe\\vm-com1" })
    expect(parseSource("\\\\?\\pipe\\My VM COM1")).toEqual({ kind: "pipe", path: "\\\\.\\pipe\\My VM COM1" })
  })

  it("refuses malformed sources with a message naming the forms", () => {
    for (const bad of ["", "tcp:host", "tcp:host:0", "tcp:host:70000", "tcp::4555", "tcp:[::1]", "unix:"]) {
      const e = (() => {
        try {
          parseSource(bad)
        } catch (error) {
          return error
        }
      })()
      expect(e, bad).toBeInstanceOf(InvalidSource)
    }
    expect(() => parseSource("tcp:host:0")).toThrow(/tcp:HOST:PORT/)
  })

  it.skipIf(process.platform === "win32")("a named pipe off Windows says where it works", async () => {
    const e = await rejection(openSource(parseSource("\\\\.\\pipe\\x")))
    expect(e).toBeInstanceOf(SourceFailed)
    expect(String((e as Error).message)).toMatch(/Windows-only/)
  })
})

describe.skipIf(process.platform === "win32")("openSource", () => {
  it("a Unix socket: bytes both ways", async () => {
    const sock = path.join(tmp(), "console.sock")
    await echoServer((s) => s.listen(sock))
    const stream = await openSource(parseSource(sock))
    stream.write("hello")
    expect(await firstData(stream)).toBe("echo:hello")
    stream.destroy()
  })

  it("tcp on loopback: bytes both ways", async () => {
    const server = await echoServer((s) => s.listen(0, "127.0.0.1"))
    const port = (server.address() as net.AddressInfo).port
    const stream = await openSource(parseSource(`tcp:127.0.0.1:${port}`))
    stream.write("hi")
    expect(await firstData(stream)).toBe("echo:hi")
    stream.destroy()
  })

  it("a pty device, opened raw: the other side sees our bytes and we see its", async () => {
    // python holds the pty's master: it prints the slave's name, then answers what it reads.
    const py = spawn("python3", [
      "-c",
      [
        "import os, pty, tty, sys",
        "m, s = pty.openpty()",
        "tty.setraw(s)",
        "print(os.ttyname(s), flush=True)",
        "data = os.read(m, 100)",
        "os.write(m, b'pty:' + data)",
        "sys.stdin.read()",
      ].join("\n"),
    ])
    cleanups.push(() => py.kill())
    const name = await new Promise<string>((resolve) =>
      py.stdout.once("data", (d: Buffer) => resolve(d.toString().trim())),
    )
    const stream = await openSource(parseSource(name))
    stream.write("ping")
    expect(await firstData(stream)).toBe("pty:ping")
    stream.destroy()
  })

  it("nothing there: NothingListening for a missing path and for a socket no one listens on", async () => {
    const dir = tmp()
    const missing = await rejection(openSource(parseSource(path.join(dir, "none.sock"))))
    expect(missing).toBeInstanceOf(NothingListening)
    expect((missing as Error).message).toMatch(
      /nothing is listening on .*none\.sock \(it does not exist\).*-chardev socket.*\? Pass --reconnect to wait/,
    )
    // A socket file left behind by a VM that was killed: bound, nobody listening.
    const stale = path.join(dir, "stale.sock")
    execFileSync("python3", [
      "-c",
      "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])",
      stale,
    ])
    const refused = await rejection(openSource(parseSource(stale)))
    expect(refused).toBeInstanceOf(NothingListening)
    // And tcp: a port we just freed.
    const tcp = await echoServer((s) => s.listen(0, "127.0.0.1"))
    const port = (tcp.address() as net.AddressInfo).port
    await new Promise((r) => tcp.close(r))
    const e = await rejection(openSource(parseSource(`tcp:127.0.0.1:${port}`)))
    expect(e).toBeInstanceOf(NothingListening)
    expect((e as Error).message).toMatch(/connection refused/)
  })

  it("not a console: a regular file, a directory, a device that is no terminal", async () => {
    const dir = tmp()
    const file = path.join(dir, "log.txt")
    fs.writeFileSync(file, "x")
    for (const [p, what] of [
      [file, "a regular file"],
      [dir, "a directory"],
      ["/dev/null", "a device that is not a terminal"],
    ] as const) {
      const e = await rejection(openSource(parseSource(p)))
      expect(e, p).toBeInstanceOf(NotAConsole)
      expect((e as Error).message).toContain(`${p} is ${what}, not a console`)
    }
  })

  it.skipIf(process.getuid?.() === 0)(
    "permission denied: a socket we may not connect to (root may connect to any; the CLI test runs it as nobody)",
    async () => {
      const sock = path.join(tmp(), "console.sock")
      await echoServer((s) => s.listen(sock))
      fs.chmodSync(sock, 0o000)
      const e = await rejection(openSource(parseSource(sock)))
      expect(e).toBeInstanceOf(PermissionDenied)
      expect((e as Error).message).toMatch(/permission denied opening .*console\.sock: check its permissions/)
    },
  )

  it("an abort while connecting rejects with the signal's reason", async () => {
    const sock = path.join(tmp(), "console.sock")
    await echoServer((s) => s.listen(sock))
    const controller = new AbortController()
    controller.abort("SIGTERM")
    expect(await rejection(openSource(parseSource(sock), { signal: controller.signal }))).toBe("SIGTERM")
  })
})
