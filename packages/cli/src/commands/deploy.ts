// `cuvette deploy image|vtl2`: puts the agent into a guest that has nothing yet, through @cuvette/deploy.
// `image` writes a cidata disk (FAT32 in GPT, raw or VHD); `vtl2` puts that disk on the VM's VTL2 SCSI
// controller (Hyper-V, --disk), drives ohcldiag-dev to mount it in OpenHCL, start the agent there, and
// waits until it answers.
import * as fs from "node:fs"
import * as path from "node:path"
import { canonicalGuid, isGuid } from "@cuvette/protocol/Address"
import { DEFAULT_PORT } from "@cuvette/protocol/Constants"
import * as Client from "../internal/client.js"
import { type Context, define, type Group } from "../internal/command.js"
import { CliError, UsageError } from "../internal/errors.js"
import * as Opt from "../internal/option.js"
import * as Progress from "../internal/progress.js"
import * as ExitCode from "../ExitCode.js"

const DEFAULT_WAIT_MS = 120_000

// @cuvette/deploy's tagged errors already say what failed, where and what to try: print them as they are
// (not inside a second "cannot ..."), with the tag as the --json code.
const DEPLOY_ERRORS = new Set([
  "BundleError",
  "CidataError",
  "GptError",
  "ImageError",
  "OhcldiagError",
  "Vtl2DiskError",
])
const attempt = <A>(
  ctx: Pick<Context, "attempt">,
  what: Parameters<Context["attempt"]>[0],
  f: () => Promise<A>,
) =>
  ctx.attempt(what, () =>
    f().catch((e: unknown) => {
      const tag = (e as { _tag?: unknown } | undefined)?._tag
      if (typeof tag !== "string" || !DEPLOY_ERRORS.has(tag)) throw e
      throw new CliError({ code: tag, detail: (e as Error).message, exitCode: ExitCode.Failed, cause: e })
    }),
  )

/**
 * The agent executable: --agent names it or the directory holding it (a bundle as `npm run build:agent` writes
 * it, which a single-file cuvette does not carry); without --agent, that build's output under the current directory.
 */
const agentPath = (given: string | undefined, os: "linux" | "windows"): string => {
  const name = os === "windows" ? "cuvette-agent.exe" : "cuvette-agent"
  const p = given ?? path.join("dist", "agent", os === "windows" ? "windows-x64" : "linux-x64", name)
  return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true ? path.join(p, name) : p
}

const image = define({
  name: "image",
  summary: "write a cidata disk image (FAT32 in GPT, raw or VHD) holding the agent",
  usage: "--out FILE [--format raw|vhd] [--os linux|windows] [--agent PATH] [--add FILE]... [--token-file F]",
  description:
    "linux: the agent bundle (runs without glibc, also in VTL2) and a cloud-init NoCloud seed (label cidata).\n" +
    "windows: cuvette-agent.exe, its cuvette_native.node and install-cuvette.cmd (label cuvette). --token-file puts the token on the disk\n" +
    "and the agent then requires it. --agent defaults to what `npm run build:agent` writes under dist/agent/ (a single-file\n" +
    "cuvette carries no agent: pass --agent DIR, the unpacked agent bundle).",
  options: {
    out: Opt.text("out", "FILE", "image file to write"),
    format: Opt.choice(
      "format",
      ["raw", "vhd"],
      "raw disk or fixed VHD (default: vhd for a .vhd name, else raw)",
    ),
    os: Opt.choice("os", ["linux", "windows"], "guest OS (default linux; use linux for VTL2)", {
      hint: "(linux also serves VTL2)",
    }),
    agent: Opt.text("agent", "PATH", "agent executable, or the directory holding it, to put on the disk"),
    add: Opt.list("add", "FILE", "extra file for the disk's root (repeatable)"),
  },
  args: [],
  needsAgent: false,
  examples: [
    "cuvette deploy image --out /tmp/cidata.vhd --agent dist/agent/linux-x64/cuvette-agent",
    "cuvette deploy image --out /tmp/win.vhd --os windows --agent dist/agent/windows-x64/cuvette-agent.exe",
  ],
  run: async (ctx, options) => {
    const out = options.out
    if (out === undefined)
      throw new UsageError({
        detail: "missing --out FILE for `cuvette deploy image`; see `cuvette deploy image --help`",
      })
    const format = options.format ?? (out.toLowerCase().endsWith(".vhd") ? "vhd" : "raw")
    const os = options.os ?? "linux"
    const agent = agentPath(options.agent, os)
    if (!fs.existsSync(agent)) {
      throw new UsageError({
        detail:
          `no agent executable at ${agent}: pass --agent PATH (the agent or its directory, e.g. ` +
          `dist/agent/${os === "windows" ? "windows" : "linux"}-x64), or build one with \`npm run build:agent\``,
      })
    }
    const tokenFile = ctx.globals.tokenFile
    const extra = options.add.map((f) => ({ path: path.basename(f), source: f }))
    const [Cidata, Image] = await Promise.all([
      import("@cuvette/deploy/Cidata"),
      import("@cuvette/deploy/Image"),
    ])
    const addon = path.join(path.dirname(agent), Cidata.WINDOWS_ADDON)
    if (os === "windows" && !fs.existsSync(addon)) {
      throw new UsageError({
        detail:
          `no ${Cidata.WINDOWS_ADDON} beside ${agent}: the Windows agent needs it for Hyper-V sockets and ` +
          "--service; `npm run build:agent -- --target windows-x64` builds both",
      })
    }
    const contents = await attempt(ctx, { action: "collect the disk contents", hostPath: agent }, async () =>
      os === "windows"
        ? Cidata.windows({ agent, addon, extra, ...(tokenFile !== undefined ? { tokenFile } : {}) })
        : Cidata.linux({ agent, extra, ...(tokenFile !== undefined ? { tokenFile } : {}) }),
    )
    let progress: Progress.Progress | undefined
    const result = await attempt(ctx, { action: "write the image", hostPath: out }, () =>
      Image.write(
        {
          out,
          format,
          label: contents.label,
          files: contents.files,
          onProgress: (done, total) => {
            progress ??= Progress.make(ctx.io.stderr, !ctx.out.json, path.basename(out), total)
            progress.update(done, total)
          },
        },
        ctx.signal,
      ),
    )
    progress?.finish()
    ctx.out.result(
      {
        out: result.out,
        format: result.format,
        size: result.size,
        os,
        label: contents.label,
        files: contents.files.map((f) => f.path),
      },
      `wrote ${result.out} (${result.format}, ${Progress.formatBytes(result.size)}, label ${contents.label}, ${contents.files.length} files)`,
    )
    return ExitCode.Ok
  },
})

/** The agent's address once it runs in VTL2 of `vm` (as ohcldiag-dev names the VM). */
export const vtl2Target = (vm: string, listen: string | undefined): string => {
  if (listen !== undefined) return `listen-unix:${listen}`
  // OpenVMM: the agent connects out to the host's <vtl2 vsock path>_<port>, as the VMM relays it.
  if (vm.startsWith("vsock:")) return `listen-unix:${vm.slice("vsock:".length)}_${DEFAULT_PORT}`
  if (vm.startsWith("hyperv-id:") || vm.startsWith("hyperv:")) return `${vm}?vtl=2`
  return `hyperv:${vm}?vtl=2`
}

/** Why each PowerShell step runs, for --dry-run. */
const WHEN: Record<string, string> = {
  query: "read the VM's state and SCSI storage",
  "add-controller": "only if no SCSI controller with TargetVtl 2 has room (the VM must be off)",
  attach: "unless the disk is on a VTL2 controller already (the VM must be off)",
  "start-vm": "only if the VM is off or saved",
}

/** The Hyper-V VM of `--vm` for --disk: hyperv-id:GUID by id, NAME or hyperv:NAME by name; else a usage error. */
export const hypervVm = (vm: string): { readonly name: string } | { readonly id: string } => {
  if (vm.startsWith("vsock:"))
    throw new UsageError({
      detail:
        "--disk is for Hyper-V VMs: on OpenVMM, attach the disk with OpenVMM's own VTL2 storage options",
    })
  if (!vm.startsWith("hyperv-id:"))
    return { name: vm.startsWith("hyperv:") ? vm.slice("hyperv:".length) : vm }
  const id = vm.slice("hyperv-id:".length)
  if (!isGuid(id)) throw new UsageError({ detail: `--vm ${vm}: ${JSON.stringify(id)} is not a GUID` })
  return { id: canonicalGuid(id) }
}

const parseLun = (text: string | undefined): number | undefined => {
  if (text === undefined) return undefined
  const n = /^\d+$/.test(text) ? Number(text) : NaN
  if (!(n >= 0 && n <= 63)) throw new UsageError({ detail: `--lun ${text}: use a SCSI LUN, 0 to 63` })
  return n
}

const vtl2 = define({
  name: "vtl2",
  summary:
    "put the agent disk on VTL2 (Hyper-V), start the agent in OpenHCL through ohcldiag-dev, and wait for it",
  usage: "--vm ID [--disk FILE [--lun N]] [--ohcldiag PATH] [--listen PATH] [--dry-run]",
  description:
    "ID is the VM as ohcldiag-dev takes it: a Hyper-V NAME (always a name, even GUID-shaped), hyperv:NAME,\n" +
    "hyperv-id:GUID, or vsock:PATH (OpenVMM's VTL2 vsock socket). With --disk (Hyper-V, as Administrator): put\n" +
    "that cidata disk (`cuvette deploy image`) on a SCSI controller whose TargetVtl is 2, through WMI, adding\n" +
    "the controller if the VM has none (the VM must be off for a change; already there: nothing to do), and\n" +
    "start the VM if it is off. Then: wait for the diag server, mount the disk by label, start the agent\n" +
    "detached, and wait for it (--timeout, default 2m) on hyperv:NAME?vtl=2 (AF_HYPERV, high VTL), or on Unix\n" +
    `socket PATH_${DEFAULT_PORT} for OpenVMM (--listen PATH or -H T to choose).`,
  options: {
    vm: Opt.text("vm", "ID", "the VM: NAME, hyperv:NAME, hyperv-id:GUID or vsock:PATH"),
    disk: Opt.text("disk", "FILE", "Hyper-V: first put this disk on the VM's VTL2 SCSI controller"),
    lun: Opt.text("lun", "N", "the disk's LUN on that controller (default: the first free one)"),
    ohcldiag: Opt.text("ohcldiag", "PATH", "the ohcldiag-dev executable (default: on PATH)"),
    listen: Opt.text("listen", "PATH", "OpenVMM: accept the agent's connection on this Unix socket"),
    dryRun: Opt.flag(
      "dry-run",
      "print the exact PowerShell and ohcldiag-dev commands instead of running them",
    ),
  },
  args: [],
  needsAgent: false,
  examples: [
    "cuvette deploy vtl2 --vm myvm --disk C:\\vms\\cidata.vhd --ohcldiag C:\\tools\\ohcldiag-dev.exe",
    "cuvette deploy vtl2 --vm vsock:/tmp/vm-vtl2.sock --dry-run",
  ],
  run: async (ctx, { vm, disk, lun: lunText, ohcldiag, listen, dryRun }) => {
    if (vm === undefined)
      throw new UsageError({
        detail: "missing --vm ID for `cuvette deploy vtl2`; see `cuvette deploy vtl2 --help`",
      })
    const lun = parseLun(lunText)
    if (lun !== undefined && disk === undefined)
      throw new UsageError({ detail: "--lun goes with --disk FILE" })
    const target = ctx.globals.target ?? vtl2Target(vm, listen)
    const timeoutMs = ctx.globals.timeoutMs ?? DEFAULT_WAIT_MS
    const [Ohcldiag, Vtl2Disk] = await Promise.all([
      import("@cuvette/deploy/Ohcldiag"),
      import("@cuvette/deploy/Vtl2Disk"),
    ])
    const note = (step: string, detail: string) => {
      if (!ctx.out.json) ctx.out.note(`${step}: ${detail}`)
    }
    const diskOptions =
      disk !== undefined
        ? { vm: hypervVm(vm), disk, ...(lun !== undefined ? { lun } : {}), onStep: note }
        : undefined
    if (diskOptions !== undefined && !dryRun && !fs.existsSync(diskOptions.disk))
      throw new UsageError({
        detail: `no disk at ${diskOptions.disk}: write one with \`cuvette deploy image --out ${diskOptions.disk}\``,
      })
    const options = {
      vm,
      ...(ohcldiag !== undefined ? { ohcldiag } : {}),
      dryRun,
      onStep: note,
      waitForAgent: async () => {
        const client = await Client.load()
        const agent = await client.wait(target, {
          timeoutMs,
          ...(ctx.globals.tokenFile !== undefined ? { tokenFile: ctx.globals.tokenFile } : {}),
          signal: ctx.signal,
        })
        try {
          await agent.ping()
        } finally {
          await agent.close()
        }
      },
    }
    const scripts = diskOptions !== undefined ? Vtl2Disk.commands(diskOptions) : []
    const placed =
      diskOptions !== undefined && !dryRun
        ? await attempt(ctx, { action: `put ${diskOptions.disk} on VTL2 of ${vm}` }, () =>
            Vtl2Disk.ensure(diskOptions),
          )
        : undefined
    if (placed !== undefined)
      note(
        placed.plan.kind === "attached" ? "disk" : "attach",
        `${placed.plan.kind === "attached" ? "already on" : "now on"} SCSI controller ${placed.controller} (TargetVtl 2) at LUN ${placed.lun}` +
          `${placed.plan.kind === "attached" ? ": nothing to do" : ""}${placed.started ? "; started the VM" : ""}`,
      )
    const result = await attempt(ctx, { action: `deploy the agent into VTL2 of ${vm}` }, () =>
      Ohcldiag.deploy(options),
    )
    const lines = result.commands.map((c) => Ohcldiag.formatCommand(c.argv))
    const powershell = scripts.flatMap((c, i) => [
      `# ${i + 1}. ${c.step}: ${WHEN[c.step]}; runs as ${c.argv.slice(0, -1).join(" ")} <this script, base64 of UTF-16LE>`,
      c.script,
    ])
    ctx.out.result(
      {
        vm,
        target,
        dryRun,
        ...(diskOptions !== undefined
          ? {
              disk: {
                path: Vtl2Disk.hostPath(diskOptions.disk),
                powershell: scripts.map((c) => ({ step: c.step, script: c.script, argv: c.argv })),
                ...(placed !== undefined
                  ? {
                      ran: placed.commands.map((c) => c.step),
                      alreadyAttached: placed.plan.kind === "attached",
                      controller: placed.controller,
                      lun: placed.lun,
                      startedVm: placed.started,
                    }
                  : {}),
              },
            }
          : {}),
        commands: result.commands.map((c) => ({ step: c.step, argv: c.argv })),
        diagAttempts: result.diagAttempts,
      },
      dryRun
        ? [...powershell, ...lines, `# then wait for the agent on ${target}`]
        : `the agent answers in VTL2 of ${vm}: try \`cuvette -H '${target}' info\``,
    )
    return ExitCode.Ok
  },
})

/** `cuvette deploy`: the parent of `deploy image` and `deploy vtl2`. */
export const command: Group = {
  name: "deploy",
  summary: "put the agent into a guest: `deploy image` (cidata disk), `deploy vtl2` (OpenHCL)",
  usage: "image|vtl2 [options]",
  subcommands: [image, vtl2],
  examples: ["cuvette deploy image --help", "cuvette deploy vtl2 --help"],
}
