// What Vsock.ts calls on lib/bunVsock.ts, the Bun-only AF_VSOCK path. bunVsock.ts is typechecked against
// bun-types in its own project (tsconfig.bun.json) and declares each export with these types, so the
// Node project checks Vsock.ts without ever seeing bun:ffi.
import type * as net from "node:net"

export interface BunBackend {
  canCreate(): boolean
  localCid(): number
  listenFd(cid: number, port: number, backlog: number): { fd: number; address: { cid: number; port: number } }
  /** Bun accepts foreign listening fds in net.Server.listen({ fd }); the server owns the fd afterwards. */
  serverFromFd(fd: number, target: string, allowHalfOpen: boolean): Promise<net.Server>
  connect(
    cid: number,
    port: number,
    timeoutMs: number,
    target: string,
    allowHalfOpen: boolean,
  ): Promise<net.Socket>
}
