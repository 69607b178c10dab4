// Shared vitest settings: resolve workspace packages to their TypeScript sources and write a JSON report
// per project so `npm test` can print one "N passed, N failed" line for the whole repo.
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const workspaceRoot = path.dirname(fileURLToPath(import.meta.url))

const conditions = ["@cuvette/source", "node", "import", "module", "default"]

export const defineProject = (
  dirname: string,
  overrides: { testTimeout?: number; fileParallelism?: boolean } = {},
) => {
  const projectRoot = path.relative(workspaceRoot, dirname)
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: conditions } },
    test: {
      include: ["test/**/*.test.ts"],
      testTimeout: overrides.testTimeout ?? 30_000,
      hookTimeout: 120_000,
      fileParallelism: overrides.fileParallelism ?? true,
      reporters: ["default", "json"],
      outputFile: { json: path.join(workspaceRoot, "reports", "test", `${projectRoot}.json`) },
    },
  })
}
