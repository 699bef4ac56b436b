#!/bin/sh
# The test driver behind `make test` and `make sanitize`.  Run from the repository root:
#
#     sh tests/run.sh            the suite in every build we promise, the drop-in checks, the examples
#     sh tests/run.sh sanitize   the suite and examples under AddressSanitizer + UndefinedBehaviorSanitizer
#     sh tests/run.sh valgrind   the suite and examples under valgrind's memcheck
#
# Compilers: CC (default cc) and CXX (default c++); clang and tcc are used too when installed, and are
# reported as skipped when not.  Every check counts; the last line is `N passed, M failed`, where a suite
# run adds the number of its own assertions.  Exits non-zero if anything failed.  The suite builds run
# JOBS at a time (default: the number of CPUs); JOBS=1 runs them one after another.

CC=${CC:-cc}
CXX=${CXX:-c++}
MODE=${1:-test}
B=build/test
mkdir -p "$B" || exit 1

passed=0
failed=0
skipped=0
STRICT="-std=c99 -Wall -Wextra -Wpedantic -Werror"
STRICT_CXX="-x c++ -std=c++11 -Wall -Wextra -Werror"

ok() { passed=$((passed + 1)); echo "ok    $1"; }
bad() { failed=$((failed + 1)); echo "FAIL  $1"; }
skip() { skipped=$((skipped + 1)); echo "skip  $1"; }
have() { command -v "$1" >/dev/null 2>&1; }

# suite NAME COMPILER FLAGS... : build tests/test_backprop.c, run it, add its counts.  Suites run JOBS at a
# time (default: the number of CPUs), each in its own folder (the suite writes scratch files into
# build/test/ below the folder it runs in); finish_suites waits for them and reports in the order started.
ROOT=$(pwd)
. tests/guard.sh # GUARD: address randomisation off (the sanitizers need it on some kernels), a time limit
RUNNER="$GUARD" # what runs each suite and example: the guard, then valgrind in valgrind mode
JOBS=${JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
started=0
running=0
pending=""
suite() {
    started=$((started + 1))
    echo "$1" >"$B/suite$started.name"
    shift
    echo "$*" >"$B/suite$started.command"
    run_suite "$started" "$@" &
    pending="$pending $started"
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then finish_suites; fi
}
# run_suite ID COMPILER FLAGS... : in the background; leaves suiteID.{build,log,status}
run_suite() {
    id=$1
    shift
    if ! "$@" tests/test_backprop.c -o "$B/suite$id" -lm >"$B/suite$id.build" 2>&1; then
        echo build >"$B/suite$id.status"
        return
    fi
    mkdir -p "$B/run$id/build/test"
    (cd "$B/run$id" && $RUNNER "$ROOT/$B/suite$id" --fixtures "$ROOT/tests/fixtures") >"$B/suite$id.log" 2>&1
    echo $? >"$B/suite$id.status"
}
finish_suites() {
    wait
    for id in $pending; do report_suite "$id"; done
    pending=""
    running=0
}
report_suite() {
    name=$(cat "$B/suite$1.name")
    status=$(cat "$B/suite$1.status")
    if [ "$status" = build ]; then
        cat "$B/suite$1.build"
        bad "suite [$name]: does not compile ($(cat "$B/suite$1.command"))"
        return
    fi
    last=$(tail -n 1 "$B/suite$1.log")
    n=$(echo "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1/p')
    m=$(echo "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\2/p')
    if [ -z "$n" ] || [ "$status" -ne 0 ] || [ "$m" -ne 0 ]; then
        cat "$B/suite$1.log"
        bad "suite [$name]: exit status $(guard_status "$status"), last line: $last"
        [ -n "$n" ] && passed=$((passed + n)) && failed=$((failed + m))
        return
    fi
    passed=$((passed + n))
    echo "ok    suite [$name]: $n passed   ($(head -n 1 "$B/suite$1.log" | sed 's/^backprop.h tests: //'))"
}

# example NAME COMPILER FLAGS... : build examples/NAME.c and run it; it must exit 0.
example() {
    name=$1
    shift
    if ! "$@" "examples/$name.c" -o "$B/$name" -lm >"$B/build.log" 2>&1; then
        cat "$B/build.log"
        bad "example $name: does not compile ($*)"
        return 1
    fi
    $RUNNER "$B/$name" >"$B/$name.log" 2>&1
    status=$?
    if [ "$status" -ne 0 ]; then
        cat "$B/$name.log"
        bad "example $name: exit status $(guard_status "$status")"
        return 1
    fi
    ok "example $name runs and succeeds ($(tail -n 1 "$B/$name.log"))"
}

# The walkthrough prints the same digits as numpy's textbook code (tests/fixtures/walkthrough_expected.txt).
walkthrough_matches_numpy() {
    missing=0
    while IFS= read -r line; do
        case "$line" in '#'* | '') continue ;; esac
        if ! grep -Fxq -- "$line" "$B/walkthrough.log"; then
            echo "      missing from the walkthrough's output: $line"
            missing=$((missing + 1))
        fi
    done <tests/fixtures/walkthrough_expected.txt
    if [ "$missing" -eq 0 ]; then ok "walkthrough prints numpy's loss, dW, db and dx digit for digit"; else bad "walkthrough differs from numpy in $missing lines"; fi
}

if [ "$MODE" = valgrind ]; then
    # memcheck: reads of uninitialised memory, bad frees, leaks (any leak is an error here).  Plain -O2
    # builds without -march=native: valgrind does not emulate AVX-512.
    if have valgrind; then
        RUNNER="$GUARD valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=all --errors-for-leak-kinds=all"
        suite "valgrind, $CC -O2, float" $CC $STRICT -O2 -g
        suite "valgrind, $CC -O2, double" $CC $STRICT -O2 -g -DBACKPROP_DOUBLE
        suite "valgrind, $CC tiny matmul blocks" $CC $STRICT -O2 -g -DBP_MATMUL_KC=5 -DBP_MATMUL_NC=7 -DBP_MATMUL_MC=3
        finish_suites
        example walkthrough $CC $STRICT -O2 -g
        example train_xor $CC $STRICT -O2 -g
        example vanishing_gradients $CC $STRICT -O2 -g
        example forward_vs_reverse $CC $STRICT -O2 -g
        mkdir -p "$B/from_pytorch"
        example from_pytorch/run_mlp $CC $STRICT -O2 -g
        example from_pytorch/run_cnn $CC $STRICT -O2 -g
        # (not checkpointing: 108 s under memcheck, 4 s without; make sanitize runs it under ASan)
    else
        skip "valgrind (not installed: apt-get install -y valgrind)"
    fi
elif [ "$MODE" = sanitize ]; then
    SAN="-g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    suite "$CC sanitized, float" $CC $STRICT $SAN
    suite "$CC sanitized, double" $CC $STRICT $SAN -DBACKPROP_DOUBLE
    suite "$CC sanitized, -O3 -march=native" $CC $STRICT $SAN -O3 -march=native -ffp-contract=fast -DBP_TEST_FUSED_MULTIPLY_ADD
    suite "$CC sanitized, tiny matmul blocks" $CC $STRICT $SAN -DBP_MATMUL_KC=5 -DBP_MATMUL_NC=7 -DBP_MATMUL_MC=3
    if have clang; then
        suite "clang sanitized, float" clang $STRICT $SAN
        suite "clang sanitized, double" clang $STRICT $SAN -DBACKPROP_DOUBLE
    else
        skip "clang sanitized (clang not installed)"
    fi
    finish_suites
    # the fuzz harnesses, without libFuzzer, over their seeds and every input that ever broke a promise
    # (tests/fuzz/regressions/): those bugs stay fixed even where clang's libFuzzer is missing
    for kind in npy idx npz; do
        case $kind in
        npy) set -- tests/fixtures/npy ;;
        idx) set -- tests/fuzz/seeds/idx ;;
        npz) set -- tests/fixtures/npz ;;
        esac
        [ -d tests/fuzz/regressions/$kind ] && set -- "$@" tests/fuzz/regressions/$kind
        if $CC $STRICT $SAN tests/fuzz/fuzz_$kind.c tests/fuzz/replay.c -o "$B/replay_$kind" -lm &&
            $GUARD "$B/replay_$kind" "$@" >"$B/replay_$kind.log" 2>&1; then
            ok "fuzz_$kind replays its seeds and regressions ($(cat "$B/replay_$kind.log"))"
        else
            cat "$B/replay_$kind.log"
            bad "fuzz_$kind replay"
        fi
    done
    example walkthrough $CC $STRICT $SAN
    example train_xor $CC $STRICT $SAN
    example vanishing_gradients $CC $STRICT $SAN
    example forward_vs_reverse $CC $STRICT $SAN
    example checkpointing $CC $STRICT $SAN
    mkdir -p "$B/from_pytorch"
    example from_pytorch/run_mlp $CC $STRICT $SAN
    example from_pytorch/run_cnn $CC $STRICT $SAN
    # (not iris_mlp: 750000 training steps, 4 s under ASan; the suite's mlp tests run here)
else
    # --- the suite, in every build the header promises to work in ---
    suite "$CC -std=c99 -O2, float" $CC $STRICT -O2
    suite "$CC -std=c99 -O2, double" $CC $STRICT -O2 -DBACKPROP_DOUBLE
    suite "$CC -O3 -march=native -ffp-contract=fast, float" $CC $STRICT -O3 -march=native -ffp-contract=fast -DBP_TEST_FUSED_MULTIPLY_ADD
    suite "$CC -O3 -march=native -ffp-contract=fast, double" $CC $STRICT -O3 -march=native -ffp-contract=fast -DBP_TEST_FUSED_MULTIPLY_ADD -DBACKPROP_DOUBLE
    suite "$CC tiny matmul blocks, float" $CC $STRICT -O2 -DBP_MATMUL_KC=5 -DBP_MATMUL_NC=7 -DBP_MATMUL_MC=3
    suite "$CC tiny matmul blocks, double" $CC $STRICT -O2 -DBACKPROP_DOUBLE -DBP_MATMUL_KC=5 -DBP_MATMUL_NC=7 -DBP_MATMUL_MC=3
    # BACKPROP_NO_STDIO: no file functions (their tests are left out), everything else the same
    suite "$CC BACKPROP_NO_STDIO, float" $CC $STRICT -O2 -DBACKPROP_NO_STDIO
    if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
        # native is AVX-512 here; also run the AVX2 register tile, which other x86 machines get
        suite "$CC -O3 -mavx2 -mfma (the AVX2 tile), float" $CC $STRICT -O3 -mavx2 -mfma -ffp-contract=fast -DBP_TEST_FUSED_MULTIPLY_ADD
    fi
    # OpenMP: bp_matmul shares row blocks among threads; results must not change (the suite compares
    # against the naive loop and, under _OPENMP, 1 thread against 2 bit for bit)
    if echo 'int main(void){return 0;}' | $CC -fopenmp -x c - -o "$B/omp_probe" >/dev/null 2>&1; then
        export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive
        suite "$CC -fopenmp, 2 threads, float" $CC $STRICT -O3 -march=native -ffp-contract=fast -fopenmp -DBP_TEST_FUSED_MULTIPLY_ADD
        suite "$CC -fopenmp, 2 threads, double" $CC $STRICT -O2 -fopenmp -DBACKPROP_DOUBLE
        unset OMP_NUM_THREADS OMP_WAIT_POLICY
    else
        skip "suite with OpenMP ($CC -fopenmp does not link)"
    fi
    if have "$CXX"; then
        suite "$CXX as C++11, float" $CXX $STRICT_CXX -O2
        suite "$CXX as C++11, double" $CXX $STRICT_CXX -O2 -DBACKPROP_DOUBLE
    else
        skip "suite as C++ ($CXX not installed)"
    fi
    if have clang; then
        suite "clang -std=c99 -O2, float" clang $STRICT -O2
        suite "clang -O3 -march=native, double" clang $STRICT -O3 -march=native -ffp-contract=fast -DBP_TEST_FUSED_MULTIPLY_ADD -DBACKPROP_DOUBLE
    else
        skip "suite under clang (clang not installed)"
    fi
    if have tcc; then
        suite "tcc, float" tcc -Wall -Werror
        suite "tcc, double" tcc -Wall -Werror -DBACKPROP_DOUBLE
    else
        skip "suite under tcc (tcc not installed: apt-get install -y tcc)"
    fi
    finish_suites

    # --- the student's copy: each copyable function, copied out of backprop.h by the README's recipe; in
    # the background (its own folder, build/coursework) while the drop-in checks and examples use the
    # other core; reported at the end ---
    CC="$CC" sh tests/coursework.sh >"$B/coursework.log" 2>&1 &
    coursework_pid=$!

    # --- drop-in: how a project uses the header ---
    if $CC $STRICT -O2 -c tests/dropin/impl.c -o "$B/impl.o" && $CC $STRICT -O2 -c tests/dropin/user.c -o "$B/user.o" &&
        $CC "$B/impl.o" "$B/user.o" -o "$B/dropin" -lm && "$B/dropin"; then
        ok "drop-in: implementation in one C file, used from another"
    else
        bad "drop-in: two C files"
    fi
    if have "$CXX"; then
        if $CXX $STRICT_CXX -O2 -c tests/dropin/user.c -o "$B/user_cxx.o" && $CXX "$B/impl.o" "$B/user_cxx.o" -o "$B/dropin_cxx" -lm &&
            "$B/dropin_cxx"; then
            ok "drop-in: C++ file using the implementation compiled as C (extern \"C\")"
        else
            bad "drop-in: C++ user, C implementation"
        fi
        if $CXX $STRICT_CXX -O2 -c tests/dropin/impl.c -o "$B/impl_cxx.o" && $CXX "$B/impl_cxx.o" "$B/user.o" -o "$B/dropin_cxx2" -lm &&
            "$B/dropin_cxx2"; then
            ok "drop-in: C file using the implementation compiled as C++"
        else
            bad "drop-in: C user, C++ implementation"
        fi
    fi
    if have nm; then
        foreign=$(nm -g --defined-only "$B/impl.o" | awk '{print $3}' | grep -v '^bp_')
        count=$(nm -g --defined-only "$B/impl.o" | awk '{print $3}' | grep -c '^bp_')
        if [ -z "$foreign" ] && [ "$count" -gt 10 ]; then
            ok "exports: $count symbols, all bp_-prefixed"
        else
            bad "exports symbols without the bp_ prefix: $foreign"
        fi
    else
        skip "exported-symbol check (nm not installed)"
    fi
    # the implementation under the warnings a strict project turns on beyond -Wall -Wextra -Wpedantic
    EXTRA="-Wshadow -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes -Wdouble-promotion -Wformat=2 -Wundef -Wvla -Wconversion -Wsign-conversion"
    for cc in "$CC" clang; do
        if ! have "$cc"; then continue; fi
        for prec in "" "-DBACKPROP_DOUBLE"; do
            if $cc $STRICT $EXTRA -O2 $prec -c tests/dropin/impl.c -o "$B/impl_extra.o"; then
                ok "no warnings with $cc -Wconversion -Wshadow -Wdouble-promotion ... $prec"
            else
                bad "warnings with $cc $EXTRA $prec"
            fi
        done
    done
    # BACKPROP_NO_STDIO: no <stdio.h>, no file functions, and the messages still formatted (by the library)
    for cc in "$CC $STRICT -O2" "$CXX $STRICT_CXX -O2" "tcc -Wall -Werror"; do
        set -- $cc
        if ! have "$1"; then continue; fi
        if $cc tests/dropin/no_stdio.c -o "$B/no_stdio" -lm && "$B/no_stdio"; then
            ok "BACKPROP_NO_STDIO: no <stdio.h>, no file functions, the same messages ($cc)"
        else
            bad "BACKPROP_NO_STDIO ($cc)"
        fi
    done
    if $CC $STRICT $EXTRA -O2 -DBACKPROP_NO_STDIO -c tests/dropin/impl.c -o "$B/impl_extra.o"; then
        ok "no warnings with $CC -Wconversion -Wshadow -Wdouble-promotion ... -DBACKPROP_NO_STDIO"
    else
        bad "warnings with $CC $EXTRA -DBACKPROP_NO_STDIO"
    fi
    if $CC $STRICT -O2 tests/dropin/twice.c -o "$B/twice" -lm && "$B/twice"; then
        ok "including the header several times, with and without the implementation"
    else
        bad "including the header several times"
    fi
    for cc in "$CC $STRICT -O2" "$CC $STRICT -O2 -DBACKPROP_DOUBLE" "clang $STRICT -O2" "$CXX $STRICT_CXX -O2" "tcc -Wall -Werror"; do
        set -- $cc
        if ! have "$1"; then continue; fi
        if $cc -c tests/dropin/static_a.c -o "$B/static_a.o" && $cc -c tests/dropin/static_b.c -o "$B/static_b.o" &&
            $1 "$B/static_a.o" "$B/static_b.o" -o "$B/static" -lm && "$B/static" &&
            ! nm -g --defined-only "$B/static_a.o" "$B/static_b.o" 2>/dev/null | grep -q ' bp_'; then
            ok "BACKPROP_STATIC: two private copies link, export nothing, no unused warnings ($cc)"
        else
            bad "BACKPROP_STATIC ($cc)"
        fi
    done
    if $CC $STRICT -O2 tests/dropin/one_allocator.c -o "$B/one_allocator" 2>"$B/one_allocator.log"; then
        bad "BP_MALLOC without BP_FREE compiled"
    elif grep -q "define both BP_MALLOC and BP_FREE" "$B/one_allocator.log"; then
        ok "BP_MALLOC without BP_FREE stops the build with #error"
    else
        cat "$B/one_allocator.log"
        bad "BP_MALLOC without BP_FREE: no clear #error"
    fi
    $CC $STRICT -O2 tests/dropin/default_handler.c -o "$B/default_handler" -lm
    "$B/default_handler" 2>"$B/default_handler.log"
    status=$?
    expected="bp_linear_forward: x is 8x4 but W is 3x2 (x.cols must equal W.rows)"
    # (dash adds its own "Aborted" line to the same stderr, hence only the first line)
    if [ "$status" -eq 134 ] && [ "$(head -n 1 "$B/default_handler.log")" = "$expected" ]; then
        ok "default error handler: prints the one line to stderr, then abort()"
    else
        bad "default error handler: status $status, stderr: $(cat "$B/default_handler.log")"
    fi

    # --- the examples ---
    example walkthrough $CC $STRICT -O2 && walkthrough_matches_numpy
    example train_xor $CC $STRICT -O2
    # far too high a learning rate: the example must stop with one clear line, not print garbage
    if "$B/train_xor" 50 >"$B/train_xor_nan.log" 2>&1; then
        bad "train_xor 50: exit status 0 (the loss should blow up)"
    elif grep -q "^train_xor: loss became \(NaN\|infinite\) at step [0-9]*: learning rate 50 too high?$" "$B/train_xor_nan.log"; then
        ok "train_xor with learning rate 50 stops: $(grep '^train_xor:' "$B/train_xor_nan.log")"
    else
        cat "$B/train_xor_nan.log"
        bad "train_xor 50: no clear message"
    fi
    # each checks its own claim and exits non-zero if it does not hold (Fashion-MNIST needs its data set
    # and minutes: run it with make fashion)
    example vanishing_gradients $CC $STRICT -O2
    example forward_vs_reverse $CC $STRICT -O2
    example checkpointing $CC $STRICT -O2
    # the network in one object: genann's Iris example; and PyTorch models (an MLP, a CNN) with PyTorch's
    # outputs (they exit non-zero unless they agree to 1e-5 and the classes are equal)
    example iris_mlp $CC $STRICT -O2
    mkdir -p "$B/from_pytorch"
    example from_pytorch/run_mlp $CC $STRICT -O2
    example from_pytorch/run_cnn $CC $STRICT -O2
    # the examples run from any folder: they create their output folder, or say which file failed and why
    rm -rf "$B/fresh"
    mkdir -p "$B/fresh"
    if (cd "$B/fresh" && ../vanishing_gradients new_folder >/dev/null 2>&1) && [ -s "$B/fresh/new_folder/vanishing_gradients.svg" ]; then
        ok "vanishing_gradients run from another folder creates its output folder"
    else
        bad "vanishing_gradients run from $B/fresh with output folder new_folder"
    fi
    touch "$B/fresh/a_file"
    if "$B/vanishing_gradients" "$B/fresh/a_file" >/dev/null 2>"$B/fresh/unwritable.log"; then
        bad "vanishing_gradients with a file as its output folder: exit status 0"
    elif grep -q "^vanishing_gradients: cannot write $B/fresh/a_file/vanishing_gradients.svg: " "$B/fresh/unwritable.log"; then
        ok "vanishing_gradients says which file it could not write, and why: $(head -n 1 "$B/fresh/unwritable.log")"
    else
        cat "$B/fresh/unwritable.log"
        bad "vanishing_gradients with a file as its output folder: no clear message"
    fi

    if wait "$coursework_pid"; then
        ok "make coursework: $(tail -n 1 "$B/coursework.log") ($(grep -c '^ok' "$B/coursework.log") functions copied, compiled alone, same results)"
    else
        cat "$B/coursework.log"
        bad "make coursework"
    fi
fi

[ "$skipped" -gt 0 ] && echo "($skipped skipped: see the skip lines above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
