#!/bin/sh
# `make cross-test`: the test suite (and the quick examples) built for other machines and run there, under
# emulation where needed.  Run from the repository root.
#
#   aarch64   aarch64-linux-gnu-gcc, run by qemu-aarch64: the __ARM_NEON register tile (MR=8, NR = 2 vectors)
#   i686      i686-linux-gnu-gcc -static, run directly (or by qemu-i386 where the kernel cannot): 32-bit
#             size_t and pointers, x87 arithmetic
#   windows   x86_64-w64-mingw32-gcc, run by wine: msvcrt's stdio (binary-mode files), 32-bit long
#   s390x     s390x-linux-gnu-gcc, run by qemu-s390x: big-endian (.npy files still little-endian)
#
# Every build is -std=c99 -Wall -Wextra -Wpedantic -Werror -O2, float and double.  A target whose compiler
# or runner is missing (or cannot build and run a hello-world) is reported as skipped, never as passed,
# with the apt-get line that installs it.  Each suite runs in its own scratch folder (it writes into
# build/test/ below it), given --fixtures tests/fixtures, like tests/run.sh.  The last line is
# `N passed, M failed`; exits non-zero if anything failed.  JOBS programs run at a time (default: CPUs).
#
# 32-bit x86 uses Debian's i686-linux-gnu cross compiler, not gcc -m32: gcc-multilib conflicts with
# gcc-12-aarch64-linux-gnu and gcc-12-s390x-linux-gnu (Debian 12), so it cannot sit next to them.  Its
# libc lives in /usr/i686-linux-gnu, not where the kernel's loader looks, hence -static; a static i386
# program runs directly on an x86_64 kernel.  (Without i686-linux-gnu-gcc, cc -m32 is used if it works.)
#
# Times on a 2-core x86_64 (JOBS=2): about 2.5 min in all.  The slowest run, the float suite under
# qemu-s390x, takes ~80 s, so both precisions run everywhere.  Too slow under qemu and skipped there:
# examples/checkpointing.c (~300 s under qemu-aarch64, over 4 min under qemu-s390x; 4 s native).

ROOT=$(pwd)
B=build/cross
STRICT="-std=c99 -Wall -Wextra -Wpedantic -Werror -O2"
JOBS=${JOBS:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)}
rm -rf "$B"/job* "$B"/probe* "$B"/seconds_*
mkdir -p "$B" || exit 1

passed=0
failed=0
skipped=0
ok() { passed=$((passed + 1)); echo "ok    $1"; }
bad() { failed=$((failed + 1)); echo "FAIL  $1"; }
skip() { skipped=$((skipped + 1)); echo "skip  $1"; }
have() { command -v "$1" >/dev/null 2>&1; }
now() { date +%s; }
start_time=$(now)

# Does the runner print the probe's hello?  Wine gets a second try 5 s later: once in three CI runs on our
# VM its first try failed, just after the prefix was created, and a run by hand minutes later worked.
probe_runs() {
    [ "$($RUNNER "$B/probe_$TARGET$EXE" 2>/dev/null | tr -d '\r')" = hello ] && return 0
    [ "$RUNNER" = wine ] || return 1
    sleep 5
    [ "$($RUNNER "$B/probe_$TARGET$EXE" 2>/dev/null | tr -d '\r')" = hello ]
}

# usable : can the current target's $CCMD build a hello-world and $RUNNER run it?  If not, skip it, saying
# what is missing and the apt-get line for it ($PACKAGES).
usable() {
    set -- $CCMD
    if ! have "$1"; then
        skip "$TARGET ($1 not installed: apt-get install -y $PACKAGES)"
        return 1
    fi
    set -- $RUNNER
    if [ -n "$1" ] && ! have "$1"; then
        skip "$TARGET ($1 not installed: apt-get install -y $PACKAGES)"
        return 1
    fi
    printf '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n' >"$B/probe.c"
    if ! $CCMD "$B/probe.c" -o "$B/probe_$TARGET$EXE" >"$B/probe.log" 2>&1; then
        skip "$TARGET ($CCMD cannot build a C program, no C library?: apt-get install -y $PACKAGES)"
        return 1
    fi
    if ! probe_runs; then
        skip "$TARGET (${RUNNER:-this machine} cannot run what $CCMD builds: apt-get install -y $PACKAGES)"
        return 1
    fi
    return 0
}

# no_extra_warnings : the implementation compiles for the current target without a warning under the
# extra set tests/run.sh checks on this machine (the target's types and libc headers differ: s390x does
# float sums in double, mingw-w64's isnan is a macro with a float branch)
EXTRA="-Wshadow -Wcast-qual -Wstrict-prototypes -Wmissing-prototypes -Wdouble-promotion -Wformat=2 -Wundef -Wvla -Wconversion -Wsign-conversion"
no_extra_warnings() {
    for prec in "" "-DBACKPROP_DOUBLE"; do
        if $CCMD $STRICT $EXTRA $prec -c tests/dropin/impl.c -o "$B/impl_$TARGET.o" >"$B/extra.log" 2>&1; then
            ok "$TARGET: no warnings with -Wconversion -Wshadow -Wdouble-promotion ... $prec"
        else
            cat "$B/extra.log"
            bad "$TARGET: warnings with $CCMD $STRICT $EXTRA $prec"
        fi
    done
}

# start WHAT LABEL FLAGS [EXPECT] : in the background, build WHAT (suite, or an example's name) for the
# current target (CCMD, RUNNER, EXE) and run it; leaves jobID/{target,label,kind,status,seconds,log,...}
# and jobID/done.  EXPECT: words the suite's first line must contain (which matmul tile it uses).
# JOBS run at a time, a new one as soon as one ends (the qemu runs differ in length: 1 s to 100 s);
# the results are reported in the order started.
started=0
pending=""
start() {
    started=$((started + 1))
    mkdir -p "$B/job$started/build/test" # (not out/: the examples create their output folder themselves)
    echo "$TARGET" >"$B/job$started/target"
    echo "$2" >"$B/job$started/label"
    echo "$1" >"$B/job$started/kind"
    echo "${4:-}" >"$B/job$started/expect"
    (run_job "$started" "$1" "$3"; : >"$B/job$started/done") &
    pending="$pending $started"
    while [ $((started - $(ls "$B"/job*/done 2>/dev/null | wc -l))) -ge "$JOBS" ]; do sleep 1; done
    report_done
}
# report_done : report the finished jobs at the head of the queue
report_done() {
    left=""
    for id in $pending; do
        if [ -z "$left" ] && [ -f "$B/job$id/done" ]; then report_job "$id"; else left="$left $id"; fi
    done
    pending=$left
}
run_job() {
    dir="$B/job$1"
    flags=$3
    t0=$(now)
    # the program's arguments: the suite's fixtures folder, or the folder an example writes into
    if [ "$2" = suite ]; then src=tests/test_backprop.c; set -- --fixtures "$ROOT/tests/fixtures"; else src="examples/$2.c"; set -- out; fi
    if ! $CCMD $STRICT $flags "$src" -o "$dir/prog$EXE" -lm >"$dir/build.log" 2>&1; then
        echo "$CCMD $STRICT $flags $src" >"$dir/command"
        echo build >"$dir/status"
    else
        (cd "$dir" && $RUNNER "./prog$EXE" "$@") >"$dir/raw.log" 2>&1
        echo $? >"$dir/status"
        tr -d '\r' <"$dir/raw.log" >"$dir/log" # (a Windows program's lines end in \r\n)
    fi
    echo $(($(now) - t0)) >"$dir/seconds"
}
finish_jobs() {
    wait
    report_done
}
report_job() {
    dir="$B/job$1"
    target=$(cat "$dir/target")
    label=$(cat "$dir/label")
    kind=$(cat "$dir/kind")
    expect=$(cat "$dir/expect")
    seconds=$(cat "$dir/seconds")
    echo "$seconds" >>"$B/seconds_$target"
    status=$(cat "$dir/status")
    if [ "$status" = build ]; then
        cat "$dir/build.log"
        if [ "$kind" = suite ]; then what="suite [$label]"; else what="example $kind"; fi
        bad "$target $what: does not compile ($(cat "$dir/command"))"
        return
    fi
    first=$(head -n 1 "$dir/log")
    last=$(tail -n 1 "$dir/log")
    if [ "$kind" != suite ]; then
        if [ "$status" -ne 0 ]; then
            cat "$dir/log"
            bad "$target example $kind: exit status $status"
        else
            ok "$target example $kind runs and succeeds ($last)  ${seconds} s"
        fi
        return
    fi
    n=$(echo "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1/p')
    m=$(echo "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\2/p')
    if [ -z "$n" ] || [ "$status" -ne 0 ] || [ "$m" -ne 0 ]; then
        cat "$dir/log"
        bad "$target suite [$label]: exit status $status, last line: $last"
        [ -n "$n" ] && passed=$((passed + n)) && failed=$((failed + m))
        return
    fi
    passed=$((passed + n))
    case "$first" in
    *"$expect"*) echo "ok    $target suite [$label]: $n passed   ($(echo "$first" | sed 's/^backprop.h tests: //'))  ${seconds} s" ;;
    *) bad "$target suite [$label]: $n passed, but not built with the 'matmul $expect': $first" ;;
    esac
}

# --- the targets, slowest first ---

# wine's first start in a new prefix creates it (a C: drive, a registry): timed here, before the other
# targets' jobs load the machine
export WINEDEBUG=-all WINEPREFIX="$ROOT/$B/wine" # (quiet; a prefix of our own, not ~/.wine)
if have wine && [ ! -d "$WINEPREFIX" ]; then
    t0=$(now)
    wine wineboot --init >"$B/wineboot.log" 2>&1
    if have wineserver; then timeout 60 wineserver -w >>"$B/wineboot.log" 2>&1; fi # (until its processes end)
    echo "note  windows: wine's first start (creating $B/wine) took $(($(now) - t0)) s"
fi

TARGET=s390x
CCMD="s390x-linux-gnu-gcc"
RUNNER="qemu-s390x -L /usr/s390x-linux-gnu"
EXE=
PACKAGES="gcc-s390x-linux-gnu libc6-dev-s390x-cross qemu-user"
if usable; then
    # the suite compares bp_tensor_save_npy's bytes with np.save's (tests/fixtures/npy) and loads the
    # little-endian fixtures: on this big-endian machine both must still hold
    start suite "big-endian, float" "" "tile 4x8"
    start suite "big-endian, double" "-DBACKPROP_DOUBLE" "tile 4x4"
    start forward_vs_reverse
    start vanishing_gradients
    no_extra_warnings
    s390x=yes
fi

TARGET=aarch64
CCMD="aarch64-linux-gnu-gcc"
RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
EXE=
PACKAGES="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
if usable; then
    start suite "NEON tile, float" "" "tile 8x8"
    start suite "NEON tile, double" "-DBACKPROP_DOUBLE" "tile 8x4"
    start forward_vs_reverse
    start vanishing_gradients
    no_extra_warnings
    aarch64=yes
fi

TARGET=i686
CCMD="i686-linux-gnu-gcc -static"
RUNNER=
EXE=
PACKAGES="gcc-i686-linux-gnu libc6-dev-i386-cross"
if ! have i686-linux-gnu-gcc && echo 'int main(void){return 0;}' | cc -m32 -x c - -o "$B/probe_m32" >/dev/null 2>&1; then
    CCMD="cc -m32"
fi
# A kernel built without 32-bit support cannot run it ("Exec format error", as on this project's CI
# machines): then qemu-i386 runs it, if installed (qemu-user).
printf 'int main(void) { return 0; }\n' >"$B/probe32.c"
if $CCMD "$B/probe32.c" -o "$B/probe32" >/dev/null 2>&1 && ! "$B/probe32" >/dev/null 2>&1 && have qemu-i386; then
    RUNNER=qemu-i386
    PACKAGES="$PACKAGES qemu-user"
fi
if usable; then
    # i686's default arithmetic is x87 (80-bit registers); with SSE2 it is IEEE double, bit for bit.
    # The x87 suites use small matmul blocks: qemu-i386 emulates x87 arithmetic slowly, and with the
    # default blocks matmul_vs_reference alone took 277 s (float) of CI's 25 minutes; its shapes follow
    # the blocks, so every tile and block edge is still crossed (8.5 s).  The SSE2 suite keeps the defaults.
    I686_BLOCKS="-DBP_MATMUL_KC=37 -DBP_MATMUL_NC=45 -DBP_MATMUL_MC=17"
    start suite "32-bit, x87, float, small blocks" "$I686_BLOCKS" "tile 4x8"
    start suite "32-bit, x87, double, small blocks" "$I686_BLOCKS -DBACKPROP_DOUBLE" "tile 4x4"
    if [ -z "$RUNNER" ]; then start checkpointing; else i686_qemu=yes; fi
    start suite "32-bit, -msse2 -mfpmath=sse, double" "-msse2 -mfpmath=sse -DBACKPROP_DOUBLE" "tile 4x4"
    start forward_vs_reverse
    start vanishing_gradients
    no_extra_warnings
fi

TARGET=windows
CCMD="x86_64-w64-mingw32-gcc"
RUNNER=wine
EXE=.exe
PACKAGES="gcc-mingw-w64-x86-64 wine wine64"
if usable; then
    # BP_TEST_LARGE_FILES: the 3 GiB .npy test (long is 32 bits on Windows); cheap here, where wine writes
    # sparse files on Linux
    start suite "mingw-w64 + wine, float" "-DBP_TEST_LARGE_FILES" "tile 4x8"
    start suite "mingw-w64 + wine, double" "-DBP_TEST_LARGE_FILES -DBACKPROP_DOUBLE" "tile 4x4"
    start checkpointing
    start forward_vs_reverse
    start vanishing_gradients
    no_extra_warnings
fi
finish_jobs

[ "$s390x" = yes ] && skip "s390x example checkpointing (too slow under qemu: over 4 min; 4 s native)"
[ "$aarch64" = yes ] && skip "aarch64 example checkpointing (too slow under qemu: ~300 s; 4 s native)"
[ "$i686_qemu" = yes ] && skip "i686 example checkpointing (this kernel runs 32-bit programs only under qemu-i386: too slow)"

times=""
for target in s390x aarch64 i686 windows; do
    [ -f "$B/seconds_$target" ] && times="$times  $target $(awk '{ s += $1 } END { print s }' "$B/seconds_$target") s"
done
echo "time  $(($(now) - start_time)) s in all; per target (its programs' times added):$times"
[ "$skipped" -gt 0 ] && echo "($skipped skipped: see the skip lines above)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
