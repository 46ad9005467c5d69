# shellcheck shell=sh
# In the PV guest (busybox sh), its disk served by tapback and tapdisk:
# 6 MiB in 1 MiB direct writes (each split into multi-segment requests),
# single sectors in blocks the VHD never allocated and on both sides of a
# 2 MiB VHD block boundary, 3 sectors across a 4 KiB boundary; then 16 MiB
# read back uncached in 1 MiB requests and 3 sectors read at an odd sector,
# each compared with what was written. dom0 lays out the same image and
# checks the VHD against it after the guest.
set -u
dev=/dev/xvda
fail() { echo "FAIL: $*"; exit 1; }
i=0
while [ ! -b $dev ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
[ -b $dev ] || fail "no $dev"
for f in max_segments max_sectors_kb logical_block_size; do
    echo "guest: xvda $f $(cat /sys/block/xvda/queue/$f 2>/dev/null)"
done

# The layout: writes in order, each to DEV (the disk, or the expected image).
layout() { # DEV FLAGS
    yes "tapdisk-xen big" | head -c 6291456 | dd of="$1" bs=1M seek=1 conv=notrunc ${2:+"$2"} 2>/dev/null || return 1
    for s in 1 7 4095 4097 17001 20479 20480 30001; do
        yes "sector $s" | head -c 512 | dd of="$1" bs=512 seek=$s conv=notrunc ${2:+"$2"} 2>/dev/null || return 1
    done
    yes "across 4k" | head -c 1536 | dd of="$1" bs=512 seek=12287 conv=notrunc ${2:+"$2"} 2>/dev/null || return 1
}
dd if=/dev/zero of=/tmp/expected bs=1M count=16 2>/dev/null || fail "no room for the expected image"
layout /tmp/expected "" || fail "laying out the expected image"
layout $dev oflag=direct || fail "writing to $dev"
sync
echo 3 >/proc/sys/vm/drop_caches
dd if=$dev of=/tmp/back bs=1M count=16 iflag=direct 2>/dev/null || fail "reading 16 MiB back"
cmp /tmp/expected /tmp/back || fail "the 16 MiB read back differ from what was written"
dd if=$dev of=/tmp/odd bs=512 skip=4095 count=3 iflag=direct 2>/dev/null || fail "reading 3 sectors at 4095"
dd if=/tmp/expected of=/tmp/odd.expected bs=512 skip=4095 count=3 2>/dev/null
cmp /tmp/odd.expected /tmp/odd || fail "the 3 sectors read at 4095 differ"
echo "guest: 16 MiB written in 1 MiB, 1-sector and 3-sector direct requests, read back and compared"
