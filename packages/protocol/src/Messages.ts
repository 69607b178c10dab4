/**
 * Control messages: msgpack on the wire, each validated by an Effect Schema. A message that does not
 * decode or validate becomes a PROTOCOL AgentError naming the offending field; the session goes on.
 */
import { Either, ParseResult, Schema } from "effect"
import { Packr } from "msgpackr"
import { MAX_ERROR_TEXT } from "./Constants.js"
import { AgentError, ErrorCode } from "./Errors.js"

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: "number", mapsAsObjects: true })

/** Encodes a value as msgpack. */
export const pack = (value: unknown): Uint8Array => packr.pack(value)

/** msgpack types of a fixed size: first byte → bytes that follow (floats, ints, fixext). */
const fixedSize = new Map(
  Object.entries({
    ca: 4,
    cb: 8,
    cc: 1,
    cd: 2,
    ce: 4,
    cf: 8,
    d0: 1,
    d1: 2,
    d2: 4,
    d3: 8,
    d4: 2,
    d5: 3,
    d6: 5,
    d7: 9,
    d8: 17,
  }).map(([b, n]) => [parseInt(b, 16), n] as const),
)
/** msgpack types with a length field: [first byte, [its width, what the length counts]]. */
const withLength = new Map<number, readonly [1 | 2 | 4, "bytes" | "ext" | "items" | "pairs"]>([
  [0xc4, [1, "bytes"]],
  [0xc5, [2, "bytes"]],
  [0xc6, [4, "bytes"]],
  [0xc7, [1, "ext"]],
  [0xc8, [2, "ext"]],
  [0xc9, [4, "ext"]],
  [0xd9, [1, "bytes"]],
  [0xda, [2, "bytes"]],
  [0xdb, [4, "bytes"]],
  [0xdc, [2, "items"]],
  [0xdd, [4, "items"]],
  [0xde, [2, "pairs"]],
  [0xdf, [4, "pairs"]],
])

/**
 * Checks that every length in `bytes` fits in what follows it, before msgpackr sees them: msgpackr
 * allocates an array of the announced size, so five bytes announcing 50 million elements would cost
 * hundreds of MB. Every element takes at least one byte, so no count may exceed the bytes left.
 */
const lengthsFit = (bytes: Uint8Array): boolean => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const end = bytes.byteLength
  let pos = 0
  let pending = 1 // values still to read
  while (pending > 0) {
    if (pos >= end) return false
    const b = bytes[pos++]!
    pending--
    let skip = 0
    let items = 0
    if (b >= 0x80 && b <= 0x8f) items = 2 * (b & 0x0f)
    else if (b >= 0x90 && b <= 0x9f) items = b & 0x0f
    else if (b >= 0xa0 && b <= 0xbf) skip = b & 0x1f
    else if (b === 0xc1) return false
    else if (fixedSize.has(b)) skip = fixedSize.get(b)!
    else if (withLength.has(b)) {
      const [width, counts] = withLength.get(b)!
      if (pos + width > end) return false
      const n = width === 1 ? view.getUint8(pos) : width === 2 ? view.getUint16(pos) : view.getUint32(pos)
      pos += width
      if (counts === "bytes") skip = n
      else if (counts === "ext") skip = n + 1
      else items = counts === "pairs" ? 2 * n : n
    }
    // Everything else (fixints, nil, booleans) is the one byte already read.
    pos += skip
    pending += items
    if (pos > end || pending > end - pos) return false
  }
  return true
}

/** Decodes msgpack bytes, failing with a PROTOCOL error (never throwing). */
export const unpack = (bytes: Uint8Array, what: string): Either.Either<unknown, AgentError> => {
  if (!lengthsFit(bytes))
    return Either.left(
      new AgentError({
        code: "PROTOCOL",
        message: `malformed ${what}: not valid msgpack (a length runs past the end of the message)`,
      }),
    )
  try {
    return Either.right(packr.unpack(bytes))
  } catch (cause) {
    return Either.left(
      new AgentError({
        code: "PROTOCOL",
        message: bounded(
          `malformed ${what}: not valid msgpack (${String((cause as Error)?.message ?? cause)})`,
        ),
      }),
    )
  }
}

/** Client → agent, within one operation. */
export const ClientMessage = Schema.Union(
  /** Starts an operation; the frame's call id names it from now on. */
  Schema.TaggedStruct("Open", { op: Schema.String, args: Schema.Unknown }),
  /** An input to a running operation (a signal, a terminal resize). */
  Schema.TaggedStruct("Input", { input: Schema.Unknown }),
)
/** A control message from the client, as the {@link ClientMessage} schema decodes it. */
export type ClientMessage = typeof ClientMessage.Type

/** Agent → client, within one operation. */
export const AgentMessage = Schema.Union(
  /** Progress of a running operation (a started process, an opened file). */
  Schema.TaggedStruct("Event", { event: Schema.Unknown }),
  /** The operation succeeded; nothing follows. */
  Schema.TaggedStruct("Result", { value: Schema.Unknown }),
  /** The operation failed; nothing follows. */
  Schema.TaggedStruct("Failure", { code: ErrorCode, message: Schema.String }),
)
/** A control message from the agent, as the {@link AgentMessage} schema decodes it. */
export type AgentMessage = typeof AgentMessage.Type

/**
 * Cuts text made from a peer's input to {@link MAX_ERROR_TEXT} characters, so an error message or a
 * log line never carries a payload back (a 1 MiB value gives a message of a few hundred bytes).
 */
export const bounded = (text: string, max = MAX_ERROR_TEXT): string =>
  text.length <= max ? text : `${text.slice(0, max - 1)}…`

/** Formats a schema failure as `field.path: problem` lines, at most {@link MAX_ERROR_TEXT} characters. */
export const formatIssue = (error: ParseResult.ParseError): string => {
  const lines: Array<string> = []
  let length = 0
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    if (length > MAX_ERROR_TEXT) break
    const line = bounded(issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message)
    lines.push(line)
    length += line.length + 2
  }
  return bounded(lines.join("; "))
}

/**
 * Validates `value` against `schema`, failing with a PROTOCOL error that names the field. It stops at
 * the first problem: a message with a million bad values costs no more than one with a single one.
 */
export const decode =
  <A, I>(schema: Schema.Schema<A, I>, what: string) =>
  (value: unknown): Either.Either<A, AgentError> =>
    Either.mapLeft(
      Schema.decodeUnknownEither(schema, { errors: "first", onExcessProperty: "ignore" })(value),
      (error) =>
        new AgentError({ code: "PROTOCOL", message: bounded(`invalid ${what}: ${formatIssue(error)}`) }),
    )

/** Encodes `value` with `schema` and packs it. Throws only on a programming error (a value of the wrong type). */
export const encode = <A, I>(schema: Schema.Schema<A, I>, value: A): Uint8Array =>
  pack(Schema.encodeSync(schema)(value))

/** Unpacks and validates in one step. */
export const unpackAs =
  <A, I>(schema: Schema.Schema<A, I>, what: string) =>
  (bytes: Uint8Array): Either.Either<A, AgentError> =>
    Either.flatMap(unpack(bytes, what), decode(schema, what))
