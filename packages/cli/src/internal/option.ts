// Typed option declarations: each option is declared once (long name, short letter, kind, placeholder,
// default, description, environment variable) together with how its text becomes the typed value its
// command's handler receives. The parser (args.ts) reads the spec part; `decode` does the rest.
import type { OptionSpec, Parsed } from "./args.js"
import { parseDuration, parseMode } from "./args.js"
import { UsageError } from "./errors.js"

type Raw = string | boolean | ReadonlyArray<string> | undefined

/** An option whose handler value has type `A`. */
export interface Option<A> extends OptionSpec {
  /** The default, as help shows it ("linux"), when the option has one. */
  readonly defaultText?: string
  /** Turns what the parser found (undefined when absent) into the handler's value; throws UsageError. */
  readonly decode: (raw: Raw) => A
}

/** A command's options by the key its handler reads them under. */
export type OptionSet = Readonly<Record<string, Option<unknown>>>

/** The typed values of an option set. */
export type Values<O extends OptionSet> = {
  readonly [K in keyof O]: O[K] extends Option<infer A> ? A : never
}

interface Extra {
  readonly short?: string
  readonly env?: string
}

const spec = (name: string, kind: OptionSpec["kind"], description: string, extra: Extra, value?: string) => ({
  name,
  kind,
  description,
  ...(value !== undefined ? { value } : {}),
  ...(extra.short !== undefined ? { short: extra.short } : {}),
  ...(extra.env !== undefined ? { env: extra.env } : {}),
})

const textOf = (raw: Raw): string | undefined => (typeof raw === "string" ? raw : undefined)

/** A flag: true when given. */
export const flag = (name: string, description: string, extra: Extra = {}): Option<boolean> => ({
  ...spec(name, "boolean", description, extra),
  decode: (raw) => raw === true,
})

/** A value, if given (or its default). */
export function text(
  name: string,
  value: string,
  description: string,
  extra?: Extra,
): Option<string | undefined>
export function text(
  name: string,
  value: string,
  description: string,
  extra: Extra & { readonly default: string },
): Option<string>
export function text(
  name: string,
  value: string,
  description: string,
  extra: Extra & { readonly default?: string } = {},
): Option<string | undefined> {
  return {
    ...spec(name, "string", description, extra, value),
    ...(extra.default !== undefined ? { defaultText: extra.default } : {}),
    decode: (raw) => textOf(raw) ?? extra.default,
  }
}

/** One of a fixed set of words. */
export const choice = <const C extends string>(
  name: string,
  choices: ReadonlyArray<C>,
  description: string,
  extra: Extra & { readonly hint?: string } = {},
): Option<C | undefined> => ({
  ...spec(name, "string", description, extra, choices.join("|")),
  decode: (raw) => {
    const t = textOf(raw)
    if (t === undefined) return undefined
    if (!(choices as ReadonlyArray<string>).includes(t)) {
      throw new UsageError({
        detail: `--${name} ${t}: use ${choices.join(" or ")}${extra.hint !== undefined ? ` ${extra.hint}` : ""}`,
      })
    }
    return t as C
  },
})

/** A value that may be given several times (empty when absent). */
export const list = (
  name: string,
  value: string,
  description: string,
  extra: Extra = {},
): Option<ReadonlyArray<string>> => ({
  ...spec(name, "list", description, extra, value),
  decode: (raw) => (Array.isArray(raw) ? raw : typeof raw === "string" ? [raw] : []),
})

/** A duration (500ms, 10s, 2m), in milliseconds. */
export const duration = (name: string, value: string, description: string): Option<number | undefined> => ({
  ...spec(name, "string", description, {}, value),
  decode: (raw) => {
    const t = textOf(raw)
    return t !== undefined ? parseDuration(t, `--${name}`) : undefined
  },
})

/** Octal permission bits (644, 0755). */
export const mode = (name: string, value: string, description: string): Option<number | undefined> => ({
  ...spec(name, "string", description, {}, value),
  decode: (raw) => {
    const t = textOf(raw)
    return t !== undefined ? parseMode(t, `--${name}`) : undefined
  },
})

/** Decodes every option of `set` from `parsed`; an absent option with an `env` reads that variable. */
export const decodeAll = <O extends OptionSet>(
  set: O,
  parsed: Parsed,
  env: Readonly<Record<string, string | undefined>>,
): Values<O> => {
  const values: Record<string, unknown> = {}
  for (const [key, option] of Object.entries(set)) {
    const fromEnv = option.env !== undefined && env[option.env] !== "" ? env[option.env] : undefined
    values[key] = option.decode(parsed.options[option.name] ?? fromEnv)
  }
  return values as Values<O>
}
