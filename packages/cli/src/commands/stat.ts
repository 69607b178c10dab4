// `cuvette stat PATH`: type, size, mode, owner and modification time of a guest path.
import { expectPositionals } from "../internal/args.js"
import type { Command } from "../internal/command.js"
import { guestPath } from "../internal/paths.js"
import { modeString } from "./ls.js"
import * as ExitCode from "../ExitCode.js"

/** `cuvette stat`: prints the type, size, mode, owner and mtime of a guest path. */
export const command: Command = {
  name: "stat",
  summary: "show type, size, mode, owner and modification time of a guest path",
  usage: "PATH",
  options: [],
  examples: ["cuvette -t unix:/tmp/agent.sock stat /etc/hostname"],
  run: async (ctx) => {
    const [arg] = expectPositionals(ctx.parsed, ctx.command, ["PATH"])
    const path = guestPath(arg, ctx.command)
    const agent = await ctx.connect()
    const s = await ctx.attempt({ action: "stat", path }, () => agent.stat(path))
    ctx.out.result({ target: ctx.target(), ...s, path }, [
      `path:     ${path}${s.target !== undefined ? ` -> ${s.target}` : ""}`,
      `type:     ${s.type}`,
      `size:     ${s.size}`,
      `mode:     ${(s.mode & 0o7777).toString(8).padStart(4, "0")} (${modeString(s.type, s.mode)})`,
      `owner:    ${s.uid ?? "?"}:${s.gid ?? "?"}`,
      `modified: ${new Date(s.mtimeMs).toISOString()}`,
    ])
    return ExitCode.Ok
  },
}
