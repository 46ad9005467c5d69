#!/usr/bin/env bash
# How sultana's cost grows with the work (issue 36): a curve per dimension,
# each point a whole command, so that the next change that makes one of
# them super-linear is seen.
#   1. components and build-cache entries (10 .. 1000 trivial make
#      projects, each stored in the build cache): a no-op `build` (goal:
#      under 1 s at 1000), `cache` listing the entries, a `cache prune` that
#      removes nothing, a second workspace's `build` restoring every one;
#   2. history (100 .. 50000 commits, a tag at the root): the first `lock`,
#      a `lock` with nothing to change (goal: independent of the history),
#      an `update` that moves by one commit, a `bisect` whose results are
#      all known;
#   3. tree files (1000 .. 200000 in one make project): a no-op `build`,
#      a `status`;
#   4. flights (10 .. 5000 in the history): a `gate --always` (a flight,
#      its classification and the prune after it), `flights` listing.
# Usage: benches/scale.sh [COMPONENTS... [-- COMMITS... [-- FILES... [-- FLIGHTS...]]]]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# This tree's binary, brought up to date first (cargo does nothing when it
# is): a stale one would measure older code.
[ -n "${SULTANA:-}" ] || (cd "$here" && cargo build --release --locked -q)
sultana=${SULTANA:-$here/target/release/sultana}
scratch=${BENCH_DIR:-$(mktemp -d /tmp/sultana-bench-scale.XXXXXX)}
mkdir -p "$scratch"
export XDG_CACHE_HOME="$scratch/cache" GIT_CONFIG_NOSYSTEM=1 HOME="$scratch/home"
mkdir -p "$HOME"
git config --global user.email bench@example.org
git config --global user.name bench
git config --global init.defaultBranch master
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
best_of() { # n command...
    local n=$1 best=999 t e; shift
    for _ in $(seq "$n"); do
        t=$(now); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; "$@" >&2; exit 1; }; e=$(elapsed "$t")
        [ "$(echo "$e < $best" | bc)" = 1 ] && best=$e
    done
    echo "$best"
}

components=(10 100 500 1000)
commits=(100 1000 10000 50000)
files=(1000 10000 50000 200000)
flights=(10 100 1000 5000)
if [ $# -gt 0 ]; then
    components=(); commits=(); files=(); flights=()
    target=components
    for a in "$@"; do
        if [ "$a" = "--" ]; then
            case $target in components) target=commits;; commits) target=files;; *) target=flights;; esac
            continue
        fi
        eval "$target+=(\"\$a\")"
    done
fi

printf '%-44s %10s\n' "measure" "seconds"
for n in "${components[@]}"; do
    ws="$scratch/c$n"; rm -rf "$ws"; mkdir -p "$ws/up" "$ws/w/recipes"
    for i in $(seq "$n"); do
        r="$ws/up/c$i"; git init -q "$r"; printf 'all:\ninstall:\n' > "$r/Makefile"
        git -C "$r" add Makefile; git -C "$r" commit -qm c
        printf '[components.c%d]\nurl = "file://%s"\nrevision = "master"\nrecipe = "plain"\n\n' "$i" "$r" >> "$ws/w/sultana.toml"
    done
    printf 'kind = "make"\nbuild_dir = "in-tree"\n' > "$ws/w/recipes/plain.toml"
    export XDG_CACHE_HOME="$ws/cache"
    "$sultana" -q -C "$ws/w" build --no-ccache >/dev/null
    printf '%-44s %10.3f\n' "no-op build, $n components (best of 3)" "$(best_of 3 "$sultana" -q -C "$ws/w" build)"
    printf '%-44s %10.3f\n' "cache listing, $n entries" "$(best_of 3 "$sultana" -q -v cache)"
    printf '%-44s %10.3f\n' "cache prune removing nothing, $n entries" "$(best_of 3 "$sultana" -q cache prune --max-size 100G)"
    cp -r "$ws/w" "$ws/w2"; rm -rf "$ws/w2/.sultana" "$ws/w2/build" "$ws/w2/dist"
    t=$(now); "$sultana" -q -C "$ws/w2" build --no-ccache >/dev/null; restore=$(elapsed "$t")
    printf '%-44s %10.3f\n' "second workspace restoring $n entries" "$restore"
    export XDG_CACHE_HOME="$scratch/cache"
done

for h in "${commits[@]}"; do
    ws="$scratch/h$h"; rm -rf "$ws"; mkdir -p "$ws/w"
    up="$ws/up"; git init -q "$up"
    # h commits in one fast-import stream, v0.1 tagged at the first.
    {
        for i in $(seq "$h"); do
            printf 'commit refs/heads/master\ncommitter b <b@e> %d +0000\ndata 2\nc\n' "$((1000000 + i))"
            printf 'M 644 inline f\ndata %d\n%d\n' "$(( ${#i} + 1 ))" "$i"
            if [ "$i" = 1 ]; then
                printf 'M 644 inline Makefile\ndata 15\nall:\ninstall:\n\n'
                printf 'reset refs/tags/v0.1\nfrom refs/heads/master\n'
            fi
        done
    } | git -C "$up" fast-import --quiet
    printf '[components.up]\nurl = "file://%s"\nrevision = "master"\n' "$up" > "$ws/w/sultana.toml"
    t=$(now); "$sultana" -q -C "$ws/w" lock; first=$(elapsed "$t")
    again=$(best_of 3 "$sultana" -q -C "$ws/w" lock)
    printf 'commit refs/heads/master\ncommitter b <b@e> %d +0000\ndata 9\none more\nfrom refs/heads/master^0\nM 644 inline f\ndata %d\n%d\n' \
        "$((2000000 + h))" "$(( ${#h} + 1 ))" "$((h + 1))" | git -C "$up" fast-import --quiet
    t=$(now); "$sultana" -q -C "$ws/w" update; one=$(elapsed "$t")
    printf '%-44s %10.3f\n' "first lock, $h commits" "$first"
    printf '%-44s %10.3f\n' "lock with nothing to change, $h commits" "$again"
    printf '%-44s %10.3f\n' "update by one commit, $h commits" "$one"
    # The test fails from the commit two thirds of the way on.
    mkdir -p "$ws/w/recipes/tests/plain"
    printf 'kind = "make"\nbuild_dir = "in-tree"\n[[test]]\nname = "small"\ntimeout = 30\n' > "$ws/w/recipes/plain.toml"
    # shellcheck disable=SC2016 # the test script expands it, not this one
    printf '#!/bin/sh\ntest "$(cat "$SULTANA_SRC/f")" -lt %d\n' "$((h * 2 / 3))" > "$ws/w/recipes/tests/plain/small.sh"
    chmod +x "$ws/w/recipes/tests/plain/small.sh"
    sed -i 's/^revision = "master"$/revision = "master"\nrecipe = "plain"/' "$ws/w/sultana.toml"
    "$sultana" -q -C "$ws/w" bisect up --test small --good v0.1 >/dev/null
    printf '%-44s %10.3f\n' "bisect with every result known, $h commits" \
        "$(best_of 3 "$sultana" -q -C "$ws/w" bisect up --test small --good v0.1)"
done

for n in "${files[@]}"; do
    ws="$scratch/f$n"; rm -rf "$ws"; mkdir -p "$ws/w/recipes"
    up="$ws/up"; git init -q "$up"
    # n files in folders of 100, one commit.
    {
        printf 'commit refs/heads/master\ncommitter b <b@e> 1000000 +0000\ndata 2\nc\n'
        printf 'M 644 inline Makefile\ndata 15\nall:\ninstall:\n\n'
        for i in $(seq "$n"); do printf 'M 644 inline d%d/f%d\ndata %d\n%d\n' "$((i / 100))" "$i" "$(( ${#i} + 1 ))" "$i"; done
    } | git -C "$up" fast-import --quiet
    printf '[components.up]\nurl = "file://%s"\nrevision = "master"\nrecipe = "plain"\n' "$up" > "$ws/w/sultana.toml"
    printf 'kind = "make"\nbuild_dir = "in-tree"\n' > "$ws/w/recipes/plain.toml"
    "$sultana" -q -C "$ws/w" build --no-ccache >/dev/null
    printf '%-44s %10.3f\n' "no-op build, $n tree files" "$(best_of 3 "$sultana" -q -C "$ws/w" build)"
    printf '%-44s %10.3f\n' "status, $n tree files" "$(best_of 3 "$sultana" -q -C "$ws/w" status)"
done

for n in "${flights[@]}"; do
    ws="$scratch/g$n"; rm -rf "$ws"; mkdir -p "$ws/w/recipes/tests/plain"
    up="$ws/up"; git init -q "$up"; printf 'all:\ninstall:\n' > "$up/Makefile"
    git -C "$up" add Makefile; git -C "$up" commit -qm c
    printf '[workspace]\nkeep_flights = %d\n\n[components.up]\nurl = "file://%s"\nrevision = "master"\nrecipe = "plain"\n' "$n" "$up" > "$ws/w/sultana.toml"
    printf 'kind = "make"\nbuild_dir = "in-tree"\n[[test]]\nname = "ok"\ntimeout = 30\n' > "$ws/w/recipes/plain.toml"
    printf '#!/bin/sh\necho fine\n' > "$ws/w/recipes/tests/plain/ok.sh"; chmod +x "$ws/w/recipes/tests/plain/ok.sh"
    "$sultana" -q -C "$ws/w" gate up --always >/dev/null
    # n flights as real ones leave them: flight 1's rows and folder, copied.
    python3 - "$ws/w/.sultana" "$n" <<'PY'
import shutil, sqlite3, sys, pathlib
state, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
db = sqlite3.connect(state / "flights.db")
for f in range(2, n + 1):
    for table in ("flights", "revisions", "jobs", "steps"):
        cols = [c[1] for c in db.execute(f"PRAGMA table_info({table})") if c[1] != "flight"]
        names = ", ".join(cols)
        db.execute(f"INSERT INTO {table} (flight, {names}) SELECT ?, {names} FROM {table} WHERE flight = 1", (f,))
    shutil.copytree(state / "flights" / "1", state / "flights" / str(f))
db.commit()
PY
    printf '%-44s %10.3f\n' "gate --always and prune, $n flights" "$(best_of 3 "$sultana" -q -C "$ws/w" gate up --always)"
    printf '%-44s %10.3f\n' "flights listing, $n flights" "$(best_of 3 "$sultana" -q -C "$ws/w" flights)"
done
