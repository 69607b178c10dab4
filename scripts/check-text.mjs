#!/usr/bin/env node
// Text the repository must not contain (a step of `npm test` and `npm run lint`): citations of a design
// document the repository does not have (docs/architecture.md and the other docs/ pages are its own), and
// doc comments that say nothing (one that only points at "the summary", or a bare link to the
// declaration's own name).
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const root = path.resolve(import.meta.dirname, "..")

const rules = [
  {
    pattern: /design\.md/i,
    why: "cites a design document the repository does not have: cite docs/, or say it here",
  },
  {
    pattern: /\/\*\*\s*See the\s+summary\.?\s*\*\//,
    why: "an empty doc comment: write what it is, or remove it",
  },
  {
    // `/** See {@link X}. */` right above `export type X = ...`: the declaration links to itself.
    pattern: /\/\*\*\s*See \{@link (\w+)\}\.?\s*\*\/\s*\n\s*export (?:type|interface) \1\b/,
    why: "a doc comment that only links to its own name: say what the type is",
  },
]

const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], {
  cwd: root,
  encoding: "utf8",
})
  .split("\0")
  .filter((f) => f !== "" && !f.endsWith("package-lock.json") && fs.existsSync(path.join(root, f)))

let found = 0
for (const file of files) {
  const text = fs.readFileSync(path.join(root, file), "utf8")
  if (text.includes("\0")) continue // binary
  for (const { pattern, why } of rules) {
    const m = new RegExp(pattern.source, "g")
    for (const hit of text.matchAll(m)) {
      const line = text.slice(0, hit.index).split("\n").length
      console.error(`${file}:${line}: ${why}`)
      found++
    }
  }
}
if (found > 0) process.exit(1)
