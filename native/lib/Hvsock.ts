/**
 * Hyper-V sockets (AF_HYPERV, Windows hosts and guests) as `net.Socket` / `net.Server`, including VTL2
 * (OpenHCL) connections. Arguments are checked on every OS; the sockets themselves exist only on Windows,
 * elsewhere the calls fail with reason "UNSUPPORTED".
 */
import { DEFAULT_PORT } from "@cuvette/protocol/Constants"
import * as net from "node:net"
import { socketFromFd } from "./adopt.js"
import * as HvAddress from "./HvAddress.js"
import { loadWin32 } from "./loader.js"
import { fromCause, invalidArgument } from "./NativeError.js"
import * as validate from "./validate.js"

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

/** Connects to a VM's service; resolves with a libuv-driven net.Socket. */
export const connect = async (options: ConnectOptions): Promise<net.Socket> => {
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
  // libuv's Windows TCP handle works on any overlapped SOCKET; there is no relay fallback on Windows.
  return socketFromFd(socket, operation, target, "handle")
}

/**
 * A net.Server for AF_HYPERV. libuv's Windows listen only accepts AF_INET sockets (AcceptEx), so the
 * addon runs its own accept thread and each accepted SOCKET is adopted and emitted as "connection".
 */
class HvServer extends net.Server {
  readonly #stop: () => void
  readonly #name: string
  #open = true
  constructor(stop: () => void, name: string) {
    super()
    this.#stop = stop
    this.#name = name
    Object.defineProperty(this, "listening", { get: () => this.#open })
  }
  override address(): string {
    return this.#name
  }
  override close(callback?: (err?: Error) => void): this {
    if (this.#open) {
      this.#open = false
      this.#stop()
      process.nextTick(() => this.emit("close"))
    }
    callback?.()
    return this
  }
}

/** Listens on `vmId` (default wildcard) and a service; resolves with a listening net.Server. */
export const listen = async (options: ListenOptions = {}): Promise<net.Server> => {
  const operation = "hvsock listen"
  const vmId = guid(operation, "vmId", options.vmId ?? HvAddress.HV_GUID_WILDCARD)
  const serviceId = service(operation, options.port, options.serviceId)
  const backlog = validate.backlog(operation, options.backlog ?? DEFAULT_BACKLOG)
  const target = HvAddress.format(vmId, serviceId)
  const b = loadWin32(operation)
  // The accept callback can only fire after hvListen returns, by which time the server exists.
  const ref: { server?: HvServer } = {}
  let id: number
  try {
    id = b.hvListen(HvAddress.encodeSockaddrHv(vmId, serviceId), backlog, (error, socket) => {
      const server = ref.server
      if (!server) return
      if (error) {
        server.emit("error", fromCause("hvsock accept", target, error))
        return
      }
      try {
        server.emit("connection", socketFromFd(socket, "hvsock accept", target, "handle"))
      } catch (cause) {
        server.emit("error", fromCause("hvsock accept", target, cause))
      }
    })
  } catch (cause) {
    throw fromCause(operation, target, cause)
  }
  const bound = HvAddress.decodeSockaddrHv(b.hvListenerName(id))
  ref.server = new HvServer(() => b.hvStopListen(id), HvAddress.format(bound.vmId, bound.serviceId))
  return ref.server
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
