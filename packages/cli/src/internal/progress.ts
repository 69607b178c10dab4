// A one-line progress bar on stderr (bytes, rate, ETA), drawn only on a terminal and never in --json
// mode, redrawn at most ten times a second.
import type { Writable } from "node:stream"

/** Reports progress of a transfer. */
export interface Progress {
  update(done: number, total?: number): void
  /** Adds to the running total (for trees of files). */
  add(bytes: number): void
  finish(): void
}

const none: Progress = { update: () => {}, add: () => {}, finish: () => {} }

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

/** Renders one progress line (exported for tests). */
export const render = (
  label: string,
  done: number,
  total: number | undefined,
  elapsedMs: number,
  width: number,
): string => {
  const rate = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0
  const stats =
    total !== undefined && total > 0
      ? `${formatBytes(done)}/${formatBytes(total)} ${formatBytes(rate)}/s ETA ${formatEta((total - done) / rate)}`
      : `${formatBytes(done)} ${formatBytes(rate)}/s`
  const pct = total !== undefined && total > 0 ? Math.min(1, done / total) : undefined
  const barWidth = Math.max(0, Math.min(30, width - label.length - stats.length - 10))
  const bar =
    pct !== undefined && barWidth > 0
      ? ` [${"#".repeat(Math.round(pct * barWidth)).padEnd(barWidth, ".")}] ${String(Math.floor(pct * 100)).padStart(3)}%`
      : ""
  return `${label}${bar} ${stats}`
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
    stream.write(`\r\x1b[K${render(label, done, knownTotal, now - start, width).slice(0, width - 1)}`)
  }
  return {
    update: (d, t) => {
      done = d
      if (t !== undefined) knownTotal = t
      draw(false)
    },
    add: (n) => {
      done += n
      draw(false)
    },
    finish: () => {
      draw(true)
      stream.write("\n")
    },
  }
}
