/* libFuzzer harness for the .npz reader (bp_npz_list, bp_npz_load) and, on whatever loads, the writer
   (bp_npz_save): the fuzzer's bytes are written to a file, listed, and every listed member loaded.
   Whatever the bytes, nothing may crash, leak, read or write out of bounds (ASan, UBSan, LSan watch), or
   call the error handler (the default one aborts, which the fuzzer reports as a crash); and the promises
   checked below must hold:
     - a failure is -1, t is {0, 0, NULL}, and bp_failure_reason() is one line naming the function and the
       file; bp_npz_list never calls back when it fails, and bp_npz_load then refuses the archive too;
     - bp_npz_list calls back once per member it counts; a member it lists as loadable (rows >= 0) loads
       with that shape or is refused for its bytes (a bad CRC, a short .npy), one it lists as -1 -1 is
       refused; no tensor has more elements than the file has bytes;
     - what loads, saved with bp_npz_save, lists and loads back the same (names, shapes, bits).
   Built by `make fuzz`; replay.c runs the same function over saved inputs without libFuzzer, which is how
   make sanitize replays the seeds (tests/fixtures/npz/) and every input that ever broke a promise
   (tests/fuzz/regressions/npz/). */

#define _POSIX_C_SOURCE 200809L /* getpid */
#define BACKPROP_IMPLEMENTATION
#include "../../backprop.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

#define FUZZ_MEMBERS 64

typedef struct listing {
    int calls;
    char names[FUZZ_MEMBERS][64]; /* the first 63 characters of the first FUZZ_MEMBERS names */
    int rows[FUZZ_MEMBERS], cols[FUZZ_MEMBERS];
} listing;

static void collect(void *ctx, const char *name, int rows, int cols)
{
    listing *l = (listing *)ctx;
    FUZZ_REQUIRE(name != NULL && (rows >= 0) == (cols >= 0) && rows >= -1);
    if (l->calls < FUZZ_MEMBERS) {
        strncpy(l->names[l->calls], name, 63);
        l->names[l->calls][63] = 0;
        l->rows[l->calls] = rows;
        l->cols[l->calls] = cols;
    }
    l->calls++;
}

static void require_failure(int rc, const bp_tensor *t, const char *fn, const char *path)
{
    const char *reason = bp_failure_reason();
    FUZZ_REQUIRE(rc == -1);
    FUZZ_REQUIRE(t == NULL || (t->rows == 0 && t->cols == 0 && t->data == NULL));
    FUZZ_REQUIRE(strncmp(reason, fn, strlen(fn)) == 0 && reason[strlen(fn)] == ':' && strstr(reason, path) != NULL);
    FUZZ_REQUIRE(strchr(reason, '\n') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[256], saved[300];
    static listing l, back_list;
    bp_tensor loaded[FUZZ_MEMBERS];
    const bp_tensor *to_save[FUZZ_MEMBERS];
    const char *names[FUZZ_MEMBERS];
    int n, k, count = 0;
    fuzz_scratch_path(path, sizeof path, "npz");
    fuzz_write_file(path, data, size);
    memset(&l, 0, sizeof l);
    n = bp_npz_list(path, collect, &l);
    if (n < 0) {
        bp_tensor t = {5, 5, NULL};
        require_failure(n, NULL, "bp_npz_list", path);
        FUZZ_REQUIRE(l.calls == 0);
        require_failure(bp_npz_load(&t, path, "a"), &t, "bp_npz_load", path); /* the same archive, refused */
        return 0;
    }
    FUZZ_REQUIRE(l.calls == n && bp_failure_reason()[0] == 0);
    for (k = 0; k < n && k < FUZZ_MEMBERS; k++) {
        bp_tensor t = {5, 5, NULL};
        int rc;
        if (strlen(l.names[k]) == 63) continue; /* (a longer name was cut: not asked for) */
        rc = bp_npz_load(&t, path, l.names[k]);
        if (rc != 0) {
            require_failure(rc, &t, "bp_npz_load", path);
            continue;
        }
        FUZZ_REQUIRE(l.rows[k] == t.rows && l.cols[k] == t.cols);
        FUZZ_REQUIRE((size_t)t.rows * (size_t)t.cols <= size); /* at least one byte per element in the file */
        FUZZ_REQUIRE(t.data != NULL || t.rows == 0 || t.cols == 0);
        loaded[count] = t;
        names[count] = l.names[k];
        to_save[count] = &loaded[count];
        count++;
    }
    {
        bp_tensor t = {5, 5, NULL};
        require_failure(bp_npz_load(&t, path, "no such member \x01"), &t, "bp_npz_load", path);
    }
    /* what loaded saves, lists and loads back the same */
    snprintf(saved, sizeof saved, "%s.saved.npz", path);
    FUZZ_REQUIRE(bp_npz_save(saved, count, names, to_save) == 0);
    memset(&back_list, 0, sizeof back_list);
    FUZZ_REQUIRE(bp_npz_list(saved, collect, &back_list) == count);
    for (k = 0; k < count; k++) {
        bp_tensor back = {0, 0, NULL};
        size_t i, elements = (size_t)loaded[k].rows * (size_t)loaded[k].cols;
        FUZZ_REQUIRE(strcmp(back_list.names[k], names[k]) == 0);
        FUZZ_REQUIRE(bp_npz_load(&back, saved, names[k]) == 0);
        FUZZ_REQUIRE(back.rows == loaded[k].rows && back.cols == loaded[k].cols);
        for (i = 0; i < elements; i++)
            FUZZ_REQUIRE(memcmp(&back.data[i], &loaded[k].data[i], sizeof(bp_real)) == 0);
        bp_tensor_free(&back);
    }
    remove(saved);
    for (k = 0; k < count; k++) bp_tensor_free(&loaded[k]);
    return 0;
}
