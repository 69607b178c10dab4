// `cuvette ls [-l] PATH`: lists a guest directory as its entries stream in, so a directory of a million
// entries is listed with bounded memory; up to SORTED_MAX entries are sorted by name first.
import type { Entry } from "../internal/client.js"
import { define } from "../internal/command.js"
import * as Opt from "../internal/option.js"
import { pathJson } from "../internal/output.js"
import { ESCAPED_HELP, guestPathArg, shown } from "../internal/paths.js"
import * as ExitCode from "../ExitCode.js"

const typeChar: Record<Entry["type"], string> = { file: "-", directory: "d", symlink: "l", other: "?" }

/** `drwxr-xr-x` for a type and mode. */
export const modeString = (type: Entry["type"], mode: number): string => {
  const rwx = (bits: number) => `${bits & 4 ? "r" : "-"}${bits & 2 ? "w" : "-"}${bits & 1 ? "x" : "-"}`
  return `${typeChar[type]}${rwx((mode >> 6) & 7)}${rwx((mode >> 3) & 7)}${rwx(mode & 7)}`
}

const date = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace("T", " ")

/** Listings up to this many entries are sorted by name; longer ones print in the guest's order. */
export const SORTED_MAX = 10_000

/** By the names' bytes (a name that is not UTF-8 is bytes). */
const byName = (a: Entry, b: Entry) => Buffer.compare(nameBytes(a.name), nameBytes(b.name))
const nameBytes = (name: Entry["name"]) => (typeof name === "string" ? Buffer.from(name) : name)

/**
 * An entry as printed: a name that is not UTF-8 shown with `ls -b` escapes, and in --json also as
 * `nameBase64`, its exact bytes (the same for a symlink's target).
 */
const printable = (e: Entry) => ({
  ...e,
  ...pathJson("name", e.name),
  ...(e.target !== undefined ? pathJson("target", e.target) : {}),
})

/**
 * The entries to print: the first SORTED_MAX held back and sorted when that is all there is, else
 * the held ones and then the rest as they arrive.
 */
async function* ordered(entries: AsyncIterable<Entry>, onUnsorted: () => void): AsyncGenerator<Entry> {
  const held: Array<Entry> = []
  const it = entries[Symbol.asyncIterator]()
  try {
    for (let r = await it.next(); !r.done; r = await it.next()) {
      if (held.length < SORTED_MAX) {
        held.push(r.value)
        continue
      }
      onUnsorted()
      yield* held.splice(0)
      yield r.value
      for (r = await it.next(); !r.done; r = await it.next()) yield r.value
      return
    }
    yield* held.sort(byName)
  } finally {
    await it.return?.()
  }
}

export const command = define({
  name: "ls",
  summary: "list a guest directory",
  usage: "[-l] [PATH]",
  description:
    "Entries are sorted by name. A directory of more than 10,000 entries is printed in the order the\n" +
    "guest lists it, as it streams in, so memory stays bounded whatever its size. Symlinks show their\n" +
    "target with -l (name -> target). A name that is not UTF-8 is shown with ls -b escapes (caf\\351.txt),\n" +
    "and with --json also as nameBase64, its exact bytes.",
  options: {
    long: Opt.flag("long", "show type, mode, size, modification time and link targets", { short: "l" }),
    escaped: Opt.flag("escaped", ESCAPED_HELP, { short: "b" }),
  },
  args: ["PATH?"],
  needsAgent: true,
  streamsStdout: true,
  examples: ["cuvette -H unix:/tmp/agent.sock ls -l /etc"],
  run: async (ctx, { long, escaped }) => {
    const [arg] = ctx.args
    const path = guestPathArg(arg ?? "/", ctx.command, escaped)
    const agent = await ctx.connect()
    // Printing starts once the held entries are all in, so their widest size sets the column.
    let width = 1
    async function* measured() {
      for await (const e of agent.entries(path, { signal: ctx.signal })) {
        width = Math.max(width, String(e.size).length)
        yield e
      }
    }
    const line = (e: ReturnType<typeof printable>) => {
      if (!long) return `${e.name}${e.type === "directory" ? "/" : ""}`
      const name = e.target !== undefined ? `${e.name} -> ${e.target}` : e.name
      return `${modeString(e.type, e.mode)} ${String(e.size).padStart(width)} ${date(e.mtimeMs)} ${name}`
    }
    const entries = ordered(measured(), () =>
      ctx.out.note(`more than ${SORTED_MAX} entries in :${shown(path)}: printed in the guest's order`),
    )
    async function* printed() {
      for await (const e of entries) yield printable(e)
    }
    await ctx.attempt({ action: "list", path: shown(path) }, () =>
      ctx.out.resultStream({ target: ctx.target, ...pathJson("path", path) }, "entries", printed(), line),
    )
    return ExitCode.Ok
  },
})
