// `cuvette ls [-l] PATH`: lists a guest directory.
import type { Entry } from "../internal/client.js"
import { define } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { guestPath } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

const typeChar: Record<Entry["type"], string> = { file: "-", directory: "d", symlink: "l", other: "?" }

/** `drwxr-xr-x` for a type and mode. */
export const modeString = (type: Entry["type"], mode: number): string => {
  const rwx = (bits: number) => `${bits & 4 ? "r" : "-"}${bits & 2 ? "w" : "-"}${bits & 1 ? "x" : "-"}`
  return `${typeChar[type]}${rwx((mode >> 6) & 7)}${rwx((mode >> 3) & 7)}${rwx(mode & 7)}`
}

const date = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace("T", " ")

export const command = define({
  name: "ls",
  summary: "list a guest directory",
  usage: "[-l] [PATH]",
  options: { long: Opt.flag("long", "show type, mode, size and modification time", { short: "l" }) },
  args: ["PATH?"],
  needsAgent: true,
  examples: ["cuvette -t unix:/tmp/agent.sock ls -l /etc"],
  run: async (ctx, { long }) => {
    const [arg] = ctx.args
    const path = guestPath(arg ?? "/", ctx.command)
    const agent = await ctx.connect()
    const entries = [...(await ctx.attempt({ action: "list", path }, () => agent.list(path)))].sort((a, b) =>
      (a.name ?? "") < (b.name ?? "") ? -1 : 1,
    )
    const width = Math.max(1, ...entries.map((e) => String(e.size).length))
    ctx.out.result(
      { target: ctx.target, path, entries },
      entries.map((e) => {
        const name = `${e.name ?? ""}${e.type === "directory" && !long ? "/" : ""}`
        return long
          ? `${modeString(e.type, e.mode)} ${String(e.size).padStart(width)} ${date(e.mtimeMs)} ${name}`
          : name
      }),
    )
    return ExitCode.Ok
  },
})
