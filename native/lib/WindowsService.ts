/**
 * The Windows service-manager handshake (StartServiceCtrlDispatcherW, RegisterServiceCtrlHandlerExW,
 * SetServiceStatus) for a process the SCM started, as events on the JS thread and one report call.
 * The dispatcher runs on a thread of the addon's own (src/service_win.cc); Windows only.
 */
import type { ServiceEventKind, ServiceState } from "./binding.js"
import { loadWin32 } from "./loader.js"

export type { ServiceEventKind, ServiceState }

/** winerror.h: StartServiceCtrlDispatcherW's error when the process was not started by the SCM. */
export const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT = 1063

/**
 * What the SCM says, in order: "start" (ServiceMain ran; the service is START_PENDING), then "stop" or
 * "shutdown" (already STOP_PENDING), then "ended" once the service reported "stopped". Or at once
 * "console": the process was not started by the SCM ({@link ERROR_FAILED_SERVICE_CONTROLLER_CONNECT}), or
 * "failed" with the Win32 error of a dispatcher that could not start for another reason.
 */
export type Event = ServiceEventKind | "console"

export interface Controller {
  dispatch(onEvent: (kind: Event, code: number) => void): void
  /** `exitCode` counts only with "stopped"; `waitHintMs` only with "stopping". */
  report(state: ServiceState, exitCode?: number, waitHintMs?: number): void
}

/** The addon's controller; throws NativeError UNSUPPORTED off Windows, NOT_BUILT without the addon. */
export const controller = (): Controller => {
  const binding = loadWin32("run under the Windows service manager")
  return {
    dispatch: (onEvent) =>
      binding.svcDispatch((kind, code) =>
        onEvent(
          kind === "failed" && code === ERROR_FAILED_SERVICE_CONTROLLER_CONNECT ? "console" : kind,
          code,
        ),
      ),
    report: (state, exitCode = 0, waitHintMs = 0) => binding.svcReport(state, exitCode, waitHintMs),
  }
}
