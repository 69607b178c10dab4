/**
 * The agent's transport addresses: the protocol's one address grammar, narrowed to what the agent can
 * open. It listens on `unix:PATH`, `tcp:HOST[:PORT]` (port 0: any free port) and `vsock[:any[:PORT]]`,
 * and dials the host on `unix:PATH`, `tcp:HOST[:PORT]` and `vsock:CID[:PORT]`.
 */
import { Address as Grammar } from "@cuvette/protocol"

/** Where to listen or connect. */
export type Address = Grammar.Unix | Grammar.Tcp | Grammar.Vsock

/** A bad address: its message names the problem and lists the accepted forms. */
export const AddressError = Grammar.AddressError

/** The forms `--listen` and `--connect` accept, for messages and `--help`. */
export const forms = {
  listen: ["unix:PATH", "tcp:HOST[:PORT]", "vsock[:any[:PORT]]"],
  connect: ["unix:PATH", "tcp:HOST[:PORT]", "vsock:CID[:PORT]"],
} as const

/** Parses `text`; `mode` says whether it is for --listen or --connect. */
export const parse = (text: string, mode: "listen" | "connect"): Address => {
  // A syntax error reads the same as the client's; what the agent cannot open lists the agent's forms.
  const address = Grammar.parse(text)
  const refuse = (detail: string): never => {
    throw new Grammar.AddressError({ input: text, detail, accepted: forms[mode] })
  }
  switch (address._tag) {
    case "unix":
      return address
    case "tcp":
      if (mode === "connect" && address.port === 0) refuse("port 0 is not a port one can connect to")
      return address
    case "vsock":
      if (mode === "listen" && address.cid !== Grammar.VSOCK_CID_ANY)
        refuse(
          `the agent listens on every CID: vsock:any[:PORT] (after vsock: comes a CID, as in a client target)`,
        )
      if (mode === "connect" && address.cid === Grammar.VSOCK_CID_ANY)
        refuse(`connecting needs a CID (the host is 2): vsock:2:${address.port}`)
      return address
    default:
      return refuse(`the agent cannot ${mode === "listen" ? "listen on" : "connect to"} ${address._tag}:`)
  }
}

/** The text form, as printed in logs and returned by Agent.start. */
export const format: (a: Address) => string = Grammar.format

/** True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost). */
export const isLoopback = (host: string): boolean =>
  host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host) || host === "::ffff:127.0.0.1"
