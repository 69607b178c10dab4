// A one-line progress bar on stderr (bytes, rate, ETA), drawn only on a terminal and never in --json
// mode, redrawn at most ten times a second.
import type { Writable } from "node:stream"

/** Reports progress of a transfer. */
export interface Progress {
  update(done: number, total?: number): void
  finish(): void
}

const none: Progress = { update: () => {}, finish: () => {} }

/** Formats a byte count ("16.0 MiB"). */
export const formatBytes = (n: number): string => {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`
}

const formatEta = (seconds: number): string => {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--"
  const s = Math.round(seconds)
  const m = Math.floor(s / 60)
  return `${m}:${String(s % 60).padStart(2, "0")}`
}

const MIN_BAR = 10
const MAX_BAR = 30
/** Below this many columns a path is dropped rather than cut to an unreadable stub. */
const MIN_LABEL = 12

/**
 * Renders one progress line of at most `width - 1` columns (the last column would wrap). Everything
 * fits when it can; otherwise parts go in this order: the path (first shortened from the left, keeping
 * its end), the ETA, the rate, the bar, the percentage; the byte count stays.
 */
export const render = (
  label: string,
  done: number,
  total: number | undefined,
  elapsedMs: number,
  width: number,
): string => {
  const room = Math.max(1, width - 1)
  const rate = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0
  const known = total !== undefined && total > 0
  const pct = known ? Math.min(1, done / total) : 0
  const bytes = known ? `${formatBytes(done)}/${formatBytes(total)}` : formatBytes(done)
  const speed = `${formatBytes(rate)}/s`
  const eta = known ? `ETA ${formatEta((total - done) / rate)}` : undefined
  const percent = known ? `${String(Math.floor(pct * 100)).padStart(3)}%` : undefined
  const bar = (n: number) => `[${"#".repeat(Math.round(pct * n)).padEnd(n, ".")}]`
  const line = (parts: ReadonlyArray<string | undefined>) => parts.filter((p) => p !== undefined).join(" ")
  // Without the path, from the richest line down; the bar takes what room is left, up to MAX_BAR.
  const candidates: ReadonlyArray<{
    readonly bar: boolean
    readonly parts: ReadonlyArray<string | undefined>
  }> = [
    { bar: known, parts: [percent, bytes, speed, eta] },
    { bar: known, parts: [percent, bytes, speed] },
    { bar: known, parts: [percent, bytes] },
    { bar: false, parts: [percent, bytes] },
    { bar: false, parts: [bytes] },
  ]
  for (const [i, c] of candidates.entries()) {
    const stats = line(c.parts)
    const barRoom = c.bar ? room - stats.length - 1 : 0
    if (c.bar && barRoom < MIN_BAR + 2) continue
    if (!c.bar && stats.length > room) continue
    const withBar = (n: number) => (c.bar ? `${bar(n)} ${stats}` : stats)
    if (i === 0) {
      // The path comes first when it fits beside the bar at its smallest, cut from the left if need be.
      const labelRoom = room - withBar(MIN_BAR).length - 1
      if (labelRoom >= Math.min(label.length, MIN_LABEL) && label.length > 0) {
        const shown = label.length <= labelRoom ? label : `…${label.slice(label.length - labelRoom + 1)}`
        const n = c.bar ? Math.min(MAX_BAR, MIN_BAR + labelRoom - shown.length) : 0
        return `${shown} ${withBar(n)}`
      }
    }
    return withBar(Math.min(MAX_BAR, barRoom - 2))
  }
  return bytes.slice(0, room)
}

/** A progress bar on `stream`, or a no-op when `enabled` is false. */
export const make = (
  stream: Writable & { readonly isTTY?: boolean; readonly columns?: number },
  enabled: boolean,
  label: string,
  total?: number,
): Progress => {
  if (!enabled || stream.isTTY !== true) return none
  const start = Date.now()
  let done = 0
  let knownTotal = total
  let last = 0
  const draw = (force: boolean) => {
    const now = Date.now()
    if (!force && now - last < 100) return
    last = now
    const width = stream.columns ?? 80
    stream.write(`\r\x1b[K${render(label, done, knownTotal, now - start, width)}`)
  }
  return {
    update: (d, t) => {
      done = d
      if (t !== undefined) knownTotal = t
      draw(false)
    },
    finish: () => {
      draw(true)
      stream.write("\n")
    },
  }
}
