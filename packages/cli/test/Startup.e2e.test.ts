// The npm CLI starts from one bundled file (dist/cuvette.mjs): Node loading Effect's few hundred modules one by
// one was most of its start time. A resolve hook records every module `cuvette ping` loads.
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runCli, startAgent } from "./fixtures/harness.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-startup-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

describe("npm CLI start", () => {
  it("`cuvette ping` runs the bundle and loads no Effect module from node_modules", async () => {
    const log = path.join(dir, "modules.log")
    const hook = `import { appendFileSync } from "node:fs"
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context)
  appendFileSync(${JSON.stringify(log)}, r.url + "\\n")
  return r
}`
    const preload = path.join(dir, "record-modules.mjs")
    fs.writeFileSync(
      preload,
      `import { register } from "node:module"\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)})\n`,
    )
    const agent = await startAgent()
    try {
      const r = await runCli(["-H", agent.target, "ping"], { env: { NODE_OPTIONS: `--import ${preload}` } })
      expect(r.code, r.stderr).toBe(0)
    } finally {
      await agent.stop()
    }
    const urls = fs.readFileSync(log, "utf8").trim().split("\n")
    expect(urls.some((u) => u.endsWith("/packages/cli/dist/cuvette.mjs"))).toBe(true)
    expect(urls.filter((u) => u.includes("/node_modules/effect/"))).toEqual([])
  })
})
