import { Clock, Effect, Fiber, TestClock, TestContext } from "effect"
import { describe, expect, it } from "vitest"
import * as Retry from "../src/Retry.js"

/** Runs a failing attempt under the TestClock; returns when each attempt ran (clock ms) and the retries reported. */
const observe = (
  o: Omit<Retry.RetryOptions<string>, "onRetry" | "schedule">,
  succeedOn?: number,
  schedule = Retry.backoff,
) =>
  Effect.gen(function* () {
    const at: Array<number> = []
    const retries: Array<[number, string]> = []
    const attempt = Effect.gen(function* () {
      at.push(yield* Clock.currentTimeMillis)
      if (at.length === succeedOn) return "up"
      return yield* Effect.fail(`refused #${at.length}`)
    })
    const fiber = yield* Effect.fork(
      Effect.either(Retry.retry(attempt, { ...o, schedule, onRetry: (n, e) => retries.push([n, e]) })),
    )
    yield* TestClock.adjust("1 minute")
    const result = yield* Fiber.join(fiber)
    return { at, retries, result }
  }).pipe(Effect.provide(TestContext.TestContext), Effect.runPromise)

describe("Retry.backoff", () => {
  it("waits 50 ms, doubling, capped at 1 s, and stops before a wait would pass the deadline", async () => {
    const { at, retries, result } = await observe({ deadline: 4000 })
    // Attempts at 0, 50, 150, 350, 750, 1550, 2550, 3550; the next wait (1 s) would end at 4550 > 4000.
    expect(at).toEqual([0, 50, 150, 350, 750, 1550, 2550, 3550])
    expect(retries.map(([n]) => n)).toEqual([1, 2, 3, 4, 5, 6, 7])
    expect(retries[0]).toEqual([1, "refused #1"])
    expect(result).toMatchObject({ _tag: "Left", left: "refused #8" })
  })

  it("returns the first success", async () => {
    const { at, result } = await observe({ deadline: 60_000 }, 3)
    expect(at).toEqual([0, 50, 150])
    expect(result).toMatchObject({ _tag: "Right", right: "up" })
  })

  it("gives up at once on a failure not worth retrying, without reporting a retry", async () => {
    const { at, retries, result } = await observe({ deadline: 60_000, while: (e) => !e.endsWith("#2") })
    expect(at).toEqual([0, 50])
    expect(retries).toHaveLength(1)
    expect(result).toMatchObject({ _tag: "Left", left: "refused #2" })
  })
})

describe("Retry.doubling", () => {
  it("waits `first`, doubling, never longer than `cap` (deploy's wait-for-diag: 250 ms to 5 s)", async () => {
    const { at } = await observe({ deadline: 30_000 }, undefined, Retry.doubling("250 millis", "5 seconds"))
    // Waits 250, 500, 1000, 2000, 4000, then 5000 each.
    expect(at.slice(0, 8)).toEqual([0, 250, 750, 1750, 3750, 7750, 12750, 17750])
  })
})
