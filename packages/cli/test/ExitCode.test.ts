import { describe, expect, it } from "vitest"
import { exitCodeOf } from "../src/internal/guestProcess.js"
import * as ExitCode from "../src/ExitCode.js"

describe("ExitCode", () => {
  it("maps signals to 128+N with Linux numbering", () => {
    expect(ExitCode.fromSignal("SIGTERM")).toBe(143)
    expect(ExitCode.fromSignal("KILL")).toBe(137)
    expect(ExitCode.fromSignal(2)).toBe(130)
    expect(ExitCode.fromSignal("SIGNOPE")).toBe(ExitCode.ExecFailed)
  })

  it("gives exec the guest's code", () => {
    expect(exitCodeOf({ exitCode: 7, signal: null })).toBe(7)
    expect(exitCodeOf({ exitCode: null, signal: "SIGTERM" })).toBe(143)
  })

  it("a timed-out command never exits 0: 124 when it exited on the signal, 128+N when the signal ended it", () => {
    expect(exitCodeOf({ exitCode: 0, signal: null, timedOut: true })).toBe(ExitCode.TimedOut)
    expect(exitCodeOf({ exitCode: null, signal: "SIGKILL", timedOut: true })).toBe(137)
  })

  it("has one table with distinct codes", () => {
    const codes = ExitCode.table.map(([c]) => c)
    expect(new Set(codes).size).toBe(codes.length)
    expect(codes).toEqual([0, 1, 2, 3, 4, 124, 130, 141, 143, 255])
  })
})
