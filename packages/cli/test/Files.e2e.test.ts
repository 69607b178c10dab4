// File commands of the real `cuvette` against a real agent: modes, symlinks, moves into directories,
// messages that name what is really missing, and a large directory listed, copied both ways and
// removed with bounded memory on both sides.
import * as fs from "node:fs"
import * as path from "node:path"
import { execFileSync, spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cliBin, nobody, runCli, startAgent, type AgentHandle } from "./fixtures/harness.js"

let agent: AgentHandle
let dir: string
const cli = (args: ReadonlyArray<string>, o?: Parameters<typeof runCli>[1]) =>
  runCli(["-H", agent.target, ...args], o)
const mode = (p: string) => fs.statSync(p).mode & 0o777

beforeAll(async () => {
  agent = await startAgent()
  dir = agent.dir
})
afterAll(async () => {
  await agent?.stop()
  fs.rmSync(dir, { recursive: true, force: true })
})

describe("file commands", { timeout: 60_000 }, () => {
  it("cp -r keeps directory and file modes both ways (a 0700 directory stays 0700)", async () => {
    const tree = path.join(dir, "modes")
    fs.mkdirSync(path.join(tree, "private", "inner"), { recursive: true })
    fs.mkdirSync(path.join(tree, "shared"))
    fs.writeFileSync(path.join(tree, "private", "secret"), "s")
    fs.writeFileSync(path.join(tree, "shared", "script"), "#!/bin/sh\n")
    fs.symlinkSync("shared/script", path.join(tree, "link"))
    fs.chmodSync(path.join(tree, "private", "secret"), 0o600)
    fs.chmodSync(path.join(tree, "shared", "script"), 0o750)
    fs.chmodSync(path.join(tree, "private", "inner"), 0o500) // filled before its mode is set
    fs.chmodSync(path.join(tree, "private"), 0o700)
    fs.chmodSync(path.join(tree, "shared"), 0o775)
    const up = await cli(["cp", "-r", tree, `:${dir}/modes-up`])
    expect(up.stderr).toContain("skipped 1 entry")
    expect(up.code).toBe(0)
    expect((await cli(["cp", "-r", `:${dir}/modes-up`, path.join(dir, "modes-down")])).code).toBe(0)
    for (const copy of ["modes-up", "modes-down"]) {
      const base = path.join(dir, copy)
      expect([
        mode(base),
        mode(path.join(base, "private")),
        mode(path.join(base, "private", "inner")),
        mode(path.join(base, "private", "secret")),
        mode(path.join(base, "shared")),
        mode(path.join(base, "shared", "script")),
      ]).toEqual([mode(tree), 0o700, 0o500, 0o600, 0o775, 0o750])
      expect(fs.existsSync(path.join(base, "link"))).toBe(false)
    }
  })

  it("mv into an existing directory moves inside it, as mv(1)", async () => {
    fs.mkdirSync(path.join(dir, "into"))
    fs.writeFileSync(path.join(dir, "moved.txt"), "m")
    const r = await cli(["mv", path.join(dir, "moved.txt"), path.join(dir, "into")])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    expect(fs.readFileSync(path.join(dir, "into", "moved.txt"), "utf8")).toBe("m")
    // Onto a new name still renames.
    expect(
      (await cli(["mv", path.join(dir, "into", "moved.txt"), path.join(dir, "into", "renamed")])).code,
    ).toBe(0)
    expect(fs.readdirSync(path.join(dir, "into"))).toEqual(["renamed"])
  })

  it("mv and cp failures name the directory that is really missing, never one that exists", async () => {
    fs.writeFileSync(path.join(dir, "here.txt"), "h")
    const mv = await cli(["mv", path.join(dir, "here.txt"), path.join(dir, "no-dir", "x")])
    expect(mv.code).toBe(1)
    expect(mv.stderr).toContain(`the directory :${dir}/no-dir does not exist`)
    expect(mv.stderr).toContain(`cuvette mkdir -p :${dir}/no-dir`)
    const src = await cli(["mv", path.join(dir, "gone", "x"), path.join(dir, "y")])
    expect(src.stderr).toContain(`the directory :${dir}/gone does not exist`)
    const file = await cli(["mv", path.join(dir, "here.txt"), path.join(dir, "here.txt", "x")])
    expect(file.stderr).toContain(`:${dir}/here.txt is not a directory`)
    // A host destination under a missing directory: about the host path, not the guest file.
    const down = await cli(["cp", `:${dir}/here.txt`, path.join(dir, "missing-host", "sub", "x")])
    expect(down.code).toBe(1)
    expect(down.stderr).toContain(`cannot copy to ${dir}/missing-host/sub/x`)
    expect(down.stderr).toContain(`the directory ${dir}/missing-host does not exist`)
    expect(down.stderr).not.toContain("cuvette ls")
    const up = await cli(["cp", path.join(dir, "here.txt"), `:${dir}/here.txt/x`])
    expect(up.code).toBe(1)
    expect(up.stderr).toContain(`:${dir}/here.txt is not a directory`)
    expect(up.stderr).not.toContain("mkdir -p")
  })

  it("exec --cwd of a missing directory names the directory, not the program", async () => {
    const r = await cli(["exec", "--cwd", path.join(dir, "no-such-cwd"), "--", "pwd"])
    expect(r.code).toBe(255)
    expect(r.stderr).toBe(
      `cuvette: working directory ${dir}/no-such-cwd does not exist on ${agent.target}: \`pwd\` was not started\n`,
    )
  })

  it("stat describes a symlink itself (a dangling one too), -L follows it; ls -l shows targets", async () => {
    fs.mkdirSync(path.join(dir, "links"))
    fs.symlinkSync("/nonexistent-target", path.join(dir, "links", "dangling"))
    fs.symlinkSync("/etc", path.join(dir, "links", "etc"))
    const st = await cli(["stat", path.join(dir, "links", "dangling")])
    expect(st.code).toBe(0)
    expect(st.stdout.toString()).toContain(`path:     ${dir}/links/dangling -> /nonexistent-target`)
    expect(st.stdout.toString()).toContain("type:     symlink")
    const followed = await cli(["stat", "-L", path.join(dir, "links", "dangling")])
    expect(followed.code).toBe(1)
    expect(followed.stderr).toContain("no such file or directory")
    const etc = await cli(["--json", "stat", "--dereference", path.join(dir, "links", "etc")])
    expect(JSON.parse(etc.stdout.toString())).toMatchObject({ type: "directory" })
    const ls = (await cli(["ls", "-l", path.join(dir, "links")])).stdout.toString().trimEnd().split("\n")
    expect(ls.map((l) => l.replace(/^.* \d\d:\d\d /, ""))).toEqual([
      "dangling -> /nonexistent-target",
      "etc -> /etc",
    ])
  })

  it("read into a stdout that fails (/dev/full) blames this host's stdout, not the guest", () => {
    fs.writeFileSync(path.join(dir, "three-mib"), Buffer.alloc(3 << 20, 1))
    const r = spawnSync(
      "sh",
      [
        "-c",
        'exec "$0" "$@" > /dev/full',
        process.execPath,
        cliBin,
        "-H",
        agent.target,
        "read",
        `:${dir}/three-mib`,
      ],
      { encoding: "utf8", timeout: 30_000 },
    )
    expect(r.stderr).toBe(
      `cuvette: cannot read :${dir}/three-mib on ${agent.target}: host: stdout: no space left on device (free some space on this host)\n`,
    )
    expect(r.status).toBe(1)
  })
})

// Permissions do not stop root, which runs these tests here: an agent and a CLI run as `nobody` meet them.
describe.skipIf(process.getuid?.() !== 0)("as an unprivileged user (root needed to become nobody)", () => {
  let weak: AgentHandle
  beforeAll(async () => {
    weak = await startAgent({ user: nobody })
  })
  afterAll(async () => {
    await weak?.stop()
  })
  const cliAs = (args: ReadonlyArray<string>) => runCli(["-H", weak.target, ...args], { user: nobody })

  it("cp -r names the subdirectory that cannot be listed, not the root of the copy, both ways", async () => {
    const tree = path.join(weak.dir, "tree")
    fs.mkdirSync(path.join(tree, "open"), { recursive: true })
    fs.mkdirSync(path.join(tree, "locked"))
    fs.writeFileSync(path.join(tree, "open", "f"), "x")
    for (const p of ["", "open", "open/f", "locked"]) fs.chownSync(path.join(tree, p), nobody.uid, nobody.gid)
    fs.chmodSync(path.join(tree, "locked"), 0o000)
    const down = await cliAs(["cp", "-r", `:${tree}`, path.join(weak.dir, "down")])
    expect(down.stderr).toBe(
      `cuvette: cannot list :${tree}/locked on ${weak.target}: permission denied (the agent's user may not access it: run the agent as root or fix the permissions)\n`,
    )
    expect(down.code).toBe(1)
    const up = await cliAs(["cp", "-r", tree, `:${weak.dir}/up`])
    // The host's own directory: no hint about the agent's user.
    expect(up.stderr).toBe(
      `cuvette: cannot list ${tree}/locked on ${weak.target}: permission denied (check its permissions on this host)\n`,
    )
    expect(up.code).toBe(1)
  })
})

// The large directory: 30,000 entries in the suite (its listing is ~2.4 MB, past the 1 MiB frame
// limit, which failed before listings streamed); CUVETTE_BIG_DIR_ENTRIES=1000000 for the full run.
const ENTRIES = Number(process.env.CUVETTE_BIG_DIR_ENTRIES ?? 30_000)
/** Peak RSS allowed to the agent and to each CLI run. */
const BOUND_MIB = 256
const hook = fileURLToPath(new URL("./fixtures/maxrss.mjs", import.meta.url))

const peakKiB = (pid: number) =>
  Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))![1])

describe("a large directory", () => {
  it(
    `ls, cp -r both ways and rm -r of ${ENTRIES} entries, each side under ${BOUND_MIB} MiB`,
    async () => {
      const big = path.join(dir, "big")
      fs.mkdirSync(big)
      // Created by a small C-speed loop: the test is about listing and copying, not creating.
      execFileSync("python3", [
        "-c",
        `import os\nfor i in range(${ENTRIES}): os.close(os.open("${big}/file-%07d" % i, os.O_CREAT | os.O_WRONLY, 0o640))`,
      ])
      const figures: Record<string, number> = {}
      const measured = async (name: string, args: ReadonlyArray<string>) => {
        const file = path.join(dir, `maxrss-${name}`)
        const t = Date.now()
        const r = await cli(args, {
          timeoutMs: 30 * 60_000,
          env: { NODE_OPTIONS: `--import ${hook}`, CUVETTE_TEST_MAXRSS_FILE: file },
        })
        expect(r.stderr.replace(/^cuvette: more than .*\n/, "")).toBe("")
        expect(r.code).toBe(0)
        figures[`${name} s`] = (Date.now() - t) / 1000
        figures[`${name} cli MiB`] = Math.round(Number(fs.readFileSync(file, "utf8")) / 1024)
        return r
      }
      const ls = await measured("ls", ["ls", big])
      expect(
        ls.stdout
          .toString()
          .split("\n")
          .filter((l) => l.startsWith("file-")).length,
      ).toBe(ENTRIES)
      await measured("cp down", ["cp", "-r", `:${big}`, path.join(dir, "big-down")])
      expect(fs.readdirSync(path.join(dir, "big-down")).length).toBe(ENTRIES)
      fs.rmSync(big, { recursive: true })
      await measured("cp up", ["cp", "-r", path.join(dir, "big-down"), `:${big}`])
      expect(fs.readdirSync(big).length).toBe(ENTRIES)
      expect(mode(path.join(big, "file-0000000"))).toBe(0o640)
      await measured("rm", ["rm", "-r", big])
      expect(fs.existsSync(big)).toBe(false)
      fs.rmSync(path.join(dir, "big-down"), { recursive: true })
      figures["agent MiB"] = Math.round(peakKiB(agent.pid) / 1024)
      console.log(`${ENTRIES} entries: ${JSON.stringify(figures)}`)
      expect(figures["agent MiB"]).toBeLessThan(BOUND_MIB)
      for (const [k, v] of Object.entries(figures))
        if (k.endsWith("cli MiB")) expect(v, k).toBeLessThan(BOUND_MIB)
    },
    60 * 60_000,
  )
})

/** Every file and directory under `root`: relative name, size (files), permission bits. */
const snapshot = (root: string) => {
  const out: Array<string> = []
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const p = path.join(root, rel, name)
      const s = fs.lstatSync(p)
      out.push(`${path.join(rel, name)} ${s.isDirectory() ? "d" : s.size} ${(s.mode & 0o777).toString(8)}`)
      if (s.isDirectory()) walk(path.join(rel, name))
    }
  }
  walk("")
  return out
}

describe("cp -r of many small files", () => {
  it("a 10,000-file tree arrives complete and identical both ways (names, sizes, modes)", async () => {
    const tree = path.join(dir, "many")
    const modes = [0o600, 0o644, 0o640, 0o755]
    for (let d = 0; d < 10; d++) {
      const sub = path.join(tree, `d${d}`)
      fs.mkdirSync(sub, { recursive: true })
      for (let i = 0; i < 1000; i++) {
        const f = path.join(sub, `f${i}`)
        fs.writeFileSync(f, Buffer.alloc((i * 37) % 300, d))
        fs.chmodSync(f, modes[i % modes.length]!)
      }
    }
    fs.chmodSync(path.join(tree, "d3"), 0o700)
    const want = snapshot(tree)
    expect(want.length).toBe(10_010)
    const up = await cli(["cp", "-r", tree, ":" + path.join(dir, "many-up")], { timeoutMs: 120_000 })
    expect(up.code, up.stderr).toBe(0)
    expect(snapshot(path.join(dir, "many-up"))).toEqual(want)
    const down = await cli(["cp", "-r", ":" + path.join(dir, "many-up"), path.join(dir, "many-down")], {
      timeoutMs: 120_000,
    })
    expect(down.code, down.stderr).toBe(0)
    expect(snapshot(path.join(dir, "many-down"))).toEqual(want)
    expect(fs.readFileSync(path.join(dir, "many-down", "d7", "f5"))).toEqual(Buffer.alloc(185, 7))
    for (const t of ["many", "many-up", "many-down"]) fs.rmSync(path.join(dir, t), { recursive: true })
  }, 180_000)
})
