# Sourced by the scripts that run test binaries (tests/run.sh, tests/tsan.sh, tests/fuzz/run.sh).  Sets GUARD,
# the command prefix each test binary runs under:
#
#     $GUARD ./binary args...
#
# Why: the sanitizer runtimes of clang 14 and gcc 12 put their shadow memory at fixed addresses that leave
# room for at most about 28-30 bits of address randomisation.  Machines whose kernel is set to
# vm.mmap_rnd_bits=32 (some of this project's fresh CI machines are) make them fail ("FATAL: ThreadSanitizer:
# unexpected memory mapping"), crash, or hang forever in their own signal handler: one CI run lost 5400 s in
# make tsan, and gcc's AddressSanitizer hung in 1 run of 6 of an empty program here at 32 bits.  So:
#   - setarch ARCH -R turns address randomisation off for that one process (no root, no sysctl, nothing
#     else on the machine changes), where setarch works;
#   - timeout turns a hang (the runtime's, or a bug's) into a failure with a name after GUARD_LIMIT seconds
#     (default 900; the slowest run, a suite under valgrind, takes about two minutes).  --foreground keeps
#     the run in the caller's process group, so Ctrl-C, or a time limit around the whole script (CI's),
#     still stops it; the command it times is the test binary itself (setarch and valgrind become it).
# Exit status 124 from a run means it was stopped by the time limit; guard_status says so in words.

# guard_prefix SECONDS: the prefix, with that time limit
guard_prefix() {
    prefix=""
    if command -v setarch >/dev/null 2>&1 && setarch "$(uname -m)" -R true >/dev/null 2>&1; then
        prefix="setarch $(uname -m) -R"
    fi
    if command -v timeout >/dev/null 2>&1; then
        prefix="timeout --foreground -k 10 $1 $prefix"
    fi
    echo "$prefix"
}
GUARD_LIMIT=${GUARD_LIMIT:-900}
GUARD=$(guard_prefix "$GUARD_LIMIT")

# guard_status STATUS: a run's exit status, with the time limit named when it struck
guard_status() {
    if [ "$1" = 124 ] || [ "$1" = 137 ]; then
        echo "$1 (stopped after the $GUARD_LIMIT s limit: hung?)"
    else
        echo "$1"
    fi
}
