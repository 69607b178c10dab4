// Copies a directory tree between two sides (host and guest, either way) as the source's listings
// stream in: a few files in flight at a time, no list of the tree ever built, so memory stays
// bounded for a directory of a million files. Directories are made writable for the copy and get
// their source mode once everything inside them is in (a 0500 directory can still be filled).
// Paths and names are text, or bytes for a name that is not UTF-8: each side joins them its own way.
import type * as Path from "@cuvette/protocol/Path"

/** A source entry, as a listing yields it. */
export interface Entry {
  readonly name: Path.Path
  readonly type: "file" | "directory" | "symlink" | "other"
  readonly size: number
  readonly mode: number
}

/** What a tree copy needs from its source and destination. */
export interface Sides {
  readonly entries: (dir: Path.Path) => AsyncIterable<Entry>
  readonly sourceJoin: (dir: Path.Path, name: Path.Path) => Path.Path
  /** Throws (naming the file) when the destination cannot have such a name. */
  readonly destinationJoin: (dir: Path.Path, name: Path.Path) => Path.Path
  /** Creates `dir` (and its parents), writable by us; an existing directory is fine. */
  readonly makeDirectory: (dir: Path.Path) => Promise<void>
  /** Sets a directory's permission bits exactly. */
  readonly setMode: (dir: Path.Path, mode: number) => Promise<void>
  /** Copies one file, reporting each new byte count through `onBytes`, with its permission bits. */
  readonly copyFile: (file: FileJob, onBytes: (n: number) => void) => Promise<void>
}

/** One file to copy. */
export interface FileJob {
  readonly from: Path.Path
  readonly to: Path.Path
  readonly size: number
  readonly mode: number
}

/** What a tree copy did. */
export interface Counts {
  files: number
  directories: number
  bytes: number
  /** Entries that are neither files nor directories (symlinks, devices): not copied. */
  skipped: number
}

/** Files copied at once: enough to hide each file's round trips, few enough to bound memory. */
export const CONCURRENCY = 8

/** Runs up to `limit` tasks at once; the first failure stops new ones and is rethrown. */
class Pool {
  private running = 0
  private wakers: Array<() => void> = []
  private failure: { readonly error: unknown } | undefined

  constructor(private readonly limit: number) {}

  /** Throws the first failure, if any. */
  check(): void {
    if (this.failure) throw this.failure.error
  }

  /** Waits for room, then starts `task`; `after` runs when it ends, however it ends. */
  async run(task: () => Promise<void>, after: () => void): Promise<void> {
    while (this.running >= this.limit) await new Promise<void>((r) => this.wakers.push(r))
    this.check()
    this.start(task, after)
  }

  /** Starts `task` at once (short work that must not wait behind the files). */
  start(task: () => Promise<void>, after: () => void): void {
    if (this.failure) return after()
    this.running++
    task()
      .catch((error: unknown) => void (this.failure ??= { error }))
      .finally(() => {
        this.running--
        after()
        for (const w of this.wakers.splice(0)) w()
      })
  }

  /** Waits until nothing runs, then throws the first failure, if any. */
  async drain(): Promise<void> {
    while (this.running > 0) await new Promise<void>((r) => this.wakers.push(r))
    this.check()
  }
}

/** A directory being copied: its mode is set once it was read to the end and nothing in it is pending. */
interface Pending {
  count: number
  read: boolean
  readonly done: () => void
}

const settle = (p: Pending) => {
  if (p.read && p.count === 0) p.done()
}

/** Copies the directory `from` (mode `mode`) to `to`. `onBytes` receives each new byte count. */
export const copyTree = async (
  sides: Sides,
  from: Path.Path,
  to: Path.Path,
  mode: number,
  onBytes: (n: number) => void,
  onSkip: (path: Path.Path) => void,
): Promise<Counts> => {
  const pool = new Pool(CONCURRENCY)
  const counts: Counts = { files: 0, directories: 0, bytes: 0, skipped: 0 }
  const copyDir = async (src: Path.Path, dst: Path.Path, dirMode: number, parent: Pending | undefined) => {
    await sides.makeDirectory(dst)
    counts.directories++
    if (parent) parent.count++
    const here: Pending = {
      count: 0,
      read: false,
      done: () =>
        pool.start(
          () => sides.setMode(dst, dirMode),
          () => {
            if (parent) {
              parent.count--
              settle(parent)
            }
          },
        ),
    }
    for await (const e of sides.entries(src)) {
      pool.check()
      const job = { from: sides.sourceJoin(src, e.name), to: sides.destinationJoin(dst, e.name) }
      if (e.type === "directory") await copyDir(job.from, job.to, e.mode & 0o777, here)
      else if (e.type === "file") {
        here.count++
        const file = { ...job, size: e.size, mode: e.mode & 0o777 }
        await pool.run(
          async () => {
            await sides.copyFile(file, (n) => {
              counts.bytes += n
              onBytes(n)
            })
            counts.files++
          },
          () => {
            here.count--
            settle(here)
          },
        )
      } else {
        counts.skipped++
        onSkip(job.from)
      }
    }
    here.read = true
    settle(here)
  }
  try {
    await copyDir(from, to, mode, undefined)
  } catch (error) {
    // Nothing is left running behind the caller's back.
    await pool.drain().catch(() => {})
    throw error
  }
  await pool.drain()
  return counts
}

/** The files and bytes under `dir`, read the same streaming way (for a progress bar's total). */
export const measure = async (
  sides: Pick<Sides, "entries" | "sourceJoin">,
  dir: Path.Path,
): Promise<number> => {
  let bytes = 0
  for await (const e of sides.entries(dir)) {
    if (e.type === "directory") bytes += await measure(sides, sides.sourceJoin(dir, e.name))
    else if (e.type === "file") bytes += e.size
  }
  return bytes
}
