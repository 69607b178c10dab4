import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Bundle from "../src/Bundle.js"
import { fakeAgentDir } from "./fixtures/fakeElf.js"
import { has, run, tempDir } from "./fixtures/tools.js"

const bun = path.resolve(import.meta.dirname, "../../../node_modules/.bin/bun")
const hostLibs = Object.fromEntries(
  Bundle.libraries("x64").map((n) => [n, n.startsWith("ld-") ? `/lib64/${n}` : `/lib/x86_64-linux-gnu/${n}`]),
)
const canBuild =
  fs.existsSync(bun) &&
  process.platform === "linux" &&
  process.arch === "x64" &&
  Object.values(hostLibs).every((f) => fs.existsSync(f))
const skipNote = canBuild ? "" : " (skipped: needs Bun from node_modules and the host's x86-64 glibc)"
const { dir, cleanup } = tempDir()
const bundle = path.join(dir, "bundle")

/** A bundle around a Bun-compiled stand-in agent that reports what it was started with. */
const buildStubBundle = async () => {
  const src = path.join(dir, "stub.ts")
  fs.writeFileSync(
    src,
    "console.log(JSON.stringify({ args: process.argv.slice(2), tmpdir: process.env.TMPDIR ?? null, execPath: process.execPath }))\n",
  )
  const r = spawnSync(bun, ["build", "--compile", src, "--outfile", path.join(dir, "stub")], {
    encoding: "utf8",
  })
  if (r.status !== 0) throw new Error(`bun build failed: ${r.stderr}`)
  await Bundle.assemble(bundle, path.join(dir, "stub"), hostLibs)
}
afterAll(cleanup)

const launch = (shell: string, args: ReadonlyArray<string>, env: Record<string, string> = {}, cwd = "/") => {
  const launcher = path.join(bundle, Bundle.LAUNCHER)
  const argv = shell.endsWith("busybox") ? ["sh", launcher, ...args] : [launcher, ...args]
  const r = spawnSync(shell, argv, {
    encoding: "utf8",
    env: { PATH: "/nonexistent", ...env }, // built-ins only: the guest may have no tools at all
    cwd,
  })
  if (r.status !== 0) throw new Error(`launcher failed (${r.status}): ${r.stderr}`)
  return JSON.parse(r.stdout) as { args: Array<string>; tmpdir: string | null; execPath: string }
}

describe("the Linux bundle launcher", () => {
  describe.skipIf(!canBuild)(`around a Bun-compiled agent${skipNote}`, () => {
    beforeAll(buildStubBundle, 60_000)

    it.skipIf(!has("busybox"))(
      `runs a Bun executable through the bundled loader under busybox sh${has("busybox") ? "" : " (skipped: needs busybox)"}`,
      () => {
        const got = launch("/usr/bin/busybox", ["--listen", "unix:/tmp/x.sock", "two words", ""])
        expect(got.args).toEqual(["--listen", "unix:/tmp/x.sock", "two words", ""])
        expect(got.execPath).toBe(path.join(bundle, "lib", Bundle.loader.x64))
        expect(got.tmpdir).toBe("/tmp") // chosen because none was set
        expect(launch("/usr/bin/busybox", [], { TMPDIR: dir }).tmpdir).toBe(dir)
      },
    )

    it("works with a relative path and under dash, and adds the disk's token unless one is passed", () => {
      fs.writeFileSync(path.join(bundle, Bundle.TOKEN), "secret\n")
      try {
        const r = spawnSync("/bin/sh", [`./${Bundle.LAUNCHER}`, "--serial", "/dev/vport1p1"], {
          cwd: bundle,
          encoding: "utf8",
          env: { PATH: "/nonexistent" },
        })
        expect(JSON.parse(r.stdout).args).toEqual([
          "--token-file",
          path.join(bundle, Bundle.TOKEN),
          "--serial",
          "/dev/vport1p1",
        ])
        expect(launch("/bin/sh", ["--token-file", "/etc/other"]).args).toEqual(["--token-file", "/etc/other"])
        expect(launch("/bin/sh", ["--token-file=/etc/other"]).args).toEqual(["--token-file=/etc/other"])
      } finally {
        fs.rmSync(path.join(bundle, Bundle.TOKEN))
      }
    })

    const root = process.getuid?.() === 0 && has("unshare") && has("chroot") && has("busybox")
    it.skipIf(!root)(
      `starts the agent in a root with no glibc, only static busybox and the bundle${root ? "" : " (skipped: needs root, unshare, chroot and a static busybox)"}`,
      () => {
        const file = run("file", ["-L", "/usr/bin/busybox"]).stdout
        if (!file.includes("statically linked")) return expect.fail(`busybox is not static: ${file}`)
        const chroot = path.join(dir, "root")
        for (const d of ["bin", "proc", "tmp", "cidata/lib"])
          fs.mkdirSync(path.join(chroot, d), { recursive: true })
        fs.copyFileSync("/usr/bin/busybox", path.join(chroot, "bin/busybox"))
        fs.chmodSync(path.join(chroot, "bin/busybox"), 0o755)
        for (const f of [Bundle.AGENT, Bundle.LAUNCHER, ...Bundle.libraries("x64").map((l) => `lib/${l}`)])
          fs.copyFileSync(path.join(bundle, f), path.join(chroot, "cidata", f))
        fs.chmodSync(path.join(chroot, "cidata", Bundle.LAUNCHER), 0o755)
        // Bun finds its embedded code through /proc/self/exe, so /proc must be mounted (VTL2 has it)
        const r = spawnSync(
          "unshare",
          [
            "-m",
            "sh",
            "-c",
            'mount -t proc proc "$1/proc" && exec chroot "$1" /bin/busybox sh /cidata/cuvette-agent.sh hello',
            "sh",
            chroot,
          ],
          { encoding: "utf8", env: { PATH: process.env.PATH ?? "" } },
        )
        expect(r.status, r.stderr).toBe(0)
        expect(JSON.parse(r.stdout)).toEqual({
          args: ["hello"],
          tmpdir: "/tmp",
          execPath: "/cidata/lib/ld-linux-x86-64.so.2",
        })
      },
    )
  })

  const launcherFile = () => {
    const file = path.join(dir, "launcher.sh")
    fs.writeFileSync(file, Bundle.launcherScript)
    return file
  }
  it("is valid POSIX sh for the system sh", () => {
    expect(run("sh", ["-n", launcherFile()]).status).toBe(0)
  })
  it.skipIf(!has("busybox"))(
    `is valid sh for busybox${has("busybox") ? "" : " (skipped: needs busybox)"}`,
    () => {
      expect(run("busybox", ["sh", "-n", launcherFile()]).status).toBe(0)
    },
  )
})

describe("Bundle.files", () => {
  it("lists the agent, launcher and libraries, and names what is missing", async () => {
    const d = path.join(dir, "fake")
    const agent = fakeAgentDir(d)
    const files = await Bundle.files({ agent, tokenFile: agent })
    expect(files.map((f) => f.path)).toEqual([
      "cuvette-agent",
      "cuvette-agent.sh",
      "lib/ld-linux-x86-64.so.2",
      "lib/libc.so.6",
      "lib/libm.so.6",
      "lib/libpthread.so.0",
      "lib/libdl.so.2",
      "cuvette-token",
    ])
    fs.rmSync(path.join(d, "lib", "libm.so.6"))
    await expect(Bundle.files({ agent })).rejects.toThrow(
      /lib\/libm\.so\.6 is missing; `npm run build:agent`/,
    )
    await expect(Bundle.files({ agent: path.join(d, "lib", "libc.so.6") })).rejects.toMatchObject({
      _tag: "BundleError",
      message: expect.stringMatching(/is not a Linux x86-64 or aarch64 executable/),
    })
  })
})
