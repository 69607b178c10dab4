/**
 * `--service` against a scripted service manager: the order of status reports the SCM sees, a stop that
 * arrives while the transports start, failed starts, and a console start. The real dispatcher
 * (native/src/service_win.cc) runs under Wine's services.exe in e2e/test/windows.test.ts.
 */
import type { WindowsService } from "@cuvette/native"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as Service from "../src/transports/windowsService.js"
import { connect, spawnAgent, tempDir } from "./fixtures/agent.js"

const dir = tempDir()
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/** A service manager the test drives: `send` delivers an SCM event; `reports` is what the agent told it. */
const scriptedScm = () => {
  let onEvent: ((kind: WindowsService.Event, code: number) => void) | undefined
  const reports: Array<string> = []
  let waiting: Array<{ state: string; resolve: () => void }> = []
  const controller: WindowsService.Controller = {
    dispatch: (f) => void (onEvent = f),
    report: (state, exitCode = 0) => {
      reports.push(exitCode === 0 ? state : `${state} ${exitCode}`)
      waiting = waiting.filter((w) => (w.state === state ? (w.resolve(), false) : true))
      // Like the SCM: STOPPED ends the dispatcher.
      if (state === "stopped") setImmediate(() => onEvent?.("ended", 0))
    },
  }
  const reported = (state: string) => new Promise<void>((resolve) => waiting.push({ state, resolve }))
  return {
    controller,
    reports,
    reported,
    send: (kind: WindowsService.Event, code = 0) => onEvent!(kind, code),
  }
}

let n = 0
const socketPath = () => path.join(dir, `agent-${++n}.sock`)

describe("--service under a (scripted) service manager", () => {
  it("reports running once the agent serves, and stopping then stopped(0) on a stop control", async () => {
    const scm = scriptedScm()
    const sock = socketPath()
    const logs: Array<string> = []
    const exit = Service.run({
      options: { listen: [`unix:${sock}`], log: () => {} },
      log: (l) => logs.push(l),
      serveConsole: () => Promise.reject(new Error("not a console start")),
      controller: scm.controller,
    })
    scm.send("start")
    await scm.reported("running")
    // RUNNING is reported only once clients can be served.
    const session = await connect(sock)
    await expect(session.open("ping", {}).result).resolves.toEqual({})
    await session.close()

    scm.send("stop")
    expect(await exit).toBe(0)
    expect(scm.reports).toEqual(["running", "stopping", "stopped"])
    expect(logs.join("\n")).toContain("the service manager says stop: stopping")
    await expect(connect(sock)).rejects.toThrow()
  })

  it("a shutdown control that arrives while the transports start stops them after they are up", async () => {
    const scm = scriptedScm()
    const sock = socketPath()
    const exit = Service.run({
      options: { listen: [`unix:${sock}`], log: () => {} },
      log: () => {},
      serveConsole: () => Promise.reject(new Error("not a console start")),
      controller: scm.controller,
    })
    scm.send("start")
    scm.send("shutdown")
    expect(await exit).toBe(0)
    expect(scm.reports).toEqual(["running", "stopping", "stopped"])
    expect(fs.existsSync(sock)).toBe(false)
  })

  it("a start that fails reports stopped with service-specific exit code 1 and logs why", async () => {
    const busy = net.createServer()
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve))
    const { port } = busy.address() as net.AddressInfo
    try {
      const scm = scriptedScm()
      const logs: Array<string> = []
      const exit = Service.run({
        options: { listen: [`tcp:127.0.0.1:${port}`], log: () => {} },
        log: (l) => logs.push(l),
        serveConsole: () => Promise.reject(new Error("not a console start")),
        controller: scm.controller,
      })
      scm.send("start")
      expect(await exit).toBe(1)
      expect(scm.reports).toEqual(["stopped 1"])
      expect(logs.join("\n")).toMatch(
        /could not start: cannot listen on tcp:127.0.0.1:\d+: address already in use/,
      )
    } finally {
      busy.close()
    }
  })

  it("not started by the SCM: says so and serves as a console process", async () => {
    const scm = scriptedScm()
    const logs: Array<string> = []
    const exit = Service.run({
      options: {},
      log: (l) => logs.push(l),
      serveConsole: async () => 42,
      controller: scm.controller,
    })
    scm.send("console", 1063)
    expect(await exit).toBe(42)
    expect(scm.reports).toEqual([])
    expect(logs.join("\n")).toContain(
      "not started by the service manager (start it with `sc.exe start cuvette-agent`)",
    )
  })

  it("any other dispatcher failure exits 1 with the Win32 error", async () => {
    const scm = scriptedScm()
    const logs: Array<string> = []
    const exit = Service.run({
      options: {},
      log: (l) => logs.push(l),
      serveConsole: async () => 0,
      controller: scm.controller,
    })
    scm.send("failed", 1056)
    expect(await exit).toBe(1)
    expect(logs).toContain("the service dispatcher failed (Win32 error 1056)")
  })

  it("a status report the SCM refuses is logged, and the service still stops", async () => {
    const scm = scriptedScm()
    const logs: Array<string> = []
    const report = scm.controller.report
    const controller: WindowsService.Controller = {
      dispatch: scm.controller.dispatch,
      report: (state, ...rest) => {
        report(state, ...rest)
        if (state === "running") throw new Error("SetServiceStatus: The handle is invalid")
      },
    }
    const exit = Service.run({
      options: { listen: [`unix:${socketPath()}`], log: () => {} },
      log: (l) => logs.push(l),
      serveConsole: async () => 0,
      controller,
    })
    scm.send("start")
    await scm.reported("running")
    scm.send("stop")
    expect(await exit).toBe(0)
    expect(logs).toContain(
      'could not report "running" to the service manager: SetServiceStatus: The handle is invalid',
    )
  })
})

describe("cuvette-agent --service and --log-file", () => {
  it("off Windows, --service exits 2 and names what to use instead", async () => {
    const agent = await spawnAgent(["--service"], { ready: false })
    expect((await agent.exited).code).toBe(2)
    expect(agent.stderr).toContain("--service is for Windows guests")
  })

  it("--log-file appends timestamped lines instead of writing them to stderr", async () => {
    const log = path.join(dir, "agent.log")
    fs.writeFileSync(log, "earlier line\n")
    const sock = socketPath()
    const agent = await spawnAgent(["--listen", `unix:${sock}`, "--log-file", log])
    agent.proc.kill("SIGTERM")
    expect((await agent.exited).code).toBe(0)
    const lines = fs.readFileSync(log, "utf8").trimEnd().split("\n")
    expect(lines[0]).toBe("earlier line")
    expect(lines[1]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z starting \(/)
    expect(lines.some((l) => l.endsWith(`serving on unix:${sock}`))).toBe(true)
    expect(lines.at(-1)).toMatch(/Z SIGTERM: stopping$/)
    expect(agent.stderr).not.toContain("serving on")
  })

  it("an unwritable --log-file is a usage error before anything starts", async () => {
    const agent = await spawnAgent(["--log-file", path.join(dir, "no", "such", "dir", "agent.log")], {
      ready: false,
    })
    expect((await agent.exited).code).toBe(2)
    expect(agent.stderr).toMatch(/cannot open the log file .*agent\.log: ENOENT/)
  })
})
