// The one place the untyped addon is loaded. Its shape is declared in binding.d.ts.
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { Binding, LinuxBinding, Win32Binding } from "./binding.js"
import { NativeError, unsupported } from "./NativeError.js"

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** Where the addon may be, in order: an explicit override, the node-gyp output, the mingw cross-build. */
export const candidates = (): ReadonlyArray<string> => [
  ...(process.env.CUVETTE_NATIVE_BINDING ? [path.resolve(process.env.CUVETTE_NATIVE_BINDING)] : []),
  path.join(packageRoot, "build", "Release", "cuvette_native.node"),
  ...(process.platform === "win32"
    ? [path.join(packageRoot, "build", `win32-${process.arch}`, "cuvette_native.node")]
    : []),
  // Single-file executables (bun build --compile) cannot embed a computed path: ship the .node beside them.
  path.join(path.dirname(process.execPath), "cuvette_native.node"),
]

let cached: Binding | undefined

/** Loads the addon once; NOT_BUILT names the build command when no candidate exists. */
export const load = (): Binding => {
  if (cached) return cached
  const file = candidates().find((f) => fs.existsSync(f))
  if (file === undefined)
    throw new NativeError({
      reason: "NOT_BUILT",
      operation: "load cuvette_native",
      target: candidates().join(" or "),
      detail: "the native addon is not built",
    })
  try {
    cached = createRequire(import.meta.url)(file) as Binding
  } catch (cause) {
    throw new NativeError({
      reason: "NOT_BUILT",
      operation: "load cuvette_native",
      target: file,
      detail: `the addon exists but does not load (${(cause as Error).message}); rebuild it for this Node/Bun and arch`,
      cause,
    })
  }
  return cached
}

/** True when the addon is present and loads. */
export const isLoadable = (): boolean => {
  try {
    load()
    return true
  } catch {
    return false
  }
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
