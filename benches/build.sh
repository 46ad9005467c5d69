#!/usr/bin/env bash
# Whole-command build benchmarks (issue 3):
#   1. no-op `sultana build` of a built workspace (goal: under 1 s);
#   2. the fixture projects built with -j2 versus one at a time (-j1);
#   3. real blktap through sultana versus its autogen/configure/make/install
#      by hand in a fresh clone (goal: overhead under 5%), when a blktap
#      repository is given.
# Usage: benches/build.sh [BLKTAP_REPO]   (e.g. a bare clone of xapi-project/blktap)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sultana=${SULTANA:-$here/target/release/sultana}
[ -x "$sultana" ] || (cd "$here" && cargo build --release --locked -q)
scratch=${BENCH_DIR:-$(mktemp -d /tmp/sultana-bench-build.XXXXXX)}
mkdir -p "$scratch"
export XDG_CACHE_HOME="$scratch/cache" GIT_CONFIG_NOSYSTEM=1
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

# The demo's fixture projects (autotools lib, make tool, cargo, root tree).
fixture_ws() { # dir
    rm -rf "$1"; mkdir -p "$1"
    "$sultana" demo --setup-only "$1" >/dev/null
}

printf '%-52s %10s\n' "measure" "seconds"
fixture_ws "$scratch/j1"
"$sultana" -q -C "$scratch/j1/workspace" fetch
t=$(now); "$sultana" -q -C "$scratch/j1/workspace" build -j1 >/dev/null; serial=$(elapsed "$t")
fixture_ws "$scratch/j2"
"$sultana" -q -C "$scratch/j2/workspace" fetch
t=$(now); "$sultana" -q -C "$scratch/j2/workspace" build -j2 >/dev/null; par=$(elapsed "$t")
printf '%-52s %10.2f\n' "fixtures, build -j1 (one component at a time)" "$serial"
printf '%-52s %10.2f\n' "fixtures, build -j2 (independent ones in parallel)" "$par"
best=999
for _ in 1 2 3 4 5; do
    t=$(now); "$sultana" -q -C "$scratch/j2/workspace" build >/dev/null; e=$(elapsed "$t")
    [ "$(echo "$e < $best" | bc)" = 1 ] && best=$e
done
printf '%-52s %10.3f\n' "no-op build of the built fixtures (best of 5)" "$best"

if [ $# -ge 1 ]; then
    repo=$1
    rev=${BLKTAP_REV:-v4.0.8}
    # By hand, as the recipe does it.
    rm -rf "$scratch/hand"; git clone -q "$repo" "$scratch/hand"; git -C "$scratch/hand" checkout -q "$rev"
    t=$(now)
    (cd "$scratch/hand" && printf '%s\n' "${rev#v}" > VERSION && ./autogen.sh >/dev/null 2>&1 \
        && ./configure --prefix=/usr/local --libdir=/usr/local/lib --libexecdir=/usr/local/libexec \
             "CFLAGS=-g -O2 -Wno-error=stringop-truncation" >/dev/null \
        && make -j"$(nproc)" >/dev/null 2>&1 \
        && make install DESTDIR="$scratch/hand-stage" SYSTEMD_SERVICE_DIR=/usr/local/lib/systemd/system >/dev/null 2>&1)
    hand=$(elapsed "$t")
    # Through sultana (sources fetched first, not timed).
    rm -rf "$scratch/bt"; mkdir -p "$scratch/bt"
    printf '[components.blktap]\nurl = "file://%s"\nrevision = "%s"\n' "$repo" "$rev" > "$scratch/bt/sultana.toml"
    "$sultana" -q -C "$scratch/bt" fetch
    t=$(now); "$sultana" -q -C "$scratch/bt" build >/dev/null; through=$(elapsed "$t")
    printf '%-52s %10.2f\n' "blktap $rev by hand (autogen, configure, make, install)" "$hand"
    printf '%-52s %10.2f\n' "blktap $rev through sultana build" "$through"
    printf '%-52s %9.1f%%\n' "overhead" "$(echo "scale=4; ($through - $hand) * 100 / $hand" | bc)"
fi
