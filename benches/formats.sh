#!/usr/bin/env bash
# Whole-command benchmark of Xen's three release formats (mktarball's .tar.gz,
# .tar.xz and .tar.lz) made by `sultana tarball --format F`, each against the
# host's own compressor on the same tar on the same cores: `gzip -9`, `xz -9`,
# `lzip -9` (single-threaded, as mktarball runs them). Also checks that the tar
# inside each of sultana's files holds git archive's entries of the pin.
#
# Usage: benches/formats.sh XEN_REPO   (a clone or bare mirror of xen.git)
# Env: SULTANA (binary), BENCH_DIR (scratch), REV (default HEAD).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# This tree's binary, brought up to date first (cargo does nothing when it
# is): a stale one would measure older code.
[ -n "${SULTANA:-}" ] || (cd "$here" && cargo build --release --locked -q)
sultana=${SULTANA:-$here/target/release/sultana}
repo=${1:?usage: benches/formats.sh XEN_REPO}
for tool in gzip xz lzip; do command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 2; }; done
scratch=${BENCH_DIR:-$(mktemp -d /tmp/sultana-bench-formats.XXXXXX)}
mkdir -p "$scratch"
export XDG_CACHE_HOME="$scratch/cache" GIT_CONFIG_NOSYSTEM=1 LANG=C
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
ratio() { echo "scale=2; $1 / $2" | bc; }

commit=$(git --git-dir="$repo" rev-parse "${REV:-HEAD}" 2>/dev/null || git -C "$repo" rev-parse "${REV:-HEAD}")
ws="$scratch/ws"; rm -rf "$ws"; mkdir -p "$ws"
printf '[tarball]\nroot = "xen"\nname = "xen-{desc}"\n\n[components.xen]\nurl = "file://%s"\nrevision = "%s"\n' \
    "$repo" "$commit" > "$ws/sultana.toml"
"$sultana" -q -C "$ws" lock
desc=$(awk '/^describe/{print $3; exit}' "$ws/sultana.lock" | tr -d '"')
git --git-dir="$repo" archive --format=tar --prefix="xen-$desc/" "$commit" > "$scratch/archive.tar" 2>/dev/null \
    || git -C "$repo" archive --format=tar --prefix="xen-$desc/" "$commit" > "$scratch/archive.tar"
echo "xen $desc ($commit): tar $(stat -c %s "$scratch/archive.tar") bytes, $(nproc) cores" >&2

printf '%-4s %10s %10s %7s %12s %12s %7s\n' FMT SULTANA_S BASE_S RATIO SULTANA_B BASE_B SIZE
for pair in gz:gzip xz:xz lz:lzip; do
    fmt=${pair%%:*}; tool=${pair#*:}
    t=$(now)
    "$sultana" -q -C "$ws" tarball --format "$fmt" --out "$scratch/out"
    ours=$(elapsed "$t")
    file="$scratch/out/xen-$desc.tar.$fmt"
    t=$(now)
    $tool -9 -c < "$scratch/archive.tar" > "$scratch/base.$fmt"
    base=$(elapsed "$t")
    # The tar inside: git archive's entries, besides sultana.toml and sultana.lock.
    $tool -dc < "$file" | tar t | grep -v -e "/sultana.toml$" -e "/sultana.lock$" | sort > "$scratch/ours.list"
    tar tf "$scratch/archive.tar" | sort > "$scratch/base.list"
    cmp -s "$scratch/ours.list" "$scratch/base.list" || { echo "$fmt: entries differ from git archive" >&2; exit 1; }
    $tool -t "$file"
    a=$(stat -c %s "$file"); b=$(stat -c %s "$scratch/base.$fmt")
    printf '%-4s %10.2f %10.2f %7s %12s %12s %7s\n' "$fmt" "$ours" "$base" "$(ratio "$ours" "$base")x" "$a" "$b" "$(ratio "$a" "$b")x"
done
