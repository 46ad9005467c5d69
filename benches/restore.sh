#!/usr/bin/env bash
# Restore time of a real Xen build from the shared build cache, every file
# checked against the entry's sha256 list (issue 27; goal: at most 2 s),
# against copying the same staged prefix with `cp -a` (the floor).
#   1. xen (hypervisor and tools, as the shipped recipe builds them) built
#      once in a first workspace, which stores it (not timed: the build);
#   2. a second workspace at the same pins: `sultana build` restores it.
# Usage: benches/restore.sh XEN_REPO [REV]   (e.g. a bare clone of xen.git)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# This tree's binary, brought up to date first (cargo does nothing when it
# is): a stale one would measure older code.
[ -n "${SULTANA:-}" ] || (cd "$here" && cargo build --release --locked -q)
sultana=${SULTANA:-$here/target/release/sultana}
[ $# -ge 1 ] || { echo "usage: $0 XEN_REPO [REV]" >&2; exit 2; }
repo=$1
rev=${2:-RELEASE-4.21.0}
scratch=${BENCH_DIR:-$(mktemp -d /tmp/sultana-bench-restore.XXXXXX)}
mkdir -p "$scratch"
export XDG_CACHE_HOME="$scratch/cache" GIT_CONFIG_NOSYSTEM=1
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

manifest() { # dir
    rm -rf "$1"; mkdir -p "$1"
    printf '[components.xen]\nurl = "file://%s"\nrevision = "%s"\n' "$repo" "$rev" > "$1/sultana.toml"
}
manifest "$scratch/first"
"$sultana" -q -C "$scratch/first" fetch
t=$(now); "$sultana" -q -C "$scratch/first" build -j"$(nproc)" >/dev/null; built=$(elapsed "$t")
manifest "$scratch/second"
cp "$scratch/first/sultana.lock" "$scratch/second/"
"$sultana" -q -C "$scratch/second" fetch
t=$(now); "$sultana" -C "$scratch/second" build --json > "$scratch/second.json"; restored=$(elapsed "$t")
grep -q '"status": "cached"' "$scratch/second.json" || { cat "$scratch/second.json" >&2; echo "not restored" >&2; exit 1; }
t=$(now); cp -a "$scratch/first/dist/xen" "$scratch/copy"; copied=$(elapsed "$t")
files=$(find "$scratch/first/dist/xen" -type f | wc -l)
size=$(du -sh "$scratch/first/dist/xen" | cut -f1)
printf '%-56s %10s\n' "measure" "seconds"
printf '%-56s %10.2f\n' "xen $rev built (first workspace, stored)" "$built"
printf '%-56s %10.2f\n' "second workspace: sultana build (restore, sha256 checked)" "$restored"
printf '%-56s %10.2f\n' "cp -a of the same staged prefix ($files files, $size)" "$copied"
printf '%-56s %9.2fx\n' "ratio restore / cp -a" "$(echo "scale=4; $restored / $copied" | bc)"
