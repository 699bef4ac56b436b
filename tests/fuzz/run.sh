#!/bin/sh
# make fuzz: each libFuzzer harness (fuzz_npy.c, fuzz_idx.c, fuzz_npz.c) for SECONDS seconds (default 60),
# all three at once (on two cores: two thirds of a core each), under AddressSanitizer +
# UndefinedBehaviorSanitizer + LeakSanitizer.  Needs
# clang with libFuzzer (Debian: apt-get install -y clang; the runtime is in libclang-rt-14-dev).
#
#     sh tests/fuzz/run.sh [SECONDS]          FUZZ_CC=clang-14 to pick the compiler
#
# The corpus grows in build/fuzz/corpus_KIND/ (seeded from tests/fixtures/npy/, tests/fuzz/seeds/idx/ and
# tests/fixtures/npz/).
# An input that crashes, leaks or breaks a promise is saved as build/fuzz/crash_KIND_*; fix the bug, then
# copy the input into tests/fuzz/regressions/KIND/, where make sanitize replays it from then on.
# Prints ok/FAIL/skip lines and ends with `N passed, M failed`.

SECONDS_EACH=${1:-60}
FUZZ_CC=${FUZZ_CC:-clang}
B=build/fuzz
mkdir -p "$B" || exit 1
passed=0
failed=0
GUARD_LIMIT=$((SECONDS_EACH + 300)) # each harness runs SECONDS_EACH; more is a hang
. tests/guard.sh # GUARD: address randomisation off (the sanitizers need it on some kernels), a time limit
FLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }' |
    $FUZZ_CC $FLAGS -x c - -o "$B/probe" >/dev/null 2>&1; then
    echo "skip  fuzzing ($FUZZ_CC -fsanitize=fuzzer does not link: apt-get install -y clang libclang-rt-14-dev)"
    echo "0 passed, 0 failed"
    exit 0
fi

# seeds KIND: the folders that seed the corpus
seeds() {
    case $1 in
    npy) echo tests/fixtures/npy ;;
    idx) echo tests/fuzz/seeds/idx ;;
    npz) echo tests/fixtures/npz ;;
    esac
}

for kind in npy idx npz; do
    if ! $FUZZ_CC $FLAGS "tests/fuzz/fuzz_$kind.c" -o "$B/fuzz_$kind" -lm >"$B/build_$kind.log" 2>&1; then
        cat "$B/build_$kind.log"
        echo "FAIL  fuzz_$kind does not compile"
        failed=$((failed + 1))
        continue
    fi
    mkdir -p "$B/corpus_$kind"
    dict=""
    [ -f "tests/fuzz/$kind.dict" ] && dict="-dict=tests/fuzz/$kind.dict"
    # -max_len: room for a header near the loader's 65536-byte limit is not needed to reach every branch;
    # 8 KB keeps each run fast.  -timeout: a single input taking over 10 s is a hang, and a failure.
    (ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        $GUARD "$B/fuzz_$kind" -max_total_time="$SECONDS_EACH" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$B/crash_${kind}_" -print_final_stats=1 $dict "$B/corpus_$kind" $(seeds $kind) \
        >"$B/fuzz_$kind.log" 2>&1
     echo $? >"$B/fuzz_$kind.status") &
done
wait

for kind in npy idx npz; do
    [ -f "$B/fuzz_$kind.status" ] || continue
    status=$(cat "$B/fuzz_$kind.status")
    rm -f "$B/fuzz_$kind.status"
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$B/fuzz_$kind.log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$B/fuzz_$kind.log" | tail -n 1)
    if [ "$status" -eq 0 ]; then
        echo "ok    fuzz_$kind: ${runs:-?} inputs in ${SECONDS_EACH} s, $cov edges, corpus $(ls "$B/corpus_$kind" | wc -l) files, nothing broke"
        passed=$((passed + 1))
    else
        tail -n 40 "$B/fuzz_$kind.log"
        echo "FAIL  fuzz_$kind: exit status $(guard_status "$status"); the input is in $B/crash_${kind}_* (log: $B/fuzz_$kind.log)"
        failed=$((failed + 1))
    fi
done
rm -f "${TMPDIR:-/tmp}"/bp_fuzz_*
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
