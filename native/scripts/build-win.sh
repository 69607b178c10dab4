#!/usr/bin/env bash
# Cross-compiles the Windows x64 addon with mingw-w64 (no Windows SDK, no network):
#   node-api-headers' def file -> a delay-import lib for "node.exe" (dlltool -y), resolved at run time by
#   src/delay_load_hook_win.cc to the host executable; -static so no libwinpthread/libstdc++ DLLs.
# Usage: build-win.sh OUT.node (scripts/build.mjs passes native/prebuilds/win32-x64/cuvette_native.node).
set -euo pipefail

native="$(cd "$(dirname "$0")/.." && pwd)"
cxx="${MINGW_CXX:-x86_64-w64-mingw32-g++-posix}" # -posix: the -win32 thread model lacks std::mutex (napi.h needs it)
dlltool="${MINGW_DLLTOOL:-x86_64-w64-mingw32-dlltool}"
for tool in "$cxx" "$dlltool"; do
  command -v "$tool" >/dev/null || { echo "build-win.sh: $tool not found (Debian: apt-get install mingw-w64)" >&2; exit 127; }
done

resolve() { (cd "$native" && node -p "require('path').dirname(require.resolve('$1/package.json'))"); }
headers="$(resolve node-api-headers)"
addon_api="$(resolve node-addon-api)"

out="${1:?usage: build-win.sh OUT.node}"
obj="$(mktemp -d)"
trap 'rm -rf "$obj"' EXIT

"$dlltool" -d "$headers/def/node_api.def" -D node.exe -y "$obj/libnode_delay.a"
"$cxx" -O2 -std=c++17 -shared -static -s \
  -DNAPI_VERSION=8 -DNODE_ADDON_API_DISABLE_CPP_EXCEPTIONS -DUNICODE -D_UNICODE \
  -Wall -Wextra -Wno-unused-parameter -Wno-cast-function-type \
  -I "$headers/include" -I "$addon_api" \
  -o "$out" \
  "$native/src/addon.cc" "$native/src/hvsock_win.cc" "$native/src/stream_io.cc" "$native/src/service_win.cc" "$native/src/delay_load_hook_win.cc" \
  -L "$obj" -lnode_delay -lws2_32 -ladvapi32 -Wl,--no-undefined
