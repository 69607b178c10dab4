// `cuvette ping`: checks that the agent answers and prints the round trip.
import { expectPositionals } from "../internal/args.js"
import type { Command } from "../internal/command.js"
import * as ExitCode from "../ExitCode.js"

/** `cuvette ping`: checks that the agent answers and prints the round trip. */
export const command: Command = {
  name: "ping",
  summary: "check that the agent answers; prints the round trip",
  usage: "",
  options: [],
  examples: ["cuvette -t unix:/tmp/agent.sock ping"],
  run: async (ctx) => {
    expectPositionals(ctx.parsed, ctx.command, [])
    const agent = await ctx.connect()
    const ms = await ctx.attempt({ action: "ping" }, () => agent.ping())
    ctx.out.result({ target: ctx.target(), rttMs: ms }, `pong from ${ctx.target()}: ${ms.toFixed(3)} ms`)
    return ExitCode.Ok
  },
}
