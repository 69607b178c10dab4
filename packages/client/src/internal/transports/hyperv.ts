// hyperv:NAME / hyperv-id:GUID — AF_HYPERV through @cuvette/native (Windows hosts). A VM name is
// resolved to its GUID with `hvc.exe id NAME`, falling back to PowerShell `(Get-VM -Name NAME).Id`.
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

/** Resolves a VM name to its GUID: hvc.exe first, then PowerShell Get-VM. */
export const resolveVmId = async (
  name: string,
  target: string,
  runner: Runner = execRunner,
  timeoutMs = 10_000,
): Promise<string> => {
  const failures: Array<string> = []
  const tries: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
    ["hvc.exe", ["id", name]],
    [
      "powershell.exe",
      [
        "-NoProfile",
        "-NonInteractive",
        "-Command",
        `(Get-VM -Name '${name.replace(/'/g, "''")}' -ErrorAction Stop).Id.ToString()`,
      ],
    ],
  ]
  for (const [file, args] of tries) {
    try {
      const r = await runner(file, args, timeoutMs)
      const id = Address.findGuid(r.stdout)
      if (r.code === 0 && id !== undefined) return id
      failures.push(`${file}: ${(r.stderr || r.stdout).trim().split("\n")[0] || `exit code ${r.code}`}`)
    } catch (e) {
      failures.push(`${file}: ${(e as Error).message}`)
    }
  }
  throw new ConnectError({
    reason: "NOT_FOUND",
    target,
    detail: `no VM named ${JSON.stringify(name)} (${failures.join("; ")})`,
    hint: "check the name with `Get-VM` (run as a Hyper-V administrator), or give the id: hyperv-id:GUID",
  })
}

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
  const vmId = t.byId ? t.vm : await resolveVmId(t.vm, target, options.runner)
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
