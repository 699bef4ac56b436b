/* BACKPROP_NO_STDIO, for programs without a file system: the implementation must compile without
   <stdio.h> and without the file functions, and still report a bad call with its one-line message (the
   library formats it itself).  tests/run.sh builds this file and runs it: exit status 0 if all holds. */
#define BACKPROP_NO_STDIO
#define BACKPROP_IMPLEMENTATION
#include "../../backprop.h"

#include <string.h>

#ifdef EOF
#error "backprop.h included <stdio.h> under BACKPROP_NO_STDIO"
#endif

/* The file functions must be left out: were they declared, these definitions would not compile. */
static int bp_tensor_load_npy(void) { return 0; }
static int bp_idx_load(void) { return 0; }
static int bp_failure_reason(void) { return 0; }

static int calls;
static char last[512];
static void record(const char *message)
{
    calls++;
    strncpy(last, message, sizeof last - 1);
}

int main(void)
{
    bp_tensor x = bp_tensor_new(8, 4), W = bp_tensor_new(3, 2), z = bp_tensor_new(8, 2);
    int ok = bp_tensor_load_npy() + bp_idx_load() + bp_failure_reason() == 0;
    bp_set_error_handler(record);
    bp_linear_forward(&x, &W, NULL, &z);
    ok &= calls == 1 && strcmp(last, "bp_linear_forward: x is 8x4 but W is 3x2 (x.cols must equal W.rows)") == 0;
    bp_tensor_randn(&x, NULL, -1);
    ok &= calls == 2 && strcmp(last, "bp_tensor_randn: rng is NULL (t is 8x4)") == 0;
    bp_clip_grad_norm(NULL, 1, (bp_real)-0.25);
    ok &= calls == 3 && strncmp(last, "bp_clip_grad_norm: 1 gradients at 0x0 (", 39) == 0;
    bp_tensor_free(&x);
    bp_tensor_free(&W);
    bp_tensor_free(&z);
    return ok ? 0 : 1;
}
