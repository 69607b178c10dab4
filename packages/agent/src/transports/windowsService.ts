/**
 * `--service`: running under the Windows service manager.
 *
 * Not done yet: the SCM handshake (StartServiceCtrlDispatcherW, RegisterServiceCtrlHandlerExW,
 * SetServiceStatus) blocks the calling thread and calls back on threads of its own, which neither
 * Node nor Bun can host on the JS thread; it needs either a small addon in @burette/native or a
 * bun:ffi dispatcher on a Worker. Until then `--service` says so and serves as a console process,
 * which works when the agent is started by a scheduled task at boot
 * (`schtasks /create /tn burette-agent /sc onstart /ru SYSTEM /tr "C:\\burette\\burette-agent.exe"`),
 * not by `sc.exe create` (the SCM would kill it after 30 s with error 1053).
 */
import * as Agent from "../Agent.js"
import { Constants } from "@burette/protocol"

/** Runs the agent for `--service`; resolves with the exit code. */
export const run = async (options: Agent.StartOptions, log: (line: string) => void): Promise<number> => {
  if (process.platform !== "win32") {
    log(
      "--service is for Windows guests (the service manager); on Linux use a systemd unit or an init script",
    )
    return 2
  }
  log(
    "--service: the service-manager handshake is not implemented yet; serving as a console process " +
      "(start it with a boot-time scheduled task, not sc.exe create)",
  )
  const running = await Agent.start(options)
  log(`serving on ${running.addresses.join(", ")}`)
  process.stderr.write(`${Constants.READY_MARKER}\n`)
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", () => resolve())
    process.once("SIGINT", () => resolve())
  })
  await running.stop()
  return 0
}
