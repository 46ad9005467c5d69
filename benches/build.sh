#!/usr/bin/env bash
# Whole-command build benchmarks (issue 3):
#   1. no-op `sultana build` of a built workspace (goal: under 1 s);
#   2. the fixture projects built with -j2 versus one at a time (-j1);
#   3. real blktap through sultana versus its autogen/configure/make/install
#      by hand in a fresh clone (goal: overhead under 5%), when a blktap
#      repository is given, with and without a cold ccache's misses; and then
#      (issue 18):
#   4. a one-file edit: `sultana build` against `make && make install` by hand
#      after the same edit (goal: at most 1.3x);
#   5. a second workspace at the same pins against the first build (goal: at
#      most 0.1x: restored from the shared build cache);
#   6. a bisect over 16 first-parent commits of blktap (its test fails from
#      a marker commit on): without the caches, with them cold, with them
#      warm (another workspace bisected the same range first).
# Usage: benches/build.sh [BLKTAP_REPO]   (e.g. a bare clone of xapi-project/blktap)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# This tree's binary, brought up to date first (cargo does nothing when it
# is): a stale one would measure older code.
[ -n "${SULTANA:-}" ] || (cd "$here" && cargo build --release --locked -q)
sultana=${SULTANA:-$here/target/release/sultana}
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
t=$(now); "$sultana" -q -C "$scratch/j1/workspace" build -j1 --no-build-cache >/dev/null; serial=$(elapsed "$t")
fixture_ws "$scratch/j2"
"$sultana" -q -C "$scratch/j2/workspace" fetch
t=$(now); "$sultana" -q -C "$scratch/j2/workspace" build -j2 --no-build-cache >/dev/null; par=$(elapsed "$t")
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
    # The same in another workspace without the compiler cache (and without
    # the build cache, which would restore it): a cold ccache pays for its
    # misses, which later builds get back.
    rm -rf "$scratch/bt-plain"; mkdir -p "$scratch/bt-plain"
    cp "$scratch/bt/sultana.toml" "$scratch/bt-plain/"
    "$sultana" -q -C "$scratch/bt-plain" fetch
    t=$(now); "$sultana" -q -C "$scratch/bt-plain" build --no-ccache --no-build-cache >/dev/null; plain=$(elapsed "$t")
    printf '%-52s %10.2f\n' "blktap $rev by hand (autogen, configure, make, install)" "$hand"
    printf '%-52s %10.2f\n' "blktap $rev through sultana build" "$through"
    printf '%-52s %9.1f%%\n' "overhead" "$(echo "scale=4; ($through - $hand) * 100 / $hand" | bc)"
    printf '%-52s %10.2f\n' "blktap $rev through sultana build --no-ccache" "$plain"
    printf '%-52s %9.1f%%\n' "overhead without ccache's cold misses" "$(echo "scale=4; ($plain - $hand) * 100 / $hand" | bc)"

    # 4. One-file edit, the same edit both ways.
    edit() { printf '/* edit %s */\n' "$2" >> "$1/vhd/lib/libvhd.c"; }
    edit "$scratch/hand" 1
    t=$(now)
    (cd "$scratch/hand" && make -j"$(nproc)" >/dev/null 2>&1 \
        && make install DESTDIR="$scratch/hand-stage" SYSTEMD_SERVICE_DIR=/usr/local/lib/systemd/system >/dev/null 2>&1)
    hand_edit=$(elapsed "$t")
    edit "$scratch/bt/blktap" 1
    t=$(now); "$sultana" -q -C "$scratch/bt" build >/dev/null; through_edit=$(elapsed "$t")
    grep -q 'edit 1' "$scratch/bt/blktap/vhd/lib/libvhd.c"
    printf '%-52s %10.2f\n' "one-file edit: make && make install by hand" "$hand_edit"
    printf '%-52s %10.2f\n' "one-file edit: sultana build" "$through_edit"
    printf '%-52s %9.2fx\n' "ratio (goal <= 1.3)" "$(echo "scale=4; $through_edit / $hand_edit" | bc)"

    # 5. A second workspace at the same pins (the first build stored it).
    rm -rf "$scratch/bt2"; mkdir -p "$scratch/bt2"
    cp "$scratch/bt/sultana.toml" "$scratch/bt/sultana.lock" "$scratch/bt2/"
    "$sultana" -q -C "$scratch/bt2" fetch
    t=$(now); "$sultana" -q -C "$scratch/bt2" build >/dev/null; second=$(elapsed "$t")
    printf '%-52s %10.2f\n' "second workspace at the same pins: sultana build" "$second"
    printf '%-52s %9.3fx\n' "ratio to the first build (goal <= 0.1)" "$(echo "scale=4; $second / $through" | bc)"

    # 6. Bisect over 16 commits: a test that fails from a marker commit on.
    bad=$(git -C "$repo" rev-parse "${BISECT_BAD:-master}")
    good=$(git -C "$repo" rev-parse "$bad~16")
    marker=$(git -C "$repo" rev-list --first-parent "$good..$bad" | sed -n "${BISECT_MARK:-7}p")
    bisect_ws() { # dir
        rm -rf "$1"; mkdir -p "$1/recipes/tests/blktap"
        printf '[components.blktap]\nurl = "file://%s"\nrevision = "master"\n' "$repo" > "$1/sultana.toml"
        "$sultana" -q -C "$1" lock
        { cat "$here/recipes/blktap.toml"; printf '\n[[test]]\nname = "marker"\ntimeout = 60\n'; } > "$1/recipes/blktap.toml"
        # shellcheck disable=SC2016 # $SULTANA_SRC is for the test script to expand
        printf '#!/bin/sh\nif git -C "$SULTANA_SRC" merge-base --is-ancestor %s HEAD; then exit 1; fi\nexit 0\n' "$marker" \
            > "$1/recipes/tests/blktap/marker.sh"
        chmod +x "$1/recipes/tests/blktap/marker.sh"
    }
    bisect() { # dir label flags...
        local dir=$1 label=$2; shift 2
        bisect_ws "$dir"
        t=$(now)
        out=$("$sultana" -C "$dir" bisect blktap --test marker --good "$good" --bad "$bad" "$@" 2>&1) || true
        secs=$(elapsed "$t")
        echo "$out" | grep -q "$(git -C "$repo" rev-parse --short=12 "$marker")" || { echo "$out" >&2; echo "bisect missed the marker" >&2; exit 1; }
        builds=$(echo "$out" | sed -n 's/.*(\([0-9]*\) build(s) run.*/\1/p' | tail -1)
        printf '%-52s %10.2f  (%s builds)\n' "bisect over 16 commits, $label" "$secs" "${builds:-?}"
    }
    bisect "$scratch/bisect-none" "no caches" --no-build-cache --no-ccache
    export XDG_CACHE_HOME="$scratch/cache-bisect"
    "$sultana" -q -C "$scratch/bt" fetch >/dev/null 2>&1 || true
    bisect "$scratch/bisect-cold" "caches, cold"
    bisect "$scratch/bisect-warm" "caches, warm (another workspace bisected first)"
fi
