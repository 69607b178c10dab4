// Scripts that import the workspace's TypeScript sources re-run themselves once under tsx with the
// `@cuvette/source` condition; call this first, before any such import.
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

/** In the parent: runs `scriptUrl` as the child and exits with its status. In the child: returns. */
export const runFromSources = (scriptUrl) => {
  if (process.env.CUVETTE_SCRIPT_CHILD) return
  const r = spawnSync(
    process.execPath,
    ["--conditions=@cuvette/source", "--import", "tsx", fileURLToPath(scriptUrl), ...process.argv.slice(2)],
    { stdio: "inherit", env: { ...process.env, CUVETTE_SCRIPT_CHILD: "1" } },
  )
  process.exit(r.status ?? 1)
}
