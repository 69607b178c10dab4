import { fileURLToPath } from "node:url"
import { defineProject } from "../vitest.shared.js"

export default defineProject(fileURLToPath(new URL(".", import.meta.url)))
