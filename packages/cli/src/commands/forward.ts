// `cuvette forward [--reverse] SPEC...`: listens on this host and carries every connection to a port in
// the guest through the agent (--reverse: the agent listens in the guest and each connection reaches a
// host port), all on one session, until Ctrl-C. Works where the guest has no network at all (VTL2).
import type { Agent } from "../internal/client.js"
import { define } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { CliError, UsageError } from "../internal/errors.js"
import * as ExitCode from "../ExitCode.js"
import { Hints } from "@cuvette/protocol"

type Forwarder = Awaited<ReturnType<Agent["forward"]>>

/** The far side of a SPEC: a TCP host and port, a Unix socket path, or an AF_VSOCK port. */
export type Far =
  | { readonly _tag: "tcp"; readonly host: string; readonly port: number }
  | { readonly _tag: "unix"; readonly path: string }
  | { readonly _tag: "vsock"; readonly port: number }

/** One SPEC, read: where to listen (host, or guest with --reverse) and where connections go. */
export interface Spec {
  readonly text: string
  readonly listen: { readonly host: string; readonly port: number }
  readonly to: Far
}

/** Splits at colons outside brackets: `[::1]:80:80` is `::1`, `80`, `80`. */
const fields = (text: string): Array<string> => {
  const out: Array<string> = []
  let field = ""
  let depth = 0
  for (const ch of text) {
    if (ch === "[") depth++
    else if (ch === "]") depth--
    else if (ch === ":" && depth === 0) {
      out.push(field)
      field = ""
      continue
    }
    if (ch !== "[" && ch !== "]") field += ch
  }
  out.push(field)
  return out
}

const isPort = (t: string): boolean => /^\d+$/.test(t)

/**
 * Reads `[LADDR:]LPORT:[GHOST:]GPORT`, or `[LADDR:]LPORT:unix:PATH` / `[LADDR:]LPORT:vsock:PORT`.
 * LADDR defaults to 127.0.0.1, GHOST to 127.0.0.1; LPORT 0 takes any free port. With three fields a
 * number first is LPORT (`8080:db:5432`), else LADDR (`0.0.0.0:8080:80`).
 */
export const parseSpec = (text: string): Spec => {
  const bad = (why: string) =>
    new UsageError({
      detail: `${text}: ${why}; write [LADDR:]LPORT:[GHOST:]GPORT (e.g. 8080:80), or LPORT:unix:PATH`,
    })
  const f = fields(text)
  const kind = f.findIndex((x, i) => i > 0 && (x === "unix" || x === "vsock"))
  const local =
    kind > 0
      ? f.slice(0, kind)
      : f.length === 2
        ? f.slice(0, 1)
        : f.length === 4
          ? f.slice(0, 2)
          : f.length === 3 && !isPort(f[0]!)
            ? f.slice(0, 2)
            : f.slice(0, 1)
  const remote = f.slice(local.length)
  if (local.length > 2 || local.some((x) => x === "")) throw bad("the listening side is LPORT or LADDR:LPORT")
  const port = (t: string, what: string, min: number) => {
    const n = Number(t)
    if (!isPort(t) || n < min || n > 65535)
      throw bad(`${what} ${JSON.stringify(t)} is not a port (${min} to 65535)`)
    return n
  }
  const listen = {
    host: local.length === 2 ? local[0]! : "127.0.0.1",
    port: port(local[local.length - 1]!, "the listening port", 0),
  }
  let to: Far
  if (remote[0] === "unix") {
    const path = remote.slice(1).join(":")
    if (path === "") throw bad("unix: needs a socket path")
    to = { _tag: "unix", path }
  } else if (remote[0] === "vsock") {
    if (remote.length !== 2) throw bad("vsock: takes one port")
    to = { _tag: "vsock", port: Number(port(remote[1]!, "the vsock port", 0)) }
  } else if (remote.length === 1 || remote.length === 2) {
    const host = remote.length === 2 ? remote[0]! : "127.0.0.1"
    if (host === "") throw bad("the host to connect to is empty")
    to = { _tag: "tcp", host, port: port(remote[remote.length - 1]!, "the port to connect to", 1) }
  } else throw bad("too many fields")
  return { text, listen, to }
}

const describeFar = (far: Far): string =>
  far._tag === "unix"
    ? `unix:${far.path}`
    : far._tag === "vsock"
      ? `vsock:${far.port}`
      : `${far.host.includes(":") ? `[${far.host}]` : far.host}:${far.port}`

const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host)

/**
 * A failure of one connection, in one line: what the agent said (its messages carry their hints), or
 * what the host socket said with a hint.
 */
const connectionFailure = (e: unknown): string => {
  const err = e as { _tag?: unknown; code?: unknown; message?: unknown }
  const message = typeof err.message === "string" ? err.message : String(e)
  const hint =
    err._tag === "HostSocketError" && typeof err.code === "string"
      ? Hints.forCode(err.code, "host")
      : undefined
  return hint !== undefined && !message.includes(hint) ? `${message} (${hint})` : message
}

/** A forwarder that could not start: a host port in use (HostSocketError), a guest one (AgentError). */
const startFailure = (e: unknown, spec: Spec): unknown => {
  const err = e as { _tag?: unknown; code?: unknown; message?: unknown }
  if (err._tag !== "HostSocketError" && !(err._tag === "AgentError" && err.code !== "DISCONNECTED")) return e
  return new CliError({
    code: typeof err.code === "string" ? err.code : "ERROR",
    detail: `${spec.text}: ${connectionFailure(e)}`,
    exitCode: ExitCode.Failed,
  })
}

export const command = define({
  name: "forward",
  summary: "forward host ports to guest ports through the agent (--reverse: guest to host) until Ctrl-C",
  usage: "[--reverse] [--bind-any] [LADDR:]LPORT:[GHOST:]GPORT...",
  description:
    "Listens on LADDR:LPORT on this host (127.0.0.1 unless LADDR says otherwise; 0 takes a free port) and\n" +
    "carries each connection to GHOST:GPORT as the guest sees it (GHOST defaults to 127.0.0.1), all on one\n" +
    "session: it needs no network in the guest. GHOST:GPORT may also be unix:PATH or vsock:PORT. With\n" +
    "--reverse the agent listens on LADDR:LPORT in the guest and each connection reaches GHOST:GPORT on this\n" +
    "host. A LADDR that is not loopback needs --bind-any. It prints one line per listener; a connection the\n" +
    "far side refuses or resets is closed alone, with a line on stderr, and the listener stays up. Ctrl-C\n" +
    "closes the listeners and every connection and exits 130; a port in use exits 1, losing the agent 3.",
  options: {
    reverse: Opt.flag("reverse", "listen in the guest instead, and connect to this host", { short: "R" }),
    bindAny: Opt.flag(
      "bind-any",
      "allow an LADDR other than loopback (whoever reaches it reaches the service)",
    ),
  },
  args: "list",
  argWords: [],
  needsAgent: true,
  handlesInterrupt: true,
  examples: [
    "cuvette -H unix:/tmp/agent.sock forward 8080:80",
    "cuvette -H unix:/tmp/agent.sock forward 2345:127.0.0.1:2345 9100:9100",
    "cuvette -H unix:/tmp/agent.sock forward 5432:unix:/run/postgresql/.s.PGSQL.5432",
    "cuvette -H unix:/tmp/agent.sock forward --reverse 3128:3128",
  ],
  run: async (ctx, options) => {
    if (ctx.args.length === 0)
      throw new UsageError({ detail: "missing SPEC for `cuvette forward`; e.g. `cuvette forward 8080:80`" })
    const specs = ctx.args.map(parseSpec)
    for (const spec of specs) {
      if (!isLoopback(spec.listen.host) && !options.bindAny)
        throw new UsageError({
          detail: `${spec.text}: ${spec.listen.host} is not a loopback address, so anyone who reaches it reaches the ${options.reverse ? "host" : "guest"} service; pass --bind-any to listen there anyway`,
        })
      if (options.reverse && spec.to._tag === "vsock")
        throw new UsageError({
          detail: `${spec.text}: --reverse connects to this host: use a port or unix:PATH`,
        })
    }
    const agent = await ctx.connect()
    const forwarders: Array<Forwarder> = []
    const stopAll = () => Promise.all(forwarders.map((f) => f.close()))
    const lines: Array<{ listen: string; to: string; reverse: boolean }> = []
    try {
      for (const spec of specs) {
        if (ctx.signal.aborted) break
        const to = describeFar(spec.to)
        const onConnectionError = (e: unknown, info: { readonly peer: string }) =>
          ctx.out.note(`${spec.text}: connection from ${info.peer} closed: ${connectionFailure(e)}`)
        const f = await (
          options.reverse
            ? agent.reverse({
                listen: { _tag: "tcp", ...spec.listen },
                to:
                  spec.to._tag === "tcp"
                    ? { host: spec.to.host, port: spec.to.port }
                    : { path: (spec.to as { path: string }).path },
                bindAny: options.bindAny,
                onConnectionError,
              })
            : agent.forward({ listen: spec.listen, to: spec.to, bindAny: options.bindAny, onConnectionError })
        ).catch((e: unknown) => {
          throw startFailure(e, spec)
        })
        forwarders.push(f)
        const listen = options.reverse ? f.address.replace(/^tcp:/, "") : f.address
        lines.push({ listen, to, reverse: options.reverse })
        if (!ctx.out.json)
          ctx.io.stdout.write(
            options.reverse ? `${listen} in the guest -> ${to} here\n` : `${listen} -> ${to} in the guest\n`,
          )
      }
    } catch (e) {
      await stopAll()
      throw e
    }
    if (ctx.out.json) ctx.out.result({ target: ctx.target, forwards: lines })
    const aborted = new Promise<undefined>((resolve) => {
      if (ctx.signal.aborted) resolve(undefined)
      ctx.signal.addEventListener("abort", () => resolve(undefined), { once: true })
    })
    const reason = await Promise.race([aborted, ...forwarders.map((f) => f.closed)])
    await stopAll()
    if (ctx.signal.aborted) return ctx.stopped(`stopped forwarding ${specs.map((s) => s.text).join(" ")}`)
    throw new CliError({
      code: (reason as { code?: string } | undefined)?.code ?? "DISCONNECTED",
      detail: `lost the agent at ${ctx.target}: ${reason?.message ?? "the session closed"}; stopped forwarding (the listeners are closed)`,
      exitCode: ExitCode.Unreachable,
    })
  },
})
