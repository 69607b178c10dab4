#!/usr/bin/env node
// Cuvette's main job on a built-in default: start an agent, then use the `cuvette` CLI against it to
// run a command, copy a file both ways and print `info`. With `--vm` (the default when QEMU is usable)
// the agent runs inside a real QEMU guest booted from a Cuvette cidata disk; otherwise on a local
// Unix socket.
import { spawn, spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const local = process.argv.includes("--local")

// The VM path imports the e2e harness and @cuvette/deploy from TypeScript sources: run under tsx with
// the workspace's source condition.
if (!local && !process.execArgv.includes("--conditions=@cuvette/source")) {
  const r = spawnSync(
    process.execPath,
    ["--conditions=@cuvette/source", "--import", "tsx", import.meta.filename, ...process.argv.slice(2)],
    { stdio: "inherit" },
  )
  process.exit(r.status ?? 1)
}
const cli = path.join(root, "packages", "cli", "bin", "cuvette.mjs")
const agentBin = path.join(root, "packages", "agent", "bin", "cuvette-agent.mjs")
const work = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-demo-"))

const say = (text) => console.log(`\n\x1b[1m# ${text}\x1b[0m`)
const cuvette = (target, ...args) => {
  const quote = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)
  console.log(`$ cuvette -H ${target} ${args.map(quote).join(" ")}`)
  const r = spawnSync(process.execPath, [cli, "-H", target, ...args], { stdio: "inherit" })
  if (r.status !== 0) throw new Error(`cuvette ${args[0]} exited with ${r.status}`)
}

const startLocalAgent = async () => {
  const sock = path.join(work, "agent.sock")
  const agent = spawn(process.execPath, [agentBin, "--listen", `unix:${sock}`], {
    stdio: ["ignore", "inherit", "pipe"],
  })
  await new Promise((resolve, reject) => {
    let err = ""
    const timer = setTimeout(() => reject(new Error(`agent did not start:\n${err}`)), 20_000)
    agent.stderr.on("data", (d) => {
      err += d
      if (err.includes("CUVETTE READY")) {
        clearTimeout(timer)
        resolve()
      }
    })
    agent.on("exit", (code) => reject(new Error(`agent exited with ${code}:\n${err}`)))
  })
  agent.stderr.resume()
  return { target: `unix:${sock}`, stop: async () => agent.kill("SIGTERM") }
}

// QEMU is usable when installed, or installable (root: scripts/setup-system.sh uses apt).
const qemuUsable = () => {
  if (local) return false
  if (spawnSync("bash", [path.join(root, "scripts", "setup-system.sh")], { stdio: "inherit" }).status !== 0)
    return false
  return spawnSync("qemu-system-x86_64", ["--version"], { stdio: "ignore" }).status === 0
}

const startVmAgent = async () => {
  const { startVm } = await import("../e2e/src/demo.ts")
  const vm = await startVm((line) => say(line))
  say("waiting for the agent in the guest (virtio-serial)")
  try {
    cuvette(vm.target, "wait", "--timeout", "120s")
  } catch (e) {
    console.error(vm.console())
    await vm.stop()
    throw e
  }
  return {
    target: vm.target,
    stop: async () => {
      say("power the guest off")
      cuvette(vm.target, "shutdown")
      const code = await Promise.race([vm.exited, new Promise((r) => setTimeout(() => r("timeout"), 20_000))])
      console.log(
        code === 0 ? "QEMU exited after the guest powered off" : `QEMU did not exit cleanly (${code})`,
      )
      await vm.stop()
    },
  }
}

const main = async () => {
  let agent
  if (qemuUsable()) {
    say("Cuvette in a real VM: QEMU boots Debian's kernel from a Cuvette cidata disk")
    agent = await startVmAgent()
  } else {
    say("starting a Cuvette agent on a local Unix socket (no QEMU here; --local forces this)")
    agent = await startLocalAgent()
  }
  try {
    const guestDir = agent.target.startsWith("serial:") ? "/tmp" : work
    const file = path.join(work, "payload.bin")
    fs.writeFileSync(file, crypto.randomBytes(8 * 1024 * 1024))
    say("run a command in the guest")
    cuvette(agent.target, "exec", "--", "sh", "-c", "echo hello from $(uname -sr); exit 0")
    say("copy a file in and back out, then compare")
    cuvette(agent.target, "cp", file, `:${path.join(guestDir, "in-guest.bin")}`)
    cuvette(agent.target, "cp", `:${path.join(guestDir, "in-guest.bin")}`, path.join(work, "back.bin"))
    const same = Buffer.compare(fs.readFileSync(file), fs.readFileSync(path.join(work, "back.bin"))) === 0
    console.log(same ? "identical bytes after the round trip" : "MISMATCH after the round trip")
    say("agent info")
    cuvette(agent.target, "info")
    if (!same) process.exitCode = 1
  } finally {
    await agent.stop()
    fs.rmSync(work, { recursive: true, force: true })
  }
}

main().catch((e) => {
  console.error(`demo failed: ${e.message}`)
  process.exit(1)
})
