#!/usr/bin/env node
// `npx cuvette-agent`: the built agent (dist/bin.js) when present, else the TypeScript sources
// through tsx, resolving workspace packages to their sources as the tests do.
import * as fs from "node:fs"
import { register } from "node:module"

// Before anything touches the libuv thread pool (tsx does): a serial port keeps one thread blocked.
process.env.UV_THREADPOOL_SIZE ??= "16"

const dist = new URL("../dist/bin.js", import.meta.url)
if (fs.existsSync(dist)) {
  await import(dist.href)
} else {
  // Workspace packages export their TS sources under the "@cuvette/source" condition.
  register(
    "data:text/javascript," +
      encodeURIComponent(
        `export async function resolve(s, c, next) { return next(s, { ...c, conditions: [...c.conditions, "@cuvette/source"] }) }`,
      ),
  )
  const { register: registerTsx } = await import("tsx/esm/api")
  registerTsx()
  await import(new URL("../src/bin.ts", import.meta.url).href)
}
