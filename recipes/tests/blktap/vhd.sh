#!/bin/bash
# vhd-util on real VHD files: create, check, query, snapshot, coalesce; and
# qemu-img must read the same virtual size from them.
set -u
export PATH="$SULTANA_PREFIX/bin:$SULTANA_PREFIX/sbin:$PATH"
export LD_LIBRARY_PATH="$SULTANA_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
command -v vhd-util >/dev/null || { echo "vhd-util is not in $SULTANA_PREFIX"; exit 99; }
command -v qemu-img >/dev/null || { echo "skip: qemu-img is not installed (Debian package qemu-utils)"; exit 77; }
cd "$SULTANA_WORK" || exit 99
fail() { echo "FAIL: $*"; exit 1; }
step() { echo "+ $*"; "$@" || fail "$* (exit $?)"; }

step vhd-util create -n base.vhd -s 100
step vhd-util check -n base.vhd
size=$(vhd-util query -n base.vhd -v) || fail "vhd-util query -v"
[ "$size" = 100 ] || fail "vhd-util query says $size MiB, not 100"
# What qemu-img reads from the file, from its JSON (the human form if no python3).
qemu_info() { # key
    if command -v python3 >/dev/null; then
        qemu-img info --output=json base.vhd |
            python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
    elif [ "$1" = virtual-size ]; then
        qemu-img info base.vhd | sed -n 's/^virtual size: .*(\([0-9]*\) bytes)$/\1/p'
    else
        qemu-img info base.vhd | sed -n 's/^file format: //p'
    fi
}
bytes=$(qemu_info virtual-size)
[ "$bytes" = $((100 * 1024 * 1024)) ] || fail "qemu-img info says $bytes bytes, vhd-util 100 MiB"
format=$(qemu_info format)
[ "$format" = vpc ] || fail "qemu-img sees format '$format', not vpc"

# A snapshot on top, checked with its parent, coalesced back. (Data goes in
# through tapdisk, in the tapdisk-nbd test: qemu's own VHD writes leave a
# file without the batmap blktap keeps, which vhd-util then refuses.)
step vhd-util snapshot -n child.vhd -p base.vhd
parent=$(vhd-util query -n child.vhd -p) || fail "vhd-util query -p"
[ "$parent" = "$PWD/base.vhd" ] || fail "child's parent is '$parent', not $PWD/base.vhd"
csize=$(vhd-util query -n child.vhd -v) || fail "vhd-util query -v child"
[ "$csize" = 100 ] || fail "the snapshot is $csize MiB, not 100"
step vhd-util check -n child.vhd -p -b
step vhd-util coalesce -n child.vhd
step vhd-util check -n base.vhd
# qemu reads the whole disk: all zeroes, the right size.
step qemu-io -r -f vpc -c 'read -P 0 0 100M' base.vhd
if qemu-io -r -f vpc -c 'read 100M 512' base.vhd 2>&1 | grep -q '^read 512/512'; then
    fail "qemu read past the end of a 100 MiB disk"
fi
echo "vhd: create/check/query/snapshot/coalesce work and agree with qemu-img"
