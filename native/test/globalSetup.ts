// Builds this platform's prebuilds/<platform>-<arch>/cuvette_native.node if missing, so `vitest run`
// works on a fresh checkout.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")

export default function setup(): void {
  if (process.platform !== "linux" && process.platform !== "win32") return
  const addon = path.join(root, "prebuilds", `${process.platform}-${process.arch}`, "cuvette_native.node")
  if (fs.existsSync(addon)) return
  const run = spawnSync(process.execPath, [path.join(root, "scripts", "build.mjs")], {
    cwd: root,
    stdio: "inherit",
  })
  if (run.status !== 0) throw new Error("native addon build failed: run `npm run build:native` to see why")
}
