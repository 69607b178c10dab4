// The one place the untyped addon is loaded. Its shape is declared in binding.d.ts.
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Binding, LinuxBinding, Win32Binding } from "./binding.js"
import { NativeError, unsupported } from "./NativeError.js"

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** The platforms the package ships an addon for, in prebuilds/<platform>-<arch>/ (scripts/build.mjs). */
export const PREBUILT = ["linux-x64", "linux-arm64", "win32-x64"] as const

const platform = `${process.platform}-${process.arch}`

/** Where the addon may be, in order: an explicit override, this platform's prebuilt, beside the executable. */
export const candidates = (): ReadonlyArray<string> => [
  ...(process.env.CUVETTE_NATIVE_BINDING ? [path.resolve(process.env.CUVETTE_NATIVE_BINDING)] : []),
  path.join(packageRoot, "prebuilds", platform, "cuvette_native.node"),
  // Single-file executables (bun build --compile) cannot embed a computed path: ship the .node beside them.
  path.join(path.dirname(process.execPath), "cuvette_native.node"),
]

const missing = (): string =>
  (PREBUILT as ReadonlyArray<string>).includes(platform)
    ? `the native addon for ${platform} is missing`
    : `no prebuilt native addon for ${platform} (prebuilt: ${PREBUILT.join(", ")})`

let cached: Binding | undefined

/** Loads the addon once, on first use; NOT_BUILT says which platform lacks it and where it was looked for. */
export const load = (): Binding => {
  if (cached) return cached
  const file = candidates().find((f) => fs.existsSync(f))
  if (file === undefined)
    throw new NativeError({
      reason: "NOT_BUILT",
      operation: "load cuvette_native",
      target: candidates().join(" or "),
      detail: missing(),
    })
  try {
    cached = createRequire(import.meta.url)(file) as Binding
  } catch (cause) {
    throw new NativeError({
      reason: "NOT_BUILT",
      operation: "load cuvette_native",
      target: file,
      detail: `the addon exists but does not load on ${platform} (${(cause as Error).message})`,
      cause,
    })
  }
  return cached
}

export const loadLinux = (operation: string): LinuxBinding => {
  if (process.platform !== "linux")
    throw unsupported(operation, `AF_VSOCK is Linux-only; this is ${process.platform}`)
  return load() as LinuxBinding
}

export const loadWin32 = (operation: string): Win32Binding => {
  if (process.platform !== "win32")
    throw unsupported(
      operation,
      `AF_HYPERV (Hyper-V sockets) is Windows-only; this is ${process.platform}: use vsock/hybrid vsock instead`,
    )
  return load() as Win32Binding
}
