// `cuvette completion bash|zsh|fish`: prints a shell completion script generated from the command
// definitions, so completions never drift from the options the commands take.
import { define, type Command, type Group } from "../internal/command.js"
import { script, shells, type Shell } from "../internal/completion.js"
import { UsageError } from "../internal/errors.js"
import { globalOptions } from "../internal/globalOptions.js"
import * as ExitCode from "../ExitCode.js"

/** The completion command for the commands `list` returns (the registry, which includes this one). */
export const makeCommand = (list: () => ReadonlyArray<Command | Group>): Command =>
  define({
    name: "completion",
    summary: "print a shell completion script: bash, zsh or fish",
    usage: "bash|zsh|fish",
    description:
      "bash: add `source <(cuvette completion bash)` to ~/.bashrc. zsh: `source <(cuvette completion zsh)` after\n" +
      "compinit in ~/.zshrc. fish: `cuvette completion fish > ~/.config/fish/completions/cuvette.fish`.",
    options: {},
    args: ["SHELL"],
    argWords: shells,
    needsAgent: false,
    examples: ["source <(cuvette completion bash)", "cuvette completion fish | source"],
    run: async (ctx) => {
      const [shell] = ctx.args
      if (!(shells as ReadonlyArray<string>).includes(shell)) {
        throw new UsageError({ detail: `no completion for \`${shell}\`: use ${shells.join(", ")}` })
      }
      ctx.io.stdout.write(script(shell as Shell, list(), globalOptions))
      return ExitCode.Ok
    },
  })
