/**
 * `remove` of the root directory for real, where that is harmless: the agent (bundled, under this
 * Node) runs chrooted into a tmpfs inside a private mount namespace (`unshare --mount`), so its `/` is
 * a few files made for the test. The host reaches its socket through /proc/PID/root. Before anything
 * is removed the test proves the agent's root is that tmpfs (a marker there, no /etc, another device
 * than the host's root); otherwise it fails without sending the remove.
 */
import type { Session } from "@cuvette/protocol"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { connect, tempDir } from "./fixtures/agent.js"

const has = (tool: string) => {
  try {
    execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}
const feasible =
  process.platform === "linux" && process.getuid?.() === 0 && has("unshare") && has("chroot") && has("ldd")

const MARKER = "CUVETTE-TMPFS-ROOT"

// Mounts a tmpfs on $1, copies node ($3) with its libraries and the agent bundle ($2/agent.mjs) in,
// writes the pid that will become the agent's and runs the agent chrooted there.
const LAUNCH = `set -eu
R="$1"; H="$2"; NODE="$3"
mount -t tmpfs -o size=256m cuvette-test "$R"
for lib in $(ldd "$NODE" | grep -o '/[^ ]*'); do mkdir -p "$R$(dirname "$lib")"; cp "$lib" "$R$lib"; done
cp "$NODE" "$R/node"; cp "$H/agent.mjs" "$R/agent.mjs"; touch "$R/${MARKER}"; echo keep > "$R/canary"
echo $$ > "$H/pid"
unset NODE_EXTRA_CA_CERTS
exec chroot "$R" /node /agent.mjs --listen unix:/a.sock
`

describe.skipIf(!feasible)("remove of / in a tmpfs chroot (needs Linux, root, unshare, chroot)", () => {
  let host: string
  let child: ChildProcess
  let pid: number
  let s: Session.ClientSession
  const inside = (p: string) => `/proc/${pid}/root${p}`

  beforeAll(async () => {
    host = tempDir("cuvette-root-")
    fs.mkdirSync(path.join(host, "root"))
    const { build } = await import("esbuild")
    await build({
      entryPoints: [fileURLToPath(new URL("../src/bin.ts", import.meta.url))],
      bundle: true,
      platform: "node",
      format: "esm",
      conditions: ["@cuvette/source"],
      outfile: path.join(host, "agent.mjs"),
      banner: {
        js: "import { createRequire as __req } from 'module'; const require = __req(import.meta.url);",
      },
      logLevel: "silent",
    })
    fs.writeFileSync(path.join(host, "launch.sh"), LAUNCH)
    child = spawn(
      "unshare",
      [
        "--mount",
        "--propagation",
        "private",
        "--fork",
        "sh",
        path.join(host, "launch.sh"),
        path.join(host, "root"),
        host,
        process.execPath,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    )
    let log = ""
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`chrooted agent not ready:\n${log}`)), 60_000)
      child.stderr!.on("data", (d: Buffer) => {
        log += d.toString()
        if (log.includes("CUVETTE READY")) {
          clearTimeout(timer)
          resolve()
        }
      })
      child.once("exit", (code) => {
        clearTimeout(timer)
        reject(new Error(`launcher exited with ${code}:\n${log}`))
      })
    })
    pid = Number(fs.readFileSync(path.join(host, "pid"), "utf8"))
    s = await connect(inside("/a.sock"))
  }, 120_000)

  afterAll(async () => {
    s?.close()
    if (pid > 0) process.kill(pid, "SIGKILL")
    if (child && child.exitCode === null) await new Promise((r) => child.once("exit", r))
    if (host) fs.rmSync(host, { recursive: true, force: true })
  })

  it("the agent's root is the tmpfs made for the test, not this machine's", async () => {
    expect((await s.open("info", {}).result).agent.pid).toBe(pid)
    await expect(s.open("stat", { path: `/${MARKER}` }).result).resolves.toMatchObject({ type: "file" })
    await expect(s.open("stat", { path: "/etc" }).result).rejects.toMatchObject({ code: "ENOENT" })
    expect(fs.statSync(inside("/")).dev).not.toBe(fs.statSync("/").dev)
    // The tmpfs is private to the agent's namespace: the host's mount point stays empty.
    expect(fs.readdirSync(path.join(host, "root"))).toEqual([])
  })

  it("a recursive remove of / is refused without noPreserveRoot, then removes everything with it", async () => {
    const rooted =
      fs.existsSync(inside(`/${MARKER}`)) &&
      !fs.existsSync(inside("/etc")) &&
      fs.statSync(inside("/")).dev !== fs.statSync("/").dev
    // Never send the remove unless the guard holds (a failed expect ends the test here).
    expect(rooted).toBe(true)
    await expect(s.open("remove", { path: "/", recursive: true }).result).rejects.toMatchObject({
      code: "DENIED",
    })
    expect(fs.readFileSync(inside("/canary"), "utf8")).toBe("keep\n")
    // Everything under / goes; / itself is a mount point, which rmdir cannot remove (as GNU rm reports).
    const removed = await s.open("remove", { path: "/", recursive: true, noPreserveRoot: true }).result.then(
      () => undefined,
      (e: { code: string }) => e.code,
    )
    expect([undefined, "EBUSY"]).toContain(removed)
    expect(fs.readdirSync(inside("/"))).toEqual([])
  })
})
