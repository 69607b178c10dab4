// VTL2-style bring-up: nothing mounted, no agent, 256 MiB; the ohcldiag-dev stand-in runs commands
// through the root shell on org.cuvette.diag.0, with the real `run`'s semantics (exit code relayed,
// returns when the command's stdout closes).
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import * as Diag from "../src/Diag.js"
import { setup } from "../src/setup.js"
import * as Vm from "../src/Vm.js"
import { bootForTest, diskForTest, kernelOf, since } from "./fixtures/boot.js"

const env = await setup()
afterAll(() => Vm.killAll())

// The host side of the line protocol against a scripted fake guest: no VM needed.
describe("ohcldiag-dev protocol", () => {
  const fakeGuest = async (reply: (tag: string, command: string) => Array<string | Buffer>) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-e2e-diagfake-"))
    const socketPath = path.join(dir, "diag.sock")
    const server = net.createServer((socket) => {
      let line = ""
      socket.on("data", async (chunk) => {
        line += chunk.toString("latin1")
        const m = /^RUN (\S+) (\S*)\n/.exec(line)
        if (!m) return
        // Byte-sized writes with pauses: markers must be found across chunk boundaries.
        for (const part of reply(m[1], Buffer.from(m[2], "base64").toString())) {
          for (const byte of Buffer.from(part)) {
            socket.write(Buffer.from([byte]))
            await new Promise((r) => setImmediate(r))
          }
        }
        socket.end()
      })
    })
    await new Promise<void>((resolve) => server.listen(socketPath, resolve))
    return {
      socketPath,
      close: () => {
        server.close()
        fs.rmSync(dir, { recursive: true, force: true })
      },
    }
  }

  it("drops stale bytes, relays stdout and stderr exactly, and exits with the guest's code", async () => {
    let seen = ""
    const guest = await fakeGuest((tag, command) => {
      seen = command
      return [
        "__E2E_0000000000000000__ RC 9\nleftover",
        `${tag} BEGIN\n`,
        "line\n\n__E2E_ not a marker",
        `\n${tag} OUT_END\n`,
        "warn\n",
        `\n${tag} RC 42\n`,
      ]
    })
    try {
      const result = await Diag.run(guest.socketPath, ["echo", "it's $x"], { timeoutMs: 10_000 })
      expect(seen).toBe(`'echo' 'it'\\''s $x'`)
      expect(result).toMatchObject({
        code: 42,
        stdout: "line\n\n__E2E_ not a marker",
        stderr: "warn\n",
        timedOut: false,
      })
    } finally {
      guest.close()
    }
  })

  // Async spawn: the fake guest lives in this process's event loop.
  const runBin = (args: Array<string>, env: NodeJS.ProcessEnv) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [Diag.binPath, ...args], {
        env,
        stdio: ["ignore", "pipe", "pipe"],
      })
      let stdout = ""
      let stderr = ""
      child.stdout.on("data", (d) => (stdout += d))
      child.stderr.on("data", (d) => (stderr += d))
      child.on("close", (status) => resolve({ status, stdout, stderr }))
    })

  it("takes the socket from CUVETTE_E2E_DIAG_SOCKET for a VM name, and fails clearly without one", async () => {
    const guest = await fakeGuest((tag) => [`${tag} BEGIN\nok\n${tag} OUT_END\n\n${tag} RC 0\n`])
    try {
      const named = await runBin(["my-vm", "run", "--", "true"], {
        ...process.env,
        CUVETTE_E2E_DIAG_SOCKET: guest.socketPath,
      })
      expect(named).toMatchObject({ status: 0, stdout: "ok" })
    } finally {
      guest.close()
    }
    const env = { ...process.env }
    delete env.CUVETTE_E2E_DIAG_SOCKET
    const unnamed = await runBin(["my-vm", "run", "--", "true"], env)
    expect(unnamed.status).toBe(2)
    expect(unnamed.stderr).toContain("CUVETTE_E2E_DIAG_SOCKET")
  })
})

describe.skipIf(env.skipReason !== undefined)("vtl2 diag shell", () => {
  const assets = env.assets!

  it("runs commands in the guest, relays output and exit codes, and hangs on an undetached child", async () => {
    // The disk is attached (deploy vtl2 will mount it through diag) but /init must not touch it.
    const disk = await diskForTest({ "cuvette-agent.sh": "#!/bin/sh\necho E2E_STANDIN_SHOULD_NOT_RUN\n" })
    const vm = await bootForTest({
      ...kernelOf(assets),
      disk,
      mode: "vtl2",
      memoryMiB: 256,
      serialPorts: [Vm.Ports.agent, Vm.Ports.diag],
      watchdogMs: 55_000,
    })
    const diag = vm.sockets[Vm.Ports.diag]

    const ready = await Diag.waitReady(diag, 30_000)
    expect(ready.stdout).toContain(`kernel_release: ${assets.kernelRelease}`)
    const readyAt = since(vm)

    const uname = await Diag.run(diag, ["uname", "-r"])
    expect(uname).toMatchObject({ code: 0, stdout: `${assets.kernelRelease}\n`, stderr: "" })

    expect((await Diag.run(diag, ["sh", "-c", "exit 3"])).code).toBe(3)

    const streams = await Diag.run(diag, ["sh", "-c", "echo out; echo err >&2; printf 'no newline'; exit 1"])
    expect(streams).toMatchObject({ code: 1, stdout: "out\nno newline", stderr: "err\n" })

    // Arguments reach the guest as argv, quotes and all.
    const argv = await Diag.run(diag, ["printf", "%s|", "a b", "it's", "$HOME", ""])
    expect(argv.stdout).toBe("a b|it's|$HOME||")

    // VTL2 state: no cidata mounted, no agent, limited memory.
    const state = await Diag.run(diag, [
      "sh",
      "-c",
      "grep -c ' /cidata ' /proc/mounts; pidof cuvette-agent.sh; grep MemTotal /proc/meminfo",
    ])
    expect(state.stdout.split("\n")[0]).toBe("0")
    const memKiB = Number(/MemTotal:\s+(\d+)/.exec(state.stdout)?.[1])
    expect(memKiB).toBeLessThan(256 * 1024)
    expect(vm.consoleText()).not.toContain("E2E_STANDIN_SHOULD_NOT_RUN")

    // Detached with every fd redirected: `run` returns at once although the child lives on.
    const detached = await Diag.run(
      diag,
      ["sh", "-c", "sleep 60 </dev/null >/dev/null 2>&1 & echo started"],
      {
        timeoutMs: 8_000,
      },
    )
    expect(detached).toMatchObject({ code: 0, stdout: "started\n", timedOut: false })
    expect(detached.elapsedMs).toBeLessThan(5_000)

    // Background child that inherits stdout: `run` must not return (this is what deploy must avoid).
    const hanging = await Diag.run(diag, ["sh", "-c", "sleep 7 & echo started"], { timeoutMs: 4_000 })
    expect(hanging.timedOut).toBe(true)
    expect(hanging.code).toBeNull()
    // Output is relayed live; only a trailing newline that could begin the end marker is held back.
    expect(hanging.stdout).toBe("started")

    // The shell serves the next request once the stray child has closed stdout; then power off via diag.
    const off = await Diag.run(diag, ["poweroff"], { timeoutMs: 15_000 })
    expect(off.timedOut).toBe(false)
    expect(await vm.exited).toBe(0)
    expect(vm.watchdogFired()).toBe(false)
    expect(vm.consoleText()).toMatch(/E2E POWEROFF reason=signal-usr2 /)
    console.log(
      `[e2e timing] vtl2: diag answered at ${readyAt} s; uname via diag ${uname.elapsedMs.toFixed(0)} ms; ` +
        `detached run ${detached.elapsedMs.toFixed(0)} ms; QEMU exited at ${since(vm)} s`,
    )
  })
})

if (env.skipReason !== undefined) {
  it.skip(`vtl2 diag shell: QEMU e2e cannot run here: ${env.skipReason}`, () => {})
}
