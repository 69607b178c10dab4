// `cuvette console SOURCE` through the real CLI against a stand-in console on a Unix socket: in a real
// terminal (a python pty) where the keys go raw, Ctrl-] q leaves and the terminal comes back as it was;
// --log, --reconnect across a "VM restart", piped input, SIGTERM, and the errors.
import { execFile, spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { cliBin, runCli } from "./fixtures/harness.js"

const run = promisify(execFile)
const inTerminal = fileURLToPath(new URL("./fixtures/in-terminal.py", import.meta.url))
const consoleServer = fileURLToPath(new URL("./fixtures/console-server.mjs", import.meta.url))
const ESC = "\x1d"

let dir: string
let sock: string
let server: ChildProcess | undefined

const startServer = async () => {
  server = spawn(process.execPath, [consoleServer, sock], { stdio: ["ignore", "pipe", "inherit"] })
  await new Promise<void>((resolve) => server!.stdout!.once("data", () => resolve()))
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-console-"))
  sock = path.join(dir, "console.sock")
})
afterEach(() => {
  server?.kill()
  server = undefined
  fs.rmSync(dir, { recursive: true, force: true })
})

type Step = { wait: string } | { send: string } | { pause: number }

/**
 * Runs `cuvette console ARGS` in a pty between two `stty -a` (saved in the test's directory), with
 * `script`'s keys; resolves with what the terminal showed. A line `rc=N` follows cuvette's exit.
 */
const inPty = async (
  args: ReadonlyArray<string>,
  script: ReadonlyArray<Step>,
  before = "",
): Promise<string> => {
  const quoted = args.map((a) => `'${a}'`).join(" ")
  const shell = `cd '${dir}'; stty -a > stty-before; ${before}'${process.execPath}' '${cliBin}' console ${quoted}; echo "rc=$?"; stty -a > stty-after`
  const r = await run("python3", [inTerminal, "24", "80", JSON.stringify(script), "--", "sh", "-c", shell], {
    timeout: 60_000,
  }).catch((e: { stdout?: string; message: string }) => {
    throw new Error(`${e.message}\n${e.stdout ?? ""}`)
  })
  return r.stdout
}

const sttyUnchanged = () =>
  expect(fs.readFileSync(path.join(dir, "stty-after"), "utf8")).toBe(
    fs.readFileSync(path.join(dir, "stty-before"), "utf8"),
  )

describe.skipIf(process.platform === "win32")("cuvette console", { timeout: 60_000 }, () => {
  it("in a terminal: output appears, keys go raw, Ctrl-] q leaves with 0 and the terminal is restored", async () => {
    await startServer()
    const shown = await inPty(
      [sock],
      [
        { wait: "welcome 1" },
        // Raw: the server sees the bare CR of Enter, and Ctrl-C is a byte for the guest, not a signal.
        { send: "hello\r" },
        { wait: "got: hello" },
        { send: "\x03x\r" },
        { wait: "got: \x03x" },
        { send: `${ESC}q` },
        { wait: "rc=" },
      ],
    )
    expect(shown).toContain(`attached to ${sock}; leave with Ctrl-] q`)
    expect(shown.split("leave with").length - 1).toBe(1)
    // Not echoed by this terminal: only the server's answer shows "hello".
    expect(shown.split("hello").length - 1).toBe(1)
    expect(shown).toMatch(/rc=0/)
    sttyUnchanged()
  })

  it("--log appends what the guest printed; Ctrl-] Ctrl-] sends one Ctrl-]", async () => {
    await startServer()
    const log = path.join(dir, "console.log")
    fs.writeFileSync(log, "earlier\n")
    const shown = await inPty(
      ["--log", log, sock],
      [
        { wait: "welcome" },
        { send: `a${ESC}${ESC}b\r` },
        { wait: "got: a" },
        { send: `${ESC}q` },
        { wait: "rc=" },
      ],
    )
    expect(shown).toMatch(/rc=0/)
    expect(fs.readFileSync(log, "latin1")).toBe(`earlier\nwelcome 1\r\ngot: a${ESC}b\r\n`)
    sttyUnchanged()
  })

  it("--reconnect waits for the socket to come back after the VM restarts, and re-attaches", async () => {
    await startServer()
    const shown = await inPty(
      ["--reconnect", sock],
      [
        { wait: "welcome 1" },
        { send: "restart\r" },
        { wait: "closed" },
        { wait: "waiting for" },
        { wait: "welcome 2" },
        { send: "again\r" },
        { wait: "got: again" },
        { send: `${ESC}q` },
        { wait: "rc=" },
      ],
    )
    expect(shown).toMatch(/rc=0/)
    sttyUnchanged()
  })

  it("--reconnect waits for a console that is not there yet; Ctrl-] q leaves while waiting", async () => {
    const shown = await inPty(
      ["--reconnect", sock],
      [{ wait: "waiting for" }, { send: `${ESC}q` }, { wait: "rc=" }],
    )
    expect(shown).toMatch(/rc=0/)
    sttyUnchanged()
  })

  it("SIGTERM: exit 143 and the terminal is restored", async () => {
    await startServer()
    // A helper in the background kills cuvette (its pid from the file) once it is attached.
    const killer = `(while [ ! -s pid ]; do sleep 0.1; done; sleep 1; kill -TERM "$(cat pid)") & `
    const shell = `cd '${dir}'; stty -a > stty-before; ${killer}sh -c 'echo $$ > pid; exec "$0" "$@"' '${process.execPath}' '${cliBin}' console '${sock}'; echo "rc=$?"; stty -a > stty-after`
    const r = await run(
      "python3",
      [inTerminal, "24", "80", JSON.stringify([{ wait: "rc=" }]), "--", "sh", "-c", shell],
      {
        timeout: 60_000,
      },
    )
    expect(r.stdout).toContain("welcome 1")
    expect(r.stdout).toMatch(/rc=143/)
    sttyUnchanged()
  })

  it("piped input goes to the guest; the session ends once it has been sent and the guest is quiet", async () => {
    await startServer()
    const r = await runCli(["console", sock], { input: "one\ntwo\n" })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.toString()).toBe("welcome 1\r\ngot: one\r\ngot: two\r\n")
    expect(r.stderr).not.toContain("leave with")
  })

  it("piped input: the console closing ends the session with 0", async () => {
    await startServer()
    const r = await runCli(["console", sock], { input: "bye\nnot sent\n" })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.toString()).toContain("got: bye")
    expect(r.stderr).toContain(`${sock} closed`)
  })

  it("errors: nothing listening (3), not a console (1), a bad SOURCE (2), --json (2)", async () => {
    const missing = await runCli(["console", sock])
    expect(missing.code).toBe(3)
    expect(missing.stderr).toContain(`nothing is listening on ${sock} (it does not exist)`)
    expect(missing.stderr).toContain("--reconnect")
    // A socket file left behind by a killed VM: connection refused.
    await run("python3", ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", sock])
    const refused = await runCli(["console", sock])
    expect(refused.code).toBe(3)
    expect(refused.stderr).toContain("(connection refused)")
    const file = path.join(dir, "notes.txt")
    fs.writeFileSync(file, "x")
    const notConsole = await runCli(["console", file])
    expect(notConsole.code).toBe(1)
    expect(notConsole.stderr).toContain(`${file} is a regular file, not a console`)
    const json = await runCli(["--json", "console", dir])
    expect(json.code).toBe(2)
    expect(JSON.parse(json.stdout.toString()).error.code).toBe("USAGE")
    const bad = await runCli(["console", "tcp:nowhere"])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain("tcp:HOST:PORT")
    const badLog = await runCli(["console", "--log", path.join(dir, "no/such/dir.log"), sock])
    expect(badLog.code).toBe(1)
    expect(badLog.stderr).toContain("cannot open the log")
  })

  it("errors: permission denied (1), as an unprivileged user on root's socket", async () => {
    await startServer()
    fs.chmodSync(dir, 0o755)
    fs.chmodSync(sock, 0o600)
    const asNobody =
      process.getuid?.() === 0 ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : []
    if (asNobody.length === 0) fs.chmodSync(sock, 0o000)
    const r = await run(asNobody[0] ?? process.execPath, [
      ...asNobody.slice(1),
      ...(asNobody.length > 0 ? [process.execPath] : []),
      cliBin,
      "console",
      sock,
    ]).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    )
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`permission denied opening ${sock}: check its permissions`)
  })
})
