/**
 * Connections still in their handshake, per agent. They cost a socket each and nobody has proved
 * anything yet, so there may be at most a fixed number: a new one drops the oldest (which has had
 * the longest to finish). Served sessions are never counted, so a flood of half-open connections
 * cannot reach them.
 */
import * as C from "../Constants.js"

export class PendingHandshakes {
  private readonly waiting = new Set<() => void>()

  constructor(readonly max = C.MAX_PENDING_HANDSHAKES) {}

  /**
   * Counts a handshake in; `drop` ends it if it becomes the oldest over the limit. Returns the
   * function to call once the handshake finished (either way).
   */
  admit(drop: () => void): () => void {
    this.waiting.add(drop)
    // A Set iterates in insertion order: the first is the oldest.
    for (const oldest of this.waiting) {
      if (this.waiting.size <= this.max) break
      this.waiting.delete(oldest)
      oldest()
    }
    return () => void this.waiting.delete(drop)
  }

  /** Handshakes waiting now. */
  get size(): number {
    return this.waiting.size
  }
}

/** The agent process's handshakes (one agent per process; a test may pass its own). */
export const shared = new PendingHandshakes()
