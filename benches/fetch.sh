#!/usr/bin/env bash
# Whole-command benchmark of `sultana fetch` against the Xen-style baseline,
# on the same local upstreams in the same run (issue 2's goals):
#   cold fetch                      <= 1.0x  baseline cold
#   second workspace, warm cache    <= 0.15x baseline cold
#   fetch with everything at its pin < 0.1 s, no network
# and issue 19's (upstreams served with filters allowed: the script sets
# uploadpack.allowFilter and allowAnySHA1InWant on each repository given):
#   cold fetch --filter tree:0      <= 0.35x baseline cold
#   cold fetch --depth 1            <= 0.2x  baseline cold
#   verify-tarball of the release   <= 0.3x  the full-clone verify
#   cold fetch, full mode           <= 1.0x  (the first line)
# Baseline per tree (scripts/git-checkout.sh): git clone URL DIR.tmp;
#   git fetch origin REV; git checkout -b dummy FETCH_HEAD; mv DIR.tmp DIR.
# Update baseline (subtree-force-update): git fetch origin; git reset --hard REV.
# The cold measures are medians of ROUNDS (default 3) alternated runs.
#
# Usage: benches/fetch.sh [UPSTREAM_REPO...]
#   With no argument, four synthetic upstreams of realistic size are generated
#   (one xen-sized). Pass real repositories fetched by hand to measure those.
# Env: SULTANA (binary, default target/release/sultana), BENCH_DIR (scratch).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# This tree's binary, brought up to date first (cargo does nothing when it
# is): a stale one would measure older code.
[ -n "${SULTANA:-}" ] || (cd "$here" && cargo build --release --locked -q)
sultana=${SULTANA:-$here/target/release/sultana}
scratch=${BENCH_DIR:-$(mktemp -d /tmp/sultana-bench.XXXXXX)}
mkdir -p "$scratch"
export GIT_CONFIG_NOSYSTEM=1 HOME="$scratch/home" LANG=C
mkdir -p "$HOME"

now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
ratio() { echo "scale=3; $1 / $2" | bc; }

synth() { # name files commits
    local dir="$scratch/upstreams/$1.git"
    [ -d "$dir" ] && { echo "$dir"; return; }
    git init -q --bare "$dir"
    python3 - "$2" "$3" <<'PY' | git -C "$dir" fast-import --quiet
import random, sys
files, commits = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(42)
words = [("w%d" % i) for i in range(5000)]
def blob(i, rev):
    body = "\n".join(" ".join(rng.choice(words) for _ in range(12)) for _ in range(20 + i % 80))
    return ("/* file %d rev %d */\n%s\n" % (i, rev, body)).encode()
out = sys.stdout.buffer
t = 1600000000
for c in range(commits):
    t += 3600
    out.write(b"commit refs/heads/master\n")
    out.write(b"committer Dev <dev@example.org> %d +0000\n" % t)
    msg = b"change %d" % c
    out.write(b"data %d\n%s\n" % (len(msg), msg))
    touched = range(files) if c == 0 else [rng.randrange(files) for _ in range(4)]
    for i in touched:
        data = blob(i, c)
        out.write(b"M 644 inline dir%d/file%d.c\ndata %d\n%s\n" % (i % 97, i, len(data), data))
    if c % 500 == 499:
        out.write(b"reset refs/tags/v%d\nfrom refs/heads/master\n\n" % (c // 500))
PY
    echo "$dir"
}

if [ $# -gt 0 ]; then
    upstreams=("$@")
else
    echo "generating synthetic upstreams in $scratch/upstreams ..." >&2
    upstreams=("$(synth xen 6000 6000)" "$(synth blktap 600 1500)" "$(synth seabios 400 1200)" "$(synth mini-os 250 800)")
fi

manifest="$scratch/sultana.toml"
echo '[workspace]' >"$manifest"; echo 'name = "bench"' >>"$manifest"
names=()
for repo in "${upstreams[@]}"; do
    git -C "$repo" config uploadpack.allowFilter true
    git -C "$repo" config uploadpack.allowAnySHA1InWant true
    name=$(basename "$(dirname "$repo")" | tr '+' '-' | tr '[:upper:]' '[:lower:]')
    [ "$(basename "$repo")" != repo ] && name=$(basename "$repo" .git)
    names+=("$name")
    printf '\n[components.%s]\nurl = "file://%s"\nrevision = "master"\n' "$name" "$repo" >>"$manifest"
    case $name in # where Xen's release tarball holds each tree
        blktap) echo 'intree = "tools/blktap"' >>"$manifest" ;;
        seabios) echo 'intree = "tools/firmware/seabios-dir-remote"' >>"$manifest" ;;
        mini-os) echo 'intree = "extras/mini-os"' >>"$manifest" ;;
    esac
done
if printf '%s\n' "${names[@]}" | grep -qx xen; then
    printf '\n[tarball]\nroot = "xen"\nname = "xen-{desc}"\n' >>"$manifest"
fi
echo "trees: ${names[*]}" >&2
for repo in "${upstreams[@]}"; do
    echo "  $(basename "$(dirname "$repo")")/$(basename "$repo"): $(git -C "$repo" count-objects -vH | sed -n 's/size-pack: //p') packed, $(git -C "$repo" rev-list --count master) commits" >&2
done

# --- cold: baseline and sultana alternated ROUNDS times (default 3), medians
# reported, since one cold run of a large tree varies by several percent.
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
export XDG_CACHE_HOME="$scratch/cache"
base_runs=(); sultana_runs=()
for _ in $(seq "${ROUNDS:-3}"); do
    rm -rf "$scratch/base"; mkdir -p "$scratch/base"
    t=$(now)
    for i in "${!upstreams[@]}"; do
        d="$scratch/base/${names[$i]}"
        git clone -q "file://${upstreams[$i]}" "$d.tmp"
        git -C "$d.tmp" fetch -q origin master
        git -C "$d.tmp" checkout -q -b dummy FETCH_HEAD
        mv "$d.tmp" "$d"
    done
    base_runs+=("$(elapsed "$t")")
    rm -rf "$XDG_CACHE_HOME" "$scratch/ws1"; mkdir -p "$scratch/ws1"; cp "$manifest" "$scratch/ws1/"
    t=$(now); "$sultana" -q -C "$scratch/ws1" fetch; sultana_runs+=("$(elapsed "$t")")
done
base_cold=$(median "${base_runs[@]}")
sultana_cold=$(median "${sultana_runs[@]}")
echo "cold runs: baseline ${base_runs[*]}; sultana ${sultana_runs[*]}" >&2

# --- sultana, second workspace on the warm cache (manifest + lock copied)
rm -rf "$scratch/ws2"; mkdir -p "$scratch/ws2"; cp "$scratch/ws1/sultana.toml" "$scratch/ws1/sultana.lock" "$scratch/ws2/"
t=$(now); "$sultana" -q -C "$scratch/ws2" fetch; sultana_warm=$(elapsed "$t")

# --- no-op fetch, upstreams unreachable to prove no network is used
for repo in "${upstreams[@]}"; do mv "$repo" "$repo.away"; done
best=999
for _ in 1 2 3 4 5; do
    t=$(now); "$sultana" -q -C "$scratch/ws1" fetch; e=$(elapsed "$t")
    [ "$(echo "$e < $best" | bc)" = 1 ] && best=$e
done
for repo in "${upstreams[@]}"; do mv "$repo.away" "$repo"; done
sultana_noop=$best

# --- update with nothing new: baseline fetch + reset --hard vs sultana update
t=$(now)
for n in "${names[@]}"; do git -C "$scratch/base/$n" fetch -q origin; git -C "$scratch/base/$n" reset -q --hard origin/master; done
base_update=$(elapsed "$t")
t=$(now); "$sultana" -q -C "$scratch/ws1" update; sultana_update=$(elapsed "$t")

# --- partial and shallow cold fetches: a new cache, the committed lock
# (ws1's) beside the manifest, medians as above
cold_mode() { # label flags...
    local label=$1; shift
    local runs=()
    for _ in $(seq "${ROUNDS:-3}"); do
        rm -rf "$scratch/cache-mode" "$scratch/wsm"; mkdir -p "$scratch/wsm"
        cp "$scratch/ws1/sultana.toml" "$scratch/ws1/sultana.lock" "$scratch/wsm/"
        t=$(now); XDG_CACHE_HOME="$scratch/cache-mode" "$sultana" -q -C "$scratch/wsm" fetch "$@"; runs+=("$(elapsed "$t")")
        cmp -s "$scratch/wsm/sultana.lock" "$scratch/ws1/sultana.lock" || { echo "$label: the lock differs" >&2; exit 1; }
    done
    echo "$label runs: ${runs[*]}" >&2
    median "${runs[@]}"
}
cold_tree0=$(cold_mode "--filter tree:0" --filter tree:0)
cold_blobnone=$(cold_mode "--filter blob:none" --filter blob:none)
cold_depth1=$(cold_mode "--depth 1" --depth 1)
# Resolving the intents too (no lock): describe needs the history to a tag.
rm -rf "$scratch/cache-mode" "$scratch/wsm"; mkdir -p "$scratch/wsm"; cp "$scratch/ws1/sultana.toml" "$scratch/wsm/"
t=$(now); XDG_CACHE_HOME="$scratch/cache-mode" "$sultana" -q -C "$scratch/wsm" fetch --depth 1; depth1_resolve=$(elapsed "$t")
cmp -s "$scratch/wsm/sultana.lock" "$scratch/ws1/sultana.lock" || { echo "--depth 1 without a lock: the lock differs" >&2; diff "$scratch/wsm/sultana.lock" "$scratch/ws1/sultana.lock" >&2; exit 1; }
rm -rf "$scratch/cache-mode" "$scratch/wsm"; mkdir -p "$scratch/wsm"; cp "$scratch/ws1/sultana.toml" "$scratch/wsm/"
t=$(now); XDG_CACHE_HOME="$scratch/cache-mode" "$sultana" -q -C "$scratch/wsm" fetch --filter tree:0; tree0_resolve=$(elapsed "$t")
cmp -s "$scratch/wsm/sultana.lock" "$scratch/ws1/sultana.lock" || { echo "--filter tree:0 without a lock: the lock differs" >&2; exit 1; }

# --- verify-tarball of the release on a new cache: the locked trees only,
# against the full-clone verify (a bare clone of every tree, then the
# same comparison on the warm cache)
verify_new=""; verify_full=""
if grep -q '^\[tarball\]' "$manifest"; then
    rm -rf "$scratch/rel"; "$sultana" -q -C "$scratch/ws1" tarball --out "$scratch/rel"
    release=$(ls "$scratch"/rel/*.tar.gz)
    rm -rf "$scratch/cache-verify"
    t=$(now); XDG_CACHE_HOME="$scratch/cache-verify" "$sultana" -q verify-tarball "$release"; verify_new=$(elapsed "$t")
    rm -rf "$scratch/full-clones"; mkdir -p "$scratch/full-clones"
    t=$(now)
    for i in "${!upstreams[@]}"; do git clone -q --bare "file://${upstreams[$i]}" "$scratch/full-clones/$i"; done
    "$sultana" -q verify-tarball "$release"
    verify_full=$(elapsed "$t")
fi

printf '\n%-44s %9s %9s %7s %s\n' "measure" "baseline" "sultana" "ratio" "goal"
printf '%-44s %8.2fs %8.2fs %7s %s\n' "cold fetch" "$base_cold" "$sultana_cold" "$(ratio "$sultana_cold" "$base_cold")" "<= 1.0"
printf '%-44s %8.2fs %8.2fs %7s %s\n' "second workspace, warm cache (vs base cold)" "$base_cold" "$sultana_warm" "$(ratio "$sultana_warm" "$base_cold")" "<= 0.15"
printf '%-44s %9s %8.3fs %7s %s\n' "fetch, all at pin, upstreams unreachable" "-" "$sultana_noop" "-" "< 0.1 s"
printf '%-44s %8.2fs %8.2fs %7s %s\n' "update, nothing new" "$base_update" "$sultana_update" "$(ratio "$sultana_update" "$base_update")" "-"
printf '%-44s %8.2fs %8.2fs %7s %s\n' "cold fetch --filter tree:0 (locked)" "$base_cold" "$cold_tree0" "$(ratio "$cold_tree0" "$base_cold")" "<= 0.35"
printf '%-44s %8.2fs %8.2fs %7s %s\n' "cold fetch --filter blob:none (locked)" "$base_cold" "$cold_blobnone" "$(ratio "$cold_blobnone" "$base_cold")" "-"
printf '%-44s %8.2fs %8.2fs %7s %s\n' "cold fetch --depth 1 (locked)" "$base_cold" "$cold_depth1" "$(ratio "$cold_depth1" "$base_cold")" "<= 0.2"
printf '%-44s %8.2fs %8.2fs %7s %s\n' "cold fetch --filter tree:0, no lock" "$base_cold" "$tree0_resolve" "$(ratio "$tree0_resolve" "$base_cold")" "-"
printf '%-44s %8.2fs %8.2fs %7s %s\n' "cold fetch --depth 1, no lock (describe)" "$base_cold" "$depth1_resolve" "$(ratio "$depth1_resolve" "$base_cold")" "-"
if [ -n "$verify_new" ]; then
    printf '%-44s %8.2fs %8.2fs %7s %s\n' "verify-tarball, new cache (vs full clones)" "$verify_full" "$verify_new" "$(ratio "$verify_new" "$verify_full")" "<= 0.3"
fi
echo "disk: baseline $(du -sh "$scratch/base" | cut -f1), sultana workspace $(du -sh "$scratch/ws2" | cut -f1) + cache $(du -sh "$XDG_CACHE_HOME" | cut -f1) shared"
