/**
 * `--service`: the agent under the Windows service manager. The SCM starts the process, hears
 * START_PENDING from the addon's dispatcher thread, and RUNNING once the transports are up; a stop or
 * shutdown control stops the agent and reports STOPPED (a failed start reports a service-specific exit
 * code, which `sc query` shows). Started from a console instead, the agent says so and serves as a console
 * process, so `--service` can be tried by hand.
 */
import type { WindowsService } from "@cuvette/native"
import * as Agent from "../Agent.js"
import * as native from "./native.js"

/** How long the SCM should wait for a stop before it considers the service hung. */
const STOP_WAIT_HINT_MS = 15_000

export interface ServiceOptions {
  readonly options: Agent.StartOptions
  readonly log: (line: string) => void
  /** What `--service` does when the SCM did not start the process: serve until a signal. */
  readonly serveConsole: () => Promise<number>
  /** The SCM connection; the addon's by default (tests pass a scripted one). */
  readonly controller?: WindowsService.Controller
}

/** Runs the agent for `--service`; resolves with the exit code once the SCM has seen it stop. */
export const run = async ({ options, log, serveConsole, controller }: ServiceOptions): Promise<number> => {
  if (controller === undefined) {
    if (process.platform !== "win32") {
      log(
        "--service is for Windows guests (the service manager); on Linux use a systemd unit or an init script",
      )
      return 2
    }
    controller = await native.serviceController()
  }
  const scm = controller
  const report = (...args: Parameters<WindowsService.Controller["report"]>) => {
    try {
      scm.report(...args)
    } catch (e) {
      log(`could not report "${args[0]}" to the service manager: ${native.reason(e)}`)
    }
  }
  return new Promise<number>((resolve) => {
    let running: Agent.Running | undefined
    let exitCode = 0
    // SCM events arrive on the JS thread in order; handling them one at a time means a stop that comes
    // while the transports are still starting waits for them and then stops them.
    let queue = Promise.resolve()
    const handle = async (kind: WindowsService.Event, code: number): Promise<void> => {
      switch (kind) {
        case "start":
          try {
            running = await Agent.start(options)
            log(`serving on ${running.addresses.join(", ")} (service running)`)
            report("running")
          } catch (e) {
            log(`could not start: ${native.reason(e)}`)
            exitCode = 1
            report("stopped", exitCode)
          }
          return
        case "stop":
        case "shutdown":
          log(`the service manager says ${kind}: stopping`)
          report("stopping", 0, STOP_WAIT_HINT_MS)
          await running?.stop()
          running = undefined
          report("stopped", exitCode)
          return
        case "ended":
          resolve(exitCode)
          return
        case "console":
          log(
            "--service: not started by the service manager (start it with `sc.exe start cuvette-agent`); " +
              "serving as a console process",
          )
          resolve(await serveConsole())
          return
        case "failed":
          log(`the service dispatcher failed (Win32 error ${code})`)
          resolve(1)
          return
      }
    }
    scm.dispatch((kind, code) => {
      queue = queue.then(() => handle(kind, code))
    })
  })
}
