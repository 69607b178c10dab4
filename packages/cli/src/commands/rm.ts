// `cuvette rm [-r] [-f] PATH`: removes a guest file, or a directory tree with -r. The root directory
// is refused unless --no-preserve-root, as GNU rm does.
import * as Path from "@cuvette/protocol/Path"
import { define } from "../internal/command.js"
import { CliError } from "../internal/errors.js"
import * as Opt from "../internal/option.js"
import { pathJson } from "../internal/output.js"
import { ESCAPED_HELP, guestPathArg, shown } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

/** The agent's DENIED for a path only it could resolve to the root (a relative one). */
const isRootRefusal = (e: unknown) =>
  (e as { code?: unknown })?.code === "DENIED" &&
  /it is the root directory/.test(String((e as Error).message))

export const command = define({
  name: "rm",
  summary: "remove a guest file, or a directory with -r",
  usage: "[-r] [-f] [--no-preserve-root] PATH",
  description:
    "The guest's root directory, however it is written (/, //, /tmp/..), is refused unless\n" +
    "--no-preserve-root is given, as GNU rm does.",
  options: {
    recursive: Opt.flag("recursive", "remove a directory and its contents", { short: "r" }),
    force: Opt.flag("force", "no error when the path does not exist", { short: "f" }),
    noPreserveRoot: Opt.flag("no-preserve-root", "allow removing the guest's root directory /"),
    escaped: Opt.flag("escaped", ESCAPED_HELP, { short: "b" }),
  },
  args: ["PATH"],
  needsAgent: true,
  examples: ["cuvette -H unix:/tmp/agent.sock rm -rf /tmp/demo"],
  run: async (ctx, { recursive, force, noPreserveRoot, escaped }) => {
    const path = guestPathArg(ctx.args[0], ctx.command, escaped)
    const refused = new CliError({
      code: "DENIED",
      detail: `cannot remove :${shown(path)} on ${ctx.target}: it is the root directory of the guest; refusing to remove it (pass --no-preserve-root to remove it anyway)`,
      exitCode: ExitCode.Failed,
      path: shown(path),
    })
    // Before connecting: nothing reaches the guest.
    if (!noPreserveRoot && Path.isRoot(path)) throw refused
    const agent = await ctx.connect()
    await ctx.attempt({ action: "remove", path: shown(path) }, () =>
      agent.remove(path, { recursive, force, noPreserveRoot }).catch((e: unknown) => {
        throw isRootRefusal(e) ? refused : e
      }),
    )
    ctx.out.result({ target: ctx.target, ...pathJson("path", path), removed: true })
    return ExitCode.Ok
  },
})
