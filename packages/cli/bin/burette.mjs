#!/usr/bin/env node
// `burette`: runs the built CLI (dist/) when present, otherwise the TypeScript sources through tsx,
// resolving workspace packages to their sources (the "@burette/source" export condition), so
// `npx burette` works from a fresh checkout without a build.
import { existsSync } from "node:fs"
import { register } from "node:module"

const built = new URL("../dist/bin.js", import.meta.url)
if (existsSync(built)) {
  await import(built.href)
} else {
  const { register: registerTsx } = await import("tsx/esm/api")
  registerTsx()
  // Registered after tsx, so it runs first and hands tsx the extra condition.
  const hook = `export async function resolve(specifier, context, next) {
  const conditions = context.conditions.includes("@burette/source") ? context.conditions : [...context.conditions, "@burette/source"]
  return next(specifier, { ...context, conditions })
}`
  register(`data:text/javascript,${encodeURIComponent(hook)}`)
  await import(new URL("../src/bin.ts", import.meta.url).href)
}
