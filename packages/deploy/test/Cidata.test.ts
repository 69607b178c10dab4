import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as Bundle from "../src/Bundle.js"
import * as Cidata from "../src/Cidata.js"
import * as Image from "../src/Image.js"
import { fakeAgentDir } from "./fixtures/fakeElf.js"
import { has, run, tempDir } from "./fixtures/tools.js"

const { dir, cleanup } = tempDir()
afterAll(cleanup)
const agent = fakeAgentDir(path.join(dir, "agent"))
const PART = 2048 * 512
const hasCloudInitPython = run("/usr/bin/python3", ["-c", "import cloudinit, yaml"]).status === 0
const mtools = has("mcopy") && has("blkid")

const write = (name: string, content: string) => {
  const f = path.join(dir, name)
  fs.writeFileSync(f, content)
  return f
}

describe("Linux VTL0 contents", () => {
  it.skipIf(!has("cloud-init"))(
    `user-data is valid per cloud-init schema${has("cloud-init") ? "" : " (skipped: cloud-init not installed)"}`,
    () => {
      const r = run("cloud-init", ["schema", "--config-file", write("user-data", Cidata.userData)])
      expect(r.status, r.output).toBe(0)
      expect(r.stdout).toContain("Valid cloud-config")
    },
  )

  it.skipIf(!hasCloudInitPython)(
    `installs a systemd unit and an OpenRC script that run the launcher from the disk${hasCloudInitPython ? "" : " (skipped: cloud-init's Python modules not installed)"}`,
    () => {
      // parse it as cloud-init does and look at what it would write and run
      const script = `import sys, json; from cloudinit import util
c = util.load_yaml(open(sys.argv[1]).read()); print(json.dumps(c))`
      const config = JSON.parse(run("/usr/bin/python3", ["-c", script, write("ud", Cidata.userData)]).stdout)
      const files = Object.fromEntries(
        config.write_files.map((f: { path: string; content: string }) => [f.path, f]),
      )
      expect(files["/etc/systemd/system/cuvette-agent.service"].content).toMatch(
        /^ExecStart=\/cidata\/cuvette-agent\.sh$/m,
      )
      expect(files["/etc/init.d/cuvette-agent"]).toMatchObject({ permissions: "0755" })
      expect(files["/etc/init.d/cuvette-agent"].content).toMatch(
        /^#!\/sbin\/openrc-run\n(.*\n)*command="\/cidata\/cuvette-agent\.sh"$/m,
      )
      // the shell parts parse (the OpenRC script is sh with functions openrc-run calls)
      expect(run("sh", ["-n", write("openrc", files["/etc/init.d/cuvette-agent"].content)]).status).toBe(0)
      expect(run("sh", ["-n", "-c", config.runcmd[0][2]]).status).toBe(0)
      expect(config.bootcmd[0]).toEqual(["sh", "-c", Cidata.mountCommand])
    },
  )

  it.skipIf(!mtools || !hasCloudInitPython)(
    `makes a disk cloud-init's NoCloud datasource reads (instance id, user-data, network-config)${mtools && hasCloudInitPython ? "" : " (skipped: needs mtools and cloud-init)"}`,
    async () => {
      const out = path.join(dir, "linux.img")
      const token = write("token", "s3cret\n")
      await Image.write({
        out,
        ...(await Cidata.linux({ agent, instanceId: "iid-test-1", hostname: "guest1", tokenFile: token })),
      })
      expect(run("blkid", ["-p", "-O", String(PART), out]).stdout).toContain('LABEL="cidata"')
      const listing = run("mdir", ["-b", "-/", "-i", `${out}@@${PART}`, "::/"]).stdout
      for (const f of [
        "cuvette-agent",
        "cuvette-agent.sh",
        "cuvette-token",
        "lib/libc.so.6",
        "meta-data",
        "user-data",
        "network-config",
      ])
        expect(listing).toContain(`::/${f}`)
      // NoCloud's seed directory: where it also reads network-config from
      const state = path.join(dir, "ci-state")
      const seed = path.join(state, "cloud", "seed", "nocloud")
      fs.mkdirSync(seed, { recursive: true })
      const cp = run("mcopy", [
        "-n",
        "-i",
        `${out}@@${PART}`,
        "::/meta-data",
        "::/user-data",
        "::/network-config",
        seed,
      ])
      expect(cp.status, cp.output).toBe(0)
      // the real NoCloud code reading the seed from that directory (it cannot mount FAT on this host)
      const script = `
import sys, json
from cloudinit import helpers, distros
from cloudinit.sources import DataSourceNoCloud as NC
state = sys.argv[1]
paths = helpers.Paths({"cloud_dir": state + "/cloud", "run_dir": state + "/run"})
ds = NC.DataSourceNoCloud({}, distros.fetch("debian")("debian", {}, paths), paths)
assert ds.get_data()
print(json.dumps({"iid": ds.get_instance_id(), "host": ds.get_hostname().hostname, "ud": ds.get_userdata_raw().decode()[:13], "net": ds.network_config}))`
      const r = run("/usr/bin/python3", ["-c", script, state])
      expect(r.status, r.output).toBe(0)
      const got = JSON.parse(r.stdout.trim().split("\n").pop()!)
      expect(got).toMatchObject({ iid: "iid-test-1", host: "guest1", ud: "#cloud-config" })
      expect(got.net).toMatchObject({ version: 2, ethernets: { primary: { dhcp4: true } } })
    },
  )
})

describe("Windows VTL0 and VTL2 contents", () => {
  it("puts the exe, its addon and a service installer on a disk labelled cuvette", () => {
    const exe = write("cuvette-agent.exe", "MZ")
    write("cuvette_native.node", "MZ addon")
    const c = Cidata.windows({ agent: exe, tokenFile: exe })
    expect(c.label).toBe("cuvette")
    expect(c.files.map((f) => f.path)).toEqual([
      "cuvette-agent.exe",
      "cuvette_native.node",
      "install-cuvette.cmd",
      "cuvette-token",
    ])
    expect(c.files[1]!.source).toBe(path.join(path.dirname(exe), "cuvette_native.node"))
    const script = new TextDecoder().decode(c.files[2]!.source as Uint8Array)
    expect(script.split("\r\n").length).toBe(script.split("\n").length) // CRLF throughout
    // What it does is run under Wine's service manager in e2e/test/windows.test.ts; here, its shape.
    expect(script).toContain('sc.exe create "%name%" binPath= "\\"%exe%\\" %args%" start= auto')
    expect(script).toContain('set "args=--service --log-file \\"%dir%\\agent.log\\""')
    expect(script).not.toMatch(/\|\||\(\r?\n/) // no || and no ( ) blocks (see windowsInstaller)
  })

  it("refuses a Windows disk without the agent's addon, saying how to build it", () => {
    const lone = fs.mkdtempSync(path.join(dir, "lone-"))
    const exe = path.join(lone, "cuvette-agent.exe")
    fs.writeFileSync(exe, "MZ")
    expect(() => Cidata.windows({ agent: exe })).toThrow(
      /no cuvette_native\.node at .*: the Windows agent needs it .*npm run build:agent -- --target windows-x64/,
    )
  })

  it("gives VTL2 the bundle and the token, and nothing cloud-init would act on", async () => {
    const c = await Cidata.vtl2({ agent, tokenFile: agent })
    expect(c.label).toBe("cidata")
    expect(c.files.map((f) => f.path)).toEqual([
      ...(await Bundle.files({ agent, tokenFile: agent })).map((f) => f.path),
    ])
    expect(c.files.some((f) => f.path === "user-data")).toBe(false)
  })
})
