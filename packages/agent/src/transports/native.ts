/**
 * AF_VSOCK and AF_HYPERV through @cuvette/native, loaded on first use so an agent without the addon
 * (or a runtime without vsock) still serves its other transports and says why vsock is missing.
 * Under Bun the package reaches vsock through bun:ffi with no addon at all.
 */
import type { WindowsService } from "@cuvette/native"
import { Data } from "effect"
import type * as net from "node:net"

type Native = typeof import("@cuvette/native")

/** The native addon (vsock, Hyper-V sockets, the Windows service) is not built or does not load here. */
export class NativeUnavailable extends Data.TaggedError("NativeUnavailable")<{ readonly message: string }> {}

let loaded: Promise<Native> | undefined
const load = (): Promise<Native> =>
  (loaded ??= import("@cuvette/native").catch((cause: unknown) => {
    loaded = undefined
    throw new NativeUnavailable({
      message: `the @cuvette/native package could not be loaded (${cause instanceof Error ? cause.message : String(cause)}); build it with npm run build:native`,
    })
  }))

/** Listens on AF_VSOCK CID_ANY:`port`. */
export const listenVsock = async (port: number): Promise<net.Server> => {
  const { Vsock } = await load()
  return Vsock.listen({ port })
}

/** Connects to AF_VSOCK `cid:port`, giving up after `timeoutMs`. */
export const connectVsock = async (cid: number, port: number, timeoutMs: number): Promise<net.Socket> => {
  const { Vsock } = await load()
  return Vsock.connect({ cid, port, timeoutMs })
}

/** Listens on AF_HYPERV (Windows guest): HV_GUID_WILDCARD and the vsock-template service id of `port`. */
export const listenHvsock = async (port: number): Promise<net.Server> => {
  const { Hvsock, HvAddress } = await load()
  return Hvsock.listen({ vmId: HvAddress.HV_GUID_WILDCARD, port })
}

/** The service-manager connection of `--service` (Windows). */
export const serviceController = async (): Promise<WindowsService.Controller> =>
  (await load()).WindowsService.controller()

/** The reason text of a native failure, for logs. */
export const reason = (e: unknown): string => (e instanceof Error ? e.message : String(e))
