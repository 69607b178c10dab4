/**
 * `raw-port --serial PATH (--receive BYTES --out FILE | --send FILE | --echo COUNT)`: the VM benchmark's
 * baseline, a copy (or a round trip) over a virtio-serial port with no protocol at all, in the runtime the agent ships (Bun-compiled by
 * scripts/build-agent.mjs) and through the same calls its serial transport makes (fs.read/fs.write on the
 * port's fd). One byte each way marks the start and the end, so the host times only the bytes:
 *   --receive: sends "R", reads BYTES from the port into FILE, sends "D".
 *   --send:    sends "R", waits for the host's "G", writes FILE to the port.
 *   --echo:    sends "R", then writes back each of COUNT reads as it arrives (the host sends one byte at a
 *              time): the port's round trip, the floor under a ping.
 *   --echo-overlapped: the same, with the next read already waiting while each write runs, as the
 *              agent's transport reads (a full-duplex port always has a read pending).
 */
import * as fs from "node:fs"
import { parseArgs } from "node:util"
import { openPort } from "../../relay/Relay.js"

const CHUNK = 1 << 20

const { values } = parseArgs({
  options: {
    serial: { type: "string" },
    receive: { type: "string" },
    out: { type: "string" },
    send: { type: "string" },
    echo: { type: "string" },
    "echo-overlapped": { type: "string" },
  },
})
const modes = [
  values.receive !== undefined && values.out,
  values.send,
  values.echo,
  values["echo-overlapped"],
].filter(Boolean)
if (!values.serial || modes.length !== 1) {
  process.stderr.write(
    "usage: raw-port --serial PATH (--receive BYTES --out FILE | --send FILE | --echo COUNT | --echo-overlapped COUNT)\n",
  )
  process.exit(2)
}
const port = openPort(values.serial)
const buffer = Buffer.alloc(CHUNK)

/** A read of the port; a read with no host attached returns 0 at once: wait and read again. */
const read = async (): Promise<number> => {
  for (;;) {
    const n = await port.read(buffer)
    if (n > 0) return n
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

await port.write(Buffer.from("R"))
if (values.receive !== undefined) {
  const want = Number(values.receive)
  const out = fs.openSync(values.out!, "w")
  for (let got = 0; got < want; ) {
    const n = await read()
    fs.writeSync(out, buffer, 0, n)
    got += n
  }
  fs.closeSync(out)
  await port.write(Buffer.from("D"))
} else if (values.echo !== undefined) {
  for (let i = 0; i < Number(values.echo); i++) await port.write(buffer.subarray(0, await read()))
} else if (values["echo-overlapped"] !== undefined) {
  let writing = Promise.resolve()
  for (let i = 0; i < Number(values["echo-overlapped"]); i++) {
    const n = await read()
    const bytes = Buffer.from(buffer.subarray(0, n))
    writing = writing.then(() => port.write(bytes)) // not awaited: the next read is issued at once
  }
  await writing
} else {
  await read() // the host's "G"
  const file = fs.openSync(values.send!, "r")
  for (let n; (n = fs.readSync(file, buffer, 0, CHUNK, null)) > 0; ) await port.write(buffer.subarray(0, n))
  fs.closeSync(file)
}
process.exit(0)
