// The list of commands, in the order `cuvette --help` shows them.
import type { Command, Group } from "./command.js"
import { command as exec } from "../commands/exec.js"
import { command as read } from "../commands/read.js"
import { command as write } from "../commands/write.js"
import { command as ping } from "../commands/ping.js"
import { command as shutdown } from "../commands/shutdown.js"
import { command as wait } from "../commands/wait.js"
import { command as info } from "../commands/info.js"
import { command as cp } from "../commands/cp.js"
import { command as ls } from "../commands/ls.js"
import { command as stat } from "../commands/stat.js"
import { command as rm } from "../commands/rm.js"
import { command as mkdir } from "../commands/mkdir.js"
import { command as mv } from "../commands/mv.js"
import { command as kmsg } from "../commands/kmsg.js"
import { command as time } from "../commands/time.js"
import { command as shell } from "../commands/shell.js"
import { command as consoleCommand } from "../commands/console.js"
import { command as forward } from "../commands/forward.js"
import { command as deploy } from "../commands/deploy.js"
import { makeCommand as completion } from "../commands/completion.js"

/** Every command. */
export const commands: ReadonlyArray<Command | Group> = [
  exec,
  read,
  write,
  ping,
  shutdown,
  wait,
  info,
  cp,
  ls,
  stat,
  rm,
  mkdir,
  mv,
  kmsg,
  time,
  shell,
  consoleCommand,
  forward,
  deploy,
  completion(() => commands),
]
