import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { fileStdin, STDIN_BLOCK } from "../src/internal/stdin.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-stdin-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const chunksOf = async (fd: number) => {
  const stream = fileStdin(fd)
  expect(stream).toBeDefined()
  const chunks: Array<Buffer> = []
  for await (const c of stream!) chunks.push(c as Buffer)
  return chunks
}

describe("a regular-file stdin", () => {
  it("is read in 1 MiB blocks, every byte once, from where the shell left the offset", async () => {
    const file = path.join(dir, "in")
    const bytes = Buffer.alloc(3 * STDIN_BLOCK + 10)
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff
    fs.writeFileSync(file, bytes)
    const fd = fs.openSync(file, "r")
    try {
      // `{ head -c 10; cuvette write F; } < file`: the first 10 bytes are gone already.
      fs.readSync(fd, Buffer.alloc(10), 0, 10, null)
      const chunks = await chunksOf(fd)
      expect(chunks.map((c) => c.byteLength)).toEqual([STDIN_BLOCK, STDIN_BLOCK, STDIN_BLOCK])
      expect(Buffer.concat(chunks).equals(bytes.subarray(10))).toBe(true)
    } finally {
      fs.closeSync(fd)
    }
  })

  it("is not taken over when stdin is a pipe (Node's own stdin reads it)", () => {
    const [r, w] = pipeFds()
    try {
      expect(fileStdin(r)).toBeUndefined()
    } finally {
      fs.closeSync(r)
      fs.closeSync(w)
    }
  })
})

/** A pipe's two fds, from a FIFO opened both ways. */
const pipeFds = (): [number, number] => {
  const fifo = path.join(dir, "fifo")
  execFileSync("mkfifo", [fifo])
  const r = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  const w = fs.openSync(fifo, fs.constants.O_WRONLY)
  return [r, w]
}
