// The Bun-compiled agent as shipped (dist/agent/linux-x64 through its launcher), run on this host:
// it must not pick up a .env or bunfig.toml from the directory it starts in (Bun's executables do by
// default), or those variables would reach every command it runs.
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { buildAgent, cliOk, tempDirForTest } from "./fixtures/agent.js"

describe("the compiled agent", () => {
  it("ignores .env and bunfig.toml in its working directory", async () => {
    const { agent } = await buildAgent()
    const dir = tempDirForTest("cuvette-compiled-")
    fs.writeFileSync(path.join(dir, ".env"), "CUVETTE_ENV_PROBE=from-dotenv\n")
    fs.writeFileSync(path.join(dir, "bunfig.toml"), 'preload = ["./preload.ts"]\n')
    fs.writeFileSync(path.join(dir, "preload.ts"), 'process.env.CUVETTE_ENV_PROBE = "from-bunfig"\n')
    const sock = path.join(dir, "agent.sock")
    const child = spawn(path.join(path.dirname(agent), "cuvette-agent.sh"), ["--listen", `unix:${sock}`], {
      cwd: dir,
      stdio: ["ignore", "ignore", "pipe"],
    })
    try {
      let stderr = ""
      await new Promise<void>((resolve, reject) => {
        child.stderr!.on("data", (d: Buffer) => {
          stderr += d
          if (stderr.includes("CUVETTE READY")) resolve()
        })
        child.once("exit", (code) => reject(new Error(`agent exited ${code}: ${stderr}`)))
      })
      const r = await cliOk(`unix:${sock}`, ["exec", "--", "sh", "-c", 'echo "${CUVETTE_ENV_PROBE:-absent}"'])
      expect(r.stdout.toString()).toBe("absent\n")
    } finally {
      child.kill("SIGKILL")
    }
  }, 120_000)
})
