/*
 * bcryptprimitives.dll for Wine 8 (Debian 12), which lacks it: Bun's Windows runtime imports ProcessPrng
 * from it (Windows 10+). Test prefixes only; built by e2e/src/Wine.ts with mingw-w64. Wine 9 ships its own.
 */
#include <windows.h>
#include <ntsecapi.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
  while (len > 0) {
    ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
    if (!RtlGenRandom(data, n)) return FALSE;
    data += n;
    len -= n;
  }
  return TRUE;
}
