import type { Writable } from "node:stream"

/** Resolves once `sink` can take more after a write that returned false, or once it is gone. */
export const drained = (sink: Writable) =>
  new Promise<void>((resolve) => {
    const done = () => {
      sink.off("drain", done)
      sink.off("close", done)
      resolve()
    }
    sink.on("drain", done)
    sink.on("close", done)
  })
