/* libFuzzer harness for bp_idx_load: the fuzzer's bytes are written to a file and loaded.  Whatever the
   bytes, the reader must not crash, leak, read or write out of bounds (ASan, UBSan, LSan watch) or call
   the error handler (the default one aborts: a crash to the fuzzer); and it must keep its promises:
     - failure: -1, idx is {0, {0,0,0}, NULL}, bp_failure_reason() is one line naming the function and file;
     - success: the file is exactly the header plus one byte per value, and the values are those bytes.
   Built by `make fuzz`; replay.c runs it over saved inputs without libFuzzer (see fuzz_npy.c). */

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
    char path[256];
    bp_idx idx;
    const char *reason;
    size_t header, count;
    fuzz_scratch_path(path, sizeof path, "idx");
    fuzz_write_file(path, data, size);
    idx.ndim = 9; /* garbage the reader must overwrite */
    idx.data = NULL;
    if (bp_idx_load(&idx, path) != 0) {
        reason = bp_failure_reason();
        FUZZ_REQUIRE(idx.ndim == 0 && idx.dims[0] == 0 && idx.dims[1] == 0 && idx.dims[2] == 0 && idx.data == NULL);
        FUZZ_REQUIRE(strncmp(reason, "bp_idx_load: ", 13) == 0 && strstr(reason, path) != NULL);
        FUZZ_REQUIRE(strchr(reason, '\n') == NULL);
        return 0;
    }
    FUZZ_REQUIRE(idx.ndim >= 1 && idx.ndim <= 3 && idx.dims[0] >= 0 && idx.dims[1] >= 0 && idx.dims[2] >= 0);
    header = 4 + 4 * (size_t)idx.ndim;
    count = (size_t)idx.dims[0] * (size_t)idx.dims[1] * (size_t)idx.dims[2];
    FUZZ_REQUIRE(size == header + count && data[2] == 0x08 && data[3] == idx.ndim);
    FUZZ_REQUIRE((count == 0) == (idx.data == NULL));
    FUZZ_REQUIRE(count == 0 || memcmp(idx.data, data + header, count) == 0);
    bp_idx_free(&idx);
    return 0;
}
