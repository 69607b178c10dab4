// Issue 6, scenario 3: qemu-ga as a peer in the same guest as Cuvette's agent (mode qga: the guest starts
// both). The same exec and the same copy go through both, timed side by side in this process (the
// @cuvette/client library against src/Qga.ts, so neither pays for a CLI process start); the table with
// ratios is printed and written to reports/e2e/side-by-side.json.
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { afterAll, afterEach, describe, expect, it } from "vitest"
import * as Qga from "../src/Qga.js"
import { setup } from "../src/setup.js"
import * as Vm from "../src/Vm.js"
import { bootForTest } from "./fixtures/boot.js"
import { buildAgent, cidataDisk, repoRoot, sha256, tempDirForTest } from "./fixtures/agent.js"

const env = await setup()
afterEach(() => Vm.killAll())
afterAll(() => Vm.killAll())
const skipReason = env.skipReason ?? env.qgaSkipReason

// qemu-ga moves file data as base64 JSON (~3-6 MiB/s under TCG): 64 MiB costs it ~30 s, which the suite
// affords; E2E_SIDE_BY_SIDE_MIB=16 for a lighter run.
const COPY_MIB = Number(process.env.E2E_SIDE_BY_SIDE_MIB ?? 64)
const EXEC_RUNS = 5

const median = (xs: ReadonlyArray<number>): number => {
  const sorted = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const timeMs = async <A>(f: () => Promise<A>): Promise<[A, number]> => {
  const t0 = performance.now()
  const a = await f()
  return [a, performance.now() - t0]
}

interface Row {
  readonly step: string
  readonly cuvetteMs: number
  readonly qgaMs: number
}

describe.skipIf(skipReason !== undefined)("qemu-ga side by side with Cuvette's agent", () => {
  const assets = env.assets!

  it(`3. the same exec and the same ${COPY_MIB} MiB copy through both, timed`, async () => {
    const dir = tempDirForTest("cuvette-e2e-s3-")
    await buildAgent()
    const disk = await cidataDisk("linux", dir)
    const vm = await bootForTest({
      kernel: assets.vmlinux,
      initrd: assets.initrdQga!,
      disk,
      mode: "qga",
      serialPorts: [Vm.Ports.agent, Vm.Ports.qga],
      watchdogMs: 200_000,
    })
    const { Client } = await import("@cuvette/client")
    const qga = await Qga.make(await vm.connect(Vm.Ports.qga, 30_000), { syncTimeoutMs: 30_000 })
    const agent = await Client.wait(`serial:${vm.sockets[Vm.Ports.agent]}`, { timeoutMs: 90_000 })
    const rows: Array<Row> = []
    try {
      // Warm both once (page cache, first exec of each binary), then take the median of several runs.
      await agent.exec(["/bin/true"])
      await qga.exec("/bin/true")
      for (const argv of [["/bin/echo", "hi"], ["/bin/true"]] as const) {
        const b: Array<number> = []
        const q: Array<number> = []
        for (let i = 0; i < EXEC_RUNS; i++) {
          const [br, bms] = await timeMs(() => agent.exec(argv))
          expect(br.exitCode).toBe(0)
          expect(Buffer.from(br.stdout).toString()).toBe(argv[0] === "/bin/echo" ? "hi\n" : "")
          b.push(bms)
          const [qr, qms] = await timeMs(() => qga.exec(argv[0], argv.slice(1)))
          expect(qr.exitcode).toBe(0)
          expect(qr.stdout.toString()).toBe(argv[0] === "/bin/echo" ? "hi\n" : "")
          q.push(qms)
        }
        rows.push({
          step: `exec ${argv.join(" ")} (median of ${EXEC_RUNS})`,
          cuvetteMs: median(b),
          qgaMs: median(q),
        })
      }

      const data = randomBytes(COPY_MIB * 2 ** 20)
      const want = sha256(data)
      const [, bUp] = await timeMs(() => agent.upload(data, "/tmp/cuvette.bin"))
      const [, qUp] = await timeMs(() => qga.writeFile("/tmp/qga.bin", data))
      rows.push({ step: `copy ${COPY_MIB} MiB host -> guest`, cuvetteMs: bUp, qgaMs: qUp })
      const sums = await agent.exec(["sha256sum", "/tmp/cuvette.bin", "/tmp/qga.bin"])
      const lines = Buffer.from(sums.stdout).toString().trim().split("\n")
      expect(lines.map((l) => l.split(" ")[0])).toEqual([want, want])
      const [bBack, bDown] = await timeMs(() => agent.readFile("/tmp/cuvette.bin"))
      const [qBack, qDown] = await timeMs(() => qga.readFile("/tmp/qga.bin"))
      expect(sha256(bBack)).toBe(want)
      expect(sha256(qBack)).toBe(want)
      rows.push({ step: `copy ${COPY_MIB} MiB guest -> host`, cuvetteMs: bDown, qgaMs: qDown })
    } finally {
      await agent.close().catch(() => {})
    }

    const table = rows.map((r) => ({
      step: r.step,
      cuvette_ms: Math.round(r.cuvetteMs * 10) / 10,
      qemu_ga_ms: Math.round(r.qgaMs * 10) / 10,
      qemu_ga_over_cuvette: Math.round((r.qgaMs / r.cuvetteMs) * 100) / 100,
    }))
    const lines = [
      `${"step".padEnd(36)} ${"cuvette".padStart(10)} ${"qemu-ga".padStart(10)} ${"qga/cuvette".padStart(12)}`,
      ...table.map(
        (r) =>
          `${r.step.padEnd(36)} ${`${r.cuvette_ms.toFixed(1)} ms`.padStart(10)} ${`${r.qemu_ga_ms.toFixed(1)} ms`.padStart(10)} ${`${r.qemu_ga_over_cuvette.toFixed(2)}x`.padStart(12)}`,
      ),
    ]
    console.log(`[e2e side by side] same guest, TCG, one virtio-serial port each\n${lines.join("\n")}`)
    const out = path.join(repoRoot, "reports", "e2e", "side-by-side.json")
    fs.mkdirSync(path.dirname(out), { recursive: true })
    fs.writeFileSync(
      out,
      `${JSON.stringify(
        {
          kernel: assets.kernelRelease,
          accel: process.env.E2E_ACCEL ?? "tcg",
          copyMiB: COPY_MIB,
          execRuns: EXEC_RUNS,
          rows: table,
        },
        null,
        2,
      )}\n`,
    )

    // qemu-ga ends the guest: its guest-shutdown wrapper powers off once the agent is gone too.
    await qga.shutdown()
    qga.close()
    expect(await vm.exited).toBe(0)
    expect(vm.watchdogFired()).toBe(false)
  })
})

if (skipReason !== undefined) {
  it.skip(`qemu-ga side by side: cannot run here: ${skipReason}`, () => {})
}
