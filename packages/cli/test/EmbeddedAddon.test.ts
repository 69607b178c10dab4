// The single-file CLI's addon hand-off: the embedded bytes copied once to a file named by their hash.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { extract, use } from "../src/internal/embeddedAddon.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-embedded-"))
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }))

describe("embeddedAddon", () => {
  it("copies the embedded addon once, named by its hash, and reuses the copy", () => {
    fs.mkdirSync(dir, { recursive: true })
    const embedded = path.join(dir, "embedded.node")
    fs.writeFileSync(embedded, "addon bytes")
    const copy = extract(embedded, "0123abcd", dir)
    expect(copy).toBe(path.join(dir, `cuvette_native-${process.getuid!()}-0123abcd.node`))
    expect(fs.readFileSync(copy, "utf8")).toBe("addon bytes")
    fs.rmSync(embedded)
    expect(extract(embedded, "0123abcd", dir)).toBe(copy) // no second read of the embedded file
    expect(fs.readdirSync(dir)).toEqual([path.basename(copy)]) // no temp file left behind
  })

  it("never hands over a copy that others can write (the temp directory may be shared)", () => {
    fs.mkdirSync(dir, { recursive: true })
    const embedded = path.join(dir, "embedded.node")
    fs.writeFileSync(embedded, "addon bytes")
    const planted = path.join(dir, `cuvette_native-${process.getuid!()}-feed.node`)
    fs.writeFileSync(planted, "someone else's code")
    fs.chmodSync(planted, 0o666)
    expect(() => extract(embedded, "feed", dir)).toThrow(
      "is not a file of this user's that only it can write",
    )
    const link = path.join(dir, `cuvette_native-${process.getuid!()}-beef.node.${process.pid}.tmp`)
    const victim = path.join(dir, "victim")
    fs.writeFileSync(victim, "untouched")
    fs.symlinkSync(victim, link)
    expect(() => extract(embedded, "beef", dir)).toThrow(/EEXIST/)
    expect(fs.readFileSync(victim, "utf8")).toBe("untouched")
  })

  it("leaves a CUVETTE_NATIVE_BINDING the user set alone", () => {
    const before = process.env.CUVETTE_NATIVE_BINDING
    process.env.CUVETTE_NATIVE_BINDING = "/user/choice.node"
    try {
      use("/nonexistent/embedded.node", "ffff")
      expect(process.env.CUVETTE_NATIVE_BINDING).toBe("/user/choice.node")
    } finally {
      if (before === undefined) delete process.env.CUVETTE_NATIVE_BINDING
      else process.env.CUVETTE_NATIVE_BINDING = before
    }
  })
})
