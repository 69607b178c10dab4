// VTL0-style bring-up without Cuvette's agent: the guest mounts the cidata disk by label, runs the
// launcher from it (a shell stand-in here), and powers off when it exits; QEMU exits by itself. Its
// serial console (ttyS1, a busybox shell) is driven with `cuvette console` in a real terminal meanwhile.
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { promisify } from "node:util"
import { afterAll, describe, expect, it } from "vitest"
import { listDisk } from "../src/Disk.js"
import { setup } from "../src/setup.js"
import * as Vm from "../src/Vm.js"
import { cli, cliBin, repoRoot, tempDirForTest } from "./fixtures/agent.js"
import { bootForTest, diskForTest, kernelOf, since, uptimeOf } from "./fixtures/boot.js"

const run = promisify(execFile)
const inTerminal = path.join(repoRoot, "packages/cli/test/fixtures/in-terminal.py")

/**
 * `cuvette console SOCKET` in a real pty (python), between two `stty -a`, with `script`'s keys; resolves
 * with what the terminal showed (cuvette's exit code follows as `rc=N`) and whether the stty matched.
 */
const consoleInPty = async (socket: string, script: ReadonlyArray<Record<string, string>>) => {
  const dir = tempDirForTest("cuvette-e2e-console-")
  const shell = `cd '${dir}'; stty -a > before; '${process.execPath}' '${cliBin}' console '${socket}'; echo "rc=$?"; stty -a > after`
  const r = await run("python3", [inTerminal, "24", "80", JSON.stringify(script), "--", "sh", "-c", shell], {
    timeout: 90_000,
  }).catch((e: { stdout?: string; message: string }) => {
    throw new Error(`${e.message}\n${e.stdout ?? ""}`)
  })
  const stty = (name: string) => fs.readFileSync(path.join(dir, name), "utf8")
  return { shown: r.stdout, sttyRestored: stty("after") === stty("before") }
}

const env = await setup()
afterAll(() => Vm.killAll())

describe("qemuArgs", () => {
  it("forces TCG with -cpu max, exits on reboot, and maps each port to a socket", () => {
    const args = Vm.qemuArgs(
      {
        kernel: "/k/vmlinux",
        initrd: "/k/initrd.gz",
        disk: "/d/cidata,1.vhd",
        mode: "vtl2",
        serialPorts: [],
      },
      {
        consoleLog: "/t/console.log",
        sockets: { [Vm.Ports.agent]: "/t/a.sock", [Vm.Ports.diag]: "/t/d.sock" },
      },
    )
    const line = args.join(" ")
    expect(line).toContain(`-accel ${process.env.E2E_ACCEL ?? "tcg"} -cpu max -m 256`)
    expect(args).toContain("-no-reboot")
    expect(line).toContain("panic=-1 cuvette.mode=vtl2")
    expect(line).toContain("file=/d/cidata,,1.vhd,if=none,id=cd,format=vpc,readonly=on")
    expect(line).toContain(
      "socket,path=/t/a.sock,server=on,wait=off,id=port0 -device virtserialport,chardev=port0,name=org.cuvette.agent.0",
    )
    expect(line).toContain("name=org.cuvette.diag.0")
    expect(line).not.toContain("ttyS1")
  })

  it("consoleShell: a second serial port (ttyS1) on a listening socket, and the guest told to serve it", () => {
    const args = Vm.qemuArgs(
      { kernel: "/k/vmlinux", initrd: "/k/initrd.gz", mode: "vtl0" },
      { consoleLog: "/t/console.log", sockets: {}, consoleShellSocket: "/t/ttyS1.sock" },
    )
    const line = args.join(" ")
    expect(line).toContain(
      "-serial file:/t/console.log -chardev socket,path=/t/ttyS1.sock,server=on,wait=off,id=ttyS1 -serial chardev:ttyS1",
    )
    expect(line).toContain("cuvette.mode=vtl0 cuvette.console=ttyS1")
  })
})

describe.skipIf(env.skipReason !== undefined)("vtl0 boot from the cidata disk", () => {
  const assets = env.assets!

  it("mounts the disk by label, runs the launcher from it, serves `cuvette console` on ttyS1, and QEMU exits after poweroff -f", async () => {
    const disk = await diskForTest({
      "cuvette-agent.sh": [
        "#!/bin/sh",
        "# Stand-in for the deploy engineer's launcher: prove where it runs from and exit.",
        "echo \"E2E_STANDIN_AGENT from=$0 uid=$(id -u) mounts=$(grep -c ' /cidata vfat ro,' /proc/mounts)\"",
        "touch /cidata/x 2>/dev/null && echo E2E_STANDIN_RW || echo E2E_STANDIN_RO",
        "# Exit once the serial console test is done with the guest (it says so through the console); 60 s at most.",
        "i=0; while [ ! -e /tmp/console-done ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done",
        "exit 0",
        "",
      ].join("\n"),
      "meta-data": "instance-id: e2e-0001\n",
    })
    expect(await listDisk(disk)).toEqual(expect.arrayContaining(["cuvette-agent.sh", "meta-data"]))

    const vm = await bootForTest({
      ...kernelOf(assets),
      disk,
      mode: "vtl0",
      serialPorts: [Vm.Ports.agent],
      consoleShell: true,
      watchdogMs: 90_000,
    })
    await vm.waitForConsole(/E2E INIT_START/, 20_000)
    const toInit = since(vm)

    // The serial console: a terminal attached raw, a command typed, its output, Ctrl-] q, the terminal back.
    await vm.waitForConsole(/E2E CONSOLE_SHELL tty=ttyS1/, 20_000)
    const attached = await consoleInPty(vm.consoleShellSocket!, [
      { wait: "leave with Ctrl-] q" },
      // The shell's first prompt went out before anyone was connected (QEMU drops it): ask for one.
      { send: "\r" },
      { wait: "# " },
      { send: "uname -r\r" },
      // Only the output has it: the echo of the command line does not.
      { wait: assets.kernelRelease },
      { send: "\x1dq" },
      { wait: "rc=" },
    ])
    expect(attached.shown).toMatch(/rc=0/)
    expect(attached.sttyRestored).toBe(true)
    // Piped input: the command goes to the guest's shell; the launcher sees the file and exits.
    const piped = await cli(undefined, ["console", vm.consoleShellSocket!], {
      stdin: Buffer.from("echo piped-$((6 * 7)); touch /tmp/console-done\n"),
    })
    expect(piped.code, piped.stderr).toBe(0)
    expect(piped.stdout.toString()).toContain("piped-42")

    const code = await vm.exited
    const total = since(vm)
    const text = vm.consoleText()

    expect(code).toBe(0)
    expect(vm.watchdogFired()).toBe(false)
    expect(Vm.isAlive(vm.pid)).toBe(false)
    expect(text).toContain(`E2E INIT_START kernel=${assets.kernelRelease}`)
    expect(text).toMatch(/E2E CONSOLE_SHELL tty=ttyS1 /)
    expect(text).toMatch(/E2E PORTS names=org\.cuvette\.agent\.0 /)
    expect(text).toMatch(/E2E CIDATA_MOUNTED dev=\/dev\/vda /)
    expect(text).toContain("E2E_STANDIN_AGENT from=/cidata/cuvette-agent.sh uid=0 mounts=1")
    expect(text).toContain("E2E_STANDIN_RO")
    expect(text).toMatch(/E2E AGENT_EXIT rc=0 /)
    expect(text).toMatch(/E2E POWEROFF reason=agent-exit /)
    console.log(
      `[e2e timing] vtl0 smoke: /init seen on the host at ${toInit} s (guest uptime ${uptimeOf(vm, "INIT_START")} s), ` +
        `cidata mounted at uptime ${uptimeOf(vm, "CIDATA_MOUNTED")} s, QEMU exited at ${total} s`,
    )
  })

  it("a plain busybox `poweroff` from the agent (no -f) powers off through PID 1", async () => {
    const disk = await diskForTest({
      "cuvette-agent.sh":
        "#!/bin/sh\necho E2E_STANDIN_POWEROFF\npoweroff\nsleep 60\necho E2E_STANDIN_STILL_RUNNING\n",
    })
    const vm = await bootForTest({ ...kernelOf(assets), disk, mode: "vtl0", watchdogMs: 45_000 })
    const code = await vm.exited
    const text = vm.consoleText()
    expect(code).toBe(0)
    expect(vm.watchdogFired()).toBe(false)
    expect(text).toContain("E2E_STANDIN_POWEROFF")
    expect(text).toMatch(/E2E POWEROFF reason=signal-usr2 /)
    expect(text).not.toContain("E2E_STANDIN_STILL_RUNNING")
    console.log(`[e2e timing] vtl0 agent-initiated poweroff: QEMU exited at ${since(vm)} s`)
  })

  it("mounts GPT disks written by @cuvette/deploy's Image.write, raw and fixed VHD (two VMs at once)", async () => {
    const launcher = '#!/bin/sh\necho "E2E_STANDIN_DEPLOY_DISK $(cat /cidata/hello.txt)"\n'
    const boot = async (format: "raw" | "vhd") => {
      const disk = await diskForTest(
        { "cuvette-agent.sh": launcher, "hello.txt": `written as ${format}` },
        { writer: "deploy", format },
      )
      const vm = await bootForTest({ ...kernelOf(assets), disk, mode: "vtl0", watchdogMs: 45_000 })
      return { vm, code: await vm.exited }
    }
    const t0 = performance.now()
    const [raw, vhd] = await Promise.all([boot("raw"), boot("vhd")])
    for (const [{ vm, code }, format] of [
      [raw, "raw"],
      [vhd, "vhd"],
    ] as const) {
      expect(code).toBe(0)
      // The FAT32 volume is the GPT's first partition; the label is found there, not on the whole disk.
      expect(vm.consoleText()).toMatch(/E2E CIDATA_MOUNTED dev=\/dev\/vda1 /)
      expect(vm.consoleText()).toContain(`E2E_STANDIN_DEPLOY_DISK written as ${format}`)
    }
    console.log(
      `[e2e timing] deploy-written disks, raw and vhd side by side: ${((performance.now() - t0) / 1000).toFixed(2)} s`,
    )
  })

  it("the watchdog kills a guest that never powers off, by pid", async () => {
    const disk = await diskForTest({ "cuvette-agent.sh": "#!/bin/sh\nexec sleep 600\n" })
    // Shorter than any boot, so the outcome does not depend on how loaded the machine is.
    const vm = await bootForTest({ ...kernelOf(assets), disk, mode: "vtl0", watchdogMs: 1_500 })
    const code = await vm.exited
    expect(code).toBeNull()
    expect(vm.watchdogFired()).toBe(true)
    expect(Vm.isAlive(vm.pid)).toBe(false)
    expect(vm.consoleText()).toContain(`watchdog: killed QEMU pid ${vm.pid} after 1500 ms`)
  })
})

if (env.skipReason !== undefined) {
  it.skip(`vtl0 boot: QEMU e2e cannot run here: ${env.skipReason}`, () => {})
}
