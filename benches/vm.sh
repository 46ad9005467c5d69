#!/usr/bin/env bash
# The VM tests (issue 28): how long kmod-load of the real blktap2 module
# takes under TCG (goal: at most 30 s on 2 cores), its boot reported apart,
# against the baseline of a bare QEMU boot of the same kernel into a
# busybox shell that powers off at once.
# Usage: benches/vm.sh [BLKTAP-MODULE-REPO]   (default: the public repository;
# any clone with its openxt branch)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# This tree's binary, brought up to date first (cargo does nothing when it
# is): a stale one would measure older code.
[ -n "${SULTANA:-}" ] || (cd "$here" && cargo build --release --locked -q)
sultana=${SULTANA:-$here/target/release/sultana}
repo=${1:-https://github.com/ydirson/blktap-module.git}
scratch=${BENCH_DIR:-$(mktemp -d /tmp/sultana-bench-vm.XXXXXX)}
mkdir -p "$scratch"
export XDG_CACHE_HOME="$scratch/cache" HOME="$scratch/home" SULTANA_VM_ACCEL=tcg
mkdir -p "$HOME"
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
release=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' /usr/src/linux-headers-*-amd64/include/generated/utsrelease.h | sort | tail -n 1)
kernel=/boot/vmlinuz-$release

# Baseline: the same kernel, a root of busybox alone, straight to poweroff.
root="$scratch/bare"; rm -rf "$root"; mkdir -p "$root/bin"
cp "$(command -v busybox)" "$root/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox mount -t devtmpfs d /dev\necho up >/dev/ttyS0\n/bin/busybox poweroff -f\n' > "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet > "$scratch/bare.cpio")
t=$(now)
qemu-system-x86_64 -nodefaults -display none -no-reboot -accel tcg -smp 1 -m 512 -kernel "$kernel" \
    -initrd "$scratch/bare.cpio" -append "console=ttyS0 loglevel=5 panic=-1 rdinit=/init" \
    -serial "file:$scratch/bare.console" >/dev/null 2>&1
bare=$(elapsed "$t")

ws="$scratch/w"; rm -rf "$ws"; mkdir -p "$ws"
printf '[components.blktap-module]\nurl = "%s"\nrevision = "openxt"\n' "$repo" > "$ws/sultana.toml"
"$sultana" -q -C "$ws" build >/dev/null
t=$(now)
"$sultana" -C "$ws" test --test kmod-load --json > "$scratch/test.json" 2> "$scratch/test.err"
whole=$(elapsed "$t")
booted=$(sed -n 's/^# vm: .* booted in \([0-9.]*\)s$/\1/p' "$ws/.sultana/test/test-blktap-module-kmod-load.log")

printf '%-52s %8s\n' "measure (TCG, kernel $release)" "seconds"
printf '%-52s %8.2f\n' "baseline: bare QEMU boot to a shell and poweroff" "$bare"
printf '%-52s %8.2f\n' "sultana test kmod-load: boot to the test" "$booted"
printf '%-52s %8.2f\n' "sultana test kmod-load: whole command" "$whole"
printf '%-52s %8.2f\n' "ratio whole / bare boot" "$(echo "$whole / $bare" | bc -l)"
grep -q '"status": "pass"' "$scratch/test.json" || { echo "kmod-load did not pass:"; cat "$scratch/test.err"; exit 1; }
