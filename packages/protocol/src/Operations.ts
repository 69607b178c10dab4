/**
 * Every v1 operation: its request arguments, the events the agent may send while it runs, the
 * inputs the client may send to it, and its final result, each an Effect Schema. The agent and the
 * client only add handlers and callers on top of these.
 */
import { Schema } from "effect"

const opt = <S extends Schema.Schema.All>(s: S) => Schema.optionalWith(s, { exact: true })
const notEmpty = { message: () => "a path must not be empty" }
/** A path that must be text: a working directory or mount point, which processes receive as strings. */
const TextPath = Schema.String.pipe(Schema.minLength(1, notEmpty))
/**
 * A path or file name (see the Path module): a string when it is valid UTF-8 (msgpack str), else
 * its bytes (msgpack bin). Every path field of every operation is one.
 */
export const Path = Schema.Union(
  TextPath,
  Schema.Uint8ArrayFromSelf.pipe(Schema.filter((b) => b.byteLength > 0, notEmpty)),
)
const Empty = Schema.Struct({})
const Count = Schema.Number.pipe(Schema.int(), Schema.nonNegative())

/** Describes one operation. */
export interface Operation<A, R, E, I> {
  readonly args: A
  readonly result: R
  readonly event: E
  readonly input: I
}

const op = <A, R, E = typeof Schema.Never, I = typeof Schema.Never>(spec: {
  args: A
  result: R
  event?: E
  input?: I
}): Operation<A, R, E, I> => ({ event: Schema.Never, input: Schema.Never, ...spec }) as Operation<A, R, E, I>

// ---- exec

/** How one standard stream of a process is connected. */
export const StdioMode = Schema.Literal("pipe", "null")
/** stderr may also be merged into stdout. */
export const StderrMode = Schema.Literal("pipe", "null", "stdout")

/** The longest exec timeout, about 24.8 days (the largest delay a runtime timer takes). */
export const MAX_TIMEOUT_MS = 2_147_483_647
/** How long a process may outlive its timeout's signal before it gets SIGKILL. */
export const DEFAULT_KILL_AFTER_MS = 5_000

/** Arguments of `exec`. */
export const ExecArgs = Schema.Struct({
  argv: Schema.NonEmptyArray(Schema.String),
  env: opt(
    Schema.Struct({
      /** Start from an empty environment. */
      clear: opt(Schema.Boolean),
      set: opt(Schema.Record({ key: Schema.String, value: Schema.String })),
      unset: opt(Schema.Array(Schema.String)),
    }),
  ),
  cwd: opt(TextPath),
  stdin: opt(StdioMode),
  stdout: opt(StdioMode),
  stderr: opt(StderrMode),
  /** Run under a pseudo-terminal of this size (stdout carries the terminal output). */
  pty: opt(Schema.Struct({ rows: Count, cols: Count, term: opt(Schema.String) })),
  /**
   * Signal the process group after this many milliseconds (at most {@link MAX_TIMEOUT_MS}, else EINVAL);
   * 0 or absent: no timeout.
   */
  timeoutMs: opt(Count),
  /** Signal used on timeout (default SIGKILL). */
  killSignal: opt(Schema.String),
  /**
   * When the timeout's signal is not SIGKILL and the process is still running this many milliseconds
   * later, the group gets SIGKILL (default {@link DEFAULT_KILL_AFTER_MS}).
   */
  killAfterMs: opt(Count),
  /**
   * Start it to outlive the call: the result comes as soon as it started, its stdio is /dev/null, and
   * neither the call's end nor its leader's exit kills its group. Without it, the whole group is killed
   * when the leader exits (or the call ends), so no background job outlives the command.
   */
  detach: opt(Schema.Boolean),
})
/** exec's arguments, as the {@link ExecArgs} schema decodes them. */
export type ExecArgs = typeof ExecArgs.Type

/** Events of `exec`. */
export const ExecEvent = Schema.TaggedStruct("Started", { pid: Count })
/** Inputs of `exec`. */
export const ExecInput = Schema.Union(
  Schema.TaggedStruct("Signal", { signal: Schema.String }),
  Schema.TaggedStruct("Resize", { rows: Count, cols: Count }),
)
/** How a process ended: an exit code, or the signal that killed it. */
export const ExecResult = Schema.Struct({
  exitCode: Schema.NullOr(Schema.Number),
  signal: Schema.NullOr(Schema.String),
  /** True when the agent signalled it because `timeoutMs` passed. */
  timedOut: Schema.Boolean,
  /**
   * After a timeout, the last signal the agent sent its group: `killSignal`, or SIGKILL when the
   * process outlived `killAfterMs`. `signal` says whether one of them ended it.
   */
  timeoutSignal: opt(Schema.String),
  durationMs: Schema.Number,
  /** The process's pid (the result of a detached exec comes once it started). */
  pid: opt(Count),
  /** True for a detached exec: it is still running, in its own session. */
  detached: opt(Schema.Boolean),
})
/** exec's result, as the {@link ExecResult} schema decodes it. */
export type ExecResult = typeof ExecResult.Type

// ---- files

/** Kinds of file system entries. */
export const FileType = Schema.Literal("file", "directory", "symlink", "other")

/** Result of `stat`. */
export const Stat = Schema.Struct({
  path: Path,
  type: FileType,
  size: Schema.Number,
  /** Permission bits (e.g. 0o644). */
  mode: Schema.Number,
  mtimeMs: Schema.Number,
  uid: Schema.Number,
  gid: Schema.Number,
  /** Where a symlink points. */
  target: opt(Path),
})
/** stat's result, as the {@link Stat} schema decodes it. */
export type Stat = typeof Stat.Type

/** One entry of `list`, as lstat sees it (a symlink is reported as one, with its target). */
export const DirEntry = Schema.Struct({
  name: Path,
  type: FileType,
  size: Schema.Number,
  mode: Schema.Number,
  mtimeMs: Schema.Number,
  /** Where a symlink points. */
  target: opt(Path),
})
/** One entry of a listing, as the {@link DirEntry} schema decodes it. */
export type DirEntry = typeof DirEntry.Type

/** Arguments of `readFile`. The body arrives on the stdout channel. */
export const ReadFileArgs = Schema.Struct({ path: Path, offset: opt(Count), length: opt(Count) })
/** Sent once the file is open, before any byte: its size lets the client show progress. */
export const ReadFileEvent = Schema.TaggedStruct("Opened", { size: Count, mode: Schema.Number })

/** Arguments of `writeFile`. The body is sent on the stdin channel. */
export const WriteFileArgs = Schema.Struct({
  path: Path,
  /** Permission bits of a new file (default 0o644; an existing file keeps its mode). */
  mode: opt(Schema.Number),
  /** Create missing parent directories. */
  createParents: opt(Schema.Boolean),
  /** Write a temporary file and rename it over the target (default true): readers never see half a file. */
  atomic: opt(Schema.Boolean),
  /** Expected size, for progress; the write fails if a different number of bytes arrives. */
  size: opt(Count),
})

/** Result of file transfers: how many bytes moved. */
export const Transferred = Schema.Struct({ bytes: Count })

// ---- system

/** Result of `info`. */
export const Info = Schema.Struct({
  agent: Schema.Struct({ name: Schema.String, version: Schema.String, runtime: Schema.String, pid: Count }),
  protocolVersion: Schema.Number,
  os: Schema.String,
  kernel: Schema.String,
  arch: Schema.String,
  hostname: Schema.String,
  uptimeSec: Schema.Number,
  /** Operations and optional features this agent serves (e.g. "exec", "pty", "kmsg", "crash"). */
  capabilities: Schema.Array(Schema.String),
})
/** info's result, as the {@link Info} schema decodes it. */
export type Info = typeof Info.Type

/** Result of `time`. */
export const Time = Schema.Struct({ unixMs: Schema.Number, timezone: Schema.String })

/** Arguments of `mount` (Linux). */
export const MountArgs = Schema.Struct({
  source: Schema.String,
  target: TextPath,
  fstype: Schema.String,
  /** mount(2) flags, as numbers (MS_RDONLY = 1, ...). */
  flags: opt(Count),
  /** File-system specific options ("iocharset=utf8"). */
  data: opt(Schema.String),
  mkdirTarget: opt(Schema.Boolean),
})

// ---- forwarding

/** A TCP port: 1 to 65535 to connect to; a listener may ask for 0 (any free port). */
const Port = Schema.Number.pipe(Schema.int(), Schema.between(0, 65_535))
/** VMADDR_CID_LOCAL: AF_VSOCK within the guest itself, where `connect` dials by default. */
export const VSOCK_CID_LOCAL = 1

/**
 * A socket in the guest: one `connect` dials, or one `listen` listens on. `tcp` takes a host name or an
 * address (IPv4 or IPv6); `vsock` is AF_VSOCK, to a port of the guest itself unless `cid` says otherwise.
 */
export const SocketAddress = Schema.Union(
  Schema.TaggedStruct("tcp", { host: Schema.String.pipe(Schema.minLength(1)), port: Port }),
  Schema.TaggedStruct("unix", { path: TextPath }),
  Schema.TaggedStruct("vsock", { port: Count, cid: opt(Count) }),
)
/** A guest socket address, as the {@link SocketAddress} schema decodes it. */
export type SocketAddress = typeof SocketAddress.Type

/** How long `connect` waits for the guest's connection to be established unless told (10 s). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000

/**
 * Arguments of `connect`: the agent dials `to` inside the guest and carries the connection, client to
 * guest on stdin, guest to client on stdout; an Eof either way half-closes (shutdown) that direction.
 */
export const ConnectArgs = Schema.Struct({
  to: SocketAddress,
  /** Give up dialling after this long with ETIMEDOUT (default {@link DEFAULT_CONNECT_TIMEOUT_MS}). */
  timeoutMs: opt(Count),
})
/** Sent once the guest's connection is established, before any of its bytes. */
export const ConnectEvent = Schema.TaggedStruct("Connected", { local: Schema.String, remote: Schema.String })
/** Result of `connect` and `accept`: the bytes carried each way once both directions ended. */
export const Carried = Schema.Struct({
  /** Bytes the client sent that were written to the guest socket. */
  sent: Count,
  /** Bytes read from the guest socket and sent to the client. */
  received: Count,
})

/** Arguments of `listen`: the agent listens on `on` in the guest until the call is cancelled. */
export const ListenArgs = Schema.Struct({ on: SocketAddress })
/**
 * Events of `listen`: `Listening` once it listens (the real port when 0 was asked), then `Accepted`
 * for each connection, which the client carries with an `accept` call naming `connection`.
 */
export const ListenEvent = Schema.Union(
  Schema.TaggedStruct("Listening", { address: Schema.String }),
  Schema.TaggedStruct("Accepted", { connection: Schema.String, peer: Schema.String }),
)
/** How long an accepted connection waits for its `accept` call before the agent closes it. */
export const ACCEPT_TIMEOUT_MS = 10_000

/** The operations of protocol v1, by wire name. */
export const operations = {
  ping: op({ args: Empty, result: Empty }),
  info: op({ args: Empty, result: Info }),
  exec: op({ args: ExecArgs, result: ExecResult, event: ExecEvent, input: ExecInput }),
  readFile: op({ args: ReadFileArgs, result: Transferred, event: ReadFileEvent }),
  writeFile: op({ args: WriteFileArgs, result: Transferred }),
  /** lstat by default (a symlink, even a dangling one, is described itself); `follow` resolves it. */
  stat: op({ args: Schema.Struct({ path: Path, follow: opt(Schema.Boolean) }), result: Stat }),
  /**
   * The entries of a directory, in the order the directory yields them, as {@link DirEntry} records
   * on the stdout channel (see Records): a directory of any size streams with bounded memory.
   */
  list: op({ args: Schema.Struct({ path: Path }), result: Schema.Struct({ count: Count }) }),
  mkdir: op({
    args: Schema.Struct({ path: Path, parents: opt(Schema.Boolean), mode: opt(Schema.Number) }),
    result: Empty,
  }),
  /** The root directory (however spelled) is refused with DENIED unless `noPreserveRoot`, as GNU rm does. */
  remove: op({
    args: Schema.Struct({
      path: Path,
      recursive: opt(Schema.Boolean),
      force: opt(Schema.Boolean),
      noPreserveRoot: opt(Schema.Boolean),
    }),
    result: Empty,
  }),
  rename: op({ args: Schema.Struct({ from: Path, to: Path }), result: Empty }),
  /** Sets permission bits exactly (no umask): a copied tree gets its modes once its contents are in. */
  chmod: op({ args: Schema.Struct({ path: Path, mode: Count }), result: Empty }),
  /** Kernel log records on the stdout channel, one `/dev/kmsg` record per line; `follow` keeps streaming. */
  kmsg: op({
    args: Schema.Struct({ follow: opt(Schema.Boolean) }),
    result: Schema.Struct({ records: Count }),
  }),
  time: op({ args: Empty, result: Time }),
  mount: op({ args: MountArgs, result: Empty }),
  /** Replies first, then powers off or reboots. */
  shutdown: op({ args: Schema.Struct({ reboot: opt(Schema.Boolean) }), result: Empty }),
  /** Crashes the agent or the kernel, for fault tests; DENIED unless the agent allows it. */
  crash: op({ args: Schema.Struct({ kind: Schema.Literal("agent", "kernel") }), result: Empty }),
  /** A connection from inside the guest (TCP, Unix socket, AF_VSOCK), carried on stdin and stdout. */
  connect: op({ args: ConnectArgs, result: Carried, event: ConnectEvent }),
  /**
   * Listens in the guest until cancelled (it has no other end, so it answers CANCELLED); each
   * connection is announced by an event and carried by an `accept` call.
   */
  listen: op({ args: ListenArgs, result: Empty, event: ListenEvent }),
  /** Carries a connection `listen` accepted, as `connect` carries one it dialled; served when `listen` is. */
  accept: op({ args: Schema.Struct({ connection: Schema.String }), result: Carried }),
} as const

/** Wire names of all operations. */
export type Name = keyof typeof operations
/** Names as a list. */
export const names = Object.keys(operations) as ReadonlyArray<Name>
/** True when `name` is a v1 operation. */
export const isName = (name: string): name is Name => Object.prototype.hasOwnProperty.call(operations, name)

/** Argument type of an operation. */
export type Args<N extends Name> = Schema.Schema.Type<(typeof operations)[N]["args"]>
/** Result type of an operation. */
export type Result<N extends Name> = Schema.Schema.Type<(typeof operations)[N]["result"]>
/** Event type of an operation. */
export type Event<N extends Name> = Schema.Schema.Type<(typeof operations)[N]["event"]>
/** Input type of an operation. */
export type Input<N extends Name> = Schema.Schema.Type<(typeof operations)[N]["input"]>
