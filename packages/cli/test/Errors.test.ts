import { describe, expect, it } from "vitest"
import { describe as describeFailure, UsageError } from "../src/internal/errors.js"
import { ConnectError } from "@cuvette/client/ConnectError"
import * as Errors from "@cuvette/protocol/Errors"

describe("error wording", () => {
  const target = "unix:/tmp/a.sock"

  it("says what, where and what to try for agent errors", () => {
    const f = describeFailure(Errors.make("ENOENT", "no such file or directory: /etc/nope"), {
      action: "read",
      path: "/etc/nope",
      target,
    })
    expect(f).toEqual({
      code: "ENOENT",
      exitCode: 1,
      path: "/etc/nope",
      message:
        "cannot read :/etc/nope on unix:/tmp/a.sock: no such file or directory (check the path with `cuvette ls :/etc`)",
    })
    const r = describeFailure(Errors.make("ENOTEMPTY", "x"), { action: "remove", path: "/d", target })
    expect(r.message).toContain("cuvette rm -r")
  })

  it("maps connection failures to exit 3 with a hint", () => {
    const e = new ConnectError({ reason: "TIMEOUT", target: "hybrid:/tmp/v.sock", detail: "timed out" })
    const f = describeFailure(e, { action: "connect", target: "hybrid:/tmp/v.sock" })
    expect(f.exitCode).toBe(3)
    expect(f.message).toContain("hybrid:/tmp/v.sock")
    expect(f.message).toContain("cuvette wait")
    const bad = describeFailure(new ConnectError({ reason: "INVALID_TARGET", target: "x", detail: "bad" }), {
      action: "connect",
    })
    expect(bad.exitCode).toBe(2)
  })

  it("an auth failure gets one hint saying how to pass the token, and no `cuvette wait`", async () => {
    const { Hints } = await import("@cuvette/protocol")
    const e = new ConnectError({ reason: "DENIED", target, detail: "wrong token", hint: Hints.token })
    const f = describeFailure(e, { action: "connect", target })
    expect(f.code).toBe("DENIED")
    expect(f.message).toBe(`cannot connect to ${target}: wrong token (${Hints.token})`)
    expect(f.message).not.toContain("cuvette wait")
    // An operation the agent refuses after connecting is not about the token.
    const op = describeFailure(Errors.make("DENIED", "crash is not allowed"), { action: "crash", target })
    expect(op.message).not.toContain("token")
  })

  it("maps usage errors to exit 2", () => {
    expect(describeFailure(new UsageError({ detail: "no" }), { action: "run" }).exitCode).toBe(2)
  })
})
