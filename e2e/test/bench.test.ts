// The benchmarks' parts that need no VM (scripts/bench-*.mjs): the kernel's ceiling program, the CLI's
// data paths as whole processes, and the chart drawn from the JSON. The benchmarks themselves are not run
// here (`npm run bench`, `npm run bench:vm`): their figures mean nothing on a loaded test machine.
import { spawn, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { describe, expect, it } from "vitest"
import { buildAgent, cliBin, repoRoot, tempDirForTest } from "./fixtures/agent.js"

// A computed specifier: the scripts are plain .mjs modules without type declarations.
const load = (name: string) => import(pathToFileURL(path.join(repoRoot, "scripts", name)).href)
const MiB = 2 ** 20
const hasCc = spawnSync("cc", ["--version"]).status === 0
const hasPython = spawnSync("python3", ["-c", "import os; os.splice"]).status === 0

describe("bench: the kernel's ceiling", () => {
  const copies = async (compiler: string) => {
    const Ceiling = await load("bench-ceiling.mjs")
    const dir = tempDirForTest("cuvette-bench-ceiling-")
    const src = path.join(dir, "src.bin")
    const data = randomBytes(8 * MiB + 123)
    fs.writeFileSync(src, data)
    const program = Ceiling.prepare(dir, compiler)
    // file -> socketpair -> file: every byte arrives, in order.
    const dest = path.join(dir, "dest.bin")
    const r = spawnSync(program.argv[0], [...program.argv.slice(1), src, dest], { encoding: "utf8" })
    expect(r.status, r.stderr).toBe(0)
    expect(Number(r.stdout)).toBeGreaterThan(0)
    expect(fs.readFileSync(dest).equals(data)).toBe(true)
    fs.rmSync(dest)
    const m = Ceiling.measure(program, src, dir, data.length, 2)
    expect(m.fileRunsMiBs).toHaveLength(2)
    expect(m.socketRunsMiBs).toHaveLength(2)
    expect(m.fileMiBs).toBe(Math.max(...m.fileRunsMiBs))
    expect(m.socketMiBs).toBeGreaterThan(0)
    expect(fs.existsSync(path.join(dir, "ceiling.out"))).toBe(false)
    return program.tool
  }

  it.skipIf(!hasCc)("the C program (cc) moves a file through a socketpair byte for byte", async () => {
    expect(await copies("cc")).toBe("C, cc -O2")
  })

  it.skipIf(!hasPython)("without a compiler, Python's sendfile/splice does the same", async () => {
    expect(await copies("no-such-compiler-here")).toBe("Python, os.sendfile/os.splice")
  })
})

describe("bench: the CLI's data paths", () => {
  it("times each path as a whole process and checks what it moved", async () => {
    const CliPaths = await load("bench-cli.mjs")
    const { agent: agentBin } = await buildAgent()
    const dir = tempDirForTest("cuvette-bench-cli-")
    const sock = path.join(dir, "agent.sock")
    const agent = spawn(agentBin, ["--listen", `unix:${sock}`], { stdio: ["ignore", "ignore", "pipe"] })
    try {
      let err = ""
      agent.stderr.on("data", (d) => (err += d))
      while (!err.includes("CUVETTE READY")) {
        if (agent.exitCode !== null) throw new Error(`agent exited: ${err}`)
        await new Promise((r) => setTimeout(r, 20))
      }
      const src = path.join(dir, "src.bin")
      fs.writeFileSync(src, randomBytes(4 * MiB))
      const out = await CliPaths.measure(
        { npm: [process.execPath, cliBin] },
        `unix:${sock}`,
        src,
        4 * MiB,
        dir,
      )
      expect(Object.keys(out.npm)).toEqual(CliPaths.rows.map((r: { key: string }) => r.key))
      for (const r of Object.values(out.npm) as Array<{ ms: number; miBs: number }>) {
        expect(r.ms).toBeGreaterThan(0)
        expect(r.miBs).toBeCloseTo(4 / (r.ms / 1000), 6)
      }
      // Only the source is left: every path's output was checked and removed.
      expect(fs.readdirSync(dir).sort()).toEqual(["agent.sock", "src.bin"])
      // A path that moves the wrong number of bytes fails the run instead of yielding a figure.
      await expect(
        CliPaths.measure({ npm: [process.execPath, cliBin] }, `unix:${sock}`, src, 4 * MiB + 1, dir),
      ).rejects.toThrow(/4194304 of 4194305 bytes/)
    } finally {
      agent.kill("SIGKILL")
    }
  })
})

// The VM benchmark's raw-port over a pseudo-terminal in raw mode (a character device, as a virtio-serial
// port is): Python holds the host end, writes and reads through it and checks every byte.
const PTY_DRIVER = String.raw`
import os, pty, subprocess, sys, tty
node, script, mode, workdir = sys.argv[1:5]
m, s = pty.openpty()
tty.setraw(s)
tty.setraw(m)
name = os.ttyname(s)
def read_exactly(n):
    out = b""
    while len(out) < n:
        out += os.read(m, n - len(out))
    return out
data = os.urandom(300_000)
base = [node, "--conditions=@cuvette/source", "--import", "tsx", script, "--serial", name]
if mode == "receive":
    dest = os.path.join(workdir, "received.bin")
    p = subprocess.Popen(base + ["--receive", str(len(data)), "--out", dest])
    assert read_exactly(1) == b"R"
    view = memoryview(data)
    while view:
        view = view[os.write(m, view[:4096]):]
    assert read_exactly(1) == b"D"
    assert p.wait() == 0
    assert open(dest, "rb").read() == data
elif mode == "send":
    src = os.path.join(workdir, "send.bin")
    open(src, "wb").write(data)
    p = subprocess.Popen(base + ["--send", src])
    assert read_exactly(1) == b"R"
    os.write(m, b"G")
    assert read_exactly(len(data)) == data
    assert p.wait() == 0
else:
    p = subprocess.Popen(base + ["--echo", "3"])
    assert read_exactly(1) == b"R"
    for b in (b"x", b"y", b"z"):
        os.write(m, b)
        assert read_exactly(1) == b
    assert p.wait() == 0
print("ok", mode)
`

describe("bench: raw-port, the VM benchmark's protocol-free copy", () => {
  const rawPort = path.join(repoRoot, "e2e", "src", "bench", "rawPort.ts")
  it.skipIf(!hasPython).each(["receive", "send", "echo"])(
    "--%s moves every byte through a character device",
    (mode) => {
      const dir = tempDirForTest("cuvette-bench-raw-")
      const r = spawnSync("python3", ["-c", PTY_DRIVER, process.execPath, rawPort, mode, dir], {
        cwd: repoRoot,
        encoding: "utf8",
        timeout: 60_000,
      })
      expect(r.stderr).toBe("")
      expect(r.stdout).toBe(`ok ${mode}\n`)
      expect(r.status).toBe(0)
    },
  )
})

describe("bench: the chart", () => {
  it("draws each throughput row over its ceiling, with the ratio and the target", async () => {
    const Chart = await load("bench-chart.mjs")
    const local = {
      date: "2026-12-01T00:00:00.000Z",
      cpus: 2,
      cpu: "Test CPU",
      kernelCeiling: { tool: "C, cc -O2" },
      rows: [
        { path: "ping", unit: "µs", cuvette: 50 },
        {
          path: "library download, 1 GiB",
          chartLabel: "library download",
          unit: "MiB/s",
          cuvette: 1000,
          kernel: 4000,
          targetMiBs: 1536,
        },
        { path: "Node raw copy", unit: "MiB/s", cuvette: 2000, kernel: 4000 },
        { path: "kernel ceiling", unit: "MiB/s", cuvette: 4000 },
      ],
    }
    const svg: string = Chart.render("local", local)
    expect(svg.startsWith("<svg ")).toBe(true)
    expect(svg.trim().endsWith("</svg>")).toBe(true)
    expect(svg.match(/class="bar"/g)).toHaveLength(2)
    expect(svg).toContain("library download</text>")
    expect(svg).toContain("1000 MiB/s · 0.25× kernel")
    expect(svg).toContain("2000 MiB/s · 0.50× kernel")
    // The bar is a quarter of the track; the target's mark sits at 1536/4000 of it.
    const widths = [...svg.matchAll(/width="([\d.]+)" height="16" class="(track|bar)"/g)].map((m) =>
      Number(m[1]),
    )
    expect(widths.slice(0, 2)).toEqual([400, 100])
    expect(svg).toMatch(/<line x1="453.6"[^>]*class="target"/)

    const vm = {
      date: "2026-12-01T00:00:00.000Z",
      copyMiB: 64,
      rows: [
        { path: "exec /bin/true", unit: "ms", cuvette: 50, qemuGa: 20 },
        { path: "64 MiB host -> guest", unit: "MiB/s", cuvette: 10, qemuGa: 2.5, raw: 20, relay: 5 },
      ],
    }
    const vmSvg: string = Chart.render("vm", vm)
    expect(vmSvg.match(/class="bar"/g)).toHaveLength(3)
    expect(vmSvg).toContain("10.0 MiB/s · 0.50× raw port")
    expect(vmSvg).toContain("5.0 MiB/s · 0.25× raw port")
    expect(vmSvg).toContain("2.5 MiB/s · 0.13× raw port")
  })
})
