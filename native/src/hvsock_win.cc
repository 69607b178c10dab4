// AF_HYPERV (Hyper-V sockets) for Windows hosts and guests: creation, bind, listen and connect. Accepting
// and all data I/O are stream_io.cc's threads (overlapped WSARecv/WSASend), as for every socket the addon
// hands to JS.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <windows.h>

#include <cstring>

#include "addon.h"

namespace cuvette {
namespace {

// Windows SDK ws2def.h: AF_HYPERV. mingw-w64's winsock2.h stops at AF_MAX 33 and lacks it.
constexpr int kAfHyperV = 34;
// hvsocket.h: HV_PROTOCOL_RAW (socket protocol and setsockopt level).
constexpr int kHvProtocolRaw = 1;
// hvsocket.h: HVSOCKET_CONNECT_TIMEOUT (ULONG milliseconds), max HVSOCKET_CONNECT_TIMEOUT_MAX.
constexpr int kHvSocketConnectTimeout = 1;
constexpr ULONG kHvSocketConnectTimeoutMax = 300000;
// HvSocket.h: HVSOCKET_HIGH_VTL (ULONG 1 = connect to the guest's VTL2). Must be set before connect().
constexpr int kHvSocketHighVtl = 8;

// hvsocket.h SOCKADDR_HV, spelled out so the file builds with any SDK: 36 bytes, GUIDs in Windows layout.
#pragma pack(push, 1)
struct SockaddrHv {
  ADDRESS_FAMILY Family;
  USHORT Reserved;
  GUID VmId;
  GUID ServiceId;
};
#pragma pack(pop)
static_assert(sizeof(SockaddrHv) == 36, "SOCKADDR_HV is 36 bytes");

bool AddrArg(const Napi::CallbackInfo& info, size_t i, SockaddrHv* out) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[i].As<Napi::Uint8Array>().ByteLength() != sizeof(SockaddrHv)) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a 36-byte SOCKADDR_HV (HvAddress.encodeSockaddrHv)")
        .ThrowAsJavaScriptException();
    return false;
  }
  std::memcpy(out, info[i].As<Napi::Uint8Array>().Data(), sizeof(SockaddrHv));
  return true;
}

bool NumArg(const Napi::CallbackInfo& info, size_t i, double lo, double hi, double* out) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= lo && v <= hi)) {
    Napi::RangeError::New(info.Env(), "argument " + std::to_string(i) + " is out of range").ThrowAsJavaScriptException();
    return false;
  }
  *out = v;
  return true;
}

// Overlapped for stream_io.cc's WSARecv/WSASend; not inheritable so child processes do not keep it open.
SOCKET NewSocket() {
  return ::WSASocketW(kAfHyperV, SOCK_STREAM, kHvProtocolRaw, nullptr, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
}

class ConnectWorker : public Napi::AsyncWorker {
 public:
  ConnectWorker(Napi::Env env, const SockaddrHv& addr, bool vtl2, ULONG timeout_ms)
      : Napi::AsyncWorker(env, "cuvette:hvsock-connect"), deferred_(Napi::Promise::Deferred::New(env)), addr_(addr), vtl2_(vtl2), timeout_ms_(timeout_ms) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  // A blocking connect on the threadpool, bounded by HVSOCKET_CONNECT_TIMEOUT: the event loop never waits.
  void Execute() override {
    sock_ = NewSocket();
    if (sock_ == INVALID_SOCKET) return Fail("socket", ::WSAGetLastError());
    ULONG timeout = timeout_ms_;
    if (::setsockopt(sock_, kHvProtocolRaw, kHvSocketConnectTimeout, reinterpret_cast<const char*>(&timeout), sizeof(timeout)) != 0)
      return Fail("setsockopt HVSOCKET_CONNECT_TIMEOUT", ::WSAGetLastError());
    if (vtl2_) {
      ULONG high = 1;
      if (::setsockopt(sock_, kHvProtocolRaw, kHvSocketHighVtl, reinterpret_cast<const char*>(&high), sizeof(high)) != 0)
        return Fail("setsockopt HVSOCKET_HIGH_VTL", ::WSAGetLastError());
    }
    if (::connect(sock_, reinterpret_cast<const sockaddr*>(&addr_), sizeof(addr_)) != 0) return Fail("connect", ::WSAGetLastError());
  }

  void OnOK() override { deferred_.Resolve(Napi::Number::New(Env(), static_cast<double>(sock_))); }

  void OnError(const Napi::Error&) override { deferred_.Reject(MakeOsError(Env(), syscall_, err_, "").Value()); }

 private:
  void Fail(const char* syscall, int err) {
    syscall_ = syscall;
    err_ = err;
    if (sock_ != INVALID_SOCKET) ::closesocket(sock_);
    sock_ = INVALID_SOCKET;
    SetError(syscall);
  }

  Napi::Promise::Deferred deferred_;
  SockaddrHv addr_;
  bool vtl2_;
  ULONG timeout_ms_;
  SOCKET sock_ = INVALID_SOCKET;
  int err_ = 0;
  const char* syscall_ = "connect";
};

Napi::Value HvConnect(const Napi::CallbackInfo& info) {
  SockaddrHv addr;
  double timeout;
  if (!AddrArg(info, 0, &addr)) return info.Env().Undefined();
  bool vtl2 = info.Length() > 1 && info[1].ToBoolean().Value();
  if (!NumArg(info, 2, 1, kHvSocketConnectTimeoutMax, &timeout)) return info.Env().Undefined();
  auto* worker = new ConnectWorker(info.Env(), addr, vtl2, static_cast<ULONG>(timeout));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// hvListen(sockaddr, backlog) -> a bound, listening SOCKET for serverOpen.
Napi::Value HvListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SockaddrHv name;
  double backlog;
  if (!AddrArg(info, 0, &name) || !NumArg(info, 1, 1, 65535, &backlog)) return env.Undefined();
  SOCKET sock = NewSocket();
  if (sock == INVALID_SOCKET) {
    ThrowOsError(env, "socket", ::WSAGetLastError());
    return env.Undefined();
  }
  const char* failed = nullptr;
  if (::bind(sock, reinterpret_cast<const sockaddr*>(&name), sizeof(name)) != 0)
    failed = "bind";
  else if (::listen(sock, static_cast<int>(backlog)) != 0)
    failed = "listen";
  if (failed != nullptr) {
    int err = ::WSAGetLastError();
    ::closesocket(sock);
    ThrowOsError(env, failed, err);
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(sock));
}

// hvSockname(socket) -> the bound 36-byte SOCKADDR_HV.
Napi::Value HvSockname(const Napi::CallbackInfo& info) {
  double s;
  if (!NumArg(info, 0, 0, 9007199254740991.0, &s)) return info.Env().Undefined();
  SockaddrHv name{};
  int len = sizeof(name);
  if (::getsockname(static_cast<SOCKET>(s), reinterpret_cast<sockaddr*>(&name), &len) != 0) {
    ThrowOsError(info.Env(), "getsockname", ::WSAGetLastError());
    return info.Env().Undefined();
  }
  Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), sizeof(SockaddrHv));
  std::memcpy(out.Data(), &name, sizeof(SockaddrHv));
  return out;
}

Napi::Value HvClose(const Napi::CallbackInfo& info) {
  double s;
  if (!NumArg(info, 0, 0, 9007199254740991.0, &s)) return info.Env().Undefined();
  if (::closesocket(static_cast<SOCKET>(s)) != 0) ThrowOsError(info.Env(), "closesocket", ::WSAGetLastError());
  return info.Env().Undefined();
}

}  // namespace

void InitPlatform(Napi::Env env, Napi::Object exports) {
  // libuv has already started Winsock in node.exe; this reference also covers hosts that have not (Bun).
  WSADATA data;
  int rc = ::WSAStartup(MAKEWORD(2, 2), &data);
  if (rc != 0) {
    ThrowOsError(env, "WSAStartup", rc);
    return;
  }
  exports.Set("hvConnect", Napi::Function::New(env, HvConnect, "hvConnect"));
  exports.Set("hvListen", Napi::Function::New(env, HvListen, "hvListen"));
  exports.Set("hvSockname", Napi::Function::New(env, HvSockname, "hvSockname"));
  exports.Set("hvClose", Napi::Function::New(env, HvClose, "hvClose"));
  InitService(env, exports);
}

}  // namespace cuvette
