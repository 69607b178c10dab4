#!/usr/bin/env bash
# Installs the Debian packages Cuvette's tests, benchmark and VM demo use, when missing and when root.
# Idempotent and quiet when everything is present. Only Debian's apt is used.
set -euo pipefail
# g++ builds the Linux addon on `npm ci`; g++-aarch64-linux-gnu and mingw-w64 cross-build the arm64 and
# Windows addons that `npm pack` ships (native/scripts/build.mjs); qemu-user-static runs the arm64 single-file CLI.
# chromium runs the console bridge's browser test (packages/cli/test/Browser.e2e.test.ts).
PKGS=(qemu-system-x86 qemu-utils qemu-guest-agent busybox-static dosfstools mtools socat fdisk util-linux
      cloud-init g++ g++-aarch64-linux-gnu mingw-w64 xz-utils cpio wine64 zsh fish qemu-user-static chromium)
missing=()
for p in "${PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "setup-system: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
