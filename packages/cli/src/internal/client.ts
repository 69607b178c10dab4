// @cuvette/client, loaded lazily so `cuvette --help` and usage errors never pay for loading the
// client, Effect and the transports. Types only are imported statically.
import type * as ClientModule from "@cuvette/client/Client"

export type {
  Agent,
  ConnectOptions,
  ExecOptions,
  ExecResult,
  KmsgRecord,
  Process,
  SpawnOptions,
} from "@cuvette/client/Client"

/** A directory entry as `list` returns it. */
export type Entry = Awaited<ReturnType<ClientModule.Agent["list"]>>[number]

/** Loads @cuvette/client's Promise API. */
export const load = (): Promise<typeof ClientModule> => import("@cuvette/client/Client")
