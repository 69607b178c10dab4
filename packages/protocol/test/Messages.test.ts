import { Either } from "effect"
import * as fs from "node:fs"
import { describe, expect, it } from "vitest"
import { Constants, Errors, Handshake, Messages, Operations } from "../src/index.js"

describe("Messages", () => {
  it("round-trips control messages through msgpack", () => {
    const message = { _tag: "Open", op: "exec", args: { argv: ["ls", "-l"], env: { set: { A: "1" } } } }
    const back = Messages.unpackAs(Messages.ClientMessage, "control")(Messages.pack(message))
    expect(back).toEqual(Either.right(message))
  })

  it("turns malformed msgpack into PROTOCOL without throwing", () => {
    const r = Messages.unpack(new Uint8Array([0x82, 0xa1, 0x61]), "control message")
    expect(Either.isLeft(r) && r.left).toMatchObject({ code: "PROTOCOL" })
    expect(Either.isLeft(r) && r.left.message).toMatch(/^malformed control message: not valid msgpack/)
  })

  it("names the first invalid field with its path, and stops there", () => {
    const r = Messages.decode(
      Operations.operations.exec.args,
      "exec request",
    )({
      argv: [],
      cwd: "",
      pty: { rows: -1, cols: 80 },
    })
    expect(Either.isLeft(r) && r.left.code).toBe("PROTOCOL")
    const message = Either.isLeft(r) ? r.left.message : ""
    expect(message).toBe("invalid exec request: argv.0: is missing")
    const r2 = Messages.decode(Operations.operations.exec.args, "exec request")({ argv: ["x"], cwd: "" })
    expect(Either.isLeft(r2) && r2.left.message).toContain("cwd: a path must not be empty")
  })

  it("refuses a length that runs past the message before msgpackr allocates for it", () => {
    // Six bytes announcing an array of 50 million elements: msgpackr would allocate ~400 MB first.
    const r = Messages.unpack(Uint8Array.from([0xdd, 0x03, 0x00, 0x00, 0x00, 0x01]), "control message")
    expect(Either.isLeft(r) && r.left.message).toBe(
      "malformed control message: not valid msgpack (a length runs past the end of the message)",
    )
    for (const value of [{ a: [1, -2, 1.5, 2 ** 40, "x".repeat(70_000)], b: { c: true } }, [], null])
      expect(Messages.unpack(Messages.pack(value), "m")).toEqual(Either.right(value))
  })

  it("a message with a million invalid values gives one short error that echoes none of them", () => {
    const features = new Array(1_000_000).fill(7)
    const bytes = Messages.pack({ _tag: "Hello", minVersion: 1, maxVersion: 1, features, client: {} })
    const started = performance.now()
    const r = Messages.unpackAs(Handshake.ClientHello, "hello")(bytes)
    const elapsed = performance.now() - started
    const message = Either.isLeft(r) ? r.left.message : ""
    expect(message).toBe("invalid hello: features.0: Expected string, actual 7")
    expect(elapsed).toBeLessThan(2000) // It used to format every issue: seconds, and a 40 MB message.
    const huge = Messages.decode(
      Operations.operations.stat.args,
      "stat request",
    )({ path: "/x", follow: "y".repeat(1 << 20) })
    expect(Either.isLeft(huge) && huge.left.message.length).toBeLessThanOrEqual(Constants.MAX_ERROR_TEXT)
  })

  it("rejects a Failure with an unknown error code", () => {
    const r = Messages.decode(
      Messages.AgentMessage,
      "reply",
    )({ _tag: "Failure", code: "EWHATEVER", message: "x" })
    expect(Either.isLeft(r) && r.left.message).toContain("code")
  })
})

describe("Operations", () => {
  it("describes exactly the v1 operations that docs/protocol.md lists (§12)", () => {
    const spec = fs.readFileSync(new URL("../../../docs/protocol.md", import.meta.url), "utf8")
    const section = /^## \d+\. Operations \(v1\)\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(spec)?.[1] ?? ""
    const documented = [...section.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1])
    expect(documented).toContain("exec")
    expect([...Operations.names].sort()).toEqual(documented.sort())
    expect(Operations.isName("exec")).toBe(true)
    expect(Operations.isName("toString")).toBe(false)
  })
})

describe("Errors.fromUnknown", () => {
  it("keeps errno codes with the path, and makes anything else INTERNAL", () => {
    const enoent = Object.assign(new Error("ENOENT: no such file"), { code: "ENOENT", path: "/nope" })
    expect(Errors.fromUnknown(enoent)).toMatchObject({
      code: "ENOENT",
      message: "no such file or directory: /nope",
    })
    expect(Errors.fromUnknown(new Error("boom"), "stat")).toMatchObject({
      code: "INTERNAL",
      message: "stat: boom",
    })
    const e = Errors.make("DENIED", "no")
    expect(Errors.fromUnknown(e)).toBe(e)
  })

  it("ENAMETOOLONG, ELOOP, EXDEV, E2BIG and ENXIO keep their codes; refused argument values are EINVAL", () => {
    for (const code of ["ENAMETOOLONG", "ELOOP", "EXDEV", "E2BIG", "ENXIO"])
      expect(Errors.fromUnknown(Object.assign(new Error(code), { code }), "x").code).toBe(code)
    const nul = Object.assign(new TypeError("must be a string without null bytes"), {
      code: "ERR_INVALID_ARG_VALUE",
    })
    expect(Errors.fromUnknown(nul).code).toBe("EINVAL")
    const range = Object.assign(new RangeError("mode out of range"), { code: "ERR_OUT_OF_RANGE" })
    expect(Errors.fromUnknown(range).code).toBe("EINVAL")
    // A wrong type cannot come from a validated request: a bug.
    const type = Object.assign(new TypeError("wrong type"), { code: "ERR_INVALID_ARG_TYPE" })
    expect(Errors.fromUnknown(type).code).toBe("INTERNAL")
  })

  it("messages are bounded and quote long values around an ellipsis", () => {
    const path = `/${"p".repeat(1024 * 1024)}/end`
    const e = Errors.fromUnknown(
      Object.assign(new Error(`ENAMETOOLONG: ${path}`), { code: "ENAMETOOLONG", path }),
    )
    expect(e.message.length).toBeLessThanOrEqual(200)
    expect(e.message).toMatch(/^file name too long: \/p+…p+\/end$/)
    expect(Errors.make("INTERNAL", "x".repeat(1_000_000)).message.length).toBe(Errors.MAX_MESSAGE)
    expect(Errors.fromUnknown(new Error("y".repeat(1_000_000))).message.length).toBeLessThanOrEqual(
      Errors.MAX_MESSAGE,
    )
  })
})
