/**
 * Targets: where the agent is, as one string that means the same in the CLI, the library and
 * `CUVETTE_TARGET`. `parse` turns the string into a tagged value, `format` turns it back.
 *
 *   unix:PATH · tcp:HOST:PORT · vsock:CID[:PORT] · hybrid:PATH[:PORT] · hyperv:NAME · hyperv-id:GUID
 *   (`?vtl=2` selects VTL2) · serial:PATH · listen-unix:PATH · listen-vsock[:PORT]
 */
import { Data } from "effect"

/** Default agent port (0x1337), as OpenVMM's pipette uses. */
export const DEFAULT_PORT = 4919

/** A Unix socket the agent listens on (`--listen unix:PATH`). */
export interface Unix {
  readonly _tag: "unix"
  readonly path: string
}
/** A TCP address the agent listens on. */
export interface Tcp {
  readonly _tag: "tcp"
  readonly host: string
  readonly port: number
}
/** AF_VSOCK: connect into the guest with this CID (Linux host). */
export interface Vsock {
  readonly _tag: "vsock"
  readonly cid: number
  readonly port: number
}
/** Hybrid vsock (OpenVMM, Firecracker, Cloud Hypervisor): a Unix socket plus `CONNECT <port>`. */
export interface Hybrid {
  readonly _tag: "hybrid"
  readonly path: string
  readonly port: number
}
/** AF_HYPERV (Windows host): a VM by name (resolved with hvc.exe / Get-VM) or by id. */
export interface Hyperv {
  readonly _tag: "hyperv"
  /** The VM name, or its GUID when `byId`. */
  readonly vm: string
  readonly byId: boolean
  readonly port: number
  /** Connect to VTL2 (HVSOCKET_HIGH_VTL), the OpenHCL paravisor. */
  readonly vtl2: boolean
}
/** A QEMU chardev Unix socket bound to a virtio-serial port. */
export interface Serial {
  readonly _tag: "serial"
  readonly path: string
}
/** Listen on a Unix socket and accept the guest's connection (OpenVMM's `<vsock_path>_4919`). */
export interface ListenUnix {
  readonly _tag: "listen-unix"
  readonly path: string
}
/** Listen on AF_VSOCK and accept the guest's connection (the agent connects out to CID 2). */
export interface ListenVsock {
  readonly _tag: "listen-vsock"
  readonly port: number
}

/** Any target. */
export type Target = Unix | Tcp | Vsock | Hybrid | Hyperv | Serial | ListenUnix | ListenVsock

/** The accepted forms, for messages and help texts. */
export const forms: ReadonlyArray<string> = [
  "unix:PATH",
  "tcp:HOST:PORT",
  "vsock:CID[:PORT]",
  "hybrid:PATH[:PORT]",
  "hyperv:NAME[?vtl=2]",
  "hyperv-id:GUID[?vtl=2]",
  "serial:PATH",
  "listen-unix:PATH",
  "listen-vsock[:PORT]",
]

/** A target string that cannot be parsed. */
export class TargetError extends Data.TaggedError("TargetError")<{
  readonly input: string
  readonly detail: string
}> {
  override get message(): string {
    return `invalid target ${JSON.stringify(this.input)}: ${this.detail}; accepted forms: ${forms.join(" · ")} (port defaults to ${DEFAULT_PORT})`
  }
}

const GUID = /^\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?$/i

const integer = (input: string, what: string, text: string, max: number): number => {
  if (!/^(\d+|0x[0-9a-f]+)$/i.test(text))
    throw new TargetError({ input, detail: `${what} ${JSON.stringify(text)} is not a number` })
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n > max)
    throw new TargetError({ input, detail: `${what} ${text} is out of range (0..${max})` })
  return n
}
const port16 = (input: string, text: string) => {
  const p = integer(input, "port", text, 65535)
  if (p === 0) throw new TargetError({ input, detail: "port 0 is not a port one can connect to" })
  return p
}
const U32 = 0xffffffff
const nonEmpty = (input: string, what: string, text: string): string => {
  if (text.length === 0) throw new TargetError({ input, detail: `${what} is missing` })
  return text
}

/** Splits "PATH:PORT" when it ends in a decimal port; otherwise the whole string is the path. */
const pathAndPort = (input: string, text: string): { path: string; port: number } => {
  const m = /^(.*):(\d+)$/.exec(text)
  if (m && m[1]) return { path: m[1], port: integer(input, "port", m[2]!, U32 - 1) }
  return { path: nonEmpty(input, "socket path", text), port: DEFAULT_PORT }
}

/** Parses a target string; throws a {@link TargetError} naming the problem and the accepted forms. */
export const parse = (text: string): Target => {
  const input = text
  const s = text.trim()
  const colon = s.indexOf(":")
  const scheme = (colon < 0 ? s : s.slice(0, colon)).toLowerCase()
  const rest = colon < 0 ? "" : s.slice(colon + 1)
  switch (scheme) {
    case "unix":
      return { _tag: "unix", path: nonEmpty(input, "socket path", rest) }
    case "serial":
      return { _tag: "serial", path: nonEmpty(input, "chardev socket path", rest) }
    case "listen-unix":
      return { _tag: "listen-unix", path: nonEmpty(input, "socket path", rest) }
    case "tcp": {
      nonEmpty(input, "host", rest)
      const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(rest)
      if (v6)
        return { _tag: "tcp", host: v6[1]!, port: v6[2] === undefined ? DEFAULT_PORT : port16(input, v6[2]) }
      const parts = rest.split(":")
      if (parts.length > 2)
        throw new TargetError({
          input,
          detail: "an IPv6 address must be written in brackets: tcp:[::1]:4919",
        })
      return {
        _tag: "tcp",
        host: nonEmpty(input, "host", parts[0]!),
        port: parts[1] === undefined ? DEFAULT_PORT : port16(input, parts[1]),
      }
    }
    case "vsock": {
      const parts = nonEmpty(input, "CID", rest).split(":")
      if (parts.length > 2) throw new TargetError({ input, detail: "expected vsock:CID or vsock:CID:PORT" })
      const cid = integer(input, "CID", parts[0]!, U32 - 1)
      return {
        _tag: "vsock",
        cid,
        port: parts[1] === undefined ? DEFAULT_PORT : integer(input, "port", parts[1], U32 - 1),
      }
    }
    case "listen-vsock":
      return {
        _tag: "listen-vsock",
        port: rest === "" ? DEFAULT_PORT : integer(input, "port", rest, U32 - 1),
      }
    case "hybrid": {
      const { path, port } = pathAndPort(input, rest)
      return { _tag: "hybrid", path, port }
    }
    case "hyperv":
    case "hyperv-id": {
      const q = rest.indexOf("?")
      const vm = q < 0 ? rest : rest.slice(0, q)
      const params = new URLSearchParams(q < 0 ? "" : rest.slice(q + 1))
      let vtl2 = false
      let port = DEFAULT_PORT
      for (const [k, v] of params) {
        if (k === "vtl") {
          if (v !== "0" && v !== "2")
            throw new TargetError({ input, detail: `vtl must be 0 or 2, not ${JSON.stringify(v)}` })
          vtl2 = v === "2"
        } else if (k === "port") port = integer(input, "port", v, 0x7fffffff)
        else
          throw new TargetError({ input, detail: `unknown option ${JSON.stringify(k)} (known: vtl, port)` })
      }
      const byId = scheme === "hyperv-id"
      nonEmpty(input, byId ? "VM id" : "VM name", vm)
      if (byId && !GUID.test(vm))
        throw new TargetError({
          input,
          detail: `${JSON.stringify(vm)} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`,
        })
      return { _tag: "hyperv", vm: byId ? vm.replace(/[{}]/g, "").toLowerCase() : vm, byId, port, vtl2 }
    }
    default: {
      const looksLikePath = s.startsWith("/") || s.startsWith("./")
      throw new TargetError({
        input,
        detail:
          s === ""
            ? "the target is empty"
            : looksLikePath
              ? `no transport given (did you mean unix:${s}?)`
              : `unknown transport ${JSON.stringify(scheme)}`,
      })
    }
  }
}

/** Formats a target back into its string form (parse(format(t)) equals t). */
export const format = (t: Target): string => {
  switch (t._tag) {
    case "unix":
    case "serial":
    case "listen-unix":
      return `${t._tag}:${t.path}`
    case "tcp":
      return `tcp:${t.host.includes(":") ? `[${t.host}]` : t.host}:${t.port}`
    case "vsock":
      return `vsock:${t.cid}:${t.port}`
    case "hybrid":
      return `hybrid:${t.path}:${t.port}`
    case "listen-vsock":
      return `listen-vsock:${t.port}`
    case "hyperv": {
      const q = [...(t.vtl2 ? ["vtl=2"] : []), ...(t.port !== DEFAULT_PORT ? [`port=${t.port}`] : [])]
      return `${t.byId ? "hyperv-id" : "hyperv"}:${t.vm}${q.length ? `?${q.join("&")}` : ""}`
    }
  }
}

/** Returns the target with VTL2 selected (the `vtl2` option / `--vtl2`); other targets are unchanged. */
export const withVtl2 = (t: Target, vtl2: boolean | undefined): Target =>
  t._tag === "hyperv" && vtl2 ? { ...t, vtl2: true } : t
