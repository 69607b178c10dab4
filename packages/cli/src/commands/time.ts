// `cuvette time`: the guest's clock and time zone, and how far it is from this host's clock.
import { define } from "../internal/command.js"
import * as ExitCode from "../ExitCode.js"

export const command = define({
  name: "time",
  summary: "show the guest's clock and its offset from this host",
  usage: "",
  options: {},
  args: [],
  needsAgent: true,
  examples: ["cuvette -t unix:/tmp/agent.sock time"],
  run: async (ctx) => {
    const agent = await ctx.connect()
    const before = Date.now()
    const t = await ctx.attempt({ action: "read the clock" }, () => agent.time())
    const after = Date.now()
    // The guest read its clock somewhere in the round trip; the midpoint is the best guess.
    const offsetMs = Math.round(t.unixMs - (before + after) / 2)
    const side = offsetMs >= 0 ? "ahead of" : "behind"
    ctx.out.result(
      {
        target: ctx.target,
        unixMs: t.unixMs,
        iso: new Date(t.unixMs).toISOString(),
        timezone: t.timezone,
        offsetMs,
      },
      `${new Date(t.unixMs).toISOString()} (${t.timezone}); ${Math.abs(offsetMs)} ms ${side} this host`,
    )
    return ExitCode.Ok
  },
})
