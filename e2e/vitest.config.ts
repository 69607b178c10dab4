import { fileURLToPath } from "node:url"
import { defineProject } from "../vitest.shared.js"

// VMs are heavy: one test file at a time, each booting at most two VMs.
export default defineProject(fileURLToPath(new URL(".", import.meta.url)), {
  testTimeout: 300_000,
  fileParallelism: false,
})
