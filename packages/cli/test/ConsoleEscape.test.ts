// The escape sequence of `cuvette console`: Ctrl-] then q leaves, across reads too; Ctrl-] is still typeable.
import { describe, expect, it } from "vitest"
import { EscapeReader } from "../src/internal/console/attach.js"

const feed = (reader: EscapeReader, text: string) => {
  const { bytes, leave } = reader.feed(Buffer.from(text, "latin1"))
  return { text: Buffer.from(bytes).toString("latin1"), leave }
}

describe("EscapeReader", () => {
  it("passes keys through and leaves on Ctrl-] q, dropping what follows", () => {
    const r = new EscapeReader()
    expect(feed(r, "ls\r")).toEqual({ text: "ls\r", leave: false })
    expect(feed(r, "ab\x1dqcd")).toEqual({ text: "ab", leave: true })
  })

  it("Ctrl-] at the end of one read and q at the start of the next still leaves", () => {
    const r = new EscapeReader()
    expect(feed(r, "x\x1d")).toEqual({ text: "x", leave: false })
    expect(feed(r, "q")).toEqual({ text: "", leave: true })
  })

  it("Ctrl-] Ctrl-] sends one Ctrl-]; Ctrl-] then another key sends both; a lone q is a q", () => {
    const r = new EscapeReader()
    expect(feed(r, "\x1d\x1d")).toEqual({ text: "\x1d", leave: false })
    expect(feed(r, "\x1dx")).toEqual({ text: "\x1dx", leave: false })
    expect(feed(r, "q")).toEqual({ text: "q", leave: false })
  })
})
