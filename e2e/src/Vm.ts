/**
 * Vm: boots the e2e guest (Debian's kernel + the busybox initramfs from build-initramfs.sh) under
 * `qemu-system-x86_64 -accel tcg`, with the cidata disk on virtio-blk and each named virtio-serial port
 * exposed as a Unix socket on the host. The console goes to a log file (for markers and for failure
 * output), a watchdog kills QEMU by pid, and at most two VMs run at once in a process (one per core).
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"

/** Scenario run by the guest's /init (kernel command line `cuvette.mode=`). */
export type Mode = "vtl0" | "vtl2" | "qga"

/** Virtio-serial port names the guest and host agree on. */
export const Ports = {
  agent: "org.cuvette.agent.0",
  diag: "org.cuvette.diag.0",
  qga: "org.qemu.guest_agent.0",
  /** The in-guest vsock relay's port (e2e/relay): bytes to and from the agent's AF_VSOCK listener. */
  relay: "org.cuvette.relay.0",
} as const

/** What to boot and how. */
export interface StartOptions {
  readonly kernel: string
  readonly initrd: string
  /** The cidata disk; attached read-only. */
  readonly disk?: string
  /** Defaults from the extension: `.vhd` is `vpc` (fixed VHD footer), anything else `raw`. */
  readonly diskFormat?: "raw" | "vpc"
  readonly mode: Mode
  /** Defaults to 256 for vtl2 (VTL2 is memory-starved) and 512 otherwise. */
  readonly memoryMiB?: number
  readonly smp?: number
  /** virtio-serial port names; each becomes `<dir>/<name>.sock` on the host. */
  readonly serialPorts?: ReadonlyArray<string>
  /** Where the guest console goes; defaults to `<dir>/console.log`. */
  readonly consoleLog?: string
  /** QEMU is killed by pid after this long (default 60 s): a stuck guest must not stall the suite. */
  readonly watchdogMs?: number
  /** Extra kernel command-line words. */
  readonly append?: string
  /**
   * A second serial port (ttyS1) whose host side is the Unix socket `<dir>/ttyS1.sock` (QEMU listening),
   * with a busybox root shell on it in the guest: a serial console for `cuvette console`.
   */
  readonly consoleShell?: boolean
}

/** A running (or finished) QEMU. */
export interface Vm {
  readonly pid: number
  /** Private temp dir holding the sockets (and the console log unless one was given). */
  readonly dir: string
  readonly consoleLog: string
  /** Host socket path per virtio-serial port name. */
  readonly sockets: Readonly<Record<string, string>>
  /** The host socket of ttyS1's shell, with {@link StartOptions.consoleShell}. */
  readonly consoleShellSocket: string | undefined
  /** performance.now() when QEMU was spawned. */
  readonly startedAt: number
  /** QEMU's exit code; null when it was killed by a signal (kill(), the watchdog). */
  readonly exited: Promise<number | null>
  /** True once the watchdog has killed QEMU. */
  readonly watchdogFired: () => boolean
  /** Resolves with the first match of `pattern` in the console log; rejects on timeout or QEMU exit. */
  readonly waitForConsole: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpMatchArray>
  /** The console log so far, plus QEMU's own stderr: print it when a test fails. */
  readonly consoleText: () => string
  /** Connects to a port's host socket, retrying until QEMU has created it. */
  readonly connect: (port: string, timeoutMs?: number) => Promise<net.Socket>
  /** Kills QEMU by pid (SIGKILL) and waits for it; removes the temp dir. Idempotent. */
  readonly kill: () => Promise<void>
}

const MAX_VMS = 2
let slotsInUse = 0
const slotWaiters: Array<() => void> = []
const acquireSlot = async (): Promise<void> => {
  if (slotsInUse < MAX_VMS) {
    slotsInUse++
    return
  }
  await new Promise<void>((resolve) => slotWaiters.push(resolve))
}
const releaseSlot = (): void => {
  const next = slotWaiters.shift()
  if (next) next()
  else slotsInUse--
}

const live = new Map<number, Vm>()
let exitHookInstalled = false
const installExitHook = (): void => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  // Last resort if a test file forgets afterAll: never leave QEMU running after the worker exits.
  process.on("exit", () => {
    for (const pid of live.keys()) {
      try {
        process.kill(pid, "SIGKILL")
      } catch {
        // already gone
      }
    }
  })
}

// QEMU option values use "," as a separator; a literal comma is written twice.
const qemuEscape = (value: string): string => value.replaceAll(",", ",,")

/** The QEMU command line for `options` (exported for inspection and tests; no I/O). */
export const qemuArgs = (
  options: StartOptions,
  files: {
    readonly consoleLog: string
    readonly sockets: Readonly<Record<string, string>>
    readonly consoleShellSocket?: string | undefined
  },
): Array<string> => {
  const memory = options.memoryMiB ?? (options.mode === "vtl2" ? 256 : 512)
  // KVM looks usable on this machine kind but the guest dies, and `kvm:tcg` does not fall back because
  // KVM initialises fine: TCG must be explicit. E2E_ACCEL is an opt-in for hosts with working KVM.
  const accel = process.env.E2E_ACCEL ?? "tcg"
  const append = ["console=ttyS0", "quiet", "panic=-1", `cuvette.mode=${options.mode}`]
  if (options.append) append.push(options.append)
  // The guest's /init starts the shell on the tty this names.
  if (files.consoleShellSocket !== undefined) append.push("cuvette.console=ttyS1")
  const args = [
    ["-accel", accel],
    // Bun needs AVX2/BMI2; TCG only offers them with -cpu max (qemu64 gives SIGILL).
    ["-cpu", "max"],
    ["-m", String(memory)],
    ["-smp", String(options.smp ?? 1)],
    ["-nodefaults", "-no-user-config", "-display", "none"],
    // With panic=-1 a guest panic reboots, and -no-reboot turns every reboot into an exit.
    ["-no-reboot"],
    ["-serial", `file:${qemuEscape(files.consoleLog)}`],
    // The second -serial is ttyS1.
    files.consoleShellSocket !== undefined
      ? [
          "-chardev",
          `socket,path=${qemuEscape(files.consoleShellSocket)},server=on,wait=off,id=ttyS1`,
          "-serial",
          "chardev:ttyS1",
        ]
      : [],
    // The uncompressed PVH vmlinux: decompressing Debian's XZ bzImage under TCG costs ~3 s per boot.
    ["-kernel", options.kernel, "-initrd", options.initrd],
    ["-append", append.join(" ")],
  ].flat()
  if (options.disk) {
    const format = options.diskFormat ?? (options.disk.endsWith(".vhd") ? "vpc" : "raw")
    args.push(
      "-drive",
      `file=${qemuEscape(options.disk)},if=none,id=cd,format=${format},readonly=on`,
      "-device",
      "virtio-blk-pci,drive=cd",
    )
  }
  const ports = Object.entries(files.sockets)
  if (ports.length > 0) args.push("-device", "virtio-serial-pci")
  ports.forEach(([name, socket], i) => {
    args.push(
      "-chardev",
      `socket,path=${qemuEscape(socket)},server=on,wait=off,id=port${i}`,
      "-device",
      `virtserialport,chardev=port${i},name=${name}`,
    )
  })
  return args
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Boots a VM (waiting for one of the two slots first). */
export const start = async (options: StartOptions): Promise<Vm> => {
  for (const name of options.serialPorts ?? []) {
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`Vm.start: bad virtio-serial port name "${name}"`)
  }
  await acquireSlot()
  let released = false
  const release = () => {
    if (!released) {
      released = true
      releaseSlot()
    }
  }
  try {
    return launch(options, release)
  } catch (err) {
    release()
    throw err
  }
}

const launch = (options: StartOptions, release: () => void): Vm => {
  installExitHook()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-e2e-"))
  const consoleLog = options.consoleLog ?? path.join(dir, "console.log")
  fs.writeFileSync(consoleLog, "")
  const sockets: Record<string, string> = {}
  for (const name of options.serialPorts ?? []) sockets[name] = path.join(dir, `${name}.sock`)
  const consoleShellSocket = options.consoleShell === true ? path.join(dir, "ttyS1.sock") : undefined

  const child = spawn("qemu-system-x86_64", qemuArgs(options, { consoleLog, sockets, consoleShellSocket }), {
    stdio: ["ignore", "pipe", "pipe"],
  })
  const startedAt = performance.now()
  let qemuOutput = ""
  child.stdout.setEncoding("utf8").on("data", (s: string) => (qemuOutput += s))
  child.stderr.setEncoding("utf8").on("data", (s: string) => (qemuOutput += s))

  let finalConsole: string | undefined
  const readConsole = (): string => {
    if (finalConsole !== undefined) return finalConsole
    try {
      return fs.readFileSync(consoleLog, "utf8")
    } catch {
      return ""
    }
  }

  let hasExited = false
  let watchdogFired = false
  const exited = new Promise<number | null>((resolve) => {
    const finish = (code: number | null) => {
      if (hasExited) return
      hasExited = true
      clearTimeout(watchdog)
      finalConsole = readConsole()
      if (child.pid !== undefined) live.delete(child.pid)
      release()
      resolve(code)
    }
    child.once("error", (err) => {
      qemuOutput += `\nspawn qemu-system-x86_64 failed: ${err.message}\n`
      // A failed spawn (no binary) may never emit "close".
      if (child.pid === undefined) finish(null)
    })
    child.once("close", (code) => finish(code))
  })
  const pid = child.pid ?? -1
  const killPid = () => {
    if (hasExited || pid < 0) return
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
  const watchdogMs = options.watchdogMs ?? 60_000
  const watchdog = setTimeout(() => {
    watchdogFired = true
    qemuOutput += `\n[e2e harness] watchdog: killed QEMU pid ${pid} after ${watchdogMs} ms\n`
    killPid()
  }, watchdogMs)

  const consoleText = () => {
    const text = readConsole()
    return qemuOutput.trim() ? `${text}\n--- qemu output ---\n${qemuOutput}` : text
  }

  const waitForConsole = async (pattern: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> => {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const done = hasExited
      const m = readConsole().match(pattern)
      if (m) return m
      if (done) throw new Error(`QEMU exited before the console matched ${pattern}:\n${consoleText()}`)
      if (performance.now() > deadline) {
        throw new Error(`console did not match ${pattern} within ${timeoutMs} ms:\n${consoleText()}`)
      }
      await sleep(25)
    }
  }

  const connect = async (port: string, timeoutMs = 10_000): Promise<net.Socket> => {
    const socketPath = sockets[port]
    if (!socketPath)
      throw new Error(`VM has no virtio-serial port "${port}" (ports: ${Object.keys(sockets).join(", ")})`)
    const deadline = performance.now() + timeoutMs
    for (;;) {
      try {
        return await new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect(socketPath)
          socket.once("connect", () => {
            socket.removeAllListeners("error")
            resolve(socket)
          })
          socket.once("error", (err) => {
            socket.destroy()
            reject(err)
          })
        })
      } catch (err) {
        if (hasExited || performance.now() > deadline) {
          throw new Error(
            `cannot connect to ${socketPath}: ${err instanceof Error ? err.message : String(err)}`,
          )
        }
        await sleep(25)
      }
    }
  }

  const kill = async () => {
    killPid()
    await exited
    fs.rmSync(dir, { recursive: true, force: true })
  }

  const vm: Vm = {
    pid,
    dir,
    consoleLog,
    sockets,
    consoleShellSocket,
    startedAt,
    exited,
    watchdogFired: () => watchdogFired,
    waitForConsole,
    consoleText,
    connect,
    kill,
  }
  if (pid >= 0) live.set(pid, vm)
  return vm
}

/** Kills every VM this process started (afterAll safety net). */
export const killAll = async (): Promise<void> => {
  await Promise.all([...live.values()].map((vm) => vm.kill()))
}

/** Whether a process with this pid still exists (for "no QEMU left behind" assertions). */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
