/** Unix listening sockets are owner-only whatever the umask, under the Node and the Bun agent; --socket-mode widens them. */
import * as fs from "node:fs"
import { describe, expect, it } from "vitest"
import { parse } from "../src/Main.js"
import { runtimes, startAgent } from "./fixtures/runtimes.js"

for (const runtime of runtimes) {
  describe.skipIf(!runtime.available)(`unix socket mode (${runtime.name} agent)`, () => {
    it("under umask 000 the socket is created 0600", async () => {
      const agent = await startAgent(runtime, { umask: "000" })
      try {
        expect((fs.statSync(agent.sock).mode & 0o777).toString(8)).toBe("600")
        const s = await agent.connect()
        await expect(s.open("ping", {}).result).resolves.toEqual({})
        s.close()
      } finally {
        await agent.stop()
      }
    }, 60_000)

    it("--socket-mode 660 widens it to the group", async () => {
      const agent = await startAgent(runtime, { umask: "000", args: ["--socket-mode", "660"] })
      try {
        expect((fs.statSync(agent.sock).mode & 0o777).toString(8)).toBe("660")
      } finally {
        await agent.stop()
      }
    }, 60_000)
  })
}

describe("--socket-mode", () => {
  it("takes octal bits and refuses anything else", () => {
    expect(parse(["--socket-mode", "0660"]).socketMode).toBe(0o660)
    expect(() => parse(["--socket-mode", "rw"])).toThrow(/--socket-mode rw: give octal permission bits/)
  })
})
