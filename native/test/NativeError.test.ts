import { describe, expect, it } from "vitest"
import { fromCause, NativeError, reasonOf } from "../lib/NativeError.js"

describe("reasonOf: errno and WSA codes map to stable reasons in one helper", () => {
  it.each([
    [111, "ECONNREFUSED"],
    [110, "ETIMEDOUT"],
    [98, "EADDRINUSE"],
    [99, "EADDRNOTAVAIL"],
    [13, "EACCES"],
    [1, "EACCES"],
    [19, "ENODEV"],
    [2, "ENODEV"],
    [97, "EAFNOSUPPORT"],
    [113, "EHOSTUNREACH"],
    [101, "ENETUNREACH"],
    [104, "ECONNRESET"],
    [-111, "ECONNREFUSED"], // libuv's negative errno
    [4242, "UNKNOWN"],
  ])("Linux errno %i -> %s", (code, reason) => {
    expect(reasonOf(code, "linux")).toBe(reason)
  })

  it.each([
    [10061, "ECONNREFUSED"],
    [10060, "ETIMEDOUT"],
    [10065, "EHOSTUNREACH"],
    [10051, "ENETUNREACH"],
    [10047, "EAFNOSUPPORT"],
    [10048, "EADDRINUSE"],
    [10049, "EADDRNOTAVAIL"],
    [10013, "EACCES"],
    [10054, "ECONNRESET"],
    [1225, "ECONNREFUSED"],
    [1460, "ETIMEDOUT"],
    [5, "EACCES"],
  ])("Windows code %i -> %s", (code, reason) => {
    expect(reasonOf(code, "win32")).toBe(reason)
  })

  it("WSA codes are recognised even when the platform table is Linux's", () => {
    expect(reasonOf(10061, "linux")).toBe("ECONNREFUSED")
  })

  it.each([
    ["ECONNRESET", "ECONNRESET"],
    ["EPERM", "EACCES"],
    ["WSAECONNREFUSED", "ECONNREFUSED"],
    ["WSAETIMEDOUT", "ETIMEDOUT"],
    ["EWHATEVER", "UNKNOWN"],
  ])("string code %s -> %s", (code, reason) => {
    expect(reasonOf(code)).toBe(reason)
  })
})

describe("NativeError", () => {
  it("is a tagged Error whose message says what, where and why, keeping the cause, with no hint of its own", () => {
    const cause = Object.assign(new Error("connect: Connection refused"), { errno: 111, syscall: "connect" })
    const e = fromCause("vsock connect", "3:4919", cause)
    expect(e).toBeInstanceOf(Error)
    expect(e._tag).toBe("NativeError")
    expect(e.reason).toBe(process.platform === "win32" ? "UNKNOWN" : "ECONNREFUSED")
    expect(e.code).toBe(111)
    expect(e.cause).toBe(cause)
    // The hint is the caller's (protocol Hints by reason); one here too would be printed twice.
    if (process.platform !== "win32") {
      expect(e.message).toBe(
        "vsock connect 3:4919 failed: connect: Connection refused (ECONNREFUSED, code 111)",
      )
    }
  })

  it("NOT_BUILT says what is missing", () => {
    const e = new NativeError({
      reason: "NOT_BUILT",
      operation: "load cuvette_native",
      detail: "no prebuilt native addon for linux-riscv64",
    })
    expect(e.message).toBe("load cuvette_native failed: no prebuilt native addon for linux-riscv64")
  })

  it("fromCause keeps an existing NativeError and reads Node's string codes", () => {
    const inner = new NativeError({ reason: "ETIMEDOUT", operation: "x" })
    expect(fromCause("y", undefined, inner)).toBe(inner)
    expect(
      fromCause("read", "3:4919", Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" })).reason,
    ).toBe("ECONNRESET")
  })
})
