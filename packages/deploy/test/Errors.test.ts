// Every local failure of @cuvette/deploy is a tagged error whose message says what failed, where, and
// what to do; none of these needs a VM or the image tools.
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as Bundle from "../src/Bundle.js"
import * as Cidata from "../src/Cidata.js"
import * as Gpt from "../src/Gpt.js"
import * as Image from "../src/Image.js"
import * as Ohcldiag from "../src/Ohcldiag.js"
import { fakeAgentDir } from "./fixtures/fakeElf.js"
import { tempDir } from "./fixtures/tools.js"

const { dir, cleanup } = tempDir()
afterAll(cleanup)

const failure = (p: Promise<unknown>) =>
  p.then(
    () => expect.fail("expected a rejection"),
    (e: unknown) => e as Error & { readonly _tag: string },
  )

describe("Image.write", () => {
  it("a size that is not a positive multiple of 512 is ImageError InvalidInput, and writes nothing", async () => {
    const out = path.join(dir, "bad-size.img")
    const e = await failure(Image.write({ out, files: [], size: 1000 }))
    expect(e).toMatchObject({ _tag: "ImageError", reason: "InvalidInput" })
    expect(e.message).toBe(`cannot write image ${out}: size 1000 is not a positive multiple of 512 bytes`)
    expect(fs.existsSync(out)).toBe(false)
  })

  it("a missing source file is ImageError SourceUnreadable naming it and its place on the disk", async () => {
    const out = path.join(dir, "missing.img")
    const missing = path.join(dir, "no-such-file")
    const e = await failure(Image.write({ out, files: [{ path: "etc/x", source: missing }] }))
    expect(e).toMatchObject({ _tag: "ImageError", reason: "SourceUnreadable" })
    expect(e.message).toBe(
      `cannot write image ${out}: cannot read ${missing} (for etc/x): ENOENT: no such file or directory, stat '${missing}'`,
    )
    expect(fs.existsSync(out)).toBe(false)
  })

  it("a GPT partition name over 36 UTF-16 units is ImageError InvalidInput before anything is written", async () => {
    const out = path.join(dir, "long-name.img")
    const name = "x".repeat(37)
    const e = await failure(Image.write({ out, files: [], partitionName: name }))
    expect(e).toMatchObject({ _tag: "ImageError", reason: "InvalidInput" })
    expect(e.message).toBe(
      `cannot write image ${out}: partition name: the name "${name}" is longer than 36 UTF-16 code units`,
    )
    expect(fs.existsSync(out)).toBe(false)
  })
})

describe("Gpt.entries", () => {
  it("a malformed GUID is GptError naming the field", () => {
    const layout = Gpt.layout(65536)
    const partition = { diskGuid: "not-a-guid", partitionGuid: "also-not", name: "CIDATA" }
    expect(() => Gpt.entries(layout, partition)).toThrow(
      expect.objectContaining({
        _tag: "GptError",
        message: 'invalid GPT partition: partition GUID "also-not" is not a GUID',
      }),
    )
    expect(() => Gpt.header(layout, partition, "primary", new Uint8Array(16384))).toThrow(
      expect.objectContaining({
        _tag: "GptError",
        message: expect.stringContaining('disk GUID "not-a-guid"'),
      }),
    )
  })

  it("refuses a half-braced or oddly dashed GUID, as the targets' Address.isGuid does", () => {
    const layout = Gpt.layout(65536)
    const good = "a42e7cda-d03f-480c-9cc2-a4de20abb878"
    for (const bad of [
      `{${good}`,
      `${good}}`,
      "a42e7cdad03f-480c-9cc2-a4de-20abb878",
      good.replaceAll("-", ""),
    ])
      expect(() => Gpt.entries(layout, { diskGuid: good, partitionGuid: bad, name: "CIDATA" })).toThrow(
        expect.objectContaining({
          _tag: "GptError",
          message: expect.stringContaining(`"${bad}" is not a GUID`),
        }),
      )
    expect(() =>
      Gpt.entries(layout, { diskGuid: `{${good}}`, partitionGuid: good.toUpperCase(), name: "CIDATA" }),
    ).not.toThrow()
  })
})

describe("Cidata.windows", () => {
  it("a missing addon is CidataError saying how to build it", () => {
    const lone = fs.mkdtempSync(path.join(dir, "lone-"))
    const exe = path.join(lone, Cidata.WINDOWS_AGENT)
    fs.writeFileSync(exe, "MZ")
    const addon = path.join(lone, Cidata.WINDOWS_ADDON)
    expect(() => Cidata.windows({ agent: exe })).toThrow(
      expect.objectContaining({
        _tag: "CidataError",
        message:
          `cannot collect the disk contents: no ${Cidata.WINDOWS_ADDON} at ${addon}: the Windows agent needs it ` +
          "for Hyper-V sockets and --service (npm run build:agent -- --target windows-x64 puts it beside the agent)",
      }),
    )
  })
})

describe("Bundle", () => {
  it("files: a missing agent is BundleError naming it", async () => {
    const agent = path.join(dir, "no-agent")
    const e = await failure(Bundle.files({ agent }))
    expect(e._tag).toBe("BundleError")
    expect(e.message).toBe(
      `cannot assemble the Linux agent bundle: cannot read ${agent}: ENOENT: no such file or directory, open '${agent}'`,
    )
  })

  it("assemble: a missing library is BundleError naming the source and the destination", async () => {
    const agent = fakeAgentDir(path.join(dir, "fake"))
    const out = path.join(dir, "assembled")
    const lib = path.join(dir, "no-libc.so.6")
    const e = await failure(Bundle.assemble(out, agent, { "libc.so.6": lib }))
    expect(e._tag).toBe("BundleError")
    expect(e.message).toMatch(
      `cannot assemble the Linux agent bundle: cannot copy ${lib} to ${path.join(out, "lib", "libc.so.6")}: ENOENT`,
    )
  })
})

describe("Ohcldiag.deploy", () => {
  it("a missing ohcldiag-dev is OhcldiagError at wait-for-diag, saying how to get it", async () => {
    const tool = path.join(dir, "no-ohcldiag-dev")
    const e = await failure(Ohcldiag.deploy({ vm: "myvm", ohcldiag: tool }))
    expect(e).toMatchObject({ _tag: "OhcldiagError", step: "wait-for-diag" })
    expect(e.message).toBe(
      `VTL2 deploy step "wait-for-diag" failed: cannot run ${tool}: no such file (ENOENT); ` +
        `install ohcldiag-dev or pass its path (--ohcldiag)\n  command: ${tool} myvm inspect build_info`,
    )
  })
})
