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

/** A running exec timeout: the signal at `timeoutMs`, then SIGKILL `killAfterMs` later if the group lives on. */
export interface Timeout {
  /** The result's fields: whether it fired, and the last signal it sent. */
  readonly outcome: () => { readonly timedOut: boolean; readonly timeoutSignal?: NodeJS.Signals }
  readonly clear: () => void
}

/** Starts the timeout of the group led by `pid`; `timeoutMs` 0 means none. */
export const startTimeout = (
  pid: number,
  o: { readonly timeoutMs: number; readonly killSignal: NodeJS.Signals; readonly killAfterMs: number },
): Timeout => {
  let sent: NodeJS.Signals | undefined
  let escalation: ReturnType<typeof setTimeout> | undefined
  const fire = (signal: NodeJS.Signals) => {
    if (signalGroup(pid, signal)) sent = signal
  }
  const timer =
    o.timeoutMs > 0
      ? setTimeout(() => {
          fire(o.killSignal)
          if (o.killSignal !== "SIGKILL") escalation = setTimeout(() => fire("SIGKILL"), o.killAfterMs)
        }, o.timeoutMs)
      : undefined
  return {
    outcome: () => (sent === undefined ? { timedOut: false } : { timedOut: true, timeoutSignal: sent }),
    clear: () => {
      clearTimeout(timer)
      clearTimeout(escalation)
    },
  }
}
