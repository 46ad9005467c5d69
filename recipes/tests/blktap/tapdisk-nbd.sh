#!/bin/bash
# tapdisk serving VHDs over NBD (blktap 4.x has no kernel device): a tapdisk
# opened on a VHD, a pattern written and read back through its NBD unix
# socket with qemu-io, pause/unpause/stats, destroy; then a VHD chain written
# through tapdisk (base, snapshot, child), checked, coalesced, and the base
# read back with qemu-io. What was written is also read back through libnbd
# twice, once with plain (simple) replies and once with structured ones:
# qemu-io only ever asks for structured replies, so tapdisk's other read path
# would go untested. No tapdisk process or /run state is left behind.
set -u
P=$SULTANA_PREFIX
export PATH="$P/bin:$P/sbin:$PATH"
export LD_LIBRARY_PATH="$P/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
skip() { echo "skip: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
step() { echo "+ $*"; "$@" || fail "$* (exit $?)"; }
command -v qemu-io >/dev/null || skip "qemu-io is not installed (Debian package qemu-utils)"
# libnbd's Python binding, from whichever python3 has it (Debian's, when
# another python3 comes first on PATH).
nbdpy=
for py in /usr/bin/python3 python3; do
    if "$py" -c 'import nbd' 2>/dev/null; then nbdpy=$py; break; fi
done
[ -n "$nbdpy" ] || skip "libnbd's Python module is not installed (Debian package python3-libnbd)"
[ "$(id -u)" = 0 ] || skip "tapdisk needs root (its control folder is /run/blktap-control)"
tapdisk=$P/libexec/tapdisk
[ -x "$tapdisk" ] || { echo "$tapdisk is missing"; exit 99; }
cd "$SULTANA_WORK" || exit 99

# tapdisk raises RLIMIT_MEMLOCK and mlockall()s its memory. Where the host
# refuses that (a container without CAP_SYS_RESOURCE), it runs with a preload
# that turns those two calls into no-ops; the result says so.
preload=
if ! (ulimit -l unlimited) 2>/dev/null; then
    command -v cc >/dev/null || skip "this host refuses memory locking and there is no C compiler for the preload"
    cat >nomlock.c <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/resource.h>
typedef int (*setrlimit_fn)(__rlimit_resource_t, const struct rlimit *);
int setrlimit(__rlimit_resource_t resource, const struct rlimit *limit)
{
    if (resource == RLIMIT_MEMLOCK)
        return 0;
    return ((setrlimit_fn)dlsym(RTLD_NEXT, "setrlimit"))(resource, limit);
}
int mlockall(int flags) { (void)flags; return 0; }
C
    cc -shared -fPIC -O2 -o nomlock.so nomlock.c -ldl || fail "cannot build the preload"
    preload=$PWD/nomlock.so
    echo "note: this host refuses memory locking: tapdisk runs with nomlock.so (setrlimit(RLIMIT_MEMLOCK) and mlockall are no-ops)"
fi

# Every tapdisk and minor this test made, undone on any exit (the gate sends
# TERM before KILL on a timeout, so this runs then too).
served=()
fresh_run_dir=
[ -e /run/blktap-control ] || fresh_run_dir=yes
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
cleanup() {
    local entry pid minor
    for entry in "${served[@]}"; do
        [ -n "$entry" ] || continue
        pid=${entry%:*} minor=${entry#*:}
        tap-ctl destroy -p "$pid" -m "$minor" >/dev/null 2>&1
        alive "$pid" && kill -TERM "$pid" 2>/dev/null && sleep 1
        alive "$pid" && kill -KILL "$pid" 2>/dev/null
        tap-ctl free -m "$minor" >/dev/null 2>&1
        rm -f /run/blktap-control/*"$pid".* /run/blktap-control/ctl"$pid" /run/blktap-control/nbdclient"$pid"
    done
    if [ -n "$fresh_run_dir" ]; then
        rmdir /run/blktap-control/tapdisk /run/blktap-control 2>/dev/null
    fi
    return 0
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Serve IMAGE (driver:path) as tap-ctl create does: allocate a minor, start
# tapdisk, attach, open. Sets PID, MINOR and SOCK (the NBD socket).
serve() {
    local out dev
    out=$(LD_PRELOAD=$preload "$tapdisk") || fail "tapdisk did not start: $out"
    PID=${out##*/ctl}
    [[ $PID =~ ^[0-9]+$ ]] || fail "tapdisk printed '$out', not its control socket"
    dev=$(tap-ctl allocate) || fail "tap-ctl allocate"
    MINOR=${dev##*tapdisk-}
    served+=("$PID:$MINOR")
    step tap-ctl attach -p "$PID" -m "$MINOR"
    step tap-ctl open -p "$PID" -m "$MINOR" -a "$1"
    SOCK=/run/blktap-control/nbd$PID.$MINOR
    for _ in 1 2 3 4 5 6 7 8 9 10; do [ -S "$SOCK" ] && break; sleep 0.5; done
    [ -S "$SOCK" ] || fail "no NBD socket $SOCK"
    tap-ctl list | grep -q "pid=$PID minor=$MINOR .*args=$1" || fail "tap-ctl list does not show $1"
}

stop() {
    step tap-ctl destroy -p "$PID" -m "$MINOR"

    for _ in 1 2 3 4 5 6 7 8 9 10; do alive "$PID" || break; sleep 0.5; done
    alive "$PID" && fail "tapdisk $PID still runs after destroy"
    served=("${served[@]/$PID:$MINOR}")
    [ -e "$SOCK" ] && fail "$SOCK is still there after destroy"
    return 0
}

# qemu-io with commands, failing on a pattern mismatch too (it exits 0 then).
qemu() { # format target commands...
    local format=$1 target=$2 args=() c status
    shift 2
    for c in "$@"; do args+=(-c "$c"); done
    echo "+ qemu-io -f $format ${*@Q} $target"
    qemu-io -r -f "$format" "${args[@]}" "$target" >qemu-io.out 2>&1
    status=$?
    cat qemu-io.out
    if [ $status -ne 0 ] || grep -q 'Pattern verification failed' qemu-io.out; then
        fail "qemu-io on $target"
    fi
}
nbd() { # commands... through the served image's NBD socket (read-write)
    local args=() c status
    for c in "$@"; do args+=(-c "$c"); done
    echo "+ qemu-io -f raw ${*@Q} (NBD $SOCK)"
    qemu-io -f raw "${args[@]}" "nbd+unix:///?socket=$SOCK" >qemu-io.out 2>&1
    status=$?
    cat qemu-io.out
    if [ $status -ne 0 ] || grep -q 'Pattern verification failed' qemu-io.out; then
        fail "qemu-io through NBD"
    fi
}

# Read SPANS (offset:length:byte, sizes with M) through the NBD socket with
# libnbd, with plain replies and then with structured ones, and compare each
# byte with what was written. Plain replies must not be refused: a server
# that insists on structured replies fails here.
nbd_both() {
    echo "+ libnbd reads, plain and structured replies: $* (NBD $SOCK)"
    NBD_SOCK=$SOCK "$nbdpy" - "$@" <<'PY' || fail "libnbd reads through NBD"
import os
import sys

import nbd

MIB = 1024 * 1024
CHUNK = MIB // 2

def size(text):
    return int(text[:-1]) * MIB if text.endswith("M") else int(text, 0)

spans = []
for arg in sys.argv[1:]:
    offset, length, byte = arg.split(":")
    spans.append((size(offset), size(length), int(byte, 0)))

for structured in (False, True):
    h = nbd.NBD()
    h.set_request_structured_replies(structured)
    h.connect_uri("nbd+unix:///?socket=" + os.environ["NBD_SOCK"])
    got = h.get_structured_replies_negotiated()
    kind = "structured" if structured else "plain"
    if got != structured:
        # Both reply kinds are what qemu and the kernel's client ask for.
        sys.exit("asked for %s replies, the server would not use them" % kind)
    for offset, length, byte in spans:
        want = bytes([byte]) * CHUNK
        done = 0
        while done < length:
            n = min(CHUNK, length - done)
            data = h.pread(n, offset + done)
            if data != want[:n]:
                bad = next(i for i in range(n) if data[i] != byte)
                sys.exit("%s replies: byte %d reads 0x%02x, 0x%02x was written" % (kind, offset + done + bad, data[bad], byte))
            done += n
    # Dropped, not shut down: tapdisk answers NBD_CMD_DISC, which the
    # protocol says a server must not, and libnbd takes that for an error.
    del h
    print("%s replies: %d span(s) read back as written" % (kind, len(spans)))
PY
}

# 1. One disk: write and read back, pause/unpause, stats, destroy.
step vhd-util create -n disk.vhd -s 64
serve "vhd:$PWD/disk.vhd"
nbd 'write -P 0xa5 0 4M' 'write -P 0x3c 16M 1M' 'read -P 0xa5 0 4M' 'read -P 0x3c 16M 1M' 'read -P 0 8M 1M'
nbd_both 0:4M:0xa5 16M:1M:0x3c 8M:1M:0 4M:4M:0
step tap-ctl pause -p "$PID" -m "$MINOR"
tap-ctl list | grep "pid=$PID minor=$MINOR" | grep -q 'state=0x2a' || fail "tap-ctl list does not show the pause"
step tap-ctl unpause -p "$PID" -m "$MINOR"
nbd 'read -P 0xa5 0 4M'
stats=$(tap-ctl stats -p "$PID" -m "$MINOR") || fail "tap-ctl stats"
echo "stats: $stats"
case $stats in *"\"name\": \"vhd:$PWD/disk.vhd\""*) ;; *) fail "stats do not name the image" ;; esac
stop
step vhd-util check -n disk.vhd
# What went through tapdisk is in the file, as qemu reads it.
qemu vpc disk.vhd 'read -P 0xa5 0 4M' 'read -P 0x3c 16M 1M' 'read -P 0 4M 12M'

# 2. A chain: base written, snapshot, child written, checked, coalesced.
step vhd-util create -n base.vhd -s 64
serve "vhd:$PWD/base.vhd"
nbd 'write -P 0x11 0 8M'
stop
step vhd-util snapshot -n child.vhd -p base.vhd
serve "vhd:$PWD/child.vhd"
nbd 'read -P 0x11 0 8M' 'write -P 0x22 2M 2M' 'write -P 0x33 32M 1M'
nbd_both 0:2M:0x11 2M:2M:0x22 4M:4M:0x11 32M:1M:0x33 33M:1M:0
stop
step vhd-util check -n child.vhd -p -b
step vhd-util coalesce -n child.vhd
step vhd-util check -n base.vhd
qemu vpc base.vhd 'read -P 0x11 0 2M' 'read -P 0x22 2M 2M' 'read -P 0x11 4M 4M' \
    'read -P 0x33 32M 1M' 'read -P 0 33M 31M'
echo "tapdisk-nbd: pattern through NBD (qemu-io, libnbd with plain and structured replies), pause/unpause/stats/destroy, chain coalesced and read back${preload:+ (with nomlock.so)}"
