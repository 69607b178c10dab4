// The hybrid vsock handshake against a fake VMM: OK split across reads, agent bytes right after the
// OK line kept, garbage and silence turned into clear errors.
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as hybrid from "../src/internal/transports/hybrid.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-hy-"))
const servers: Array<net.Server> = []
afterAll(() => servers.forEach((s) => s.close()))

/** A fake VMM: after `CONNECT n\n`, runs `script` on the socket. */
const vmm = async (name: string, script: (s: net.Socket, line: string) => void) => {
  const p = path.join(tmp, name)
  const server = net.createServer((s) => {
    let buf = ""
    const onData = (c: Buffer) => {
      buf += c.toString("latin1")
      const nl = buf.indexOf("\n")
      if (nl < 0) return
      s.off("data", onData)
      script(s, buf.slice(0, nl))
    }
    s.on("data", onData)
    s.on("error", () => {})
  })
  await new Promise<void>((r) => server.listen(p, r))
  servers.push(server)
  return p
}
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms))

const firstBytes = (stream: Awaited<ReturnType<typeof hybrid.dial>>, n: number) =>
  new Promise<string>((resolve) => {
    let got = ""
    stream.start({
      data: (c) => {
        got += Buffer.from(c).toString("latin1")
        if (got.length >= n) resolve(got)
      },
      end: () => resolve(got),
    })
  })

describe("hybrid vsock handshake", () => {
  it("sends CONNECT <port> and accepts an OK split across reads, keeping the bytes after it", async () => {
    let line = ""
    const p = await vmm("split.sock", async (s, l) => {
      line = l
      s.write("O")
      await delay(20)
      s.write("K 10737")
      await delay(20)
      s.write("41824\nAGENT-BYTES")
      await delay(20)
      s.write("-MORE")
    })
    const stream = await hybrid.dial(p, 1234, `hybrid:${p}:1234`, { deadline: Date.now() + 2000 })
    expect(line).toBe("CONNECT 1234")
    expect(await firstBytes(stream, 16)).toBe("AGENT-BYTES-MORE")
    stream.destroy()
  })

  it("keeps agent bytes that arrive in the same read as the OK line", async () => {
    const p = await vmm("same.sock", (s) => s.write(Buffer.from("OK 5\n\xb5CUVETTE", "latin1")))
    const stream = await hybrid.dial(p, 4919, `hybrid:${p}`, { deadline: Date.now() + 2000 })
    expect(await firstBytes(stream, 8)).toBe("\xb5CUVETTE")
    stream.destroy()
  })

  it("a garbage line is a PROTOCOL error that says what arrived", async () => {
    const p = await vmm("garbage.sock", (s) => s.write("HTTP/1.1 400 Bad Request\r\n"))
    const e = await hybrid.dial(p, 4919, `hybrid:${p}`, { deadline: Date.now() + 2000 }).catch((x) => x)
    expect(e).toMatchObject({ _tag: "ConnectError", reason: "PROTOCOL" })
    expect(e.message).toContain('expected "OK <port>" from the VMM, got "HTTP/1.1 400 Bad Request"')
    expect(e.message).toContain("for a plain agent socket use unix:PATH")
  })

  it("an endless line without a newline is a PROTOCOL error, not a hang", async () => {
    const p = await vmm("endless.sock", (s) => s.write("x".repeat(500)))
    const e = await hybrid.dial(p, 4919, `hybrid:${p}`, { deadline: Date.now() + 2000 }).catch((x) => x)
    expect(e).toMatchObject({ reason: "PROTOCOL" })
  })

  it("a VMM that never answers hits the deadline (no hanging OK read)", async () => {
    const p = await vmm("silent.sock", () => {})
    const t0 = Date.now()
    const e = await hybrid.dial(p, 4919, `hybrid:${p}`, { deadline: Date.now() + 300 }).catch((x) => x)
    expect(Date.now() - t0).toBeLessThan(1500)
    expect(e).toMatchObject({ reason: "TIMEOUT" })
    expect(e.message).toMatch(/no "OK" line from the VMM within/)
  })

  it("EOF before OK is retried with backoff and reported", async () => {
    let n = 0
    const p = await vmm("late.sock", (s) => (++n <= 2 ? s.destroy() : s.write("OK 7\n")))
    const retries: Array<number> = []
    const t0 = Date.now()
    const stream = await hybrid.dial(p, 4919, `hybrid:${p}`, {
      deadline: Date.now() + 3000,
      onRetry: (a) => retries.push(a),
    })
    expect(retries).toEqual([1, 2])
    // 50 ms + 100 ms of backoff.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140)
    stream.destroy()
  })

  it("a missing socket file fails at once with NOT_FOUND", async () => {
    const p = path.join(tmp, "absent.sock")
    const e = await hybrid.dial(p, 4919, `hybrid:${p}`, { deadline: Date.now() + 2000 }).catch((x) => x)
    expect(e).toMatchObject({ reason: "NOT_FOUND" })
    expect(e.message).toContain("is the VM running")
  })
})
