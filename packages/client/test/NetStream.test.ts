// The byte stream under unix: and tcp: targets: large reads into slabs, and a send buffer with room
// for several data frames.
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { dialStream, WRITE_HIGH_WATER_MARK } from "../src/internal/transports/net.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-netstream-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const FRAME = 256 * 1024 + 10

describe("a unix: connection's byte stream", () => {
  it("takes several data frames before it reports backpressure, and no more than its buffer", async () => {
    const sock = path.join(dir, "hwm.sock")
    let received = 0
    let peer: net.Socket | undefined
    const server = net.createServer((s) => {
      peer = s
      s.pause() // nothing is read yet: what the stream holds is all it accepted
      s.on("data", (d) => (received += d.byteLength))
    })
    await new Promise<void>((r) => server.listen(sock, r))
    try {
      const stream = await dialStream({ path: sock }, `unix:${sock}`, { deadline: Date.now() + 10_000 })
      stream.start({ data: () => {}, end: () => {} })
      // The frames of one turn: Node's default buffer (16 KiB) reported a full buffer after the first.
      const accepted = [1, 2, 3].map(() => stream.write(new Uint8Array(FRAME).fill(7)))
      expect(accepted).toEqual([true, true, true])
      let sent = 3 * FRAME
      while (stream.write(new Uint8Array(FRAME).fill(7))) {
        sent += FRAME
        expect(sent).toBeLessThan(WRITE_HIGH_WATER_MARK + 16 * 1024 * 1024) // bounded (plus the kernel's)
      }
      sent += FRAME
      const drained = new Promise<void>((r) => stream.onDrain(r))
      while (peer === undefined) await new Promise((r) => setTimeout(r, 5))
      peer.resume()
      await drained
      while (received < sent) await new Promise((r) => setTimeout(r, 5))
      expect(received).toBe(sent)
      stream.destroy()
    } finally {
      peer?.destroy()
      server.close()
    }
  })
})
