/** Parses the agent's transport addresses: `unix:PATH`, `tcp:HOST:PORT`, `vsock[:PORT]`, `vsock:CID[:PORT]`. */
import { Constants } from "@cuvette/protocol"
import { Data } from "effect"

/** Where to listen or connect. */
export type Address =
  | { readonly _tag: "unix"; readonly path: string }
  | { readonly _tag: "tcp"; readonly host: string; readonly port: number }
  | { readonly _tag: "vsock"; readonly cid: number | undefined; readonly port: number }

/** A bad address, with the text that was given. */
export class AddressError extends Data.TaggedError("AddressError")<{ readonly message: string }> {}

const port = (text: string, what: string): number => {
  const n = Number(text)
  if (!/^\d+$/.test(text) || (n > 65535 && what !== "vsock"))
    throw new AddressError({ message: `invalid port "${text}" in ${what} address` })
  return n
}

/** Parses `text`; `mode` says whether it is for --listen or --connect (vsock needs a CID only to connect). */
export const parse = (text: string, mode: "listen" | "connect"): Address => {
  const colon = text.indexOf(":")
  const scheme = colon < 0 ? text : text.slice(0, colon)
  const rest = colon < 0 ? "" : text.slice(colon + 1)
  switch (scheme) {
    case "unix":
      if (!rest) throw new AddressError({ message: `unix address needs a path: unix:/run/cuvette.sock` })
      return { _tag: "unix", path: rest }
    case "tcp": {
      // tcp:HOST:PORT, tcp:[::1]:PORT
      const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(rest)
      if (!m)
        throw new AddressError({
          message: `invalid tcp address "${text}": expected tcp:HOST:PORT (tcp:127.0.0.1:4919)`,
        })
      return { _tag: "tcp", host: m[1] ?? (m[2] || "127.0.0.1"), port: port(m[3], "tcp") }
    }
    case "vsock": {
      const parts = rest ? rest.split(":") : []
      if (mode === "listen") {
        if (parts.length > 1)
          throw new AddressError({ message: `invalid vsock listen address "${text}": expected vsock[:PORT]` })
        return {
          _tag: "vsock",
          cid: undefined,
          port: parts[0] ? port(parts[0], "vsock") : Constants.DEFAULT_PORT,
        }
      }
      if (parts.length < 1 || parts.length > 2 || !/^\d+$/.test(parts[0]))
        throw new AddressError({
          message: `invalid vsock address "${text}": expected vsock:CID[:PORT] (vsock:2:4919)`,
        })
      return {
        _tag: "vsock",
        cid: Number(parts[0]),
        port: parts[1] ? port(parts[1], "vsock") : Constants.DEFAULT_PORT,
      }
    }
    default:
      throw new AddressError({
        message: `unknown transport "${text}": expected unix:PATH, tcp:HOST:PORT or ${mode === "listen" ? "vsock[:PORT]" : "vsock:CID[:PORT]"}`,
      })
  }
}

/** The text form, as printed in logs and returned by Agent.start. */
export const format = (a: Address): string =>
  a._tag === "unix"
    ? `unix:${a.path}`
    : a._tag === "tcp"
      ? `tcp:${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`
      : `vsock:${a.cid === undefined ? "any" : a.cid}:${a.port}`

/** True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost). */
export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host) || host === "::ffff:127.0.0.1"
