/**
 * Puts a disk where only VTL2 (OpenHCL) sees it: on a Hyper-V VM's synthetic SCSI controller whose
 * `TargetVtl` is 2, adding such a controller when the VM has none. Hyper-V's cmdlets cannot set
 * `TargetVtl`, so this goes through WMI (root\virtualization\v2) as OpenVMM's test framework does:
 * `Msvm_VirtualSystemManagementService.AddResourceSettings` with settings cloned from the host's defaults,
 * first the controller (`TargetVtl = 2`), then a disk drive at a LUN (`Parent` = the controller), then the
 * virtual hard disk in it (`HostResource` = the file, `Parent` = the drive).
 *
 * Each step is one Windows PowerShell script, built here from its parameters (names and paths as quoted
 * PowerShell literals, never spliced into code), run as `powershell.exe -EncodedCommand`, and answering one
 * JSON line. The decisions (is it attached already, may the VM be changed now) are made here from the
 * query's answer, so they are tested without Windows.
 */
import { Data } from "effect"
import { spawn } from "node:child_process"
import * as path from "node:path"
import { errorText } from "./internal/errorText.js"

/** The steps, in order; the last three run only when needed. */
export type Step = "query" | "add-controller" | "attach" | "start-vm"

/** A Hyper-V VM by name (exactly that name, even a GUID-shaped one) or by id. */
export type Vm = { readonly name: string } | { readonly id: string }

/** What the query step reports about the VM's SCSI storage. */
export interface VmState {
  readonly id: string
  readonly name: string
  /** Hyper-V's state: Off, Running, Saved, Paused, ... */
  readonly state: string
  readonly controllers: ReadonlyArray<{
    /** The controller's WMI InstanceID. */
    readonly id: string
    /** null on a host whose WMI has no TargetVtl setting. */
    readonly targetVtl: number | null
    /** Every drive on it; `empty`: a disk drive with no disk in it (the disk can go there). */
    readonly drives: ReadonlyArray<{
      readonly lun: number
      readonly disk: string | null
      readonly empty: boolean
    }>
  }>
}

/** What to do about the disk, decided from the VM's state. */
export type Plan =
  | { readonly kind: "attached"; readonly controller: number; readonly lun: number }
  | { readonly kind: "attach"; readonly addController: boolean }

/** One powershell.exe invocation. */
export interface Command {
  readonly step: Step
  /** The script, as it runs (argv carries it encoded). */
  readonly script: string
  readonly argv: ReadonlyArray<string>
}

/** Runs argv[0] with the rest as arguments; stubbed in tests. */
export type Runner = (
  argv: ReadonlyArray<string>,
  timeoutMs: number,
) => Promise<{ readonly code: number | null; readonly stdout: string; readonly stderr: string }>

export interface Options {
  /** The VM: by name (exactly, even a GUID-shaped one) or by id. */
  readonly vm: Vm
  /** The host path of the disk image (a .vhd from `cuvette deploy image`). */
  readonly disk: string
  /** The LUN on the controller (0..63); default: the lowest free one. */
  readonly lun?: number
  /** Path of Windows PowerShell; default `powershell.exe` on PATH. */
  readonly powershell?: string
  readonly runner?: Runner
  /** Longest one script may take; default 300 s. */
  readonly timeoutMs?: number
  /** Told when a step starts. */
  readonly onStep?: (step: Step, detail: string) => void
}

/** What was done. */
export interface Result {
  readonly vm: VmState
  readonly plan: Plan
  /** The scripts that ran, in order. */
  readonly commands: ReadonlyArray<Command>
  /** Where the disk is now (controller index among the VM's SCSI controllers, LUN). */
  readonly controller: number
  readonly lun: number
  /** The VM was off (or saved) and was started. */
  readonly started: boolean
}

/** A step failed or was refused: which one, why, and the script's own words. */
export class Vtl2DiskError extends Data.TaggedError("Vtl2DiskError")<{
  readonly step: Step
  readonly detail: string
  readonly output?: string
  readonly cause?: unknown
}> {
  override get message(): string {
    const out = this.output?.trim() ? `\n  output: ${this.output.trim().slice(-2000)}` : ""
    return `VTL2 disk step "${this.step}" failed: ${this.detail}${out}`
  }
}

export const SCSI_CONTROLLER = "Microsoft:Hyper-V:Synthetic SCSI Controller"
export const DISK_DRIVE = "Microsoft:Hyper-V:Synthetic Disk Drive"
export const HARD_DISK = "Microsoft:Hyper-V:Virtual Hard Disk"
/** Hyper-V allows 4 SCSI controllers with 64 LUNs each. */
const MAX_CONTROLLERS = 4
const LUNS = 64

/** A PowerShell single-quoted literal: each quote character PowerShell reads as one (' ‘ ’ ‚ ‛) is doubled. */
export const psQuote = (s: string): string => `'${s.replace(/['\u2018\u2019\u201a\u201b]/g, "$&$&")}'`

const describeVm = (vm: Vm): string => ("id" in vm ? `hyperv-id:${vm.id}` : JSON.stringify(vm.name))

/** The lines every script starts with: errors stop it and print one line; `$vm` and `$vssd` are the VM. */
const preamble = (step: Step, vm: Vm): string =>
  [
    `# cuvette deploy vtl2: ${step}`,
    "$ErrorActionPreference = 'Stop'",
    "$ProgressPreference = 'SilentlyContinue'",
    "try { [Console]::OutputEncoding = [Text.Encoding]::UTF8 } catch { } # non-ASCII names arrive intact",
    "trap { [Console]::Error.WriteLine($_.Exception.Message); exit 1 }",
    "$ns = 'root\\virtualization\\v2'",
    ...("id" in vm
      ? [`$vm = Get-VM -Id ${psQuote(vm.id)}`]
      : [
          `$name = ${psQuote(vm.name)}`,
          "# the exact name: Get-VM -Name would read [ ] * ? as wildcards",
          "$vms = @(Get-VM | Where-Object Name -eq $name)",
          "if ($vms.Count -eq 0) { throw ('no VM is named ''{0}'' (Get-VM)' -f $name) }",
          "if ($vms.Count -gt 1) { throw ('{0} VMs are named ''{1}'': name one by id, hyperv-id:GUID' -f $vms.Count, $name) }",
          "$vm = $vms[0]",
        ]),
    "$vssd = Get-CimInstance -Namespace $ns -ClassName Msvm_ComputerSystem -Filter \"Name='$($vm.Id)'\" |",
    "  Get-CimAssociatedInstance -ResultClassName Msvm_VirtualSystemSettingData -Association Msvm_SettingsDefineState",
    "$rasd = @($vssd | Get-CimAssociatedInstance -ResultClassName Msvm_ResourceAllocationSettingData)",
    "$sasd = @($vssd | Get-CimAssociatedInstance -ResultClassName Msvm_StorageAllocationSettingData)",
    '# a Parent property is a WMI path: ...InstanceID="Microsoft:...\\\\..."; compare the InstanceIDs',
    "function Get-ParentId([string] $path) { if ($path -match 'InstanceID=\"(.*)\"') { $Matches[1].Replace('\\\\', '\\') } }",
    `$controllers = @($rasd | Where-Object ResourceSubType -eq ${psQuote(SCSI_CONTROLLER)})`,
    "# what sits on a controller (disk and DVD drives), and the disk in a drive",
    "function Get-ControllerDrives($c) { @($rasd | Where-Object { (Get-ParentId $_.Parent) -eq $c.InstanceID }) }",
    "function Get-DriveDisk($d) { @($sasd | Where-Object { (Get-ParentId $_.Parent) -eq $d.InstanceID })[0] }",
    `function Test-EmptyDiskDrive($d) { $d.ResourceSubType -eq ${psQuote(DISK_DRIVE)} -and -not (Get-DriveDisk $d) }`,
  ].join("\n")

/** Helpers of the scripts that change the VM: default settings, client-side copies, AddResourceSettings. */
const changeHelpers = [
  "$vmms = Get-CimInstance -Namespace $ns -ClassName Msvm_VirtualSystemManagementService",
  "# the host's default settings of a resource type",
  "function Get-Default([string] $type) {",
  "  Get-CimInstance -Namespace $ns -ClassName Msvm_AllocationCapabilities | Where-Object ResourceSubType -eq $type |",
  "    Get-CimAssociatedInstance -ResultClassName CIM_ResourceAllocationSettingData -Association Msvm_SettingsDefineCapabilities |",
  "    Where-Object { $_.InstanceID.EndsWith('Default') }",
  "}",
  "# CIM will not write read-only properties of an instance: make a client-side copy with the changes",
  "function New-Setting($template, [hashtable] $set) {",
  "  $class = Get-CimClass -Namespace $ns -ClassName $template.CimSystemProperties.ClassName",
  "  foreach ($k in $set.Keys) { if (-not $class.CimClassProperties[$k]) { throw ('this Hyper-V has no {0} setting on {1}: VTL2 storage needs a host with OpenHCL support' -f $k, $class.CimClassName) } }",
  "  $p = @{}",
  "  foreach ($c in $class.CimClassProperties) { $p[$c.Name] = if ($set.ContainsKey($c.Name)) { $set[$c.Name] } else { $template.($c.Name) } }",
  "  $class | New-CimInstance -ClientOnly -Property $p",
  "}",
  "function Get-WmiPath($i) {",
  "  '\\\\{0}\\{1}:{2}.InstanceID=\"{3}\"' -f $i.CimSystemProperties.ServerName.ToUpper(), $i.CimSystemProperties.Namespace.Replace('/', '\\'), $i.CimSystemProperties.ClassName, $i.InstanceID.Replace('\\', '\\\\')",
  "}",
  "# AddResourceSettings, waiting for its job (4096) to finish; returns the new setting",
  "function Add-Setting($setting) {",
  "  $serializer = [Microsoft.Management.Infrastructure.Serialization.CimSerializer]::Create()",
  "  $text = [Text.Encoding]::Unicode.GetString($serializer.Serialize($setting, [Microsoft.Management.Infrastructure.Serialization.InstanceSerializationOptions]::None))",
  "  $r = $vmms | Invoke-CimMethod -MethodName AddResourceSettings -Arguments @{ AffectedConfiguration = $vssd; ResourceSettings = @($text) }",
  "  if ($r.ReturnValue -eq 4096) {",
  "    $job = $r.Job | Get-CimInstance",
  "    for ($i = 0; $job.JobState -in 2, 3, 4; $i++) {",
  "      if ($i -ge 120) { throw 'AddResourceSettings did not finish within 120 s' }",
  "      Start-Sleep -Seconds 1; $job = $job | Get-CimInstance",
  "    }",
  "    if ($job.JobState -ne 7) { throw ('AddResourceSettings failed: {0} (error {1})' -f $job.ErrorDescription, $job.ErrorCode) }",
  "  } elseif ($r.ReturnValue -ne 0) { throw ('AddResourceSettings returned {0}' -f $r.ReturnValue) }",
  "  $r.ResultingResourceSettings[0]",
  "}",
].join("\n")

/** Reads the VM's state and its SCSI controllers, drives and disks. */
export const queryScript = (vm: Vm): string =>
  [
    preamble("query", vm),
    "$out = [ordered]@{",
    "  id = $vm.Id.ToString(); name = $vm.Name; state = $vm.State.ToString()",
    "  controllers = @(foreach ($c in $controllers) {",
    "    [ordered]@{ id = $c.InstanceID; targetVtl = $c.TargetVtl; drives = @(foreach ($d in (Get-ControllerDrives $c)) {",
    "      $disk = Get-DriveDisk $d",
    "      [ordered]@{ lun = [int]$d.AddressOnParent; disk = $(if ($disk) { $disk.HostResource[0] } else { $null }); empty = (Test-EmptyDiskDrive $d) }",
    "    }) }",
    "  })",
    "}",
    "ConvertTo-Json -InputObject $out -Compress -Depth 6",
  ].join("\n")

/** Adds a synthetic SCSI controller with TargetVtl = 2 (the VM must be off). */
export const addControllerScript = (vm: Vm): string =>
  [
    preamble("add-controller", vm),
    changeHelpers,
    `$c = Add-Setting (New-Setting (Get-Default ${psQuote(SCSI_CONTROLLER)}) @{ TargetVtl = 2 })`,
    "ConvertTo-Json -InputObject ([ordered]@{ controller = $c.InstanceID }) -Compress",
  ].join("\n")

/**
 * Puts the disk on the first VTL2 controller with room: in an empty drive at the LUN (any LUN without
 * `lun`), else in a new drive at the LUN (the lowest free one without `lun`).
 */
export const attachScript = (vm: Vm, disk: string, lun?: number): string =>
  [
    preamble("attach", vm),
    changeHelpers,
    `$diskPath = ${psQuote(disk)}`,
    `$lun = ${lun ?? -1}`,
    "$at = $null",
    "foreach ($c in @($controllers | Where-Object TargetVtl -eq 2)) {",
    "  $drives = Get-ControllerDrives $c",
    "  $empty = @($drives | Where-Object { (Test-EmptyDiskDrive $_) -and ($lun -lt 0 -or [int]$_.AddressOnParent -eq $lun) })",
    "  if ($empty.Count -gt 0) { $at = @{ c = $c; drive = $empty[0]; lun = [int]$empty[0].AddressOnParent }; break }",
    "  $used = @($drives | ForEach-Object { [int]$_.AddressOnParent })",
    `  $free = @(0..${LUNS - 1} | Where-Object { $used -notcontains $_ -and ($lun -lt 0 -or $_ -eq $lun) })`,
    "  if ($free.Count -gt 0) { $at = @{ c = $c; drive = $null; lun = $free[0] }; break }",
    "}",
    "if (-not $at) { throw 'no SCSI controller with TargetVtl 2 has room for the disk' }",
    "if (-not $at.drive) {",
    `  $at.drive = Add-Setting (New-Setting (Get-Default ${psQuote(DISK_DRIVE)}) @{ Parent = (Get-WmiPath $at.c); AddressOnParent = [string]$at.lun })`,
    "}",
    `$null = Add-Setting (New-Setting (Get-Default ${psQuote(HARD_DISK)}) @{ Parent = (Get-WmiPath $at.drive); HostResource = @($diskPath) })`,
    "ConvertTo-Json -InputObject ([ordered]@{ controller = $at.c.InstanceID; lun = $at.lun }) -Compress",
  ].join("\n")

/** Starts the VM (off or saved). */
export const startVmScript = (vm: Vm): string =>
  [
    preamble("start-vm", vm),
    "Start-VM -VM $vm",
    "ConvertTo-Json -InputObject ([ordered]@{ state = (Get-VM -Id $vm.Id).State.ToString() }) -Compress",
  ].join("\n")

/** The powershell.exe command line that runs a script: -EncodedCommand is base64 of its UTF-16LE text. */
export const command = (step: Step, script: string, powershell = "powershell.exe"): Command => ({
  step,
  script,
  argv: [
    powershell,
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-EncodedCommand",
    Buffer.from(script, "utf16le").toString("base64"),
  ],
})

/** Every script `ensure` may run, in order: what --dry-run shows (the last three only run when needed). */
export const commands = (options: Options): ReadonlyArray<Command> => {
  const vm = options.vm
  return [
    command("query", queryScript(vm), options.powershell),
    command("add-controller", addControllerScript(vm), options.powershell),
    command("attach", attachScript(vm, hostPath(options.disk), options.lun), options.powershell),
    command("start-vm", startVmScript(vm), options.powershell),
  ]
}

/** The disk's absolute path: Hyper-V's service would read a relative one from its own directory. */
export const hostPath = (p: string): string => (path.win32.isAbsolute(p) ? p : path.resolve(p))

const samePath = (a: string, b: string): boolean =>
  a.replace(/\//g, "\\").toLowerCase() === b.replace(/\//g, "\\").toLowerCase()

/** Does this controller have room for the disk (an empty drive or a free LUN, `lun` if given)? */
const hasRoom = (c: VmState["controllers"][number], lun: number | undefined): boolean => {
  const fits = (n: number) => lun === undefined || n === lun
  if (c.drives.some((d) => d.empty && fits(d.lun))) return true
  const used = new Set(c.drives.map((d) => d.lun))
  return Array.from({ length: LUNS }, (_, n) => n).some((n) => !used.has(n) && fits(n))
}

/** Decides what to do; refuses (Vtl2DiskError) what cannot be done now, saying what to do instead. */
export const plan = (vm: VmState, disk: string, lun?: number): Plan => {
  const refuse = (detail: string, step: Step = "attach"): never => {
    throw new Vtl2DiskError({ step, detail })
  }
  for (const [i, c] of vm.controllers.entries()) {
    const d = c.drives.find((x) => x.disk !== null && samePath(x.disk, disk))
    if (d === undefined) continue
    if (c.targetVtl === 2) return { kind: "attached", controller: i, lun: d.lun }
    refuse(
      `${disk} is already on SCSI controller ${i} at LUN ${d.lun}, which VTL0 sees (TargetVtl ${c.targetVtl ?? 0}); ` +
        `detach it first: Remove-VMHardDiskDrive -VMName ${psQuote(vm.name)} -ControllerType SCSI -ControllerNumber ${i} -ControllerLocation ${d.lun}`,
    )
  }
  const vtl2 = vm.controllers.filter((c) => c.targetVtl === 2)
  const addController = !vtl2.some((c) => hasRoom(c, lun))
  if (addController && lun !== undefined && vtl2.length > 0)
    refuse(
      `LUN ${lun} is taken on the VM's VTL2 controller: pick another --lun, or leave it out for the first free one`,
    )
  const change = addController
    ? "adding a SCSI controller for VTL2"
    : "adding the disk to the VTL2 controller"
  const step: Step = addController ? "add-controller" : "attach"
  if (vm.state !== "Off")
    refuse(
      `the VM ${JSON.stringify(vm.name)} is ${vm.state}, and ${change} needs it off: Stop-VM -Name ${psQuote(vm.name)}, then run this again`,
      step,
    )
  if (addController && vm.controllers.length >= MAX_CONTROLLERS)
    refuse(
      `the VM ${JSON.stringify(vm.name)} has ${MAX_CONTROLLERS} SCSI controllers already (Hyper-V's limit), none of them for VTL2 with room: remove one`,
      step,
    )
  return { kind: "attach", addController }
}

/** The real runner: no shell; stdout and stderr apart; killed after the timeout (code null). */
const spawnRunner: Runner = (argv, timeoutMs) =>
  new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], windowsHide: true })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString("utf8")))
    child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString("utf8")).slice(-64 * 1024)))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.once("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.once("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

/** Runs one script and parses its JSON line; failures name the step and carry the script's words. */
const runScript = async <A>(c: Command, runner: Runner, timeoutMs: number): Promise<A> => {
  let r: Awaited<ReturnType<Runner>>
  try {
    r = await runner(c.argv, timeoutMs)
  } catch (cause) {
    throw new Vtl2DiskError({
      step: c.step,
      detail: `cannot run ${c.argv[0]}: ${(cause as { code?: unknown }).code === "ENOENT" ? "no such file (ENOENT); --disk needs Windows PowerShell on a Hyper-V host" : errorText(cause)}`,
      cause,
    })
  }
  const said = r.stderr.trim().split(/\r?\n/)[0] ?? ""
  if (r.code === null)
    throw new Vtl2DiskError({ step: c.step, detail: `no answer within ${timeoutMs} ms`, output: r.stderr })
  if (r.code !== 0)
    throw new Vtl2DiskError({
      step: c.step,
      detail: `${said || `powershell exited with code ${r.code}`} (run as a Hyper-V administrator, in an elevated shell)`,
      output: r.stderr,
    })
  try {
    return JSON.parse(r.stdout.trim().split(/\r?\n/).pop() ?? "") as A
  } catch (cause) {
    throw new Vtl2DiskError({ step: c.step, detail: "the script answered no JSON", output: r.stdout, cause })
  }
}

/** Makes sure the disk is on a VTL2 controller of the VM and the VM runs; idempotent. */
export const ensure = async (options: Options): Promise<Result> => {
  const [query, addController, attach, startVm] = commands(options) as [Command, Command, Command, Command]
  const runner = options.runner ?? spawnRunner
  const timeoutMs = options.timeoutMs ?? 300_000
  const ran: Array<Command> = []
  const run = <A>(c: Command, detail: string) => {
    options.onStep?.(c.step, detail)
    ran.push(c)
    return runScript<A>(c, runner, timeoutMs)
  }
  const vm = options.vm
  const disk = hostPath(options.disk)
  let state = await run<VmState>(query, `reading the SCSI storage of ${describeVm(vm)}`)
  const decided = plan(state, disk, options.lun)
  if (decided.kind === "attach") {
    if (decided.addController) await run(addController, "adding a SCSI controller with TargetVtl 2")
    await run(attach, `putting ${disk} on the VTL2 controller`)
    state = await run<VmState>(query, "reading it back")
  }
  const placed = plan(state, disk, options.lun)
  if (placed.kind !== "attached")
    throw new Vtl2DiskError({
      step: "attach",
      detail: `${disk} is not on a VTL2 controller after attaching it`,
    })
  const started = state.state === "Off" || state.state === "Saved"
  if (started) await run(startVm, `starting ${JSON.stringify(state.name)}`)
  return { vm: state, plan: decided, commands: ran, controller: placed.controller, lun: placed.lun, started }
}
