// `cuvette info`: the agent's version, protocol, OS, kernel, arch, hostname, uptime and capabilities.
import { define } from "../internal/command.js"
import * as ExitCode from "../ExitCode.js"

const human = (info: Record<string, unknown>): Array<string> =>
  Object.entries(info).map(([k, v]) => {
    const text = Array.isArray(v)
      ? v.join(" ")
      : typeof v === "object" && v !== null
        ? Object.entries(v)
            .map(([a, b]) => `${a}=${String(b)}`)
            .join(" ")
        : String(v)
    return `${`${k}:`.padEnd(17)}${text}`
  })

export const command = define({
  name: "info",
  summary: "show the agent's version, protocol, OS, kernel, arch, hostname, uptime and capabilities",
  usage: "",
  options: {},
  args: [],
  needsAgent: true,
  examples: ["cuvette -t unix:/tmp/agent.sock info", "cuvette -t unix:/tmp/agent.sock --json info"],
  run: async (ctx) => {
    const agent = await ctx.connect()
    const info = await ctx.attempt({ action: "get info" }, () => agent.info())
    ctx.out.result({ target: ctx.target, ...info }, human({ target: ctx.target, ...info }))
    return ExitCode.Ok
  },
})
