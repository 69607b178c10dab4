// `cuvette kmsg [-f]`: the guest kernel's log (/dev/kmsg), like dmesg; -f follows until Ctrl-C.
import { expectPositionals, flag } from "../internal/args.js"
import type { KmsgRecord } from "../internal/client.js"
import type { Command } from "../internal/command.js"
import { UsageError } from "../internal/errors.js"
import { writeAll } from "../internal/output.js"
import * as ExitCode from "../ExitCode.js"

/** One record as dmesg prints it: `[    1.234567] message`. */
export const formatRecord = (r: KmsgRecord): string =>
  `[${(r.timeUs / 1e6).toFixed(6).padStart(12)}] ${r.message}`

/** `cuvette kmsg`: prints the guest kernel log, or follows it with -f. */
export const command: Command = {
  name: "kmsg",
  summary: "print the guest kernel log; -f follows it until Ctrl-C",
  usage: "[-f]",
  options: [
    { name: "follow", short: "f", kind: "boolean", description: "keep printing new records until Ctrl-C" },
  ],
  examples: ["cuvette -t unix:/tmp/agent.sock kmsg | tail -5"],
  run: async (ctx) => {
    expectPositionals(ctx.parsed, ctx.command, [])
    const follow = flag(ctx.parsed, "follow")
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
    ctx.out.result({ target: ctx.target(), records })
    return ExitCode.Ok
  },
}
