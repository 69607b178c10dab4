// The console bridge's page in a real browser (headless Chromium over the DevTools protocol): a console (a
// shell on a pty behind a Unix socket, as socat serves one) takes a typed command and the page shows its
// result; an agent shell (agent on Bun) shows `stty size` following the window, and its exit code.
// Screenshots go to reports/console-bridge-*.png.
import { spawn, type ChildProcess } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Browser, chromiumBin, launch, type Page } from "./fixtures/chromium.js"
import { type AgentHandle, bunBin, startAgent } from "./fixtures/harness.js"
import { startBridge } from "./fixtures/bridge.js"

const reports = fileURLToPath(new URL("../../../reports/", import.meta.url))
const socat = ["/usr/bin/socat", "/bin/socat"].find((p) => fs.existsSync(p))
const missing = [
  chromiumBin === undefined ? "chromium (scripts/setup-system.sh installs it)" : undefined,
  socat === undefined ? "socat" : undefined,
  !fs.existsSync(bunBin) ? "the workspace's Bun" : undefined,
].filter((m) => m !== undefined)
if (missing.length > 0 && process.env.CI)
  throw new Error(`CI must run the browser test: missing ${missing.join(", ")}`)

const screen = (page: Page) => page.evaluate<string>("window.cuvetteScreen().join('\\n')")
const statusLine = (page: Page) => page.evaluate<string>("document.getElementById('status').textContent")

describe.skipIf(missing.length > 0)(
  `console bridge in headless Chromium${missing.length > 0 ? ` (skipped: no ${missing.join(", ")})` : ""}`,
  { timeout: 90_000 },
  () => {
    let agent: AgentHandle
    let console_: ChildProcess
    let bridge: Awaited<ReturnType<typeof startBridge>>
    let browser: Browser
    let page: Page
    beforeAll(async () => {
      agent = await startAgent({ runtime: "bun" })
      const sock = path.join(agent.dir, "serial.sock")
      // A serial console with a shell on it: a pty behind a Unix socket, one shell per connection.
      console_ = spawn(socat!, [`UNIX-LISTEN:${sock},fork`, "EXEC:/bin/sh -i,pty,stderr,setsid,ctty,sane"], {
        stdio: "ignore",
        env: { ...process.env, PS1: "serial$ " },
      })
      const end = Date.now() + 10_000
      while (!fs.existsSync(sock) && Date.now() < end) await new Promise((r) => setTimeout(r, 50))
      bridge = await startBridge([
        "--name",
        `vm=${sock}`,
        "--name",
        `down=${path.join(agent.dir, "no-vm.sock")}`,
        "--shell",
        `agent=${agent.target}`,
      ])
      browser = await launch()
      page = await browser.open(bridge.url)
      await page.waitFor("document.querySelectorAll('nav button').length === 3")
    }, 90_000)
    afterAll(async () => {
      await browser?.close()
      await bridge?.stop()
      console_?.kill("SIGKILL")
      await agent?.stop()
    })

    it("lists the consoles; a command typed into the console shows its result on the page", async () => {
      const names = await page.evaluate<Array<string>>(
        "[...document.querySelectorAll('nav button')].map((b) => b.dataset.kind + ':' + b.dataset.name)",
      )
      expect(names).toEqual(["consoles:vm", "consoles:down", "shell:agent"])
      await page.evaluate("document.querySelector('button[data-name=\"vm\"]').click()")
      await page.waitFor("document.getElementById('status').textContent.endsWith('connected')")
      // A fresh prompt answers Enter: the shell is reading what the page types.
      await page.type("\r")
      await page.waitFor("window.cuvetteScreen().filter((l) => l.startsWith('serial$')).length >= 2")
      await page.type("echo $((6*7))-from-the-browser\r")
      await page.waitFor("window.cuvetteScreen().some((l) => l === '42-from-the-browser')")
      expect((await screen(page)).split("\n")).toContain("42-from-the-browser")
      await page.screenshot(path.join(reports, "console-bridge-console.png"))
    })

    it("an agent shell: stty size follows the window, and the page shows the exit code", async () => {
      await page.evaluate("document.querySelector('button[data-name=\"agent\"]').click()")
      await page.waitFor("document.getElementById('status').textContent === 'shell agent: connected'")
      const size = async () => {
        const [rows, cols] = await page.evaluate<[number, number]>(
          "[window.cuvetteTerminal.rows, window.cuvetteTerminal.cols]",
        )
        return `${rows} ${cols}`
      }
      const first = await size()
      await page.type("stty size\r")
      await page.waitFor(`window.cuvetteScreen().includes(${JSON.stringify(first)})`)
      await page.resize(640, 360)
      await page.waitFor(
        `(window.cuvetteTerminal.rows + ' ' + window.cuvetteTerminal.cols) !== ${JSON.stringify(first)}`,
      )
      const second = await size()
      await page.type("clear; stty size\r")
      await page.waitFor(`window.cuvetteScreen().includes(${JSON.stringify(second)})`)
      expect(second).not.toBe(first)
      await page.screenshot(path.join(reports, "console-bridge-shell.png"))
      await page.type("exit 5\r")
      await page.waitFor("document.getElementById('status').textContent.includes('exited with code 5')")
      expect(await statusLine(page)).toBe("shell agent: exited with code 5")
      await page.screenshot(path.join(reports, "console-bridge-shell-exit.png"))
    })

    it("a console that cannot be opened: the page says so, the bridge's output says why", async () => {
      await page.evaluate("document.querySelector('button[data-name=\"down\"]').click()")
      await page.waitFor("document.getElementById('status').textContent.includes('could not attach')")
      expect(await statusLine(page)).toBe(
        "console down: could not attach: it could not be opened (the bridge's output says why)",
      )
      expect(bridge.stderr()).toMatch(/console down \(.*no-vm\.sock\): nothing is listening on/)
    })
  },
)
