import { fileURLToPath } from "node:url"
import { mergeConfig } from "vitest/config"
import { defineProject } from "../vitest.shared.js"

// globalSetup builds the addon once (offline, ~5 s) when it is missing, before any test file loads it.
export default mergeConfig(defineProject(fileURLToPath(new URL(".", import.meta.url))), {
  test: { globalSetup: ["test/globalSetup.ts"] },
})
