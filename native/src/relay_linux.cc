// The public-API fallback for fd adoption. Normally lib/adopt.ts hands vsock fds straight to libuv through
// a TCP wrap (`process.binding('tcp_wrap')`), which is internal Node API. If that route is gone, a relay
// thread shuttles bytes between the vsock fd and one end of an AF_UNIX socketpair; the other end is an fd
// type libuv recognises, so `new net.Socket({ fd })` works with public API only, at the cost of one copy.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "addon.h"

namespace cuvette {
namespace {

// 256 KiB per direction: large enough that the relay is not the bottleneck next to libuv's 64 KiB reads,
// small enough that backpressure reaches the sender quickly.
constexpr size_t kRelayBuffer = 256 * 1024;

struct Direction {
  int from;
  int to;
  std::vector<char> buf;
  size_t off = 0;
  size_t len = 0;
  bool eof = false;       // `from` reported EOF (or the data can no longer be delivered)
  bool shut = false;      // EOF forwarded to `to` with shutdown(SHUT_WR)
  bool Pending() const { return off < len; }
  bool Done() const { return eof && !Pending() && shut; }
};

bool Transient(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

// Returns false on a hard error; the caller then closes both sockets so each peer sees the failure.
bool Pump(Direction& d, short from_events, short to_events) {
  if (d.Pending() && (to_events & (POLLOUT | POLLERR | POLLHUP))) {
    ssize_t n = ::send(d.to, d.buf.data() + d.off, d.len - d.off, MSG_NOSIGNAL);
    if (n > 0) {
      d.off += static_cast<size_t>(n);
      if (d.off == d.len) d.off = d.len = 0;
    } else if (n < 0 && !Transient(errno)) {
      return false;
    }
  }
  if (!d.eof && !d.Pending() && (from_events & (POLLIN | POLLERR | POLLHUP))) {
    ssize_t n = ::recv(d.from, d.buf.data(), d.buf.size(), 0);
    if (n > 0) {
      d.off = 0;
      d.len = static_cast<size_t>(n);
    } else if (n == 0) {
      d.eof = true;
    } else if (!Transient(errno)) {
      return false;
    }
  }
  if (d.eof && !d.Pending() && !d.shut) {
    ::shutdown(d.to, SHUT_WR);
    d.shut = true;
  }
  return true;
}

// `a` is the foreign socket (vsock), `b` our end of the socketpair whose peer JS owns. Both non-blocking.
void RelayLoop(int a, int b) {
  Direction ab{a, b, std::vector<char>(kRelayBuffer)};
  Direction ba{b, a, std::vector<char>(kRelayBuffer)};
  while (!(ab.Done() && ba.Done())) {
    short ev_a = 0, ev_b = 0;
    if (!ab.eof && !ab.Pending()) ev_a |= POLLIN;
    if (ab.Pending()) ev_b |= POLLOUT;
    if (!ba.eof && !ba.Pending()) ev_b |= POLLIN;
    if (ba.Pending()) ev_a |= POLLOUT;
    // An fd with nothing requested is left out: poll would otherwise report POLLHUP on it forever.
    pollfd p[2] = {{ev_a ? a : -1, ev_a, 0}, {ev_b ? b : -1, ev_b, 0}};
    int rc = ::poll(p, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      break;
    }
    // POLLHUP on our AF_UNIX end means JS closed its socket completely (a half-close only sets
    // RCV_SHUTDOWN): whatever the foreign side still sends can no longer be delivered.
    if ((p[1].revents & POLLHUP) && !ab.shut) {
      ab.eof = ab.shut = true;
      ab.off = ab.len = 0;
    }
    if (!Pump(ab, p[0].revents, p[1].revents) || !Pump(ba, p[1].revents, p[0].revents)) break;
  }
  ::close(a);
  ::close(b);
}

bool SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

bool FdArg(const Napi::CallbackInfo& info, size_t i, int* out) {
  if (info.Length() <= i || !info[i].IsNumber() || info[i].As<Napi::Number>().Int32Value() < 0) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a file descriptor").ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::Number>().Int32Value();
  return true;
}

// A connected AF_UNIX pair: the relay's plumbing, and the tests' stand-in for a vsock connection (no vsock
// peer exists on build machines).
Napi::Value SocketPair(const Napi::CallbackInfo& info) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
    ThrowOsError(info.Env(), "socketpair", errno);
    return info.Env().Undefined();
  }
  Napi::Array out = Napi::Array::New(info.Env(), 2);
  out.Set(0u, Napi::Number::New(info.Env(), sv[0]));
  out.Set(1u, Napi::Number::New(info.Env(), sv[1]));
  return out;
}

// Takes ownership of `fd` (a connected socket) and returns the JS end of a relaying socketpair.
Napi::Value Relay(const Napi::CallbackInfo& info) {
  int fd;
  if (!FdArg(info, 0, &fd)) return info.Env().Undefined();
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
    ThrowOsError(info.Env(), "socketpair", errno);
    return info.Env().Undefined();
  }
  if (!SetNonBlocking(fd)) {
    int err = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    ThrowOsError(info.Env(), "fcntl", err);
    return info.Env().Undefined();
  }
  std::thread(RelayLoop, fd, sv[0]).detach();
  return Napi::Number::New(info.Env(), sv[1]);
}

void ListenLoop(int lfd, int stop_fd, std::string path) {
  for (;;) {
    pollfd p[2] = {{lfd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents) break;
    if (!(p[0].revents & POLLIN)) {
      if (p[0].revents & (POLLERR | POLLNVAL)) break;
      continue;
    }
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
      // EMFILE/ENFILE: back off instead of spinning on a readable listener we cannot drain.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) ::usleep(100 * 1000);
      continue;
    }
    int u = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sun;
    std::memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    std::memcpy(sun.sun_path, path.data(), path.size());
    int rc = -1;
    if (u >= 0) {
      do {
        rc = ::connect(u, reinterpret_cast<sockaddr*>(&sun), sizeof(sun));
      } while (rc < 0 && errno == EINTR);
    }
    if (rc < 0 || !SetNonBlocking(u)) {
      if (u >= 0) ::close(u);
      ::close(c);
      continue;
    }
    std::thread(RelayLoop, c, u).detach();
  }
  ::close(lfd);
  ::close(stop_fd);
}

// Takes ownership of a listening socket: every accepted connection is relayed to a connection made to the
// AF_UNIX server at `path` (a net.Server in a private 0700 directory). Returns the fd that stops it.
Napi::Value RelayListen(const Napi::CallbackInfo& info) {
  int lfd;
  if (!FdArg(info, 0, &lfd)) return info.Env().Undefined();
  if (info.Length() < 2 || !info[1].IsString()) {
    Napi::TypeError::New(info.Env(), "argument 1 must be a path").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  std::string path = info[1].As<Napi::String>().Utf8Value();
  if (path.empty() || path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    Napi::RangeError::New(info.Env(), "unix socket path is empty or too long: " + path).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) < 0) {
    ThrowOsError(info.Env(), "pipe2", errno);
    return info.Env().Undefined();
  }
  std::thread(ListenLoop, lfd, pipefd[0], path).detach();
  return Napi::Number::New(info.Env(), pipefd[1]);
}

Napi::Value RelayStop(const Napi::CallbackInfo& info) {
  int fd;
  if (!FdArg(info, 0, &fd)) return info.Env().Undefined();
  char byte = 1;
  ssize_t n;
  do {
    n = ::write(fd, &byte, 1);
  } while (n < 0 && errno == EINTR);
  ::close(fd);
  return info.Env().Undefined();
}

// A listening AF_UNIX socket that libuv has never seen: the tests' stand-in for a vsock listener when
// checking both server adoption routes with real connections.
Napi::Value UnixListen(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(info.Env(), "argument 0 must be a path").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un sun;
  std::memset(&sun, 0, sizeof(sun));
  if (path.empty() || path.size() >= sizeof(sun.sun_path)) {
    Napi::RangeError::New(info.Env(), "unix socket path is empty or too long: " + path).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  sun.sun_family = AF_UNIX;
  std::memcpy(sun.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowOsError(info.Env(), "socket", errno);
    return info.Env().Undefined();
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof(sun)) < 0 || ::listen(fd, 16) < 0) {
    int err = errno;
    ::close(fd);
    ThrowOsError(info.Env(), "bind/listen", err);
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), fd);
}

}  // namespace

void InitRelay(Napi::Env env, Napi::Object exports) {
  exports.Set("socketpair", Napi::Function::New(env, SocketPair, "socketpair"));
  exports.Set("relay", Napi::Function::New(env, Relay, "relay"));
  exports.Set("relayListen", Napi::Function::New(env, RelayListen, "relayListen"));
  exports.Set("relayStop", Napi::Function::New(env, RelayStop, "relayStop"));
  exports.Set("unixListen", Napi::Function::New(env, UnixListen, "unixListen"));
}

}  // namespace cuvette
