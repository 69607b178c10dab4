/**
 * Paths on the wire: a name that is not UTF-8 travels as bytes (msgpack bin), UTF-8 as text; and the
 * agent's own refusal to remove the root directory, for every spelling and for a link that leads
 * there. Every remove of the root here is non-recursive: even a broken refusal could remove nothing.
 */
import type { Session } from "@cuvette/protocol"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { toFs } from "../src/internal/paths.js"
import { connect, inProcess, listAll } from "./fixtures/agent.js"

let agent: Awaited<ReturnType<typeof inProcess>>
let s: Session.ClientSession
let dir: string

beforeAll(async () => {
  agent = await inProcess()
  s = await connect(agent.sock)
  dir = agent.dir
})
afterAll(async () => {
  s.close()
  await agent.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

const CAFE = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74])

describe("paths on the wire", () => {
  it("a listed name is bytes when it is not UTF-8, text when it is", async () => {
    const where = path.join(dir, "wire")
    fs.mkdirSync(where)
    fs.writeFileSync(Buffer.concat([Buffer.from(`${where}/`), CAFE]), "12345")
    fs.writeFileSync(path.join(where, "café.txt"), "1")
    const { entries } = await listAll(s, where)
    const byType = entries.map((e) => [typeof e.name === "string" ? e.name : Buffer.from(e.name), e.size])
    expect(byType).toEqual(
      expect.arrayContaining([
        [CAFE, 5],
        ["café.txt", 1],
      ]),
    )
    // Bytes that are valid UTF-8 name the same file as the text.
    await expect(s.open("stat", { path: Buffer.from(`${where}/café.txt`) }).result).resolves.toMatchObject({
      size: 1,
    })
  })

  it("an empty path is refused in either form", async () => {
    for (const empty of ["", new Uint8Array(0)])
      await expect(s.open("stat", { path: empty }).result).rejects.toMatchObject({
        code: "EINVAL",
        message: expect.stringContaining("a path must not be empty"),
      })
  })
})

describe("a Windows agent", () => {
  it("refuses a name that is not UTF-8 (its names are Unicode) instead of making U+FFFD of it", () => {
    expect(() => toFs(CAFE, "win32")).toThrow(/caf\\351\.txt is not UTF-8: Windows file names are Unicode/)
    expect(toFs(Buffer.from("C:\\café"), "win32")).toBe("C:\\café")
    expect(toFs(CAFE, "linux")).toEqual(CAFE)
  })
})

describe("removing the root directory", () => {
  const denied = { code: "DENIED", message: expect.stringContaining("it is the root directory") }
  const spellings = ["/", "//", "/.", "/..", "/tmp/..", "/tmp/../.", Buffer.from("/\xe9/..", "latin1")]

  it.each(spellings.map((p) => [p]))("is refused by the agent itself: %s", async (p) => {
    await expect(s.open("remove", { path: p }).result).rejects.toMatchObject(denied)
  })

  it("is refused for a relative path the agent resolves there", async () => {
    const relative = path.relative(process.cwd(), "/") || "."
    await expect(s.open("remove", { path: relative }).result).rejects.toMatchObject(denied)
  })

  it("is refused through a symlink to it (trailing slash: the link is followed)", async () => {
    const link = path.join(dir, "to-root")
    fs.symlinkSync("/", link)
    await expect(s.open("remove", { path: `${link}/` }).result).rejects.toMatchObject(denied)
    expect(fs.readlinkSync(link)).toBe("/")
    // The link itself (no trailing slash) is only a link: removed.
    await s.open("remove", { path: link }).result
    expect(fs.existsSync(link)).toBe(false)
  })

  it("with noPreserveRoot goes on to the file system (non-recursive: the root is never empty)", async () => {
    const r = s.open("remove", { path: "/", noPreserveRoot: true }).result
    await expect(r).rejects.toMatchObject({ code: expect.stringMatching(/^(EBUSY|ENOTEMPTY|EPERM|EACCES)$/) })
  })
})
