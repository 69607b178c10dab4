// The options every command accepts, before or after its name.
import * as Opt from "./option.js"
import type { OptionSet } from "./option.js"

/** The global options, accepted before or after the command name. */
export const globalOptions = {
  target: Opt.text(
    "target",
    "T",
    "the agent: unix:PATH, tcp:HOST[:PORT], vsock:CID[:PORT], hybrid:PATH[:PORT], hyperv:NAME, hyperv-id:GUID, serial:PATH, listen-unix:PATH, ...",
    { short: "H", env: "CUVETTE_TARGET" },
  ),
  vm: Opt.text(
    "vm",
    "NAME",
    "Hyper-V VM by name, even a GUID-shaped one (same as --target hyperv:NAME; by id: -H hyperv-id:GUID)",
  ),
  vtl2: Opt.flag("vtl2", "talk to the agent in VTL2 (OpenHCL) instead of VTL0 (Hyper-V targets)"),
  json: Opt.flag("json", "print exactly one JSON document on stdout (errors as {error: {...}})"),
  timeout: Opt.duration(
    "timeout",
    "D",
    "how long to wait (500ms, 10s, 2m): to connect (default 10s); exec: connect within D and kill the guest process after D; wait: give up after D",
  ),
  tokenFile: Opt.text("token-file", "F", "file holding the agent's shared token", {
    env: "CUVETTE_TOKEN_FILE",
  }),
  help: Opt.flag("help", "show help", { short: "h" }),
  version: Opt.flag("version", "print cuvette's version"),
} satisfies OptionSet
