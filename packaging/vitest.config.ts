import { fileURLToPath } from "node:url"
import { defineProject } from "../vitest.shared.js"

// One file: packing and installing take most of a minute.
export default defineProject(fileURLToPath(new URL(".", import.meta.url)), {
  testTimeout: 180_000,
  fileParallelism: false, // both run Nx builds in this workspace
})
