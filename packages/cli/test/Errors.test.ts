import { describe, expect, it } from "vitest"
import { describe as describeFailure, UsageError } from "../src/internal/errors.js"
import { ConnectError } from "@cuvette/client/ConnectError"
import { HostFileError } from "@cuvette/client/HostError"
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

  it("blames the host path for a host file failure, not the guest path", () => {
    const e = new HostFileError({
      operation: "download",
      path: "/missing/dir",
      code: "ENOENT",
      detail: "no such directory",
    })
    const f = describeFailure(e, {
      action: "copy",
      path: "/etc/hostname",
      hostPath: "/missing/dir/x",
      target,
    })
    expect(f).toEqual({
      code: "ENOENT",
      exitCode: 1,
      message:
        "cannot copy :/etc/hostname /missing/dir/x on unix:/tmp/a.sock: host: /missing/dir: no such directory (create it with `mkdir -p /missing/dir`)",
    })
    expect(f.message).not.toContain("cuvette ls")
  })

  it("a host file failure takes the host's wording from the protocol's one table, never a guest remedy", () => {
    const hostFailure = (code: string) =>
      describeFailure(new HostFileError({ operation: "download", path: "/data/x", code, detail: "failed" }), {
        action: "copy",
        path: "/etc/x",
        hostPath: "/data/x",
        target,
      }).message
    expect(hostFailure("EACCES")).toMatch(/\(check its permissions on this host\)$/)
    expect(hostFailure("ENOSPC")).toMatch(/\(free some space on this host\)$/)
    // The table's host remedy for a read-only file system, once only the guest's had it.
    expect(hostFailure("EROFS")).toMatch(/\(the file system is mounted read-only\)$/)
    // `cuvette rm -r` removes guest directories: never the advice for a host one.
    expect(hostFailure("ENOTEMPTY")).not.toContain("cuvette")
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
