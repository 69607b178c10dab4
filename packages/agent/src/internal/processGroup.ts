import * as os from "node:os"

/** True for a signal name this OS knows (`SIGTERM`, ...). */
export const isSignal = (name: string): name is NodeJS.Signals => name in os.constants.signals

/** Signals every process of a child's group (it leads its own session, so its pid is the group id). */
export const signalGroup = (pid: number, signal: NodeJS.Signals): boolean => {
  try {
    process.kill(process.platform === "win32" ? pid : -pid, signal)
    return true
  } catch {
    // Already gone (ESRCH): nothing left to signal.
    return false
  }
}
