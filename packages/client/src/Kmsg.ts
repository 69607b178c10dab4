// The guest kernel log (`/dev/kmsg`) as records: parseKmsg reads one line of it.

/** One `/dev/kmsg` record. */
export interface KmsgRecord {
  /** Syslog level, 0 (emerg) .. 7 (debug): prio & 7. */
  readonly level: number
  /** Syslog facility: prio >> 3 (0 = kernel). */
  readonly facility: number
  readonly seq: number
  /** Microseconds since boot. */
  readonly timeUs: number
  /** "-" normally, "c" for a continuation. */
  readonly flags: string
  readonly message: string
}

/** Parses one `/dev/kmsg` record (`prio,seq,ts_us,flags[,...];message`); undefined for continuation lines. */
export const parseKmsg = (line: string): KmsgRecord | undefined => {
  const semi = line.indexOf(";")
  if (semi < 0 || line.startsWith(" ")) return undefined
  const [prio, seq, ts, flags] = line.slice(0, semi).split(",")
  const p = Number(prio)
  if (!Number.isInteger(p) || seq === undefined || ts === undefined) return undefined
  const message = line
    .slice(semi + 1)
    .replace(/\\x([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
  return {
    level: p & 7,
    facility: p >> 3,
    seq: Number(seq),
    timeUs: Number(ts),
    flags: flags ?? "-",
    message,
  }
}
