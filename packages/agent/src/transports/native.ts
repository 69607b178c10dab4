/**
 * AF_VSOCK and AF_HYPERV through @cuvette/native, loaded on first use so an agent without the addon
 * (or a runtime without vsock) still serves its other transports and says why vsock is missing.
 * The addon drives these sockets itself, under Node and Bun alike: connections are stream.Duplex
 * objects, listeners emit "connection" as a net.Server does.
 */
import type { Hvsock, Vsock, WindowsService } from "@cuvette/native"
import { Hints } from "@cuvette/protocol"
import { Data } from "effect"

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

/** A native listener: "connection" (a Duplex), "error", "close", close(callback). */
export type Server = Vsock.Server | Hvsock.Server
/** A native connection. */
export type Socket = Vsock.Socket

/** Listens on AF_VSOCK CID_ANY:`port`; `allowHalfOpen` keeps accepted sockets writable after their EOF. */
export const listenVsock = async (port: number, allowHalfOpen = false): Promise<Server> => {
  const { Vsock } = await load()
  return Vsock.listen({ port, allowHalfOpen })
}

/** Connects to AF_VSOCK `cid:port`, giving up after `timeoutMs`; `allowHalfOpen` as for {@link listenVsock}. */
export const connectVsock = async (
  cid: number,
  port: number,
  timeoutMs: number,
  allowHalfOpen = false,
): Promise<Socket> => {
  const { Vsock } = await load()
  return Vsock.connect({ cid, port, timeoutMs, allowHalfOpen })
}

/** Listens on AF_HYPERV (Windows guest): HV_GUID_WILDCARD and the vsock-template service id of `port`. */
export const listenHvsock = async (port: number): Promise<Server> => {
  const { Hvsock, HvAddress } = await load()
  return Hvsock.listen({ vmId: HvAddress.HV_GUID_WILDCARD, port })
}

/** The service-manager connection of `--service` (Windows). */
export const serviceController = async (): Promise<WindowsService.Controller> =>
  (await load()).WindowsService.controller()

/** The reason text of a native failure, for logs, with what to try from the protocol's hints by its reason. */
export const reason = (e: unknown): string => {
  if (!(e instanceof Error)) return String(e)
  const code = (e as { reason?: unknown }).reason
  const hint = typeof code === "string" ? Hints.forVmSocket(code) : undefined
  return hint === undefined ? e.message : `${e.message} (${hint})`
}
