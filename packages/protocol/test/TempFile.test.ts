// The temp-file-and-rename writer the agent and the client share: names beside the destination (bytes
// kept, long names shortened), exact modes, abort, and the sweep of files whose writer is gone.
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as TempFile from "../src/node/TempFile.js"

const root = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-tempfile-"))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))
let n = 0
const freshDir = () => {
  const dir = path.join(root, `d${n++}`)
  fs.mkdirSync(dir)
  return dir
}
/** A pid no process has: one that just exited. */
const deadPid = () => spawnSync("true").pid

describe.skipIf(process.platform === "win32")("TempFile (POSIX modes and byte names)", () => {
  it("writes beside the destination and renames over it with exactly the mode asked for", async () => {
    const dir = freshDir()
    const dest = path.join(dir, "out")
    fs.writeFileSync(dest, "old")
    const t = await TempFile.create(dest, 0o600)
    expect(path.dirname(t.path as string)).toBe(dir)
    expect(TempFile.ownerOf(path.basename(t.path as string))).toBe(process.pid)
    await t.handle.write("new")
    await t.commit({ mode: 0o751 })
    expect(fs.readFileSync(dest, "utf8")).toBe("new")
    expect(fs.statSync(dest).mode & 0o777).toBe(0o751)
    expect(fs.readdirSync(dir)).toEqual(["out"])
  })

  it("abort removes the temporary file and leaves the destination alone", async () => {
    const dir = freshDir()
    fs.writeFileSync(path.join(dir, "keep"), "old")
    const t = await TempFile.create(path.join(dir, "keep"))
    await t.handle.write("partial")
    await t.abort()
    expect(fs.readdirSync(dir)).toEqual(["keep"])
    expect(fs.readFileSync(path.join(dir, "keep"), "utf8")).toBe("old")
  })

  it("a 250-byte name gets a temporary name that fits (NAME shortened), still recognised", async () => {
    const dir = freshDir()
    const dest = path.join(dir, `${"é".repeat(120)}x${"n".repeat(9)}`) // 250 bytes of UTF-8
    const t = await TempFile.create(dest)
    const name = path.basename(t.path as string)
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255)
    expect(TempFile.ownerOf(name)).toBe(process.pid)
    await t.commit()
    expect(fs.readdirSync(dir)).toEqual([path.basename(dest)])
  })

  it("a name that is not UTF-8 keeps its bytes; a dead writer's temporary file of such a name is swept", async () => {
    const dir = freshDir()
    const cafe = Buffer.concat([Buffer.from(`${dir}/caf`), Buffer.from([0xe9])])
    const stale = Buffer.concat([
      Buffer.from(`${dir}/.caf`),
      Buffer.from([0xe9]),
      Buffer.from(`.cuvette-${deadPid()}-7`),
    ])
    fs.writeFileSync(stale, "left by a killed writer")
    const t = await TempFile.create(cafe)
    await t.handle.write("bytes")
    await t.commit()
    const names = fs.readdirSync(dir, { encoding: "buffer" })
    expect(names).toEqual([Buffer.concat([Buffer.from("caf"), Buffer.from([0xe9])])])
    expect(fs.readFileSync(cafe, "utf8")).toBe("bytes")
  })

  it("sweep removes files of gone writers and keeps live processes', in-progress ones and other names", async () => {
    const dir = freshDir()
    const live = spawn("sleep", ["30"], { stdio: "ignore" })
    try {
      const names = {
        dead: `.a.cuvette-${deadPid()}-1`,
        oldClient: `.b.cuvette-${deadPid()}-1733000000000`,
        live: `.c.cuvette-${live.pid}-1`,
        // This pid with nothing in progress: a previous process that had the same pid (after a reboot).
        samePid: `.d.cuvette-${process.pid}-1`,
        notOurs: `.e.cuvette-x`,
        plain: "f",
      }
      for (const name of Object.values(names)) fs.writeFileSync(path.join(dir, name), "")
      const mine = await TempFile.create(path.join(dir, "g"))
      await TempFile.sweep(dir)
      expect(fs.readdirSync(dir).sort()).toEqual(
        [names.live, names.notOurs, names.plain, path.basename(mine.path as string)].sort(),
      )
      await mine.abort()
    } finally {
      live.kill("SIGKILL")
    }
  })

  it("ownerOf reads the pid of this scheme's names only", () => {
    expect(TempFile.ownerOf(".x.cuvette-123-456")).toBe(123)
    expect(TempFile.ownerOf(Buffer.from(".x\n.cuvette-9-1"))).toBe(9)
    for (const other of ["x.cuvette-1-2", ".x.cuvette-1", ".x.cuvette-abc-1", ".x.cuvette-09d073e91c71"])
      expect(TempFile.ownerOf(other)).toBeUndefined()
  })
})
