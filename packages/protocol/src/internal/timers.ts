/**
 * The session's sense of time: keepalive, dead-peer detection, handshake deadlines, ping round trips
 * and the serial stall watch all go through this, so tests can drive them with Effect's TestClock instead of
 * sleeping. Without a clock the real timers are used, unref'd so an idle session never keeps a
 * process alive.
 */
import { type Clock, Duration, Effect, Fiber } from "effect"

export interface Timers {
  /** Milliseconds since the epoch, to a fraction of one (a ping round trip on loopback is less). */
  readonly now: () => number
  /** Runs `f` once after `ms`; the returned function cancels it. */
  readonly after: (ms: number, f: () => void) => () => void
}

const real: Timers = {
  now: () => performance.timeOrigin + performance.now(),
  after: (ms, f) => {
    const t = setTimeout(f, ms)
    t.unref?.()
    return () => clearTimeout(t)
  },
}

/** Timers driven by an Effect clock (a TestClock in tests), or the real ones. */
export const make = (clock?: Clock.Clock): Timers =>
  clock === undefined
    ? real
    : {
        now: () => clock.unsafeCurrentTimeMillis(),
        after: (ms, f) => {
          const fiber = Effect.runFork(Effect.andThen(clock.sleep(Duration.millis(ms)), Effect.sync(f)))
          return () => void Effect.runFork(Fiber.interrupt(fiber))
        },
      }
