// Attaching this terminal to a console: raw keys to the guest, its output to stdout (and a log), the
// escape sequence to leave, waiting for a restarted VM's console with --reconnect, and the terminal
// restored however it ends.
import * as Retry from "@cuvette/protocol/Retry"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as fs from "node:fs"
import type { Duplex, Readable, Writable } from "node:stream"
import { writeAll, type Io } from "../output.js"
import { describeSource, isAbsent, openSource, type Source } from "./source.js"

/** Ctrl-]: the first key of the escape sequence, as telnet and virsh use it. */
export const ESCAPE = 0x1d
/** The key after Ctrl-] that leaves. */
const LEAVE = 0x71 // q
/** The escape sequence as the attach message shows it. */
export const ESCAPE_TEXT = "Ctrl-] q"

/** How often --reconnect looks for the console again. */
const RETRY_MS = 250
/** With piped input: how long the guest's output must be quiet after the input ended before we leave. */
export const QUIET_MS = 1000

/**
 * Splits typed keys into what goes to the guest and whether the user asked to leave: Ctrl-] then q
 * leaves, Ctrl-] twice sends one Ctrl-], Ctrl-] then any other key sends both. A Ctrl-] at the end
 * of a read waits for the next one.
 */
export class EscapeReader {
  private pending = false

  feed(chunk: Uint8Array): { readonly bytes: Uint8Array; readonly leave: boolean } {
    const out: Array<number> = []
    for (const byte of chunk) {
      if (this.pending) {
        this.pending = false
        if (byte === LEAVE) return { bytes: Uint8Array.from(out), leave: true }
        out.push(ESCAPE)
        if (byte !== ESCAPE) out.push(byte)
      } else if (byte === ESCAPE) this.pending = true
      else out.push(byte)
    }
    return { bytes: Uint8Array.from(out), leave: false }
  }
}

/** Why a session ended. */
export type Ending =
  /** The user typed the escape sequence. */
  | "escape"
  /** The console closed (the VM stopped) and --reconnect was not given. */
  | "closed"
  /** Piped input ended, was sent, and the guest's output went quiet. */
  | "input-ended"
  /** The signal aborted (SIGTERM, our stdout's reader went away). */
  | "aborted"

export interface AttachOptions {
  readonly source: Source
  readonly io: Io
  /** Gets what the guest prints too (see {@link openLog}); closed at the end. */
  readonly log?: Writable
  /** Wait for the console when it is not there, at first or after it closed. */
  readonly reconnect: boolean
  readonly signal: AbortSignal
}

type TtyIn = Readable & { readonly isTTY?: boolean; setRawMode?: (raw: boolean) => unknown }

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener("abort", done)
      resolve()
    }
    signal.addEventListener("abort", done, { once: true })
  })

/** Opens `path` for appending, for {@link AttachOptions.log}. */
export const openLog = async (path: string): Promise<Writable> => {
  const handle = await fs.promises.open(path, "a")
  return handle.createWriteStream()
}

const closeLog = (log: Writable) =>
  new Promise<void>((resolve) => {
    log.once("close", resolve)
    log.end()
  })

/**
 * Attaches to the console at `options.source` until the user leaves, it closes (without --reconnect),
 * piped input ends, or the signal aborts. On a terminal, stdin is raw for that time and the escape
 * sequence is active; piped stdin goes to the guest byte for byte. Rejects with a SourceError when the
 * console cannot be opened (except, with --reconnect, while it is not there).
 */
export const attach = async (options: AttachOptions): Promise<Ending> => {
  const { io, source, signal } = options
  const stdin = io.stdin as TtyIn
  const interactive = stdin.isTTY === true && typeof stdin.setRawMode === "function"
  const what = describeSource(source)
  // Notes while the terminal is raw need their own carriage returns.
  const note = (text: string) => io.stderr.write(`${interactive ? "\r\n" : ""}cuvette: ${text}\r\n`)

  const log = options.log
  // Ends the session: the first call wins.
  const stop = new AbortController()
  let ending: Ending | undefined
  let failure: unknown
  const end = (why: Ending) => {
    ending ??= why
    stop.abort()
  }
  const fail = (error: unknown) => {
    failure ??= error
    end("aborted")
  }
  const onAbort = () => end("aborted")
  signal.addEventListener("abort", onAbort, { once: true })
  if (signal.aborted) onAbort()
  log?.on("error", fail)

  let current: Duplex | undefined
  let lastOutput = Date.now()
  const escape = new EscapeReader()
  const onInput = (chunk: Buffer) => {
    const { bytes, leave } = interactive ? escape.feed(chunk) : { bytes: chunk, leave: false }
    if (bytes.length > 0 && current !== undefined && !current.write(bytes) && !interactive) {
      // Piped input waits for the console to take it; typed keys are few.
      stdin.pause()
      current.once("drain", () => stdin.resume())
    }
    if (leave) end("escape")
  }
  const onInputEnd = () => {
    const sent = current
    void (async () => {
      if (sent !== undefined) await new Promise((r) => sent.write(Buffer.alloc(0), r))
      // The guest answers what it was sent: print that until it goes quiet.
      while (!stop.signal.aborted && Date.now() - lastOutput < QUIET_MS)
        await sleep(QUIET_MS - (Date.now() - lastOutput), stop.signal)
      end("input-ended")
    })()
  }

  /** Opens the console; with --reconnect, waits while it is not there. Undefined when the session ended first. */
  const open = async (): Promise<Duplex | undefined> => {
    if (stop.signal.aborted) return undefined
    const attempt = Effect.tryPromise({
      try: () => openSource(source, { signal: stop.signal }),
      catch: (e) => e,
    })
    const opened = await Effect.runPromiseExit(
      Retry.retry(attempt, {
        schedule: Retry.every(RETRY_MS),
        while: (error) => options.reconnect && isAbsent(error),
        onRetry: (failed) => failed === 1 && note(`waiting for ${what} (${ESCAPE_TEXT} to leave)`),
      }),
      { signal: stop.signal },
    )
    if (Exit.isSuccess(opened)) return opened.value
    if (stop.signal.aborted) return undefined
    throw Cause.squash(opened.cause)
  }

  /** Copies the guest's output to stdout and the log until the console closes. */
  const pump = async (stream: Duplex) => {
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        lastOutput = Date.now()
        if (log !== undefined) await writeAll(log, chunk)
        await writeAll(io.stdout, chunk)
      }
    } catch {
      // A reset connection is a closed console, as the end of one is.
    }
  }

  let raw = false
  try {
    // Without --reconnect a console that is not there fails here, before the terminal changes.
    let stream = options.reconnect ? undefined : await open()
    if (interactive) {
      io.stderr.write(`cuvette: attached to ${what}; leave with ${ESCAPE_TEXT}\n`)
      stdin.setRawMode!(true)
      raw = true
    }
    stdin.on("data", onInput)
    stdin.once("end", onInputEnd)
    // Piped input flows only while a console takes it; keys always, for the escape sequence.
    if (!interactive) stdin.pause()
    for (;;) {
      stream ??= await open()
      if (stream === undefined) break
      const connected = stream
      current = connected
      stdin.resume()
      connected.on("error", () => undefined)
      const closed = pump(connected)
      await Promise.race([
        closed,
        new Promise((r) => stop.signal.addEventListener("abort", r, { once: true })),
      ])
      current = undefined
      if (stop.signal.aborted) {
        connected.destroy()
        break
      }
      if (!options.reconnect) {
        note(`${what} closed`)
        end("closed")
        break
      }
      if (!interactive) stdin.pause()
      note(`${what} closed`)
      stream = undefined
    }
  } finally {
    signal.removeEventListener("abort", onAbort)
    stdin.off("data", onInput)
    stdin.off("end", onInputEnd)
    if (raw) stdin.setRawMode!(false)
    stdin.pause()
    stop.abort()
    if (log !== undefined) await closeLog(log)
  }
  if (failure !== undefined) throw failure
  return ending ?? "aborted"
}
