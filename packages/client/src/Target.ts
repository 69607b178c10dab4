/**
 * Targets: where the agent is, as one string that means the same in the CLI, the library,
 * `CUVETTE_TARGET` and the agent's own `--listen` / `--connect`. The syntax is the protocol's
 * {@link Address} grammar; a client only adds what connecting needs (a real port, a real CID).
 *
 *   unix:PATH · tcp:HOST[:PORT] · vsock:CID[:PORT] · hybrid:PATH[:PORT] · hyperv:NAME · hyperv-id:GUID
 *   (`?vtl=2` selects VTL2) · serial:PATH · listen-unix:PATH · listen-vsock[:PORT]
 */
import { Address } from "@cuvette/protocol"

export type Unix = Address.Unix
export type Tcp = Address.Tcp
/** AF_VSOCK: connect into the guest with this CID (Linux host). */
export type Vsock = Address.Vsock
export type Hybrid = Address.Hybrid
export type Hyperv = Address.Hyperv
export type Serial = Address.Serial
export type ListenUnix = Address.ListenUnix
export type ListenVsock = Address.ListenVsock

/** Any target. */
export type Target = Address.Address

/** The forms a client accepts, for messages and help texts. */
export const forms: ReadonlyArray<string> = Address.forms.filter((f) => f !== "vsock[:any[:PORT]]")

/** A target string that cannot be parsed or cannot be connected to; the message lists the accepted forms. */
export const TargetError = Address.AddressError
export type TargetError = Address.AddressError

/** Parses a target string; throws a {@link TargetError} naming the problem and the accepted forms. */
export const parse = (text: string): Target => {
  const t = Address.parse(text)
  const refuse = (detail: string): never => {
    throw new Address.AddressError({ input: text, detail, accepted: forms })
  }
  if (t._tag === "tcp" && t.port === 0) refuse("port 0 is not a port one can connect to")
  if (t._tag === "vsock" && t.cid === Address.VSOCK_CID_ANY)
    refuse("a client connects to one CID: vsock:CID[:PORT] (listen-vsock[:PORT] waits for the guest)")
  return t
}

/** Formats a target back into its string form (parse(format(t)) equals t). */
export const format: (t: Target) => string = Address.format

/** Returns the target with VTL2 selected (the `vtl2` option / `--vtl2`); other targets are unchanged. */
export const withVtl2 = (t: Target, vtl2: boolean | undefined): Target =>
  t._tag === "hyperv" && vtl2 ? { ...t, vtl2: true } : t
