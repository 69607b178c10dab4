/**
 * The output pool never hands out a buffer a socket still holds: a buffer comes back only after its
 * holder released it and every tracked write of it called back; one sent where no tracked socket saw
 * it is never reused; and the pool keeps at most its bound of free buffers.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { Writable } from "node:stream"
import { describe, expect, it } from "vitest"
import { BufferPool, outputPool, trackWrites } from "../src/internal/bufferPool.js"
import { collect, connect, inProcess } from "./fixtures/agent.js"

/** A socket stand-in whose writes complete only when told to, as a congested socket's do. */
const slowSocket = () => {
  const pending: Array<() => void> = []
  const socket = trackWrites(
    new Writable({
      highWaterMark: 1,
      write: (_chunk, _encoding, callback) => void pending.push(() => callback()),
    }),
  )
  const flushOne = () => new Promise<void>((resolve) => (pending.shift()?.(), setImmediate(resolve)))
  return { socket, pending, flushOne }
}

describe("the output buffer pool", () => {
  it("does not reuse a buffer until every write of it has called back", async () => {
    const pool = new BufferPool(1024, 4)
    const { socket, pending, flushOne } = slowSocket()
    const a = pool.take()
    socket.write(a.subarray(0, 512))
    socket.write(a.subarray(512))
    pool.release(a, true)
    await new Promise((r) => setImmediate(r))
    expect(pending.length).toBeGreaterThan(0)
    expect(pool.take().buffer).not.toBe(a.buffer) // the socket still holds `a`
    await flushOne()
    expect(pool.idle).toBe(0) // one of its two writes still pending
    await flushOne()
    expect(pool.idle).toBe(1)
    expect(pool.take().buffer).toBe(a.buffer)
    expect(pool.allocated).toBe(2)
  })

  it("a write callback the caller passed still runs", async () => {
    const pool = new BufferPool(64, 4)
    const { socket, flushOne } = slowSocket()
    let called = 0
    socket.write(pool.take(), () => called++)
    await flushOne()
    expect(called).toBe(1)
  })

  it("never reuses a buffer that was sent where no tracked socket saw it", () => {
    const pool = new BufferPool(64, 4)
    const a = pool.take()
    pool.release(a, true) // e.g. queued by a serial port, which keeps it
    expect(pool.idle).toBe(0)
    expect(pool.take().buffer).not.toBe(a.buffer)
  })

  it("reuses an unsent buffer at once, and keeps at most its bound", () => {
    const pool = new BufferPool(64, 2)
    const taken = [pool.take(), pool.take(), pool.take()]
    for (const b of taken) pool.release(b, false)
    expect(pool.idle).toBe(2)
    expect(pool.take().buffer).toBe(taken[1]!.buffer)
    pool.release(taken[0]!, false) // released twice: ignored
    expect(pool.idle).toBe(1)
  })
})

describe("the pool under the agent's output paths (in-process agent)", () => {
  it("a 64 MiB readFile reuses a few buffers instead of one per 256 KiB", async () => {
    const agent = await inProcess()
    const s = await connect(agent.sock)
    try {
      const file = path.join(agent.dir, "big")
      fs.writeFileSync(file, Buffer.alloc(64 * 1024 * 1024, 7))
      const before = outputPool.allocated
      const read = s.open("readFile", { path: file })
      expect((await collect(read.stdout)).byteLength).toBe(64 * 1024 * 1024)
      await read.result
      // 512 reads of 256 KiB; the pool keeps 16 free between them.
      expect(outputPool.allocated - before).toBeLessThan(40)
    } finally {
      s.close()
      await agent.stop()
    }
  }, 60_000)
})
