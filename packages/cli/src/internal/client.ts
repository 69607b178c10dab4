// @burette/client, loaded lazily so `burette --help` and usage errors never pay for loading the
// client, Effect and the transports. Types only are imported statically.
import type * as ClientModule from "@burette/client/Client"

export type {
  Agent,
  ConnectOptions,
  ExecOptions,
  ExecResult,
  KmsgRecord,
  Process,
  SpawnOptions,
} from "@burette/client/Client"

/** A directory entry as `list` returns it. */
export type Entry = Awaited<ReturnType<ClientModule.Agent["list"]>>[number]

/** Loads @burette/client's Promise API. */
export const load = (): Promise<typeof ClientModule> => import("@burette/client/Client")
