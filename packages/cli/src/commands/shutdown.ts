// `cuvette shutdown [--reboot]`: powers the guest off (or reboots it). The agent replies first, then acts.
import { expectPositionals, flag } from "../internal/args.js"
import type { Command } from "../internal/command.js"
import * as ExitCode from "../ExitCode.js"

/** `cuvette shutdown`: powers the guest off, or reboots it. */
export const command: Command = {
  name: "shutdown",
  summary: "power the guest off, or reboot it with --reboot",
  usage: "[--reboot]",
  options: [{ name: "reboot", kind: "boolean", description: "reboot instead of powering off" }],
  examples: ["cuvette -t unix:/tmp/agent.sock shutdown --reboot"],
  run: async (ctx) => {
    expectPositionals(ctx.parsed, ctx.command, [])
    const reboot = flag(ctx.parsed, "reboot")
    const agent = await ctx.connect()
    await ctx.attempt({ action: reboot ? "reboot" : "shut down" }, () => agent.shutdown({ reboot }))
    const action = reboot ? "reboot" : "poweroff"
    ctx.out.result({ target: ctx.target(), action }, `${action} requested on ${ctx.target()}`)
    return ExitCode.Ok
  },
}
