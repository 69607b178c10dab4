// AF_VSOCK for the guest agent inside Bun, with no native addon: libc through bun:ffi, and Bun's own
// acceptance of foreign fds (`net.createServer().listen({ fd })`, `net.connect({ fd })`). Loaded only
// when `process.versions.bun` is set; nothing here runs under Node. Typechecked against bun-types
// (tsconfig.bun.json); each export has the type Vsock.ts expects of it (bunBackend.ts).
import * as Retry from "@cuvette/protocol/Retry"
import type * as Ffi from "bun:ffi"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { createRequire } from "node:module"
import * as net from "node:net"
import type { BunBackend } from "./bunBackend.js"
import { fromCause, NativeError } from "./NativeError.js"

// linux/socket.h, asm-generic/socket.h, asm-generic/fcntl.h, poll.h, asm-generic/errno.h (x86_64 and aarch64 agree).
const AF_VSOCK = 40
const SOCK_STREAM = 1
const SOCK_NONBLOCK = 0o4000
const SOCK_CLOEXEC = 0o2000000
const O_RDONLY = 0
const O_CLOEXEC = 0o2000000
const SOL_SOCKET = 1
const SO_ERROR = 4
const POLLOUT = 4
const EINTR = 4
const EINPROGRESS = 115
const ETIMEDOUT = 110
// linux/vm_sockets.h: IOCTL_VM_SOCKETS_GET_LOCAL_CID = _IO(7, 0xb9)
const IOCTL_VM_SOCKETS_GET_LOCAL_CID = 0x7b9

const symbols = {
  socket: { args: ["i32", "i32", "i32"], returns: "i32" },
  bind: { args: ["i32", "ptr", "u32"], returns: "i32" },
  listen: { args: ["i32", "i32"], returns: "i32" },
  connect: { args: ["i32", "ptr", "u32"], returns: "i32" },
  getsockname: { args: ["i32", "ptr", "ptr"], returns: "i32" },
  getsockopt: { args: ["i32", "i32", "i32", "ptr", "ptr"], returns: "i32" },
  poll: { args: ["ptr", "u64", "i32"], returns: "i32" },
  open: { args: ["cstring", "i32"], returns: "i32" },
  ioctl: { args: ["i32", "u64", "ptr"], returns: "i32" },
  close: { args: ["i32"], returns: "i32" },
  __errno_location: { args: [], returns: "ptr" },
} as const

interface Libc {
  readonly ffi: typeof Ffi
  readonly sym: Ffi.Library<typeof symbols>["symbols"]
}

let libc: Libc | undefined

// bun:ffi is required on first use, not imported, so loading this module costs nothing until vsock is used.
const open = (): Libc => {
  if (libc) return libc
  const ffi = createRequire(import.meta.url)("bun:ffi") as typeof Ffi
  // glibc first; musl guests (Alpine) name libc after the arch.
  const names = ["libc.so.6", `libc.musl-${process.arch === "arm64" ? "aarch64" : "x86_64"}.so.1`]
  let lastError: unknown
  for (const name of names) {
    try {
      libc = { ffi, sym: ffi.dlopen(name, symbols).symbols }
      return libc
    } catch (e) {
      lastError = e
    }
  }
  throw lastError
}

/** errno of the calling thread; read right after the failing call, before any other libc call. */
const errno = (): number => {
  const { ffi, sym } = open()
  return ffi.read.i32(sym.__errno_location()!)
}

const fail = (syscall: string): never => {
  const code = errno()
  throw Object.assign(new Error(`${syscall} failed (errno ${code})`), { errno: code, syscall })
}

/** sockaddr_vm: u16 family, u16 reserved, u32 port, u32 cid, u8 flags, 3 zero bytes. */
export const sockaddrVm = (cid: number, port: number): Uint8Array => {
  const buf = new Uint8Array(16)
  const view = new DataView(buf.buffer)
  view.setUint16(0, AF_VSOCK, true)
  view.setUint32(4, port >>> 0, true)
  view.setUint32(8, cid >>> 0, true)
  return buf
}

const socket = (): number => {
  const fd = open().sym.socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
  return fd < 0 ? fail("socket") : fd
}

const sockname = (fd: number): { cid: number; port: number } => {
  const { ffi, sym } = open()
  const addr = new Uint8Array(16)
  const len = new Uint32Array([16])
  if (sym.getsockname(fd, ffi.ptr(addr), ffi.ptr(len)) < 0) fail("getsockname")
  const view = new DataView(addr.buffer)
  return { port: view.getUint32(4, true), cid: view.getUint32(8, true) }
}

export const canCreate: BunBackend["canCreate"] = () => {
  try {
    open().sym.close(socket())
    return true
  } catch {
    return false
  }
}

export const localCid: BunBackend["localCid"] = () => {
  const { ffi, sym } = open()
  const fd = sym.open(Buffer.from("/dev/vsock\0"), O_RDONLY | O_CLOEXEC)
  if (fd < 0) fail("open /dev/vsock")
  const cid = new Uint32Array(1)
  const rc = sym.ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, ffi.ptr(cid))
  if (rc < 0) {
    const code = errno()
    sym.close(fd)
    throw Object.assign(new Error(`ioctl IOCTL_VM_SOCKETS_GET_LOCAL_CID failed (errno ${code})`), {
      errno: code,
      syscall: "ioctl",
    })
  }
  sym.close(fd)
  return cid[0]
}

export const listenFd: BunBackend["listenFd"] = (cid, port, backlog) => {
  const { ffi, sym } = open()
  let fd = -1
  try {
    fd = socket()
    const addr = sockaddrVm(cid, port)
    if (sym.bind(fd, ffi.ptr(addr), addr.length) < 0) fail("bind")
    if (sym.listen(fd, backlog) < 0) fail("listen")
    return { fd, address: sockname(fd) }
  } catch (cause) {
    if (fd >= 0) sym.close(fd)
    throw fromCause("vsock listen", `${cid === 0xffffffff ? "any" : cid}:${port}`, cause)
  }
}

export const serverFromFd: BunBackend["serverFromFd"] = (fd, target, allowHalfOpen) =>
  new Promise((resolve, reject) => {
    const server = net.createServer({ allowHalfOpen })
    server.once("error", (cause) => reject(fromCause("vsock listen", target, cause)))
    server.listen({ fd }, () => resolve(server))
  })

const connectPolls = Retry.doubling("1 millis", "50 millis")
const notYet = Symbol("not writable yet")

/**
 * Non-blocking connect, then poll(…, 0) on a timer until writable (never blocking Bun's loop), read
 * SO_ERROR, and hand the connected fd to `net.connect({ fd })`, which Bun adopts for any socket family.
 */
export const connect: BunBackend["connect"] = async (cid, port, timeoutMs, target, allowHalfOpen) => {
  const { ffi, sym } = open()
  let fd = -1
  try {
    fd = socket()
    const addr = sockaddrVm(cid, port)
    if (sym.connect(fd, ffi.ptr(addr), addr.length) < 0) {
      const code = errno()
      if (code !== EINPROGRESS && code !== EINTR)
        throw Object.assign(new Error(`connect failed (errno ${code})`), { errno: code, syscall: "connect" })
      const deadline = Date.now() + timeoutMs
      const pfd = new Uint8Array(8) // struct pollfd { int fd; short events; short revents; }
      const view = new DataView(pfd.buffer)
      view.setInt32(0, fd, true)
      view.setInt16(4, POLLOUT, true)
      // Not writable yet: poll again after 1 ms, doubling to 50 ms, while the deadline allows another wait.
      const writable = Effect.try({
        try: () => {
          const ready = sym.poll(ffi.ptr(pfd), 1, 0)
          if (ready < 0 && errno() !== EINTR) fail("poll")
          return ready > 0
        },
        catch: (e) => e,
      })
      const polled = await Effect.runPromiseExit(
        Retry.retry(
          Effect.filterOrFail(
            writable,
            (ready) => ready,
            () => notYet,
          ),
          {
            schedule: connectPolls,
            deadline,
            while: (e) => e === notYet,
          },
        ),
      )
      if (Exit.isFailure(polled)) {
        const e = Cause.squash(polled.cause)
        throw e !== notYet
          ? e
          : Object.assign(new Error("connect timed out"), { errno: ETIMEDOUT, syscall: "connect" })
      }
      const soError = new Int32Array(1)
      const len = new Uint32Array([4])
      if (sym.getsockopt(fd, SOL_SOCKET, SO_ERROR, ffi.ptr(soError), ffi.ptr(len)) < 0) fail("getsockopt")
      if (soError[0] !== 0)
        throw Object.assign(new Error(`connect failed (errno ${soError[0]})`), {
          errno: soError[0],
          syscall: "connect",
        })
    }
    return net.connect({ fd, allowHalfOpen } as unknown as net.NetConnectOpts)
  } catch (cause) {
    if (fd >= 0) sym.close(fd)
    throw cause instanceof NativeError ? cause : fromCause("vsock connect", target, cause)
  }
}
