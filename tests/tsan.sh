#!/bin/sh
# make tsan: the test suite under ThreadSanitizer, twice: a plain build (its threaded tests start 4 POSIX
# threads: bp_failure_reason per thread, the layers and the matmul in several threads at once) and an
# OpenMP build with 2 threads (every bp_matmul call large enough shares its blocks among them, and the
# threaded tests then nest OpenMP teams inside the POSIX threads).  Needs clang (TSAN_CC=...), whose OpenMP
# runtime, libomp, tells ThreadSanitizer about its own synchronisation; gcc's libgomp does not, and its
# false reports would drown real ones, so with gcc only the plain build runs (the OpenMP one is skipped).
# TSAN_OPTIONS=ignore_noninstrumented_modules=1 is what LLVM asks for with libomp.  A race fails the run
# (exit status 66).  Prints ok/FAIL/skip lines and ends with `N passed, M failed`.

TSAN_CC=${TSAN_CC:-clang}
B=build/tsan
mkdir -p "$B" || exit 1
passed=0
failed=0
FLAGS="-std=c99 -Wall -Wextra -Wpedantic -Werror -g -O1 -fsanitize=thread"
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:ignore_noninstrumented_modules=1"
. tests/guard.sh # GUARD: address randomisation off (ThreadSanitizer needs it on some kernels), a time limit

if ! echo 'int main(void) { return 0; }' | $TSAN_CC -fsanitize=thread -x c - -o "$B/probe" >/dev/null 2>&1 ||
    ! $(guard_prefix 60) "$B/probe"; then
    echo "skip  ThreadSanitizer ($TSAN_CC -fsanitize=thread does not build or run here)"
    echo "0 passed, 0 failed"
    exit 0
fi

# build BINARY FLAGS...: compile the suite and run it whole, in the background (both builds at once, one per
# core), each in a folder of its own, $B/run_BINARY: the suite writes scratch files into build/test/ below
# the folder it runs in, and two suites in one folder removed each other's files (a CI run failed
# allocation_failure that way, as run.sh's suites would without their own folders); report NAME BINARY
# afterwards: its checks count, and any race fails it
build() {
    out=$1
    shift
    (if $TSAN_CC $FLAGS "$@" tests/test_backprop.c -o "$B/$out" -lm >"$B/$out.build" 2>&1; then
        mkdir -p "$B/run_$out/build/test"
        cd "$B/run_$out" && $GUARD ../"$out" --fixtures ../../../tests/fixtures >../"$out.log" 2>&1
        echo $? >../"$out.status"
    else
        echo build >"$B/$out.status"
    fi) &
}
report() {
    status=$(cat "$B/$2.status")
    n=$(tail -n 1 "$B/$2.log" 2>/dev/null | sed -n 's/^\([0-9]*\) passed, 0 failed$/\1/p')
    if [ "$status" = 0 ] && [ -n "$n" ]; then
        echo "ok    $1: $n checks passed, no race ($(grep -h '^  [0-9]* threads' "$B/$2.log" | sed 's/^  //' | tr '\n' ';' | sed 's/;$//; s/;/; /g'))"
        passed=$((passed + n))
    elif [ "$status" = build ]; then
        cat "$B/$2.build"
        echo "FAIL  $1: does not compile"
        failed=$((failed + 1))
    else
        grep -A 30 'WARNING: ThreadSanitizer' "$B/$2.log" | head -n 60
        tail -n 5 "$B/$2.log"
        echo "FAIL  $1: exit status $(guard_status "$status") (log: $B/$2.log)"
        failed=$((failed + 1))
    fi
}

omp=no
[ "$TSAN_CC" = "${TSAN_CC%gcc*}" ] && echo 'int main(void) { return 0; }' | $TSAN_CC -fopenmp -x c - -o "$B/probe" >/dev/null 2>&1 && omp=yes
rm -f "$B"/*.status
build suite
[ $omp = yes ] && OMP_NUM_THREADS=2 build suite_omp -fopenmp
wait
report "suite under ThreadSanitizer ($TSAN_CC)" suite
if [ $omp = yes ]; then
    report "suite with OpenMP (2 threads) under ThreadSanitizer ($TSAN_CC, libomp)" suite_omp
else
    echo "skip  OpenMP under ThreadSanitizer (needs clang and libomp: apt-get install -y clang libomp-dev)"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
