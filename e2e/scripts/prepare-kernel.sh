#!/bin/sh
# prepare-kernel.sh [CACHE_DIR]
#
# Fetches Debian's current kernel package without installing it and leaves, under
# CACHE_DIR/<kernel package name>/:
#   vmlinux           the uncompressed PVH ELF (QEMU boots it directly; decompressing the XZ bzImage
#                     under TCG costs ~3 s per boot)
#   release           the kernel release (uname -r), e.g. 6.1.0-56-amd64
#   lib/modules/KV/   the modules with a busybox-depmod'ed modules.dep (the .deb ships none)
# The directory is reused when complete (a .complete stamp); the package name moves with security
# updates, so a new kernel lands in a new directory. Prints the directory on stdout (last line).
set -eu

CACHE=${1:-${CUVETTE_CACHE:-$HOME/.cache/cuvette}/e2e}
log() { echo "prepare-kernel: $*" >&2; }

resolve() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
PKG=$(resolve || true)
if [ -z "$PKG" ]; then
  # A fresh machine (or container) may have empty package lists.
  log "apt-cache knows no linux-image-amd64; running apt-get update"
  apt-get update -qq >/dev/null
  PKG=$(resolve || true)
fi
[ -n "$PKG" ] || { log "cannot resolve linux-image-amd64 to a kernel package (apt-cache depends linux-image-amd64)"; exit 1; }

OUT=$CACHE/$PKG
if [ -f "$OUT/.complete" ] && [ -f "$OUT/vmlinux" ]; then
  log "cached: $OUT"
  echo "$OUT"
  exit 0
fi

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/.prepare.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
cd "$WORK"

log "downloading $PKG"
# As root apt warns that the _apt sandbox cannot read the cwd; the download still succeeds.
apt-get download -q "$PKG" >/dev/null 2>&1 || apt-get download "$PKG" >&2
DEB=$(ls "$PKG"_*.deb)
mkdir kx
dpkg -x "$DEB" kx
rm -f "$DEB"
KV=$(ls kx/lib/modules)
busybox depmod -b kx "$KV"

# Debian's bzImage carries an XZ payload; cut from the XZ magic and decompress. xz complains about the
# bytes after the stream ("trailing garbage"): expected, hence || true plus the ELF check below.
VMLINUZ=kx/boot/vmlinuz-$KV
off=$(grep -abo "$(printf '\3757zXZ')" "$VMLINUZ" | head -1 | cut -d: -f1)
[ -n "$off" ] || { log "no XZ payload in $VMLINUZ"; exit 1; }
tail -c +$((off + 1)) "$VMLINUZ" | xz -dc >vmlinux 2>/dev/null || true
[ "$(head -c 4 vmlinux | od -An -c | tr -d ' ')" = "177ELF" ] || { log "extracted vmlinux is not an ELF"; exit 1; }

mkdir -p stage/lib
mv vmlinux stage/
mv kx/lib/modules stage/lib/
echo "$KV" >stage/release
echo "$PKG" >stage/package
touch stage/.complete
rm -rf "$OUT"
mv stage "$OUT"
# A superseded kernel is ~430 MB: keep only the current one.
for old in "$CACHE"/linux-image-*; do
  [ "$old" = "$OUT" ] || [ ! -d "$old" ] || { log "removing superseded $old"; rm -rf "$old"; }
done
log "ready: $OUT (kernel $KV)"
echo "$OUT"
