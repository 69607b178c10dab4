/**
 * Addresses: where an agent is, or where it listens, as one string that means the same to the agent
 * (`--listen`, `--connect`), the CLI (`--target`, `CUVETTE_TARGET`) and the library. Pure: no I/O, so
 * both sides parse with the same code, the same defaults and the same messages. Which forms a role
 * may use (the agent cannot listen on `hybrid:`) is checked on top, by the role, with an AddressError
 * that lists the forms it accepts.
 *
 *   unix:PATH · tcp:HOST[:PORT] · vsock:CID[:PORT] (CID `any` to listen) · hybrid:PATH[:PORT]
 *   hyperv:NAME · hyperv-id:GUID (`?vtl=2` selects VTL2) · serial:PATH · listen-unix:PATH · listen-vsock[:PORT]
 */
import * as Data from "effect/Data"
import { DEFAULT_PORT } from "./Constants.js"

/** A Unix socket. */
export interface Unix {
  readonly _tag: "unix"
  readonly path: string
}
/** A TCP address; port 0 (listen on a free port) is only meaningful to a listener. */
export interface Tcp {
  readonly _tag: "tcp"
  readonly host: string
  readonly port: number
}
/** AF_VSOCK; `cid` is {@link VSOCK_CID_ANY} for `vsock:any` (listen on every CID). */
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
/**
 * AF_HYPERV (Windows host): `hyperv:NAME` is a VM name (resolved with hvc.exe / Get-VM) even when it looks
 * like a GUID, since fleet hosts name VMs with GUIDs that are not their ids; only `hyperv-id:GUID` is an id.
 */
export interface Hyperv {
  readonly _tag: "hyperv"
  /** The VM name, or its GUID (canonical: lowercase, no braces) when `byId`. */
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

/** Any address. */
export type Address = Unix | Tcp | Vsock | Hybrid | Hyperv | Serial | ListenUnix | ListenVsock

/** VMADDR_CID_ANY (-1U): `vsock:any`, a listener bound to every CID. */
export const VSOCK_CID_ANY = 0xffffffff
/** VMADDR_CID_HOST: the host, as a guest dials it. */
export const VSOCK_CID_HOST = 2

const U32 = 0xffffffff
/** HvSocket.h: the vsock service-id template maps ports 0..0x7FFFFFFF. */
const HYPERV_PORT_MAX = 0x7fffffff

/** Every accepted form, for messages and help texts. */
export const forms: ReadonlyArray<string> = [
  "unix:PATH",
  "tcp:HOST[:PORT]",
  "vsock:CID[:PORT]",
  "vsock[:any[:PORT]]",
  "hybrid:PATH[:PORT]",
  "hyperv:NAME[?vtl=2]",
  "hyperv-id:GUID[?vtl=2]",
  "serial:PATH",
  "listen-unix:PATH",
  "listen-vsock[:PORT]",
]

/** An address string that cannot be parsed, or one this role cannot use; the message lists what it can. */
export class AddressError extends Data.TaggedError("AddressError")<{
  readonly input: string
  readonly detail: string
  /** The forms accepted where the address was given (all of {@link forms} unless restricted). */
  readonly accepted: ReadonlyArray<string>
}> {
  override get message(): string {
    return `invalid address ${JSON.stringify(this.input)}: ${this.detail}; accepted forms: ${this.accepted.join(" · ")} (port defaults to ${DEFAULT_PORT})`
  }
}

const GUID_BODY = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
const GUID_EXACT = new RegExp(`^(\\{)?${GUID_BODY}(\\})?$`, "i")

/** True for a GUID: 8-4-4-4-12 hex digits, any case, inside braces or bare (never half-braced). */
export const isGuid = (s: unknown): s is string => {
  const m = typeof s === "string" ? GUID_EXACT.exec(s) : null
  return m !== null && (m[1] === undefined) === (m[2] === undefined)
}

/** The canonical form of a GUID (lowercase, no braces); the caller has checked {@link isGuid}. */
export const canonicalGuid = (s: string): string => s.replace(/[{}]/g, "").toLowerCase()

/** The first GUID in a text (a tool's output), canonical, or undefined. */
export const findGuid = (text: string): string | undefined => {
  const m = new RegExp(GUID_BODY, "i").exec(text)
  return m ? canonicalGuid(m[0]) : undefined
}

const fail = (input: string, detail: string): never => {
  throw new AddressError({ input, detail, accepted: forms })
}

/** A decimal or 0x-hex integer in 0..max. */
const integer = (input: string, what: string, text: string, max: number): number => {
  if (!/^(\d+|0x[0-9a-f]+)$/i.test(text)) fail(input, `${what} ${JSON.stringify(text)} is not a number`)
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n > max) fail(input, `${what} ${text} is out of range (0..${max})`)
  return n
}
const nonEmpty = (input: string, what: string, text: string): string =>
  text.length === 0 ? fail(input, `${what} is missing`) : text

/** Splits "PATH:PORT" when it ends in a decimal port; otherwise the whole string is the path. */
const pathAndPort = (input: string, text: string): { path: string; port: number } => {
  const m = /^(.*):(\d+)$/.exec(text)
  if (m && m[1]) return { path: m[1], port: integer(input, "port", m[2]!, U32 - 1) }
  return { path: nonEmpty(input, "socket path", text), port: DEFAULT_PORT }
}

const tcp = (input: string, rest: string): Tcp => {
  nonEmpty(input, "host", rest)
  const port = (text: string | undefined) =>
    text === undefined ? DEFAULT_PORT : integer(input, "port", text, 65535)
  const v6 = /^\[([^\]]+)\](?::(.*))?$/.exec(rest)
  if (v6) return { _tag: "tcp", host: v6[1]!, port: port(v6[2]) }
  const parts = rest.split(":")
  if (parts.length > 2) fail(input, `an IPv6 address must be written in brackets: tcp:[::1]:${DEFAULT_PORT}`)
  return { _tag: "tcp", host: nonEmpty(input, "host", parts[0]!), port: port(parts[1]) }
}

const vsock = (input: string, rest: string | undefined): Vsock => {
  if (rest === undefined) return { _tag: "vsock", cid: VSOCK_CID_ANY, port: DEFAULT_PORT }
  const parts = nonEmpty(input, "CID", rest).split(":")
  if (parts.length > 2) fail(input, "expected vsock:CID or vsock:CID:PORT")
  const cid = parts[0]!.toLowerCase() === "any" ? VSOCK_CID_ANY : integer(input, "CID", parts[0]!, U32 - 1)
  return {
    _tag: "vsock",
    cid,
    port: parts[1] === undefined ? DEFAULT_PORT : integer(input, "port", parts[1], U32 - 1),
  }
}

const hyperv = (input: string, byId: boolean, rest: string): Hyperv => {
  const q = rest.indexOf("?")
  const vm = q < 0 ? rest : rest.slice(0, q)
  let vtl2 = false
  let port = DEFAULT_PORT
  for (const [k, v] of new URLSearchParams(q < 0 ? "" : rest.slice(q + 1))) {
    if (k === "vtl") {
      if (v !== "0" && v !== "2") fail(input, `vtl must be 0 or 2, not ${JSON.stringify(v)}`)
      vtl2 = v === "2"
    } else if (k === "port") port = integer(input, "port", v, HYPERV_PORT_MAX)
    else fail(input, `unknown option ${JSON.stringify(k)} (known: vtl, port)`)
  }
  nonEmpty(input, byId ? "VM id" : "VM name", vm)
  if (byId && !isGuid(vm))
    fail(input, `${JSON.stringify(vm)} is not a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)`)
  return { _tag: "hyperv", vm: byId ? canonicalGuid(vm) : vm, byId, port, vtl2 }
}

/** Parses an address; throws an {@link AddressError} naming the problem and listing the accepted forms. */
export const parse = (text: string): Address => {
  const s = text.trim()
  const colon = s.indexOf(":")
  const scheme = (colon < 0 ? s : s.slice(0, colon)).toLowerCase()
  const rest = colon < 0 ? "" : s.slice(colon + 1)
  switch (scheme) {
    case "unix":
      return { _tag: "unix", path: nonEmpty(text, "socket path", rest) }
    case "serial":
      return { _tag: "serial", path: nonEmpty(text, "chardev socket path", rest) }
    case "listen-unix":
      return { _tag: "listen-unix", path: nonEmpty(text, "socket path", rest) }
    case "tcp":
      return tcp(text, rest)
    case "vsock":
      return vsock(text, colon < 0 ? undefined : rest)
    case "listen-vsock":
      return { _tag: "listen-vsock", port: rest === "" ? DEFAULT_PORT : integer(text, "port", rest, U32 - 1) }
    case "hybrid":
      return { _tag: "hybrid", ...pathAndPort(text, rest) }
    case "hyperv":
    case "hyperv-id":
      return hyperv(text, scheme === "hyperv-id", rest)
    default:
      return fail(
        text,
        s === ""
          ? "the address is empty"
          : s.startsWith("/") || s.startsWith("./")
            ? `no transport given (did you mean unix:${s}?)`
            : `unknown transport ${JSON.stringify(scheme)}`,
      )
  }
}

/** Formats an address back into its string form (parse(format(a)) equals a). */
export const format = (a: Address): string => {
  switch (a._tag) {
    case "unix":
    case "serial":
    case "listen-unix":
      return `${a._tag}:${a.path}`
    case "tcp":
      return `tcp:${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port}`
    case "vsock":
      return `vsock:${a.cid === VSOCK_CID_ANY ? "any" : a.cid}:${a.port}`
    case "hybrid":
      return `hybrid:${a.path}:${a.port}`
    case "listen-vsock":
      return `listen-vsock:${a.port}`
    case "hyperv": {
      const q = [...(a.vtl2 ? ["vtl=2"] : []), ...(a.port !== DEFAULT_PORT ? [`port=${a.port}`] : [])]
      return `${a.byId ? "hyperv-id" : "hyperv"}:${a.vm}${q.length ? `?${q.join("&")}` : ""}`
    }
  }
}
