// The Windows service-manager handshake for `cuvette-agent --service`.
// StartServiceCtrlDispatcherW blocks its thread until the service reports STOPPED, and the SCM calls
// ServiceMain and the control handler on threads of its own. None of that may run on the JS thread, so a
// dispatcher thread of ours hosts it and every SCM callback becomes an event posted through one
// ThreadSafeFunction; JS answers with svcReport() (SetServiceStatus may be called from any thread).
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <mutex>
#include <string>
#include <thread>

#include "addon.h"

namespace cuvette {
namespace {

struct Event {
  const char* kind;  // "start" | "stop" | "shutdown" | "failed" | "ended"
  DWORD code;
};

// One service per process (SERVICE_WIN32_OWN_PROCESS), so the state is process-wide.
std::mutex state_mutex;
bool dispatching = false;
Napi::ThreadSafeFunction events;
SERVICE_STATUS_HANDLE status_handle = nullptr;
SERVICE_STATUS status{};
HANDLE stopped_event = nullptr;  // set once JS reports STOPPED; lets ServiceMain return

void CallEvent(Napi::Env env, Napi::Function callback, Event* e) {
  if (env != nullptr && callback != nullptr)
    callback.Call({Napi::String::New(env, e->kind), Napi::Number::New(env, e->code)});
  delete e;
}

void Post(const char* kind, DWORD code) { events.BlockingCall(new Event{kind, code}, CallEvent); }

// Caller holds state_mutex.
BOOL SetStatusLocked(DWORD state, DWORD win32_exit, DWORD service_exit, DWORD wait_hint_ms) {
  status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
  status.dwCurrentState = state;
  status.dwControlsAccepted = state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
  status.dwWin32ExitCode = win32_exit;
  status.dwServiceSpecificExitCode = service_exit;
  // The SCM watches the check point advance while a state is pending; it is 0 in settled states.
  bool pending = state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING;
  status.dwCheckPoint = pending ? status.dwCheckPoint + 1 : 0;
  status.dwWaitHint = pending ? wait_hint_ms : 0;
  return ::SetServiceStatus(status_handle, &status);
}

DWORD WINAPI Handler(DWORD control, DWORD, LPVOID, LPVOID) {
  switch (control) {
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN: {
      {
        std::lock_guard<std::mutex> lock(state_mutex);
        if (status.dwCurrentState == SERVICE_STOP_PENDING || status.dwCurrentState == SERVICE_STOPPED)
          return NO_ERROR;
        SetStatusLocked(SERVICE_STOP_PENDING, NO_ERROR, 0, 30000);
      }
      Post(control == SERVICE_CONTROL_STOP ? "stop" : "shutdown", 0);
      return NO_ERROR;
    }
    case SERVICE_CONTROL_INTERROGATE:
      return NO_ERROR;
    default:
      return ERROR_CALL_NOT_IMPLEMENTED;
  }
}

// argv[0] is the name the service was installed under, whatever it is.
void WINAPI ServiceMain(DWORD argc, LPWSTR* argv) {
  SERVICE_STATUS_HANDLE handle =
      ::RegisterServiceCtrlHandlerExW(argc > 0 ? argv[0] : const_cast<LPWSTR>(L""), Handler, nullptr);
  if (handle == nullptr) {
    Post("failed", ::GetLastError());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(state_mutex);
    status_handle = handle;
    SetStatusLocked(SERVICE_START_PENDING, NO_ERROR, 0, 30000);
  }
  Post("start", 0);
  ::WaitForSingleObject(stopped_event, INFINITE);
}

void Dispatch() {
  static wchar_t empty[] = L"";  // ignored for SERVICE_WIN32_OWN_PROCESS
  SERVICE_TABLE_ENTRYW table[] = {{empty, ServiceMain}, {nullptr, nullptr}};
  if (::StartServiceCtrlDispatcherW(table))
    Post("ended", 0);
  else
    Post("failed", ::GetLastError());  // 1063: the process was not started by the service manager
  events.Release();
}

// svcDispatch(onEvent): starts the dispatcher thread; returns at once.
Napi::Value SvcDispatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsFunction()) {
    Napi::TypeError::New(env, "argument 0 must be the event callback").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::lock_guard<std::mutex> lock(state_mutex);
  if (dispatching) {
    Napi::Error::New(env, "the service dispatcher is already running").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  stopped_event = ::CreateEventW(nullptr, TRUE, FALSE, nullptr);
  if (stopped_event == nullptr) {
    ThrowOsError(env, "CreateEventW", static_cast<int>(::GetLastError()));
    return env.Undefined();
  }
  dispatching = true;
  // The pending events keep the loop alive until the dispatcher has returned.
  events = Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "cuvette:service", 0, 1);
  std::thread(Dispatch).detach();
  return env.Undefined();
}

// svcReport(state, exitCode, waitHintMs): state is "running", "stopping" or "stopped"; a nonzero exit code
// on "stopped" is reported as ERROR_SERVICE_SPECIFIC_ERROR with that code (what `sc query` shows).
Napi::Value SvcReport(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "svcReport(state: string, exitCode: number, waitHintMs: number)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string state = info[0].As<Napi::String>().Utf8Value();
  DWORD exit_code = info[1].As<Napi::Number>().Uint32Value();
  DWORD wait_hint = info[2].As<Napi::Number>().Uint32Value();
  DWORD next;
  if (state == "running")
    next = SERVICE_RUNNING;
  else if (state == "stopping")
    next = SERVICE_STOP_PENDING;
  else if (state == "stopped")
    next = SERVICE_STOPPED;
  else {
    Napi::TypeError::New(env, "state must be running, stopping or stopped").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::lock_guard<std::mutex> lock(state_mutex);
  if (status_handle == nullptr) {
    Napi::Error::New(env, "the service manager has not started the service").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  BOOL ok = next == SERVICE_STOPPED && exit_code != 0
                ? SetStatusLocked(next, ERROR_SERVICE_SPECIFIC_ERROR, exit_code, 0)
                : SetStatusLocked(next, NO_ERROR, 0, wait_hint);
  if (!ok) {
    ThrowOsError(env, "SetServiceStatus", static_cast<int>(::GetLastError()));
    return env.Undefined();
  }
  if (next == SERVICE_STOPPED) ::SetEvent(stopped_event);
  return env.Undefined();
}

}  // namespace

void InitService(Napi::Env env, Napi::Object exports) {
  exports.Set("svcDispatch", Napi::Function::New(env, SvcDispatch, "svcDispatch"));
  exports.Set("svcReport", Napi::Function::New(env, SvcReport, "svcReport"));
}

}  // namespace cuvette
