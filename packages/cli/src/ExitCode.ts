/**
 * The one exit-code table of the `cuvette` command. `exec` exits with the guest's own code instead
 * (128+N when a signal ended it) and uses {@link ExecFailed} for its own failures, as ssh does.
 */

/** The operation succeeded. */
export const Ok = 0
/** The operation failed on the guest or on the host (missing file, permission, ...). */
export const Failed = 1
/** The command line was wrong (unknown option, missing argument, no target). */
export const Usage = 2
/** The agent could not be reached (refused, timed out, not found): try `cuvette wait`. */
export const Unreachable = 3
/** The agent refused us at the handshake: a missing or wrong token. */
export const Denied = 4
/** `exec --timeout`: the guest process exited by itself after the timeout's signal (as GNU timeout exits). */
export const TimedOut = 124
/** `exec` could not run the command or lost the agent (ssh uses 255 the same way). */
export const ExecFailed = 255
/** Interrupted by Ctrl-C (128 + SIGINT). */
export const Interrupted = 130
/** Our stdout's reader went away (128 + SIGPIPE), as for any member of a pipeline: `cuvette exec -- yes | head -1`. */
export const BrokenPipe = 141
/** Stopped by SIGTERM (128 + SIGTERM). */
export const Terminated = 143

/** Every code with its meaning, for `--help` and the docs. */
export const table: ReadonlyArray<readonly [code: number, meaning: string]> = [
  [Ok, "success"],
  [Failed, "the operation failed (the message says what, where and what to try)"],
  [Usage, "usage error: unknown option, missing argument, no target"],
  [Unreachable, "the agent could not be reached (is it running? try `cuvette wait`)"],
  [Denied, "the agent refused the connection: missing or wrong token (--token-file, CUVETTE_TOKEN_FILE)"],
  [
    TimedOut,
    "exec --timeout: the command timed out and exited on the signal (128+N when the signal ended it)",
  ],
  [Interrupted, "interrupted (Ctrl-C)"],
  [BrokenPipe, "stdout was closed by its reader (`| head`); the guest work was cancelled"],
  [Terminated, "terminated (SIGTERM)"],
  [
    ExecFailed,
    "exec only: cuvette itself failed (the guest's exit code is used otherwise, 128+N for signal N)",
  ],
]

/** The exit code for a process ended by `signal` (a name like "SIGTERM" or a number): 128 + N. */
export const fromSignal = (signal: string | number): number => {
  if (typeof signal === "number") return 128 + signal
  const n =
    signalNumbers[
      signal.toUpperCase().startsWith("SIG") ? signal.toUpperCase() : `SIG${signal.toUpperCase()}`
    ]
  return n === undefined ? ExecFailed : 128 + n
}

// Linux numbering (signal(7)); the guest is usually Linux even when the host is Windows or macOS, so
// the host's os.constants.signals would be wrong there.
const signalNumbers: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
}
