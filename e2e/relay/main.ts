/**
 * `vsock-relay --serial PATH [--cid CID] [--port PORT]`: the guest side of the e2e suite's in-guest
 * AF_VSOCK scenario. Compiled with `node scripts/build-agent.mjs --entry e2e/relay/main.ts`; it reaches
 * vsock only through @cuvette/native's public `Vsock.connect`, the code the agent and client use.
 * Prints `VSOCK-RELAY READY` once the port is open, and one line per session on stderr.
 */
import { Vsock } from "@cuvette/native"
import { DEFAULT_PORT } from "@cuvette/protocol/Constants"
import { parseArgs } from "node:util"
import { openPort, run } from "./Relay.js"

const { values } = parseArgs({
  options: {
    serial: { type: "string" },
    cid: { type: "string", default: String(Vsock.VMADDR_CID_LOCAL) },
    port: { type: "string", default: String(DEFAULT_PORT) },
  },
})
if (!values.serial) {
  process.stderr.write("usage: vsock-relay --serial PATH [--cid CID] [--port PORT]\n")
  process.exit(2)
}
const cid = Number(values.cid)
const port = Number(values.port)
const log = (line: string) => process.stderr.write(`vsock-relay: ${line}\n`)

const serving = run({
  port: openPort(values.serial),
  connect: () => Vsock.connect({ cid, port }),
  log,
})
log(`VSOCK-RELAY READY serial=${values.serial} vsock=${Vsock.format({ cid, port })}`)
await serving
