#!/bin/bash
# In a Xen dom0 under QEMU, with this blktap installed: tapback serving a PV
# guest's VHD through tapdisk (the ring path: drivers/td-req.c's grant
# copies), the disk given as xen.git's block-tap documents it:
# vdev=xvda,backendtype=tap,format=vhd,target=FILE. The guest writes and
# reads back (tapdisk-xen-guest.sh); then the VHD is checked here with
# vhd-util and qemu-img against the same layout, and no tapdisk is left.
set -u
P=$SULTANA_PREFIX
export PATH="$P/bin:$P/sbin:$PATH"
skip() { echo "skip: $*"; exit 77; }
fail() { syslog; echo "FAIL: $*"; exit 1; }
syslog() {
    [ -f "$SULTANA_WORK/messages" ] || return 0
    echo "--- tapback's and tapdisk's syslog"
    grep -e tapback -e tapdisk "$SULTANA_WORK/messages" | grep -v -e ' ignoring ' -e 'probing device' | tail -n 60
}
for tool in tapback tap-ctl vhd-util; do
    command -v $tool >/dev/null || { echo "$tool is not installed in $P"; exit 99; }
done
cd "$SULTANA_WORK" || exit 99

# The blkback + blktap2 kernel module path needs a tap-ctl that drives the
# module (blktap 3.x and older): blktap 4.x allocates minors of its own.
minor=$(tap-ctl allocate 2>/dev/null)
case $minor in
/dev/xen/blktap-2/*) echo "note: this blktap drives the blktap2 kernel module; only the tapback path is tested here" ;;
*) echo "note: blkback + the blktap2 kernel module (script=block-tap,target=vhd:FILE) is not tested: this blktap ($minor) does not drive the module (blktap 4.x); openxt's module pairs with openxt's blktap" ;;
esac
[ -n "$minor" ] && tap-ctl free -m "${minor##*[!0-9]}" >/dev/null 2>&1

# The tapback path is in Xen's tools from 4.19 (libxl's vbd3 backend): an
# older Xen skips; a newer one without it is broken.
if ! grep -q vbd3 /etc/xen/scripts/block-tap 2>/dev/null; then
    IFS=.- read -r major minor _ <<<"$SULTANA_XEN_VERSION"
    if [ "${major:-0}" -gt 4 ] 2>/dev/null || { [ "${major:-0}" = 4 ] && [ "${minor:-0}" -ge 19 ] 2>/dev/null; }; then
        echo "dom0's Xen $SULTANA_XEN_VERSION has no tapback path in /etc/xen/scripts/block-tap (Xen 4.19 and later have it)"
        exit 99
    fi
    skip "dom0's Xen $SULTANA_XEN_VERSION has no tapback path (backendtype=tap needs Xen 4.19 or later): build xen in the flight"
fi

# tapback and tapdisk log only to syslog.
syslogd -O "$SULTANA_WORK/messages" || exit 99
tapback -p /run/tapback.pid || { echo "tapback did not start"; exit 99; }
vhd-util create -n disk.vhd -s 64 || fail "vhd-util create"

sultana-guest tap "vdev=xvda,backendtype=tap,format=vhd,target=$SULTANA_WORK/disk.vhd" | tee guest.out
code=${PIPESTATUS[0]}
[ "$code" = 0 ] || fail "$(tail -n 1 guest.out)"

left=$(tap-ctl list 2>&1)
[ -z "$left" ] || fail "tapdisk still serves after the guest is gone: $left"
vhd-util check -n disk.vhd || fail "vhd-util check finds the VHD damaged"

# The same layout as the guest's, checked against the VHD as qemu-img reads it.
layout() {
    yes "tapdisk-xen big" | head -c 6291456 | dd of="$1" bs=1M seek=1 conv=notrunc 2>/dev/null || return 1
    for s in 1 7 4095 4097 17001 20479 20480 30001; do
        yes "sector $s" | head -c 512 | dd of="$1" bs=512 seek=$s conv=notrunc 2>/dev/null || return 1
    done
    yes "across 4k" | head -c 1536 | dd of="$1" bs=512 seek=12287 conv=notrunc 2>/dev/null || return 1
}
dd if=/dev/zero of=expected bs=1M count=16 2>/dev/null && layout expected || exit 99
if command -v qemu-img >/dev/null; then
    qemu-img convert -f vpc -O raw disk.vhd disk.raw || fail "qemu-img cannot read the VHD"
    head -c 16777216 disk.raw | cmp - expected || fail "the VHD, read by qemu-img, does not hold what the guest wrote"
    echo "dom0: qemu-img reads in the VHD what the guest wrote"
else
    echo "note: no qemu-img in dom0: the VHD's content was checked by the guest only"
fi
echo "dom0: the guest's disk was served by tapback and tapdisk; the VHD is valid; no tapdisk is left"
