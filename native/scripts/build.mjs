#!/usr/bin/env node
// Builds build/Release/cuvette_native.node with node-gyp against the headers of the Node running this
// script. `--nodedir` points at the local Node prefix (headers in include/node) so node-gyp never tries
// to download a headers tarball: the build works offline and matches the running ABI.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")
const nodedir = process.env.CUVETTE_NODEDIR ?? path.resolve(process.execPath, "../..")
if (!fs.existsSync(path.join(nodedir, "include", "node", "node_api.h"))) {
  console.error(
    `build.mjs: no Node headers under ${nodedir}/include/node. Install the Node development headers ` +
      `(Debian: nodejs includes them; nvm/official tarballs ship them) or set CUVETTE_NODEDIR.`,
  )
  process.exit(1)
}
const require = createRequire(import.meta.url)
const gyp = require.resolve("node-gyp/bin/node-gyp.js")
const args = [gyp, "rebuild", `--nodedir=${nodedir}`, "--release", ...process.argv.slice(2)]
const run = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" })
process.exit(run.status ?? 1)
