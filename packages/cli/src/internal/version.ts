/** The CLI's version (kept in step with package.json by a test; a constant, so bundles and the compiled CLI need no JSON). */
export const CLI_VERSION = "0.1.0"
