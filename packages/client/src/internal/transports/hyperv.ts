// hyperv:NAME / hyperv-id:GUID — AF_HYPERV through @cuvette/native (Windows hosts). A VM name (always a
// name, even a GUID-shaped one) is resolved to its id with `hvc.exe id NAME`, then with PowerShell Get-VM.
import { execFile } from "node:child_process"
import type { Duplex } from "node:stream"
import { Address, ByteStream } from "@cuvette/protocol"
import { ConnectError, fromCause } from "../../ConnectError.js"
import * as native from "./native.js"
import { type DialOptions, remaining } from "./net.js"

/** Runs a command and returns its exit code and output (stubbed in tests). */
export type Runner = (
  file: string,
  args: ReadonlyArray<string>,
  timeoutMs: number,
) => Promise<{ readonly code: number; readonly stdout: string; readonly stderr: string }>

/** The real runner: execFile without a shell. */
const execRunner: Runner = (file, args, timeoutMs) =>
  new Promise((resolve, reject) =>
    execFile(file, [...args], { timeout: timeoutMs, windowsHide: true }, (error, stdout, stderr) => {
      if (error && typeof (error as { code?: unknown }).code !== "number") return reject(error)
      resolve({ code: error ? Number((error as { code?: unknown }).code) : 0, stdout, stderr })
    }),
  )

/** A PowerShell single-quoted literal: every quote PowerShell reads as one (also ‘ ’ ‚ ‛) is doubled. */
const psQuote = (s: string): string => `'${s.replace(/['\u2018\u2019\u201a\u201b]/g, "$&$&")}'`

/** The PowerShell that prints the id of each VM with exactly this name (`Get-VM -Name` reads [ ] * ? as wildcards). */
export const getVmCommand = (name: string): string =>
  `$ErrorActionPreference = 'Stop'; Get-VM | Where-Object Name -eq ${psQuote(name)} | ForEach-Object { $_.Id.ToString() }`

const firstLine = (r: { code: number; stdout: string; stderr: string }): string =>
  (r.stderr || r.stdout).trim().split(/\r?\n/)[0] || `exit code ${r.code}`

/** Resolves a VM name to its id: `hvc.exe id NAME` first, then Get-VM; the error tells what each said. */
export const resolveVmId = async (
  name: string,
  target: string,
  runner: Runner = execRunner,
  timeoutMs = 10_000,
): Promise<string> => {
  const said: Array<string> = []
  const attempt = async (label: string, file: string, args: ReadonlyArray<string>) => {
    try {
      return await runner(file, args, timeoutMs)
    } catch (e) {
      said.push(`${label}: ${(e as Error).message}`)
      return undefined
    }
  }
  const hvc = await attempt("hvc.exe id", "hvc.exe", ["id", name])
  if (hvc !== undefined) {
    const id = Address.findGuid(hvc.stdout)
    if (hvc.code === 0 && id !== undefined) return id
    said.push(`hvc.exe id: ${firstLine(hvc)}`)
  }
  const ps = await attempt("Get-VM", "powershell.exe", [
    "-NoProfile",
    "-NonInteractive",
    "-Command",
    getVmCommand(name),
  ])
  if (ps !== undefined) {
    const ids = [...ps.stdout.matchAll(/\S+/g)].map((m) => m[0]).filter(Address.isGuid)
    if (ps.code === 0 && ids.length === 1) return Address.canonicalGuid(ids[0]!)
    if (ps.code === 0 && ids.length > 1)
      throw new ConnectError({
        reason: "NOT_FOUND",
        target,
        detail: `${ids.length} VMs are named ${JSON.stringify(name)} (ids ${ids.map(Address.canonicalGuid).join(", ")})`,
        hint: "name the one you mean by its id: hyperv-id:GUID",
      })
    said.push(`Get-VM: ${ps.code === 0 ? "no VM has this name" : firstLine(ps)}`)
  }
  throw new ConnectError({
    reason: "NOT_FOUND",
    target,
    detail: `cannot find the VM named ${JSON.stringify(name)} (${said.join("; ")})`,
    hint: "check the name with `Get-VM` in an elevated PowerShell, or give the id: hyperv-id:GUID",
  })
}

/** The VM id a hyperv target names: `hyperv-id:` gives it; `hyperv:` is a name to resolve, whatever it looks like. */
export const vmIdOf = (
  t: { readonly vm: string; readonly byId: boolean },
  target: string,
  runner?: Runner,
): Promise<string> => (t.byId ? Promise.resolve(t.vm) : resolveVmId(t.vm, target, runner))

/** Connects to the VM's agent service over AF_HYPERV (VTL2 with HVSOCKET_HIGH_VTL). */
export const dial = async (
  t: { readonly vm: string; readonly byId: boolean; readonly port: number; readonly vtl2: boolean },
  target: string,
  options: DialOptions & { readonly runner?: Runner | undefined },
): Promise<ByteStream.ByteStream> => {
  if (process.platform !== "win32")
    throw new ConnectError({
      reason: "UNSUPPORTED",
      target,
      detail: `Hyper-V sockets are not available on ${process.platform}`,
    })
  const { Hvsock } = await native.load(target)
  const vmId = await vmIdOf(t, target, options.runner)
  let socket: Duplex
  try {
    socket = await Hvsock.connect({
      vmId,
      port: t.port,
      vtl2: t.vtl2,
      timeoutMs: Math.min(remaining(options.deadline), 300_000),
    })
  } catch (e) {
    throw fromCause(target, e)
  }
  return ByteStream.fromDuplex(socket, { description: target })
}
