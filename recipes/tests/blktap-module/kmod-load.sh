#!/bin/bash
# Load the blktap2 module, see it allocate a device, unload it: only where
# the host allows (root, module loading, the kernel it was built for);
# anywhere else, skip and say why.
set -u
skip() { echo "skip: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
module=$(find "$SULTANA_DESTDIR/lib/modules" -name blktap.ko 2>/dev/null | head -n 1)
[ -n "$module" ] || fail "no blktap.ko under $SULTANA_DESTDIR/lib/modules"
running=$(uname -r)
built_for=$(tr '\0' '\n' <"$module" | sed -n 's/^vermagic=//p' | head -n 1)
[ "${built_for%% *}" = "$running" ] || skip "the module is for ${built_for%% *}; this host runs $running"
[ "$(id -u)" = 0 ] || skip "loading a module needs root"
command -v insmod >/dev/null || skip "insmod is not installed (Debian package kmod)"
[ -w /proc/sys/kernel/modules_disabled ] && [ "$(cat /proc/sys/kernel/modules_disabled)" = 1 ] &&
    skip "module loading is disabled on this host"
if grep -q '^blktap ' /proc/modules; then
    skip "a blktap module is loaded already; not touching it"
fi
loaded=
cleanup() { [ -n "$loaded" ] && rmmod blktap 2>/dev/null; return 0; }
trap cleanup EXIT
trap 'exit 1' INT TERM
out=$(insmod "$module" 2>&1) || {
    case $out in
        *"Operation not permitted"*) skip "the host refuses module loading: $out" ;;
        *) fail "insmod: $out" ;;
    esac
}
loaded=yes
grep -q '^blktap ' /proc/modules || fail "blktap is not in /proc/modules after insmod"
command -v cc >/dev/null || fail "no C compiler for the allocation check"
# The control device (misc "blktap-control"): made by udev, or by hand here.
control=/dev/blktap-control
if [ ! -c "$control" ]; then
    dev=$(cat /sys/class/misc/blktap-control/dev 2>/dev/null) || fail "no misc device blktap-control"
    control=$SULTANA_WORK/blktap-control
    mknod "$control" c "${dev%%:*}" "${dev##*:}" || fail "mknod $control"
fi
# Allocate a tap with BLKTAP_IOCTL_ALLOC_TAP and free it again, as tap-ctl
# allocate/free of blktap 3.x do.
cat >"$SULTANA_WORK/alloc.c" <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>
struct blktap_info { unsigned int ring_major, bdev_major, ring_minor; };
int main(int argc, char **argv)
{
    struct blktap_info info;
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) { perror(argv[1]); return 1; }
    if (ioctl(fd, 200 /* BLKTAP_IOCTL_ALLOC_TAP */, &info) < 0) { perror("alloc"); return 1; }
    printf("allocated tap %u (ring major %u, device major %u)\n", info.ring_minor, info.ring_major, info.bdev_major);
    if (ioctl(fd, 201 /* BLKTAP_IOCTL_FREE_TAP */, (unsigned long)info.ring_minor) < 0) { perror("free"); return 1; }
    printf("freed tap %u\n", info.ring_minor);
    return argc > 2;
}
C
cc -O2 -o "$SULTANA_WORK/alloc" "$SULTANA_WORK/alloc.c" || fail "cannot build the allocation check"
"$SULTANA_WORK/alloc" "$control" || fail "allocating a tap device"
rmmod blktap || fail "rmmod blktap"
loaded=
echo "kmod-load: loaded, allocated and freed a tap, unloaded"
