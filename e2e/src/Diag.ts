/**
 * Diag: runs the `ohcldiag-dev` stand-in (e2e/bin/ohcldiag-dev) against a VM's org.cuvette.diag.0
 * socket, the way `cuvette deploy vtl2` will run the real tool. Tests use it directly; the deploy step
 * gets `binPath` (on PATH or through its ohcldiag option) and `target(socket)` as the VM argument.
 */
import { spawn } from "node:child_process"
import * as path from "node:path"
import { e2eRoot } from "./setup.js"

/** Path of the executable stand-in. */
export const binPath = path.join(e2eRoot, "bin", "ohcldiag-dev")

/** The `<vm>` argument ohcldiag-dev takes for a diag socket (`vsock:PATH`, as for OpenVMM). */
export const target = (socket: string): string => `vsock:${socket}`

/** How one invocation ended. */
export interface Result {
  /** Exit code; null when it was still running at `timeoutMs` and was killed. */
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  readonly timedOut: boolean
  readonly elapsedMs: number
}

/** Runs `ohcldiag-dev <vm> ...args`; after `timeoutMs` kills it by pid and reports `timedOut`. */
export const invoke = (
  socket: string,
  args: ReadonlyArray<string>,
  options: { readonly timeoutMs?: number } = {},
): Promise<Result> =>
  new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = spawn(process.execPath, [binPath, target(socket), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    })
    let stdout = ""
    let stderr = ""
    let timedOut = false
    child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s))
    child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s))
    const timer = setTimeout(() => {
      timedOut = true
      if (child.pid !== undefined) process.kill(child.pid, "SIGKILL")
    }, options.timeoutMs ?? 60_000)
    child.once("error", (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once("close", (code) => {
      clearTimeout(timer)
      resolve({ code: timedOut ? null : code, stdout, stderr, timedOut, elapsedMs: performance.now() - t0 })
    })
  })

/** `ohcldiag-dev <vm> run -- argv...`. */
export const run = (
  socket: string,
  argv: ReadonlyArray<string>,
  options: { readonly timeoutMs?: number } = {},
) => invoke(socket, ["run", "--", ...argv], options)

/** Waits until the guest's diag shell answers (`inspect build_info`). */
export const waitReady = async (socket: string, timeoutMs = 30_000): Promise<Result> => {
  const result = await invoke(socket, ["inspect", "build_info"], { timeoutMs })
  if (result.code !== 0) {
    throw new Error(`diag shell on ${socket} not ready: code ${result.code}, stderr: ${result.stderr.trim()}`)
  }
  return result
}
