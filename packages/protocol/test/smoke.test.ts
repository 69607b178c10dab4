import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { ByteStream, Session } from "../src/index.js"

const identity = { name: "test-agent", version: "0", os: "linux", arch: "x64", hostname: "h" }

describe("smoke", () => {
  it("round-trips ping and streams a body", async () => {
    const [a, b] = ByteStream.pair()
    Effect.runFork(
      Session.serve(b, {
        identity,
        handlers: {
          ping: () => Effect.succeed({}),
          readFile: (args, call) =>
            Effect.promise(async () => {
              const total = args.length ?? 0
              call.emit({ _tag: "Opened", size: total, mode: 0o644 })
              for (let sent = 0; sent < total; sent += 65536)
                await call.stdout.write(new Uint8Array(Math.min(65536, total - sent)).fill(7))
              return { bytes: total }
            }),
          exec: () => Effect.never,
        },
      }),
    )
    const session = await Session.openClient(a)
    expect(session.welcome.agent.name).toBe("test-agent")
    await expect(session.open("ping", {}).result).resolves.toEqual({})
    const call = session.open("readFile", { path: "/x", length: 10 * 1024 * 1024 })
    let n = 0
    for await (const chunk of call.stdout) n += chunk.byteLength
    expect(n).toBe(10 * 1024 * 1024)
    await expect(call.result).resolves.toEqual({ bytes: 10 * 1024 * 1024 })
    const ex = session.open("exec", { argv: ["sleep"] })
    setTimeout(() => ex.cancel(), 20)
    await expect(ex.result).rejects.toMatchObject({ code: "CANCELLED" })
    const bad = session.open("stat", { path: "" })
    await expect(bad.result).rejects.toMatchObject({
      code: "EINVAL",
      message: expect.stringContaining("path"),
    })
    session.close()
  })
})
