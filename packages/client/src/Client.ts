/**
 * The Promise API: `connect(target)` or `wait(target)` gives an {@link Agent} with every operation of
 * protocol v1. Process stdio and file bodies are streams with end-to-end flow control, so a 10 GiB copy
 * never sits in memory and a guest process that writes faster than the host reads is paused.
 *
 * This module connects (target and token resolution, retries through `internal/open.ts`); the operations
 * live in `Agent.ts`, processes in `Process.ts`, the kernel log parser in `Kmsg.ts`. All of them are
 * re-exported here, so `Client.*` stays the one import of the Promise API.
 *
 * ```ts
 * const agent = await Client.connect("unix:/tmp/agent.sock")
 * const { exitCode, stdout } = await agent.exec(["uname", "-a"])
 * await agent.upload("./big.img", "/tmp/big.img", { onProgress: (done, total) => {} })
 * await agent.close()
 * ```
 */
import * as fs from "node:fs"
import { type ByteStream, Handshake, Session } from "@cuvette/protocol"
import { Agent } from "./Agent.js"
import { ConnectError } from "./ConnectError.js"
import { defined } from "./internal/args.js"
import { open } from "./internal/open.js"
import type { Runner } from "./internal/transports/hyperv.js"
import * as Target from "./Target.js"

// The rest of the Promise API, also reachable as `Client.*` (one import for the whole library).
export { Agent, type DownloadOptions, type GuestPath, type OnProgress, type UploadOptions } from "./Agent.js"
export { type KmsgRecord, parseKmsg } from "./Kmsg.js"
export { type Env, type ExecOptions, type ExecResult, Process, type SpawnOptions } from "./Process.js"

/** Options of {@link connect} and {@link wait}. */
export interface ConnectOptions {
  /** Shared secret the agent requires (raw key bytes). */
  readonly token?: Uint8Array
  /** File holding the token (surrounding whitespace ignored). */
  readonly tokenFile?: string
  /**
   * With a token, insist on a sealed session (every frame after the handshake encrypted and
   * authenticated); an agent that does not seal is refused. Default: true for `tcp:` targets. False
   * accepts an unsealed session; an agent that seals still gets one.
   */
  readonly seal?: boolean
  /** Overall deadline for connecting, including retries and the handshake (default 10 s). */
  readonly timeoutMs?: number
  /** Retry with backoff while the agent is not there yet (refused, missing socket, timeout). */
  readonly retry?: boolean
  /** Connect to VTL2 (hyperv targets; the same as `?vtl=2`). */
  readonly vtl2?: boolean
  /** Ping after this long without traffic (default 5 s). */
  readonly keepaliveMs?: number
  /** Declare the agent dead after this long without a frame (default 20 s). */
  readonly deadPeerMs?: number
  /** Called before each retry with the attempt number and why it failed. */
  readonly onRetry?: (attempt: number, error: Error) => void
  /** Cancels connecting. */
  readonly signal?: AbortSignal
  /** Who is connecting, shown to the agent. */
  readonly identity?: { readonly name: string; readonly version: string }
  /**
   * Resolves Hyper-V VM names (tests stub it; default runs hvc.exe / PowerShell).
   * @internal
   */
  readonly commandRunner?: Runner
}

const resolveToken = async (o: ConnectOptions, target: string): Promise<Uint8Array | undefined> => {
  if (o.token) return o.token
  if (!o.tokenFile) return undefined
  try {
    return Handshake.tokenFromText(await fs.promises.readFile(o.tokenFile, "utf8"))
  } catch (cause) {
    throw new ConnectError({
      reason: "DENIED",
      target,
      detail: `cannot read the token file ${o.tokenFile}: ${(cause as Error).message}`,
      hint: "check the path given as tokenFile / --token-file",
      cause,
    })
  }
}

/** Parses a target string or passes a parsed one through; a bad string is a ConnectError INVALID_TARGET. */
const resolveTarget = (
  target: string | Target.Target,
  vtl2: boolean | undefined,
): { t: Target.Target; text: string } => {
  if (typeof target !== "string") {
    const t = Target.withVtl2(target, vtl2)
    return { t, text: Target.format(t) }
  }
  try {
    const t = Target.withVtl2(Target.parse(target), vtl2)
    return { t, text: vtl2 ? Target.format(t) : target.trim() }
  } catch (cause) {
    throw new ConnectError({
      reason: "INVALID_TARGET",
      target,
      detail: (cause as Error).message,
      cause,
    })
  }
}

const sessionOptions = async (o: ConnectOptions, text: string): Promise<Session.ClientOptions> => {
  const token = await resolveToken(o, text)
  return defined({
    identity: o.identity ?? { name: "cuvette-client", version: "0.1.0" },
    token,
    keepaliveMs: o.keepaliveMs,
    deadPeerMs: o.deadPeerMs,
  })
}

const openAgent = async (
  target: string | Target.Target,
  o: ConnectOptions,
  ping: boolean,
  retry: boolean,
  timeoutMs: number,
) => {
  const { t, text } = resolveTarget(target, o.vtl2)
  const session = await open(t, text, {
    deadline: Date.now() + timeoutMs,
    session: { ...(await sessionOptions(o, text)), seal: o.seal ?? t._tag === "tcp" },
    retry,
    ping,
    signal: o.signal,
    onRetry: o.onRetry,
    runner: o.commandRunner,
  })
  return new Agent(session, text)
}

/** Connects to the agent at `target` (a string such as "unix:/tmp/agent.sock", or a parsed Target). */
export const connect = (target: string | Target.Target, o: ConnectOptions = {}): Promise<Agent> =>
  openAgent(target, o, false, o.retry ?? false, o.timeoutMs ?? 10_000)

/**
 * Waits for the agent: retries with backoff (50 ms doubling to 1 s, reported through onRetry) until it
 * answers a handshake and a ping, or `timeoutMs` (default 60 s) passes.
 */
export const wait = (target: string | Target.Target, o: ConnectOptions = {}): Promise<Agent> =>
  openAgent(target, o, true, true, o.timeoutMs ?? 60_000)

/** Runs the client handshake over an established byte stream (any transport, or an in-memory pair). */
export const fromStream = async (
  stream: ByteStream.ByteStream,
  o: Omit<ConnectOptions, "retry" | "vtl2" | "onRetry" | "commandRunner"> = {},
): Promise<Agent> => {
  const text = stream.description
  const session = await Session.openClient(
    stream,
    defined({ ...(await sessionOptions(o, text)), handshakeTimeoutMs: o.timeoutMs, seal: o.seal }),
  ).catch(async (e) => {
    stream.destroy()
    const { handshakeError } = await import("./internal/open.js")
    throw handshakeError(text, e)
  })
  return new Agent(session, text)
}
