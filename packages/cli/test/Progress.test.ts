// The progress line fits the terminal: at each width it keeps the most useful parts, the path going first.
import { describe, expect, it } from "vitest"
import { render } from "../src/internal/progress.js"

const label = "big-file.tar → :/tmp/some/dir/big-file.tar"
const MiB = 2 ** 20
const at = (width: number) => render(label, 5 * MiB, 16 * MiB, 2000, width)
const bar = /\[[#.]+\]/

describe("Progress.render", () => {
  it("at 120 columns shows everything: path, bar, percentage, bytes, rate, ETA", () => {
    const line = at(120)
    expect(line.startsWith(label)).toBe(true)
    expect(line).toMatch(bar)
    for (const part of ["31%", "5.0 MiB/16.0 MiB", "2.5 MiB/s", "ETA 0:04"]) expect(line).toContain(part)
  })

  it("at 80 columns keeps rate and ETA, and the end of the path", () => {
    const line = at(80)
    for (const part of ["31%", "5.0 MiB/16.0 MiB", "2.5 MiB/s", "ETA 0:04"]) expect(line).toContain(part)
    expect(line).toMatch(bar)
    expect(line).toMatch(/^….*big-file\.tar /)
  })

  it("at 50 columns drops the path, then the ETA, and keeps bar and rate", () => {
    const line = at(50)
    expect(line).not.toContain("big-file")
    expect(line).not.toContain("ETA")
    expect(line).toMatch(bar)
    for (const part of ["31%", "5.0 MiB/16.0 MiB", "2.5 MiB/s"]) expect(line).toContain(part)
  })

  it("at 30 columns keeps the percentage and the bytes", () => {
    const line = at(30)
    expect(line).not.toMatch(bar)
    expect(line).not.toContain("MiB/s")
    expect(line).toContain("31%")
    expect(line).toContain("5.0 MiB/16.0 MiB")
  })

  it("never writes into the last column", () => {
    for (let width = 1; width <= 160; width++) {
      expect(at(width).length, `width ${width}`).toBeLessThan(Math.max(2, width))
      expect(render("x", 123, undefined, 1000, width).length, `width ${width}`).toBeLessThan(
        Math.max(2, width),
      )
    }
  })
})
