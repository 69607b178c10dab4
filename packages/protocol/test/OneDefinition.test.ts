// The default port, the GUID pattern, the retry timings, the errno hints and the temporary file writer
// are defined once, in the protocol; every other package imports them. A second copy drifts (the client
// and agent once disagreed on the port, deploy accepted GUIDs the targets refuse, native and the CLI worded
// the same errno apart).
import * as fs from "node:fs"
import * as path from "node:path"
import { describe, expect, it } from "vitest"

const root = path.resolve(import.meta.dirname, "../../..")
const sources = (dir: string): Array<string> =>
  fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? sources(p) : p.endsWith(".ts") && !p.endsWith(".d.ts") ? [p] : []
  })
const under = (dirs: ReadonlyArray<string>) => dirs.filter((d) => fs.existsSync(d)).flatMap(sources)
const library = under([
  ...fs.readdirSync(path.join(root, "packages")).map((p) => path.join(root, "packages", p, "src")),
  path.join(root, "native", "lib"),
])
const everywhere = [...library, ...under([path.join(root, "e2e", "src")])]

// Comments may name the port or describe a loop; only code (strings included) counts.
const code = (file: string) =>
  fs.readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|(^|[^:\\])\/\/.*$/gm, "$1")
const where = (pattern: RegExp, files: ReadonlyArray<string> = library) =>
  files.filter((f) => pattern.test(code(f))).map((f) => path.relative(root, f))

describe("one definition", () => {
  it("of the default port (4919): no other literal, in code or in a message", () => {
    expect(where(/(?<![0-9])4919(?![0-9])|0x1337/i, everywhere)).toEqual([
      "packages/protocol/src/Constants.ts",
    ])
  })

  it("of the GUID pattern: no other hex-digit count, nor braces and dashes stripped to count digits", () => {
    // Address.isGuid refuses a half-braced "{a42e...878"; a check that strips `{}-` and counts 32
    // digits takes it (deploy's did).
    const guid = /\[0-9a-f(A-F)?\]\{(8|32)\}|\[\{\}-\]|\[-\{\}\]/i
    expect(where(guid, everywhere)).toEqual(["packages/protocol/src/Address.ts"])
  })

  it("of retry and backoff: schedules in Retry.ts, no hand-written doubling or sleep-and-retry loop", () => {
    // A doubling delay (`wait * 2`, `delay <<= 1`, `base * 2 ** attempt`), or a loop whose failure
    // branch sleeps and goes round again, is a schedule written by hand: use Retry (Effect Schedule).
    const doubling =
      /exponential\(|\b\w*(delay|wait|pause|backoff|interval)\w*\s*(\*=?\s*2\b|<<=?\s*1\b)|\*\s*2\s*\*\*\s*\w*(attempt|retr|tries)/i
    const sleepInCatch =
      /\b(while|for)\s*\([^)]*\)\s*\{[^]{0,800}?\bcatch\b[^]{0,300}?\bawait\s+(sleep|pause|delay|new Promise\(\s*\(?\w*\)?\s*=>\s*setTimeout)\b/
    // Polls at a fixed cadence, not retries: kmsg -f reads /dev/kmsg while it is empty, as `tail -f`
    // does; a serial port reads EOF while no host is attached (its hot read loop stays free of Effect).
    const polls = ["packages/agent/src/handlers/System.ts", "packages/agent/src/transports/serial.ts"]
    expect({
      doubling: where(doubling),
      sleepInCatch: where(sleepInCatch).filter((f) => !polls.includes(f)),
    }).toEqual({ doubling: ["packages/protocol/src/Retry.ts"], sleepInCatch: [] })
  })

  it("of the errno hints: one table in Hints.ts (Errors.ts says what a code means, not what to do)", () => {
    // An errno name mapped to words, as an object entry or a switch case that returns a sentence.
    const table =
      /\bE[A-Z0-9]{2,}\s*:\s*["'`][^"'`\n]*\s[^"'`\n]*["'`]|case\s+"E[A-Z0-9]{2,}":(\s*case\s+"[A-Z0-9_]+":)*\s*return\s+["'`][^"'`\n]*\s/
    expect(where(table, everywhere)).toEqual([
      "packages/protocol/src/Errors.ts",
      "packages/protocol/src/Hints.ts",
    ])
  })
  it("of the temporary file name scheme (.NAME.cuvette-PID-N) and its writer", () => {
    expect(where(/\.cuvette-(\$\{|\(\\d)/)).toEqual(["packages/protocol/src/node/TempFile.ts"])
  })
})
