#!/bin/sh
# tests/run.sh BUILD_DIR [TSAN_BUILD_DIR]: runs every test built in BUILD_DIR and prints, last,
#   N passed, N failed
# With a second build dir (ThreadSanitizer), its unit tests and the integration tests against
# its imagesd run too, counted in the same totals.
# Parts: unit test binaries (cmocka, TAP), fuzz corpus replays (one case per target),
# shell tests (tests/cli/*.sh, TAP), integration tests (node --test, one case per test()).
# The integration tests start BUILD_DIR/imagesd themselves; IMAGESD_BIN overrides it.
# Set TESTS=unit|fuzz|cli|integration (space-separated) to run only some parts, and
# ONLY=pattern to run only the files whose path contains it.
set -u
B=${1:-build/asan}
TSAN=${2:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
PARTS=${TESTS:-unit fuzz cli integration}
ONLY=${ONLY:-}
LOG=$(mktemp -d "${TMPDIR:-/tmp}/imagesd-run.XXXXXX")
trap 'rm -rf "$LOG"' EXIT
pass=0
fail=0
failed_names=""

# count_tap FILE NAME EXIT_STATUS: adds the ok/not ok lines of FILE to the totals; a program
# that exits non-zero without reporting a failure counts as one failure (a crash).
count_tap() {
    p=$(grep -c '^ok ' "$1")
    f=$(grep -c '^not ok ' "$1")
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "not ok - $2 exited with status $3"
    fi
    if [ "$f" -gt 0 ]; then
        failed_names="$failed_names $2"
        grep '^not ok ' "$1" | sed 's/^/    /'
    fi
    pass=$((pass + p))
    fail=$((fail + f))
}

selected() {
    [ -z "$ONLY" ] && return 0
    case "$1" in *"$ONLY"*) return 0 ;; esac
    return 1
}

want() {
    case " $PARTS " in *" $1 "*) return 0 ;; esac
    return 1
}

if want unit; then
    for t in $(find "$B/tests" -type f -perm -u+x 2>/dev/null | sort); do
        selected "${t#$B/}" || continue
        out="$LOG/unit.out"
        CMOCKA_MESSAGE_OUTPUT=TAP timeout 1200 "$t" >"$out" 2>&1
        rc=$?
        n=$(grep -c '^ok \|^not ok ' "$out")
        echo "unit $(echo "$t" | sed "s|^$B/tests/||"): $n cases, exit $rc"
        [ "$rc" -ne 0 ] && tail -n 40 "$out" | sed 's/^/    | /'
        count_tap "$out" "$t" "$rc"
    done
fi

if want fuzz; then
    for t in $(find "$B/fuzz" -type f -perm -u+x -name 'fuzz_*' 2>/dev/null | sort); do
        selected "${t#$B/}" || continue
        name=$(basename "$t")
        corpus="fuzz/corpus/$name"
        out="$LOG/fuzz.out"
        if [ -d "$corpus" ]; then
            timeout 1200 "$t" "$corpus" >"$out" 2>&1
            rc=$?
        else
            echo "missing corpus $corpus" >"$out"
            rc=1
        fi
        echo "fuzz replay $name: $(tail -n 1 "$out"), exit $rc"
        if [ "$rc" -eq 0 ]; then
            echo "ok - fuzz replay $name" >"$out.tap"
        else
            tail -n 30 "$out" | sed 's/^/    | /'
            echo "not ok - fuzz replay $name" >"$out.tap"
        fi
        count_tap "$out.tap" "fuzz:$name" 0
    done
fi

if want cli; then
    for t in $(find tests/cli -name '*.sh' 2>/dev/null | sort); do
        selected "$t" || continue
        out="$LOG/cli.out"
        IMAGESD_BIN=${IMAGESD_BIN:-$B/imagesd} timeout 1200 sh "$t" >"$out" 2>&1
        rc=$?
        echo "cli $t: $(grep -c '^ok \|^not ok ' "$out") cases, exit $rc"
        [ "$rc" -ne 0 ] && tail -n 30 "$out" | sed 's/^/    | /'
        count_tap "$out" "$t" "$rc"
    done
fi

# run_integration BIN LABEL: every integration test file against the imagesd at BIN
run_integration() {
    files=$(find tests/integration -maxdepth 1 -name '*.test.mjs' | sort)
    for t in $files; do
        selected "$t" || continue
        out="$LOG/int.out"
        IMAGESD_BIN=$1 timeout 1800 \
            node --test --test-concurrency=1 \
            --test-reporter=./tests/integration/support/tap-reporter.mjs "$t" >"$out" 2>&1
        rc=$?
        echo "integration$2 $t: $(grep -c '^ok \|^not ok ' "$out") cases, exit $rc"
        grep -v '^ok ' "$out" | head -n 80 | sed 's/^/    | /'
        count_tap "$out" "$t$2" "$rc"
    done
}

if want integration && [ -d tests/integration ]; then
    run_integration "${IMAGESD_BIN:-$ROOT/$B/imagesd}" ""
fi

if [ -n "$TSAN" ]; then
    # ThreadSanitizer exits 66 from a process that had a report, so races fail the tests
    export TSAN_OPTIONS="${TSAN_OPTIONS:-second_deadlock_stack=1}"
    if want unit; then
        for t in $(find "$TSAN/tests" -type f -perm -u+x 2>/dev/null | sort); do
            selected "${t#$TSAN/}" || continue
            out="$LOG/unit.out"
            CMOCKA_MESSAGE_OUTPUT=TAP timeout 1200 "$t" >"$out" 2>&1
            rc=$?
            echo "unit [tsan] $(echo "$t" | sed "s|^$TSAN/tests/||"): $(grep -c '^ok \|^not ok ' "$out") cases, exit $rc"
            [ "$rc" -ne 0 ] && tail -n 40 "$out" | sed 's/^/    | /'
            count_tap "$out" "$t" "$rc"
        done
    fi
    want integration && run_integration "$ROOT/$TSAN/imagesd" " [tsan]"
fi

[ -n "$failed_names" ] && echo "failed in:$failed_names"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
