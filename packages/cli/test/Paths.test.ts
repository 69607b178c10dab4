import { describe, expect, it } from "vitest"
import { guestBasename, guestJoin } from "../src/internal/paths.js"

describe("guest paths", () => {
  it("basename and join keep a Windows guest's backslashes (mv/cp into a directory)", () => {
    expect(guestBasename("/tmp/a/f.txt")).toBe("f.txt")
    expect(guestBasename("/tmp/a/")).toBe("a")
    expect(guestBasename("C:\\data\\f.txt")).toBe("f.txt")
    expect(guestJoin("/tmp/into", "f.txt")).toBe("/tmp/into/f.txt")
    expect(guestJoin("/tmp/into/", "f.txt")).toBe("/tmp/into/f.txt")
    expect(guestJoin("C:\\into", "f.txt")).toBe("C:\\into\\f.txt")
    expect(guestJoin("C:/into", "f.txt")).toBe("C:/into/f.txt")
  })
})
