// Module entry point for cuvette_native: common helpers, then the platform's own functions.
#include "addon.h"

#include <cstring>

#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#endif

namespace cuvette {

static std::string DescribeCode(int code) {
#ifdef _WIN32
  char buf[512] = {0};
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, nullptr,
                           static_cast<DWORD>(code), 0, buf, sizeof(buf), nullptr);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == '.')) buf[--n] = 0;
  return n > 0 ? std::string(buf) : "error " + std::to_string(code);
#else
  return std::strerror(code);
#endif
}

Napi::Error MakeOsError(Napi::Env env, const char* syscall, int code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message.empty() ? std::string(syscall) + ": " + DescribeCode(code) : message);
  error.Set("errno", Napi::Number::New(env, code));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

void ThrowOsError(Napi::Env env, const char* syscall, int code) {
  MakeOsError(env, syscall, code, "").ThrowAsJavaScriptException();
}

}  // namespace cuvette

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
#ifdef _WIN32
  exports.Set("platform", Napi::String::New(env, "win32"));
#else
  exports.Set("platform", Napi::String::New(env, "linux"));
#endif
  cuvette::InitPlatform(env, exports);
  cuvette::InitStreams(env, exports);
  return exports;
}

NODE_API_MODULE(cuvette_native, Init)
