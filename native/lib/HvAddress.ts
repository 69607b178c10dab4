/**
 * Hyper-V socket addresses in pure TypeScript (works on every OS): GUID parsing and formatting, the vsock
 * port ↔ service id mapping, and the 36-byte SOCKADDR_HV the Windows addon passes to bind/connect.
 */
import * as Address from "@cuvette/protocol/Address"
import { invalidArgument } from "./NativeError.js"

/** A GUID in canonical form: lowercase, hyphenated, no braces. */
export type Guid = string & { readonly Guid: unique symbol }

// ws2def.h does not define it and mingw-w64's winsock2.h stops at AF_MAX 33; Windows SDK ws2def.h: AF_HYPERV 34.
export const AF_HYPERV = 34
// hvsocket.h: HV_PROTOCOL_RAW, the protocol for socket() and the level for the HVSOCKET_* options.
export const HV_PROTOCOL_RAW = 1
// hvsocket.h: HVSOCKET_CONNECT_TIMEOUT (ULONG milliseconds) and its maximum.
export const HVSOCKET_CONNECT_TIMEOUT = 1
export const HVSOCKET_CONNECT_TIMEOUT_MAX = 300_000
// hvsocket.h: HVSOCKET_CONNECTED_SUSPEND (keep the connection across VM suspend).
export const HVSOCKET_CONNECTED_SUSPEND = 4
// HvSocket.h: HVSOCKET_HIGH_VTL (ULONG 1 = connect to the guest's VTL2, e.g. OpenHCL); set before connect.
export const HVSOCKET_HIGH_VTL = 8
// hvsocket.h: sizeof(SOCKADDR_HV) = Family u16 + Reserved u16 + VmId GUID + ServiceId GUID.
export const SOCKADDR_HV_SIZE = 36
// HvSocket.h: "Valid port mappings are 0-0x7FFFFFFF" for the vsock template.
export const MAX_VSOCK_PORT = 0x7fffffff

/** True for a GUID string, with or without braces, any case (the one GUID pattern, shared with targets). */
export const isGuid = (s: unknown): boolean => Address.isGuid(s)

/** Parses a GUID ("{...}" or bare, any case) to canonical form; throws NativeError INVALID_ARGUMENT. */
export const parseGuid = (s: string, what = "GUID"): Guid => {
  if (typeof s !== "string" || !isGuid(s))
    throw invalidArgument(
      "parse GUID",
      `${what} ${JSON.stringify(s)} is not a GUID: expected 8-4-4-4-12 hex digits such as a42e7cda-d03f-480c-9cc2-a4de20abb878 (braces optional)`,
    )
  return Address.canonicalGuid(s) as Guid
}

// hvsocket.h well-known VM ids.
/** All zeros: listen on any partition / the VmId of a wildcard bind. */
export const HV_GUID_ZERO = parseGuid("00000000-0000-0000-0000-000000000000")
/** Same bytes as HV_GUID_ZERO; the name used when binding a listener. */
export const HV_GUID_WILDCARD = HV_GUID_ZERO
/** hvsocket.h: HV_GUID_BROADCAST. */
export const HV_GUID_BROADCAST = parseGuid("ffffffff-ffff-ffff-ffff-ffffffffffff")
/** hvsocket.h: HV_GUID_CHILDREN: listen for connections from every child partition. */
export const HV_GUID_CHILDREN = parseGuid("90db8b89-0d35-4f79-8ce9-49ea0ac8b7cd")
/** hvsocket.h: HV_GUID_LOOPBACK: the same partition. */
export const HV_GUID_LOOPBACK = parseGuid("e0e16197-dd56-4a10-9195-5ee7a155a838")
/** hvsocket.h: HV_GUID_PARENT: the host, as seen from a guest (vsock CID 2). */
export const HV_GUID_PARENT = parseGuid("a42e7cda-d03f-480c-9cc2-a4de20abb878")
/** hvsocket.h: HV_GUID_SILOHOST: the host of a silo (container). */
export const HV_GUID_SILOHOST = parseGuid("36bd0c5c-7276-4223-88ba-7d03b654c568")
/** hvsocket.h: HV_GUID_VSOCK_TEMPLATE: service ids for Linux vsock ports, Data1 = port. */
export const HV_GUID_VSOCK_TEMPLATE = parseGuid("00000000-facb-11e6-bd58-64006a7986d3")

const checkPort = (port: number): number => {
  if (!Number.isInteger(port) || port < 0 || port > MAX_VSOCK_PORT)
    throw invalidArgument(
      "map vsock port",
      `port ${port} must be an integer in 0..0x7FFFFFFF (HvSocket.h: valid port mappings)`,
    )
  return port
}

/** The service id a Linux guest's vsock port is reached under: the vsock template with Data1 = port. */
export const serviceIdFromPort = (port: number): Guid =>
  (checkPort(port).toString(16).padStart(8, "0") + HV_GUID_VSOCK_TEMPLATE.slice(8)) as Guid

/** The vsock port of a template service id, or undefined for any other service id. */
export const portFromServiceId = (serviceId: string): number | undefined => {
  const g = parseGuid(serviceId, "service id")
  return g.slice(8) === HV_GUID_VSOCK_TEMPLATE.slice(8) ? parseInt(g.slice(0, 8), 16) : undefined
}

/** 16 bytes in Windows GUID layout: Data1 u32 LE, Data2 u16 LE, Data3 u16 LE, then Data4 as 8 raw bytes. */
export const guidToBytes = (guid: string): Uint8Array => {
  const hex = parseGuid(guid).replace(/-/g, "")
  const raw = Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)))
  // raw is big-endian text order; swap the first three fields to little-endian.
  return Uint8Array.from([raw[3], raw[2], raw[1], raw[0], raw[5], raw[4], raw[7], raw[6], ...raw.subarray(8)])
}

/** Inverse of {@link guidToBytes}. */
export const guidFromBytes = (bytes: Uint8Array): Guid => {
  if (bytes.length !== 16) throw invalidArgument("decode GUID", `a GUID is 16 bytes, got ${bytes.length}`)
  const b = bytes
  const raw = [b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], ...b.subarray(8)]
  const h = raw.map((x) => x.toString(16).padStart(2, "0")).join("")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}` as Guid
}

/** SOCKADDR_HV { Family = AF_HYPERV, Reserved = 0, VmId, ServiceId }: 36 bytes, little-endian. */
export const encodeSockaddrHv = (vmId: string, serviceId: string): Uint8Array => {
  const out = new Uint8Array(SOCKADDR_HV_SIZE)
  new DataView(out.buffer).setUint16(0, AF_HYPERV, true)
  out.set(guidToBytes(parseGuid(vmId, "VM id")), 4)
  out.set(guidToBytes(parseGuid(serviceId, "service id")), 20)
  return out
}

/** Reads a SOCKADDR_HV (e.g. from getsockname) back into its two GUIDs. */
export const decodeSockaddrHv = (bytes: Uint8Array): { readonly vmId: Guid; readonly serviceId: Guid } => {
  if (bytes.length < SOCKADDR_HV_SIZE)
    throw invalidArgument("decode SOCKADDR_HV", `need 36 bytes, got ${bytes.length}`)
  const family = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(0, true)
  if (family !== AF_HYPERV)
    throw invalidArgument("decode SOCKADDR_HV", `family is ${family}, expected AF_HYPERV (34)`)
  return { vmId: guidFromBytes(bytes.subarray(4, 20)), serviceId: guidFromBytes(bytes.subarray(20, 36)) }
}

/** Display form used in messages, as OpenVMM's vmsocket prints it: "vmid:serviceid". */
export const format = (vmId: string, serviceId: string): string => `${vmId}:${serviceId}`
