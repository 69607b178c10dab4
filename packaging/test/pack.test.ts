// The packages as another team gets them: `npm pack` of each (which builds it on prepack), then
// `npm install --offline` of the tarballs into an empty project outside the repository, from the npm cache
// that `npm ci` filled, with no NODE_PATH and no repository directory on PATH. There the README's library
// example and the installed `cuvette` bin run against the installed agent on a Unix socket.
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildEnv, repo, run, runLibraryExample, startAgent, userEnv } from "./helpers.js"
import * as Lockfile from "./lockfile.js"

const PACKAGES = ["protocol", "native", "client", "agent", "cli", "deploy"] as const
type Package = (typeof PACKAGES)[number]
const PREBUILT = { "linux-x64": 62, "linux-arm64": 183 } as const // ELF e_machine: EM_X86_64, EM_AARCH64
const host = `${process.platform}-${process.arch}`

const walk = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? walk(p) : [p]
  })

let tmp: string
let app: string
let socket: string
let agent: ChildProcess | undefined
const unpacked = {} as Record<Package, string>
let installLog = ""

describe("npm tarballs installed outside the repository", () => {
  beforeAll(async () => {
    tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-pack-")))
    const tarballs = path.join(tmp, "tarballs")
    fs.mkdirSync(tarballs)
    const env = buildEnv()
    const pack = run(
      "npm",
      ["pack", ...PACKAGES.flatMap((p) => ["-w", `@cuvette/${p}`]), "--pack-destination", tarballs],
      repo,
      env,
    )
    if (pack.status !== 0)
      throw new Error(`npm pack failed (${pack.status}):\n${pack.stdout}\n${pack.stderr}`)
    for (const p of PACKAGES) {
      const file = path.join(tarballs, `cuvette-${p}-0.1.0.tgz`)
      unpacked[p] = path.join(tmp, "unpacked", p)
      fs.mkdirSync(unpacked[p], { recursive: true })
      expect(run("tar", ["-xzf", file, "-C", unpacked[p], "--strip-components=1"], tmp).status).toBe(0)
    }

    app = path.join(tmp, "app")
    fs.mkdirSync(app)
    const { dependencies, lock } = Lockfile.fromRepository(
      path.join(repo, "package-lock.json"),
      Object.fromEntries(
        PACKAGES.map((p) => [`@cuvette/${p}`, path.join(tarballs, `cuvette-${p}-0.1.0.tgz`)]),
      ),
      app,
    )
    const manifest = { name: "app", private: true, type: "module", dependencies }
    fs.writeFileSync(path.join(app, "package.json"), JSON.stringify(manifest, null, 2))
    fs.writeFileSync(path.join(app, "package-lock.json"), JSON.stringify(lock, null, 2))
    const install = run("npm", ["install", "--offline", "--no-audit", "--no-fund"], app)
    installLog = install.stdout + install.stderr
    if (install.status !== 0) throw new Error(`npm install failed (${install.status}):\n${installLog}`)

    socket = path.join(tmp, "agent.sock")
    agent = await startAgent(path.join(app, "node_modules", ".bin", "cuvette-agent"), socket, app)
  }, 170_000)

  afterAll(() => {
    agent?.kill("SIGTERM")
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
  })

  it.each(PACKAGES)(
    "@cuvette/%s ships dist with types, maps that resolve inside it, README and LICENSE",
    (p) => {
      const dir = unpacked[p]
      const files = walk(dir).map((f) => path.relative(dir, f))
      expect(files).toEqual(
        expect.arrayContaining(["package.json", "README.md", "LICENSE", "dist/index.js", "dist/index.d.ts"]),
      )
      expect(fs.readFileSync(path.join(dir, "LICENSE"))).toEqual(fs.readFileSync(path.join(repo, "LICENSE")))
      expect(files.filter((f) => f.startsWith("test/") || f.endsWith(".test.ts"))).toEqual([])
      for (const js of files.filter((f) => /\.(js|d\.ts)$/.test(f) && f.startsWith("dist/"))) {
        const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(fs.readFileSync(path.join(dir, js), "utf8"))?.[1]
        if (js.endsWith(".js")) expect(url, `${js} names its map`).toBeDefined()
        if (url === undefined) continue
        const map = path.join(dir, path.dirname(js), url)
        expect(fs.existsSync(map), `${js} -> ${url}`).toBe(true)
        const { sources, sourceRoot = "" } = JSON.parse(fs.readFileSync(map, "utf8")) as {
          sources: Array<string>
          sourceRoot?: string
        }
        for (const source of sources) {
          const file = path.resolve(path.dirname(map), sourceRoot, source)
          expect(path.relative(dir, file).startsWith(".."), `${url}: ${source} inside the package`).toBe(
            false,
          )
          expect(fs.existsSync(file), `${url}: ${source} is shipped`).toBe(true)
        }
      }
    },
  )

  it.each(PACKAGES)("@cuvette/%s compiles nothing on install: no install scripts, no binding.gyp", (p) => {
    const pkg = JSON.parse(fs.readFileSync(path.join(unpacked[p], "package.json"), "utf8")) as {
      scripts?: Record<string, string>
      gypfile?: boolean
    }
    expect(Object.keys(pkg.scripts ?? {}).filter((s) => /^(pre|post)?install$/.test(s))).toEqual([])
    expect(pkg.gypfile).not.toBe(true)
    expect(walk(unpacked[p]).filter((f) => f.endsWith(".gyp"))).toEqual([])
    expect(fs.existsSync(path.join(app, "node_modules", "@cuvette", p, "build"))).toBe(false)
    // npm lists every installed package that has an install script (node-gyp rebuild for a binding.gyp).
    expect(installLog).not.toContain(`@cuvette/${p}@`)
  })

  it("@cuvette/native ships the linux-x64, linux-arm64 and win32-x64 addons", () => {
    const addon = (target: string) =>
      fs.readFileSync(path.join(unpacked.native, "prebuilds", target, "cuvette_native.node"))
    for (const [target, machine] of Object.entries(PREBUILT)) {
      const elf = addon(target)
      expect(elf.subarray(0, 4), target).toEqual(Buffer.from("\x7fELF", "latin1"))
      expect(elf.readUInt16LE(18), `${target} e_machine`).toBe(machine)
    }
    const pe = addon("win32-x64")
    expect(pe.subarray(0, 2).toString("latin1")).toBe("MZ")
    const header = pe.readUInt32LE(0x3c)
    expect(pe.readUInt16LE(header + 4)).toBe(0x8664) // IMAGE_FILE_MACHINE_AMD64
    expect(pe.readUInt16LE(header + 24)).toBe(0x20b) // PE32+
  })

  const vsockProbe = () => {
    // Loads the addon without opening any socket: the ioctl for this machine's CID on /dev/vsock.
    const script = `import { Vsock } from "@cuvette/native"
try { console.log(JSON.stringify({ cid: Vsock.readLocalCid() })) }
catch (e) { console.log(JSON.stringify({ reason: e.reason, message: e.message })) }`
    const r = run(process.execPath, ["--input-type=module", "-e", script], app)
    expect(r.stderr).toBe("")
    expect(r.status).toBe(0)
    return JSON.parse(r.stdout) as { cid?: number; reason?: string; message?: string }
  }

  it.skipIf(host !== "linux-x64")("the installed linux-x64 addon loads (linux-x64 hosts only)", () => {
    expect(vsockProbe().reason).not.toBe("NOT_BUILT")
  })

  const bun = path.join(repo, "node_modules", ".bin", "bun")
  it.skipIf(process.platform !== "linux" || !fs.existsSync(bun))(
    "under Bun the installed package listens on AF_VSOCK with no addon (Linux, with the bun devDependency)",
    () => {
      // Listening only (any CID, a port the kernel picks): this test never connects to a CID.
      const script = `import { Vsock } from "@cuvette/native"
const server = await Vsock.listen({ port: Vsock.VMADDR_PORT_ANY })
console.log(JSON.stringify({ listening: server.listening, cid: Vsock.localAddress(server)?.cid }))
server.close()`
      fs.writeFileSync(path.join(app, "bun-vsock.mjs"), script)
      const env = { ...userEnv(), CUVETTE_NATIVE_BINDING: "/nonexistent/cuvette_native.node" }
      const r = run(bun, ["bun-vsock.mjs"], app, env)
      expect(r.stderr).toBe("")
      expect(JSON.parse(r.stdout)).toEqual({ listening: true, cid: 0xffffffff })
      expect(r.status).toBe(0)
    },
  )

  const cuvette = (...args: Array<string>) =>
    run(path.join(app, "node_modules", ".bin", "cuvette"), args, app)

  const cliWorks = () => {
    const ping = cuvette("ping", "--target", `unix:${socket}`)
    expect(ping.stderr).toBe("")
    expect(ping.stdout).toMatch(/^pong from unix:\S+: \d+(\.\d+)? ms\n$/)
    expect(ping.stdout).toContain(socket)
    expect(ping.status).toBe(0)
    const hi = cuvette("exec", "--target", `unix:${socket}`, "--", "echo", "hi")
    expect(hi).toMatchObject({ status: 0, stdout: "hi\n", stderr: "" })
    expect(cuvette("exec", "--target", `unix:${socket}`, "--", "sh", "-c", "exit 7").status).toBe(7)
  }

  it("runs the README's library example against the installed agent", () => {
    runLibraryExample(app, socket, path.join(tmp, "guest-payload.bin"))
  })

  it("runs the installed cuvette bin: ping and exec", () => {
    cliWorks()
  })

  /** Starts the installed agent on loopback TCP, on a port the kernel picks; resolves its address. */
  const startTcpAgent = async (args: ReadonlyArray<string>) => {
    const bin = path.join(app, "node_modules", ".bin", "cuvette-agent")
    const child = spawn(bin, ["--listen", "tcp:127.0.0.1:0", ...args], {
      cwd: app,
      env: userEnv(),
      stdio: ["ignore", "ignore", "pipe"],
    })
    let log = ""
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the agent did not start:\n${log}`)), 30_000)
      child.stderr!.on("data", (c: Buffer) => {
        log += c.toString()
        const m = /serving on (tcp:127\.0\.0\.1:\d+)/.exec(log)
        if (m && log.includes("CUVETTE READY")) {
          clearTimeout(timer)
          resolve(m[1]!)
        }
      })
      child.once("exit", (code) => reject(new Error(`the agent exited with ${code}:\n${log}`)))
    })
    return { address, stop: () => child.kill("SIGKILL") }
  }

  it.skipIf(process.platform !== "linux" && process.platform !== "win32")(
    "without an addon for this platform, unix: and tcp: still work and vsock says which platform lacks one",
    async () => {
      fs.rmSync(path.join(app, "node_modules", "@cuvette", "native", "prebuilds", host), { recursive: true })
      const probe = vsockProbe()
      expect(probe.reason).toBe("NOT_BUILT")
      expect(probe.message).toContain(`the native addon for ${host} is missing`)
      runLibraryExample(app, socket, path.join(tmp, "guest-payload-2.bin"))
      cliWorks()
      const tokenFile = path.join(tmp, "tcp-token")
      fs.writeFileSync(tokenFile, "pack-test-token\n")
      for (const token of [[], ["--token-file", tokenFile]]) {
        const tcp = await startTcpAgent(token)
        try {
          const hi = cuvette("exec", "--target", tcp.address, ...token, "--", "echo", "hi")
          expect(hi).toMatchObject({ status: 0, stdout: "hi\n", stderr: "" })
        } finally {
          tcp.stop()
        }
      }
    },
  )
})
