#!/bin/bash
# In a throwaway VM booting the kernel the module was built for (sultana
# boots it; see vm = in the recipe): load the blktap2 module, allocate a
# tap and give it a block device of a chosen size through the module's
# ioctls, remove both, unload it; any oops, BUG or WARNING fails.
set -u
fail() { echo "FAIL: $*"; exit 1; }
module=$(find "$SULTANA_DESTDIR/lib/modules" -name blktap.ko 2>/dev/null | head -n 1)
[ -n "$module" ] || fail "no blktap.ko under $SULTANA_DESTDIR/lib/modules"
echo "kernel $(uname -r); module $(basename "$module")"
insmod "$module" || fail "insmod $(basename "$module"): the module's init failed"
grep -q '^blktap ' /proc/modules || fail "blktap is not in /proc/modules after insmod"
control=/dev/blktap-control
if [ ! -c "$control" ]; then
    dev=$(cat /sys/class/misc/blktap-control/dev 2>/dev/null) || fail "no misc device blktap-control"
    control=/tmp/blktap-control
    mknod "$control" c "${dev%%:*}" "${dev##*:}" || fail "mknod $control"
fi
# 20480 sectors: a 10 MiB disk.
"$SULTANA_WORK/tapcheck" "$control" 20480 || fail "the tap check"
# The freed tap goes away in a work item: give it a moment before rmmod.
for _ in 1 2 3 4 5 6 7 8 9 10; do
    rmmod blktap 2>/dev/null && break
    sleep 0.5
done
grep -q '^blktap ' /proc/modules && fail "rmmod blktap: $(rmmod blktap 2>&1)"
if dmesg | grep -E 'Oops|BUG:|WARNING:|Call Trace' ; then
    fail "the kernel logged trouble"
fi
echo "kmod-load: loaded, allocated a tap, created and removed a 20480-sector device, freed it, unloaded"
