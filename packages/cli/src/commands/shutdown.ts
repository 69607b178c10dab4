// `cuvette shutdown [--reboot]`: powers the guest off (or reboots it). The agent replies first, then acts.
import { define } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import * as ExitCode from "../ExitCode.js"

export const command = define({
  name: "shutdown",
  summary: "power the guest off, or reboot it with --reboot",
  usage: "[--reboot]",
  options: { reboot: Opt.flag("reboot", "reboot instead of powering off") },
  args: [],
  needsAgent: true,
  examples: ["cuvette -t unix:/tmp/agent.sock shutdown --reboot"],
  run: async (ctx, { reboot }) => {
    const agent = await ctx.connect()
    await ctx.attempt({ action: reboot ? "reboot" : "shut down" }, () => agent.shutdown({ reboot }))
    const action = reboot ? "reboot" : "poweroff"
    ctx.out.result({ target: ctx.target, action }, `${action} requested on ${ctx.target}`)
    return ExitCode.Ok
  },
})
