// The default port, the GUID pattern, the retry timings and the temporary file writer are defined
// once, here in the protocol; every other package imports them. A second copy would drift (the client and agent once disagreed).
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "../../..")
const sources = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? sources(p) : p.endsWith(".ts") && !p.endsWith(".d.ts") ? [p] : []
  })
const files = [
  ...fs.readdirSync(path.join(root, "packages")).map((p) => path.join(root, "packages", p, "src")),
  path.join(root, "native", "lib"),
]
  .filter((d) => fs.existsSync(d))
  .flatMap(sources)
const where = (pattern: RegExp) =>
  files.filter((f) => pattern.test(fs.readFileSync(f, "utf8"))).map((f) => path.relative(root, f))

describe("one definition", () => {
  it("of the default port (4919)", () => {
    expect(where(/=\s*(4919|0x1337)\b/)).toEqual(["packages/protocol/src/Constants.ts"])
  })
  it("of the GUID pattern", () => {
    expect(where(/\[0-9a-f\]\{8\}-/i)).toEqual(["packages/protocol/src/Address.ts"])
  })
  it("of the connect backoff (50 ms doubling)", () => {
    expect(where(/50 \* 2 \*\*|exponential\(/)).toEqual(["packages/protocol/src/Retry.ts"])
  })
  it("of the temporary file name scheme (.NAME.cuvette-PID-N) and its writer", () => {
    expect(where(/\.cuvette-(\$\{|\(\\d)/)).toEqual(["packages/protocol/src/node/TempFile.ts"])
  })
})
