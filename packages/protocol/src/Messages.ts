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

/** Decodes msgpack bytes, failing with a PROTOCOL error (never throwing). */
export const unpack = (bytes: Uint8Array, what: string): Either.Either<unknown, AgentError> => {
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
