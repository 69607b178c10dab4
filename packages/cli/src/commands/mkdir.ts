// `cuvette mkdir [-p] PATH`: creates a guest directory.
import { expectPositionals, flag, parseMode, str } from "../internal/args.js"
import type { Command } from "../internal/command.js"
import { guestPath } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

/** `cuvette mkdir`: creates a guest directory (-p: with its parents). */
export const command: Command = {
  name: "mkdir",
  summary: "create a guest directory",
  usage: "[-p] [--mode MODE] PATH",
  options: [
    {
      name: "parents",
      short: "p",
      kind: "boolean",
      description: "create missing parents; no error if it exists",
    },
    { name: "mode", kind: "string", value: "MODE", description: "permission bits, octal (default 755)" },
  ],
  examples: ["cuvette -t unix:/tmp/agent.sock mkdir -p /tmp/demo/a/b"],
  run: async (ctx) => {
    const [arg] = expectPositionals(ctx.parsed, ctx.command, ["PATH"])
    const path = guestPath(arg, ctx.command)
    const modeText = str(ctx.parsed, "mode")
    const mode = modeText !== undefined ? parseMode(modeText, "--mode") : undefined
    const agent = await ctx.connect()
    await ctx.attempt({ action: "create directory", path }, () =>
      agent.mkdir(path, { parents: flag(ctx.parsed, "parents"), ...(mode !== undefined ? { mode } : {}) }),
    )
    ctx.out.result({ target: ctx.target(), path, created: true })
    return ExitCode.Ok
  },
}
