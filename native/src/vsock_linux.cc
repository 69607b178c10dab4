// AF_VSOCK stream sockets for Linux: creation, bind, listen and connect. Accepting and all data I/O are
// stream_io.cc's threads, so no call here blocks the event loop: sockets are non-blocking and connect
// waits on the libuv threadpool.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
// linux/vm_sockets.h needs sockaddr/sa_family_t from sys/socket.h first.
#include <linux/vm_sockets.h>

#include <cstring>

#include "addon.h"

namespace cuvette {
namespace {

bool ArgInt(const Napi::CallbackInfo& info, size_t i, int64_t lo, int64_t hi, int64_t* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= static_cast<double>(lo) && v <= static_cast<double>(hi)) || v != static_cast<double>(static_cast<int64_t>(v))) {
    Napi::RangeError::New(info.Env(), "argument " + std::to_string(i) + " is out of range").ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<int64_t>(v);
  return true;
}

sockaddr_vm MakeAddr(uint32_t cid, uint32_t port) {
  sockaddr_vm addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = cid;
  addr.svm_port = port;
  return addr;
}

Napi::Value Socket(const Napi::CallbackInfo& info) {
  int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowOsError(info.Env(), "socket", errno);
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), fd);
}

Napi::Value Bind(const Napi::CallbackInfo& info) {
  int64_t fd, cid, port;
  if (!ArgInt(info, 0, 0, INT32_MAX, &fd) || !ArgInt(info, 1, 0, UINT32_MAX, &cid) || !ArgInt(info, 2, 0, UINT32_MAX, &port))
    return info.Env().Undefined();
  sockaddr_vm addr = MakeAddr(static_cast<uint32_t>(cid), static_cast<uint32_t>(port));
  if (::bind(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) ThrowOsError(info.Env(), "bind", errno);
  return info.Env().Undefined();
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  int64_t fd, backlog;
  if (!ArgInt(info, 0, 0, INT32_MAX, &fd) || !ArgInt(info, 1, 0, INT32_MAX, &backlog)) return info.Env().Undefined();
  if (::listen(static_cast<int>(fd), static_cast<int>(backlog)) < 0) ThrowOsError(info.Env(), "listen", errno);
  return info.Env().Undefined();
}

Napi::Value AddrObject(Napi::Env env, const sockaddr_vm& addr) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("cid", Napi::Number::New(env, addr.svm_cid));
  o.Set("port", Napi::Number::New(env, addr.svm_port));
  return o;
}

template <int (*Get)(int, sockaddr*, socklen_t*)>
Napi::Value Name(const Napi::CallbackInfo& info, const char* syscall) {
  int64_t fd;
  if (!ArgInt(info, 0, 0, INT32_MAX, &fd)) return info.Env().Undefined();
  sockaddr_vm addr;
  std::memset(&addr, 0, sizeof(addr));
  socklen_t len = sizeof(addr);
  if (Get(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
    ThrowOsError(info.Env(), syscall, errno);
    return info.Env().Undefined();
  }
  if (addr.svm_family != AF_VSOCK) {
    // Also called on the tests' AF_UNIX stand-ins; report the family instead of a bogus address.
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("family", Napi::Number::New(info.Env(), addr.svm_family));
    return o;
  }
  return AddrObject(info.Env(), addr);
}

Napi::Value Sockname(const Napi::CallbackInfo& info) { return Name<::getsockname>(info, "getsockname"); }
Napi::Value Peername(const Napi::CallbackInfo& info) { return Name<::getpeername>(info, "getpeername"); }

Napi::Value Close(const Napi::CallbackInfo& info) {
  int64_t fd;
  if (!ArgInt(info, 0, 0, INT32_MAX, &fd)) return info.Env().Undefined();
  // Linux always releases the fd, even on EINTR, so never retry close.
  if (::close(static_cast<int>(fd)) < 0 && errno != EINTR) ThrowOsError(info.Env(), "close", errno);
  return info.Env().Undefined();
}

// IOCTL_VM_SOCKETS_GET_LOCAL_CID needs /dev/vsock; without it (no transport loaded, or no permission) the
// caller gets ENODEV/EACCES and can explain which.
Napi::Value LocalCid(const Napi::CallbackInfo& info) {
  int fd = ::open("/dev/vsock", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    ThrowOsError(info.Env(), "open /dev/vsock", errno);
    return info.Env().Undefined();
  }
  unsigned int cid = 0;
  int rc = ::ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &cid);
  int err = errno;
  ::close(fd);
  if (rc < 0) {
    ThrowOsError(info.Env(), "ioctl IOCTL_VM_SOCKETS_GET_LOCAL_CID", err);
    return info.Env().Undefined();
  }
  return Napi::Number::New(info.Env(), cid);
}

// A connected AF_UNIX pair: the tests' stand-in for a vsock connection (no vsock peer exists on build
// machines); each end goes through stream_io.cc exactly as a vsock fd does.
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

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Connect on the threadpool: a non-blocking connect, then poll for writability and read SO_ERROR. The
// socket is created here so a timed-out or refused attempt never leaks an fd into JS.
class ConnectWorker : public Napi::AsyncWorker {
 public:
  ConnectWorker(Napi::Env env, uint32_t cid, uint32_t port, int timeout_ms)
      : Napi::AsyncWorker(env, "cuvette:vsock-connect"), deferred_(Napi::Promise::Deferred::New(env)), cid_(cid), port_(port), timeout_ms_(timeout_ms) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    fd_ = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return Fail("socket", errno);
    // The kernel applies its own vsock connect timeout (2 s by default) even to non-blocking connects;
    // raise it to ours so the deadline the caller chose is the one that fires.
    timeval tv;
    tv.tv_sec = timeout_ms_ / 1000;
    tv.tv_usec = (timeout_ms_ % 1000) * 1000;
    (void)::setsockopt(fd_, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
    sockaddr_vm addr = MakeAddr(cid_, port_);
    int rc;
    do {
      rc = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) return;
    if (errno != EINPROGRESS) return Fail("connect", errno);
    int64_t deadline = NowMs() + timeout_ms_;
    for (;;) {
      int64_t left = deadline - NowMs();
      if (left <= 0) return Fail("connect", ETIMEDOUT);
      pollfd p{fd_, POLLOUT, 0};
      rc = ::poll(&p, 1, static_cast<int>(left));
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return Fail("poll", errno);
      if (rc == 0) return Fail("connect", ETIMEDOUT);
      int soerr = 0;
      socklen_t len = sizeof(soerr);
      if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) return Fail("getsockopt", errno);
      if (soerr != 0) return Fail("connect", soerr);
      return;
    }
  }

  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), fd_)); }

  void OnError(const Napi::Error&) override {
    Napi::Error e = MakeOsError(Env(), syscall_, err_, "");
    deferred_.Reject(e.Value());
  }

 private:
  void Fail(const char* syscall, int err) {
    syscall_ = syscall;
    err_ = err;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    SetError(syscall);
  }

  Napi::Promise::Deferred deferred_;
  uint32_t cid_, port_;
  int timeout_ms_;
  int fd_ = -1;
  int err_ = 0;
  const char* syscall_ = "connect";
};

Napi::Value Connect(const Napi::CallbackInfo& info) {
  int64_t cid, port, timeout;
  if (!ArgInt(info, 0, 0, UINT32_MAX, &cid) || !ArgInt(info, 1, 0, UINT32_MAX, &port) || !ArgInt(info, 2, 1, INT32_MAX, &timeout))
    return info.Env().Undefined();
  auto* worker = new ConnectWorker(info.Env(), static_cast<uint32_t>(cid), static_cast<uint32_t>(port), static_cast<int>(timeout));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void InitPlatform(Napi::Env env, Napi::Object exports) {
  exports.Set("socket", Napi::Function::New(env, Socket, "socket"));
  exports.Set("bind", Napi::Function::New(env, Bind, "bind"));
  exports.Set("listen", Napi::Function::New(env, Listen, "listen"));
  exports.Set("connect", Napi::Function::New(env, Connect, "connect"));
  exports.Set("sockname", Napi::Function::New(env, Sockname, "sockname"));
  exports.Set("peername", Napi::Function::New(env, Peername, "peername"));
  exports.Set("localCid", Napi::Function::New(env, LocalCid, "localCid"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("socketpair", Napi::Function::New(env, SocketPair, "socketpair"));
  Napi::Object c = Napi::Object::New(env);
  c.Set("AF_VSOCK", Napi::Number::New(env, AF_VSOCK));
  c.Set("VMADDR_CID_ANY", Napi::Number::New(env, VMADDR_CID_ANY));
  c.Set("VMADDR_CID_HOST", Napi::Number::New(env, VMADDR_CID_HOST));
  c.Set("VMADDR_PORT_ANY", Napi::Number::New(env, VMADDR_PORT_ANY));
  exports.Set("constants", c);
}

}  // namespace cuvette
