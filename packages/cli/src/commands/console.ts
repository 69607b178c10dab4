// `cuvette console SOURCE`: this terminal on a VM's serial console (a Unix socket, a Windows named pipe,
// a tty device, tcp:HOST:PORT), raw, until Ctrl-] q. Needs no agent: it is the window into a guest
// whose agent is not up (yet).
import { define } from "../internal/command.js"
import { attach, ESCAPE_TEXT, openLog } from "../internal/console/attach.js"
import * as Source from "../internal/console/source.js"
import { CliError, UsageError } from "../internal/errors.js"
import * as Opt from "../internal/option.js"
import * as ExitCode from "../ExitCode.js"

/** The command's options, declared once (the WebSocket bridge's --serve joins them here). */
export const options = {
  log: Opt.text("log", "FILE", "also append what the guest prints to FILE"),
  reconnect: Opt.flag("reconnect", "wait for the console when it is not there, and again after it closes"),
  serve: Opt.text(
    "serve",
    "ADDR",
    "instead of attaching, serve consoles over WebSocket with a browser terminal at / on ADDR (PORT, HOST:PORT; loopback by default)",
  ),
  name: Opt.list("name", "NAME=SOURCE", "with --serve: serve the console at SOURCE as /consoles/NAME"),
  shell: Opt.list(
    "shell",
    "NAME=TARGET",
    "with --serve: serve a shell through the agent at TARGET as /shell/NAME",
  ),
  config: Opt.text(
    "config",
    "FILE",
    'with --serve: JSON {"consoles": {NAME: SOURCE}, "shells": {NAME: TARGET}}',
  ),
  serveTokenFile: Opt.text(
    "serve-token-file",
    "F",
    "with --serve: file holding the token clients must give (required unless ADDR is loopback)",
    { env: "CUVETTE_SERVE_TOKEN_FILE" },
  ),
}

/** A console that cannot be opened, as the CLI reports it: its message, a stable code, an exit code. */
const failure = (error: unknown): unknown => {
  const as = (code: string, exitCode: number) =>
    new CliError({ code, detail: (error as Error).message, exitCode, cause: error })
  if (error instanceof Source.InvalidSource) return new UsageError({ detail: error.message })
  if (error instanceof Source.NothingListening) return as("NOTHING_LISTENING", ExitCode.Unreachable)
  if (error instanceof Source.PermissionDenied) return as("EACCES", ExitCode.Failed)
  if (error instanceof Source.NotAConsole) return as("NOT_A_CONSOLE", ExitCode.Failed)
  if (error instanceof Source.SourceFailed) return as(error.code, ExitCode.Failed)
  return error
}

export const command = define({
  name: "console",
  summary: "attach this terminal to a VM's serial console: a socket, named pipe, tty or tcp:HOST:PORT",
  usage:
    "SOURCE [--log FILE] [--reconnect] | --serve ADDR [--name NAME=SOURCE]... [--shell NAME=TARGET]... [--config FILE]",
  description:
    "Connects this terminal, raw, to the serial console at SOURCE, like `virsh console`: keys go to the guest and\n" +
    `its output comes here. ${ESCAPE_TEXT} (Ctrl-] then q) leaves; Ctrl-] twice sends one Ctrl-]. SOURCE is a\n` +
    "Unix socket path (QEMU -chardev socket,server=on; Cloud Hypervisor; OpenVMM), a Windows named pipe\n" +
    "\\\\.\\pipe\\NAME (a Hyper-V COM port), a tty device (/dev/ttyS0, /dev/pts/N) or tcp:HOST:PORT. With piped\n" +
    "input its bytes go to the guest as they are; at its end cuvette leaves once the guest has been quiet for 1 s.\n" +
    "Needs no agent.\n\n" +
    "With --serve ADDR it attaches nothing: it serves the named consoles over WebSocket (GET /consoles/NAME) and\n" +
    "agent shells under a guest terminal (GET /shell/NAME), with a browser terminal at /, until Ctrl-C. A bind\n" +
    "other than loopback needs --serve-token-file. See docs/console-bridge.md for the protocol.",
  options,
  args: ["SOURCE?"],
  needsAgent: false,
  handlesInterrupt: true,
  streamsStdout: true,
  examples: [
    "cuvette console /tmp/vm/console.sock",
    "cuvette console --reconnect --log boot.log /tmp/vm/console.sock",
    "cuvette console '\\\\.\\pipe\\myvm-com1'",
    "printf 'uname -r\\n' | cuvette console tcp:127.0.0.1:4555",
    "cuvette console --serve 127.0.0.1:7681 --name vm=/tmp/vm/console.sock --shell vm=unix:/tmp/vm/agent.sock",
  ],
  run: async (ctx, { log, reconnect, serve, name, shell, config, serveTokenFile }) => {
    const [text] = ctx.args
    if (serve !== undefined) {
      if (text !== undefined || log !== undefined || reconnect)
        throw new UsageError({
          detail: "--serve serves consoles named with --name or --config: drop SOURCE, --log and --reconnect",
        })
      // Loaded only here: the attach path never pays for the HTTP and WebSocket server.
      const { runBridge } = await import("../internal/console/serve.js")
      return runBridge(ctx, { serve, names: name, shells: shell, config, serveTokenFile })
    }
    if (text === undefined)
      throw new UsageError({
        detail: "`cuvette console` needs SOURCE, or --serve ADDR; see `cuvette console --help`",
      })
    if (ctx.out.json)
      throw new UsageError({
        detail: "--json and a console do not mix: drop --json (use --log FILE to keep the output)",
      })
    const source = (() => {
      try {
        return Source.parseSource(text)
      } catch (error) {
        throw failure(error)
      }
    })()
    // Before the terminal goes raw, so a bad path is an ordinary error.
    const logFile =
      log !== undefined
        ? await ctx.attempt({ action: "open the log", hostPath: log }, () => openLog(log))
        : undefined
    try {
      const ending = await attach({
        source,
        io: ctx.io,
        reconnect,
        signal: ctx.signal,
        ...(logFile !== undefined ? { log: logFile } : {}),
      })
      return ending === "aborted" ? ctx.stopped() : ExitCode.Ok
    } catch (error) {
      if (ctx.signal.aborted) return ctx.stopped()
      throw failure(error)
    }
  },
})
