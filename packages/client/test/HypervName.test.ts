// Hyper-V targets as users name them: hyperv:NAME is always a name (resolved with hvc.exe id, then Get-VM),
// even when it looks like a GUID; hyperv-id:GUID is always an id. The command runner is a stand-in.
import { describe, expect, it } from "vitest"
import { getVmCommand, type Runner, resolveVmId, vmIdOf } from "../src/internal/transports/hyperv.js"
import * as Target from "../src/Target.js"

const GUID = "0f3b5c9e-1d2a-4b6c-8e7f-a1b2c3d4e5f6"
const NAME_GUID = "6F2D3C1E-1111-2222-3333-444455556666" // a fleet VM's name, not its id

type Answer = { code: number; stdout: string; stderr?: string } | Error

/** Answers by executable; records each call as one line. */
const runner =
  (answers: Record<string, Answer>, calls: Array<string> = []): Runner =>
  async (file, args) => {
    calls.push([file, ...args].join(" "))
    const a = answers[file]
    if (a === undefined || a instanceof Error) throw a ?? new Error(`spawn ${file} ENOENT`)
    return { stderr: "", ...a }
  }

const failure = (p: Promise<unknown>): Promise<Error & Record<string, unknown>> =>
  p.then(
    () => {
      throw new Error("resolved")
    },
    (e: Error & Record<string, unknown>) => e,
  )

describe("hyperv:NAME and hyperv-id:GUID", () => {
  it("a GUID-shaped hyperv:NAME is resolved as a name; hyperv-id:GUID is used as given, nothing run", async () => {
    const calls: Array<string> = []
    const named = Target.parse(`hyperv:${NAME_GUID}?vtl=2`)
    if (named._tag !== "hyperv") throw new Error(named._tag)
    const id = await vmIdOf(named, "t", runner({ "hvc.exe": { code: 0, stdout: `${GUID}\r\n` } }, calls))
    expect(id).toBe(GUID)
    expect(calls).toEqual([`hvc.exe id ${NAME_GUID}`])

    const byId = Target.parse(`hyperv-id:{${NAME_GUID}}`)
    if (byId._tag !== "hyperv") throw new Error(byId._tag)
    expect(await vmIdOf(byId, "t", runner({}, calls))).toBe(NAME_GUID.toLowerCase())
    expect(calls).toHaveLength(1)
  })

  it("uses hvc.exe id NAME first", async () => {
    const calls: Array<string> = []
    const id = await resolveVmId(
      "my vm",
      "hyperv:my vm",
      runner({ "hvc.exe": { code: 0, stdout: `${GUID.toUpperCase()}\r\n` } }, calls),
    )
    expect(id).toBe(GUID)
    expect(calls).toEqual(["hvc.exe id my vm"])
  })

  it("falls back to Get-VM by exact name, the name quoted for PowerShell", async () => {
    const calls: Array<string> = []
    const id = await resolveVmId(
      "o'brien’s [vm]",
      "hyperv:o'brien’s [vm]",
      runner(
        {
          "hvc.exe": { code: 1, stdout: "", stderr: "hvc: no such VM\r\n" },
          "powershell.exe": { code: 0, stdout: `${GUID}\r\n` },
        },
        calls,
      ),
    )
    expect(id).toBe(GUID)
    expect(calls[1]).toBe(
      `powershell.exe -NoProfile -NonInteractive -Command ${getVmCommand("o'brien’s [vm]")}`,
    )
    // Doubled quotes (PowerShell also reads ’ as a quote), and -eq, not -Name (which reads [vm] as a wildcard).
    expect(getVmCommand("o'brien’s [vm]")).toBe(
      "$ErrorActionPreference = 'Stop'; Get-VM | Where-Object Name -eq 'o''brien’’s [vm]' | ForEach-Object { $_.Id.ToString() }",
    )
  })

  it("when neither works, NOT_FOUND names both and what each said", async () => {
    const e = await failure(
      resolveVmId(
        "ghost",
        "hyperv:ghost",
        runner({
          "hvc.exe": { code: 1, stdout: "", stderr: "The virtual machine could not be found.\r\nmore" },
          "powershell.exe": { code: 0, stdout: "" },
        }),
      ),
    )
    expect(e).toMatchObject({ _tag: "ConnectError", reason: "NOT_FOUND" })
    expect(e.message).toBe(
      'cannot connect to hyperv:ghost: cannot find the VM named "ghost" (hvc.exe id: The virtual machine could not be found.; ' +
        "Get-VM: no VM has this name) (check the name with `Get-VM` in an elevated PowerShell, or give the id: hyperv-id:GUID)",
    )
  })

  it("says so when the tools themselves are missing or fail", async () => {
    const e = await failure(
      resolveVmId(
        "vm",
        "hyperv:vm",
        runner({
          "powershell.exe": {
            code: 1,
            stdout: "",
            stderr: "Get-VM : You do not have the required permission to complete this task.\r\nAt line:1",
          },
        }),
      ),
    )
    expect(e.message).toContain(
      "(hvc.exe id: spawn hvc.exe ENOENT; Get-VM: Get-VM : You do not have the required permission to complete this task.)",
    )
  })

  it("two VMs with the same name: refuses, listing their ids", async () => {
    const other = "11111111-2222-3333-4444-555555555555"
    const e = await failure(
      resolveVmId(
        "twin",
        "hyperv:twin",
        runner({
          "hvc.exe": new Error("spawn hvc.exe ENOENT"),
          "powershell.exe": { code: 0, stdout: `${GUID}\r\n${other.toUpperCase()}\r\n` },
        }),
      ),
    )
    expect(e).toMatchObject({ reason: "NOT_FOUND" })
    expect(e.message).toContain(`2 VMs are named "twin" (ids ${GUID}, ${other})`)
    expect(e.message).toContain("hyperv-id:GUID")
  })
})
