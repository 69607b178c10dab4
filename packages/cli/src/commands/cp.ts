// `cuvette cp [-r] SRC DST`: copies files between this host and the guest, either direction; a guest
// path is written `:PATH`. Trees with -r stream (Tree): listings are read as they arrive and a few
// files copy at once, so a directory of a million files needs bounded memory. A progress bar (bytes,
// rate, ETA) on stderr when it is a terminal, never in --json mode.
import * as fs from "node:fs"
import * as hostPath from "node:path"
import * as Path from "@cuvette/protocol/Path"
import type { Agent } from "../internal/client.js"
import { define, type AgentContext } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { CliError, type FailureContext, UsageError } from "../internal/errors.js"
import * as Missing from "../internal/missing.js"
import * as Progress from "../internal/progress.js"
import {
  asHost,
  guestBasename,
  guestJoin,
  type GuestPath,
  guestPathArg,
  ESCAPED_HELP,
  hostJoin,
  isGuest,
  shown,
  shownHost,
} from "../internal/paths.js"
import * as Tree from "../internal/tree.js"
import * as ExitCode from "../ExitCode.js"

const notDir = (ctx: AgentContext, shown: string, path: string | undefined): CliError =>
  new CliError({
    code: "EISDIR",
    detail: `cannot copy ${shown}${path !== undefined ? ` on ${ctx.target}` : ""}: is a directory (use \`cuvette cp -r\`)`,
    exitCode: ExitCode.Failed,
    ...(path !== undefined ? { path } : {}),
  })

/**
 * Entries of a host directory, a batch at a time (opendir), with the lstat details a copy needs. Names
 * are read as bytes on POSIX hosts, so one that is not UTF-8 is copied as it is.
 */
async function* hostEntries(dir: Path.Path, platform: NodeJS.Platform): AsyncGenerator<Tree.Entry> {
  const handle = await fs.promises.opendir(asHost(dir), {
    bufferSize: 256,
    encoding: platform === "win32" ? "utf8" : "buffer",
  } as fs.OpenDirOptions)
  try {
    let batch: Array<Path.Path> = []
    const details = (name: Path.Path) =>
      fs.promises.lstat(asHost(hostJoin(asHost(dir), name, platform))).then(
        (s): Tree.Entry => ({
          name,
          type: s.isFile()
            ? "file"
            : s.isDirectory()
              ? "directory"
              : s.isSymbolicLink()
                ? "symlink"
                : "other",
          size: s.size,
          mode: s.mode & 0o7777,
        }),
      )
    for await (const d of handle as AsyncIterable<fs.Dirent | Buffer>) {
      // Bun yields a bare Buffer for each entry of a directory opened with encoding "buffer".
      const name = (Buffer.isBuffer(d) ? d : d.name) as string | Buffer
      batch.push(typeof name === "string" ? name : Path.fromBytes(name))
      if (batch.length < 256) continue
      yield* await Promise.all(batch.map(details))
      batch = []
    }
    yield* await Promise.all(batch.map(details))
  } finally {
    await handle.close().catch(() => {})
  }
}

/**
 * A listing of one directory of a tree copy whose failure names that directory (`what`), not the
 * tree's root that the whole copy is attempted under.
 */
async function* listing(
  ctx: AgentContext,
  what: Omit<FailureContext, "target">,
  entries: AsyncIterable<Tree.Entry>,
): AsyncGenerator<Tree.Entry> {
  const it = entries[Symbol.asyncIterator]()
  try {
    for (;;) {
      const next = await ctx.attempt(what, () => it.next())
      if (next.done === true) return
      yield next.value
    }
  } finally {
    await it.return?.()
  }
}

/** A destination that does not exist because a directory above it is missing (or a file): say which. */
const checkDestination = async <P>(ctx: AgentContext, side: Missing.Side<P>, dest: P) => {
  const why = await Missing.whyMissing(side, dest, "destination")
  if (why !== undefined)
    throw new CliError({
      code: "ENOENT",
      detail: `cannot copy to ${side.show(dest)}${(side as unknown) === Missing.host ? ": host:" : ` on ${ctx.target}:`} ${why}`,
      exitCode: ExitCode.Failed,
    })
}

interface Copied {
  readonly dest: string
  readonly counts: Tree.Counts
}

const finishTree = (ctx: AgentContext, counts: Tree.Counts, firstSkipped: ReadonlyArray<string>) => {
  if (counts.skipped === 0) return
  const more = counts.skipped - firstSkipped.length
  ctx.out.note(
    `skipped ${counts.skipped} ${counts.skipped === 1 ? "entry" : "entries"} (not a regular file or directory): ${firstSkipped.join(", ")}${more > 0 ? ` and ${more} more` : ""}`,
  )
}

/** Runs a tree copy with a progress bar; the total comes from a first pass, only when a bar is shown. */
const runTree = async (
  ctx: AgentContext,
  sides: Tree.Sides,
  from: Path.Path,
  to: Path.Path,
  mode: number,
  label: string,
): Promise<Tree.Counts> => {
  const bar = ctx.io.stderr.isTTY === true && !ctx.out.json
  const total = bar ? await Tree.measure(sides, from) : undefined
  const progress = Progress.make(ctx.io.stderr, bar, label, total)
  let done = 0
  const skipped: Array<string> = []
  const counts = await Tree.copyTree(
    sides,
    from,
    to,
    mode,
    (n) => progress.update((done += n), total),
    (p) => void (skipped.length < 10 && skipped.push(shown(p))),
  )
  progress.finish()
  finishTree(ctx, counts, skipped)
  return counts
}

/** The client reports a running total; the tree copier counts increments. */
const increments = (onBytes: (n: number) => void) => {
  let last = 0
  return (total: number) => {
    onBytes(total - last)
    last = total
  }
}

/** One file (no -r), with its own progress bar. */
const copySingle = async (
  ctx: AgentContext,
  label: string,
  job: Tree.FileJob,
  copyFile: (f: Tree.FileJob, onBytes: (n: number) => void) => Promise<void>,
): Promise<Tree.Counts> => {
  const progress = Progress.make(ctx.io.stderr, !ctx.out.json, label, job.size)
  let done = 0
  await copyFile(job, (n) => progress.update((done += n), job.size))
  progress.finish()
  return { files: 1, directories: 0, bytes: job.size, skipped: 0 }
}

const upload = async (
  ctx: AgentContext,
  agent: Agent,
  src: string,
  dstArg: GuestPath,
  recursive: boolean,
): Promise<Copied> => {
  const srcStat = await ctx.attempt({ action: "copy", hostPath: src }, () => fs.promises.stat(src))
  const guest = Missing.guest(agent)
  const into = (await guest.kind(dstArg)) === "directory"
  const dest = into ? guestJoin(dstArg, hostPath.basename(src)) : dstArg
  if (!into) await checkDestination(ctx, guest, dest)
  const copyFile = (f: Tree.FileJob, onBytes: (n: number) => void) =>
    ctx
      .attempt({ action: "copy to", path: shown(f.to), hostPath: shown(f.from) }, () =>
        agent.upload(
          // A host name that is not UTF-8: read through a stream (a string source is a path, bytes are content).
          typeof f.from === "string"
            ? f.from
            : fs.createReadStream(asHost(f.from), { highWaterMark: 1024 * 1024 }),
          f.to,
          { mode: f.mode, size: f.size, onProgress: increments(onBytes) },
        ),
      )
      .then(() => {})
  if (srcStat.isDirectory()) {
    if (!recursive) throw notDir(ctx, src, undefined)
    const sides: Tree.Sides = {
      entries: (dir) =>
        listing(ctx, { action: "list", hostPath: shown(dir) }, hostEntries(dir, ctx.io.platform)),
      sourceJoin: (dir, name) => hostJoin(asHost(dir), name, ctx.io.platform),
      destinationJoin: guestJoin,
      makeDirectory: (dir) =>
        ctx.attempt({ action: "create directory", path: shown(dir) }, () =>
          agent.mkdir(dir, { parents: true, mode: 0o700 }),
        ),
      setMode: (dir, mode) =>
        ctx.attempt({ action: "set the mode of", path: shown(dir) }, () => agent.chmod(dir, mode)),
      copyFile,
    }
    const counts = await ctx.attempt({ action: "copy", hostPath: src }, () =>
      runTree(ctx, sides, src, dest, srcStat.mode & 0o777, `${hostPath.basename(src)} → :${shown(dest)}`),
    )
    return { dest: `:${shown(dest)}`, counts }
  }
  const job = { from: src, to: dest, size: srcStat.size, mode: srcStat.mode & 0o777 }
  const counts = await copySingle(ctx, `${hostPath.basename(src)} → :${shown(dest)}`, job, copyFile)
  return { dest: `:${shown(dest)}`, counts }
}

const download = async (
  ctx: AgentContext,
  agent: Agent,
  src: GuestPath,
  dstArg: string,
  recursive: boolean,
): Promise<Copied> => {
  const srcStat = await ctx.attempt({ action: "copy", path: shown(src) }, () =>
    agent.stat(src, { follow: true }),
  )
  const into = (await Missing.host.kind(dstArg)) === "directory"
  const dest = into ? hostJoin(dstArg, guestBasename(src), ctx.io.platform) : dstArg
  if (!into) await checkDestination(ctx, Missing.host, dstArg)
  const copyFile = (f: Tree.FileJob, onBytes: (n: number) => void) =>
    ctx.attempt({ action: "copy", path: shown(f.from), hostPath: shownHost(asHost(f.to)) }, async () => {
      await agent.download(f.from, asHost(f.to), { onProgress: increments(onBytes) })
      await fs.promises.chmod(asHost(f.to), f.mode)
    })
  if (srcStat.type === "directory") {
    if (!recursive) throw notDir(ctx, `:${shown(src)}`, shown(src))
    const sides: Tree.Sides = {
      entries: (dir) => listing(ctx, { action: "list", path: shown(dir) }, agent.entries(dir)),
      sourceJoin: guestJoin,
      // A name this host cannot have (not UTF-8 on Windows) fails the copy, naming it.
      destinationJoin: (dir, name) => hostJoin(asHost(dir), name, ctx.io.platform),
      makeDirectory: (dir) =>
        ctx.attempt({ action: "create directory", hostPath: shown(dir) }, async () => {
          await fs.promises.mkdir(asHost(dir), { recursive: true, mode: 0o700 })
        }),
      setMode: (dir, mode) =>
        ctx.attempt({ action: "set the mode of", hostPath: shown(dir) }, () =>
          fs.promises.chmod(asHost(dir), mode),
        ),
      copyFile,
    }
    const counts = await ctx.attempt({ action: "list", path: shown(src) }, () =>
      runTree(ctx, sides, src, dest, srcStat.mode & 0o777, `:${shown(src)} → ${shownHost(dest)}`),
    )
    return { dest: shownHost(dest), counts }
  }
  const job = { from: src, to: dest, size: srcStat.size, mode: srcStat.mode & 0o777 }
  return {
    dest: shownHost(dest),
    counts: await copySingle(ctx, `:${shown(src)} → ${shownHost(dest)}`, job, copyFile),
  }
}

export const command = define({
  name: "cp",
  summary: "copy files between this host and the guest (a guest path is written :PATH)",
  usage: "[-r] SRC DST",
  description:
    "Exactly one of SRC and DST is a guest path, written :PATH. When DST is an existing directory the copy\n" +
    "goes inside it. File and directory modes are kept. With -r, symlinks and special files are skipped\n" +
    "(and counted). A progress bar shows on stderr when it is a terminal.",
  options: {
    recursive: Opt.flag("recursive", "copy a directory tree", { short: "r" }),
    escaped: Opt.flag("escaped", ESCAPED_HELP.replace("PATH is", "the guest :PATH is"), { short: "b" }),
  },
  args: ["SRC", "DST"],
  needsAgent: true,
  examples: [
    "cuvette -H unix:/tmp/agent.sock cp ./build.tar :/tmp/build.tar",
    "cuvette -H unix:/tmp/agent.sock cp :/var/log/syslog ./syslog",
    "cuvette -H unix:/tmp/agent.sock cp -r ./tree :/tmp/tree",
  ],
  run: async (ctx, { recursive, escaped }) => {
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
      ? await upload(ctx, agent, a, guestPathArg(b, ctx.command, escaped), recursive)
      : await download(ctx, agent, guestPathArg(a, ctx.command, escaped), b, recursive)
    ctx.out.result({
      target: ctx.target,
      source: a,
      destination: r.dest,
      files: r.counts.files,
      directories: r.counts.directories,
      bytes: r.counts.bytes,
      skipped: r.counts.skipped,
      durationMs: Date.now() - start,
    })
    return ExitCode.Ok
  },
})
