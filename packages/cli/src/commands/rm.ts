// `cuvette rm [-r] [-f] PATH`: removes a guest file, or a directory tree with -r.
import { expectPositionals, flag } from "../internal/args.js"
import type { Command } from "../internal/command.js"
import { guestPath } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

/** `cuvette rm`: removes a guest file, or a tree with -r. */
export const command: Command = {
  name: "rm",
  summary: "remove a guest file, or a directory with -r",
  usage: "[-r] [-f] PATH",
  options: [
    { name: "recursive", short: "r", kind: "boolean", description: "remove a directory and its contents" },
    { name: "force", short: "f", kind: "boolean", description: "no error when the path does not exist" },
  ],
  examples: ["cuvette -t unix:/tmp/agent.sock rm -rf /tmp/demo"],
  run: async (ctx) => {
    const [arg] = expectPositionals(ctx.parsed, ctx.command, ["PATH"])
    const path = guestPath(arg, ctx.command)
    const recursive = flag(ctx.parsed, "recursive")
    const force = flag(ctx.parsed, "force")
    const agent = await ctx.connect()
    await ctx.attempt({ action: "remove", path }, () => agent.remove(path, { recursive, force }))
    ctx.out.result({ target: ctx.target(), path, removed: true })
    return ExitCode.Ok
  },
}
