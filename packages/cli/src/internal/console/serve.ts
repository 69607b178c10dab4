// `cuvette console --serve ADDR`: what the options name (the listen address, consoles from --name and
// --config, shells from --shell, the token) checked up front, then the bridge running until Ctrl-C.
import * as fs from "node:fs"
import * as ExitCode from "../../ExitCode.js"
import { DEFAULT_SHELL } from "../../commands/shell.js"
import * as ClientApi from "../client.js"
import type { Context } from "../command.js"
import { describe, UsageError } from "../errors.js"
import { exitCodeOf } from "../guestProcess.js"
import { isLoopback, serve, type Shell, type Size } from "./bridge.js"
import { openSource, parseSource } from "./source.js"

/** The options of `cuvette console` that the bridge reads. */
export interface ServeOptions {
  readonly serve: string
  readonly names: ReadonlyArray<string>
  readonly shells: ReadonlyArray<string>
  readonly config: string | undefined
  readonly serveTokenFile: string | undefined
}

/** Reads ADDR: `PORT` or `:PORT` (loopback), `HOST:PORT`, `[IPV6]:PORT`. */
export const parseListen = (addr: string): { readonly host: string; readonly port: number } => {
  const m = /^(?:(?:\[([^\]]+)\]|([^:[\]]*)):)?(\d+)$/.exec(addr)
  const port = m !== null ? Number(m[3]) : NaN
  if (m === null || !(port >= 0 && port <= 65535))
    throw new UsageError({
      detail: `--serve ${addr}: expected PORT, HOST:PORT or [IPV6]:PORT (port 0 picks a free one)`,
    })
  const host = m[1] ?? m[2] ?? ""
  return { host: host === "" ? "127.0.0.1" : host, port }
}

/** Reads NAME=VALUE entries of --name / --shell. */
const pairs = (option: string, entries: ReadonlyArray<string>): Array<[string, string]> =>
  entries.map((e) => {
    const i = e.indexOf("=")
    if (i <= 0 || i === e.length - 1)
      throw new UsageError({
        detail: `--${option} ${e}: expected NAME=${option === "name" ? "SOURCE" : "TARGET"}`,
      })
    return [e.slice(0, i), e.slice(i + 1)]
  })

/** The config file: `{"consoles": {NAME: SOURCE}, "shells": {NAME: TARGET}}`, both optional. */
export const readConfig = (
  file: string,
): { consoles: Array<[string, string]>; shells: Array<[string, string]> } => {
  let parsed: unknown
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"))
  } catch (e) {
    throw new UsageError({ detail: `--config ${file}: ${e instanceof Error ? e.message : String(e)}` })
  }
  const section = (key: "consoles" | "shells") => {
    const value = (parsed as Record<string, unknown> | null)?.[key]
    if (value === undefined) return []
    if (typeof value !== "object" || value === null || Array.isArray(value))
      throw new UsageError({ detail: `--config ${file}: "${key}" must be an object of NAME: string` })
    return Object.entries(value).map(([name, v]): [string, string] => {
      if (typeof v !== "string" || v === "")
        throw new UsageError({ detail: `--config ${file}: ${key}.${name} must be a non-empty string` })
      return [name, v]
    })
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new UsageError({
      detail: `--config ${file}: expected a JSON object with "consoles" and/or "shells"`,
    })
  const unknown = Object.keys(parsed).filter((k) => k !== "consoles" && k !== "shells")
  if (unknown.length > 0)
    throw new UsageError({
      detail: `--config ${file}: unknown key ${unknown.join(", ")} (known: consoles, shells)`,
    })
  return { consoles: section("consoles"), shells: section("shells") }
}

const readToken = (file: string): string => {
  let token: string
  try {
    token = fs.readFileSync(file, "utf8").trim()
  } catch (e) {
    throw new UsageError({
      detail: `--serve-token-file ${file}: ${e instanceof Error ? e.message : String(e)}`,
    })
  }
  if (token.length === 0) throw new UsageError({ detail: `--serve-token-file ${file} is empty` })
  return token
}

/** Names must be unique across the command line and the config file. */
const byName = (kind: string, entries: ReadonlyArray<[string, string]>): Map<string, string> => {
  const map = new Map<string, string>()
  for (const [name, value] of entries) {
    if (map.has(name)) throw new UsageError({ detail: `${kind} ${name} is named twice` })
    map.set(name, value)
  }
  return map
}

/** Opens the guest's login shell under a pseudo-terminal through its own agent connection. */
const shellOpener =
  (tokenFile: string | undefined) =>
  async (target: string, size: Size): Promise<Shell> => {
    const client = await ClientApi.load()
    const agent = await client
      .connect(target, { timeoutMs: 10_000, ...(tokenFile !== undefined ? { tokenFile } : {}) })
      .catch((e: unknown) => {
        throw new Error(describe(e, { action: "connect", target }).message)
      })
    try {
      const proc = agent.spawn(DEFAULT_SHELL, {
        stdin: "pipe",
        stderr: "null",
        pty: { ...size, term: "xterm-256color" },
      })
      await proc.pid
      proc.stdin!.on("error", () => undefined)
      return {
        input: proc.stdin!,
        output: proc.stdout!,
        resize: ({ rows, cols }) => proc.resize(rows, cols),
        exited: proc.exited.then(exitCodeOf).finally(() => void agent.close()),
        close: () => {
          proc.cancel()
          void agent.close()
        },
      }
    } catch (e) {
      void agent.close()
      throw new Error(describe(e, { action: "start a shell", target }).message)
    }
  }

/** Runs the bridge until `ctx.signal` aborts (Ctrl-C, SIGTERM); exits 0 then. */
export const runBridge = async (ctx: Context<unknown>, o: ServeOptions): Promise<number> => {
  const { host, port } = parseListen(o.serve)
  const config = o.config !== undefined ? readConfig(o.config) : { consoles: [], shells: [] }
  const consoles = byName("console", [...config.consoles, ...pairs("name", o.names)])
  const shells = byName("shell", [...config.shells, ...pairs("shell", o.shells)])
  for (const [name, source] of consoles) {
    try {
      parseSource(source)
    } catch (e) {
      throw new UsageError({ detail: `console ${name}: ${e instanceof Error ? e.message : String(e)}` })
    }
  }
  if (consoles.size === 0 && shells.size === 0)
    throw new UsageError({
      detail:
        "nothing to serve: name a console (--name NAME=SOURCE), a shell (--shell NAME=TARGET) or --config FILE",
    })
  const token = o.serveTokenFile !== undefined ? readToken(o.serveTokenFile) : undefined
  if (!isLoopback(host) && token === undefined)
    throw new UsageError({
      detail: `refusing to serve consoles on ${host}, which other machines can reach, without a token: pass --serve-token-file F (or bind 127.0.0.1)`,
    })
  const bridge = await serve({
    host,
    port,
    consoles,
    shells,
    token,
    openConsole: (source) => openSource(parseSource(source)),
    openShell: shellOpener(ctx.globals.tokenFile),
    log: (message) => ctx.out.note(message),
  })
  ctx.out.result(
    { url: bridge.url, consoles: [...consoles.keys()], shells: [...shells.keys()] },
    `serving ${[...consoles.keys()]
      .map((n) => `/consoles/${n}`)
      .concat([...shells.keys()].map((n) => `/shell/${n}`))
      .join(", ")} on ${bridge.url} (Ctrl-C stops)`,
  )
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve()
    ctx.signal.addEventListener("abort", () => resolve(), { once: true })
  })
  await bridge.close()
  return ExitCode.Ok
}
