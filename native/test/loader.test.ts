// Which addon the loader picks, and what it says when this platform has none.
import { afterEach, describe, expect, it, vi } from "vitest"
import type { NativeError } from "../lib/NativeError.js"

const arch = process.arch

const withArch = async (value: string) => {
  Object.defineProperty(process, "arch", { value, configurable: true })
  vi.resetModules() // the loader reads platform and arch once, when it is imported
  return import("../lib/Vsock.js")
}

afterEach(() => {
  Object.defineProperty(process, "arch", { value: arch, configurable: true })
  vi.resetModules()
})

describe("loader", () => {
  it.skipIf(process.platform !== "linux")(
    "a platform without a prebuilt fails on first use with NOT_BUILT naming it and the prebuilt ones (Linux)",
    async () => {
      const Vsock = await withArch("riscv64") // importing loads nothing: only vsock use needs the addon
      let error: NativeError | undefined
      try {
        Vsock.readLocalCid()
      } catch (e) {
        error = e as NativeError
      }
      expect(error?.reason).toBe("NOT_BUILT")
      expect(error?.message).toContain(
        "no prebuilt native addon for linux-riscv64 (prebuilt: linux-x64, linux-arm64, win32-x64)",
      )
      expect(error?.message).toContain("prebuilds/linux-riscv64/cuvette_native.node")
    },
  )

  it.skipIf(process.platform !== "linux" || arch !== "x64")(
    "linux-x64 loads prebuilds/linux-x64 (linux-x64 hosts only)",
    async () => {
      const { candidates, load } = await import("../lib/loader.js")
      expect(candidates()[0]).toMatch(/prebuilds\/linux-x64\/cuvette_native\.node$/)
      expect(load().platform).toBe("linux")
    },
  )
})
