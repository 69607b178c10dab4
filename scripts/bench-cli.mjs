/**
 * The CLI's data paths as a user runs them, whole process each (start, connect, transfer, exit): `write <
 * file` (stdin), `read > file` (stdout), `cp host :guest`, `cp :guest host` and `exec -- cat FILE > file`,
 * every one's output checked for size. The host and the "guest" are the same machine (a local agent), so
 * stdin and stdout are real files, as with a shell redirection.
 */
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

/** The paths measured: each gives the argv after `cuvette -H TARGET`, and where stdin/stdout go. */
const paths = (src, dir) => {
  const guest = path.join(dir, "cli-guest.bin")
  const host = path.join(dir, "cli-host.bin")
  return [
    {
      key: "writeStdin",
      label: "CLI `write < file` (stdin)",
      args: ["write", guest],
      stdin: src,
      check: guest,
    },
    {
      key: "readStdout",
      label: "CLI `read > file` (stdout)",
      args: ["read", src],
      stdout: host,
      check: host,
    },
    { key: "cpUp", label: "CLI `cp host :guest`", args: ["cp", src, `:${guest}`], check: guest },
    { key: "cpDown", label: "CLI `cp :guest host`", args: ["cp", `:${src}`, host], check: host },
    {
      key: "execCat",
      label: "CLI `exec -- cat FILE > file` (stdout)",
      args: ["exec", "--", "cat", src],
      stdout: host,
      check: host,
    },
  ]
}

/** Wall time in ms of one whole CLI process; stdin/stdout opened on files as a shell would. */
const runOnce = (argv, { stdin, stdout }) =>
  new Promise((resolve, reject) => {
    const inFd = stdin ? fs.openSync(stdin, "r") : "ignore"
    const outFd = stdout ? fs.openSync(stdout, "w") : "ignore"
    const t0 = performance.now()
    const child = spawn(argv[0], argv.slice(1), { stdio: [inFd, outFd, "pipe"] })
    let err = ""
    child.stderr.on("data", (d) => (err += d))
    child.once("error", reject)
    child.once("close", (code) => {
      const ms = performance.now() - t0
      for (const fd of [inFd, outFd]) if (typeof fd === "number") fs.closeSync(fd)
      if (code !== 0) reject(new Error(`${argv.join(" ")} exited ${code}: ${err}`))
      else resolve(ms)
    })
  })

/**
 * MiB/s of each path for each CLI (`clis`: name -> argv prefix), moving the `bytes`-byte file `src` through the
 * agent at `target`; `{ [cli]: { [path key]: { label, ms, miBs } } }`.
 */
export const measure = async (clis, target, src, bytes, dir, log = () => {}) => {
  const out = {}
  for (const [name, prefix] of Object.entries(clis)) {
    out[name] = {}
    for (const p of paths(src, dir)) {
      log(`${name}: ${p.args.join(" ")}`)
      const ms = await runOnce([...prefix, "-H", target, ...p.args], p)
      const got = fs.statSync(p.check).size
      if (got !== bytes) throw new Error(`${name} ${p.args.join(" ")}: ${got} of ${bytes} bytes`)
      fs.rmSync(p.check)
      out[name][p.key] = { label: p.label, ms, miBs: bytes / 2 ** 20 / (ms / 1000) }
    }
  }
  return out
}

/** The path keys and labels, in table order. */
export const rows = paths("SRC", "DIR").map(({ key, label }) => ({ key, label }))
