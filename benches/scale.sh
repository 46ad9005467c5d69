#!/usr/bin/env bash
# How sultana's cost grows with the work (issue 36): a curve per dimension,
# each point a whole command, so that the next change that makes one of
# them super-linear is seen.
#   1. components (10 .. 1000 trivial make projects): a no-op `build`
#      (goal: under 1 s at 1000);
#   2. history (100 .. 50000 commits, a tag at the root): the first `lock`,
#      a `lock` with nothing to change (goal: independent of the history),
#      an `update` that moves by one commit.
# Usage: benches/scale.sh [COMPONENTS...] [-- COMMITS...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
sultana=${SULTANA:-$here/target/release/sultana}
[ -x "$sultana" ] || (cd "$here" && cargo build --release --locked -q)
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
        t=$(now); "$@" >/dev/null 2>&1; e=$(elapsed "$t")
        [ "$(echo "$e < $best" | bc)" = 1 ] && best=$e
    done
    echo "$best"
}

components=(10 100 500 1000)
commits=(100 1000 10000 50000)
if [ $# -gt 0 ]; then
    components=(); commits=()
    target=components
    for a in "$@"; do
        if [ "$a" = "--" ]; then target=commits; continue; fi
        if [ "$target" = components ]; then components+=("$a"); else commits+=("$a"); fi
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
    "$sultana" -q -C "$ws/w" build --no-build-cache --no-ccache >/dev/null
    printf '%-44s %10.3f\n' "no-op build, $n components (best of 3)" "$(best_of 3 "$sultana" -q -C "$ws/w" build)"
done

for h in "${commits[@]}"; do
    ws="$scratch/h$h"; rm -rf "$ws"; mkdir -p "$ws/w"
    up="$ws/up"; git init -q "$up"
    # h commits in one fast-import stream, v0.1 tagged at the first.
    {
        for i in $(seq "$h"); do
            printf 'commit refs/heads/master\ncommitter b <b@e> %d +0000\ndata 2\nc\n' "$((1000000 + i))"
            printf 'M 644 inline f\ndata %d\n%d\n' "$(( ${#i} + 1 ))" "$i"
            if [ "$i" = 1 ]; then printf 'reset refs/tags/v0.1\nfrom refs/heads/master\n'; fi
        done
    } | git -C "$up" fast-import --quiet
    printf '[components.up]\nurl = "file://%s"\nrevision = "master"\n' "$up" > "$ws/w/sultana.toml"
    t=$(now); "$sultana" -q -C "$ws/w" lock; first=$(elapsed "$t")
    again=$(best_of 3 "$sultana" -q -C "$ws/w" lock)
    ( cd "$up" && git commit -q --allow-empty -m one-more )
    t=$(now); "$sultana" -q -C "$ws/w" update; one=$(elapsed "$t")
    printf '%-44s %10.3f\n' "first lock, $h commits" "$first"
    printf '%-44s %10.3f\n' "lock with nothing to change, $h commits" "$again"
    printf '%-44s %10.3f\n' "update by one commit, $h commits" "$one"
done
