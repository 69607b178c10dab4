// `cuvette wait [--timeout D]`: retries until the agent answers a ping; exit 3 when it does not in time.
import * as Client from "../internal/client.js"
import { define, wrap } from "../internal/command.js"
import { CliError } from "../internal/errors.js"
import * as ExitCode from "../ExitCode.js"

const DEFAULT_WAIT_MS = 60_000

export const command = define({
  name: "wait",
  summary: "wait until the agent answers (default up to 60s; exit 3 on timeout)",
  usage: "[--timeout D]",
  options: {},
  args: [],
  needsAgent: true,
  examples: ["cuvette -t unix:/tmp/agent.sock wait --timeout 2m"],
  run: async (ctx) => {
    const target = ctx.target
    const timeoutMs = ctx.globals.timeoutMs ?? DEFAULT_WAIT_MS
    const client = await Client.load()
    const start = Date.now()
    const agent = await client
      .wait(target, {
        timeoutMs,
        ...(ctx.globals.vtl2 ? { vtl2: true } : {}),
        ...(ctx.globals.tokenFile !== undefined ? { tokenFile: ctx.globals.tokenFile } : {}),
        signal: ctx.signal,
      })
      .catch((error: unknown) => {
        const e = wrap(error, { action: "wait for the agent", target })
        if (e.exitCode !== ExitCode.Failed) throw e
        // Whatever stopped the wait, the agent did not answer in time: that is "unreachable".
        throw new CliError({
          code: "TIMEOUT",
          detail: `the agent on ${target} did not answer within ${timeoutMs / 1000}s: ${e.detail} (is it started? raise --timeout)`,
          exitCode: ExitCode.Unreachable,
          cause: error,
        })
      })
    try {
      const rttMs = await ctx.attempt({ action: "ping" }, () => agent.ping())
      const waitedMs = Date.now() - start
      ctx.out.result(
        { target, ready: true, waitedMs, rttMs },
        `agent on ${target} is ready (after ${(waitedMs / 1000).toFixed(1)}s)`,
      )
    } finally {
      await agent.close().catch(() => undefined)
    }
    return ExitCode.Ok
  },
})
