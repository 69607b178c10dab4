import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Writable } from "node:stream"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Client from "../src/Client.js"
import * as HostError from "../src/HostError.js"
import { agent } from "./fixtures/agent.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const downloader = path.join(here, "fixtures/downloader.ts")
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-dl-"))
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

const temps = (dir: string) => fs.readdirSync(dir).filter((n) => n.includes(".cuvette-"))
const freshDir = (name: string) => {
  const dir = path.join(tmp, name)
  fs.mkdirSync(dir)
  return dir
}

/** Runs the downloader on /dev/zero (endless) until it reported progress, then sends `signal`. */
const interrupt = async (dir: string, mode: string, signal: NodeJS.Signals) => {
  // node itself runs the script (tsx as a loader, not its launcher), so the signal reaches the downloader.
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "--conditions=@cuvette/source",
      downloader,
      target,
      "/dev/zero",
      path.join(dir, "big"),
      mode,
    ],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  )
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => d.toString().includes("PROGRESS") && resolve())
    void exited.then(() => reject(new Error("the downloader exited before any progress")))
  })
  // The download is under way: its temporary file is there.
  expect(temps(dir)).toHaveLength(1)
  child.kill(signal)
  await exited
}

describe("download temporary files", () => {
  it("an aborted signal rejects with CANCELLED and leaves no temporary file", async () => {
    const dir = freshDir("signal")
    const ac = new AbortController()
    const e = await a
      .download("/dev/zero", path.join(dir, "big"), {
        signal: ac.signal,
        onProgress: (done) => done > 1 << 20 && ac.abort(),
      })
      .catch((x: unknown) => x)
    expect(e).toMatchObject({ _tag: "AgentError", code: "CANCELLED" })
    expect(fs.readdirSync(dir)).toEqual([])
  })

  it("SIGINT aborting the download's signal leaves no temporary file", async () => {
    const dir = freshDir("sigint-abort")
    await interrupt(dir, "abort", "SIGINT")
    expect(fs.readdirSync(dir)).toEqual([])
  }, 30_000)

  it("SIGINT exiting at once (process.exit) leaves no temporary file", async () => {
    const dir = freshDir("sigint-exit")
    await interrupt(dir, "exit", "SIGINT")
    expect(fs.readdirSync(dir)).toEqual([])
  }, 30_000)

  it("after SIGKILL, the next download into the directory removes the dead process's file, not a live one's", async () => {
    const dir = freshDir("sigkill")
    await interrupt(dir, "none", "SIGKILL")
    const [left] = temps(dir)
    expect(left).toMatch(/^\.big\.cuvette-\d+-\d+$/)
    // A download of a process that is still running (this test's own child) stays.
    const live = spawn("sleep", ["30"])
    const liveTemp = `.other.cuvette-${live.pid}-1`
    fs.writeFileSync(path.join(dir, liveTemp), "")
    try {
      await a.writeFile(path.join(tmp, "small"), "hello")
      await a.download(path.join(tmp, "small"), path.join(dir, "small"))
      expect(fs.readdirSync(dir).sort()).toEqual([liveTemp, "small"].sort())
    } finally {
      live.kill("SIGKILL")
    }
  }, 30_000)
})

describe("host file errors", () => {
  it("a download whose directory is missing blames that host directory, never a temp name", async () => {
    const dest = path.join(tmp, "missing", "dir", "x")
    const e = await a.download("/etc/hostname", dest).catch((x: unknown) => x)
    expect(e).toMatchObject({
      _tag: "HostFileError",
      operation: "download",
      path: path.join(tmp, "missing", "dir"),
      code: "ENOENT",
      message: `host: ${path.join(tmp, "missing", "dir")}: no such directory`,
    })
  })

  it("a download onto a directory or under a file names the user's path", async () => {
    const dir = freshDir("errors")
    fs.writeFileSync(path.join(dir, "file"), "")
    fs.mkdirSync(path.join(dir, "sub"))
    await expect(a.download("/etc/hostname", path.join(dir, "file", "x"))).rejects.toMatchObject({
      _tag: "HostFileError",
      path: path.join(dir, "file"),
      code: "ENOTDIR",
    })
    const onDir = await a.download("/etc/hostname", path.join(dir, "sub")).catch((x: unknown) => x)
    expect(onDir).toMatchObject({ _tag: "HostFileError", path: path.join(dir, "sub"), code: "EISDIR" })
    expect((onDir as Error).message).not.toContain(".cuvette-")
    expect(temps(dir)).toEqual([])
  })

  it("an upload of a missing or directory host file is a HostFileError; a guest failure stays an AgentError", async () => {
    const missing = path.join(tmp, "no-such-file")
    await expect(a.upload(missing, path.join(tmp, "up"))).rejects.toMatchObject({
      _tag: "HostFileError",
      operation: "upload",
      path: missing,
      code: "ENOENT",
      message: `host: ${missing}: no such file or directory`,
    })
    await expect(a.upload(tmp, path.join(tmp, "up"))).rejects.toMatchObject({
      _tag: "HostFileError",
      path: tmp,
      code: "EISDIR",
    })
    await expect(a.download(path.join(tmp, "guest-missing"), path.join(tmp, "x"))).rejects.toMatchObject({
      _tag: "AgentError",
      code: "ENOENT",
    })
  })

  it("a download into a Writable that fails is a HostStreamError with the stream's code, never the guest's CANCELLED", async () => {
    fs.writeFileSync(path.join(tmp, "four-mib"), Buffer.alloc(4 << 20, 1))
    const guest = path.join(tmp, "four-mib")
    // A destination that fails its first write, with no 'error' listener of its own: a rejection, not a crash.
    const full = new Writable({
      write: (_c, _e, cb) =>
        cb(Object.assign(new Error("no space left on device, write"), { code: "ENOSPC" })),
    })
    await expect(a.download(guest, full)).rejects.toMatchObject({
      _tag: "HostStreamError",
      operation: "download",
      code: "ENOSPC",
      message: "host: the destination stream: no space left on device",
    })
    // A file stream whose file cannot be opened fails with that errno.
    const unopenable = fs.createWriteStream(path.join(tmp, "no-such-dir", "x"))
    await expect(a.download(guest, unopenable)).rejects.toMatchObject({
      _tag: "HostStreamError",
      code: "ENOENT",
    })
    // Destroyed by its owner midway, without an error: Node's code for a stream that went away.
    const slow = new Writable({ highWaterMark: 1024, write: (_c, _e, cb) => setTimeout(cb, 5) })
    const e = await a
      .download("/dev/zero", slow, { onProgress: (done) => done > 1 << 20 && slow.destroy() })
      .catch((x: unknown) => x)
    expect(e).toMatchObject({ _tag: "HostStreamError", code: expect.stringMatching(/^ERR_STREAM_/) })
    expect(e).toBeInstanceOf(HostError.HostStreamError)
    // The session is fine: the guest was told to stop, nothing else.
    await expect(a.ping()).resolves.toEqual(expect.any(Number))
  })
})
