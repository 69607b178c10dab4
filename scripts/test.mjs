#!/usr/bin/env node
// The one test command (README, .ci/run): lint, format, barrel and text checks, the API reference in
// docs/api being current, typecheck, then every project's tests through Nx (cached), ending with a plain
// "N passed, N failed, N skipped" line computed from the vitest JSON reports.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const env = { ...process.env, NX_DAEMON: "false", NX_NO_CLOUD: "true", NX_TUI: "false" }
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: "inherit", env }).status ?? 1

const reports = path.join(root, "reports", "test")
fs.rmSync(reports, { recursive: true, force: true })

let failedSteps = 0
const step = (name, cmd, args) => {
  console.log(`\n== ${name}`)
  if (run(cmd, args) !== 0) {
    failedSteps++
    console.error(`== ${name}: FAILED`)
  }
}
const nx = path.join(root, "node_modules", ".bin", "nx")
step("format", path.join(root, "node_modules", ".bin", "prettier"), ["--check", "."])
step("barrels", process.execPath, [path.join(root, "scripts", "check-barrels.mjs")])
step("text", process.execPath, [path.join(root, "scripts", "check-text.mjs")])
step("api reference", process.execPath, [path.join(root, "scripts", "api-docs.mjs"), "--check"])
step("lint + typecheck + build", nx, ["run-many", "-t", "lint", "typecheck", "build", "--outputStyle=static"])
step("tests", nx, ["run-many", "-t", "test", "--outputStyle=static", "--parallel=1"])

let passed = 0
let failed = 0
let skipped = 0
const walk = (dir) =>
  (fs.existsSync(dir) ? fs.readdirSync(dir, { withFileTypes: true }) : []).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith(".json") ? [path.join(dir, e.name)] : [],
  )
for (const file of walk(reports)) {
  const report = JSON.parse(fs.readFileSync(file, "utf8"))
  passed += report.numPassedTests ?? 0
  failed += report.numFailedTests ?? 0
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0)
  // A suite that failed to load has no tests: count it, so it cannot hide.
  failed += (report.testResults ?? []).filter(
    (r) => r.status === "failed" && r.assertionResults.length === 0,
  ).length
}
failed += failedSteps
console.log(`\n${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed > 0 ? 1 : 0)
