// The addon's own socket I/O: the one route every AF_VSOCK / AF_HYPERV socket takes after it is created,
// in Node and in Bun alike, using nothing private from either runtime (only N-API thread-safe functions).
//
// Per connected socket a reader thread receives into 256 KiB chunks and hands each to JS (lib/socket.ts,
// a stream.Duplex); at most kMaxInflight chunks are on their way, and when push() returns false the reader
// waits until _read resumes it, so memory stays bounded whatever the consumer does. A writer thread sends
// the chunks of each _write/_writev (JS keeps them alive until the completion event) and performs the
// half-close of _final. A listening socket gets an accept thread that posts each accepted socket.
//
// The threads never block for ever: they wait on the socket *and* a waker (eventfd / Win32 event), so
// destroy/close wake them. The last thread out closes the socket and posts "closed": after that event no
// thread touches the socket or JS memory again. Only the thin platform layer below differs between Linux
// fds and Windows SOCKETs.
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
#else
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#include "addon.h"

namespace cuvette {
namespace {

constexpr size_t kChunk = 256 * 1024;
// Chunks received but not yet pushed by JS: with the stream's own buffer this bounds a reader's memory.
constexpr int kMaxInflight = 4;
// Not an OS error: the waker fired (destroy / close).
constexpr int kCancelled = -1;

std::atomic<int> live_threads{0};

// ---- platform layer --------------------------------------------------------------------------------
#ifdef _WIN32
using Sock = SOCKET;
const Sock kNoSock = INVALID_SOCKET;

class Waker {
 public:
  Waker() : ev_(::CreateEventW(nullptr, TRUE, FALSE, nullptr)) {}
  ~Waker() {
    if (ev_ != nullptr) ::CloseHandle(ev_);
  }
  bool Ok() const { return ev_ != nullptr; }
  void Wake() { ::SetEvent(ev_); }
  // True when woken within `ms`.
  bool WaitMs(int ms) const { return ::WaitForSingleObject(ev_, static_cast<DWORD>(ms)) == WAIT_OBJECT_0; }
  HANDLE Handle() const { return ev_; }

 private:
  HANDLE ev_;
};

int LastSocketError() { return ::WSAGetLastError(); }
void CloseSock(Sock s) { ::closesocket(s); }
int ShutdownWrite(Sock s) {
  if (::shutdown(s, SD_SEND) == 0) return 0;
  int err = ::WSAGetLastError();
  return err == WSAENOTCONN ? 0 : err;  // the peer is gone already: nothing left to half-close
}

// Accepted sockets inherit the listener's event selection and non-blocking mode: undo both, so
// overlapped WSARecv/WSASend below behave the same on connected and accepted sockets.
int PrepareStream(Sock s) {
  u_long blocking = 0;
  if (::WSAEventSelect(s, nullptr, 0) != 0 || ::ioctlsocket(s, FIONBIO, &blocking) != 0) return ::WSAGetLastError();
  return 0;
}

// One overlapped WSARecv/WSASend, waited for together with the waker so destroy can cancel it.
int Overlapped(Sock s, bool receive, char* buf, size_t len, const Waker& w, size_t* done) {
  WSAOVERLAPPED ov;
  std::memset(&ov, 0, sizeof(ov));
  ov.hEvent = ::WSACreateEvent();
  if (ov.hEvent == WSA_INVALID_EVENT) return ::WSAGetLastError();
  WSABUF b{static_cast<ULONG>(len > (1u << 30) ? (1u << 30) : len), buf};
  DWORD n = 0, flags = 0;
  int rc = receive ? ::WSARecv(s, &b, 1, &n, &flags, &ov, nullptr) : ::WSASend(s, &b, 1, &n, 0, &ov, nullptr);
  int result = rc == 0 ? 0 : ::WSAGetLastError();
  if (rc != 0 && result != WSA_IO_PENDING) {
    ::WSACloseEvent(ov.hEvent);
    return result;
  }
  result = 0;
  HANDLE hs[2] = {ov.hEvent, w.Handle()};
  if (::WaitForMultipleObjects(2, hs, FALSE, INFINITE) == WAIT_OBJECT_0 + 1) {
    ::CancelIoEx(reinterpret_cast<HANDLE>(s), &ov);
    result = kCancelled;
  }
  // Waits for the (possibly cancelled) operation to finish: the buffer is ours again after this.
  if (!::WSAGetOverlappedResult(s, &ov, &n, TRUE, &flags) && result == 0) result = ::WSAGetLastError();
  ::WSACloseEvent(ov.hEvent);
  *done = n;
  return result;
}

int RecvSome(Sock s, char* buf, size_t len, const Waker& w, size_t* got) { return Overlapped(s, true, buf, len, w, got); }

int SendAll(Sock s, const char* p, size_t len, const Waker& w) {
  while (len > 0) {
    size_t n = 0;
    int err = Overlapped(s, false, const_cast<char*>(p), len, w, &n);
    if (err != 0) return err;
    p += n;
    len -= n;
  }
  return 0;
}

// Waits for FD_ACCEPT or the waker; the listener is non-blocking under WSAEventSelect.
class Acceptor {
 public:
  explicit Acceptor(Sock l) : l_(l), ev_(::WSACreateEvent()) {
    err_ = ev_ == WSA_INVALID_EVENT || ::WSAEventSelect(l_, ev_, FD_ACCEPT) != 0 ? ::WSAGetLastError() : 0;
  }
  ~Acceptor() {
    if (ev_ != WSA_INVALID_EVENT) ::WSACloseEvent(ev_);
  }
  int Accept(const Waker& w, Sock* out) {
    if (err_ != 0) return err_;
    for (;;) {
      Sock c = ::accept(l_, nullptr, nullptr);
      if (c != INVALID_SOCKET) {
        *out = c;
        return 0;
      }
      int err = ::WSAGetLastError();
      if (err != WSAEWOULDBLOCK) return err;
      HANDLE hs[2] = {ev_, w.Handle()};
      if (::WaitForMultipleObjects(2, hs, FALSE, INFINITE) == WAIT_OBJECT_0 + 1) return kCancelled;
      WSANETWORKEVENTS ne;
      ::WSAEnumNetworkEvents(l_, ev_, &ne);  // resets the event
    }
  }

 private:
  Sock l_;
  WSAEVENT ev_;
  int err_;
};

bool TransientAcceptError(int err) {
  return err == WSAECONNRESET || err == WSAEMFILE || err == WSAENOBUFS || err == WSAEINTR;
}
#else
using Sock = int;
const Sock kNoSock = -1;

class Waker {
 public:
  Waker() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~Waker() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool Ok() const { return fd_ >= 0; }
  // Never read back: once woken, every waiter sees it.
  void Wake() {
    uint64_t one = 1;
    ssize_t n;
    do n = ::write(fd_, &one, sizeof(one));
    while (n < 0 && errno == EINTR);
  }
  bool WaitMs(int ms) const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, ms) > 0;
  }
  int Fd() const { return fd_; }

 private:
  int fd_;
};

int LastSocketError() { return errno; }
void CloseSock(Sock s) { ::close(s); }  // Linux releases the fd even on EINTR: never retry
int ShutdownWrite(Sock s) {
  if (::shutdown(s, SHUT_WR) == 0) return 0;
  return errno == ENOTCONN ? 0 : errno;  // the peer is gone already: nothing left to half-close
}

int PrepareStream(Sock s) {
  int flags = ::fcntl(s, F_GETFL);
  if (flags < 0 || ::fcntl(s, F_SETFL, flags | O_NONBLOCK) != 0) return errno;
  return 0;
}

// 0 when `s` is ready for `events` (or has an error the next call reports), kCancelled, or errno.
int WaitReady(Sock s, short events, const Waker& w) {
  for (;;) {
    pollfd p[2] = {{s, events, 0}, {w.Fd(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (p[1].revents != 0) return kCancelled;
    if (p[0].revents != 0) return 0;
  }
}

bool Retry(int err) { return err == EINTR || err == EAGAIN || err == EWOULDBLOCK; }

int RecvSome(Sock s, char* buf, size_t len, const Waker& w, size_t* got) {
  for (;;) {
    ssize_t n = ::recv(s, buf, len, MSG_DONTWAIT);
    if (n >= 0) {
      *got = static_cast<size_t>(n);
      return 0;
    }
    if (!Retry(errno)) return errno;
    if (errno != EINTR) {
      int rc = WaitReady(s, POLLIN, w);
      if (rc != 0) return rc;
    }
  }
}

int SendAll(Sock s, const char* p, size_t len, const Waker& w) {
  while (len > 0) {
    ssize_t n = ::send(s, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      p += n;
      len -= static_cast<size_t>(n);
      continue;
    }
    if (!Retry(errno)) return errno;
    if (errno != EINTR) {
      int rc = WaitReady(s, POLLOUT, w);
      if (rc != 0) return rc;
    }
  }
  return 0;
}

class Acceptor {
 public:
  explicit Acceptor(Sock l) : l_(l), err_(PrepareStream(l)) {}
  int Accept(const Waker& w, Sock* out) {
    if (err_ != 0) return err_;
    for (;;) {
      Sock c = ::accept4(l_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c >= 0) {
        *out = c;
        return 0;
      }
      if (!Retry(errno)) return errno;
      if (errno != EINTR) {
        int rc = WaitReady(l_, POLLIN, w);
        if (rc != 0) return rc;
      }
    }
  }

 private:
  Sock l_;
  int err_;
};

bool TransientAcceptError(int err) {
  return err == ECONNABORTED || err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM || err == EPROTO;
}
#endif

// ---- events from the I/O threads to JS ----------------------------------------------------------------
// Numbers shared with lib/socket.ts and lib/server.ts.
enum Kind : int { kData = 0, kEnd = 1, kError = 2, kWritten = 3, kFinished = 4, kClosed = 5, kConnection = 6 };

struct Event {
  Kind kind;
  char* data = nullptr;  // kData: malloc'ed chunk, owned by the JS Buffer once delivered
  size_t len = 0;
  int err = 0;
  const char* syscall = "";
  Sock sock = kNoSock;  // kConnection
};

napi_value ErrorOrNull(napi_env env, const Event& ev) {
  napi_value v;
  if (ev.err == 0) {
    napi_get_null(env, &v);
    return v;
  }
  return MakeOsError(Napi::Env(env), ev.syscall, ev.err, "").Value();
}

// Calls the JS listener; a throwing listener becomes an uncaught exception, as with any event handler.
napi_value Deliver(napi_env env, napi_value fn, const Event& ev, napi_value payload) {
  napi_value undefined, kind, result = nullptr;
  napi_get_undefined(env, &undefined);
  napi_create_int32(env, ev.kind, &kind);
  napi_value argv[2] = {kind, payload != nullptr ? payload : undefined};
  if (napi_call_function(env, undefined, fn, 2, argv, &result) != napi_ok) {
    napi_value error;
    if (napi_get_and_clear_last_exception(env, &error) == napi_ok) napi_fatal_exception(env, error);
    return nullptr;
  }
  return result;
}

bool Post(napi_threadsafe_function tsfn, Event* ev) {
  if (napi_call_threadsafe_function(tsfn, ev, napi_tsfn_nonblocking) == napi_ok) return true;
  std::free(ev->data);
  if (ev->sock != kNoSock) CloseSock(ev->sock);
  delete ev;
  return false;
}

// ---- connected sockets --------------------------------------------------------------------------------
struct Job {
  std::vector<std::pair<const char*, size_t>> chunks;  // memory JS keeps alive until kWritten
  bool shutdown = false;
};

struct Stream {
  Sock sock = kNoSock;
  Waker waker;
  napi_threadsafe_function tsfn = nullptr;
  std::atomic<int> threads{2};
  std::mutex m;
  std::condition_variable cv;
  bool closing = false;
  bool paused = false;
  int inflight = 0;
  std::deque<Job> jobs;

  void Exit() {
    if (threads.fetch_sub(1) == 1) {
      CloseSock(sock);
      Post(tsfn, new Event{kClosed});
    }
    live_threads.fetch_sub(1);
    napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  }
};

using StreamRef = std::shared_ptr<Stream>;

void ReadLoop(StreamRef s) {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(s->m);
      s->cv.wait(lock, [&] { return s->closing || (!s->paused && s->inflight < kMaxInflight); });
      if (s->closing) break;
      s->inflight++;
    }
    char* buf = static_cast<char*>(std::malloc(kChunk));
    size_t got = 0;
    int err = buf == nullptr ? ENOMEM : RecvSome(s->sock, buf, kChunk, s->waker, &got);
    if (err != 0 || got == 0) {
      std::free(buf);
      if (err != kCancelled) Post(s->tsfn, err != 0 ? new Event{kError, nullptr, 0, err, "recv"} : new Event{kEnd});
      break;
    }
    // Small reads get a buffer of their own size, so a slow trickle cannot pin 256 KiB per byte.
    if (got < kChunk / 4) {
      char* exact = static_cast<char*>(std::malloc(got));
      if (exact != nullptr) {
        std::memcpy(exact, buf, got);
        std::free(buf);
        buf = exact;
      }
    }
    if (!Post(s->tsfn, new Event{kData, buf, got})) break;
  }
  s->Exit();
}

void WriteLoop(StreamRef s) {
  int failed = 0;  // after a send error every later write fails with it
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(s->m);
      s->cv.wait(lock, [&] { return s->closing || !s->jobs.empty(); });
      if (s->closing) break;
      job = std::move(s->jobs.front());
      s->jobs.pop_front();
    }
    int err = failed;
    if (err == 0 && job.shutdown) err = ShutdownWrite(s->sock);
    for (size_t i = 0; err == 0 && i < job.chunks.size(); i++) err = SendAll(s->sock, job.chunks[i].first, job.chunks[i].second, s->waker);
    if (err == kCancelled) break;
    if (err != 0) failed = err;
    if (!Post(s->tsfn, new Event{job.shutdown ? kFinished : kWritten, nullptr, 0, err, job.shutdown ? "shutdown" : "send"})) break;
  }
  s->Exit();
}

void CallStream(napi_env env, napi_value fn, void* context, void* data) {
  std::unique_ptr<Event> ev(static_cast<Event*>(data));
  if (env == nullptr) {  // the runtime is shutting down
    std::free(ev->data);
    return;
  }
  Stream* s = static_cast<StreamRef*>(context)->get();
  napi_value payload = nullptr;
  if (ev->kind == kData) {
    napi_create_external_buffer(
        env, ev->len, ev->data, [](napi_env, void* p, void*) { std::free(p); }, nullptr, &payload);
    ev->data = nullptr;
  } else if (ev->kind == kError || ev->kind == kWritten || ev->kind == kFinished) {
    payload = ErrorOrNull(env, *ev);
  }
  napi_value result = Deliver(env, fn, *ev, payload);
  if (ev->kind == kData) {
    bool more = true;
    if (result != nullptr) napi_get_value_bool(env, result, &more);
    {
      std::lock_guard<std::mutex> lock(s->m);
      s->inflight--;
      s->paused = !more;
    }
    s->cv.notify_all();
  }
}

// The handle JS holds: a shared reference to the stream (the threads hold the others).
StreamRef* Handle(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "argument 0 must be a native stream handle").ThrowAsJavaScriptException();
    return nullptr;
  }
  return info[0].As<Napi::External<StreamRef>>().Data();
}

bool SockArg(const Napi::CallbackInfo& info, size_t i, Sock* out) {
  if (info.Length() <= i || !info[i].IsNumber() || info[i].As<Napi::Number>().DoubleValue() < 0) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a socket").ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<Sock>(info[i].As<Napi::Number>().Int64Value());
  return true;
}

bool FunctionArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() > i && info[i].IsFunction()) return true;
  Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be the event callback").ThrowAsJavaScriptException();
  return false;
}

template <typename T>
bool MakeTsfn(const Napi::CallbackInfo& info, const char* name, size_t threads, std::shared_ptr<T> state,
              napi_threadsafe_function_call_js call) {
  napi_value resource;
  napi_create_string_utf8(info.Env(), name, NAPI_AUTO_LENGTH, &resource);
  auto* context = new std::shared_ptr<T>(state);
  napi_status st = napi_create_threadsafe_function(
      info.Env(), info[1], nullptr, resource, 0, threads, nullptr,
      [](napi_env, void*, void* ctx) { delete static_cast<std::shared_ptr<T>*>(ctx); }, context, call, &state->tsfn);
  if (st != napi_ok) {
    delete context;
    Napi::Error::New(info.Env(), "napi_create_threadsafe_function failed").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

// streamOpen(socket, onEvent): takes ownership of a connected socket and starts its reader and writer.
Napi::Value StreamOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Sock sock;
  if (!SockArg(info, 0, &sock) || !FunctionArg(info, 1)) return env.Undefined();
  auto s = std::make_shared<Stream>();
  s->sock = sock;
  int err = s->waker.Ok() ? PrepareStream(sock) : LastSocketError();
  if (err != 0) {
    CloseSock(sock);
    ThrowOsError(env, "stream setup", err);
    return env.Undefined();
  }
  if (!MakeTsfn(info, "cuvette:socket", 2, s, CallStream)) {
    CloseSock(sock);
    return env.Undefined();
  }
  live_threads.fetch_add(2);
  std::thread(ReadLoop, s).detach();
  std::thread(WriteLoop, s).detach();
  return Napi::External<StreamRef>::New(env, new StreamRef(s), [](Napi::Env, StreamRef* r) { delete r; });
}

// streamResume(h): _read wants more.
Napi::Value StreamResume(const Napi::CallbackInfo& info) {
  StreamRef* h = Handle(info);
  if (h == nullptr) return info.Env().Undefined();
  Stream* s = h->get();
  {
    std::lock_guard<std::mutex> lock(s->m);
    s->paused = false;
  }
  s->cv.notify_all();
  return info.Env().Undefined();
}

void Enqueue(Stream* s, Job job) {
  {
    std::lock_guard<std::mutex> lock(s->m);
    if (s->closing) return;
    s->jobs.push_back(std::move(job));
  }
  s->cv.notify_all();
}

// streamWrite(h, chunks): the caller keeps `chunks` referenced until its kWritten event.
Napi::Value StreamWrite(const Napi::CallbackInfo& info) {
  StreamRef* h = Handle(info);
  if (h == nullptr) return info.Env().Undefined();
  if (info.Length() < 2 || !info[1].IsArray()) {
    Napi::TypeError::New(info.Env(), "argument 1 must be an array of Uint8Array").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  Napi::Array chunks = info[1].As<Napi::Array>();
  Job job;
  for (uint32_t i = 0; i < chunks.Length(); i++) {
    Napi::Value c = chunks.Get(i);
    if (!c.IsTypedArray() || c.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      Napi::TypeError::New(info.Env(), "chunks must be Uint8Array").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    Napi::Uint8Array u = c.As<Napi::Uint8Array>();
    if (u.ByteLength() > 0) job.chunks.emplace_back(reinterpret_cast<const char*>(u.Data()), u.ByteLength());
  }
  Enqueue(h->get(), std::move(job));
  return info.Env().Undefined();
}

// streamEnd(h): half-close after the writes queued so far (kFinished).
Napi::Value StreamEnd(const Napi::CallbackInfo& info) {
  StreamRef* h = Handle(info);
  if (h == nullptr) return info.Env().Undefined();
  Job job;
  job.shutdown = true;
  Enqueue(h->get(), std::move(job));
  return info.Env().Undefined();
}

// streamDestroy(h): wakes both threads; the last one closes the socket and posts kClosed.
Napi::Value StreamDestroy(const Napi::CallbackInfo& info) {
  StreamRef* h = Handle(info);
  if (h == nullptr) return info.Env().Undefined();
  Stream* s = h->get();
  {
    std::lock_guard<std::mutex> lock(s->m);
    s->closing = true;
  }
  s->cv.notify_all();
  s->waker.Wake();
  return info.Env().Undefined();
}

// ---- listening sockets --------------------------------------------------------------------------------
struct Server {
  Sock sock = kNoSock;
  Waker waker;
  napi_threadsafe_function tsfn = nullptr;
};

using ServerRef = std::shared_ptr<Server>;

void AcceptLoop(ServerRef sv) {
  Acceptor acceptor(sv->sock);
  for (;;) {
    Sock c = kNoSock;
    int err = acceptor.Accept(sv->waker, &c);
    if (err == kCancelled) break;
    if (err == 0) {
      if (!Post(sv->tsfn, new Event{kConnection, nullptr, 0, 0, "", c})) break;
      continue;
    }
    bool transient = TransientAcceptError(err);
    if (!Post(sv->tsfn, new Event{kError, nullptr, 0, err, "accept"}) || !transient) break;
    // EMFILE and friends: back off instead of spinning on a listener we cannot drain.
    if (sv->waker.WaitMs(100)) break;
  }
  CloseSock(sv->sock);
  Post(sv->tsfn, new Event{kClosed});
  live_threads.fetch_sub(1);
  napi_release_threadsafe_function(sv->tsfn, napi_tsfn_release);
}

void CallServer(napi_env env, napi_value fn, void*, void* data) {
  std::unique_ptr<Event> ev(static_cast<Event*>(data));
  if (env == nullptr) {
    if (ev->sock != kNoSock) CloseSock(ev->sock);
    return;
  }
  napi_value payload = nullptr;
  if (ev->kind == kConnection)
    napi_create_double(env, static_cast<double>(ev->sock), &payload);
  else if (ev->kind == kError)
    payload = ErrorOrNull(env, *ev);
  Deliver(env, fn, *ev, payload);
}

ServerRef* ServerHandle(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "argument 0 must be a native server handle").ThrowAsJavaScriptException();
    return nullptr;
  }
  return info[0].As<Napi::External<ServerRef>>().Data();
}

// serverOpen(socket, onEvent): takes ownership of a bound, listening socket and starts its accept thread.
Napi::Value ServerOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Sock sock;
  if (!SockArg(info, 0, &sock) || !FunctionArg(info, 1)) return env.Undefined();
  auto sv = std::make_shared<Server>();
  sv->sock = sock;
  if (!sv->waker.Ok()) {
    int err = LastSocketError();
    CloseSock(sock);
    ThrowOsError(env, "server setup", err);
    return env.Undefined();
  }
  if (!MakeTsfn(info, "cuvette:server", 1, sv, CallServer)) {
    CloseSock(sock);
    return env.Undefined();
  }
  live_threads.fetch_add(1);
  std::thread(AcceptLoop, sv).detach();
  return Napi::External<ServerRef>::New(env, new ServerRef(sv), [](Napi::Env, ServerRef* r) { delete r; });
}

Napi::Value ServerClose(const Napi::CallbackInfo& info) {
  ServerRef* h = ServerHandle(info);
  if (h != nullptr) h->get()->waker.Wake();
  return info.Env().Undefined();
}

// streamRef(h, keep) / serverRef(h, keep): whether the handle keeps the event loop alive (net's ref/unref).
template <typename T>
Napi::Value Ref(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsExternal()) return info.Env().Undefined();
  napi_threadsafe_function tsfn = info[0].As<Napi::External<std::shared_ptr<T>>>().Data()->get()->tsfn;
  if (info[1].ToBoolean().Value())
    napi_ref_threadsafe_function(info.Env(), tsfn);
  else
    napi_unref_threadsafe_function(info.Env(), tsfn);
  return info.Env().Undefined();
}

Napi::Value IoThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), live_threads.load()); }

// ---- loopback stand-ins for tests -------------------------------------------------------------------
// AF_INET on 127.0.0.1, created like the VM sockets are (overlapped on Windows, close-on-exec on Linux),
// so tests drive exactly the code above where no vsock peer or Hyper-V exists (Wine, build machines).
Sock NewInetSocket() {
#ifdef _WIN32
  return ::WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
#else
  return ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
#endif
}

sockaddr_in Loopback(int port) {
  sockaddr_in a;
  std::memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// loopbackListen(port) -> { socket, port }: a listening socket on 127.0.0.1 (port 0: the kernel picks).
Napi::Value LoopbackListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int port = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  Sock s = NewInetSocket();
  if (s == kNoSock) {
    ThrowOsError(env, "socket", LastSocketError());
    return env.Undefined();
  }
  sockaddr_in a = Loopback(port);
  socklen_t len = sizeof(a);
  if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || ::listen(s, 16) != 0 ||
      ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    int err = LastSocketError();
    CloseSock(s);
    ThrowOsError(env, "bind/listen 127.0.0.1", err);
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("socket", Napi::Number::New(env, static_cast<double>(s)));
  out.Set("port", Napi::Number::New(env, ntohs(a.sin_port)));
  return out;
}

// loopbackConnect(port) -> socket: a blocking connect to 127.0.0.1:port (immediate on loopback).
Napi::Value LoopbackConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int port = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0;
  Sock s = NewInetSocket();
  if (s == kNoSock) {
    ThrowOsError(env, "socket", LastSocketError());
    return env.Undefined();
  }
  sockaddr_in a = Loopback(port);
  if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    int err = LastSocketError();
    CloseSock(s);
    ThrowOsError(env, "connect 127.0.0.1", err);
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(s));
}

}  // namespace

void InitStreams(Napi::Env env, Napi::Object exports) {
  exports.Set("streamOpen", Napi::Function::New(env, StreamOpen, "streamOpen"));
  exports.Set("streamResume", Napi::Function::New(env, StreamResume, "streamResume"));
  exports.Set("streamWrite", Napi::Function::New(env, StreamWrite, "streamWrite"));
  exports.Set("streamEnd", Napi::Function::New(env, StreamEnd, "streamEnd"));
  exports.Set("streamDestroy", Napi::Function::New(env, StreamDestroy, "streamDestroy"));
  exports.Set("serverOpen", Napi::Function::New(env, ServerOpen, "serverOpen"));
  exports.Set("serverClose", Napi::Function::New(env, ServerClose, "serverClose"));
  exports.Set("streamRef", Napi::Function::New(env, Ref<Stream>, "streamRef"));
  exports.Set("serverRef", Napi::Function::New(env, Ref<Server>, "serverRef"));
  exports.Set("ioThreads", Napi::Function::New(env, IoThreads, "ioThreads"));
  exports.Set("loopbackListen", Napi::Function::New(env, LoopbackListen, "loopbackListen"));
  exports.Set("loopbackConnect", Napi::Function::New(env, LoopbackConnect, "loopbackConnect"));
}

}  // namespace cuvette
