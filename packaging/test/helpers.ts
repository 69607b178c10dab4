// What both packaging tests do as a user would: run commands in a user's environment, start an agent from
// a bin, and run the README's library example.
import { spawn, spawnSync, type ChildProcess } from "node:child_process"
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { expect } from "vitest"

export const repo = path.resolve(import.meta.dirname, "..", "..")

/** The environment of a user's shell: no npm/Nx run-script variables, no NODE_PATH, no repository on PATH. */
export const userEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env))
    if (!/^(npm_|NX_|NODE_PATH$|NODE_OPTIONS$|INIT_CWD$|VITEST)/.test(k) || k === "npm_config_cache")
      env[k] = v
  env.PATH = (process.env.PATH ?? "")
    .split(path.delimiter)
    .filter((dir) => dir !== "" && path.relative(repo, path.resolve(dir)).startsWith(".."))
    .join(path.delimiter)
  return env
}

/**
 * The environment for running the repo's own build (npm pack, npm run prepare): the user's, with the
 * full PATH (the build needs the repo's tools) and Nx quiet and local.
 */
export const buildEnv = (): NodeJS.ProcessEnv => ({
  ...userEnv(),
  PATH: process.env.PATH,
  NX_DAEMON: "false",
  NX_NO_CLOUD: "true",
  NX_TUI: "false",
})

export const run = (command: string, args: ReadonlyArray<string>, cwd: string, env = userEnv()) => {
  const r = spawnSync(command, args, { cwd, env, encoding: "utf8", timeout: 150_000 })
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", error: r.error }
}

/** Starts `bin --listen unix:socket` and resolves once it prints CUVETTE READY. */
export const startAgent = async (bin: string, socket: string, cwd: string): Promise<ChildProcess> => {
  const agent = spawn(bin, ["--listen", `unix:${socket}`], {
    cwd,
    env: userEnv(),
    stdio: ["ignore", "ignore", "pipe"],
  })
  let log = ""
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the agent did not start:\n${log}`)), 30_000)
    agent.stderr!.on("data", (c: Buffer) => {
      log += c.toString()
      if (log.includes("CUVETTE READY")) {
        clearTimeout(timer)
        resolve()
      }
    })
    agent.once("exit", (code) => reject(new Error(`the agent exited with ${code}:\n${log}`)))
  })
  return agent
}

/**
 * Runs README.md's library example ("From a library") with plain `node` in `cwd`, against the agent on
 * `socket`, uploading to `guestPath`; checks what it printed and the uploaded bytes.
 */
export const runLibraryExample = (cwd: string, socket: string, guestPath: string): void => {
  const readme = fs.readFileSync(path.join(repo, "README.md"), "utf8")
  const block = /From a library[^]*?```ts\n([^]*?)```/.exec(readme)?.[1]
  expect(block, "README.md has the library example").toBeDefined()
  expect(block).toContain('"unix:/tmp/cuvette.sock"')
  expect(block).toContain('"/tmp/payload.bin"')
  // Only the two paths change (this test's socket and a guest path of its own), and a line shows the result.
  const example =
    block!
      .replace('"unix:/tmp/cuvette.sock"', JSON.stringify(`unix:${socket}`))
      .replace('"/tmp/payload.bin"', JSON.stringify(guestPath)) +
    "console.log(JSON.stringify({ exitCode, stdout: new TextDecoder().decode(stdout) }))\n"
  const data = randomBytes(3 * 1024 * 1024 + 17)
  fs.writeFileSync(path.join(cwd, "payload.bin"), data)
  fs.rmSync(guestPath, { force: true })
  try {
    // -e: imports resolve from `cwd`, as they would for a script there.
    const r = run(process.execPath, ["--input-type=module", "-e", example], cwd)
    expect(r.stderr).toBe("")
    expect(r.status).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({ exitCode: 0, stdout: `${os.release()}\n` })
    const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex")
    expect(sha256(fs.readFileSync(guestPath)), "uploaded bytes").toBe(sha256(data))
  } finally {
    fs.rmSync(path.join(cwd, "payload.bin"), { force: true })
    fs.rmSync(guestPath, { force: true })
  }
}
