// `cuvette kmsg [-f]`: the guest kernel's log (/dev/kmsg), like dmesg; -f follows until Ctrl-C.
import type { KmsgRecord } from "../internal/client.js"
import { define } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { UsageError } from "../internal/errors.js"
import { writeAll } from "../internal/output.js"
import * as ExitCode from "../ExitCode.js"

/** One record as dmesg prints it: `[    1.234567] message`. */
export const formatRecord = (r: KmsgRecord): string =>
  `[${(r.timeUs / 1e6).toFixed(6).padStart(12)}] ${r.message}`

export const command = define({
  name: "kmsg",
  summary: "print the guest kernel log; -f follows it until Ctrl-C",
  usage: "[-f]",
  options: { follow: Opt.flag("follow", "keep printing new records until Ctrl-C", { short: "f" }) },
  args: [],
  needsAgent: true,
  streamsStdout: true,
  examples: ["cuvette -t unix:/tmp/agent.sock kmsg | tail -5"],
  run: async (ctx, { follow }) => {
    if (follow && ctx.out.json) {
      throw new UsageError({ detail: "--json prints one document, so it cannot follow; drop -f (or --json)" })
    }
    const agent = await ctx.connect()
    const records: Array<KmsgRecord> = []
    await ctx.attempt({ action: "read the kernel log" }, async () => {
      for await (const r of agent.kmsg({ follow, signal: ctx.signal })) {
        if (ctx.out.json) records.push(r)
        else await writeAll(ctx.io.stdout, formatRecord(r) + "\n")
      }
    })
    ctx.out.result({ target: ctx.target, records })
    return ExitCode.Ok
  },
})
