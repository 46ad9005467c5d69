#!/usr/bin/env bash
# The build cache's remote tier on real blktap (issue 33; goal: a fresh
# machine restoring from the registry <= 0.15x of building it):
#   1. blktap built in a first workspace and cache (the baseline: timed);
#   2. `sultana cache push --sign` to a Debian docker-registry on loopback;
#   3. a second workspace with an empty cache, the same lock, trusting the
#      key: `sultana build` pulls and restores (timed), and the pull's
#      throughput is reported.
# Usage: benches/remote.sh BLKTAP_REPO [REV]   (needs docker-registry, gpg)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# This tree's binary, brought up to date first (cargo does nothing when it
# is): a stale one would measure older code.
[ -n "${SULTANA:-}" ] || (cd "$here" && cargo build --release --locked -q)
sultana=${SULTANA:-$here/target/release/sultana}
[ $# -ge 1 ] || { echo "usage: $0 BLKTAP_REPO [REV]" >&2; exit 2; }
repo=$1
rev=${2:-v4.0.8}
scratch=${BENCH_DIR:-$(mktemp -d /tmp/sultana-bench-remote.XXXXXX)}
mkdir -p "$scratch"
export GIT_CONFIG_NOSYSTEM=1 GNUPGHOME="$scratch/gnupg"
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$scratch/registry"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
    "$scratch/registry" "$port" > "$scratch/registry.yml"
docker-registry serve "$scratch/registry.yml" >/dev/null 2>&1 &
registry=$!
trap 'kill $registry 2>/dev/null' EXIT
until curl -sf "http://127.0.0.1:$port/v2/" >/dev/null; do sleep 0.1; done
rm -rf "$GNUPGHOME"; mkdir -m 700 "$GNUPGHOME"
gpg --batch --passphrase '' --quick-gen-key 'Bench <bench@example.org>' ed25519 sign never 2>/dev/null
fpr=$(gpg --with-colons --list-keys bench@example.org | awk -F: '/^fpr/{print $10; exit}')
export SULTANA_BUILD_CACHE_REMOTE="oci://127.0.0.1:$port/sultana/bench"

manifest() { # dir
    rm -rf "$1"; mkdir -p "$1"
    printf '[components.blktap]\nurl = "file://%s"\nrevision = "%s"\n' "$repo" "$rev" > "$1/sultana.toml"
}
manifest "$scratch/first"
XDG_CACHE_HOME="$scratch/cache1" "$sultana" -q -C "$scratch/first" fetch
t=$(now); XDG_CACHE_HOME="$scratch/cache1" "$sultana" -q -C "$scratch/first" build --no-ccache >/dev/null; built=$(elapsed "$t")
t=$(now); XDG_CACHE_HOME="$scratch/cache1" "$sultana" -q -C "$scratch/first" cache push --sign bench@example.org; pushed=$(elapsed "$t")
manifest "$scratch/second"
cp "$scratch/first/sultana.lock" "$scratch/second/"
XDG_CACHE_HOME="$scratch/cache2" "$sultana" -q -C "$scratch/second" fetch
t=$(now)
XDG_CACHE_HOME="$scratch/cache2" SULTANA_BUILD_CACHE_TRUST="$fpr" "$sultana" -C "$scratch/second" build --json > "$scratch/second.json"
restored=$(elapsed "$t")
grep -q '"status": "cached"' "$scratch/second.json" || { cat "$scratch/second.json" >&2; echo "not restored" >&2; exit 1; }
bytes=$(du -sb "$scratch/registry" | cut -f1)
printf '%-58s %10s\n' "measure" "seconds"
printf '%-58s %10.2f\n' "blktap $rev built (first workspace, no ccache)" "$built"
printf '%-58s %10.2f\n' "cache push --sign to docker-registry on loopback" "$pushed"
printf '%-58s %10.2f\n' "fresh cache: sultana build (pull, verify, restore)" "$restored"
printf 'ratio restore/build: %.3fx (goal <= 0.15x)\n' "$(echo "$restored / $built" | bc -l)"
printf 'pull throughput: %.1f MB/s (%s bytes in the registry)\n' "$(echo "$bytes / $restored / 1000000" | bc -l)" "$bytes"
