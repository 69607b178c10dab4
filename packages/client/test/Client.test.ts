import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PassThrough } from "node:stream"
import { ByteStream } from "@cuvette/protocol"
import { afterAll, describe, expect, it } from "vitest"
import * as Client from "../src/Client.js"
import { agent } from "./fixtures/agent.js"
import { expectRoundTrip } from "./fixtures/ping.js"

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-cl-"))
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

describe("parseKmsg", () => {
  it("splits prio into level and facility and decodes escapes", () => {
    expect(Client.parseKmsg("6,339,5140900,-;NET: Registered protocol family 10")).toEqual({
      level: 6,
      facility: 0,
      seq: 339,
      timeUs: 5140900,
      flags: "-",
      message: "NET: Registered protocol family 10",
    })
    expect(Client.parseKmsg("30,7,12,c,caller=T1;line\\x0anext")).toMatchObject({
      level: 6,
      facility: 3,
      flags: "c",
      message: "line\nnext",
    })
    expect(Client.parseKmsg(" SUBSYSTEM=acpi")).toBeUndefined()
    expect(Client.parseKmsg("garbage")).toBeUndefined()
  })
})

describe("wait", () => {
  it("retries with backoff until the agent appears, reporting each retry", async () => {
    const sock = path.join(tmp, "late.sock")
    const retries: Array<string> = []
    const waiting = Client.wait(`unix:${sock}`, {
      timeoutMs: 10_000,
      onRetry: (n, e) => retries.push(`${n} ${e.message}`),
    })
    await new Promise((r) => setTimeout(r, 400))
    const running = await (await agent).start({ listen: [`unix:${sock}`] })
    const a = await waiting
    expect(retries.length).toBeGreaterThanOrEqual(3)
    expect(retries[0]).toContain("no such socket")
    await expectRoundTrip(() => a.ping())
    await a.close()
    await running.stop()
  })

  it("gives up at the deadline with the last reason and the attempt count", async () => {
    const e = await Client.wait(`unix:${path.join(tmp, "never.sock")}`, { timeoutMs: 400 }).catch((x) => x)
    expect(e).toMatchObject({ _tag: "ConnectError", reason: "NOT_FOUND" })
    expect(e.message).toMatch(/after \d+ attempts/)
  })

  it("stops when the signal aborts", async () => {
    const ac = new AbortController()
    setTimeout(() => ac.abort(), 100)
    const e = await Client.wait(`unix:${path.join(tmp, "never2.sock")}`, { signal: ac.signal }).catch(
      (x) => x,
    )
    expect(e).toMatchObject({ reason: "ABORTED" })
  })
})

describe("tokens", () => {
  it("authenticates with tokenFile, and a wrong token is DENIED", async () => {
    const sock = path.join(tmp, "token.sock")
    const token = new TextEncoder().encode("s3cret")
    const running = await (await agent).start({ listen: [`unix:${sock}`], token })
    fs.writeFileSync(path.join(tmp, "token"), "s3cret\n")
    const a = await Client.connect(`unix:${sock}`, { tokenFile: path.join(tmp, "token") })
    await expectRoundTrip(() => a.ping())
    await a.close()
    const wrong = await Client.connect(`unix:${sock}`, { token: new TextEncoder().encode("nope") }).catch(
      (x) => x,
    )
    expect(wrong).toMatchObject({ _tag: "ConnectError", reason: "DENIED" })
    const none = await Client.connect(`unix:${sock}`).catch((x) => x)
    expect(none).toMatchObject({ reason: "DENIED" })
    expect(none.message).toMatch(/token/)
    await running.stop()
  })
})

describe("Agent operations", () => {
  it("files: writeFile, readFile ranges, stat, list, mkdir, rename, remove; download to a Writable", async () => {
    const [x, y] = ByteStream.pair()
    ;(await agent).serveStream(y, {})
    const a = await Client.fromStream(x)
    const d = path.join(tmp, "ops")
    await a.mkdir(path.join(d, "sub"), { parents: true })
    await a.writeFile(path.join(d, "sub", "f.txt"), "hello world")
    expect(
      new TextDecoder().decode(await a.readFile(path.join(d, "sub", "f.txt"), { offset: 6, length: 5 })),
    ).toBe("world")
    expect(await a.stat(path.join(d, "sub", "f.txt"))).toMatchObject({ type: "file", size: 11 })
    await a.rename(path.join(d, "sub", "f.txt"), path.join(d, "sub", "g.txt"))
    expect((await a.list(path.join(d, "sub"))).map((e) => e.name)).toEqual(["g.txt"])
    const sink = new PassThrough()
    const chunks: Array<Buffer> = []
    sink.on("data", (c) => chunks.push(c))
    await a.download(path.join(d, "sub", "g.txt"), sink)
    expect(Buffer.concat(chunks).toString()).toBe("hello world")
    await expect(a.remove(path.join(d, "sub"))).rejects.toMatchObject({ code: "ENOTEMPTY" })
    await a.remove(path.join(d, "sub"), { recursive: true })
    await expect(a.stat(path.join(d, "sub"))).rejects.toMatchObject({ code: "ENOENT" })
    // A failed download leaves no partial host file.
    const dest = path.join(tmp, "dl.bin")
    await expect(a.download(path.join(d, "missing"), dest)).rejects.toMatchObject({ code: "ENOENT" })
    expect(fs.readdirSync(tmp).filter((n) => n.includes("dl.bin"))).toEqual([])
    const t = await a.time()
    expect(Math.abs(t.unixMs - Date.now())).toBeLessThan(5000)
    await a.close()
  })

  it("entries streams a 30,000-entry directory; list sorts it; breaking early cancels; errors surface", async () => {
    const [x, y] = ByteStream.pair()
    const session = (await agent).serveStream(y, {})
    const a = await Client.fromStream(x)
    const d = path.join(tmp, "many")
    fs.mkdirSync(d)
    const n = 30_000
    for (let i = 0; i < n; i++) fs.writeFileSync(path.join(d, `some-longer-file-name-${n - i}`), "")
    fs.symlinkSync("some-longer-file-name-1", path.join(d, "link"))
    let count = 0
    for await (const e of a.entries(d)) {
      count++
      if (e.name === "link") expect(e).toMatchObject({ type: "symlink", target: "some-longer-file-name-1" })
    }
    expect(count).toBe(n + 1)
    const all = await a.list(d)
    expect(all.length).toBe(n + 1)
    expect(all.map((e) => e.name)).toEqual(all.map((e) => e.name).sort())
    // Leaving the loop cancels the listing (which, unread, would hold its call open for good); the
    // session stays usable.
    for await (const _ of a.entries(d)) break
    await expectRoundTrip(() => a.ping())
    const until = Date.now() + 5000
    while (session.running() > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10))
    expect(session.running()).toBe(0)
    await expect(a.list(path.join(tmp, "no-such-dir"))).rejects.toMatchObject({ code: "ENOENT" })
    await a.chmod(d, 0o700)
    expect(fs.statSync(d).mode & 0o777).toBe(0o700)
    await a.remove(d, { recursive: true })
    expect(fs.existsSync(d)).toBe(false)
    await a.close()
  })

  it("spawn: kill(signal) ends the process with that signal", async () => {
    const [x, y] = ByteStream.pair()
    ;(await agent).serveStream(y, {})
    const a = await Client.fromStream(x)
    const p = a.spawn(["sleep", "30"], { stdout: "null", stderr: "null" })
    await p.pid
    p.kill("SIGTERM")
    expect(await p.exited).toMatchObject({ exitCode: null, signal: "SIGTERM" })
    await a.close()
  })
})
