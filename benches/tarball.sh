#!/usr/bin/env bash
# Whole-command benchmark of `sultana tarball` against the Xen-style baseline
# (tools/misc/mktarball), on the same trees in the same run (issue 4's goals):
#   wall time  <= 0.5x  the baseline's, on two cores
#   size       <= 1.01x the baseline's .tar.gz
# Baseline: each tree `git archive`d from its checkout into a temporary folder
# at its place, then `tar c | gzip -9`.
#
# Usage: benches/tarball.sh ROOT_REPO [NAME:REPO:INTREE ...]
#   e.g. benches/tarball.sh ~/src/xen.git blktap:~/src/blktap.git:tools/blktap
#   With no argument, the demo's fixture trees (tiny: a smoke run only).
# Env: SULTANA (binary), BENCH_DIR (scratch), ROUNDS (default 3; medians).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# This tree's binary, brought up to date first (cargo does nothing when it
# is): a stale one would measure older code.
[ -n "${SULTANA:-}" ] || (cd "$here" && cargo build --release --locked -q)
sultana=${SULTANA:-$here/target/release/sultana}
scratch=${BENCH_DIR:-$(mktemp -d /tmp/sultana-bench-tarball.XXXXXX)}
mkdir -p "$scratch"
export XDG_CACHE_HOME="$scratch/cache" GIT_CONFIG_NOSYSTEM=1 LANG=C
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

ws="$scratch/ws"
rm -rf "$ws"; mkdir -p "$ws"
if [ $# -eq 0 ]; then
    "$sultana" -q demo --setup-only "$scratch/demo" >/dev/null
    cp "$scratch/demo/workspace/sultana.toml" "$ws/"; cp -r "$scratch/demo/workspace/recipes" "$ws/"
    names=(root libfix tool rusty); intrees=(. extras/libfix tools/tool tools/rusty)
else
    names=(root); intrees=(.)
    { echo '[tarball]'; echo 'root = "root"'; echo 'name = "bench-{desc}"'
      printf '\n[components.root]\nurl = "file://%s"\nrevision = "HEAD"\n' "$1"; } > "$ws/sultana.toml"
    shift
    for spec in "$@"; do
        IFS=: read -r name repo intree <<<"$spec"
        names+=("$name"); intrees+=("$intree")
        printf '\n[components.%s]\nurl = "file://%s"\nrevision = "HEAD"\nintree = "%s"\n' "$name" "$repo" "$intree" >> "$ws/sultana.toml"
    done
fi
for i in "${!names[@]}"; do
    url=$(awk -v n="${names[$i]}" '$0=="[components." n "]"{f=1} f&&/^url/{print $3; exit}' "$ws/sultana.toml" | tr -d '"')
    repo=${url#file://}
    head=$(git --git-dir="$repo" rev-parse HEAD 2>/dev/null || git -C "$repo" rev-parse HEAD)
    awk -v n="${names[$i]}" -v h="$head" '$0=="[components." n "]"{f=1} f&&/^revision/{$0="revision = \"" h "\""; f=0} {print}' "$ws/sultana.toml" > "$ws/t" && mv "$ws/t" "$ws/sultana.toml"
done
"$sultana" -q -C "$ws" fetch
echo "trees: ${names[*]}" >&2

base_runs=(); sultana_runs=()
for _ in $(seq "${ROUNDS:-3}"); do
    rm -rf "$scratch/base"; mkdir -p "$scratch/base/tmp/bench"
    t=$(now)
    for i in "${!names[@]}"; do
        dir="$ws/${names[$i]}"
        mkdir -p "$scratch/base/tmp/bench/${intrees[$i]}"
        git -C "$dir" archive --format=tar HEAD | tar x -C "$scratch/base/tmp/bench/${intrees[$i]}"
    done
    tar c -C "$scratch/base/tmp" bench | gzip -9 > "$scratch/base/bench.tar.gz"
    base_runs+=("$(elapsed "$t")")
    rm -rf "$scratch/out"
    t=$(now); "$sultana" -q -C "$ws" tarball --desc bench --format gz --out "$scratch/out" >/dev/null
    sultana_runs+=("$(elapsed "$t")")
done
base=$(median "${base_runs[@]}"); ours=$(median "${sultana_runs[@]}")
base_size=$(stat -c %s "$scratch/base/bench.tar.gz"); our_size=$(stat -c %s "$scratch/out/bench-bench.tar.gz")
first=$(sha256sum < "$scratch/out/bench-bench.tar.gz")
(umask 077; TZ=Asia/Tokyo "$sultana" -q -C "$ws" tarball --desc bench --format gz --out "$scratch/out2" >/dev/null)
second=$(sha256sum < "$scratch/out2/bench-bench.tar.gz")
t=$(now); "$sultana" -q verify-tarball "$scratch/out/bench-bench.tar.gz" >/dev/null; verify=$(elapsed "$t")

echo "runs: baseline ${base_runs[*]}; sultana ${sultana_runs[*]}" >&2
printf '\n%-40s %10s %10s %7s %s\n' "measure" "baseline" "sultana" "ratio" "goal"
printf '%-40s %9.2fs %9.2fs %7s %s\n' "tarball wall time (median)" "$base" "$ours" "$(echo "scale=3; $ours / $base" | bc)" "<= 0.5"
printf '%-40s %10s %10s %7s %s\n' "size of the .tar.gz (bytes)" "$base_size" "$our_size" "$(echo "scale=4; $our_size / $base_size" | bc)" "<= 1.01"
printf '%-40s %10s %10s\n' "same bytes again (umask 077, TZ=Tokyo)" "-" "$([ "$first" = "$second" ] && echo yes || echo NO)"
printf '%-40s %10s %9.2fs\n' "verify-tarball" "-" "$verify"
