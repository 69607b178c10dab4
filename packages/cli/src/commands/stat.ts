// `cuvette stat [-L] PATH`: type, size, mode, owner and modification time of a guest path; of a symlink
// itself (with its target) unless -L follows it, as stat(1) does.
import { define } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { pathJson } from "../internal/output.js"
import { ESCAPED_HELP, guestPathArg, shown } from "../internal/paths.js"
import { modeString } from "./ls.js"
import * as ExitCode from "../ExitCode.js"

export const command = define({
  name: "stat",
  summary: "show type, size, mode, owner and modification time of a guest path",
  usage: "[-L] PATH",
  options: {
    dereference: Opt.flag("dereference", "follow a symlink and describe what it points to", { short: "L" }),
    escaped: Opt.flag("escaped", ESCAPED_HELP, { short: "b" }),
  },
  args: ["PATH"],
  needsAgent: true,
  examples: ["cuvette -H unix:/tmp/agent.sock stat /etc/hostname"],
  run: async (ctx, { dereference, escaped }) => {
    const path = guestPathArg(ctx.args[0], ctx.command, escaped)
    const agent = await ctx.connect()
    const s = await ctx.attempt({ action: "stat", path: shown(path) }, () =>
      agent.stat(path, { follow: dereference }),
    )
    // A path or target that is not UTF-8: shown escaped, and in --json also as its exact bytes.
    const link = s.target !== undefined ? pathJson("target", s.target) : {}
    ctx.out.result({ target: ctx.target, ...s, ...pathJson("path", path), ...link }, [
      `path:     ${shown(path)}${s.target !== undefined ? ` -> ${shown(s.target)}` : ""}`,
      `type:     ${s.type}`,
      `size:     ${s.size}`,
      `mode:     ${(s.mode & 0o7777).toString(8).padStart(4, "0")} (${modeString(s.type, s.mode)})`,
      `owner:    ${s.uid ?? "?"}:${s.gid ?? "?"}`,
      `modified: ${new Date(s.mtimeMs).toISOString()}`,
    ])
    return ExitCode.Ok
  },
})
