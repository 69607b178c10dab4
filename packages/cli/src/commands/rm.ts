// `cuvette rm [-r] [-f] PATH`: removes a guest file, or a directory tree with -r.
import { define } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { guestPath } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

export const command = define({
  name: "rm",
  summary: "remove a guest file, or a directory with -r",
  usage: "[-r] [-f] PATH",
  options: {
    recursive: Opt.flag("recursive", "remove a directory and its contents", { short: "r" }),
    force: Opt.flag("force", "no error when the path does not exist", { short: "f" }),
  },
  args: ["PATH"],
  needsAgent: true,
  examples: ["cuvette -t unix:/tmp/agent.sock rm -rf /tmp/demo"],
  run: async (ctx, { recursive, force }) => {
    const path = guestPath(ctx.args[0], ctx.command)
    const agent = await ctx.connect()
    await ctx.attempt({ action: "remove", path }, () => agent.remove(path, { recursive, force }))
    ctx.out.result({ target: ctx.target, path, removed: true })
    return ExitCode.Ok
  },
})
