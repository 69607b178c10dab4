import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { NativeError } from "@cuvette/native"
import * as Client from "../src/Client.js"
import { ConnectError, fromCause } from "../src/ConnectError.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-ce-"))

describe("ConnectError", () => {
  it("says what failed, where and what to try", () => {
    const e = fromCause(
      "unix:/tmp/x.sock",
      Object.assign(new Error("connect ENOENT /tmp/x.sock"), { code: "ENOENT" }),
    )
    expect(e.reason).toBe("NOT_FOUND")
    expect(e.message).toBe(
      "cannot connect to unix:/tmp/x.sock: no such socket (is the agent running? start it with `npx cuvette-agent --listen unix:/tmp/x.sock`, or use `cuvette wait` to wait for it)",
    )
    expect((e.cause as Error).message).toContain("ENOENT")
    expect(new ConnectError({ reason: "NOT_BUILT", target: "vsock:3:4919", detail: "x" }).message).toContain(
      "npm run build:native",
    )
    expect(new ConnectError({ reason: "UNSUPPORTED", target: "hyperv:vm", detail: "x" }).message).toContain(
      "Windows host",
    )
  })

  it("a native failure gets one hint, the transport's, not a second one from the native package", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })
    const e = fromCause("vsock:3:4919", NativeError.fromCause("vsock connect", "3:4919", refused))
    expect(e.reason).toBe("REFUSED")
    expect(e.message).toBe(
      "cannot connect to vsock:3:4919: vsock connect 3:4919 failed: connect ECONNREFUSED (ECONNREFUSED, code ECONNREFUSED) (is the guest up and the agent listening on vsock? check the CID (`cuvette --target vsock:CID:PORT`) and that vhost_vsock is loaded)",
    )
  })

  it("connect to a missing Unix socket fails fast with NOT_FOUND", async () => {
    const target = `unix:${path.join(tmp, "none.sock")}`
    const t0 = Date.now()
    const e = await Client.connect(target).catch((x) => x)
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(e).toMatchObject({ _tag: "ConnectError", reason: "NOT_FOUND", target })
    expect(e.message).toContain("no such socket")
  })

  it("connect to a closed TCP port fails with REFUSED", async () => {
    const server = net.createServer()
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
    const port = (server.address() as net.AddressInfo).port
    await new Promise((r) => server.close(r))
    const e = await Client.connect(`tcp:127.0.0.1:${port}`).catch((x) => x)
    expect(e).toMatchObject({ _tag: "ConnectError", reason: "REFUSED" })
    expect(e.message).toMatch(/cuvette-agent --listen tcp:127.0.0.1/)
  })

  it("a peer that is not a Cuvette agent is a PROTOCOL error", async () => {
    const sock = path.join(tmp, "http.sock")
    const server = net.createServer((s) => s.resume().end("HTTP/1.1 400 Bad Request\r\n\r\n"))
    await new Promise<void>((r) => server.listen(sock, r))
    const e = await Client.connect(`unix:${sock}`, { timeoutMs: 2000 }).catch((x) => x)
    expect(e._tag).toBe("ConnectError")
    expect(e.reason).toBe("PROTOCOL")
    expect(e.message).toContain("does not speak the Cuvette protocol")
    expect(e.message).toContain(`unix:${sock}`)
    await new Promise((r) => server.close(r))
  })

  it("an invalid target is INVALID_TARGET listing the accepted forms", async () => {
    const e = await Client.connect("vsock:banana").catch((x) => x)
    expect(e).toMatchObject({ _tag: "ConnectError", reason: "INVALID_TARGET" })
    expect(e.message).toContain("hybrid:PATH[:PORT]")
  })

  it("an unreadable token file is DENIED naming the file", async () => {
    const e = await Client.connect("unix:/nonexistent", { tokenFile: path.join(tmp, "no-token") }).catch(
      (x) => x,
    )
    expect(e).toMatchObject({ reason: "DENIED" })
    expect(e.message).toContain("no-token")
  })

  it("a listener that nobody connects to times out with a hint", async () => {
    const p = path.join(tmp, "vm.sock_4919")
    const e = await Client.connect(`listen-unix:${p}`, { timeoutMs: 300 }).catch((x) => x)
    expect(e).toMatchObject({ reason: "TIMEOUT" })
    expect(e.message).toContain(`--connect unix:${p}`)
    expect(fs.existsSync(p)).toBe(false)
  })
})
