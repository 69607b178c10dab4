// `cuvette deploy`: an image written through @cuvette/deploy, and the exact VTL2 bring-up commands.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runCli, startAgent } from "./fixtures/harness.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-deploy-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

// A host with stand-ins on PATH: powershell.exe plays Vtl2Disk's scripts on a pretend VM
// (packages/deploy/test/fixtures/powershell.mjs); ohcldiag-dev only records its argv. Both log to one file.
const fakeHost = (vm: Record<string, unknown>) => {
  const host = fs.mkdtempSync(path.join(dir, "host-"))
  const bin = path.join(host, "bin")
  fs.mkdirSync(bin)
  const script = (name: string, file: string) =>
    fs.writeFileSync(path.join(bin, name), `#!/bin/sh\nexec '${process.execPath}' '${file}' "$@"\n`, {
      mode: 0o755,
    })
  script("powershell.exe", path.resolve(import.meta.dirname, "../../deploy/test/fixtures/powershell.mjs"))
  fs.writeFileSync(
    path.join(host, "ohcldiag-dev.cjs"),
    `require("fs").appendFileSync(process.env.FAKE_PS_LOG, JSON.stringify({ step: "ohcldiag-dev " + process.argv[3], argv: process.argv.slice(2) }) + "\\n")\n`,
  )
  script("ohcldiag-dev", path.join(host, "ohcldiag-dev.cjs"))
  const disk = path.join(host, "cidata.vhd")
  fs.writeFileSync(disk, "not really a VHD")
  const state = path.join(host, "vm.json")
  fs.writeFileSync(state, JSON.stringify(vm))
  const log = path.join(host, "log")
  return {
    disk,
    env: { PATH: `${bin}:${process.env.PATH}`, FAKE_PS_LOG: log, FAKE_HYPERV: state },
    steps: (): Array<string> =>
      fs.existsSync(log)
        ? fs
            .readFileSync(log, "utf8")
            .trim()
            .split("\n")
            .map((l) => JSON.parse(l).step)
        : [],
    clearLog: () => fs.rmSync(log, { force: true }),
  }
}
const VM_ID = "6f2d3c1e-1111-2222-3333-444455556666"
const offVm = (state = "Off") => ({
  id: VM_ID,
  name: "fleet vm",
  state,
  controllers: [{ id: "c0", targetVtl: 0, drives: [{ lun: 0, disk: "C:\\os.vhdx", empty: false }] }],
})

describe.concurrent("cuvette deploy", { timeout: 60_000 }, () => {
  it("image writes a VHD with the agent and the installer", async () => {
    const agent = path.join(dir, "cuvette-agent.exe")
    fs.writeFileSync(agent, "MZ fake agent")
    fs.writeFileSync(path.join(dir, "cuvette_native.node"), "MZ fake addon")
    const out = path.join(dir, "win.vhd")
    const r = await runCli(["--json", "deploy", "image", "--os", "windows", "--agent", agent, "--out", out])
    expect(r.code, r.stderr).toBe(0)
    const doc = JSON.parse(r.stdout.toString())
    expect(doc).toMatchObject({ format: "vhd", os: "windows", label: "cuvette" })
    expect(doc.files).toEqual(
      expect.arrayContaining(["cuvette-agent.exe", "cuvette_native.node", "install-cuvette.cmd"]),
    )
    expect(fs.statSync(out).size).toBe(doc.size + 512)
  })

  it("--agent DIR takes the agent from that directory (an unpacked bundle, as a single-file cuvette needs)", async () => {
    const bundle = fs.mkdtempSync(path.join(dir, "bundle-"))
    fs.writeFileSync(path.join(bundle, "cuvette-agent.exe"), "MZ fake agent")
    fs.writeFileSync(path.join(bundle, "cuvette_native.node"), "MZ fake addon")
    const out = path.join(bundle, "win.img")
    const r = await runCli(["--json", "deploy", "image", "--os", "windows", "--agent", bundle, "--out", out])
    expect(r.code, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout.toString()).files).toEqual(
      expect.arrayContaining(["cuvette-agent.exe", "cuvette_native.node", "install-cuvette.cmd"]),
    )
    const empty = fs.mkdtempSync(path.join(dir, "empty-"))
    const missing = await runCli(["deploy", "image", "--agent", empty, "--out", path.join(empty, "x.img")])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain(`no agent executable at ${path.join(empty, "cuvette-agent")}`)
    expect(missing.stderr).toContain("the agent or its directory")
  })

  it("a Windows image without the agent's addon is a usage error saying how to build both", async () => {
    const lone = fs.mkdtempSync(path.join(dir, "lone-"))
    const agent = path.join(lone, "cuvette-agent.exe")
    fs.writeFileSync(agent, "MZ fake agent")
    const out = path.join(lone, "win.vhd")
    const r = await runCli(["deploy", "image", "--os", "windows", "--agent", agent, "--out", out])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`no cuvette_native.node beside ${agent}`)
    expect(r.stderr).toContain("npm run build:agent -- --target windows-x64")
    expect(fs.existsSync(out)).toBe(false)
  })

  it("image without an agent is a usage error saying how to get one", async () => {
    const r = await runCli([
      "deploy",
      "image",
      "--out",
      path.join(dir, "x.img"),
      "--agent",
      path.join(dir, "none"),
    ])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("npm run build:agent")
  })

  it("a failure inside @cuvette/deploy is printed in its own words, its tag the --json code, exit 1", async () => {
    const agent = path.join(dir, "not-elf")
    fs.writeFileSync(agent, "#!/bin/sh\n")
    const out = path.join(dir, "never.img")
    const r = await runCli(["--json", "deploy", "image", "--agent", agent, "--out", out])
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout.toString()).error).toMatchObject({
      code: "BundleError",
      message: `cannot assemble the Linux agent bundle: ${agent} is not a Linux x86-64 or aarch64 executable`,
    })
    expect(fs.existsSync(out)).toBe(false)
    const tool = path.join(dir, "no-ohcldiag-dev")
    const v = await runCli(["deploy", "vtl2", "--vm", "myvm", "--ohcldiag", tool])
    expect(v.code).toBe(1)
    expect(v.stderr.trimEnd().split("\n")).toEqual([
      `cuvette: wait-for-diag: ${tool} myvm inspect build_info`, // the step, as it starts
      `cuvette: VTL2 deploy step "wait-for-diag" failed: cannot run ${tool}: no such file (ENOENT); ` +
        "install ohcldiag-dev or pass its path (--ohcldiag)",
      `  command: ${tool} myvm inspect build_info`,
    ])
  })

  it("vtl2 --disk: query, add a VTL2 controller, attach, start the VM, then mount, start and wait; again: nothing to attach", async () => {
    const host = fakeHost(offVm())
    const agent = await startAgent()
    try {
      const args = ["deploy", "vtl2", "--vm", "fleet vm", "--disk", host.disk, "-H", agent.target]
      const r = await runCli(args, { env: host.env })
      expect(r.code, r.stderr).toBe(0)
      expect(host.steps()).toEqual([
        "query",
        "add-controller",
        "attach",
        "query",
        "start-vm",
        "ohcldiag-dev inspect",
        "ohcldiag-dev run",
        "ohcldiag-dev run",
      ])
      expect(r.stderr).toContain(
        "cuvette: attach: now on SCSI controller 1 (TargetVtl 2) at LUN 0; started the VM",
      )
      expect(r.stdout.toString()).toContain("the agent answers in VTL2 of fleet vm")

      host.clearLog()
      const again = await runCli(["--json", ...args], { env: host.env })
      expect(again.code, again.stderr).toBe(0)
      expect(host.steps()).toEqual(["query", "ohcldiag-dev inspect", "ohcldiag-dev run", "ohcldiag-dev run"])
      expect(JSON.parse(again.stdout.toString()).disk).toMatchObject({
        ran: ["query"],
        alreadyAttached: true,
        controller: 1,
        lun: 0,
        startedVm: false,
      })
    } finally {
      await agent.stop()
    }
  })

  it("vtl2 --disk on a running VM that needs a change: refuses, exit 1, and neither attaches nor runs ohcldiag-dev", async () => {
    const host = fakeHost(offVm("Running"))
    const r = await runCli(["--json", "deploy", "vtl2", "--vm", "fleet vm", "--disk", host.disk], {
      env: host.env,
    })
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout.toString()).error).toMatchObject({
      code: "Vtl2DiskError",
      message: `VTL2 disk step "add-controller" failed: the VM "fleet vm" is Running, and adding a SCSI controller for VTL2 needs it off: Stop-VM -Name 'fleet vm', then run this again`,
    })
    expect(host.steps()).toEqual(["query"])
  })

  it("vtl2 --disk usage errors: a LUN out of range, --lun alone, an OpenVMM VM, a missing disk", async () => {
    const cases: Array<[Array<string>, string]> = [
      [["--vm", "v", "--disk", "d.vhd", "--lun", "64"], "--lun 64: use a SCSI LUN, 0 to 63"],
      [["--vm", "v", "--lun", "1"], "--lun goes with --disk FILE"],
      [["--vm", "vsock:/tmp/v.sock", "--disk", "d.vhd"], "--disk is for Hyper-V VMs"],
      [["--vm", "hyperv-id:vm1", "--disk", "d.vhd"], '--vm hyperv-id:vm1: "vm1" is not a GUID'],
      [
        ["--vm", "v", "--disk", path.join(dir, "none.vhd")],
        `no disk at ${path.join(dir, "none.vhd")}: write one with`,
      ],
    ]
    for (const [args, words] of cases) {
      const r = await runCli(["deploy", "vtl2", ...args])
      expect(r.code, args.join(" ")).toBe(2)
      expect(r.stderr).toContain(words)
    }
  })

  it("vtl2 --disk --dry-run prints the exact PowerShell, then the ohcldiag-dev commands, and runs nothing", async () => {
    const host = fakeHost(offVm())
    const r = await runCli(
      ["deploy", "vtl2", "--vm", "o'brien", "--disk", "C:\\vms\\cidata.vhd", "--lun", "2", "--dry-run"],
      { env: host.env },
    )
    expect(r.code, r.stderr).toBe(0)
    const out = r.stdout.toString()
    const headers = out.split("\n").filter((l) => /^# \d\. /.test(l))
    expect(headers.map((h) => h.split(":")[0])).toEqual([
      "# 1. query",
      "# 2. add-controller",
      "# 3. attach",
      "# 4. start-vm",
    ])
    expect(headers[0]).toContain(
      "runs as powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand <this script, base64 of UTF-16LE>",
    )
    expect(out).toContain("$name = 'o''brien'\n")
    expect(out).toContain("$diskPath = 'C:\\vms\\cidata.vhd'\n$lun = 2\n")
    expect(out).toContain("@{ TargetVtl = 2 }")
    const tail = out.trimEnd().split("\n").slice(-4)
    expect(tail[0]).toBe("ohcldiag-dev 'o'\\''brien' inspect build_info")
    expect(tail[3]).toBe("# then wait for the agent on hyperv:o'brien?vtl=2")
    expect(host.steps()).toEqual([])
  })

  it("vtl2 --dry-run prints the exact commands and where it will wait", async () => {
    const r = await runCli([
      "deploy",
      "vtl2",
      "--vm",
      "vsock:/tmp/vm.sock",
      "--ohcldiag",
      "/opt/ohcldiag-dev",
      "--dry-run",
    ])
    expect(r.code).toBe(0)
    const lines = r.stdout.toString().trim().split("\n")
    expect(lines[0]).toBe("/opt/ohcldiag-dev vsock:/tmp/vm.sock inspect build_info")
    expect(lines[1]).toContain("mount LABEL=cidata /cidata")
    expect(lines[2]).toContain("/cidata/cuvette-agent.sh")
    expect(lines[3]).toBe("# then wait for the agent on listen-unix:/tmp/vm.sock_4919")
    const hv = await runCli(["--json", "deploy", "vtl2", "--vm", "myvm", "--dry-run"])
    expect(JSON.parse(hv.stdout.toString())).toMatchObject({ target: "hyperv:myvm?vtl=2", dryRun: true })
    // hyperv:NAME and hyperv-id:GUID are passed to ohcldiag-dev as given and waited on with ?vtl=2
    // and --disk finds the VM by that name (GUID-shaped or not) or by that id
    const selects: Array<[string, string]> = [
      [`hyperv:${VM_ID}`, `$name = '${VM_ID}'`],
      [`hyperv-id:{${VM_ID.toUpperCase()}}`, `$vm = Get-VM -Id '${VM_ID}'`],
    ]
    for (const [vm, selection] of selects) {
      const r = await runCli(["--json", "deploy", "vtl2", "--vm", vm, "--disk", "C:\\d.vhd", "--dry-run"])
      const doc = JSON.parse(r.stdout.toString())
      expect(doc.target).toBe(`${vm}?vtl=2`)
      expect(doc.commands[0].argv).toEqual(["ohcldiag-dev", vm, "inspect", "build_info"])
      expect(doc.disk.powershell.map((c: { step: string }) => c.step)).toEqual([
        "query",
        "add-controller",
        "attach",
        "start-vm",
      ])
      for (const c of doc.disk.powershell) expect(c.script).toContain(`\n${selection}\n`)
    }
  })
})
