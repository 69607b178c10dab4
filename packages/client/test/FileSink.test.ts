import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { fileSink } from "../src/internal/files.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-sink-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

describe("a download's host file", () => {
  it("holds every byte in order when batches are written while the next ones gather", async () => {
    const dest = path.join(dir, "out")
    const sink = await fileSink(dest)
    const expected: Array<Buffer> = []
    // Odd sizes, many 1 MiB batches, and single writes larger than a batch.
    for (let i = 0; i < 60; i++) {
      const chunk = Buffer.alloc(((i * 37_171) % 300_000) + (i % 7 === 0 ? 1_500_000 : 1), i)
      expected.push(chunk)
      await sink.write(chunk)
    }
    await sink.commit()
    expect(fs.readFileSync(dest).equals(Buffer.concat(expected))).toBe(true)
    expect(fs.readdirSync(dir).filter((n) => n.includes("cuvette"))).toEqual([])
  })

  it("aborted while a batch is being written leaves no temporary file", async () => {
    const dest = path.join(dir, "aborted")
    const sink = await fileSink(dest)
    for (let i = 0; i < 5; i++) await sink.write(Buffer.alloc(700_000, i))
    await sink.abort()
    expect(fs.existsSync(dest)).toBe(false)
    expect(fs.readdirSync(dir).filter((n) => n.includes("aborted"))).toEqual([])
  })
})
