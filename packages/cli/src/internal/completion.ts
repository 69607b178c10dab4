// Shell completion scripts for bash, zsh and fish, generated from the typed command definitions: the
// command names, each command's options (its own and the global ones), the values of choice options,
// file names where an option or argument takes a host path. Each script finds the command being typed
// the same way: the first words that are not options, skipping the value after an option that takes one.
import type { Command, Group } from "./command.js"
import type { Option, OptionSet } from "./option.js"

/** The shells `cuvette completion` writes a script for. */
export const shells = ["bash", "zsh", "fish"] as const
export type Shell = (typeof shells)[number]

interface Flag {
  readonly long: string
  readonly short: string | undefined
  readonly description: string
  readonly takesValue: boolean
  /** What the value is: host file names, one of a few words, or anything (undefined). */
  readonly values: "files" | ReadonlyArray<string> | undefined
}

/** One place on the command line: the root, a command ("exec"), a group or a subcommand ("deploy image"). */
interface Place {
  readonly path: string
  readonly flags: ReadonlyArray<Flag>
  /** Words for the next argument (command names, subcommands, an argument's choices), with a description. */
  readonly words: ReadonlyArray<readonly [word: string, description: string]>
  /** The arguments are host paths (or the guest's argv): complete file names. */
  readonly files: boolean
}

// Placeholders that name a host path.
const fileValues = new Set(["FILE", "F", "PATH"])

const flagOf = (o: Option<unknown>): Flag => ({
  long: o.name,
  short: o.short,
  description: o.description,
  takesValue: o.kind !== "boolean",
  values:
    o.choices !== undefined
      ? o.choices
      : o.value !== undefined && fileValues.has(o.value)
        ? "files"
        : undefined,
})

const flagsOf = (own: OptionSet, globals: OptionSet): Array<Flag> => {
  const mine = Object.values(own)
  const names = new Set(mine.map((o) => o.name))
  return [...mine, ...Object.values(globals).filter((g) => !names.has(g.name))].map(flagOf)
}

const placesOf = (commands: ReadonlyArray<Command | Group>, globals: OptionSet): Array<Place> => {
  const commandPlace = (path: string, c: Command): Place => ({
    path,
    flags: flagsOf(c.options, globals),
    words: (c.argWords ?? []).map((w) => [w, ""] as const),
    files: c.argWords === undefined && (c.args === "argv" || c.args.length > 0),
  })
  return [
    {
      path: "",
      flags: flagsOf({}, globals),
      words: commands.map((c) => [c.name, c.summary] as const),
      files: false,
    },
    ...commands.flatMap(
      (c): Array<Place> =>
        "subcommands" in c
          ? [
              {
                path: c.name,
                flags: flagsOf({}, globals),
                words: c.subcommands.map((s) => [s.name, s.summary] as const),
                files: false,
              },
              ...c.subcommands.map((s) => commandPlace(`${c.name} ${s.name}`, s)),
            ]
          : [commandPlace(c.name, c)],
    ),
  ]
}

const spellings = (f: Flag): Array<string> => [
  `--${f.long}`,
  ...(f.short !== undefined ? [`-${f.short}`] : []),
]

/** Every option that takes a value, anywhere: the word after it is its value, not a command. */
const valued = (places: ReadonlyArray<Place>): Array<string> => [
  ...new Set(places.flatMap((p) => p.flags.filter((f) => f.takesValue).flatMap(spellings))),
]

/** The distinct value-taking options with what their values are. */
const valueKinds = (places: ReadonlyArray<Place>): Array<Flag> => {
  const seen = new Map<string, Flag>()
  for (const p of places) for (const f of p.flags) if (f.takesValue && !seen.has(f.long)) seen.set(f.long, f)
  return [...seen.values()]
}

const groupNames = (commands: ReadonlyArray<Command | Group>): Array<string> =>
  commands.filter((c): c is Group => "subcommands" in c).map((c) => c.name)

/** A word quoted for bash and zsh. */
const sq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`
/** A word quoted for fish. */
const fq = (s: string): string => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`

const bash = (commands: ReadonlyArray<Command | Group>, places: ReadonlyArray<Place>): string => {
  const groups = groupNames(commands)
  const kinds = valueKinds(places)
  const choiceCases = kinds
    .filter((f) => Array.isArray(f.values))
    .map(
      (f) =>
        `    ${spellings(f).join("|")}) COMPREPLY=($(compgen -W ${sq((f.values as ReadonlyArray<string>).join(" "))} -- "$cur")); return 0 ;;`,
    )
  const fileFlags = kinds.filter((f) => f.values === "files").flatMap(spellings)
  const otherFlags = kinds.filter((f) => f.values === undefined).flatMap(spellings)
  return [
    "# bash completion for cuvette (generated from its command definitions): source <(cuvette completion bash)",
    "_cuvette() {",
    "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} place= w i",
    "  for ((i = 1; i < COMP_CWORD; i++)); do",
    "    w=${COMP_WORDS[i]}",
    "    case $w in",
    "      --) return 0 ;;",
    `      ${valued(places).join("|")}) ((i++)) ;;`,
    "      -*) ;;",
    "      *)",
    "        if [[ -z $place ]]; then place=$w",
    ...groups.map((g) => `        elif [[ $place == ${g} ]]; then place="${g} $w"`),
    "        fi ;;",
    "    esac",
    "  done",
    "  case $prev in",
    ...choiceCases,
    ...(fileFlags.length > 0
      ? [`    ${fileFlags.join("|")}) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;`]
      : []),
    ...(otherFlags.length > 0 ? [`    ${otherFlags.join("|")}) return 0 ;;`] : []),
    "  esac",
    "  local opts= words= files=",
    "  case $place in",
    ...places.map(
      (p) =>
        `    ${sq(p.path)}) opts=${sq(p.flags.flatMap(spellings).join(" "))}; words=${sq(p.words.map(([w]) => w).join(" "))}; files=${p.files ? 1 : ""} ;;`,
    ),
    "    *) return 0 ;;",
    "  esac",
    '  if [[ $cur == -* || ( -z $words && -z $files ) ]]; then COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
    '  elif [[ -n $words ]]; then COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    "  fi",
    "}",
    "complete -o default -F _cuvette cuvette",
    "",
  ].join("\n")
}

const zsh = (commands: ReadonlyArray<Command | Group>, places: ReadonlyArray<Place>): string => {
  const groups = groupNames(commands)
  const kinds = valueKinds(places)
  const described = (f: Flag) => spellings(f).map((s) => sq(`${s}:${f.description}`))
  return [
    "#compdef cuvette",
    "# zsh completion for cuvette (generated from its command definitions): source <(cuvette completion zsh)",
    "_cuvette() {",
    "  local place= w i cur=${words[CURRENT]} prev=${words[CURRENT-1]} files=",
    "  local -a opts args",
    "  for (( i = 2; i < CURRENT; i++ )); do",
    "    w=${words[i]}",
    "    case $w in",
    "      (--) _files; return ;;",
    `      (${valued(places).join("|")}) (( i++ )) ;;`,
    "      (-*) ;;",
    "      (*)",
    "        if [[ -z $place ]]; then place=$w",
    ...groups.map((g) => `        elif [[ $place == ${g} ]]; then place="${g} $w"`),
    "        fi ;;",
    "    esac",
    "  done",
    "  case $prev in",
    ...kinds.map((f) => {
      const action = Array.isArray(f.values)
        ? `compadd -- ${(f.values as ReadonlyArray<string>).join(" ")}`
        : f.values === "files"
          ? "_files"
          : ":"
      return `    (${spellings(f).join("|")}) ${action}; return ;;`
    }),
    "  esac",
    "  case $place in",
    ...places.map((p) =>
      [
        `    (${sq(p.path)})`,
        `      opts=(${p.flags.flatMap(described).join(" ")})`,
        `      args=(${p.words.map(([w, d]) => sq(d.length > 0 ? `${w}:${d}` : w)).join(" ")})`,
        `      files=${p.files ? 1 : ""} ;;`,
      ].join("\n"),
    ),
    "    (*) return 1 ;;",
    "  esac",
    "  if [[ $cur == -* || ( $#args -eq 0 && -z $files ) ]]; then _describe -t options option opts",
    "  elif (( $#args )); then _describe -t arguments argument args",
    "  else _files",
    "  fi",
    "}",
    "(( $+functions[compdef] )) && compdef _cuvette cuvette",
    "",
  ].join("\n")
}

const fish = (commands: ReadonlyArray<Command | Group>, places: ReadonlyArray<Place>): string => {
  const groups = groupNames(commands)
  const line = (place: string, rest: string) =>
    `complete -c cuvette -n ${fq(`__cuvette_at '${place}'`)} ${rest}`
  return [
    "# fish completion for cuvette (generated from its command definitions): cuvette completion fish | source",
    "function __cuvette_place",
    "    set -l place",
    "    set -l skip 0",
    "    for w in (commandline -opc)[2..-1]",
    "        if test $skip = 1",
    "            set skip 0",
    "            continue",
    "        end",
    "        switch $w",
    "            case --",
    "                echo -- --",
    "                return",
    `            case ${valued(places).join(" ")}`,
    "                set skip 1",
    "            case '-*'",
    "            case '*'",
    '                if test -z "$place"',
    "                    set place $w",
    ...groups.flatMap((g) => [
      `                else if test "$place" = ${g}`,
      `                    set place "${g} $w"`,
    ]),
    "                end",
    "        end",
    "    end",
    '    echo -- "$place"',
    "end",
    "function __cuvette_at",
    "    set -l place (__cuvette_place)",
    '    test "$place" = "$argv[1]"',
    "end",
    "complete -c cuvette -f",
    line("--", "-F"),
    ...places.flatMap((p) => [
      ...p.flags.map((f) => {
        const names = `${f.short !== undefined ? `-s ${f.short} ` : ""}-l ${f.long}`
        const value = !f.takesValue
          ? ""
          : Array.isArray(f.values)
            ? ` -x -a ${fq((f.values as ReadonlyArray<string>).join(" "))}`
            : f.values === "files"
              ? " -r -F"
              : " -x"
        return line(p.path, `${names}${value} -d ${fq(f.description)}`)
      }),
      ...p.words.map(([w, d]) => line(p.path, `-a ${fq(w)}${d.length > 0 ? ` -d ${fq(d)}` : ""}`)),
      ...(p.files ? [line(p.path, "-F")] : []),
    ]),
    "",
  ].join("\n")
}

/** The completion script for `shell`. */
export const script = (
  shell: Shell,
  commands: ReadonlyArray<Command | Group>,
  globals: OptionSet,
): string => {
  const places = placesOf(commands, globals)
  return shell === "bash"
    ? bash(commands, places)
    : shell === "zsh"
      ? zsh(commands, places)
      : fish(commands, places)
}
