// The README's main job in a real VM: build the agent, write a cidata disk with @cuvette/deploy, boot
// Debian's kernel with the busybox initramfs under QEMU (TCG), and hand back the agent's serial target.
// Used by scripts/demo.mjs; the scenario tests check the same path in depth.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { e2eRoot, setup } from "./setup.js"
import * as Vm from "./Vm.js"

/** Boots the demo VM; `stop()` kills QEMU by pid and removes its files. */
export const startVm = async (log: (line: string) => void) => {
  const ready = await setup()
  if (!ready.assets) throw new Error(`no VM here: ${ready.skipReason ?? "setup failed"}`)
  const repo = path.resolve(e2eRoot, "..")
  log("building the agent (bun build --compile, offline)")
  const built = spawnSync(process.execPath, ["scripts/build-agent.mjs", "--target", "linux-x64"], {
    cwd: repo,
    stdio: ["ignore", "ignore", "inherit"],
  })
  if (built.status !== 0) throw new Error("npm run build:agent failed")
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-demo-vm-"))
  const { Cidata, Image } = await import("@cuvette/deploy")
  const disk = path.join(dir, "cidata.img")
  log("writing the cidata disk (GPT + FAT32, label cidata) with @cuvette/deploy")
  await Image.write({
    out: disk,
    format: "raw",
    ...(await Cidata.linux({
      agent: path.join(repo, "dist/agent/linux-x64/cuvette-agent"),
      instanceId: "demo-0001",
      hostname: "cuvette-demo",
    })),
  })
  log(`booting ${ready.assets.kernelPackage} under QEMU (TCG) from that disk`)
  const vm = await Vm.start({
    kernel: ready.assets.vmlinux,
    initrd: ready.assets.initrd,
    disk,
    mode: "vtl0",
    serialPorts: [Vm.Ports.agent],
    watchdogMs: 300_000,
  })
  return {
    target: `serial:${vm.sockets[Vm.Ports.agent]}`,
    exited: vm.exited,
    console: () => vm.consoleText(),
    stop: async () => {
      await vm.kill()
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}
