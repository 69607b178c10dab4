// File names that are not UTF-8 through the real `cuvette` and a real agent (Node and Bun): listed
// with their type and size, shown with ls -b escapes (base64 bytes in --json), copied both ways byte
// for byte, stat'ed, renamed and removed. And `rm` of the root directory, refused before connecting.
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { hostJoin } from "../src/internal/paths.js"
import { runCli, startAgent, type AgentHandle } from "./fixtures/harness.js"

/** `caf\xE9.txt`: Latin-1 "café.txt", not valid UTF-8. */
const CAFE = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74])
const DIR = Buffer.from([0x64, 0xff]) // `d\377`
const INNER = Buffer.from([0x69, 0xe9]) // `i\351`
const within = (dir: string | Buffer, name: Buffer) =>
  Buffer.concat([Buffer.from(dir), Buffer.from("/"), name])

/** Every name (as bytes) and file body under `dir`, recursively, sorted. */
const snapshot = (dir: string | Buffer): Array<[string, string]> =>
  fs
    .readdirSync(dir, { encoding: "buffer" })
    .flatMap((name): Array<[string, string]> => {
      const p = within(dir, name)
      const key = name.toString("hex")
      return fs.lstatSync(p).isDirectory()
        ? [[key, "dir"], ...snapshot(p).map(([k, v]): [string, string] => [`${key}/${k}`, v])]
        : [[key, fs.readFileSync(p).toString("hex")]]
    })
    .sort()

/** A tree with names that are not UTF-8 at two levels, beside plain ones. */
const makeTree = (root: string) => {
  fs.mkdirSync(within(root, DIR), { recursive: true })
  fs.writeFileSync(within(root, CAFE), "hello")
  fs.writeFileSync(within(within(root, DIR), INNER), Buffer.from([0xe9, 0x00, 0xff]))
  fs.writeFileSync(path.join(root, "plain.txt"), "plain")
}

describe.each(["node", "bun"] as const)(
  "names that are not UTF-8 (%s agent)",
  { timeout: 60_000 },
  (runtime) => {
    let agent: AgentHandle
    const cli = (args: ReadonlyArray<string>) => runCli(["-H", agent.target, ...args])
    beforeAll(async () => {
      agent = await startAgent({ runtime })
    })
    afterAll(async () => {
      await agent?.stop()
    })

    it("ls shows them with their type and size, escaped as ls -b; --json adds their exact bytes", async () => {
      const dir = path.join(agent.dir, "ls")
      makeTree(dir)
      const long = await cli(["ls", "-l", dir])
      expect(long.code).toBe(0)
      const lines = long.stdout.toString().trimEnd().split("\n")
      expect(lines[0]).toMatch(/^-rw-r--r-- +5 .* caf\\351\.txt$/)
      expect(lines[1]).toMatch(/^d.* d\\377$/)
      const json = JSON.parse((await cli(["--json", "ls", dir])).stdout.toString())
      expect(json.entries[0]).toMatchObject({
        name: "caf\\351.txt",
        nameBase64: CAFE.toString("base64"),
        type: "file",
        size: 5,
      })
      expect(json.entries[2]).toMatchObject({ name: "plain.txt" })
      expect(json.entries[2]).not.toHaveProperty("nameBase64")
    })

    it("cp -r copies them both ways with byte-identical names and contents", async () => {
      const src = path.join(agent.dir, "cp-src")
      makeTree(src)
      const down = await cli(["cp", "-r", `:${src}`, path.join(agent.dir, "cp-down")])
      expect([down.code, down.stderr]).toEqual([0, ""])
      expect(snapshot(path.join(agent.dir, "cp-down"))).toEqual(snapshot(src))
      const up = await cli(["cp", "-r", path.join(agent.dir, "cp-down"), `:${agent.dir}/cp-up`])
      expect([up.code, up.stderr]).toEqual([0, ""])
      expect(snapshot(path.join(agent.dir, "cp-up"))).toEqual(snapshot(src))
    })

    it("stat, mv and rm name them with -b escapes", async () => {
      const dir = path.join(agent.dir, "edit")
      makeTree(dir)
      const stat = await cli(["--json", "stat", "-b", `${dir}/caf\\351.txt`])
      expect(JSON.parse(stat.stdout.toString())).toMatchObject({
        path: `${dir}/caf\\351.txt`,
        pathBase64: within(dir, CAFE).toString("base64"),
        type: "file",
        size: 5,
      })
      // Typed as the shell passes the bytes: they arrive as U+FFFD, and the hint says how to write them.
      const typed = await cli(["stat", `${dir}/caf\ufffd.txt`])
      expect(typed.code).toBe(1)
      expect(typed.stderr).toContain("pass -b and write it as `cuvette ls` shows it (caf\\351.txt)")
      expect((await cli(["mv", "-b", `${dir}/caf\\351.txt`, `${dir}/r\\351`])).code).toBe(0)
      expect(fs.readFileSync(within(dir, Buffer.from([0x72, 0xe9])), "utf8")).toBe("hello")
      expect((await cli(["rm", "-b", `${dir}/r\\351`])).code).toBe(0)
      expect((await cli(["rm", "-r", "-b", `${dir}/d\\377`])).code).toBe(0)
      expect(fs.readdirSync(dir)).toEqual(["plain.txt"])
    })
  },
)

describe("a name the host cannot have", () => {
  it("fails the copy naming the file, on a host whose file names are Unicode (Windows)", () => {
    expect(() => hostJoin("C:\\out", CAFE, "win32")).toThrow(
      /cannot copy caf\\351\.txt into C:\\out: the name is not UTF-8/,
    )
    expect(hostJoin("/out", CAFE, "linux")).toEqual(within("/out", CAFE))
  })
})

describe("rm of the root directory", () => {
  // A target where nothing listens: a refusal must come before connecting, or the run fails to connect.
  const nowhere = "unix:/nonexistent/cuvette-no-agent.sock"
  it.each(["/", "//", "/.", "/..", "/tmp/..", ":/tmp/../."])(
    "is refused without --no-preserve-root: %s",
    async (root) => {
      const r = await runCli(["-H", nowhere, "rm", "-rf", root])
      expect(r.stderr).toContain("it is the root directory of the guest; refusing to remove it")
      expect(r.stderr).toContain("pass --no-preserve-root")
      expect(r.code).toBe(1)
    },
  )

  it("is refused in --json with code DENIED, and -b escapes are resolved first", async () => {
    const r = await runCli(["-H", nowhere, "--json", "rm", "-r", "-b", "/\\351/.."])
    expect(JSON.parse(r.stdout.toString()).error).toMatchObject({ code: "DENIED" })
    expect(r.code).toBe(1)
  })

  it("with --no-preserve-root goes on to the agent (here: none to reach)", async () => {
    const r = await runCli(["-H", nowhere, "rm", "--no-preserve-root", "/"])
    expect(r.code).toBe(3)
  })
})
