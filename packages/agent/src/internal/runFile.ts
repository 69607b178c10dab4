import { spawn } from "node:child_process"

/** Runs a program to completion (no shell); resolves with its exit code and stderr, or the spawn error. */
export const runFile = (file: string, args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stderr: string; error?: NodeJS.ErrnoException }>((resolve) => {
    const child = spawn(file, args, { stdio: ["ignore", "ignore", "pipe"], windowsHide: true })
    let stderr = ""
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    child.once("error", (error) => resolve({ code: null, stderr, error }))
    child.once("close", (code) => resolve({ code, stderr }))
  })
