#!/usr/bin/env node
// `cuvette`. Runs the built CLI when there is one: dist/cuvette.mjs, the one-file bundle the build writes
// (scripts/bundle.mjs), else tsc's dist/bin.js. In an unbuilt source checkout it bundles src/ and the
// workspace packages it uses (resolved through the "@cuvette/source" export condition) with esbuild
// into node_modules/.cache/ once per source change, which starts about three times faster than running the
// TypeScript through loader hooks; without esbuild it falls back to tsx. So `npx cuvette` works from
// the repository root with no build step.
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { register } from "node:module"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const pkg = path.resolve(here, "..")
const built = [path.join(pkg, "dist", "cuvette.mjs"), path.join(pkg, "dist", "bin.js")].find((f) =>
  fs.existsSync(f),
)

// Workspace packages bundled from source; everything else (effect, msgpackr, @cuvette/native with its
// .node addon found relative to its own files) is imported from node_modules at run time.
const bundled = ["cli", "client", "protocol", "deploy"].map((p) => path.resolve(pkg, "..", p, "src"))

const sourceKey = () => {
  const h = createHash("sha1")
  const walk = (dir) => {
    let entries
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (e.name.endsWith(".ts")) {
        const s = fs.statSync(p)
        h.update(`${p}\0${s.mtimeMs}\0${s.size}\n`)
      }
    }
  }
  for (const dir of bundled) walk(dir)
  return h.digest("hex").slice(0, 16)
}

const bundle = async () => {
  const cache = path.join(pkg, "node_modules", ".cache", "cuvette-cli")
  const out = path.join(cache, `bin-${sourceKey()}.mjs`)
  if (fs.existsSync(out)) return out
  const esbuild = await import("esbuild")
  fs.mkdirSync(cache, { recursive: true })
  const tmp = `${out}.${process.pid}.tmp`
  await esbuild.build({
    entryPoints: [path.join(pkg, "src", "bin.ts")],
    outfile: tmp,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    conditions: ["@cuvette/source"],
    plugins: [
      {
        name: "external-packages",
        setup(build) {
          build.onResolve({ filter: /^[^./]/ }, (args) =>
            /^@cuvette\/(cli|client|protocol|deploy)(\/|$)/.test(args.path)
              ? undefined
              : { path: args.path, external: true },
          )
        },
      },
    ],
    logLevel: "silent",
  })
  fs.renameSync(tmp, out)
  for (const old of fs.readdirSync(cache)) {
    if (old.startsWith("bin-") && path.join(cache, old) !== out && !old.endsWith(".tmp")) {
      fs.rmSync(path.join(cache, old), { force: true })
    }
  }
  return out
}

if (built !== undefined) {
  await import(pathToFileURL(built).href)
} else {
  let entry
  try {
    entry = await bundle()
  } catch {
    entry = undefined
  }
  if (entry !== undefined) {
    await import(pathToFileURL(entry).href)
  } else {
    const { register: registerTsx } = await import("tsx/esm/api")
    registerTsx()
    // Registered after tsx, so it runs first and hands tsx the extra condition.
    const hook = `export async function resolve(specifier, context, next) {
  const conditions = context.conditions.includes("@cuvette/source") ? context.conditions : [...context.conditions, "@cuvette/source"]
  return next(specifier, { ...context, conditions })
}`
    register(`data:text/javascript,${encodeURIComponent(hook)}`)
    await import(pathToFileURL(path.join(pkg, "src", "bin.ts")).href)
  }
}
