/* libFuzzer harness for bp_tensor_load_npy: the fuzzer's bytes are written to a file and loaded.
   Whatever the bytes, the loader must not crash, leak, read or write out of bounds (ASan, UBSan, LSan
   watch), or call the error handler (the default one aborts, which the fuzzer reports as a crash); and it
   must keep its promises, checked below:
     - failure: -1, t is {0, 0, NULL}, bp_failure_reason() is one line naming the function and the file;
     - success: a sane shape, every element readable, and save-then-load gives the same values back.
   Built by `make fuzz` (clang -fsanitize=fuzzer,address,undefined); replay.c runs the same function over
   saved inputs without libFuzzer, which is how make sanitize replays the seeds and every input that ever
   crashed it (tests/fuzz/regressions/). */

#define _POSIX_C_SOURCE 200809L /* getpid */
#define BACKPROP_IMPLEMENTATION
#include "../../backprop.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[256], saved[300];
    bp_tensor t, back;
    const char *reason;
    fuzz_scratch_path(path, sizeof path, "npy");
    fuzz_write_file(path, data, size);
    t.rows = 5; /* garbage the loader must overwrite */
    t.cols = 5;
    t.data = NULL;
    if (bp_tensor_load_npy(&t, path) != 0) {
        reason = bp_failure_reason();
        FUZZ_REQUIRE(t.rows == 0 && t.cols == 0 && t.data == NULL);
        FUZZ_REQUIRE(strncmp(reason, "bp_tensor_load_npy: ", 20) == 0 && strstr(reason, path) != NULL);
        FUZZ_REQUIRE(strchr(reason, '\n') == NULL);
        return 0;
    }
    FUZZ_REQUIRE(t.rows >= 0 && t.cols >= 0 && (t.data != NULL || t.rows == 0 || t.cols == 0));
    FUZZ_REQUIRE((size_t)t.rows * (size_t)t.cols <= size); /* at least one byte per element in the file */
    /* the loaded tensor saves and loads back to the same values (NaNs stay NaN) */
    snprintf(saved, sizeof saved, "%s.saved", path);
    FUZZ_REQUIRE(bp_tensor_save_npy(&t, saved) == 0);
    FUZZ_REQUIRE(bp_tensor_load_npy(&back, saved) == 0 && back.rows == t.rows && back.cols == t.cols);
    {
        size_t i, n = (size_t)t.rows * (size_t)t.cols;
        for (i = 0; i < n; i++)
            FUZZ_REQUIRE(back.data[i] == t.data[i] || (back.data[i] != back.data[i] && t.data[i] != t.data[i]));
    }
    remove(saved);
    bp_tensor_free(&t);
    bp_tensor_free(&back);
    return 0;
}
