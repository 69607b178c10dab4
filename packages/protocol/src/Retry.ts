/**
 * Retrying, as Effect schedules: one definition per behaviour, shared by the agent and the client, and
 * {@link retry}, which runs an attempt again on a schedule until it succeeds, the failure is not worth
 * another try, or the next wait would pass the deadline. Time comes from Effect's Clock (TestClock in tests).
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

/** Waits of `first`, doubling each time, never longer than `cap`. */
export const doubling = (
  first: Duration.DurationInput,
  cap: Duration.DurationInput,
): Schedule.Schedule<Duration.Duration> =>
  Schedule.delays(Schedule.union(Schedule.exponential(first), Schedule.spaced(cap)))

/** Waiting for a peer that is not up yet: 50 ms, doubling, capped at 1 s (quick when it comes soon, no busy polling). */
export const backoff: Schedule.Schedule<Duration.Duration> = doubling("50 millis", "1 second")

/** The same wait between attempts, for as long as it takes (the agent's connect-out and power-off retries). */
export const every = (wait: Duration.DurationInput): Schedule.Schedule<Duration.Duration> =>
  Schedule.delays(Schedule.spaced(wait))

/** Options of {@link retry}. */
export interface RetryOptions<E> {
  readonly schedule: Schedule.Schedule<Duration.Duration>
  /** Epoch milliseconds (Clock time): never start a wait that would end at or after it. */
  readonly deadline?: number | undefined
  /** Whether this failure is worth another attempt (default: every failure). */
  readonly while?: ((error: E) => boolean) | undefined
  /** Called before each wait with the number of the attempt that failed and its error. */
  readonly onRetry?: ((attempt: number, error: E) => void) | undefined
}

/** Runs `attempt`, and again on the schedule while the options allow; fails with the last error. */
export const retry = <A, E, R>(attempt: Effect.Effect<A, E, R>, o: RetryOptions<E>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    let failed = 0
    const policy = Schedule.checkEffect(o.schedule, (error: E, delay) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        failed++
        const again =
          (o.while?.(error) ?? true) &&
          (o.deadline === undefined || now + Duration.toMillis(delay) < o.deadline)
        if (again) o.onRetry?.(failed, error)
        return again
      }),
    )
    return Effect.retry(attempt, policy)
  })
