// The `cuvette` executable: runs the CLI with this process's streams and exits with its code. The only
// place that calls process.exit. Ctrl-C (SIGINT) and SIGTERM abort the running command, which cancels
// what it started on the guest before exiting (130 for Ctrl-C, 143 for SIGTERM).
import * as fs from "node:fs"
import { isatty } from "node:tty"
import * as Cli from "./Cli.js"
import { fileStdin } from "./internal/stdin.js"

const controller = new AbortController()
let signals = 0
const onSignal = (name: NodeJS.Signals) => {
  signals++
  // A second Ctrl-C means "now": leave without waiting for the guest to confirm.
  if (signals > 1) process.exit(name === "SIGINT" ? 130 : 143)
  controller.abort(name)
}
process.on("SIGINT", onSignal)
process.on("SIGTERM", onSignal)
// A reader that went away (`cuvette read f | head`) is not an error worth a stack trace; commands that
// stream to stdout watch for it themselves and stop (exit 141).
process.stdout.on("error", () => undefined)

const flush = (stream: NodeJS.WriteStream) =>
  new Promise<void>((resolve) =>
    stream.writableLength === 0 ? resolve() : stream.write("", () => resolve()),
  )

// Bun on Windows reads a piped stdin through a pipe stream that fails (EBADF) on pipes it does not recognise, as
// Wine's; plain reads of fd 0 work on every kind, so a stdin that is not a terminal is read that way there.
const stdin =
  process.platform === "win32" && process.versions.bun !== undefined && !isatty(0)
    ? fs.createReadStream("", { fd: 0, highWaterMark: 1 << 20 })
    : (fileStdin(0) ?? process.stdin)

const code = await Cli.run(
  process.argv.slice(2),
  {
    stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    platform: process.platform,
  },
  controller.signal,
)
await Promise.race([
  Promise.all([flush(process.stdout), flush(process.stderr)]),
  new Promise((r) => setTimeout(r, 2000)),
])
process.exit(code)
