#!/usr/bin/env node
// Bundles the npm CLI into dist/cuvette.mjs, which bin/cuvette.mjs runs: the CLI, the workspace packages it uses
// and Effect in one file start about three times faster than Node loading Effect's few hundred modules one by one.
// @cuvette/native stays outside: it finds its prebuilt addon relative to its own files.
import * as path from "node:path"
import * as esbuild from "esbuild"

const pkg = path.resolve(import.meta.dirname, "..")

await esbuild.build({
  entryPoints: [path.join(pkg, "src", "bin.ts")],
  outfile: path.join(pkg, "dist", "cuvette.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  conditions: ["@cuvette/source"], // workspace packages from their TypeScript sources
  external: ["@cuvette/native", "msgpackr-extract"],
  // Bundled CommonJS (msgpackr's optional native part) calls require().
  banner: {
    js: 'import { createRequire as __cuvetteRequire } from "node:module"; const require = __cuvetteRequire(import.meta.url);',
  },
  logLevel: "warning",
})
