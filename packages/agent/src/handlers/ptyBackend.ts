// What Pty.ts calls on bunPty.ts, the Bun-only PTY path. bunPty.ts is typechecked against bun-types in
// its own project (tsconfig.bun.json) and declares each export with these types, so the Node project
// checks Pty.ts without ever seeing Bun's API, and a change in Bun's that breaks them fails typecheck.

/** A pseudo-terminal: what the process types goes to `data`; what is written to it is typed in. */
export interface Terminal {
  write(data: Uint8Array | string): number
  resize(cols: number, rows: number): void
  close(): void
  readonly closed: boolean
  /** termios c_lflag */
  readonly localFlags: number
}

/** A process whose stdin, stdout and stderr are one terminal. */
export interface Subprocess {
  readonly pid: number
  readonly exited: Promise<number>
  readonly exitCode: number | null
  readonly signalCode: string | null
  readonly terminal: Terminal
}

export interface PtyBackend {
  spawn(
    argv: ReadonlyArray<string>,
    options: {
      cwd: string
      env: NodeJS.ProcessEnv
      terminal: { cols: number; rows: number; data: (terminal: Terminal, data: Uint8Array) => void }
    },
  ): Subprocess
  /** Bun's Terminal class, where this Bun has one (1.3.5 on). */
  readonly Terminal: unknown
}
