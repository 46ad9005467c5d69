#!/bin/bash
# The blktap2 module was built by kbuild against the target kernel's headers:
# every .ko in the staging folder carries that kernel's vermagic.
set -u
headers=${SULTANA_KERNEL_HEADERS:-}
[ -n "$headers" ] || { echo "the gate gave no SULTANA_KERNEL_HEADERS"; exit 99; }
release=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$headers/include/generated/utsrelease.h")
[ -n "$release" ] || { echo "$headers has no include/generated/utsrelease.h"; exit 99; }
modules=$(find "$SULTANA_DESTDIR/lib/modules" -name '*.ko' 2>/dev/null | sort)
[ -n "$modules" ] || { echo "FAIL: no module under $SULTANA_DESTDIR/lib/modules"; exit 1; }
vermagic() {
    if command -v modinfo >/dev/null; then
        modinfo -F vermagic "$1"
    else
        tr '\0' '\n' <"$1" | sed -n 's/^vermagic=//p' | head -n 1
    fi
}
for module in $modules; do
    magic=$(vermagic "$module")
    echo "$(basename "$module"): vermagic $magic"
    case $magic in
        "$release "*) ;;
        *) echo "FAIL: $module is for '${magic%% *}', not $release"; exit 1 ;;
    esac
    case $module in
        */lib/modules/"$release"/*) ;;
        *) echo "FAIL: $module is not under lib/modules/$release"; exit 1 ;;
    esac
done
echo "kmod-build: $(echo "$modules" | wc -l) module(s) for $release"
