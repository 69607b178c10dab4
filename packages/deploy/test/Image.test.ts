import { Effect } from "effect"
import fc from "fast-check"
import { spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as Fat32 from "../src/Fat32.js"
import * as Image from "../src/Image.js"
import * as Vhd from "../src/Vhd.js"
import { extractPartition, has, run, sfdisk, tempDir, walk } from "./fixtures/tools.js"

const tools = has("fsck.fat") && has("mcopy") && has("sfdisk") && has("blkid")
const skipNote = tools ? "" : " (skipped: needs dosfstools, mtools and util-linux)"
const { dir, cleanup } = tempDir()
afterAll(cleanup)

const bytes = (s: string) => new TextEncoder().encode(s)
const PART = 2048 * 512 // first partition byte: 1 MiB

/** Extracts every file with mtools (recursive mcopy, times preserved) and returns the directory. */
const extractAll = (image: string, into: string): string => {
  fs.mkdirSync(into, { recursive: true })
  const r = run("mcopy", ["-s", "-m", "-n", "-i", `${image}@@${PART}`, "::/", into])
  if (r.status !== 0) throw new Error(`mcopy failed: ${r.output}`)
  return into
}

const fsck = (image: string, volumeBytes: number) => {
  const part = `${image}.part`
  extractPartition(image, PART, volumeBytes, part)
  const r = run("fsck.fat", ["-n", "-v", part])
  fs.rmSync(part)
  return r
}

const mtime = new Date(Date.UTC(2024, 4, 17, 13, 37, 42))
const hostFile = path.join(dir, "host-source.bin")
const hostBytes = crypto.randomBytes(3 * 1024 * 1024 + 123)
fs.writeFileSync(hostFile, hostBytes)
fs.utimesSync(hostFile, mtime, mtime)

const sample: ReadonlyArray<Image.File> = [
  { path: "meta-data", source: bytes("instance-id: cuvette-test\n") },
  { path: "user-data", source: bytes("#cloud-config\n") },
  { path: "empty", source: new Uint8Array(0) },
  { path: "README.TXT", source: bytes("an exact 8.3 name\n") },
  { path: "cuvette-agent", source: hostFile },
  { path: "lib/ld-linux-x86-64.so.2", source: bytes("not really a loader") },
  { path: "A rather long name, with spaces & ünïcode — ok.txt", source: bytes("lfn\n") },
  { path: "deep/er/still/Mixed.Case.Name.tar.gz", source: crypto.randomBytes(70_000) },
  ...Array.from({ length: 40 }, (_, i) => ({
    path: `many/file-number-${i}.dat`,
    source: crypto.randomBytes(i * 97),
  })),
]

const expectSameTree = (extracted: string, files: ReadonlyArray<Image.File>) => {
  expect(walk(extracted).sort()).toEqual(files.map((f) => f.path).sort())
  for (const f of files) {
    const want = typeof f.source === "string" ? fs.readFileSync(f.source) : Buffer.from(f.source)
    expect(fs.readFileSync(path.join(extracted, f.path)).equals(want), f.path).toBe(true)
  }
}

describe("Image.write checked by real tools", () => {
  it.skipIf(!tools)(
    `is a GPT disk with one CIDATA partition and a clean FAT32 volume labelled cidata${skipNote}`,
    async () => {
      const out = path.join(dir, "sample.img")
      const result = await Image.write({ out, files: sample, mtime })
      expect(result).toEqual({ out, size: fs.statSync(out).size, format: "raw" })

      const table = sfdisk(out)
      expect(table.label).toBe("gpt")
      expect(table.partitions).toHaveLength(1)
      const [p] = table.partitions
      expect(p).toMatchObject({ start: 2048, type: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7", name: "CIDATA" })
      expect(p!.start + p!.size - 1).toBe(table.lastlba)
      expect(run("sfdisk", ["--verify", out]).stdout).toContain("No errors detected")
      // libblkid's partition prober reads the GPT name; its superblock prober reads the FAT label
      expect(run("partx", ["--show", "-o", "NAME,TYPE", out]).stdout).toMatch(
        /CIDATA\s+ebd0a0a2-b9e5-4433-87c0-68b6b72699c7/,
      )
      const blkid = run("blkid", ["-p", "-O", String(PART), out]).stdout
      expect(blkid).toContain('LABEL="cidata"')
      expect(blkid).toContain('VERSION="FAT32"')

      const check = fsck(out, p!.size * 512)
      expect(check.status, check.output).toBe(0)
      expect(check.output).toMatch(/\d+ files, \d+\/\d+ clusters/)
      expect(check.output).not.toMatch(/warning|differ|error/i)

      const extracted = extractAll(out, path.join(dir, "sample-out"))
      expectSameTree(extracted, sample)
      // FAT keeps 2-second times; mcopy -m restores them
      expect(fs.statSync(path.join(extracted, "cuvette-agent")).mtime.getTime()).toBe(mtime.getTime())
      expect(fs.statSync(path.join(extracted, "meta-data")).mtime.getTime()).toBe(mtime.getTime())
      // the long name survives as written, and a short alias exists for DOS-only readers
      const listing = run("mdir", ["-i", `${out}@@${PART}`, "::/"]).stdout
      expect(listing).toContain("A rather long name, with spaces & ünïcode — ok.txt")
      expect(listing).toMatch(/META-D~1\s+26/)
    },
  )

  it.skipIf(!tools)(
    `keeps a working GPT when the primary header is destroyed (the backup is right)${skipNote}`,
    async () => {
      const out = path.join(dir, "backup.img")
      await Image.write({ out, files: sample.slice(0, 3) })
      const fd = fs.openSync(out, "r+")
      fs.writeSync(fd, Buffer.alloc(512), 0, 512, 512)
      fs.closeSync(fd)
      const r = run("sfdisk", ["--json", out])
      expect(r.stderr).toMatch(/primary GPT table is corrupt, but the backup appears OK/)
      expect(JSON.parse(r.stdout).partitiontable.partitions[0].name).toBe("CIDATA")
    },
  )

  it.skipIf(!has("qemu-img"))(
    `writes a fixed VHD that qemu-img reads as vpc with the right size and the raw bytes${has("qemu-img") ? "" : " (skipped: qemu-img not installed)"}`,
    async () => {
      const out = path.join(dir, "sample.vhd")
      const result = await Image.write({ out, format: "vhd", files: sample, label: "cuvette" })
      expect(fs.statSync(out).size).toBe(result.size + 512)
      expect(Vhd.isChsExact(result.size / 512)).toBe(true)
      const info = JSON.parse(run("qemu-img", ["info", "-f", "vpc", "--output=json", out]).stdout)
      expect(info).toMatchObject({ format: "vpc", "virtual-size": result.size })
      const raw = path.join(dir, "converted.raw")
      const conv = run("qemu-img", ["convert", "-f", "vpc", "-O", "raw", out, raw])
      expect(conv.status, conv.output).toBe(0)
      const vhd = fs.readFileSync(out)
      expect(fs.readFileSync(raw).equals(vhd.subarray(0, result.size))).toBe(true)
      expect(vhd.subarray(result.size, result.size + 8).toString("latin1")).toBe("conectix")
      expect(Vhd.checksum(vhd.subarray(result.size))).toBe(vhd.readUInt32BE(result.size + 64))
      if (tools) expect(run("blkid", ["-p", "-O", String(PART), raw]).stdout).toContain('LABEL="cuvette"')
      // an explicit size that no CHS geometry covers is rounded up, so qemu (which sizes by CHS) sees all of it
      const sized = await Image.write({ out, format: "vhd", files: sample, size: 64 * 1024 * 1024 })
      expect(sized.size).toBeGreaterThanOrEqual(64 * 1024 * 1024)
      const info2 = JSON.parse(run("qemu-img", ["info", "-f", "vpc", "--output=json", out]).stdout)
      expect(info2["virtual-size"]).toBe(sized.size)
    },
  )

  it.skipIf(!tools)(
    `honours an explicit size and refuses one too small with a clear error${skipNote}`,
    async () => {
      const out = path.join(dir, "sized.img")
      const r = await Image.write({ out, files: sample, size: 64 * 1024 * 1024 })
      expect(r.size).toBe(64 * 1024 * 1024)
      expect(fs.statSync(out).size).toBe(64 * 1024 * 1024)
      expect(fsck(out, sfdisk(out).partitions[0]!.size * 512).status).toBe(0)

      // 20 MiB cannot hold the 65525 clusters FAT32 needs
      const small = Image.write({ out: path.join(dir, "small.img"), files: sample, size: 20 * 1024 * 1024 })
      await expect(small).rejects.toMatchObject({ _tag: "ImageError", reason: "TooSmall" })
      await expect(small).rejects.toThrow(/FAT32 needs at least 65525 clusters.*use at least \d+ bytes/)
      // 40 MiB has the clusters but not room for a 50 MiB file
      const big = path.join(dir, "big-source.bin")
      fs.writeFileSync(big, "")
      fs.truncateSync(big, 50 * 1024 * 1024)
      const tooFull = Image.write({
        out: path.join(dir, "full.img"),
        files: [{ path: "big", source: big }],
        size: 40 * 1024 * 1024,
      })
      await expect(tooFull).rejects.toThrow(
        /files need \d+ clusters .* use at least \d+ bytes, or omit the size/,
      )
      expect(fs.existsSync(path.join(dir, "full.img"))).toBe(false)
      await expect(Image.write({ out, files: [], size: 1000 })).rejects.toMatchObject({
        reason: "InvalidInput",
      })
    },
  )

  it("rejects names FAT cannot hold, duplicates and bad labels, naming the path", async () => {
    const out = path.join(dir, "bad.img")
    await expect(Image.write({ out, files: [{ path: "dir/a:b", source: bytes("") }] })).rejects.toThrow(
      /"dir\/a:b": the name "a:b" cannot be stored on FAT/,
    )
    await expect(
      Image.write({
        out,
        files: [
          { path: "Agent", source: bytes("") },
          { path: "agent", source: bytes("") },
        ],
      }),
    ).rejects.toThrow(/"agent" appears twice/)
    await expect(Image.write({ out, files: [], label: "much too long a label" })).rejects.toThrow(
      /1 to 11 characters/,
    )
    await expect(
      Image.write({ out, files: [{ path: "x", source: path.join(dir, "missing") }] }),
    ).rejects.toMatchObject({
      reason: "SourceUnreadable",
    })
    const error = await Effect.runPromise(
      Effect.flip(Image.make({ out, files: [{ path: "/", source: bytes("") }] })),
    )
    expect(error).toMatchObject({ _tag: "ImageError", reason: "InvalidInput" })
    expect(error.message).toBe(`cannot write image ${out}: "/" is not a file path`)
  })

  it.skipIf(!tools)(`round-trips random trees of names and sizes through mtools${skipNote}`, async () => {
    // BMP only: mtools 4.0.32 decodes long names as UCS-2 and mangles surrogate pairs (the kernel and Windows do not)
    const nameChar = fc.constantFrom(..."abcXYZ019 -_.~+=,;[]()ü€")
    const name = fc
      .array(nameChar, { minLength: 1, maxLength: 40 })
      .map((cs) => cs.join(""))
      .filter((n) => Fat32.invalidNameReason(n) === undefined && !n.startsWith(" "))
    const entry = fc.record({
      dirs: fc.array(fc.constantFrom("d1", "Sub Dir", "a.b.c", "ÜBER"), { maxLength: 3 }),
      name,
      size: fc.oneof(
        fc.constant(0),
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 4000, max: 70_000 }),
      ),
    })
    let run_ = 0
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 25 }), async (entries) => {
        const seen = new Set<string>()
        const files: Array<Image.File> = []
        for (const e of entries) {
          const p = [...e.dirs, e.name].join("/")
          // FAT compares names case-insensitively, and a file cannot also be a directory
          const key = p.toUpperCase()
          if ([...seen].some((s) => s === key || s.startsWith(key + "/") || key.startsWith(s + "/"))) continue
          seen.add(key)
          files.push({ path: p, source: crypto.randomBytes(e.size) })
        }
        const out = path.join(dir, `prop-${run_}.img`)
        const into = path.join(dir, `prop-${run_++}`)
        await Image.write({ out, files })
        expectSameTree(extractAll(out, into), files)
        const volume = sfdisk(out).partitions[0]!.size * 512
        const check = fsck(out, volume)
        expect(check.status, check.output).toBe(0)
        fs.rmSync(out)
        fs.rmSync(into, { recursive: true })
      }),
      { numRuns: 12 },
    )
  })
})

describe("Image.write streaming", () => {
  it.skipIf(!tools)(
    `writes a 300 MiB image in bounded memory, reports progress, and the big file reads back intact${skipNote}`,
    async () => {
      // a source whose every MiB differs, so a misplaced chunk cannot go unnoticed
      const big = path.join(dir, "big-300.bin")
      const fd = fs.openSync(big, "w")
      const block = crypto.randomBytes(1024 * 1024)
      for (let i = 0; i < 300; i++) {
        block.writeUInt32LE(i, 0)
        fs.writeSync(fd, block)
      }
      fs.closeSync(fd)
      const out = path.join(dir, "big.img")
      // run in a child so its peak RSS is its own: buffering the image would need well over 300 MiB
      const script = path.join(dir, "write-big.mts")
      fs.writeFileSync(
        script,
        `import * as Image from ${JSON.stringify(path.resolve(import.meta.dirname, "../src/Image.ts"))}
let calls = 0, last = 0, monotonic = true, lastTotal = 0
const t0 = performance.now()
const r = await Image.write({ out: ${JSON.stringify(out)}, files: [{ path: "agent", source: ${JSON.stringify(big)} }],
  onProgress: (w, t) => { calls++; if (w < last) monotonic = false; last = w; lastTotal = t } })
console.log(JSON.stringify({ ...r, ms: performance.now() - t0, calls, last, lastTotal, monotonic, maxRssKiB: process.resourceUsage().maxRSS }))`,
      )
      const child = spawnSync(process.execPath, ["--import", "tsx", script], {
        cwd: path.resolve(import.meta.dirname, ".."),
        encoding: "utf8",
      })
      expect(child.status, child.stderr).toBe(0)
      const report = JSON.parse(child.stdout.trim().split("\n").pop()!)
      console.log(
        `300 MiB image: ${Math.round(report.ms)} ms, peak RSS ${Math.round(report.maxRssKiB / 1024)} MiB`,
      )
      expect(report.maxRssKiB * 1024).toBeLessThan(200 * 1024 * 1024)
      expect(report.monotonic).toBe(true)
      expect(report.calls).toBeGreaterThan(300)
      expect(report.last).toBe(report.lastTotal)
      expect(report.size).toBeGreaterThan(300 * 1024 * 1024)

      const into = path.join(dir, "big-out")
      fs.mkdirSync(into)
      const r = run("mcopy", ["-n", "-i", `${out}@@${PART}`, "::/agent", into])
      expect(r.status, r.output).toBe(0)
      const hash = (f: string) => crypto.createHash("sha256").update(fs.readFileSync(f)).digest("hex")
      expect(hash(path.join(into, "agent"))).toBe(hash(big))
      const check = fsck(out, sfdisk(out).partitions[0]!.size * 512)
      expect(check.status, check.output).toBe(0)
      expect(check.output).toMatch(/4096 bytes per cluster/) // past 260 MiB fatgen103 picks 4 KiB clusters
      for (const f of [big, out, path.join(into, "agent")]) fs.rmSync(f)
    },
    60_000,
  )
})
