// A small command-line parser: long options (`--name V`, `--name=V`), short options (`-e V`, `-eV`,
// bundled flags `-rf`), repeatable options, `--` to end options, and usage errors that name the
// command and point at its `--help`. Hand-written so `cuvette` starts fast and depends on nothing.
import { UsageError } from "./errors.js"

/** One option of a command (or a global option). */
export interface OptionSpec {
  /** Long name, without the dashes. */
  readonly name: string
  /** One-letter alias, without the dash. */
  readonly short?: string
  /** A flag, a value, or a value that may be given several times. */
  readonly kind: "boolean" | "string" | "list"
  /** Placeholder shown in help ("D", "K=V"). */
  readonly value?: string
  readonly description: string
  /** An environment variable that supplies the value when the option is absent. */
  readonly env?: string
}

/** What the parser found. */
export interface Parsed {
  readonly options: Readonly<Record<string, string | boolean | ReadonlyArray<string>>>
  readonly positionals: ReadonlyArray<string>
  /** True when `--` was seen. */
  readonly dashDash: boolean
}

/** How to parse. */
export interface ParseContext {
  /** How the command is typed, for messages ("cuvette exec"). */
  readonly command: string
  /** Stop treating tokens as options at the first positional (exec: the rest is the guest's argv). */
  readonly stopAtPositional?: boolean
  /** Stop at the first positional and return it and everything after it untouched (the root command). */
  readonly leading?: boolean
}

/** Parses `argv` against `specs`. Throws {@link UsageError}. */
export const parse = (
  argv: ReadonlyArray<string>,
  specs: ReadonlyArray<OptionSpec>,
  ctx: ParseContext,
): Parsed & { readonly rest: ReadonlyArray<string> } => {
  const options: Record<string, string | boolean | Array<string>> = {}
  const positionals: Array<string> = []
  const byLong = new Map(specs.map((s) => [s.name, s]))
  const byShort = new Map(specs.filter((s) => s.short !== undefined).map((s) => [s.short!, s]))
  const help = `see \`${ctx.command} --help\``
  const unknown = (token: string): never => {
    // -t was the target before it became exec's --tty (as in ssh and docker): say where it went.
    const moved = token.startsWith("-t") && byShort.has("H") ? " (the target is -H or --target)" : ""
    throw new UsageError({ detail: `unknown option ${token} for \`${ctx.command}\`${moved}; ${help}` })
  }
  const set = (spec: OptionSpec, value: string | boolean, shown: string) => {
    if (spec.kind === "list") {
      const prev = options[spec.name]
      options[spec.name] = [...(Array.isArray(prev) ? prev : []), value as string]
    } else {
      if (spec.kind === "string" && options[spec.name] !== undefined && options[spec.name] !== value) {
        throw new UsageError({ detail: `${shown} given twice for \`${ctx.command}\`; ${help}` })
      }
      options[spec.name] = value
    }
  }
  let dashDash = false
  let i = 0
  for (; i < argv.length; i++) {
    const token = argv[i]
    if (token === "--") {
      dashDash = true
      if (ctx.leading) break
      positionals.push(...argv.slice(i + 1))
      i = argv.length
      break
    }
    if (token.startsWith("--")) {
      const eq = token.indexOf("=")
      const name = eq === -1 ? token.slice(2) : token.slice(2, eq)
      const spec = byLong.get(name) ?? unknown(`--${name}`)
      if (spec.kind === "boolean") {
        if (eq !== -1) {
          throw new UsageError({ detail: `--${name} takes no value for \`${ctx.command}\`; ${help}` })
        }
        set(spec, true, `--${name}`)
      } else if (eq !== -1) {
        set(spec, token.slice(eq + 1), `--${name}`)
      } else {
        if (i + 1 >= argv.length) {
          throw new UsageError({
            detail: `--${name} needs a value (${spec.value ?? "VALUE"}) for \`${ctx.command}\`; ${help}`,
          })
        }
        set(spec, argv[++i], `--${name}`)
      }
      continue
    }
    if (token.startsWith("-") && token.length > 1) {
      // Bundled short flags (-rf); a value-taking letter consumes the rest of the token or the next one.
      for (let j = 1; j < token.length; j++) {
        const letter = token[j]
        const spec = byShort.get(letter) ?? unknown(j === 1 ? token : `-${letter} (in ${token})`)
        if (spec.kind === "boolean") {
          set(spec, true, `-${letter}`)
          continue
        }
        const inline = token.slice(j + 1)
        if (inline.length > 0) set(spec, inline.startsWith("=") ? inline.slice(1) : inline, `-${letter}`)
        else if (i + 1 < argv.length) set(spec, argv[++i], `-${letter}`)
        else {
          throw new UsageError({
            detail: `-${letter} needs a value (${spec.value ?? "VALUE"}) for \`${ctx.command}\`; ${help}`,
          })
        }
        break
      }
      continue
    }
    if (ctx.leading) break
    positionals.push(token)
    if (ctx.stopAtPositional) {
      positionals.push(...argv.slice(i + 1))
      i = argv.length
      break
    }
  }
  return { options, positionals, dashDash, rest: argv.slice(i) }
}

/** A boolean option. */
export const flag = (p: Parsed, name: string): boolean => p.options[name] === true

/** Checks the number of positionals; `names` are shown in the message ("GUEST_PATH"). */
export const expectPositionals = (
  p: Parsed,
  command: string,
  names: ReadonlyArray<string>,
  optional = 0,
): ReadonlyArray<string> => {
  const min = names.length - optional
  if (p.positionals.length < min) {
    const missing = names.slice(p.positionals.length, min).join(" ")
    throw new UsageError({ detail: `missing ${missing} for \`${command}\`; see \`${command} --help\`` })
  }
  if (p.positionals.length > names.length) {
    const extra = p.positionals.slice(names.length).join(" ")
    throw new UsageError({
      detail: `unexpected argument ${extra} for \`${command}\`; see \`${command} --help\``,
    })
  }
  return p.positionals
}

/** Parses a duration: `500ms`, `10s`, `2m`, `1h`, `1.5s`; a bare number means seconds. Returns ms. */
export const parseDuration = (text: string, what: string): number => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (!m) {
    throw new UsageError({ detail: `${what}: "${text}" is not a duration (use e.g. 500ms, 10s, 2m, 1h)` })
  }
  const unit = m[2] ?? "s"
  const factor = unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000
  return Math.round(Number(m[1]) * factor)
}

/** Parses an octal file mode ("644", "0755", "0o600"). */
export const parseMode = (text: string, what: string): number => {
  const m = /^(?:0o?)?([0-7]{1,4})$/.exec(text)
  if (!m) throw new UsageError({ detail: `${what}: "${text}" is not an octal mode (use e.g. 644 or 0755)` })
  return parseInt(m[1], 8)
}
