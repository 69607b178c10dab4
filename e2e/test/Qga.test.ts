// qemu-ga as the reference peer in the same guest: the client in src/Qga.ts drives it over its
// virtio-serial port. The same exec and copy will later be timed through Cuvette's agent side by side.
import { createHash, randomBytes } from "node:crypto"
import { afterAll, describe, expect, it } from "vitest"
import * as Qga from "../src/Qga.js"
import { setup } from "../src/setup.js"
import * as Vm from "../src/Vm.js"
import { bootForTest, diskForTest, since } from "./fixtures/boot.js"

const env = await setup()
afterAll(() => Vm.killAll())
const skipReason = env.skipReason ?? env.qgaSkipReason

describe.skipIf(skipReason !== undefined)("qemu-ga in the busybox guest", () => {
  const assets = env.assets!

  it("pings, execs with captured output, round-trips 1 MiB of file data, and shuts the guest down", async () => {
    const disk = await diskForTest({ "cuvette-agent.sh": "#!/bin/sh\necho E2E_STANDIN_AGENT_QGA\n" })
    const vm = await bootForTest({
      kernel: assets.vmlinux,
      initrd: assets.initrdQga!,
      disk,
      mode: "qga",
      serialPorts: [Vm.Ports.agent, Vm.Ports.qga],
      watchdogMs: 55_000,
    })
    const qga = await Qga.make(await vm.connect(Vm.Ports.qga))
    const syncedAt = since(vm)
    // The agent ran and exited; qemu-ga keeps the guest up.
    await vm.waitForConsole(/E2E AGENT_EXIT rc=0 /, 10_000)
    expect(vm.consoleText()).toContain("E2E_STANDIN_AGENT_QGA")

    let t0 = performance.now()
    await qga.ping()
    const pingMs = performance.now() - t0

    const echo = await qga.exec("/bin/echo", ["hi"])
    expect(echo.exitcode).toBe(0)
    expect(echo.stdout.toString()).toBe("hi\n")
    const failing = await qga.exec("/bin/sh", ["-c", "echo err >&2; exit 5"])
    expect(failing.exitcode).toBe(5)
    expect(failing.stderr.toString()).toBe("err\n")

    const data = randomBytes(1 << 20)
    t0 = performance.now()
    await qga.writeFile("/tmp/roundtrip.bin", data)
    const writeMs = performance.now() - t0
    t0 = performance.now()
    const back = await qga.readFile("/tmp/roundtrip.bin")
    const readMs = performance.now() - t0
    expect(back.length).toBe(data.length)
    expect(back.equals(data)).toBe(true)
    // The guest saw the same bytes, not just the host's round trip.
    const sum = await qga.exec("/bin/sh", ["-c", "sha256sum /tmp/roundtrip.bin"])
    expect(sum.stdout.toString().split(" ")[0]).toBe(createHash("sha256").update(data).digest("hex"))

    await qga.shutdown()
    expect(await vm.exited).toBe(0)
    expect(vm.watchdogFired()).toBe(false)
    expect(vm.consoleText()).toMatch(/E2E QGA_SHUTDOWN args=[^\n]*-P \+0/)
    qga.close()
    console.log(
      `[e2e timing] qga: synced at ${syncedAt} s; ping ${pingMs.toFixed(1)} ms; exec /bin/echo ${echo.elapsedMs.toFixed(1)} ms ` +
        `(${echo.polls} status polls); 1 MiB write ${writeMs.toFixed(0)} ms, read ${readMs.toFixed(0)} ms; QEMU exited at ${since(vm)} s`,
    )
  })
})

if (skipReason !== undefined) {
  it.skip(`qemu-ga in the busybox guest: cannot run here: ${skipReason}`, () => {})
}
