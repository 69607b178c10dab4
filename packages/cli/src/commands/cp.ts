// `cuvette cp [-r] SRC DST`: copies files between this host and the guest, either direction; a guest
// path is written `:PATH`. Trees with -r (list/mkdir on the guest, fs on the host). A progress bar
// (bytes, rate, ETA) on stderr when it is a terminal, never in --json mode.
import * as fs from "node:fs"
import * as hostPath from "node:path"
import * as guestPosix from "node:path/posix"
import type { Agent } from "../internal/client.js"
import { define, type AgentContext } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { CliError, UsageError } from "../internal/errors.js"
import * as Progress from "../internal/progress.js"
import { guestPath, isGuest } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

interface FileJob {
  readonly from: string
  readonly to: string
  readonly size: number
  readonly mode: number
}

interface Plan {
  /** Directories to create at the destination, parents first. */
  readonly dirs: Array<string>
  readonly files: Array<FileJob>
  /** Entries skipped (symlinks, devices), for a note. */
  readonly skipped: Array<string>
}

const totalBytes = (plan: Plan) => plan.files.reduce((n, f) => n + f.size, 0)

const notDir = (ctx: AgentContext, shown: string, path: string | undefined): CliError =>
  new CliError({
    code: "EISDIR",
    detail: `cannot copy ${shown}${path !== undefined ? ` on ${ctx.target}` : ""}: is a directory (use \`cuvette cp -r\`)`,
    exitCode: ExitCode.Failed,
    ...(path !== undefined ? { path } : {}),
  })

const guestStatOrUndefined = async (agent: Agent, path: string) => {
  try {
    return await agent.stat(path)
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return undefined
    throw error
  }
}

const planHostTree = async (root: string, dest: string, plan: Plan): Promise<void> => {
  plan.dirs.push(dest)
  const entries = await fs.promises.readdir(root, { withFileTypes: true })
  entries.sort((a, b) => (a.name < b.name ? -1 : 1))
  for (const e of entries) {
    const from = hostPath.join(root, e.name)
    const to = guestPosix.join(dest, e.name)
    if (e.isDirectory()) await planHostTree(from, to, plan)
    else if (e.isFile()) {
      const s = await fs.promises.stat(from)
      plan.files.push({ from, to, size: s.size, mode: s.mode & 0o777 })
    } else plan.skipped.push(from)
  }
}

const planGuestTree = async (agent: Agent, root: string, dest: string, plan: Plan): Promise<void> => {
  plan.dirs.push(dest)
  const entries = [...(await agent.list(root))].sort((a, b) => ((a.name ?? "") < (b.name ?? "") ? -1 : 1))
  for (const e of entries) {
    const name = e.name ?? ""
    const from = guestPosix.join(root, name)
    const to = hostPath.join(dest, name)
    if (e.type === "directory") await planGuestTree(agent, from, to, plan)
    else if (e.type === "file") plan.files.push({ from, to, size: e.size, mode: e.mode & 0o777 })
    else plan.skipped.push(`:${from}`)
  }
}

const upload = async (ctx: AgentContext, agent: Agent, src: string, dstArg: string, recursive: boolean) => {
  const srcStat = await ctx.attempt({ action: "copy", hostPath: src }, () => fs.promises.stat(src))
  const existing = await ctx.attempt({ action: "copy to", path: dstArg }, () =>
    guestStatOrUndefined(agent, dstArg),
  )
  const dest = existing?.type === "directory" ? guestPosix.join(dstArg, hostPath.basename(src)) : dstArg
  const plan: Plan = { dirs: [], files: [], skipped: [] }
  if (srcStat.isDirectory()) {
    if (!recursive) throw notDir(ctx, src, undefined)
    await ctx.attempt({ action: "copy", hostPath: src }, () => planHostTree(src, dest, plan))
  } else {
    plan.files.push({ from: src, to: dest, size: srcStat.size, mode: srcStat.mode & 0o777 })
  }
  const total = totalBytes(plan)
  const progress = Progress.make(ctx.io.stderr, !ctx.out.json, `${hostPath.basename(src)} → :${dest}`, total)
  for (const dir of plan.dirs) {
    await ctx.attempt({ action: "create directory", path: dir }, () => agent.mkdir(dir, { parents: true }))
  }
  let base = 0
  for (const f of plan.files) {
    await ctx.attempt({ action: "copy to", path: f.to, hostPath: f.from }, () =>
      agent.upload(f.from, f.to, {
        mode: f.mode,
        size: f.size,
        onProgress: (done) => progress.update(base + done, total),
      }),
    )
    base += f.size
    progress.update(base, total)
  }
  progress.finish()
  return { plan, dest: `:${dest}`, total }
}

const download = async (ctx: AgentContext, agent: Agent, src: string, dstArg: string, recursive: boolean) => {
  const srcStat = await ctx.attempt({ action: "copy", path: src }, () => agent.stat(src))
  const existing = await fs.promises.stat(dstArg).catch(() => undefined)
  const dest = existing?.isDirectory() === true ? hostPath.join(dstArg, guestPosix.basename(src)) : dstArg
  const plan: Plan = { dirs: [], files: [], skipped: [] }
  if (srcStat.type === "directory") {
    if (!recursive) throw notDir(ctx, `:${src}`, src)
    await ctx.attempt({ action: "list", path: src }, () => planGuestTree(agent, src, dest, plan))
  } else {
    plan.files.push({ from: src, to: dest, size: srcStat.size, mode: srcStat.mode & 0o777 })
  }
  const total = totalBytes(plan)
  const progress = Progress.make(ctx.io.stderr, !ctx.out.json, `:${src} → ${dest}`, total)
  for (const dir of plan.dirs) {
    await ctx.attempt({ action: "create directory", hostPath: dir }, () =>
      fs.promises.mkdir(dir, { recursive: true }),
    )
  }
  let base = 0
  for (const f of plan.files) {
    await ctx.attempt({ action: "copy", path: f.from, hostPath: f.to }, async () => {
      await agent.download(f.from, f.to, { onProgress: (done) => progress.update(base + done, total) })
      if (f.mode !== 0) await fs.promises.chmod(f.to, f.mode)
    })
    base += f.size
    progress.update(base, total)
  }
  progress.finish()
  return { plan, dest, total }
}

export const command = define({
  name: "cp",
  summary: "copy files between this host and the guest (a guest path is written :PATH)",
  usage: "[-r] SRC DST",
  description:
    "Exactly one of SRC and DST is a guest path, written :PATH. When DST is an existing directory the copy\n" +
    "goes inside it. Modes are kept. A progress bar shows on stderr when it is a terminal.",
  options: { recursive: Opt.flag("recursive", "copy a directory tree", { short: "r" }) },
  args: ["SRC", "DST"],
  needsAgent: true,
  examples: [
    "cuvette -t unix:/tmp/agent.sock cp ./build.tar :/tmp/build.tar",
    "cuvette -t unix:/tmp/agent.sock cp :/var/log/syslog ./syslog",
    "cuvette -t unix:/tmp/agent.sock cp -r ./tree :/tmp/tree",
  ],
  run: async (ctx, { recursive }) => {
    const [a, b] = ctx.args
    if (isGuest(a) === isGuest(b)) {
      throw new UsageError({
        detail: isGuest(a)
          ? "both SRC and DST are guest paths; copy inside the guest with `cuvette exec -- cp`"
          : "one of SRC and DST must be a guest path, written :PATH (e.g. `cuvette cp ./f :/tmp/f`)",
      })
    }
    const agent = await ctx.connect()
    const start = Date.now()
    const r = isGuest(b)
      ? await upload(ctx, agent, a, guestPath(b, ctx.command), recursive)
      : await download(ctx, agent, guestPath(a, ctx.command), b, recursive)
    const durationMs = Date.now() - start
    for (const s of r.plan.skipped) ctx.out.note(`skipped ${s} (not a regular file or directory)`)
    ctx.out.result({
      target: ctx.target,
      source: a,
      destination: r.dest,
      files: r.plan.files.length,
      directories: r.plan.dirs.length,
      bytes: r.total,
      durationMs,
    })
    return ExitCode.Ok
  },
})
