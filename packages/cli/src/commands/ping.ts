// `cuvette ping`: checks that the agent answers and prints the round trip.
import { define } from "../internal/command.js"
import * as ExitCode from "../ExitCode.js"

export const command = define({
  name: "ping",
  summary: "check that the agent answers; prints the round trip",
  usage: "",
  options: {},
  args: [],
  needsAgent: true,
  examples: ["cuvette -t unix:/tmp/agent.sock ping"],
  run: async (ctx) => {
    const agent = await ctx.connect()
    const ms = await ctx.attempt({ action: "ping" }, () => agent.ping())
    ctx.out.result({ target: ctx.target, rttMs: ms }, `pong from ${ctx.target}: ${ms.toFixed(3)} ms`)
    return ExitCode.Ok
  },
})
