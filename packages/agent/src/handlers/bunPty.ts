// Bun's PTY (`Bun.spawn` with `terminal`) for Pty.ts. Loaded only when `process.versions.bun` is set;
// nothing here runs under Node. Typechecked against bun-types (tsconfig.bun.json); each export has the
// type Pty.ts expects of it (ptyBackend.ts).
import * as os from "node:os"
import type { PtyBackend } from "./ptyBackend.js"

/** A signal's name; Bun reports a number for a signal it has no name for. */
const signalName = (signal: NodeJS.Signals | number | null): string | null =>
  typeof signal === "number"
    ? (Object.entries(os.constants.signals).find(([, n]) => n === signal)?.[0] ?? String(signal))
    : signal

export const Terminal: PtyBackend["Terminal"] = Bun.Terminal

export const spawn: PtyBackend["spawn"] = (argv, options) => {
  const proc = Bun.spawn([...argv], options)
  const terminal = proc.terminal
  // Never so: Bun attaches a terminal whenever the terminal option is given.
  if (terminal === undefined) throw new TypeError("Bun.spawn gave no terminal")
  return {
    pid: proc.pid,
    exited: proc.exited,
    get exitCode() {
      return proc.exitCode
    },
    get signalCode() {
      return signalName(proc.signalCode)
    },
    terminal,
  }
}
