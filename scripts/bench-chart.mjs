/**
 * docs/benchmarks.svg and docs/benchmarks-vm.svg from the benchmarks' JSON: one bar per data path, its throughput drawn over a track as
 * long as its ceiling (the kernel's socketpair copy on this machine; the raw copy over the same port in the VM),
 * with the ratio written beside. Plain SVG text, no dependency. `npm run bench` rewrites the first from
 * reports/bench/bench.json, `npm run bench:vm` the second from reports/bench/vm.json;
 * `node scripts/bench-chart.mjs` redraws both from whichever reports exist.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
export const reportDir = path.join(root, "reports", "bench")

const escape = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1))

const WIDTH = 860
const LABEL = 300
const TRACK = 400
const BAR = 16
const GAP = 8

/** One panel: `bars` of `{ label, miBs, ceilingMiBs, ceiling }`, scaled to the panel's largest ceiling. */
const panel = (title, subtitle, bars, y0) => {
  const max = Math.max(...bars.map((b) => b.ceilingMiBs))
  const x = (v) => LABEL + (v / max) * TRACK
  const out = [
    `<text x="10" y="${y0 + 16}" class="title">${escape(title)}</text>`,
    `<text x="10" y="${y0 + 32}" class="sub">${escape(subtitle)}</text>`,
  ]
  let y = y0 + 44
  for (const b of bars) {
    const ratio = b.miBs / b.ceilingMiBs
    out.push(
      `<text x="${LABEL - 8}" y="${y + BAR - 4}" class="label" text-anchor="end">${escape(b.label)}</text>`,
      `<rect x="${LABEL}" y="${y}" width="${(x(b.ceilingMiBs) - LABEL).toFixed(1)}" height="${BAR}" class="track"><title>${escape(`${b.ceiling}: ${fmt(b.ceilingMiBs)} MiB/s`)}</title></rect>`,
      `<rect x="${LABEL}" y="${y}" width="${Math.max(1, x(b.miBs) - LABEL).toFixed(1)}" height="${BAR}" class="bar"><title>${escape(`${b.label}: ${fmt(b.miBs)} MiB/s`)}</title></rect>`,
      ...(b.targetMiBs === undefined
        ? []
        : [
            `<line x1="${x(b.targetMiBs).toFixed(1)}" x2="${x(b.targetMiBs).toFixed(1)}" y1="${y - 2}" y2="${y + BAR + 2}" class="target"><title>target: ${fmt(b.targetMiBs)} MiB/s</title></line>`,
          ]),
      `<text x="${(x(b.ceilingMiBs) + 6).toFixed(1)}" y="${y + BAR - 4}" class="value">${fmt(b.miBs)} MiB/s · ${ratio.toFixed(2)}× ${escape(b.ceiling)}</text>`,
    )
    y += BAR + GAP
  }
  return { svg: out, height: y - y0 + 10 }
}

/** The bars of the local benchmark (bench.json): every throughput row against the kernel's ceiling. */
export const localBars = (report) =>
  report.rows
    .filter((r) => r.unit === "MiB/s" && r.kernel !== undefined)
    .map((r) => ({
      label: r.chartLabel ?? r.path,
      miBs: r.cuvette,
      ceilingMiBs: r.kernel,
      ceiling: "kernel",
      targetMiBs: r.targetMiBs,
    }))

/** The bars of the VM benchmark (vm.json): each direction against the raw copy over the same port. */
export const vmBars = (report) =>
  report.rows
    .filter((r) => r.unit === "MiB/s" && r.raw !== undefined)
    .flatMap((r) => [
      {
        label: `${r.path}: Cuvette`,
        miBs: r.cuvette,
        ceilingMiBs: r.raw,
        ceiling: "raw port",
        targetMiBs: 0.8 * r.raw,
      },
      ...(r.relay === undefined
        ? []
        : [{ label: `${r.path}: via vsock relay`, miBs: r.relay, ceilingMiBs: r.raw, ceiling: "raw port" }]),
      ...(r.qemuGa === undefined
        ? []
        : [{ label: `${r.path}: qemu-ga`, miBs: r.qemuGa, ceilingMiBs: r.raw, ceiling: "raw port" }]),
    ])

/** The SVG text of one report: `kind` "local" (bench.json) or "vm" (vm.json). */
export const render = (kind, report) => {
  const p =
    kind === "local"
      ? panel(
          "Throughput per path, one machine (agent on a Unix socket)",
          `${report.date.slice(0, 10)} · ${report.cpus} × ${report.cpu ?? "cpu"} · grey = the kernel's sendfile over a socketpair (${report.kernelCeiling.tool}) · red = target`,
          localBars(report),
          10,
        )
      : panel(
          "Throughput per path in the QEMU guest (TCG, virtio-serial)",
          `${report.date.slice(0, 10)} · ${report.copyMiB} MiB each way · grey = a raw copy over another port of the same VM (same Bun runtime) · red = target (0.8× raw)`,
          vmBars(report),
          10,
        )
  const height = p.height + 10
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">`,
    `<style>.title{font-size:14px;font-weight:bold}.sub{font-size:11px;fill:#555}.label{font-size:12px}.value{font-size:11px;fill:#333}.track{fill:#e3e3e3}.bar{fill:#3b6fb6}.target{stroke:#c0392b;stroke-width:2}</style>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    ...p.svg,
    `</svg>`,
    "",
  ].join("\n")
}

/** The chart of each kind, and the report it is drawn from. */
export const charts = {
  local: { report: "bench.json", svg: path.join(root, "docs", "benchmarks.svg") },
  vm: { report: "vm.json", svg: path.join(root, "docs", "benchmarks-vm.svg") },
}

/** Rewrites the chart of `kind` from its report on disk; returns the chart's path. */
export const write = (kind) => {
  const { report, svg } = charts[kind]
  fs.writeFileSync(svg, render(kind, JSON.parse(fs.readFileSync(path.join(reportDir, report), "utf8"))))
  return svg
}

if (process.argv[1] === fileURLToPath(import.meta.url))
  for (const kind of Object.keys(charts))
    if (fs.existsSync(path.join(reportDir, charts[kind].report))) console.log(write(kind))
