/**
 * Protocol constants shared by agent and client: versions, the handshake magic, ports and the limits
 * that keep both sides' memory bounded.
 */

/** The protocol versions this build speaks; the handshake picks the highest both sides share. */
export const PROTOCOL_VERSION_MIN = 1
/** The highest protocol version this build speaks (see {@link PROTOCOL_VERSION_MIN}). */
export const PROTOCOL_VERSION_MAX = 1

/** Default vsock port, as OpenVMM's pipette uses (0x1337), so `<vsock_path>_4919` plumbing works unchanged. */
export const DEFAULT_PORT = 4919

/**
 * Eight bytes that open every session in both directions. On byte streams without connection
 * semantics (virtio-serial) the agent scans for them to resynchronise. Read as a frame header their
 * first four bytes give a length of ~3 GB, far above any frame limit, so a new client arriving at a
 * frame boundary of an old session is always detected.
 */
export const MAGIC = new Uint8Array([0xb5, 0x43, 0x55, 0x56, 0x45, 0x54, 0x54, 0x45]) // "\xB5CUVETTE"

/** Line the agent prints on stderr once it listens. */
export const READY_MARKER = "CUVETTE READY"

/** Largest frame payload accepted by default (1 MiB); checked before anything is allocated. */
export const DEFAULT_MAX_FRAME = 1024 * 1024
/** Hard ceiling for a negotiated frame limit (16 MiB), far below MAGIC read as a length. */
export const MAX_FRAME_CEILING = 16 * 1024 * 1024
/** Data is sent in frames of at most this size (256 KiB): large enough for throughput, small enough to interleave. */
export const DEFAULT_CHUNK = 256 * 1024
/** Bytes a receiver lets a sender have in flight per channel before it must wait for credit (2 MiB). */
export const DEFAULT_WINDOW = 2 * 1024 * 1024

/** Send a ping after this long without hearing from the peer. */
export const DEFAULT_KEEPALIVE_MS = 5_000
/** Declare the peer dead after this long without any frame from it. */
export const DEFAULT_DEAD_PEER_MS = 20_000
/** Serial ports: a frame left incomplete with no byte for this long means its client left mid-frame. */
export const DEFAULT_RESYNC_STALL_MS = 1_000
/** Give up on a handshake after this long. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000

/** Well-known channel numbers within an operation. Direction is implied by who sends the frame. */
export const Channel = {
  /** client → agent: exec stdin, write-file body */
  stdin: 0,
  /** agent → client: exec stdout, read-file body, kmsg records */
  stdout: 1,
  /** agent → client: exec stderr */
  stderr: 2,
} as const

// ---- Limits that keep one peer from taking the agent down (docs/protocol.md, "Limits")

/** Largest frame accepted before the handshake completed (4 KiB): a Hello is a few hundred bytes. */
export const PREAUTH_MAX_FRAME = 4 * 1024
/** Handshakes an agent lets wait at once; a new connection beyond it drops the oldest waiting one. */
export const MAX_PENDING_HANDSHAKES = 64
/** Longest error message made from a peer's input (characters): the message never echoes a payload. */
export const MAX_ERROR_TEXT = 300
/** Operations one session may have open at once on the agent; an Open beyond fails with EBUSY. */
export const MAX_OPEN_CALLS = 256
/** Channel data the agent holds unread for one session (64 MiB); beyond it the session is closed. */
export const MAX_SESSION_UNREAD = 64 * 1024 * 1024
/**
 * Bytes the agent wrote to a session and the client has not drained (1 MiB) above which the agent
 * stops reading that session. The client never does: if both did, each could wait on the other.
 */
export const MAX_UNDRAINED = 1024 * 1024
/** Frames one session decodes in one turn before it yields to other sessions. */
export const MAX_FRAMES_PER_TURN = 1024
/** Operations one session opens in one turn before it yields to other sessions. */
export const MAX_OPENS_PER_TURN = 1
