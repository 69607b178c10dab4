// Shared declarations for the cuvette_native addon. Each platform file (vsock_linux.cc, hvsock_win.cc)
// and stream_io.cc registers its functions on the exports object; addon.cc owns the module entry point so
// there is exactly one NODE_API_MODULE per build.
#pragma once

#include <napi.h>

#include <string>

namespace cuvette {

// Errors carry the raw OS code (`errno` on Linux, WSAGetLastError()/GetLastError() on Windows) and the
// failing call, so lib/NativeError.ts can map them to a stable reason in one place.
Napi::Error MakeOsError(Napi::Env env, const char* syscall, int code, const std::string& message);

// Sets a pending JS exception; callers then `return env.Undefined()` (C++ exceptions are disabled so the
// same source compiles with MSVC, clang and mingw without exception flags).
void ThrowOsError(Napi::Env env, const char* syscall, int code);

void InitPlatform(Napi::Env env, Napi::Object exports);

#ifdef _WIN32
// service_win.cc: the service-manager dispatcher for `cuvette-agent --service`.
void InitService(Napi::Env env, Napi::Object exports);
#endif

// stream_io.cc: the addon's own I/O threads for connected and listening sockets (both platforms).
void InitStreams(Napi::Env env, Napi::Object exports);

}  // namespace cuvette
