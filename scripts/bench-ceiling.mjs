/**
 * The kernel's ceiling for the benchmark's copies: a small C program (compiled here with `cc`, or Python's
 * os.sendfile/os.splice when there is no compiler) moves a file through an AF_UNIX socketpair between two
 * processes with no user-space copy: the sender `sendfile`s the file into its end; the receiver either
 * `splice`s its end through a pipe into a file (file -> socket -> file, the arrangement of every copy row)
 * or reads into one reused buffer and drops it (the socket alone). The socket figure is the ceiling the
 * table prints: the file one also measures this machine's disk writeback, which varies tenfold here.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"

const C_SOURCE = String.raw`
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static void die(const char *what) { perror(what); exit(1); }

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: ceiling SRC DEST|-\n"); return 2; }
  int in = open(argv[1], O_RDONLY);
  if (in < 0) die("open src");
  struct stat st;
  if (fstat(in, &st) < 0) die("fstat");
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) die("socketpair");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(sv[1]);
    for (off_t left = st.st_size; left > 0;) {
      ssize_t n = sendfile(sv[0], in, NULL, left > CHUNK ? CHUNK : left);
      if (n <= 0) die("sendfile");
      left -= n;
    }
    _exit(0);
  }
  close(sv[0]);
  long long got = 0;
  if (argv[2][0] == '-' && argv[2][1] == 0) {
    char *buf = malloc(CHUNK);
    for (ssize_t n; (n = read(sv[1], buf, CHUNK)) > 0;) got += n;
  } else {
    int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int p[2];
    if (out < 0 || pipe(p) < 0) die("open dest / pipe");
    fcntl(p[1], F_SETPIPE_SZ, CHUNK);
    for (ssize_t n; (n = splice(sv[1], NULL, p[1], NULL, CHUNK, SPLICE_F_MOVE)) > 0;) {
      got += n;
      for (ssize_t m; n > 0; n -= m)
        if ((m = splice(p[0], NULL, out, NULL, n, SPLICE_F_MOVE)) <= 0) die("splice to file");
    }
    close(out);
  }
  int status;
  waitpid(pid, &status, 0);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (got != st.st_size || status != 0) { fprintf(stderr, "moved %lld of %lld\n", got, (long long)st.st_size); return 1; }
  printf("%.3f\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
  return 0;
}
`

const PY_SOURCE = String.raw`
import os, socket, sys, time
src, dest = sys.argv[1], sys.argv[2]
size = os.path.getsize(src)
a, b = socket.socketpair()
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    b.close()
    fd, off = os.open(src, os.O_RDONLY), 0
    while off < size:
        off += os.sendfile(a.fileno(), fd, off, min(1 << 20, size - off))
    os._exit(0)
a.close()
got = 0
if dest == "-":
    buf = bytearray(1 << 20)
    while (n := b.recv_into(buf)) > 0:
        got += n
else:
    out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    r, w = os.pipe()
    while (n := os.splice(b.fileno(), w, 1 << 20)) > 0:
        got += n
        while n > 0:
            n -= os.splice(r, out, n)
    os.close(out)
_, status = os.waitpid(pid, 0)
if got != size or status != 0:
    sys.exit(f"moved {got} of {size}")
print(f"{(time.monotonic() - t0) * 1000:.3f}")
`

/** Builds the program in `dir` with `compiler`, else Python's; returns how to run it and what it is. */
export const prepare = (dir, compiler = "cc") => {
  const c = path.join(dir, "ceiling.c")
  const exe = path.join(dir, "ceiling")
  fs.writeFileSync(c, C_SOURCE)
  const cc = spawnSync(compiler, ["-O2", "-o", exe, c], {
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8",
  })
  if (cc.status === 0) return { argv: [exe], tool: "C, cc -O2" }
  const py = path.join(dir, "ceiling.py")
  fs.writeFileSync(py, PY_SOURCE)
  return { argv: ["python3", py], tool: "Python, os.sendfile/os.splice" }
}

/** One run: MiB/s moving `src` (of `bytes`) to `dest`, or to nothing when `dest` is "-". */
const once = (program, src, dest, bytes) => {
  const r = spawnSync(program.argv[0], [...program.argv.slice(1), src, dest], { encoding: "utf8" })
  if (r.status !== 0) throw new Error(`kernel ceiling (${program.tool}) failed: ${r.stderr}`)
  if (dest !== "-") fs.rmSync(dest)
  return bytes / 2 ** 20 / (Number(r.stdout) / 1000)
}

/**
 * The best of `runs` runs of each arrangement (the ceiling is what the machine can do, so noise only lowers it):
 * `fileMiBs` file -> socketpair -> file, `socketMiBs` file -> socketpair -> dropped.
 */
export const measure = (program, src, dir, bytes, runs = 3) => {
  const dest = path.join(dir, "ceiling.out")
  const file = Array.from({ length: runs }, () => once(program, src, dest, bytes))
  const socket = Array.from({ length: runs }, () => once(program, src, "-", bytes))
  return {
    tool: program.tool,
    fileMiBs: Math.max(...file),
    socketMiBs: Math.max(...socket),
    fileRunsMiBs: file,
    socketRunsMiBs: socket,
  }
}
