/**
 * Hyper-V sockets (AF_HYPERV, Windows hosts and guests), including VTL2 (OpenHCL) connections. The addon
 * creates and connects the SOCKET; its own I/O threads then move the bytes (lib/socket.ts, lib/server.ts),
 * in Node and in Bun alike. Arguments are checked on every OS; the sockets themselves exist only on
 * Windows, elsewhere the calls fail with reason "UNSUPPORTED".
 */
import { DEFAULT_PORT } from "@cuvette/protocol/Constants"
import * as HvAddress from "./HvAddress.js"
import { loadWin32 } from "./loader.js"
import { fromCause, invalidArgument } from "./NativeError.js"
import { NativeServer } from "./server.js"
import { NativeSocket } from "./socket.js"
import * as validate from "./validate.js"

/** A connected Hyper-V socket: a stream.Duplex usable where a net.Socket was. */
export type Socket = NativeSocket
/** A listening Hyper-V socket: "connection" (a {@link Socket}), "error", "close"; address() is "vmid:serviceid". */
export type Server = NativeServer<string>

export const DEFAULT_CONNECT_TIMEOUT_MS = 5000
export const DEFAULT_BACKLOG = 16

/** Options of {@link connect}: a VM id and either a vsock `port` (default 4919) or a `serviceId`. */
export interface ConnectOptions {
  readonly vmId: string
  readonly port?: number
  readonly serviceId?: string
  /** Connect to the guest's VTL2 (HVSOCKET_HIGH_VTL), e.g. the OpenHCL paravisor. */
  readonly vtl2?: boolean
  /** 1..300000 (HVSOCKET_CONNECT_TIMEOUT_MAX). */
  readonly timeoutMs?: number
}

/** Options of {@link listen}: `vmId` defaults to HV_GUID_WILDCARD. */
export interface ListenOptions {
  readonly vmId?: string
  readonly port?: number
  readonly serviceId?: string
  readonly backlog?: number
}

const service = (
  operation: string,
  port: number | undefined,
  serviceId: string | undefined,
): HvAddress.Guid => {
  if (port !== undefined && serviceId !== undefined)
    throw invalidArgument(
      operation,
      "give either port or serviceId, not both (a port is the service id 0000xxxx-facb-11e6-bd58-64006a7986d3)",
    )
  if (serviceId !== undefined) return HvAddress.parseGuid(serviceId, "serviceId")
  validate.integer(
    operation,
    "port",
    port ?? DEFAULT_PORT,
    0,
    HvAddress.MAX_VSOCK_PORT,
    " (HvSocket.h: valid port mappings)",
  )
  return HvAddress.serviceIdFromPort(port ?? DEFAULT_PORT)
}

const guid = (operation: string, name: string, value: unknown): HvAddress.Guid => {
  if (typeof value !== "string")
    throw invalidArgument(operation, `${name} must be a GUID string, got ${JSON.stringify(value)}`)
  try {
    return HvAddress.parseGuid(value, name)
  } catch (e) {
    throw invalidArgument(operation, (e as { detail?: string }).detail ?? String(e))
  }
}

/** Connects to a VM's service. */
export const connect = async (options: ConnectOptions): Promise<Socket> => {
  const operation = options?.vtl2 ? "hvsock connect (VTL2)" : "hvsock connect"
  if (typeof options !== "object" || options === null)
    throw invalidArgument(operation, "options { vmId, port | serviceId, vtl2?, timeoutMs? } are required")
  const vmId = guid(operation, "vmId", options.vmId)
  const serviceId = service(operation, options.port, options.serviceId)
  if (options.vtl2 !== undefined && typeof options.vtl2 !== "boolean")
    throw invalidArgument(operation, "vtl2 must be a boolean")
  const timeoutMs = validate.timeoutMs(
    operation,
    options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    HvAddress.HVSOCKET_CONNECT_TIMEOUT_MAX,
  )
  const target = HvAddress.format(vmId, serviceId)
  const b = loadWin32(operation)
  let socket: number
  try {
    socket = await b.hvConnect(HvAddress.encodeSockaddrHv(vmId, serviceId), options.vtl2 === true, timeoutMs)
  } catch (cause) {
    throw fromCause(operation, target, cause)
  }
  return new NativeSocket(socket, { operation, target })
}

/** Listens on `vmId` (default wildcard) and a service; the server accepts on an addon thread. */
export const listen = async (options: ListenOptions = {}): Promise<Server> => {
  const operation = "hvsock listen"
  const vmId = guid(operation, "vmId", options.vmId ?? HvAddress.HV_GUID_WILDCARD)
  const serviceId = service(operation, options.port, options.serviceId)
  const backlog = validate.backlog(operation, options.backlog ?? DEFAULT_BACKLOG)
  const target = HvAddress.format(vmId, serviceId)
  const b = loadWin32(operation)
  let socket: number
  let bound: { readonly vmId: HvAddress.Guid; readonly serviceId: HvAddress.Guid }
  try {
    socket = b.hvListen(HvAddress.encodeSockaddrHv(vmId, serviceId), backlog)
  } catch (cause) {
    throw fromCause(operation, target, cause)
  }
  try {
    bound = HvAddress.decodeSockaddrHv(b.hvSockname(socket))
  } catch (cause) {
    b.hvClose(socket)
    throw fromCause(operation, target, cause)
  }
  return new NativeServer(socket, {
    operation,
    target,
    address: HvAddress.format(bound.vmId, bound.serviceId),
  })
}

/** True on Windows when the addon loads (whether Hyper-V is enabled shows only on connect/listen). */
export const isSupported = (): boolean => {
  if (process.platform !== "win32") return false
  try {
    loadWin32("hvsock probe")
    return true
  } catch {
    return false
  }
}
