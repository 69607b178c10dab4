// `cuvette stat [-L] PATH`: type, size, mode, owner and modification time of a guest path; of a symlink
// itself (with its target) unless -L follows it, as stat(1) does.
import { define } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { guestPath } from "../internal/paths.js"
import { modeString } from "./ls.js"
import * as ExitCode from "../ExitCode.js"

export const command = define({
  name: "stat",
  summary: "show type, size, mode, owner and modification time of a guest path",
  usage: "[-L] PATH",
  options: {
    dereference: Opt.flag("dereference", "follow a symlink and describe what it points to", { short: "L" }),
  },
  args: ["PATH"],
  needsAgent: true,
  examples: ["cuvette -H unix:/tmp/agent.sock stat /etc/hostname"],
  run: async (ctx, { dereference }) => {
    const path = guestPath(ctx.args[0], ctx.command)
    const agent = await ctx.connect()
    const s = await ctx.attempt({ action: "stat", path }, () => agent.stat(path, { follow: dereference }))
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
