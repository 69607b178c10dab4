#!/bin/sh
# build-initramfs.sh KERNEL_DIR OUT.cpio.gz [--qga]
#
# Packs the e2e guest's initramfs: static busybox, the modules the scenarios need (dependencies
# resolved by depmod, loaded by busybox modprobe in the guest), e2e/guest/init as /init and the diag
# server. No glibc, like OpenHCL's VTL2: the agent brings its own loader on the cidata disk.
# --qga adds qemu-ga with its ldd closure (glibc, glib) and a /sbin/shutdown that powers off.
# KERNEL_DIR is what prepare-kernel.sh printed. Needs busybox-static on the host; no cpio, no root.
set -eu

[ $# -ge 2 ] || { echo "usage: build-initramfs.sh KERNEL_DIR OUT.cpio.gz [--qga]" >&2; exit 2; }
KDIR=$(realpath "$1")
OUT=$(realpath -m "$2")
QGA=${3:-}
HERE=$(dirname "$(realpath "$0")")
GUEST=$HERE/../guest
KV=$(cat "$KDIR/release")
BUSYBOX=$(command -v busybox)
# A dynamic busybox would drag glibc in: refuse it rather than boot a guest that cannot start.
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "build-initramfs: $BUSYBOX is dynamically linked; install busybox-static" >&2
  exit 1
fi

# vsock_loopback (with vsock and vmw_vsock_virtio_transport_common) gives the guest AF_VSOCK to itself,
# CID 1: no host transport exists here, but the agent's vsock listener can be reached from inside.
MODS="virtio_pci virtio_blk virtio_console vfat nls_cp437 nls_iso8859-1 nls_utf8 nls_ascii vsock_loopback ${EXTRA_MODS:-}"

R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT INT TERM
mkdir -p "$R/bin" "$R/sbin" "$R/usr/bin" "$R/usr/sbin" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/etc" \
  "$R/run" "$R/var" "$R/root" "$R/cidata"
cp "$BUSYBOX" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"

MDIR=$KDIR/lib/modules/$KV
for m in $MODS; do
  # modules.dep lines are "path/m.ko: dep1.ko dep2.ko"; copy the module and its dependencies.
  line=$(grep -E "(^|/)$m\.ko(\.[a-z]+)?:" "$MDIR/modules.dep" || true)
  [ -n "$line" ] || { echo "build-initramfs: module $m not in $MDIR/modules.dep" >&2; exit 1; }
  for f in $(echo "$line" | tr -d ':'); do
    mkdir -p "$R/lib/modules/$KV/$(dirname "$f")"
    cp "$MDIR/$f" "$R/lib/modules/$KV/$f"
  done
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
  [ -f "$MDIR/$f" ] && cp "$MDIR/$f" "$R/lib/modules/$KV/"
done
busybox depmod -b "$R" "$KV"
echo "$MODS" >"$R/etc/modules"

install -m 755 "$GUEST/init" "$R/init"
install -m 755 "$GUEST/diag-server" "$R/bin/diag-server"

if [ "$QGA" = "--qga" ]; then
  QGA_BIN=$(command -v qemu-ga || echo /usr/sbin/qemu-ga)
  [ -x "$QGA_BIN" ] || { echo "build-initramfs: qemu-ga not found (apt-get install qemu-guest-agent)" >&2; exit 1; }
  cp "$QGA_BIN" "$R/usr/sbin/qemu-ga"
  # ldd prints "name => /path (addr)" and, for the loader, "/lib64/ld-linux-x86-64.so.2 (addr)".
  for lib in $(ldd "$QGA_BIN" | awk '/=> \//{print $3} /^\t\//{print $1}'); do
    mkdir -p "$R$(dirname "$lib")"
    cp -L "$lib" "$R$lib"
  done
  install -m 755 "$GUEST/shutdown" "$R/sbin/shutdown"
elif [ -n "$QGA" ]; then
  echo "build-initramfs: unknown option $QGA" >&2
  exit 2
fi

mkdir -p "$(dirname "$OUT")"
(cd "$R" && find . | busybox cpio -o -H newc -R 0:0 2>/dev/null | gzip -1 >"$OUT.$$.tmp")
mv "$OUT.$$.tmp" "$OUT"
echo "build-initramfs: $OUT ($(du -k "$OUT" | cut -f1) KiB, kernel $KV${QGA:+, qemu-ga})" >&2
