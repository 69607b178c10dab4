// The files of the console bridge's browser page: its own (index.html, glue.js) and xterm.js's. They are read
// from the installed package (its src/ ships, xterm comes from node_modules); the single-file CLI has no
// node_modules, so its entry (scripts/build-cli.mjs) embeds them and hands them over with `embed`.
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"

/** A file the bridge serves. */
export interface Asset {
  readonly contentType: string
  readonly body: Buffer
}

const JS = "text/javascript; charset=utf-8"

/** URL path → content type and the module path it is read from. */
export const PAGE_FILES: Readonly<Record<string, { readonly contentType: string; readonly module: string }>> =
  {
    "/": {
      contentType: "text/html; charset=utf-8",
      module: "@cuvette/cli/src/internal/console/page/index.html",
    },
    "/glue.js": { contentType: JS, module: "@cuvette/cli/src/internal/console/page/glue.js" },
    "/xterm.js": { contentType: JS, module: "@xterm/xterm/lib/xterm.js" },
    "/xterm.css": { contentType: "text/css; charset=utf-8", module: "@xterm/xterm/css/xterm.css" },
    "/addon-fit.js": { contentType: JS, module: "@xterm/addon-fit/lib/addon-fit.js" },
  }

let embedded: Readonly<Record<string, string>> | undefined

/** The single-file CLI's copies of {@link PAGE_FILES}, by URL path. */
export const embed = (files: Readonly<Record<string, string>>): void => {
  embedded = files
}

const resolver = createRequire(import.meta.url)

/** Where a module path is on disk: our own files under the package root, the others through node_modules. */
const locate = (module: string): string => {
  const own = "@cuvette/cli/"
  if (!module.startsWith(own)) return resolver.resolve(module)
  return path.join(path.dirname(resolver.resolve("@cuvette/cli/package.json")), module.slice(own.length))
}

const cache = new Map<string, Asset>()

/** The asset served at `urlPath`, or undefined when there is none; throws when a page file is missing. */
export const pageAsset = (urlPath: string): Asset | undefined => {
  const file = PAGE_FILES[urlPath]
  if (file === undefined) return undefined
  let asset = cache.get(urlPath)
  if (asset === undefined) {
    const text = embedded?.[urlPath]
    const body = text !== undefined ? Buffer.from(text) : fs.readFileSync(locate(file.module))
    asset = { contentType: file.contentType, body }
    cache.set(urlPath, asset)
  }
  return asset
}
