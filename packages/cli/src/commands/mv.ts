// `cuvette mv SRC DST`: renames a guest path (both paths on the guest).
import { define } from "../internal/command.js"
import { guestPath } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

export const command = define({
  name: "mv",
  summary: "rename or move a guest path",
  usage: "SRC DST",
  options: {},
  args: ["SRC", "DST"],
  needsAgent: true,
  examples: ["cuvette -t unix:/tmp/agent.sock mv /tmp/demo/hello.txt /tmp/demo/hi.txt"],
  run: async (ctx) => {
    const [a, b] = ctx.args
    const from = guestPath(a, ctx.command)
    const to = guestPath(b, ctx.command)
    const agent = await ctx.connect()
    await ctx.attempt({ action: `move (to :${to})`, path: from }, () => agent.rename(from, to))
    ctx.out.result({ target: ctx.target, from, to })
    return ExitCode.Ok
  },
})
