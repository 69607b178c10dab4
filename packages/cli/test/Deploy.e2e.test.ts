// `cuvette deploy`: an image written through @cuvette/deploy, and the exact VTL2 bring-up commands.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runCli } from "./fixtures/harness.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-deploy-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

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
  })
})
