/* What the fuzz harnesses share: a scratch file per process (libFuzzer may run several), and a check
   that aborts (so the fuzzer saves the input) when a promise is broken. */

#define FUZZ_REQUIRE(cond)                                                                                     \
    do {                                                                                                       \
        if (!(cond)) {                                                                                         \
            fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__, __LINE__, #cond);                        \
            abort();                                                                                           \
        }                                                                                                      \
    } while (0)

/* $TMPDIR/bp_fuzz_KIND_PID (or /tmp/...), the file each input is written to. */
static void fuzz_scratch_path(char *path, size_t size, const char *kind)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, size, "%s/bp_fuzz_%s_%ld", dir && *dir ? dir : "/tmp", kind, (long)getpid());
}

static void fuzz_write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    FUZZ_REQUIRE(f != NULL);
    FUZZ_REQUIRE(fwrite(data, 1, size, f) == size);
    FUZZ_REQUIRE(fclose(f) == 0);
}
