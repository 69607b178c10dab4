// `burette deploy image|vtl2`: puts the agent into a guest that has nothing yet (see @burette/deploy).
import type { Command } from "../internal/command.js"
import { CliError } from "../internal/errors.js"
import * as ExitCode from "../ExitCode.js"

const unavailable = (what: string): CliError =>
  new CliError({
    code: "UNSUPPORTED",
    detail: `\`burette deploy ${what}\` is not available in this build (@burette/deploy is not wired into the CLI yet)`,
    exitCode: ExitCode.Failed,
  })

const image: Command = {
  name: "image",
  summary: "write a cidata disk image (FAT32 in GPT, raw or VHD) holding the agent",
  usage: "--out FILE [--format raw|vhd] [--os linux|windows] [--agent PATH] [--add FILE]... [--token-file F]",
  options: [
    { name: "out", kind: "string", value: "FILE", description: "image file to write" },
    {
      name: "format",
      kind: "string",
      value: "raw|vhd",
      description: "raw disk or fixed VHD (default: from --out's extension, else raw)",
    },
    { name: "os", kind: "string", value: "linux|windows", description: "guest OS (default linux)" },
    { name: "agent", kind: "string", value: "PATH", description: "agent executable to put on the disk" },
    { name: "add", kind: "list", value: "FILE", description: "extra file for the disk's root (repeatable)" },
  ],
  examples: ["burette deploy image --out cidata.vhd --format vhd --agent ./dist/burette-agent-linux-x64"],
  run: async () => {
    throw unavailable("image")
  },
}

const vtl2: Command = {
  name: "vtl2",
  summary: "start the agent in VTL2 (OpenHCL) through ohcldiag-dev and wait for it",
  usage: "--vm ID [--ohcldiag PATH] [--listen PATH] [--dry-run]",
  options: [
    {
      name: "ohcldiag",
      kind: "string",
      value: "PATH",
      description: "the ohcldiag-dev executable (default: on PATH)",
    },
    {
      name: "listen",
      kind: "string",
      value: "PATH",
      description: "OpenVMM: accept the agent on PATH (the VTL2 vsock path + _4919)",
    },
    { name: "dry-run", kind: "boolean", description: "print the exact commands instead of running them" },
  ],
  examples: ["burette deploy vtl2 --vm myvm --dry-run"],
  run: async () => {
    throw unavailable("vtl2")
  },
}

/** See the summary. */
export const command: Command = {
  name: "deploy",
  summary: "put the agent into a guest: `deploy image` (cidata disk), `deploy vtl2` (OpenHCL)",
  usage: "image|vtl2 [options]",
  options: [],
  subcommands: [image, vtl2],
  examples: ["burette deploy image --help", "burette deploy vtl2 --help"],
  run: async () => ExitCode.Usage,
}
