/**
 * System handlers: ping, info, time, kmsg, mount, shutdown/reboot and crash. Power and crash actions
 * reply first and act afterwards (as OpenVMM's pipette does: a hypervisor may not notice the closed
 * connection if the guest powers off while a reply is pending), and both can be replaced by a command
 * so tests record the call instead of losing the machine.
 */
import { Constants, Errors, type Operations, Retry, type Session } from "@cuvette/protocol"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import { type Config, logger } from "../internal/config.js"
import { AGENT_NAME, AGENT_VERSION } from "../internal/version.js"
import * as Pty from "./Pty.js"
import { runFile } from "../internal/runFile.js"

/**
 * The kernel log device. `CUVETTE_KMSG_DEVICE` names a stand-in (a FIFO) for tests, so they run
 * where /dev/kmsg cannot be read (an unprivileged CI runner).
 */
const kmsgDevice = (): string => process.env.CUVETTE_KMSG_DEVICE || "/dev/kmsg"
/** A /dev/kmsg record is at most ~8 KiB; a smaller read buffer gets EINVAL. */
const KMSG_RECORD = 8192
/** Batch records into chunks of about this size (one data frame, not one per line). */
const KMSG_BATCH = 64 * 1024
/** How often `follow` looks for new records (the fd is non-blocking so a cancel is never stuck in a read). */
const KMSG_POLL_MS = 100

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Runs a shell command line; resolves with its exit code and stderr. */
const runShell = (line: string): Promise<{ code: number | null; stderr: string; error?: Error }> =>
  new Promise((resolve) => {
    const child = spawn(line, { shell: true, stdio: ["ignore", "ignore", "pipe"], windowsHide: true })
    let stderr = ""
    child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()))
    child.once("error", (error) => resolve({ code: null, stderr, error }))
    child.once("close", (code) => resolve({ code, stderr }))
  })

const kmsgReadable = (): boolean => {
  try {
    fs.accessSync(kmsgDevice(), fs.constants.R_OK)
    return true
  } catch {
    return false
  }
}

/** ping: an empty round trip through the operation machinery. */
export const ping = () => Effect.succeed({})

/**
 * info: who and where this agent is, and what it serves. Computed when called and returned as a
 * succeeded Effect (as ping, time): the session answers such a handler at once, without a fiber.
 */
export const info = (config: Config, served: ReadonlyArray<string>) => () =>
  Effect.succeed(describe(config, served))

const describe = (config: Config, served: ReadonlyArray<string>) => {
  const capabilities = served.filter(
    (op) =>
      (op !== "kmsg" || kmsgReadable()) &&
      (op !== "crash" || config.allowCrash === true) &&
      (op !== "mount" || process.platform === "linux"),
  )
  if (config.token) capabilities.push("auth")
  if (Pty.supported() && served.includes("exec")) capabilities.push("pty")
  return {
    agent: {
      name: AGENT_NAME,
      version: AGENT_VERSION,
      runtime: process.versions.bun ? `bun ${process.versions.bun}` : `node ${process.versions.node}`,
      pid: process.pid,
    },
    protocolVersion: Constants.PROTOCOL_VERSION_MAX,
    os: process.platform,
    kernel: os.release(),
    arch: process.arch,
    hostname: os.hostname(),
    uptimeSec: os.uptime(),
    capabilities,
  }
}

/** time: the guest clock and its time zone. */
export const time = () =>
  Effect.succeed({
    unixMs: Date.now(),
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone ?? process.env.TZ ?? "UTC",
  })

const kmsgOpenError = (cause: unknown): Errors.AgentError => {
  const device = kmsgDevice()
  const code = (cause as NodeJS.ErrnoException).code
  if (code === "ENOENT" || code === "ENODEV" || code === "ENXIO")
    return Errors.make(
      "UNSUPPORTED",
      process.platform === "linux"
        ? `${device} does not exist here (a container, or /dev without devtmpfs): mount devtmpfs on /dev, or try exec dmesg`
        : `the kernel log (${device}) exists only on Linux; this guest is ${process.platform}${process.platform === "win32" ? ": try exec wevtutil qe System /c:50 /rd:true /f:text" : ""}`,
    )
  if (code === "EACCES" || code === "EPERM")
    return Errors.make(
      "EACCES",
      `cannot read ${device}: permission denied (run the agent as root, or set kernel.dmesg_restrict=0)`,
    )
  return Errors.fromUnknown(cause, device)
}

/**
 * kmsg: /dev/kmsg records, one per line ("prio,seq,usec,flags;message"), batched on stdout. With
 * `follow` it keeps streaming new records until cancelled.
 */
export const kmsg = (args: Operations.Args<"kmsg">, call: Session.ServerCall<"kmsg">) =>
  Effect.gen(function* () {
    const device = kmsgDevice()
    const handle = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => fs.promises.open(device, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK),
        catch: kmsgOpenError,
      }),
      (h) => Effect.promise(() => h.close().catch(() => {})),
    )
    return yield* Effect.tryPromise({
      try: async (signal) => {
        let records = 0
        let batch: Array<string> = []
        let batched = 0
        const flush = async () => {
          if (batch.length === 0) return
          const chunk = Buffer.from(batch.join(""))
          batch = []
          batched = 0
          await call.stdout.write(chunk)
        }
        while (!signal.aborted) {
          const buffer = Buffer.allocUnsafe(KMSG_RECORD)
          let n: number
          try {
            n = (await handle.read(buffer, 0, KMSG_RECORD, null)).bytesRead
          } catch (e) {
            const code = (e as NodeJS.ErrnoException).code
            if (code === "EPIPE") continue // Records were overwritten before we read them: go on with the next.
            if (code !== "EAGAIN" && code !== "EWOULDBLOCK") throw e
            await flush()
            if (!args.follow) break
            await sleep(KMSG_POLL_MS)
            continue
          }
          if (n === 0) break
          // Continuation lines (" SUBSYSTEM=...") are metadata: the record's first line is the message.
          const text = buffer.toString("utf8", 0, n)
          const nl = text.indexOf("\n")
          const line = (nl < 0 ? text : text.slice(0, nl)) + "\n"
          batch.push(line)
          batched += line.length
          records++
          if (batched >= KMSG_BATCH) await flush()
        }
        await flush()
        return { records }
      },
      catch: (cause) => Errors.fromUnknown(cause, `reading ${device}`),
    })
  })

// linux/mount.h: MS_* bits as mount(8) option names.
const MOUNT_FLAGS: ReadonlyArray<readonly [number, string]> = [
  [1, "ro"],
  [2, "nosuid"],
  [4, "nodev"],
  [8, "noexec"],
  [16, "sync"],
  [32, "remount"],
  [1024, "noatime"],
  [2048, "nodiratime"],
  [4096, "bind"],
]

/** mount (Linux): runs mount(8) with -t and -o, optionally creating the target first. */
export const mount = (args: Operations.Args<"mount">) =>
  Effect.gen(function* () {
    if (process.platform !== "linux")
      return yield* Effect.fail(
        Errors.make(
          "UNSUPPORTED",
          `mount is supported on Linux guests only; this guest is ${process.platform}`,
        ),
      )
    const options: Array<string> = []
    let rest = args.flags ?? 0
    for (const [bit, name] of MOUNT_FLAGS)
      if (rest & bit) {
        options.push(name)
        rest &= ~bit
      }
    if (rest !== 0)
      return yield* Effect.fail(
        Errors.make(
          "EINVAL",
          `mount flags 0x${rest.toString(16)} are not supported; pass options in data instead`,
        ),
      )
    if (args.data) options.push(args.data)
    if (args.mkdirTarget)
      yield* Effect.tryPromise({
        try: () => fs.promises.mkdir(args.target, { recursive: true }),
        catch: (cause) => Errors.fromUnknown(cause, args.target),
      })
    const argv = [
      "-t",
      args.fstype,
      ...(options.length ? ["-o", options.join(",")] : []),
      args.source,
      args.target,
    ]
    const r = yield* Effect.promise(() => runFile("mount", argv))
    const what = `mount ${args.source} on ${args.target} (${args.fstype})`
    if (r.error?.code === "ENOENT")
      return yield* Effect.fail(
        Errors.make(
          "UNSUPPORTED",
          `${what}: no mount command in PATH on this guest (install util-linux or busybox)`,
        ),
      )
    if (r.code === 0) return {}
    const text = r.stderr.trim() || `mount exited with ${r.code}`
    const code: Errors.ErrorCode = /permission denied|only root|not permitted|must be superuser/i.test(text)
      ? "EPERM"
      : /does not exist|no such file/i.test(text)
        ? "ENOENT"
        : /busy|already mounted/i.test(text)
          ? "EBUSY"
          : /unknown filesystem|wrong fs type|bad option|invalid argument/i.test(text)
            ? "EINVAL"
            : "EIO"
    return yield* Effect.fail(Errors.make(code, `${what} failed: ${text}`))
  })

/** True when power commands need -f: PID 1 is a shell, or there is no systemd (OpenRC, busybox init), as pipette decides. */
const needsForce = (): boolean => {
  try {
    const cmdline = fs.readFileSync("/proc/1/cmdline", "utf8")
    if (cmdline.startsWith("/bin/sh")) return true
  } catch {
    // no /proc: decide by systemd alone
  }
  return !fs.existsSync("/run/systemd/system")
}

/** Powers off or reboots, retrying every 5 s as pipette does if the command fails. */
const powerAction = async (config: Config, reboot: boolean) => {
  const log = logger(config)
  const action = reboot ? "reboot" : "poweroff"
  const attempt = async (): Promise<boolean> => {
    if (config.powerCommand) {
      const r = await runShell(`${config.powerCommand} ${action}`)
      if (r.code === 0) return true
      log(
        `power command "${config.powerCommand} ${action}" failed (${r.error?.message ?? `exit ${r.code}`}): ${r.stderr.trim()}`,
      )
      return false
    }
    if (process.platform === "win32") {
      const r = await runFile("shutdown.exe", [reboot ? "/r" : "/s", "/t", "0", "/f"])
      if (r.code === 0) return true
      log(`shutdown.exe failed (${r.error?.message ?? `exit ${r.code}`}): ${r.stderr.trim()}`)
      return false
    }
    // Flush file systems first: `-f` skips init's orderly unmount.
    await runFile("sync", [])
    if (process.pid === 1)
      log(
        "the agent is PID 1: JavaScript cannot call reboot(2) directly, using the poweroff/reboot commands with -f",
      )
    const args = process.pid === 1 || needsForce() ? ["-f"] : []
    const r = await runFile(action, args)
    if (r.code === 0) return true
    log(`${action} ${args.join(" ")} failed (${r.error?.message ?? `exit ${r.code}`}): ${r.stderr.trim()}`)
    return false
  }
  const done = Effect.promise(attempt).pipe(Effect.filterOrFail((ok) => ok))
  await Effect.runPromise(
    Retry.retry(done, {
      schedule: Retry.every("5 seconds"),
      onRetry: () => log("still waiting to shut down, trying again in 5 s"),
    }),
  )
}

/** Delay before acting: 250 ms lets the reply leave; Windows needs 5 s (pipette: a boot-time shutdown hang). */
const POWER_DELAY_MS = process.platform === "win32" ? 5000 : 250

/** shutdown / reboot: replies, then acts. */
export const shutdown = (config: Config) => (args: Operations.Args<"shutdown">) =>
  Effect.sync(() => {
    const reboot = args.reboot ?? false
    logger(config)(`${reboot ? "reboot" : "power off"} requested: acting in ${POWER_DELAY_MS} ms`)
    setTimeout(() => void powerAction(config, reboot), POWER_DELAY_MS)
    return {}
  })

const SYSRQ = "/proc/sysrq-trigger"

/** crash: DENIED unless allowed; otherwise replies, then crashes the agent or the kernel. */
export const crash = (config: Config) => (args: Operations.Args<"crash">) =>
  Effect.gen(function* () {
    if (!config.allowCrash)
      return yield* Effect.fail(
        Errors.make(
          "DENIED",
          `crash ${args.kind} is disabled on this agent: start it with --allow-crash (fault tests only)`,
        ),
      )
    const log = logger(config)
    if (args.kind === "agent") {
      log("crash agent requested: exiting abnormally")
      setTimeout(
        () => (config.onCrashAgent ? config.onCrashAgent() : process.kill(process.pid, "SIGKILL")),
        100,
      )
      return {}
    }
    if (config.crashCommand) {
      const line = `${config.crashCommand} kernel`
      setTimeout(() => void runShell(line), 100)
      return {}
    }
    if (process.platform === "win32") {
      setTimeout(() => void runFile("taskkill", ["/IM", "wininit.exe", "/F", "/T"]), 100)
      return {}
    }
    yield* Effect.tryPromise({
      try: () => fs.promises.access(SYSRQ, fs.constants.W_OK),
      catch: () =>
        Errors.make(
          "UNSUPPORTED",
          `cannot crash the kernel: ${SYSRQ} is not writable here (run as root with /proc mounted and CONFIG_MAGIC_SYSRQ)`,
        ),
    })
    log("crash kernel requested: writing c to /proc/sysrq-trigger")
    setTimeout(() => fs.writeFile(SYSRQ, "c", () => {}), 100)
    return {}
  })
