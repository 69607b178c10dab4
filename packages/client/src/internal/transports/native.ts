// Loads @cuvette/native lazily, so the client works (unix, tcp, hybrid, serial) where the addon is not built.
import { ConnectError } from "../../ConnectError.js"

type Native = typeof import("@cuvette/native")

let loaded: Promise<Native> | undefined

/** Imports the native package, or fails with NOT_BUILT naming the build command. */
export const load = (target: string): Promise<Native> =>
  (loaded ??= import("@cuvette/native")).catch((cause) => {
    loaded = undefined
    throw new ConnectError({
      reason: "NOT_BUILT",
      target,
      detail: `the native socket package @cuvette/native cannot be loaded (${(cause as Error)?.message ?? cause})`,
      cause,
    })
  })
