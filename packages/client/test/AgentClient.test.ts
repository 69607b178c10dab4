import { Errors, Records } from "@cuvette/protocol"
import { it } from "@effect/vitest"
import { Chunk, Effect, Stream } from "effect"
import { Writable } from "node:stream"
import { describe, expect } from "vitest"
import * as AgentClient from "../src/AgentClient.js"

// ping answers after 20 ms of real time: a round trip that includes the handler measures at least that.
const PING_HANDLER_MS = 20
const testLayer = AgentClient.layerTest({
  ping: () => Effect.promise(() => new Promise((resolve) => setTimeout(() => resolve({}), PING_HANDLER_MS))),
  exec: (args, call) =>
    Effect.promise(async () => {
      call.emit({ _tag: "Started", pid: 42 })
      await call.stdout.write(new TextEncoder().encode(args.argv.join(" ")))
      return { exitCode: 7, signal: null, timedOut: false, durationMs: 1 }
    }),
  stat: (args) => Effect.fail(Errors.make("ENOENT", `no such file or directory: ${args.path}`)),
  kmsg: (_args, call) =>
    Effect.promise(async () => {
      await call.stdout.write(new TextEncoder().encode("6,1,10,-;one\n3,2,20,-;two\n"))
      return { records: 2 }
    }),
  list: (_args, call) =>
    Effect.promise(async () => {
      const entry = (name: string) => ({ name, type: "file" as const, size: 1, mode: 0o644, mtimeMs: 0 })
      await call.stdout.write(Records.encodeBatch([entry("b"), entry("c")]))
      await call.stdout.write(Records.encodeBatch([entry("a")]))
      return { count: 3 }
    }),
  readFile: (_args, call) =>
    Effect.promise(async () => {
      call.emit({ _tag: "Opened", size: 6, mode: 0o644 })
      await call.stdout.write(new TextEncoder().encode("abc"))
      await call.stdout.write(new TextEncoder().encode("def"))
      return { bytes: 6 }
    }),
})

describe("AgentClient", () => {
  it.layer(testLayer)("layerTest", (it) => {
    it.effect("runs operations as Effects", () =>
      Effect.gen(function* () {
        const agent = yield* AgentClient.AgentClient
        const ms = yield* agent.ping
        expect(ms).toBeGreaterThanOrEqual(PING_HANDLER_MS - 1) // timers may fire up to 1 ms early
        expect(ms).toBeLessThan(5000)
        const r = yield* agent.exec(["echo", "hi"])
        expect(r.exitCode).toBe(7)
        expect(new TextDecoder().decode(r.stdout)).toBe("echo hi")
      }),
    )

    it.effect("fails with the agent's AgentError", () =>
      Effect.gen(function* () {
        const agent = yield* AgentClient.AgentClient
        const e = yield* Effect.flip(agent.stat("/nope"))
        expect(e).toMatchObject({ _tag: "AgentError", code: "ENOENT" })
      }),
    )

    it.effect("streams kmsg records and file bodies", () =>
      Effect.gen(function* () {
        const agent = yield* AgentClient.AgentClient
        const records = yield* Stream.runCollect(agent.kmsg())
        expect(Chunk.toReadonlyArray(records).map((r) => [r.level, r.message])).toEqual([
          [6, "one"],
          [3, "two"],
        ])
        const body = yield* Stream.runCollect(agent.readFileStream("/f"))
        expect(
          Chunk.toReadonlyArray(body)
            .map((c) => new TextDecoder().decode(c))
            .join(""),
        ).toBe("abcdef")
      }),
    )

    it.effect("a download into a failing Writable fails with a HostStreamError, not an AgentError", () =>
      Effect.gen(function* () {
        const agent = yield* AgentClient.AgentClient
        const broken = new Writable({
          write: (_c, _e, cb) => cb(Object.assign(new Error("write EPIPE"), { code: "EPIPE" })),
        })
        const e = yield* Effect.flip(agent.download("/f", broken))
        expect(e).toMatchObject({ _tag: "HostStreamError", operation: "download", code: "EPIPE" })
      }),
    )

    it.effect("streams directory entries in the agent's order; list sorts them", () =>
      Effect.gen(function* () {
        const agent = yield* AgentClient.AgentClient
        const streamed = yield* Stream.runCollect(agent.entries("/d"))
        expect(Chunk.toReadonlyArray(streamed).map((e) => e.name)).toEqual(["b", "c", "a"])
        expect((yield* agent.list("/d")).map((e) => e.name)).toEqual(["a", "b", "c"])
      }),
    )
  })

  it.effect("layer() fails with a ConnectError when nothing listens", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(
        Effect.provide(AgentClient.AgentClient, AgentClient.layer("unix:/nonexistent/agent.sock")),
      )
      expect(e).toMatchObject({ _tag: "ConnectError", reason: "NOT_FOUND" })
    }),
  )
})
