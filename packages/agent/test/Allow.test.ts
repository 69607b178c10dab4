/** `--allow`: an agent that serves only some operations; the others answer DENIED and do nothing. */
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { connect, inProcess, spawnAgent, tempDir } from "./fixtures/agent.js"

const dir = tempDir()
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

describe("--allow", () => {
  it("serves only the allowed operations plus ping and info; the others answer DENIED and do nothing", async () => {
    const agent = await inProcess({ allow: ["readFile", "stat"] })
    const s = await connect(agent.sock)
    try {
      await expect(s.open("ping", {}).result).resolves.toEqual({})
      const info = await s.open("info", {}).result
      expect(info.capabilities).toEqual(["ping", "info", "readFile", "stat"])
      const marker = path.join(dir, "should-not-exist")
      await expect(s.open("exec", { argv: ["touch", marker] }).result).rejects.toMatchObject({
        code: "DENIED",
        message:
          "exec is not allowed on this agent (it serves ping, info, readFile, stat; see its --allow option)",
      })
      expect(fs.existsSync(marker)).toBe(false)
      const file = path.join(dir, "readable.txt")
      fs.writeFileSync(file, "ok")
      await expect(s.open("stat", { path: file }).result).resolves.toMatchObject({ size: 2 })
      await expect(s.open("writeFile", { path: file }).result).rejects.toMatchObject({ code: "DENIED" })
      expect(fs.readFileSync(file, "utf8")).toBe("ok")
    } finally {
      await s.close()
      await agent.stop()
    }
  })

  it("an unknown operation name is a usage error listing the real ones", async () => {
    const agent = await spawnAgent(
      ["--allow", "exec,nosuch", "--listen", `unix:${path.join(dir, "a.sock")}`],
      {
        ready: false,
      },
    )
    expect((await agent.exited).code).toBe(2)
    expect(agent.stderr).toContain("--allow nosuch: not an operation; choose from ping, info,")
  })
})
