// `cuvette mv SRC DST`: renames a guest path (both paths on the guest); into DST when DST is an existing
// directory, as mv(1) does.
import { define } from "../internal/command.js"
import { CliError } from "../internal/errors.js"
import * as Missing from "../internal/missing.js"
import * as Opt from "../internal/option.js"
import { pathJson } from "../internal/output.js"
import { ESCAPED_HELP, guestBasename, guestJoin, guestPathArg, shown } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

export const command = define({
  name: "mv",
  summary: "rename or move a guest path",
  usage: "SRC DST",
  description: "When DST is an existing directory, SRC moves inside it (DST/NAME), as mv(1) does.",
  options: { escaped: Opt.flag("escaped", ESCAPED_HELP, { short: "b" }) },
  args: ["SRC", "DST"],
  needsAgent: true,
  examples: [
    "cuvette -H unix:/tmp/agent.sock mv /tmp/demo/hello.txt /tmp/demo/hi.txt",
    "cuvette -H unix:/tmp/agent.sock mv /tmp/demo/hi.txt /tmp",
  ],
  run: async (ctx, { escaped }) => {
    const [a, b] = ctx.args
    const from = guestPathArg(a, ctx.command, escaped)
    const dst = guestPathArg(b, ctx.command, escaped)
    const agent = await ctx.connect()
    const guest = Missing.guest(agent)
    const to = (await guest.kind(dst)) === "directory" ? guestJoin(dst, guestBasename(from)) : dst
    await ctx.attempt({ action: `move (to :${shown(to)})`, path: shown(from) }, async () => {
      try {
        await agent.rename(from, to)
      } catch (error) {
        if (!Missing.isMissing(error)) throw error
        // Say which side is missing: the source, or the directory it was to go into.
        const why =
          (await Missing.whyMissing(guest, from, "source")) ??
          (await Missing.whyMissing(guest, to, "destination"))
        if (why === undefined) throw error
        throw new CliError({
          code: (error as { code: string }).code,
          detail: `cannot move :${shown(from)} to :${shown(to)} on ${ctx.target}: ${why}`,
          exitCode: ExitCode.Failed,
          path: shown(from),
        })
      }
    })
    ctx.out.result({ target: ctx.target, ...pathJson("from", from), ...pathJson("to", to) })
    return ExitCode.Ok
  },
})
