// `cuvette mkdir [-p] PATH`: creates a guest directory.
import { define } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { guestPath } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

export const command = define({
  name: "mkdir",
  summary: "create a guest directory",
  usage: "[-p] [--mode MODE] PATH",
  options: {
    parents: Opt.flag("parents", "create missing parents; no error if it exists", { short: "p" }),
    mode: Opt.mode("mode", "MODE", "permission bits, octal (default 755)"),
  },
  args: ["PATH"],
  needsAgent: true,
  examples: ["cuvette -t unix:/tmp/agent.sock mkdir -p /tmp/demo/a/b"],
  run: async (ctx, { parents, mode }) => {
    const path = guestPath(ctx.args[0], ctx.command)
    const agent = await ctx.connect()
    await ctx.attempt({ action: "create directory", path }, () =>
      agent.mkdir(path, { parents, ...(mode !== undefined ? { mode } : {}) }),
    )
    ctx.out.result({ target: ctx.target, path, created: true })
    return ExitCode.Ok
  },
})
