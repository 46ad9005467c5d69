#!/usr/bin/env bash
# tapdisk serving a real Xen guest (issue 32): Xen under QEMU (TCG, 2 cores),
# a dom0 running the Xen and the blktap that sultana built, tapback and
# tapdisk serving a PV guest's VHD. Measured: the whole `tapdisk-xen` test
# (goal: at most 4 min) and its phases, against the baseline of a bare
# QEMU boot of the same Xen and dom0 kernel into a busybox shell that powers
# off at once. Then the gate: a blktap candidate whose drivers/td-req.c
# hands a guest's multi-segment reads the wrong pages is a regression of
# tapdisk-xen the gate refuses, while tapdisk-nbd (NBD, not the ring) passes.
#
# Usage: benches/xen.sh XEN-REPO BLKTAP-REPO [BLKTAP-BASE] [TAPBACK-FIX]
#   XEN-REPO: a clone of xen.git with RELEASE-4.21.0 (Xen 4.19 or later has
#   the tapback path); BLKTAP-REPO: a clone of xapi-project/blktap with its
#   pull request refs; the blktap tested is BLKTAP-BASE (default v4.0.8)
#   with the commits of TAPBACK-FIX (default refs/pull/394/head) that it
#   lacks: 4.0.8's tapback deadlocks with libxl's vbd3 backend.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# This tree's binary, brought up to date first (cargo does nothing when it
# is): a stale one would measure older code.
[ -n "${SULTANA:-}" ] || (cd "$here" && cargo build --release --locked -q)
sultana=${SULTANA:-$here/target/release/sultana}
usage="usage: benches/xen.sh XEN-REPO BLKTAP-REPO [BLKTAP-BASE] [TAPBACK-FIX]"
xen_repo=${1:?$usage}
blktap_repo=${2:?$usage}
blktap_base=${3:-v4.0.8}
tapback_fix=${4:-refs/pull/394/head}
scratch=${BENCH_DIR:-$(mktemp -d /tmp/sultana-bench-xen.XXXXXX)}
mkdir -p "$scratch"
export XDG_CACHE_HOME="$scratch/cache" HOME="$scratch/home" SULTANA_VM_ACCEL=tcg
mkdir -p "$HOME"
now() { date +%s.%N; }
elapsed() { echo "$(now) - $1" | bc; }
git() { command git -c user.name=bench -c user.email=bench@localhost "$@"; }

# blktap as the gate sees it: a repository whose branch moves.
rm -rf "$scratch/blktap.git" "$scratch/edit"
git clone -q --bare "$blktap_repo" "$scratch/blktap.git"
git clone -q "$scratch/blktap.git" "$scratch/edit"
git -C "$scratch/edit" fetch -q "$blktap_repo" "$tapback_fix"
git -C "$scratch/edit" checkout -q -B gated "$blktap_base"
# shellcheck disable=SC2046 # one argument per commit
git -C "$scratch/edit" cherry-pick $(git -C "$scratch/edit" rev-list --reverse "$blktap_base..FETCH_HEAD") >/dev/null
git -C "$scratch/edit" push -q origin gated

ws="$scratch/w"
rm -rf "$ws"
mkdir -p "$ws/recipes"
cat >"$ws/sultana.toml" <<EOF
[components.xen]
url = "file://$xen_repo"
revision = "RELEASE-4.21.0"

[components.blktap]
url = "file://$scratch/blktap.git"
revision = "gated"
depends = ["xen"]
EOF
# The shipped blktap recipe with its two serving tests only (the cmocka
# suites and vhd-util's do not touch the ring).
cp "$here/recipes/blktap.toml" "$ws/recipes/blktap.toml"
python3 - "$ws/recipes/blktap.toml" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
head, *tests = re.split(r'(?m)^\[\[test\]\]\n', text)
keep = [t for t in tests if re.search(r'(?m)^name = "tapdisk-(nbd|xen)"$', t)]
assert len(keep) == 2, keep
open(path, "w").write(head + "".join("[[test]]\n" + t for t in keep))
PY

t=$(now)
"$sultana" -q -C "$ws" build >"$scratch/build.log" 2>&1 || { tail -n 30 "$scratch/build.log"; exit 1; }
built=$(elapsed "$t")
stage="$ws/dist/xen"

# Baseline: the same Xen and kernel, dom0's root busybox alone, straight to poweroff.
release=$(find /boot -maxdepth 1 -name 'vmlinuz-*' | sed -n 's|^/boot/vmlinuz-||p' | sort | tail -n 1)
kernel=/boot/vmlinuz-$release
root="$scratch/bare"; rm -rf "$root"; mkdir -p "$root/bin"
cp "$(command -v busybox)" "$root/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox mount -t devtmpfs d /dev\necho up >/dev/hvc0\n/bin/busybox poweroff -f\n' >"$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet >"$scratch/bare.cpio")
zcat "$stage/boot/xen.gz" >"$scratch/xen"
cp "$kernel" "$scratch/vmlinuz"
t=$(now)
(cd "$scratch" && qemu-system-x86_64 -nodefaults -display none -no-reboot -accel tcg -cpu qemu64,+svm -smp 2 -m 1024 \
    -kernel xen -append "console=com1 dom0_mem=512M,max:512M noreboot" \
    -initrd "vmlinuz console=hvc0 rdinit=/init,bare.cpio" -serial file:bare.console >/dev/null 2>&1)
bare=$(elapsed "$t")
grep -q '^up' "$scratch/bare.console" || { echo "the bare Xen boot did not reach dom0's shell"; exit 1; }

t=$(now)
"$sultana" -C "$ws" test blktap --test tapdisk-xen --json >"$scratch/test.json" 2>"$scratch/test.err" || true
whole=$(elapsed "$t")
log="$ws/.sultana/test/test-blktap-tapdisk-xen.log"
grep -q '"status": "pass"' "$scratch/test.json" || { echo "tapdisk-xen did not pass:"; cat "$scratch/test.err" "$log"; exit 1; }
booted=$(sed -n 's/^# vm: .* booted in \([0-9.]*\)s$/\1/p' "$log")
ready=$(sed -n 's/^# xen: .*, dom0 ready at \([0-9.]*\) s .*/\1/p' "$log")
guest=$(sed -n 's/^--- guest tap ran \([0-9]*\) s$/\1/p' "$log")

printf '%-58s %8s\n' "measure (TCG, 2 cores, Xen 4.21.0, kernel $release)" "seconds"
printf '%-58s %8.2f\n' "build of xen and blktap (once)" "$built"
printf '%-58s %8.2f\n' "baseline: bare QEMU boot of Xen + dom0 to a shell, poweroff" "$bare"
printf '%-58s %8.2f\n' "tapdisk-xen: QEMU start to dom0's /init" "$booted"
printf '%-58s %8.2f\n' "tapdisk-xen: Xen's daemons up (dom0 uptime)" "$ready"
printf '%-58s %8.2f\n' "tapdisk-xen: the guest, xl create to its end" "$guest"
printf '%-58s %8.2f\n' "tapdisk-xen: whole command" "$whole"
printf '%-58s %8.2f\n' "ratio whole / bare boot" "$(echo "$whole / $bare" | bc -l)"

# The gate: the tested commit first, then a candidate that corrupts reads.
"$sultana" -q -C "$ws" gate blktap --always --push >"$scratch/gate-baseline.log" 2>&1 ||
    { echo "the baseline flight did not pass:"; tail -n 30 "$scratch/gate-baseline.log"; exit 1; }
edit="$scratch/edit"
# Copy to the guest: segment i gets the page of segment i-1 (reads of one
# segment, and every write, stay right).
python3 - "$edit/drivers/td-req.c" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
old = """            /* copy to guest */
            gcopy_seg->source.virt = tapreq->vma + (i << PAGE_SHIFT)"""
new = """            /* copy to guest */
            gcopy_seg->source.virt = tapreq->vma + ((i ? i - 1 : 0) << PAGE_SHIFT)"""
assert old in text, "drivers/td-req.c has no grant copy to the guest as expected"
open(path, "w").write(text.replace(old, new))
PY
git -C "$edit" commit -q -am "td-req: copy the wrong page to the guest for multi-segment reads"
git -C "$edit" push -q origin gated
t=$(now)
set +e
"$sultana" -C "$ws" gate blktap --json >"$scratch/gate.json" 2>"$scratch/gate.err"
code=$?
set -e
gated=$(elapsed "$t")
python3 - "$scratch/gate.json" "$code" "$gated" <<'PY'
import json, sys
gate = json.load(open(sys.argv[1]))["gate"]
code, seconds = int(sys.argv[2]), float(sys.argv[3])
jobs = {j["job"]: j for j in gate["report"]["jobs"]}
findings = {f["job"]: f["class"] for f in gate["report"].get("findings", [])}
xen, nbd = jobs["test-blktap-tapdisk-xen"], jobs["test-blktap-tapdisk-nbd"]
print(f"gate on the corrupting candidate: exit {code} in {seconds:.0f} s")
print(f"  tapdisk-xen: {xen['status']} ({findings.get('test-blktap-tapdisk-xen', '-')}): {xen.get('detail', '')}")
print(f"  tapdisk-nbd: {nbd['status']}")
ok = code == 1 and findings.get("test-blktap-tapdisk-xen") == "regression" and nbd["status"] == "pass" and not gate["pushed"]
print("the gate refuses it" if ok else "UNEXPECTED: the gate did not refuse it as a tapdisk-xen regression")
sys.exit(0 if ok else 1)
PY
