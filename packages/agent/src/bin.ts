/**
 * `cuvette-agent` entry point (and the `bun build --compile` entry). The only place that exits the
 * process.
 */
// A serial port keeps a libuv thread blocked in read(); give file operations room. Must be set
// before the thread pool first starts (bin/cuvette-agent.mjs also sets it before loading tsx).
process.env.UV_THREADPOOL_SIZE ??= "16"

const { run } = await import("./Main.js")
process.exit(await run(process.argv.slice(2)))
