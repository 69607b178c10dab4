import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { Errors, Messages, Operations } from "../src/index.js"

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

  it("names every invalid field with its path", () => {
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
    expect(message).toContain("argv.0: is missing")
    expect(message).toContain("cwd: a path must not be empty")
    expect(message).toContain("pty.rows:")
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
  it("describes every v1 operation of DESIGN.md", () => {
    expect([...Operations.names].sort()).toEqual(
      [
        "chmod",
        "crash",
        "exec",
        "info",
        "kmsg",
        "list",
        "mkdir",
        "mount",
        "ping",
        "readFile",
        "remove",
        "rename",
        "shutdown",
        "stat",
        "time",
        "writeFile",
      ].sort(),
    )
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
})
