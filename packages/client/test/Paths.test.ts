// Guest file names that are not UTF-8 travel as bytes: listed with their real type and size, stat'ed,
// read, downloaded, renamed and removed. And the root directory is refused unless noPreserveRoot.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Path } from "@cuvette/protocol"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Client from "../src/Client.js"
import { agent } from "./fixtures/agent.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-paths-"))
const target = `unix:${path.join(tmp, "agent.sock")}`
let running: { stop(): Promise<void> }
let a: Client.Agent

beforeAll(async () => {
  running = await (await agent).start({ listen: [target] })
  a = await Client.connect(target)
})
afterAll(async () => {
  await a.close()
  await running.stop()
  fs.rmSync(tmp, { recursive: true, force: true })
})

/** `caf\xE9.txt`: Latin-1 "café.txt", not valid UTF-8. */
const CAFE = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74])
const within = (dir: string | Buffer, name: Buffer) =>
  Buffer.concat([Buffer.from(dir), Buffer.from("/"), name])
const freshDir = (name: string) => {
  const dir = path.join(tmp, name)
  fs.mkdirSync(dir)
  return dir
}

describe("a file name that is not UTF-8", () => {
  it("is listed as its bytes, with its real type and size", async () => {
    const dir = freshDir("list")
    fs.writeFileSync(within(dir, CAFE), "hello")
    fs.mkdirSync(within(dir, Buffer.from([0x64, 0xff])))
    const entries = await a.list(dir)
    expect(entries.map((e) => [Buffer.from(Path.toBytes(e.name)), e.type, e.size])).toEqual([
      [CAFE, "file", 5],
      [Buffer.from([0x64, 0xff]), "directory", expect.any(Number)],
    ])
    // Bytes, not a string with U+FFFD in it.
    expect(entries[0]!.name).toBeInstanceOf(Uint8Array)
  })

  it("is stat'ed and read through the bytes the listing gave", async () => {
    const dir = freshDir("read")
    fs.writeFileSync(within(dir, CAFE), "caf\xe9 body")
    fs.symlinkSync(CAFE, within(dir, Buffer.from("link")))
    const [entry] = (await a.list(dir)).filter((e) => typeof e.name !== "string")
    const file = Buffer.concat([Buffer.from(`${dir}/`), entry!.name as Uint8Array])
    const s = await a.stat(file)
    expect([s.type, s.size, Buffer.from(s.path as Uint8Array)]).toEqual(["file", 10, file])
    expect(Buffer.from((await a.stat(`${dir}/link`)).target as Uint8Array)).toEqual(CAFE)
    expect(Buffer.from(await a.readFile(file)).toString()).toBe("caf\xe9 body")
    const copy = path.join(dir, "copy")
    await a.download(file, copy)
    expect(fs.readFileSync(copy, "utf8")).toBe("caf\xe9 body")
    // And written to a host path that is not UTF-8 either.
    await a.download(file, within(dir, Buffer.from([0x68, 0xf8])))
    expect(fs.readFileSync(within(dir, Buffer.from([0x68, 0xf8])), "utf8")).toBe("caf\xe9 body")
  })

  it("is written, renamed and removed", async () => {
    const dir = freshDir("change")
    const file = within(dir, CAFE)
    await a.writeFile(file, "new")
    expect(fs.readFileSync(file, "utf8")).toBe("new")
    const renamed = within(dir, Buffer.from([0x72, 0xe9]))
    await a.rename(file, renamed)
    expect(fs.readdirSync(dir, { encoding: "buffer" })).toEqual([Buffer.from([0x72, 0xe9])])
    await a.remove(renamed)
    expect(fs.readdirSync(dir)).toEqual([])
    // A tree whose names are not UTF-8, removed recursively.
    fs.mkdirSync(within(dir, CAFE))
    fs.writeFileSync(within(within(dir, CAFE), CAFE), "x")
    await a.remove(within(dir, CAFE), { recursive: true })
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it("errors show the name escaped as ls -b does", async () => {
    const dir = freshDir("errors")
    await expect(a.stat(within(dir, CAFE))).rejects.toMatchObject({
      code: "ENOENT",
      message: expect.stringContaining(`${dir}/caf\\351.txt`),
    })
  })
})

describe("removing the root directory", () => {
  it("is refused before anything is sent, however it is spelled", async () => {
    const canary = path.join(freshDir("canary"), "canary")
    fs.writeFileSync(canary, "alive")
    // A session that sends nothing: whatever would reach the agent is recorded and refused here.
    const sent: Array<string> = []
    const refuseAll = Object.create(a.session, {
      open: {
        value: (op: string) => {
          sent.push(op)
          throw new Error(`${op} was sent`)
        },
      },
    })
    const spy = new Client.Agent(refuseAll, a.target)
    const roots = ["/", "//", "/.", "/..", "/tmp/..", `${tmp}/../..`, Buffer.from("/\xe9/..", "latin1")]
    for (const root of roots)
      await expect(spy.remove(root, { recursive: true, force: true })).rejects.toMatchObject({
        code: "DENIED",
        message: expect.stringMatching(
          /refusing to remove .*: it is the root directory \(pass noPreserveRoot/,
        ),
      })
    expect(sent).toEqual([])
    expect(fs.readFileSync(canary, "utf8")).toBe("alive")
  })
})
