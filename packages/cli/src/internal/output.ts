// All output goes through here: human text or exactly one JSON document on stdout, messages and
// progress on stderr, raw bytes to stdout with backpressure, and errors in one format.
import type { Readable, Writable } from "node:stream"
import * as Path from "@cuvette/protocol/Path"
import type { Failure } from "./errors.js"

/** The process's streams and environment, injectable for tests. */
export interface Io {
  readonly stdin: Readable & { readonly isTTY?: boolean }
  readonly stdout: Writable & { readonly isTTY?: boolean; readonly columns?: number }
  readonly stderr: Writable & { readonly isTTY?: boolean; readonly columns?: number }
  readonly env: Readonly<Record<string, string | undefined>>
  readonly platform: NodeJS.Platform
}

/** Writes `chunk` and waits for drain when the stream's buffer is full; a closed reader (EPIPE) is ignored. */
export const writeAll = (stream: Writable, chunk: Uint8Array | string): Promise<void> =>
  new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) return resolve()
    const ok = stream.write(chunk)
    if (ok) return resolve()
    const done = () => {
      stream.off("drain", done)
      stream.off("close", done)
      stream.off("error", done)
      resolve()
    }
    stream.on("drain", done)
    stream.on("close", done)
    stream.on("error", done)
  })

/** Text of `bytes` for JSON: UTF-8 when valid, otherwise base64 (and says so). */
export const encodeBytes = (
  bytes: Uint8Array,
): { readonly text: string; readonly encoding: "utf8" | "base64" } => {
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes), encoding: "utf8" }
  } catch {
    return {
      text: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64"),
      encoding: "base64",
    }
  }
}

/**
 * A path field for --json, lossless: `{ [key]: text }`, and for a name that is not UTF-8 the shown
 * form (`ls -b` escapes) plus `[key]Base64`, its exact bytes.
 */
export const pathJson = (key: string, p: Path.Path): Record<string, string> => {
  const q = Path.normalize(p)
  return typeof q === "string"
    ? { [key]: q }
    : { [key]: Path.display(q), [`${key}Base64`]: Buffer.from(q).toString("base64") }
}

/** The CLI's output channel. */
export class Output {
  private printed = false
  constructor(
    readonly io: Io,
    readonly json: boolean,
  ) {}

  /** Prints the command's result: `value` as one JSON document in --json mode, else `human` (if any). */
  result(value: unknown, human?: string | ReadonlyArray<string>): void {
    if (this.json) {
      if (this.printed) return
      this.printed = true
      this.io.stdout.write(JSON.stringify(value, null, 2) + "\n")
      return
    }
    if (human === undefined) return
    const lines = typeof human === "string" ? [human] : human
    if (lines.length > 0) this.io.stdout.write(lines.join("\n") + "\n")
  }

  /**
   * Prints a result too large to hold, as its items arrive: in --json mode the one document
   * `{ ...head, [key]: [items] }` (laid out as {@link result} would), else `line(item)` per item.
   * Stops early when stdout's reader went away.
   */
  async resultStream<A>(
    head: Readonly<Record<string, unknown>>,
    key: string,
    items: AsyncIterable<A>,
    line: (item: A) => string,
  ): Promise<void> {
    const stdout = this.io.stdout
    const gone = () => stdout.destroyed || stdout.writableEnded
    if (!this.json) {
      for await (const item of items) {
        if (gone()) return
        await writeAll(stdout, line(item) + "\n")
      }
      return
    }
    if (this.printed) return
    let first = true
    for await (const item of items) {
      if (gone()) return
      const text = JSON.stringify(item, null, 2).replace(/\n/g, "\n    ")
      if (first) {
        // The document starts with the first item: a listing that fails at once prints the error instead.
        this.printed = true
        const fields = Object.entries(head).map(
          ([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v, null, 2).replace(/\n/g, "\n  ")},\n`,
        )
        await writeAll(stdout, `{\n${fields.join("")}  ${JSON.stringify(key)}: [\n    ${text}`)
        first = false
      } else await writeAll(stdout, `,\n    ${text}`)
    }
    if (first) return this.result({ ...head, [key]: [] })
    await writeAll(stdout, "\n  ]\n}\n")
  }

  /** A note for the user on stderr (also in --json mode: logs never go to stdout). */
  note(text: string): void {
    this.io.stderr.write(`cuvette: ${text}\n`)
  }

  /** Reports a failure: `{error: {...}}` on stdout in --json mode, `cuvette: message` on stderr otherwise. */
  error(failure: Failure, target: string | undefined): void {
    if (this.json) {
      if (this.printed) {
        // A document is already out; keep stdout one document and say it on stderr.
        this.note(failure.message)
        return
      }
      this.printed = true
      const error = {
        code: failure.code,
        message: failure.message,
        target: target ?? null,
        ...(failure.path !== undefined ? { path: failure.path } : {}),
      }
      this.io.stdout.write(JSON.stringify({ error }, null, 2) + "\n")
      return
    }
    this.note(failure.message)
  }
}
