// Issue 6 scenarios, end to end in a real VM with the real agent bundle and the real CLI:
//   1. VTL0-style: the guest mounts the @cuvette/deploy cidata disk by label and starts the launcher.
//   2. VTL2-style: nothing runs until the host deploys the agent through ohcldiag-dev.
// Both are then driven from the host through `cuvette --target serial:<socket>`; scenario 1 also through a
// second port whose relay in the guest carries each session over AF_VSOCK to the agent (vsock_loopback).
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { randomBytes } from "node:crypto"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import type { Assets } from "../src/setup.js"
import { setup } from "../src/setup.js"
import * as Vm from "../src/Vm.js"
import * as Diag from "../src/Diag.js"
import { bootForTest } from "./fixtures/boot.js"
import type { CliResult } from "./fixtures/agent.js"
import {
  buildAgent,
  cidataDisk,
  cli,
  cliBin,
  cliOk,
  relayAddonCheck,
  relayCommand,
  relayFiles,
  sha256,
  sha256File,
  tempDirForTest,
  timings,
} from "./fixtures/agent.js"

const env = await setup()
afterEach(() => Vm.killAll())
afterAll(() => Vm.killAll())

type Timings = ReturnType<typeof timings>

/** One copy's speed in MiB/s: `cp --json`'s durationMs (the transfer, after the handshake). */
interface CopyRates {
  readonly upMiBs: number
  readonly downMiBs: number
}

/**
 * `cuvette cp` of `mib` random MiB host -> guest (/tmp/NAME.bin) and back, checked by sha256 in the guest
 * and on the host; the guest file is removed afterwards (the guest's /tmp is RAM).
 */
const copyBothWays = async (
  target: string,
  dir: string,
  name: string,
  mib: number,
  t: Timings,
  via = "",
): Promise<CopyRates> => {
  const up = path.join(dir, `${name}-up.bin`)
  const down = path.join(dir, `${name}-down.bin`)
  const guestFile = `/tmp/${name}.bin`
  fs.writeFileSync(up, randomBytes(mib * 2 ** 20))
  const want = sha256File(up)
  const rate = (r: CliResult) =>
    mib / ((JSON.parse(r.stdout.toString()) as { durationMs: number }).durationMs / 1000)
  const upload = await t.time(`cuvette cp ${mib} MiB host -> guest${via}`, () =>
    cliOk(target, ["--json", "cp", up, `:${guestFile}`], { timeoutMs: 120_000 }),
  )
  const guestSum = await t.time(`cuvette exec sha256sum (guest)${via}`, () =>
    cliOk(target, ["exec", "--", "sha256sum", guestFile], { timeoutMs: 60_000 }),
  )
  expect(guestSum.stdout.toString().split(" ")[0]).toBe(want)
  const download = await t.time(`cuvette cp ${mib} MiB guest -> host${via}`, () =>
    cliOk(target, ["--json", "cp", `:${guestFile}`, down], { timeoutMs: 120_000 }),
  )
  expect(fs.statSync(down).size).toBe(mib * 2 ** 20)
  expect(sha256File(down)).toBe(want)
  await cliOk(target, ["exec", "--", "rm", guestFile])
  fs.rmSync(up)
  fs.rmSync(down)
  return { upMiBs: rate(upload), downMiBs: rate(download) }
}

/** The checks both scenarios share, from `cuvette wait` to `cuvette shutdown` ending QEMU. */
const agentChecks = async (
  vm: Vm.Vm,
  assets: Assets,
  dir: string,
  copyMiB: number,
  t: Timings,
  /** The CLI's `wait` is the host's first contact (VTL0); in VTL2, `deploy vtl2` waited already. */
  firstContact: boolean,
  /** Runs in the same VM before the shutdown, given how fast the agent port copied. */
  moreChecks?: (serialCopy: CopyRates) => Promise<void>,
): Promise<void> => {
  const target = `serial:${vm.sockets[Vm.Ports.agent]}`

  // The client says hello before the guest opens its port; QEMU holds those hellos until it does.
  let readyAt: number | undefined
  void vm.waitForConsole(/CUVETTE READY/, 60_000).then(
    () => (readyAt = performance.now()),
    () => {},
  )
  await t.time("cuvette wait", () => cliOk(target, ["wait", "--timeout", "60s"], { timeoutMs: 70_000 }))
  const answeredAt = performance.now()
  t.record("  (agent answered, since QEMU spawn)", answeredAt - vm.startedAt)
  if (firstContact) {
    // Answered as soon as the agent serves, not after a stall (it once took 15-40 s here).
    expect(readyAt, "CUVETTE READY on the console").toBeDefined()
    expect(answeredAt - readyAt!).toBeLessThan(5_000)
  }

  const info = await t.time("cuvette info --json", () => cliOk(target, ["--json", "info"]))
  const infoText = info.stdout.toString()
  expect(infoText).toContain(assets.kernelRelease)

  // stdin piped through `cat` comes back byte for byte (binary, not just text).
  const input = randomBytes(256 * 1024)
  const cat = await t.time("cuvette exec cat (256 KiB stdin)", () =>
    cliOk(target, ["exec", "--", "cat"], { stdin: input }),
  )
  expect(cat.stdout.length).toBe(input.length)
  expect(cat.stdout.equals(input)).toBe(true)

  // A terminal: the guest mounts no devpts, so the agent (root) mounts it first.
  const tty = await t.time("cuvette exec --tty (tty, stty size, exit 4)", () =>
    cli(target, ["exec", "--tty", "--", "sh", "-c", "tty; stty size; exit 4"], { stdin: new Uint8Array() }),
  )
  expect(tty.code, tty.stderr).toBe(4)
  expect(tty.stdout.toString()).toMatch(/^\/dev\/pts\/\d+\r\n24 80\r\n$/)

  const mixed = await t.time("cuvette exec (stdout, stderr, exit 7)", () =>
    cli(target, ["exec", "--", "sh", "-c", "echo out; echo err >&2; exit 7"]),
  )
  expect(mixed.stdout.toString()).toBe("out\n")
  expect(mixed.stderr).toContain("err\n")
  expect(mixed.code).toBe(7)

  const uname = await t.time("cuvette exec uname -r", () => cliOk(target, ["exec", "--", "uname", "-r"]))
  expect(uname.stdout.toString().trim()).toBe(assets.kernelRelease)

  const serialCopy = await copyBothWays(target, dir, "big", copyMiB, t)

  await forwardChecks(target, dir, t)

  const kmsg = await t.time("cuvette kmsg", () => cliOk(target, ["kmsg"]))
  expect(kmsg.stdout.toString()).toContain("Linux version")

  await moreChecks?.(serialCopy)

  await t.time("cuvette shutdown", () => cliOk(target, ["shutdown"]))
  const code = await t.time("QEMU exit after shutdown", () => vm.exited)
  expect(code).toBe(0)
  expect(vm.watchdogFired()).toBe(false)
  expect(Vm.isAlive(vm.pid)).toBe(false)
}

/** Reads everything a host TCP connection to `port` answers to `request`, until the far end closes. */
const fetchRaw = (port: number, request: string) =>
  new Promise<Buffer>((resolve, reject) => {
    const c = net.connect({ port, host: "127.0.0.1" })
    const parts: Array<Buffer> = []
    c.on("data", (d: Buffer) => parts.push(d))
    c.on("end", () => resolve(Buffer.concat(parts)))
    c.on("error", reject)
    c.write(request)
  })

/**
 * `cuvette forward` over the agent's serial port: busybox httpd on the guest's loopback (the guest has no
 * other network) serves a random file, fetched from the host through the forward with an HTTP/1.0
 * request and compared by sha256; a guest port nothing listens on resets its connection only; Ctrl-C
 * ends the forward with 130.
 */
const forwardChecks = async (target: string, dir: string, t: Timings): Promise<void> => {
  const mib = 4
  const file = path.join(dir, "page.bin")
  fs.writeFileSync(file, randomBytes(mib * 2 ** 20))
  await cliOk(target, ["exec", "--", "ip", "link", "set", "lo", "up"])
  await cliOk(target, ["mkdir", "-p", ":/tmp/www"])
  await cliOk(target, ["cp", file, ":/tmp/www/page.bin"], { timeoutMs: 120_000 })
  const httpd = await cliOk(target, [
    "exec",
    "--detach",
    "--",
    "busybox",
    "httpd",
    "-f",
    "-p",
    "127.0.0.1:8080",
    "-h",
    "/tmp/www",
  ])
  const pid = httpd.stdout.toString().trim()
  const child = spawn(process.execPath, [cliBin, "--target", target, "forward", "0:8080", "0:8081"], {
    stdio: ["ignore", "pipe", "pipe"],
  })
  let out = ""
  let err = ""
  child.stdout.on("data", (d: Buffer) => (out += d.toString()))
  child.stderr.on("data", (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)))
  try {
    await expect.poll(() => out.split("\n").length, { timeout: 30_000 }).toBe(3)
    const [page, closed] = out
      .trim()
      .split("\n")
      .map((l) => Number(/^127\.0\.0\.1:(\d+) /.exec(l)![1]))
    const raw = await t.time(`cuvette forward: fetch ${mib} MiB from busybox httpd (HTTP/1.0)`, () =>
      fetchRaw(page!, "GET /page.bin HTTP/1.0\r\nConnection: close\r\n\r\n"),
    )
    const body = raw.subarray(raw.indexOf("\r\n\r\n") + 4)
    expect(raw.subarray(0, 12).toString()).toMatch(/^HTTP\/1\.[01] 200/)
    expect(body.length).toBe(mib * 2 ** 20)
    expect(sha256(body)).toBe(sha256File(file))
    // Nothing listens on the guest's 8081: that connection is reset, the forward goes on.
    await expect(fetchRaw(closed!, "x")).rejects.toMatchObject({ code: "ECONNRESET" })
    await expect
      .poll(() => err, { timeout: 10_000 })
      .toContain("cannot connect to tcp:127.0.0.1:8081 in the guest")
    expect((await fetchRaw(page!, "GET /page.bin HTTP/1.0\r\n\r\n")).length).toBe(raw.length)
    child.kill("SIGINT")
    expect(await exited).toBe(130)
  } finally {
    child.kill("SIGKILL")
    await cliOk(target, ["exec", "--", "kill", pid])
    await cliOk(target, ["rm", "-r", ":/tmp/www"])
  }
}

describe.skipIf(env.skipReason !== undefined)("scenarios with the real agent", () => {
  const assets = env.assets!

  it("1. VTL0-style: cidata mounted by label, launcher started by the guest, driven through the CLI, also over AF_VSOCK in the guest", async () => {
    const t = timings("scenario 1 (vtl0)")
    const dir = tempDirForTest("cuvette-e2e-s1-")
    const { builtMs } = await buildAgent()
    t.record("build agent (cached by mtime)", builtMs)
    const relay = await t.time("build vsock relay (cached by mtime)", () => relayFiles())
    const disk = await t.time("cidata disk (Cidata.linux + Image.write)", () =>
      cidataDisk("linux", dir, relay),
    )
    const vm = await bootForTest({
      kernel: assets.vmlinux,
      initrd: assets.initrd,
      disk,
      mode: "vtl0",
      serialPorts: [Vm.Ports.agent, Vm.Ports.relay],
      watchdogMs: 240_000,
    })
    try {
      await vm.waitForConsole(/E2E AGENT_START/, 30_000)
      t.record("boot to AGENT_START", performance.now() - vm.startedAt)
      await agentChecks(vm, assets, dir, 64, t, true, (serialCopy) =>
        vsockInGuest(vm, dir, t, serialCopy, relay),
      )
      expect(vm.consoleText()).toMatch(/E2E CIDATA_MOUNTED dev=\/dev\/vda1? /)
    } finally {
      t.record("total since QEMU spawn", performance.now() - vm.startedAt)
      t.print()
    }
  })

  it("2. VTL2-style: 256 MiB, nothing running, agent deployed through ohcldiag-dev, driven through the CLI", async () => {
    const t = timings("scenario 2 (vtl2)")
    const dir = tempDirForTest("cuvette-e2e-s2-")
    const { builtMs } = await buildAgent()
    t.record("build agent (cached by mtime)", builtMs)
    const disk = await t.time("vtl2 disk (Cidata.vtl2 + Image.write)", () => cidataDisk("vtl2", dir))
    const vm = await bootForTest({
      kernel: assets.vmlinux,
      initrd: assets.initrd,
      disk,
      mode: "vtl2",
      memoryMiB: 256,
      serialPorts: [Vm.Ports.agent, Vm.Ports.diag],
      watchdogMs: 150_000,
    })
    try {
      await vm.waitForConsole(/E2E DIAG_READY/, 30_000)
      t.record("boot to DIAG_READY", performance.now() - vm.startedAt)
      // Nothing is mounted and no agent runs until the host deploys it.
      expect(vm.consoleText()).not.toMatch(/E2E (CIDATA_MOUNTED|AGENT_START)/)
      const agentTarget = `serial:${vm.sockets[Vm.Ports.agent]}`
      const diagVm = Diag.target(vm.sockets[Vm.Ports.diag]!)
      await t.time("cuvette deploy vtl2 (mount, start, wait)", () => deployVtl2(diagVm, agentTarget))
      const mounts = await cliOk(agentTarget, ["exec", "--", "cat", "/proc/mounts"])
      expect(mounts.stdout.toString()).toMatch(/ \/cidata vfat /)
      await agentChecks(vm, assets, dir, 16, t, false)
    } finally {
      t.record("total since QEMU spawn", performance.now() - vm.startedAt)
      t.print()
    }
  })
})

/**
 * Real AF_VSOCK bytes without a host vsock transport: the guest loads vsock_loopback, the agent listens
 * on vsock any:4919 as by default, and the relay (e2e/relay, Bun-compiled, Vsock.connect) joins the
 * virtio-serial port org.cuvette.relay.0 to CID 1 port 4919, one vsock connection per host client. The
 * ordinary CLI then runs through that port, each of its sessions carried over AF_VSOCK.
 */
const vsockInGuest = async (
  vm: Vm.Vm,
  dir: string,
  t: Timings,
  serialCopy: CopyRates,
  relayDisk: ReadonlyArray<{ path: string }>,
): Promise<void> => {
  const MiB = 64
  expect(vm.consoleText()).toMatch(/serving on [^\n]*vsock:any:4919/)
  const agent = `serial:${vm.sockets[Vm.Ports.agent]}`
  // Today's Bun route to vsock needs no addon; one that does finds it, with every library it links, on the disk.
  const addonCheck = relayAddonCheck(relayDisk)
  if (addonCheck === undefined) console.log("[e2e vsock] no built linux-x64 addon on this host: not shipped")
  else {
    const libs = (await cliOk(agent, ["exec", "--", "sh", "-c", addonCheck])).stdout.toString()
    expect(libs).toMatch(/libstdc\+\+\.so\.6 => \/cidata\/relay\/lib\//)
    expect(libs).not.toMatch(/not found/)
  }
  await t.time("start the vsock relay (exec --detach)", () =>
    cliOk(agent, ["exec", "--detach", "--", "sh", "-c", relayCommand(`/dev/virtio-ports/${Vm.Ports.relay}`)]),
  )
  await vm.waitForConsole(/VSOCK-RELAY READY/, 30_000)
  const relay = `serial:${vm.sockets[Vm.Ports.relay]}`

  const mixed = await t.time("cuvette exec (stdout, stderr, exit 7) (vsock relay)", () =>
    cli(relay, ["exec", "--", "sh", "-c", "echo out; echo err >&2; exit 7"]),
  )
  expect(mixed.stdout.toString(), mixed.stderr).toBe("out\n")
  expect(mixed.stderr).toContain("err\n")
  expect(mixed.code).toBe(7)
  const input = randomBytes(256 * 1024)
  const cat = await t.time("cuvette exec cat (256 KiB stdin) (vsock relay)", () =>
    cliOk(relay, ["exec", "--", "cat"], { stdin: input }),
  )
  expect(cat.stdout.equals(input)).toBe(true)

  const vsock = await copyBothWays(relay, dir, "vsock", MiB, t, " (vsock relay)")
  // The relay logs what each vsock connection carried: the copies went over AF_VSOCK, not around it.
  const carried = async (direction: "host->vsock" | "vsock->host") => {
    const m = await vm.waitForConsole(
      new RegExp(`vsock-relay: session \\d+ closed \\([^)]*\\): [^\\n]*${direction} (\\d{8,}) bytes`),
      10_000,
    )
    return Number(m[1])
  }
  expect(await carried("host->vsock")).toBeGreaterThan(MiB * 2 ** 20)
  expect(await carried("vsock->host")).toBeGreaterThan(MiB * 2 ** 20)

  console.log(
    vm
      .consoleText()
      .match(/^vsock-relay: .*$/gm)
      ?.join("\n"),
  )
  const f = (x: number) => x.toFixed(1)
  console.log(
    `[e2e vsock] ${MiB} MiB cp, MiB/s (cp --json durationMs): ` +
      `agent serial port up ${f(serialCopy.upMiBs)} down ${f(serialCopy.downMiBs)}; ` +
      `vsock via relay up ${f(vsock.upMiBs)} down ${f(vsock.downMiBs)}; ` +
      `vsock/serial up ${(vsock.upMiBs / serialCopy.upMiBs).toFixed(2)} down ${(vsock.downMiBs / serialCopy.downMiBs).toFixed(2)}`,
  )
}

/**
 * `cuvette -H serial:<agent socket> deploy vtl2 --vm vsock:<diag socket> --ohcldiag e2e/bin/ohcldiag-dev`:
 * `-t` tells it where the agent will answer (the VM's agent port, not OpenVMM's `<vsock path>_4919`).
 */
const deployVtl2 = async (diagVm: string, agentTarget: string): Promise<void> => {
  await cliOk(agentTarget, ["deploy", "vtl2", "--vm", diagVm, "--ohcldiag", Diag.binPath], {
    timeoutMs: 90_000,
  })
}
