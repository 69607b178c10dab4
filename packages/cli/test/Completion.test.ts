// `cuvette completion bash|zsh|fish`: the printed script, loaded into the real shell, completes command
// names, options (own and global), option values and subcommands the way the definitions declare them.
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PassThrough } from "node:stream"
import { afterAll, describe, expect, it } from "vitest"
import * as Cli from "../src/Cli.js"

const has = (shell: string) => {
  try {
    execFileSync(shell, ["-c", "true"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}
if (process.env.CI && !(has("zsh") && has("fish"))) {
  throw new Error("CI must run the completion tests: install zsh and fish (scripts/setup-system.sh)")
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cuvette-completion-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/** The script `cuvette completion SHELL` prints, saved to a file. */
const scriptFile = async (shell: string): Promise<string> => {
  const stdout = new PassThrough()
  const chunks: Array<Buffer> = []
  stdout.on("data", (d: Buffer) => chunks.push(d))
  const stdin = new PassThrough()
  stdin.end()
  const code = await Cli.run(["completion", shell], {
    stdin,
    stdout,
    stderr: new PassThrough(),
    env: {},
    platform: "linux",
  })
  expect(code).toBe(0)
  const file = path.join(dir, `cuvette.${shell}`)
  fs.writeFileSync(file, Buffer.concat(chunks))
  return file
}

describe("shell completion", () => {
  it("bash: commands, options after a global option with its value, choices, subcommands", async () => {
    const file = await scriptFile("bash")
    const complete = (...words: Array<string>) =>
      execFileSync(
        "bash",
        [
          "-c",
          `source "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(( \${#COMP_WORDS[@]} - 1 )); _cuvette; echo "\${COMPREPLY[*]}"`,
          file,
          "cuvette",
          ...words,
        ],
        { encoding: "utf8" },
      ).trim()
    expect(complete("ex")).toBe("exec")
    expect(complete("-H", "unix:/x", "ex")).toBe("exec")
    expect(complete("exec", "--t").split(" ").sort()).toEqual([
      "--target",
      "--timeout",
      "--token-file",
      "--tty",
    ])
    expect(complete("deploy", "i")).toBe("image")
    expect(complete("deploy", "image", "--format", "")).toBe("raw vhd")
    expect(complete("completion", "")).toBe("bash zsh fish")
    expect(complete("kmsg", "-")).toContain("--follow")
    expect(complete("kmsg", "-")).not.toContain("--tty")
  })

  it.skipIf(!has("zsh"))(
    "zsh: Tab in a real interactive zsh (zpty) completes (zsh not installed)",
    async () => {
      const file = await scriptFile("zsh")
      // Types LINE and Tab into an interactive zsh with compinit and the script, then echoes the line.
      const driver = [
        "zmodload zsh/zpty",
        "zpty z 'zsh -f -i'",
        `zpty -w z 'PS1="> "; bindkey -e; autoload -U compinit; compinit -u -D; source ${file}'`,
        // zle takes typed-ahead keys in order: Tab completes before the keys that echo the line.
        "zpty -w -n z \"$1\"$'\\t'",
        "zpty -w -n z $'\\x01echo @\\x05\\n'",
        "local out all",
        "for i in {1..150}; do",
        "  while zpty -r -t z out; do all+=$out; done",
        "  [[ $all == *$'\\n'@* ]] && break",
        "  sleep 0.1",
        "done",
        "print -r -- $all",
        "zpty -d z",
      ].join("\n")
      const complete = (line: string) => {
        const out = execFileSync("zsh", ["-f", "-c", driver, "zsh", line], {
          encoding: "utf8",
          timeout: 20_000,
        })
        return /^@(.*?)\s*$/m.exec(out.replace(/\r/g, ""))?.[1]
      }
      expect(complete("cuvette compl")).toBe("cuvette completion")
      expect(complete("cuvette -H unix:/x exec --std")).toBe("cuvette -H unix:/x exec --stderr-to-stdout")
      expect(complete("cuvette deploy image --os wi")).toBe("cuvette deploy image --os windows")
    },
  )

  it.skipIf(!has("fish"))(
    "fish: complete -C lists what the definitions declare (fish not installed)",
    async () => {
      const file = await scriptFile("fish")
      const complete = (line: string) =>
        execFileSync("fish", ["-c", `source ${file}; complete -C ${JSON.stringify(line)}`], {
          encoding: "utf8",
        })
          .trim()
          .split("\n")
          .map((l) => l.split("\t")[0])
      expect(complete("cuvette ex")).toEqual(["exec"])
      expect(complete("cuvette -H unix:/x exec --t").sort()).toEqual([
        "--target",
        "--timeout",
        "--token-file",
        "--tty",
      ])
      expect(complete("cuvette deploy image --os ")).toEqual(["linux", "windows"])
      expect(complete("cuvette deploy ")).toEqual(["image", "vtl2"])
      expect(complete("cuvette completion ").sort()).toEqual(["bash", "fish", "zsh"])
    },
  )

  it("an unknown shell is a usage error", async () => {
    const stderr = new PassThrough()
    let err = ""
    stderr.on("data", (d: Buffer) => (err += d.toString()))
    const stdin = new PassThrough()
    stdin.end()
    const code = await Cli.run(["completion", "tcsh"], {
      stdin,
      stdout: new PassThrough(),
      stderr,
      env: {},
      platform: "linux",
    })
    expect(code).toBe(2)
    expect(err).toContain("use bash, zsh, fish")
  })
})
