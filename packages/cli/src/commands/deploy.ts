// `cuvette deploy image|vtl2`: puts the agent into a guest that has nothing yet, through @cuvette/deploy.
// `image` writes a cidata disk (FAT32 in GPT, raw or VHD); `vtl2` drives ohcldiag-dev to mount that disk
// in OpenHCL, start the agent there, and waits until it answers.
import * as fs from "node:fs"
import * as path from "node:path"
import { expectPositionals, flag, list, str } from "../internal/args.js"
import * as Client from "../internal/client.js"
import type { Command, Context } from "../internal/command.js"
import { CliError, UsageError } from "../internal/errors.js"
import * as Progress from "../internal/progress.js"
import * as ExitCode from "../ExitCode.js"

const DEFAULT_WAIT_MS = 120_000

// @cuvette/deploy's tagged errors already say what failed, where and what to try: print them as they are
// (not inside a second "cannot ..."), with the tag as the --json code.
const DEPLOY_ERRORS = new Set(["BundleError", "CidataError", "GptError", "ImageError", "OhcldiagError"])
const attempt = <A>(ctx: Context, what: Parameters<Context["attempt"]>[0], f: () => Promise<A>) =>
  ctx.attempt(what, () =>
    f().catch((e: unknown) => {
      const tag = (e as { _tag?: unknown } | undefined)?._tag
      if (typeof tag !== "string" || !DEPLOY_ERRORS.has(tag)) throw e
      throw new CliError({ code: tag, detail: (e as Error).message, exitCode: ExitCode.Failed, cause: e })
    }),
  )

const defaultAgent = (os: "linux" | "windows"): string =>
  os === "windows" ? "dist/agent/windows-x64/cuvette-agent.exe" : "dist/agent/linux-x64/cuvette-agent"

const image: Command = {
  name: "image",
  summary: "write a cidata disk image (FAT32 in GPT, raw or VHD) holding the agent",
  usage: "--out FILE [--format raw|vhd] [--os linux|windows] [--agent PATH] [--add FILE]... [--token-file F]",
  description:
    "linux: the agent bundle (runs without glibc, also in VTL2) and a cloud-init NoCloud seed (label cidata).\n" +
    "windows: cuvette-agent.exe, its cuvette_native.node and install-cuvette.cmd (label cuvette). --token-file puts the token on the disk\n" +
    "and the agent then requires it. The agent defaults to what `npm run build:agent` writes under dist/agent/.",
  options: [
    { name: "out", kind: "string", value: "FILE", description: "image file to write" },
    {
      name: "format",
      kind: "string",
      value: "raw|vhd",
      description: "raw disk or fixed VHD (default: vhd for a .vhd name, else raw)",
    },
    {
      name: "os",
      kind: "string",
      value: "linux|windows",
      description: "guest OS (default linux; use linux for VTL2)",
    },
    { name: "agent", kind: "string", value: "PATH", description: "agent executable to put on the disk" },
    { name: "add", kind: "list", value: "FILE", description: "extra file for the disk's root (repeatable)" },
  ],
  examples: [
    "cuvette deploy image --out /tmp/cidata.vhd --agent dist/agent/linux-x64/cuvette-agent",
    "cuvette deploy image --out /tmp/win.vhd --os windows --agent dist/agent/windows-x64/cuvette-agent.exe",
  ],
  run: async (ctx) => {
    expectPositionals(ctx.parsed, ctx.command, [])
    const out = str(ctx.parsed, "out")
    if (out === undefined)
      throw new UsageError({
        detail: "missing --out FILE for `cuvette deploy image`; see `cuvette deploy image --help`",
      })
    const formatText = str(ctx.parsed, "format") ?? (out.toLowerCase().endsWith(".vhd") ? "vhd" : "raw")
    if (formatText !== "raw" && formatText !== "vhd")
      throw new UsageError({ detail: `--format ${formatText}: use raw or vhd` })
    const os = str(ctx.parsed, "os") ?? "linux"
    if (os !== "linux" && os !== "windows")
      throw new UsageError({ detail: `--os ${os}: use linux or windows (linux also serves VTL2)` })
    const agent = str(ctx.parsed, "agent") ?? defaultAgent(os)
    if (!fs.existsSync(agent)) {
      throw new UsageError({
        detail: `no agent executable at ${agent}: pass --agent PATH, or build one with \`npm run build:agent\``,
      })
    }
    const tokenFile = ctx.globals.tokenFile
    const extra = list(ctx.parsed, "add").map((f) => ({ path: path.basename(f), source: f }))
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
          format: formatText,
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
}

/** The agent's address once it runs in VTL2 of `vm` (as ohcldiag-dev names the VM). */
export const vtl2Target = (vm: string, listen: string | undefined): string => {
  if (listen !== undefined) return `listen-unix:${listen}`
  // OpenVMM: the agent connects out to the host's <vtl2 vsock path>_4919, as the VMM relays it.
  if (vm.startsWith("vsock:")) return `listen-unix:${vm.slice("vsock:".length)}_4919`
  if (vm.startsWith("hyperv-id:")) return `${vm}?vtl=2`
  return `hyperv:${vm}?vtl=2`
}

const vtl2: Command = {
  name: "vtl2",
  summary: "start the agent in VTL2 (OpenHCL) through ohcldiag-dev and wait for it",
  usage: "--vm ID [--ohcldiag PATH] [--listen PATH] [--dry-run]",
  description:
    "ID is the VM as ohcldiag-dev takes it: a Hyper-V NAME, hyperv-id:GUID, or vsock:PATH (OpenVMM's VTL2\n" +
    "vsock socket). The cidata disk (`cuvette deploy image`) must be attached to VTL2. Then: wait for the diag\n" +
    "server, mount the disk by label, start the agent detached, and wait for it (--timeout, default 2m) on\n" +
    "hyperv:NAME?vtl=2, or on Unix socket PATH_4919 for OpenVMM (--listen PATH or -t T to choose).",
  options: [
    { name: "vm", kind: "string", value: "ID", description: "the VM: NAME, hyperv-id:GUID or vsock:PATH" },
    {
      name: "ohcldiag",
      kind: "string",
      value: "PATH",
      description: "the ohcldiag-dev executable (default: on PATH)",
    },
    {
      name: "listen",
      kind: "string",
      value: "PATH",
      description: "OpenVMM: accept the agent's connection on this Unix socket",
    },
    { name: "dry-run", kind: "boolean", description: "print the exact commands instead of running them" },
  ],
  examples: ["cuvette deploy vtl2 --vm vsock:/tmp/vm-vtl2.sock --dry-run"],
  run: async (ctx) => {
    expectPositionals(ctx.parsed, ctx.command, [])
    const vm = str(ctx.parsed, "vm")
    if (vm === undefined)
      throw new UsageError({
        detail: "missing --vm ID for `cuvette deploy vtl2`; see `cuvette deploy vtl2 --help`",
      })
    const ohcldiag = str(ctx.parsed, "ohcldiag")
    const dryRun = flag(ctx.parsed, "dry-run")
    const target = ctx.globals.target ?? vtl2Target(vm, str(ctx.parsed, "listen"))
    const timeoutMs = ctx.globals.timeoutMs ?? DEFAULT_WAIT_MS
    const Ohcldiag = await import("@cuvette/deploy/Ohcldiag")
    const options = {
      vm,
      ...(ohcldiag !== undefined ? { ohcldiag } : {}),
      dryRun,
      onStep: (step: string, detail: string) => {
        if (!ctx.out.json) ctx.out.note(`${step}: ${detail}`)
      },
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
    const result = await attempt(ctx, { action: `deploy the agent into VTL2 of ${vm}` }, () =>
      Ohcldiag.deploy(options),
    )
    const lines = result.commands.map((c) => Ohcldiag.formatCommand(c.argv))
    ctx.out.result(
      {
        vm,
        target,
        dryRun,
        commands: result.commands.map((c) => ({ step: c.step, argv: c.argv })),
        diagAttempts: result.diagAttempts,
      },
      dryRun
        ? [...lines, `# then wait for the agent on ${target}`]
        : `the agent answers in VTL2 of ${vm}: try \`cuvette -t '${target}' info\``,
    )
    return ExitCode.Ok
  },
}

/** `cuvette deploy`: the parent of `deploy image` and `deploy vtl2`; alone it is a usage error naming them. */
export const command: Command = {
  name: "deploy",
  summary: "put the agent into a guest: `deploy image` (cidata disk), `deploy vtl2` (OpenHCL)",
  usage: "image|vtl2 [options]",
  options: [],
  subcommands: [image, vtl2],
  examples: ["cuvette deploy image --help", "cuvette deploy vtl2 --help"],
  run: async () => ExitCode.Usage,
}
