// ESLint flat config: typescript-eslint recommended, plus the protocol package's "no I/O" rule.
import js from "@eslint/js"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["**/node_modules/**", "**/dist/**", "**/build/**", ".nx/**", "reports/**", ".cache/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: "readonly",
        console: "readonly",
        Buffer: "readonly",
        setTimeout: "readonly",
        clearTimeout: "readonly",
        setInterval: "readonly",
        clearInterval: "readonly",
        setImmediate: "readonly",
        URL: "readonly",
        TextEncoder: "readonly",
        TextDecoder: "readonly",
        crypto: "readonly",
        queueMicrotask: "readonly",
        performance: "readonly",
      },
    },
    rules: {
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
      "@typescript-eslint/no-namespace": "off",
      "no-constant-condition": ["error", { checkLoops: false }],
    },
  },
  {
    files: ["packages/protocol/src/**/*.ts"],
    // node/: the Node-only helpers the agent and the client share, never imported by the protocol itself.
    ignores: ["packages/protocol/src/node/**"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: [
                "node:*",
                "bun",
                "bun:*",
                "fs",
                "net",
                "os",
                "child_process",
                "@effect/platform-node",
                "@effect/platform-bun",
              ],
              message: "@cuvette/protocol has no I/O: it works on an abstract byte stream.",
            },
            {
              group: ["./node/*", "../node/*"],
              message: "node/ is for the agent and the client; the protocol itself does no I/O.",
            },
          ],
        },
      ],
    },
  },
)
