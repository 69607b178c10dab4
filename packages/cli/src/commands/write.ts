// `cuvette write GUEST_PATH`: writes stdin to a guest file (atomically: readers never see half a file).
import { expectPositionals, flag, parseMode, str } from "../internal/args.js"
import type { Command } from "../internal/command.js"
import { guestPath } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

/** `cuvette write`: writes stdin to a guest file. */
export const command: Command = {
  name: "write",
  summary: "write stdin to a guest file",
  usage: "[--mode MODE] [-p] GUEST_PATH",
  options: [
    {
      name: "mode",
      kind: "string",
      value: "MODE",
      description: "permission bits of a new file, octal (default 644)",
    },
    { name: "parents", short: "p", kind: "boolean", description: "create missing parent directories" },
  ],
  examples: ["echo hello | cuvette -t unix:/tmp/agent.sock write -p /tmp/demo/hello.txt"],
  run: async (ctx) => {
    const [arg] = expectPositionals(ctx.parsed, ctx.command, ["GUEST_PATH"])
    const path = guestPath(arg, ctx.command)
    const modeText = str(ctx.parsed, "mode")
    const mode = modeText !== undefined ? parseMode(modeText, "--mode") : undefined
    const agent = await ctx.connect()
    if (ctx.io.stdin.isTTY === true) ctx.out.note("reading from the terminal; end with Ctrl-D")
    const { bytes } = await ctx.attempt({ action: "write", path }, () =>
      agent.upload(ctx.io.stdin, path, {
        ...(mode !== undefined ? { mode } : {}),
        ...(flag(ctx.parsed, "parents") ? { createParents: true } : {}),
      }),
    )
    ctx.out.result({ target: ctx.target(), path, bytes })
    return ExitCode.Ok
  },
}
