// `cuvette stat PATH`: type, size, mode, owner and modification time of a guest path.
import { define } from "../internal/command.js"
import { guestPath } from "../internal/paths.js"
import { modeString } from "./ls.js"
import * as ExitCode from "../ExitCode.js"

export const command = define({
  name: "stat",
  summary: "show type, size, mode, owner and modification time of a guest path",
  usage: "PATH",
  options: {},
  args: ["PATH"],
  needsAgent: true,
  examples: ["cuvette -t unix:/tmp/agent.sock stat /etc/hostname"],
  run: async (ctx) => {
    const path = guestPath(ctx.args[0], ctx.command)
    const agent = await ctx.connect()
    const s = await ctx.attempt({ action: "stat", path }, () => agent.stat(path))
    ctx.out.result({ target: ctx.target, ...s, path }, [
      `path:     ${path}${s.target !== undefined ? ` -> ${s.target}` : ""}`,
      `type:     ${s.type}`,
      `size:     ${s.size}`,
      `mode:     ${(s.mode & 0o7777).toString(8).padStart(4, "0")} (${modeString(s.type, s.mode)})`,
      `owner:    ${s.uid ?? "?"}:${s.gid ?? "?"}`,
      `modified: ${new Date(s.mtimeMs).toISOString()}`,
    ])
    return ExitCode.Ok
  },
})
