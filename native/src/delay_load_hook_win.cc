// Delay-load hook for the mingw cross-build (node-gyp's MSVC builds add their own win_delay_load_hook.cc).
// The import library made from node-api-headers' def file names "node.exe"; the addon must also load in a
// renamed node.exe, in Bun, or in a single-executable app, so the N-API symbols are resolved from
// whatever executable the process runs.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
// windows.h first: delayimp.h uses its types.
#include <delayimp.h>

#include <cstring>

static FARPROC WINAPI CuvetteDelayLoadHook(unsigned int event, DelayLoadInfo* info) {
  if (event != dliNotePreLoadLibrary) return nullptr;
  if (_stricmp(info->szDll, "node.exe") != 0) return nullptr;
  return reinterpret_cast<FARPROC>(::GetModuleHandleW(nullptr));
}

// mingw-w64's delayimp.h declares the hook non-const (MSVC's declares it const).
PfnDliHook __pfnDliNotifyHook2 = CuvetteDelayLoadHook;  // C linkage from the delayimp.h declaration
