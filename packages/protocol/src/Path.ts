/**
 * File paths on the wire: text (msgpack str) when the name is valid UTF-8, its raw bytes (msgpack
 * bin) otherwise, so a guest file named with any bytes (`caf\xE9.txt` from a Latin-1 system) can be
 * listed, read, copied, renamed and removed like any other.
 */

/** A path or a file name: text when it is valid UTF-8, else its bytes. */
export type Path = string | Uint8Array

// ignoreBOM: a leading U+FEFF is part of the name, not a byte order mark to drop.
const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const encoder = new TextEncoder()

/** Text when `bytes` are valid UTF-8, else the bytes themselves: the form a path takes on the wire. */
export const fromBytes = (bytes: Uint8Array): Path => {
  try {
    return strict.decode(bytes)
  } catch {
    return bytes
  }
}

/** The wire form of `p`: bytes that are valid UTF-8 become text. */
export const normalize = (p: Path): Path => (typeof p === "string" ? p : fromBytes(p))

/** The bytes of `p` (UTF-8 for text). */
export const toBytes = (p: Path): Uint8Array => (typeof p === "string" ? encoder.encode(p) : p)

/** True when both name the same bytes. */
export const equals = (a: Path, b: Path): boolean => {
  if (typeof a === "string" && typeof b === "string") return a === b
  const x = toBytes(a)
  const y = toBytes(b)
  return x.byteLength === y.byteLength && x.every((v, i) => v === y[i])
}

const C_ESCAPES: Record<number, string> = { 7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r" }
const octal = (byte: number) => `\\${byte.toString(8).padStart(3, "0")}`

/** Length of the valid UTF-8 sequence starting at `i`, or 0 when the byte there starts none. */
const sequenceAt = (b: Uint8Array, i: number): number => {
  const lead = b[i]!
  const n =
    lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0
  if (n === 0 || i + n > b.byteLength) return 0
  try {
    strict.decode(b.subarray(i, i + n))
    return n
  } catch {
    return 0
  }
}

/**
 * How a path is shown to people: text as it is; a name that is not UTF-8 with the escapes GNU `ls -b`
 * prints — each byte that is not part of a UTF-8 character as `\ooo` (octal), control characters as
 * `\n`, `\t`, … and a backslash as `\\` — so `caf\351.txt` names the byte 0xE9 unambiguously.
 */
export const display = (p: Path): string => {
  if (typeof p === "string") return p
  const text = fromBytes(p)
  if (typeof text === "string") return text
  let out = ""
  for (let i = 0; i < p.byteLength; ) {
    const byte = p[i]!
    if (byte >= 0x80) {
      const n = sequenceAt(p, i)
      out += n === 0 ? octal(byte) : strict.decode(p.subarray(i, i + n))
      i += Math.max(n, 1)
      continue
    }
    out +=
      byte === 0x5c
        ? "\\\\"
        : C_ESCAPES[byte] !== undefined
          ? `\\${C_ESCAPES[byte]}`
          : byte < 0x20 || byte === 0x7f
            ? octal(byte)
            : String.fromCharCode(byte)
    i++
  }
  return out
}

const C_BYTES: Record<string, number> = Object.fromEntries(
  Object.entries(C_ESCAPES).map(([byte, letter]) => [letter, Number(byte)]),
)

/**
 * The path written with the escapes {@link display} (and GNU `ls -b`) prints: `\ooo` is the byte of
 * that octal value, `\n`, `\t`, … the control characters, and a backslash before any other
 * character stands for that character (`\\` a backslash, `\ ` a space). So a name that is not UTF-8
 * can be typed on a command line, whose arguments are always text. Throws on an escape above `\377`.
 */
export const parseEscaped = (text: string): Path => {
  const bytes: Array<number> = []
  for (let i = 0; i < text.length; ) {
    if (text[i] !== "\\" || i + 1 === text.length) {
      const char = String.fromCodePoint(text.codePointAt(i)!)
      bytes.push(...encoder.encode(char))
      i += char.length
      continue
    }
    const digits = /^[0-7]{1,3}/.exec(text.slice(i + 1, i + 4))?.[0]
    if (digits !== undefined) {
      const byte = parseInt(digits, 8)
      if (byte > 0xff) throw new Error(`\\${digits} is not a byte (at most \\377)`)
      bytes.push(byte)
      i += 1 + digits.length
      continue
    }
    const next = String.fromCodePoint(text.codePointAt(i + 1)!)
    bytes.push(...(C_BYTES[next] !== undefined ? [C_BYTES[next]] : encoder.encode(next)))
    i += 1 + next.length
  }
  return fromBytes(Uint8Array.from(bytes))
}

/**
 * True when `p` names the root directory whatever its spelling (`/`, `//`, `/.`, `/..`, `/tmp/..`,
 * `C:\`, `C:\Windows\..`), judged from the text alone. A relative path is judged by the agent, which
 * knows its working directory.
 */
export const isRoot = (p: Path): boolean => {
  // Latin-1 maps each byte to one character, so `/` and `.` are found in names that are not UTF-8.
  const text = typeof p === "string" ? p : Array.from(p, (b) => String.fromCharCode(b)).join("")
  const drive = /^[A-Za-z]:[\\/]/.exec(text)
  if (!drive && !text.startsWith("/") && !text.startsWith("\\")) return false
  const rest = drive ? text.slice(drive[0].length) : text
  const parts: Array<string> = []
  for (const part of rest.split(drive || text.includes("\\") ? /[\\/]/ : "/")) {
    if (part === "" || part === ".") continue
    if (part === "..") parts.pop()
    else parts.push(part)
  }
  return parts.length === 0
}
