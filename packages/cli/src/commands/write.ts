// `cuvette write GUEST_PATH`: writes stdin to a guest file (atomically: readers never see half a file).
import { define } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { guestPath } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

export const command = define({
  name: "write",
  summary: "write stdin to a guest file",
  usage: "[--mode MODE] [-p] GUEST_PATH",
  options: {
    mode: Opt.mode("mode", "MODE", "permission bits of a new file, octal (default 644)"),
    parents: Opt.flag("parents", "create missing parent directories", { short: "p" }),
  },
  args: ["GUEST_PATH"],
  needsAgent: true,
  examples: ["echo hello | cuvette -t unix:/tmp/agent.sock write -p /tmp/demo/hello.txt"],
  run: async (ctx, { mode, parents }) => {
    const path = guestPath(ctx.args[0], ctx.command)
    const agent = await ctx.connect()
    if (ctx.io.stdin.isTTY === true) ctx.out.note("reading from the terminal; end with Ctrl-D")
    const { bytes } = await ctx.attempt({ action: "write", path }, () =>
      agent.upload(ctx.io.stdin, path, {
        ...(mode !== undefined ? { mode } : {}),
        ...(parents ? { createParents: true } : {}),
      }),
    )
    ctx.out.result({ target: ctx.target, path, bytes })
    return ExitCode.Ok
  },
})
