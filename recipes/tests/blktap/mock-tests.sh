#!/bin/bash
# blktap's own cmocka suites: `make check` in the build tree (155 cases on
# v4.0.8). On failure the suites' logs are printed.
set -u
cd "$SULTANA_BUILD" || exit 99
if [ ! -e /usr/include/cmocka.h ]; then
    echo "skip: cmocka is not installed (Debian package libcmocka-dev)"
    exit 77
fi
log="$SULTANA_WORK/make-check.log"
make -j"${SULTANA_JOBS:-2}" check >"$log" 2>&1
status=$?
logs=$(find mockatests -name 'test-*.log' ! -name 'test-suite.log' 2>/dev/null | sort)
count() { # PASSED|FAILED
    [ -n "$logs" ] || { echo 0; return; }
    # shellcheck disable=SC2086
    grep -h "^\[  $1  \]" $logs | awk '{n += $4} END {print n + 0}'
}
passed=$(count PASSED)
failed=$(count FAILED)
echo "cmocka cases: $passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
    tail -n 30 "$log"
    for f in $logs mockatests/*/test-suite.log; do
        [ -f "$f" ] || continue
        echo "==> $f <=="
        cat "$f"
    done
    exit 1
fi
if [ "$passed" -eq 0 ]; then
    echo "make check passed but ran no cmocka case"
    tail -n 30 "$log"
    exit 99
fi
exit 0
