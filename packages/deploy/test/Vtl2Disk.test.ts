// Vtl2Disk: the generated PowerShell, the decisions, and the sequence of scripts against a stand-in
// powershell.exe (fixtures/powershell.mjs) that records each script and plays it on a pretend VM.
import * as fs from "node:fs"
import * as path from "node:path"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import * as Vtl2Disk from "../src/Vtl2Disk.js"
import { tempDir } from "./fixtures/tools.js"

const fakePowershell = path.resolve(import.meta.dirname, "fixtures/powershell.mjs")
const VM_ID = "6f2d3c1e-1111-2222-3333-444455556666"
const DISK = "C:\\vms\\cidata.vhd"
const VTL0 = {
  id: `Microsoft:${VM_ID}\\boot`,
  targetVtl: 0,
  drives: [{ lun: 0, disk: "C:\\vms\\os.vhdx", empty: false }],
}

let t: ReturnType<typeof tempDir>
beforeEach(() => {
  t = tempDir("cuvette-vtl2disk-")
  process.env.FAKE_PS_LOG = path.join(t.dir, "ps.log")
  process.env.FAKE_HYPERV = path.join(t.dir, "vm.json")
  delete process.env.FAKE_PS_FAIL
  delete process.env.FAKE_PS_HANG
})
afterEach(() => t.cleanup())

const setVm = (vm: Partial<Vtl2Disk.VmState> = {}) =>
  fs.writeFileSync(
    process.env.FAKE_HYPERV!,
    JSON.stringify({ id: VM_ID, name: "fleet vm", state: "Off", controllers: [VTL0], ...vm }),
  )
const vmNow = (): Vtl2Disk.VmState => JSON.parse(fs.readFileSync(process.env.FAKE_HYPERV!, "utf8"))
const steps = (): Array<string> =>
  fs.existsSync(process.env.FAKE_PS_LOG!)
    ? fs
        .readFileSync(process.env.FAKE_PS_LOG!, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l).step)
    : []
const ensure = (extra: Partial<Vtl2Disk.Options> = {}) =>
  Vtl2Disk.ensure({
    vm: { name: "fleet vm" },
    disk: DISK,
    powershell: fakePowershell,
    timeoutMs: 20_000,
    ...extra,
  })
const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("resolved")
    },
    (e: Vtl2Disk.Vtl2DiskError) => e,
  )

describe("the generated PowerShell", () => {
  it("quotes names and paths as PowerShell literals, so a quote in them is text, not code", () => {
    expect(Vtl2Disk.psQuote("o'brien")).toBe("'o''brien'")
    expect(Vtl2Disk.psQuote("it’s ‘x’")).toBe("'it’’s ‘‘x’’'") // PowerShell reads these as quotes too
    const evil = "vm'; Remove-Item -Recurse C:\\; '"
    const script = Vtl2Disk.attachScript({ name: evil }, "C:\\vms\\o'brien $(x).vhd", 3)
    expect(script).toContain("$name = 'vm''; Remove-Item -Recurse C:\\; '''\n")
    expect(script).toContain("$diskPath = 'C:\\vms\\o''brien $(x).vhd'\n")
    expect(script).toContain("$lun = 3\n")
    // the name and the path appear once each, inside their literal
    expect(script.split("Remove-Item")).toHaveLength(2)
    expect(script.split("brien")).toHaveLength(2)
  })

  it("finds the VM by exact name, or by id, and reads its SCSI storage through WMI", () => {
    const byName = Vtl2Disk.queryScript({ name: "[fleet]*" })
    expect(byName).toContain("$vms = @(Get-VM | Where-Object Name -eq $name)")
    const code = byName.split("\n").filter((l) => !l.startsWith("#"))
    expect(code.join("\n")).not.toContain("Get-VM -Name") // which reads [ ] * as wildcards
    expect(byName).toContain("name one by id, hyperv-id:GUID")
    const byId = Vtl2Disk.queryScript({ id: VM_ID })
    expect(byId).toContain(`$vm = Get-VM -Id '${VM_ID}'`)
    expect(byId).not.toContain("$name")
    for (const s of [byName, byId]) {
      expect(s.split("\n")[0]).toBe("# cuvette deploy vtl2: query")
      expect(s).toContain("Msvm_SettingsDefineState")
      expect(s).toContain("Where-Object ResourceSubType -eq 'Microsoft:Hyper-V:Synthetic SCSI Controller'")
      expect(s).toContain("targetVtl = $c.TargetVtl")
      expect(s).toContain("ConvertTo-Json -InputObject $out -Compress -Depth 6")
    }
  })

  it("adds the controller, the drive and the disk with AddResourceSettings, as OpenVMM's petri does", () => {
    const add = Vtl2Disk.addControllerScript({ name: "vm" })
    expect(add).toContain("Get-CimInstance -Namespace $ns -ClassName Msvm_VirtualSystemManagementService")
    expect(add).toContain(
      "$c = Add-Setting (New-Setting (Get-Default 'Microsoft:Hyper-V:Synthetic SCSI Controller') @{ TargetVtl = 2 })",
    )
    expect(add).toContain(
      "Invoke-CimMethod -MethodName AddResourceSettings -Arguments @{ AffectedConfiguration = $vssd",
    )
    expect(add).toContain("New-CimInstance -ClientOnly")
    expect(add).toContain("if ($r.ReturnValue -eq 4096)")
    const attach = Vtl2Disk.attachScript({ name: "vm" }, DISK)
    expect(attach).toContain("$lun = -1\n")
    expect(attach).toContain("foreach ($c in @($controllers | Where-Object TargetVtl -eq 2))")
    expect(attach).toContain(
      "Get-Default 'Microsoft:Hyper-V:Synthetic Disk Drive') @{ Parent = (Get-WmiPath $at.c); AddressOnParent = [string]$at.lun }",
    )
    expect(attach).toContain(
      "Get-Default 'Microsoft:Hyper-V:Virtual Hard Disk') @{ Parent = (Get-WmiPath $at.drive); HostResource = @($diskPath) }",
    )
  })

  it("runs each script as powershell.exe -EncodedCommand (base64 of UTF-16LE)", () => {
    const c = Vtl2Disk.command("start-vm", Vtl2Disk.startVmScript({ name: "vm" }))
    expect(c.argv.slice(0, 6)).toEqual([
      "powershell.exe",
      "-NoProfile",
      "-NonInteractive",
      "-ExecutionPolicy",
      "Bypass",
      "-EncodedCommand",
    ])
    expect(Buffer.from(c.argv[6]!, "base64").toString("utf16le")).toBe(c.script)
    expect(c.script).toContain("Start-VM -VM $vm")
  })
})

describe("plan", () => {
  const vm = (extra: Partial<Vtl2Disk.VmState>): Vtl2Disk.VmState => ({
    id: VM_ID,
    name: "v",
    state: "Off",
    controllers: [VTL0],
    ...extra,
  })
  const vtl2 = (drives: Vtl2Disk.VmState["controllers"][number]["drives"]) => ({
    id: "c2",
    targetVtl: 2,
    drives,
  })

  it("already on a VTL2 controller: nothing to do, whatever the VM's state (paths compare as Windows does)", () => {
    const state = vm({
      state: "Running",
      controllers: [VTL0, vtl2([{ lun: 5, disk: "c:/VMS/CIDATA.vhd", empty: false }])],
    })
    expect(Vtl2Disk.plan(state, DISK)).toEqual({ kind: "attached", controller: 1, lun: 5 })
  })

  it("adds a controller only when no VTL2 controller has room", () => {
    expect(Vtl2Disk.plan(vm({}), DISK)).toEqual({ kind: "attach", addController: true })
    expect(Vtl2Disk.plan(vm({ controllers: [VTL0, vtl2([])] }), DISK)).toEqual({
      kind: "attach",
      addController: false,
    })
    const full = vtl2(
      Array.from({ length: 64 }, (_, lun) => ({ lun, disk: `C:\\d${lun}.vhd`, empty: false })),
    )
    expect(Vtl2Disk.plan(vm({ controllers: [full] }), DISK)).toEqual({ kind: "attach", addController: true })
    const emptyDrive = vtl2([...full.drives.slice(1), { lun: 0, disk: null, empty: true }])
    expect(Vtl2Disk.plan(vm({ controllers: [emptyDrive] }), DISK, 0)).toEqual({
      kind: "attach",
      addController: false,
    })
  })

  it.each([
    [
      "the VM runs and a controller is needed",
      vm({ state: "Running" }),
      undefined,
      "add-controller",
      `the VM "v" is Running, and adding a SCSI controller for VTL2 needs it off: Stop-VM -Name 'v', then run this again`,
    ],
    [
      "the VM is saved and the disk must be added",
      vm({ state: "Saved", controllers: [vtl2([])] }),
      undefined,
      "attach",
      `the VM "v" is Saved, and adding the disk to the VTL2 controller needs it off`,
    ],
    [
      "the disk is on a controller VTL0 sees",
      vm({
        state: "Running",
        controllers: [VTL0, { ...VTL0, id: "c1", drives: [{ lun: 2, disk: DISK, empty: false }] }],
      }),
      undefined,
      "attach",
      `${DISK} is already on SCSI controller 1 at LUN 2, which VTL0 sees (TargetVtl 0); detach it first: ` +
        "Remove-VMHardDiskDrive -VMName 'v' -ControllerType SCSI -ControllerNumber 1 -ControllerLocation 2",
    ],
    [
      "the LUN asked for is taken",
      vm({ controllers: [vtl2([{ lun: 1, disk: "C:\\other.vhd", empty: false }])] }),
      1,
      "attach",
      "LUN 1 is taken on the VM's VTL2 controller: pick another --lun",
    ],
    [
      "four controllers, none for VTL2",
      vm({ controllers: [VTL0, VTL0, VTL0, VTL0] }),
      undefined,
      "add-controller",
      "has 4 SCSI controllers already (Hyper-V's limit)",
    ],
  ])("refuses when %s, saying what to do", (_, state, lun, step, words) => {
    let error: unknown
    try {
      Vtl2Disk.plan(state, DISK, lun)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(Vtl2Disk.Vtl2DiskError)
    expect(error).toMatchObject({ step })
    expect((error as Error).message).toContain(words)
  })
})

describe("Vtl2Disk.ensure against a stand-in powershell.exe", () => {
  it("VM off without a VTL2 controller: query, add controller, attach, read back, start the VM", async () => {
    setVm()
    const seen: Array<string> = []
    const r = await ensure({ onStep: (s) => seen.push(s) })
    expect(steps()).toEqual(["query", "add-controller", "attach", "query", "start-vm"])
    expect(seen).toEqual(steps())
    expect(r).toMatchObject({
      plan: { kind: "attach", addController: true },
      controller: 1,
      lun: 0,
      started: true,
    })
    expect(r.commands.map((c) => c.step)).toEqual(steps())
    expect(vmNow().state).toBe("Running")
    expect(vmNow().controllers[1]).toEqual({
      id: `Microsoft:${VM_ID}\\ctl1`,
      targetVtl: 2,
      drives: [{ lun: 0, disk: DISK, empty: false }],
    })
  })

  it("is idempotent: run again on the running VM, it only queries and says the disk is there", async () => {
    setVm()
    await ensure()
    fs.rmSync(process.env.FAKE_PS_LOG!)
    const r = await ensure()
    expect(steps()).toEqual(["query"])
    expect(r).toMatchObject({ plan: { kind: "attached", controller: 1, lun: 0 }, started: false })
  })

  it("uses an existing VTL2 controller at the LUN asked for, by VM id", async () => {
    setVm({
      controllers: [VTL0, { id: "c2", targetVtl: 2, drives: [{ lun: 0, disk: "C:\\x.vhd", empty: false }] }],
    })
    const r = await ensure({ vm: { id: VM_ID }, lun: 7 })
    expect(steps()).toEqual(["query", "attach", "query", "start-vm"])
    expect(r).toMatchObject({ controller: 1, lun: 7 })
  })

  it("a running VM that needs a change: refuses after the query, changes nothing", async () => {
    setVm({ state: "Running" })
    const e = await failure(ensure())
    expect(e).toMatchObject({ _tag: "Vtl2DiskError", step: "add-controller" })
    expect(e.message).toContain(
      "is Running, and adding a SCSI controller for VTL2 needs it off: Stop-VM -Name 'fleet vm'",
    )
    expect(steps()).toEqual(["query"])
    expect(vmNow().controllers).toEqual([VTL0])
  })

  it("a failing script: the step, the script's first line and a hint; nothing after it runs", async () => {
    setVm()
    process.env.FAKE_PS_FAIL = "attach"
    const e = await failure(ensure())
    expect(e).toMatchObject({ step: "attach" })
    expect(e.message).toContain(
      'VTL2 disk step "attach" failed: The operation failed (fake attach failure). (run as a Hyper-V administrator',
    )
    expect(steps()).toEqual(["query", "add-controller", "attach"])
    const ghost = await failure(ensure({ vm: { name: "ghost" } }))
    expect(ghost.message).toContain(`step "query" failed: no VM is named 'ghost' (Get-VM)`)
  })

  it("a script that does not answer in time is killed and reported", async () => {
    setVm()
    process.env.FAKE_PS_HANG = "query"
    const t0 = Date.now()
    const e = await failure(ensure({ timeoutMs: 1500 }))
    expect(e.message).toBe('VTL2 disk step "query" failed: no answer within 1500 ms')
    expect(Date.now() - t0).toBeLessThan(15_000)
  })

  it("no powershell.exe (not Windows): says --disk needs it", async () => {
    setVm()
    const e = await failure(ensure({ powershell: path.join(t.dir, "no-powershell.exe") }))
    expect(e.message).toMatch(
      /step "query" failed: cannot run .*no-powershell.exe: no such file \(ENOENT\); --disk needs Windows PowerShell/,
    )
  })

  it.skipIf(process.platform !== "win32" || process.env.CUVETTE_TEST_HYPERV_VM === undefined)(
    "attaches a real disk to a real VM's VTL2 controller (needs a Windows Hyper-V host and CUVETTE_TEST_HYPERV_VM, CUVETTE_TEST_HYPERV_DISK: not available here)",
    async () => {
      const options = {
        vm: { name: process.env.CUVETTE_TEST_HYPERV_VM! },
        disk: process.env.CUVETTE_TEST_HYPERV_DISK!,
      }
      const first = await Vtl2Disk.ensure(options)
      const again = await Vtl2Disk.ensure(options)
      expect(again.plan).toEqual({ kind: "attached", controller: first.controller, lun: first.lun })
    },
  )
})
