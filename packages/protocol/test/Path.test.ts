import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Path from "../src/Path.js"

const CAFE = Uint8Array.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74])
const isText = (b: Uint8Array) => typeof Path.fromBytes(b) === "string"

describe("Path", () => {
  it("is text when valid UTF-8 (a leading BOM kept), bytes otherwise", () => {
    expect(Path.fromBytes(Buffer.from("café"))).toBe("café")
    expect(Path.fromBytes(Buffer.from("\ufeffx"))).toBe("\ufeffx")
    expect(Path.fromBytes(CAFE)).toBe(CAFE)
    expect(Path.normalize(Buffer.from("/tmp/a"))).toBe("/tmp/a")
    expect(Path.equals("café", Buffer.from("café"))).toBe(true)
    expect(Path.equals(CAFE, Buffer.from("café"))).toBe(false)
  })

  it("shows a name that is not UTF-8 with GNU ls -b escapes; text as it is", () => {
    expect(Path.display(CAFE)).toBe("caf\\351.txt")
    expect(Path.display(Uint8Array.from([0xff, 0x5c, 0x0a, 0x01, 0xc3, 0xa9]))).toBe("\\377\\\\\\n\\001é")
    expect(Path.display("a\\b\n")).toBe("a\\b\n")
  })

  it("reads the escapes back to the same bytes, for any name that is not UTF-8", () => {
    expect(Path.parseEscaped("caf\\351.txt")).toEqual(CAFE)
    expect(Path.parseEscaped("a\\ b\\\\c")).toBe("a b\\c")
    expect(() => Path.parseEscaped("\\777")).toThrow(/not a byte/)
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 40 }).filter((b) => !isText(b)),
        (b) =>
          void expect(Buffer.from(Path.toBytes(Path.parseEscaped(Path.display(b))))).toEqual(Buffer.from(b)),
      ),
      { seed: 12, numRuns: 2000 },
    )
  })

  it("tells the root directory however it is spelled", () => {
    for (const root of ["/", "//", "/.", "/..", "/tmp/..", "/a/b/../../.", "C:\\", "c:/Windows/..", "\\"])
      expect([root, Path.isRoot(root)]).toEqual([root, true])
    expect(Path.isRoot(Buffer.from("/\xe9/..", "latin1"))).toBe(true)
    for (const other of ["/tmp", "/tmp/", "/..a", "tmp/..", ".", "C:\\x", "/\xe9"])
      expect([other, Path.isRoot(other)]).toEqual([other, false])
  })
})
