// Guest paths are written `:PATH` (as scp writes `host:PATH`); file commands that only ever mean the
// guest also accept a bare path. A guest name that is not UTF-8 is bytes (protocol's Path): shown with
// `ls -b` escapes, typed with them after -b, and joined byte for byte.
import * as hostPath from "node:path"
import * as Path from "@cuvette/protocol/Path"
import { CliError, UsageError } from "./errors.js"
import * as ExitCode from "../ExitCode.js"

/** A guest path: text, or bytes for a name that is not UTF-8. */
export type GuestPath = Path.Path

/** A host path as node:fs takes it: a Buffer for a name that is not UTF-8. */
export type HostPath = string | Buffer

/** True when `arg` names a guest path (`:PATH`). */
export const isGuest = (arg: string): boolean => arg.startsWith(":")

/** The guest path of `arg`, with or without the leading colon. */
export const guestPath = (arg: string, command: string): string => {
  const p = isGuest(arg) ? arg.slice(1) : arg
  if (p.length === 0)
    throw new UsageError({ detail: `an empty guest path for \`${command}\`; write it as :PATH` })
  return p
}

/** The option that makes PATH arguments use `ls -b` escapes (to name a file that is not UTF-8). */
export const ESCAPED_HELP = "PATH is written with ls -b escapes (\\351 is the byte 0xE9, \\\\ a backslash)"

/** {@link guestPath}, decoded from `ls -b` escapes when `escaped` (-b) is given. */
export const guestPathArg = (arg: string, command: string, escaped: boolean): GuestPath => {
  const p = guestPath(arg, command)
  if (!escaped) return p
  try {
    return Path.parseEscaped(p)
  } catch (e) {
    throw new UsageError({ detail: `bad escape in ${arg} for \`${command} -b\`: ${(e as Error).message}` })
  }
}

/** How a path is shown: a name that is not UTF-8 with `ls -b` escapes (`caf\351.txt`). */
export const shown = (p: GuestPath): string => Path.display(p)

// Byte paths go through node:path as Latin-1, which keeps every byte one character.
const latin1 = (p: Uint8Array) => Buffer.from(p).toString("latin1")
const fromLatin1 = (s: string) => Buffer.from(s, "latin1")

/** The last component of a guest path, POSIX (`/a/b`) or Windows (`C:\a\b`). */
export function guestBasename(p: string): string
export function guestBasename(p: GuestPath): GuestPath
export function guestBasename(p: GuestPath): GuestPath {
  if (typeof p !== "string") return fromLatin1(hostPath.posix.basename(latin1(p)))
  return (
    p
      .split(/[\\/]/)
      .filter((c) => c !== "")
      .pop() ?? p
  )
}

/** The directory part of a guest path (POSIX rules, byte for byte for a name that is not UTF-8). */
export const guestDirname = (p: GuestPath): GuestPath =>
  typeof p === "string" ? hostPath.posix.dirname(p) : fromLatin1(hostPath.posix.dirname(latin1(p)))

/** `dir` joined with `name`, with the separator `dir` uses (a Windows guest path keeps backslashes). */
export const guestJoin = (dir: GuestPath, name: GuestPath): GuestPath => {
  if (typeof dir !== "string" || typeof name !== "string") {
    // Bytes that are not UTF-8 come from POSIX guests only.
    const d = Path.toBytes(dir)
    const slash = d[d.byteLength - 1] === 0x2f ? [] : [0x2f]
    return Buffer.concat([d, Uint8Array.from(slash), Path.toBytes(name)])
  }
  const sep = dir.includes("\\") && !dir.includes("/") ? "\\" : "/"
  return dir.endsWith(sep) ? `${dir}${name}` : `${dir}${sep}${name}`
}

/**
 * `name` (from a guest listing) inside the host directory `dir`: byte for byte on POSIX hosts. A name
 * that is not UTF-8 cannot be a Windows file name (UTF-16): that fails naming the file.
 */
export const hostJoin = (dir: HostPath, name: GuestPath, platform: NodeJS.Platform): HostPath => {
  if (typeof name === "string" && typeof dir === "string") return hostPath.join(dir, name)
  if (typeof name !== "string" && platform === "win32")
    throw new CliError({
      code: "EILSEQ",
      detail: `cannot copy ${shown(name)} into ${shownHost(dir)}: the name is not UTF-8 and this host's file names are Unicode; rename it on the guest first (\`cuvette mv -b\`)`,
      exitCode: ExitCode.Failed,
    })
  return fromLatin1(hostPath.join(latin1(Path.toBytes(dir)), latin1(Path.toBytes(name))))
}

/** A tree copy's host path (text or bytes) as node:fs takes it. */
export const asHost = (p: GuestPath): HostPath =>
  typeof p === "string" ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength)

/** How a host path is shown. */
export const shownHost = (p: HostPath): string => (typeof p === "string" ? p : Path.display(p))
