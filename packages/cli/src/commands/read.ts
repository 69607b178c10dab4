// `cuvette read GUEST_PATH`: streams a guest file to stdout (in --json mode: one document with its text).
import { define } from "../internal/command.js"
import { encodeBytes } from "../internal/output.js"
import { guestPath } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

export const command = define({
  name: "read",
  summary: "write a guest file to stdout",
  usage: "GUEST_PATH",
  options: {},
  args: ["GUEST_PATH"],
  needsAgent: true,
  streamsStdout: true,
  examples: [
    "cuvette -t unix:/tmp/agent.sock read /etc/os-release",
    "cuvette -t unix:/tmp/agent.sock read :/var/log/syslog > syslog",
  ],
  run: async (ctx) => {
    const [arg] = ctx.args
    const path = guestPath(arg, ctx.command)
    const agent = await ctx.connect()
    if (ctx.out.json) {
      const bytes = await ctx.attempt({ action: "read", path }, () => agent.readFile(path))
      const { text, encoding } = encodeBytes(bytes)
      ctx.out.result({ target: ctx.target, path, bytes: bytes.byteLength, encoding, content: text })
      return ExitCode.Ok
    }
    // end: false keeps our stdout open; the client waits for stdout's drain between chunks.
    await ctx.attempt({ action: "read", path }, () => agent.download(path, ctx.io.stdout, { end: false }))
    return ExitCode.Ok
  },
})
