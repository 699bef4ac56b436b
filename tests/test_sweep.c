/* Tests that sweep over many functions at once:
     - allocation_failure: every function that allocates (bp_tensor_new, the .npy, .npz and IDX functions), run
       again and again with its 1st, 2nd, ... allocation failing: each failure reported, nothing leaked;
     - no_allocation_step, no_allocation_others: no other function touches the heap (a counting BP_MALLOC);
     - argument_sweep: every tensor argument of every function broken in every way (NULL, data NULL,
       negative or huge sizes, wrong shapes, outputs on top of inputs): one handler call naming the
       function and the argument, nothing written, the function's error value returned.
   Part of the suite: tests/test_backprop.c includes this file (see there how to run one test). */

#include "harness.h"

/* ---- allocation failure ----------------------------------------------------------------------------
   Every function that allocates, run again and again with its 1st, 2nd, ... allocation failing, until a
   run makes no allocation fail.  Each failing run must report (the handler for bp_tensor_new, the failure
   reason for the file functions), return its error, leave the caller's tensors as the contract says and
   leak nothing (counted here; LeakSanitizer watches too under make sanitize). */

/* One call of an allocating function; returns its result (0 success, -1 failure) and sets *promises_kept
   to whether the call's other promises held. */
typedef int (*alloc_case_fn)(int *promises_kept);

static int alloc_case_tensor_new(int *kept)
{
    bp_tensor t = bp_tensor_new(30, 40);
    if (!t.data) {
        *kept = errors_seen == 1 && strstr(last_error, "bp_tensor_new: out of memory") && t.rows == 0 && t.cols == 0;
        errors_seen = 0;
        return -1;
    }
    *kept = errors_seen == 0 && t.rows == 30 && all_equal(&t, 0);
    bp_tensor_free(&t);
    return 0;
}

#ifndef BACKPROP_NO_STDIO /* the file functions */
static int alloc_case_load_npy(int *kept)
{
    static const char *const files[] = {"f4_c.npy", "f8_fortran.npy", "f8_v2.npy"};
    char path[512];
    int k, rc = 0;
    *kept = 1;
    for (k = 0; k < 3 && rc == 0; k++) {
        bp_tensor t = {9, 9, NULL};
        snprintf(path, sizeof path, "%s/npy/%s", fixtures_dir, files[k]);
        rc = bp_tensor_load_npy(&t, path);
        if (rc != 0)
            *kept &= t.rows == 0 && t.cols == 0 && t.data == NULL && errors_seen == 0 &&
                     strstr(bp_failure_reason(), "out of memory") != NULL;
        else
            *kept &= t.rows > 0 && t.data != NULL;
        bp_tensor_free(&t);
    }
    return rc;
}

static int alloc_case_save_npy(int *kept)
{
    const char *path = SCRATCH "/alloc_sweep.npy";
    bp_tensor t = {2, 3, NULL}, back = {0, 0, NULL};
    bp_real data[6] = {1, 2, 3, 4, 5, 6};
    int rc;
    t.data = data;
    rc = bp_tensor_save_npy(&t, path);
    *kept = errors_seen == 0 && data[5] == 6 && (rc == 0 || strstr(bp_failure_reason(), "out of memory"));
    if (rc != 0) return rc;
    test_fail_countdown = 0; /* the check below is not part of the sweep */
    *kept &= bp_tensor_load_npy(&back, path) == 0 && back.rows == 2 && back.cols == 3 && back.data[5] == 6;
    bp_tensor_free(&back);
    remove(path);
    return 0;
}

static int alloc_case_npz_load(int *kept)
{
    char path[512];
    bp_tensor t = {9, 9, NULL};
    int rc;
    snprintf(path, sizeof path, "%s/npz/model.npz", fixtures_dir);
    rc = bp_npz_load(&t, path, "fc2.weight");
    if (rc != 0)
        *kept = t.rows == 0 && t.cols == 0 && t.data == NULL && errors_seen == 0 &&
                strstr(bp_failure_reason(), "out of memory") != NULL;
    else
        *kept = t.rows == 2 && t.cols == 4;
    bp_tensor_free(&t);
    if (rc == 0) rc = bp_npz_list(path, NULL, NULL) == 7 ? 0 : -1;
    if (rc != 0) *kept &= errors_seen == 0 && strstr(bp_failure_reason(), "out of memory") != NULL;
    return rc;
}

static int alloc_case_npz_save(int *kept)
{
    const char *path = SCRATCH "/alloc_sweep.npz";
    bp_tensor t = {2, 3, NULL}, back = {0, 0, NULL};
    const bp_tensor *tensors[1];
    const char *names[1] = {"t"};
    bp_real data[6] = {1, 2, 3, 4, 5, 6};
    int rc;
    t.data = data;
    tensors[0] = &t;
    rc = bp_npz_save(path, 1, names, tensors);
    *kept = errors_seen == 0 && data[5] == 6 && (rc == 0 || strstr(bp_failure_reason(), "out of memory"));
    if (rc != 0) return rc;
    test_fail_countdown = 0; /* the check below is not part of the sweep */
    *kept &= bp_npz_load(&back, path, "t") == 0 && back.rows == 2 && back.cols == 3 && back.data[5] == 6;
    bp_tensor_free(&back);
    remove(path);
    return 0;
}

static int alloc_case_idx(int *kept)
{
    const char *path = SCRATCH "/alloc_sweep.idx";
    static const unsigned long sizes[] = {4, 5};
    unsigned char bytes[20] = {1, 2, 3};
    bp_idx idx;
    int rc;
    write_idx(path, 0x08, 2, sizes, bytes, 20);
    rc = bp_idx_load(&idx, path);
    if (rc != 0)
        *kept = idx.ndim == 0 && idx.data == NULL && errors_seen == 0 &&
                strstr(bp_failure_reason(), "out of memory") != NULL;
    else
        *kept = idx.dims[0] == 4 && idx.data[2] == 3;
    bp_idx_free(&idx);
    remove(path);
    return rc;
}
#endif

static void test_allocation_failure(void)
{
    static const struct {
        const char *name;
        alloc_case_fn run;
        int allocations; /* how many each makes: the sweep must find exactly these */
    } cases[] = {
        {"bp_tensor_new", alloc_case_tensor_new, 1},
#ifndef BACKPROP_NO_STDIO
        {"bp_tensor_load_npy (3 files)", alloc_case_load_npy, 6}, /* header and data, per file */
        {"bp_tensor_save_npy", alloc_case_save_npy, 1},           /* the name of path.part */
        {"bp_idx_load", alloc_case_idx, 1},
        /* the end record's tail, the directory, the members, 7 local headers, the .npy header and data;
           then bp_npz_list: the first 10 again and the 7 members' .npy headers */
        {"bp_npz_load and bp_npz_list (model.npz)", alloc_case_npz_load, 29},
        {"bp_npz_save", alloc_case_npz_save, 1}, /* the name of path.part */
#endif
    };
    int k;
    for (k = 0; k < (int)(sizeof cases / sizeof *cases); k++) {
        long n;
        for (n = 1; n < 100; n++) {
            long live = test_mallocs - test_frees;
            int kept = 0, rc;
            test_failed_one = 0;
            test_fail_countdown = n;
            rc = cases[k].run(&kept);
            test_fail_countdown = 0;
            if (!(kept && test_mallocs - test_frees == live && (rc == 0) == !test_failed_one)) {
                printf("  %s with allocation %ld failing: returned %d, promises %s, %ld leaked\n", cases[k].name, n,
                       rc, kept ? "kept" : "BROKEN", test_mallocs - test_frees - live);
                CHECK(0);
                break;
            }
            if (!test_failed_one) break; /* fewer than n allocations: every one has been failed */
        }
        if (n - 1 != cases[k].allocations) printf("  %s: %ld allocations swept\n", cases[k].name, n - 1);
        CHECK(n - 1 == cases[k].allocations);
    }
    EXPECT_NO_ERROR();
}

/* ---- no hidden allocation: only bp_tensor_new and the file functions touch the heap ---------------- */

/* A training step (Linear -> ReLU -> MSE, backward, SGD) and a matmul: no allocation. */
static void test_no_allocation_step(void)
{
    bp_tensor x = bp_tensor_new(64, 100), W = bp_tensor_new(100, 50), b = bp_tensor_new(1, 50);
    bp_tensor z = bp_tensor_new(64, 50), y = bp_tensor_new(64, 50), d = bp_tensor_new(64, 50);
    bp_tensor dx = bp_tensor_new(64, 100), dW = bp_tensor_new(100, 50), db = bp_tensor_new(1, 50);
    bp_rng rng;
    long before = test_mallocs;
    bp_rng_seed(&rng, 1);
    bp_tensor_randn(&x, &rng, 1);
    bp_tensor_randn(&W, &rng, 1);
    bp_linear_forward(&x, &W, &b, &z);
    bp_relu_forward(&z, &z);
    (void)bp_mse_forward(&z, &y);
    bp_mse_backward(&z, &y, &d);
    bp_relu_backward(&z, &d, &d);
    bp_linear_backward(&x, &W, &d, &dx, &dW, &db);
    bp_sgd_step(&W, &dW, (bp_real)0.01);
    bp_matmul(&dW, &x, &d, BP_TRANS_A | BP_ACCUMULATE);
    CHECK(test_mallocs == before);
    bp_tensor_free(&x);
    bp_tensor_free(&W);
    bp_tensor_free(&b);
    bp_tensor_free(&z);
    bp_tensor_free(&y);
    bp_tensor_free(&d);
    bp_tensor_free(&dx);
    bp_tensor_free(&dW);
    bp_tensor_free(&db);
}

/* Every other function that takes tensors (init, randn, norm, sigmoid, tanh, softmax + cross-entropy,
   momentum, Adam, clipping): no allocation. */
static void test_no_allocation_others(void)
{
    const int labels[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5};
    bp_tensor z = bp_tensor_new(16, 10), a = bp_tensor_new(16, 10), d = bp_tensor_new(16, 10);
    bp_tensor W = bp_tensor_new(10, 10), dW = bp_tensor_new(10, 10), s1 = bp_tensor_new(10, 10),
              s2 = bp_tensor_new(10, 10);
    bp_tensor *grads[2];
    bp_rng rng;
    long before = test_mallocs;
    grads[0] = &dW;
    grads[1] = &d;
    bp_rng_seed(&rng, 1);
    bp_init_he(&W, &rng);
    bp_init_xavier(&W, &rng);
    bp_tensor_randn(&z, &rng, 1);
    (void)bp_tensor_norm(&z);
    bp_sigmoid_forward(&z, &a);
    bp_sigmoid_backward(&a, &z, &d);
    bp_tanh_forward(&z, &a);
    bp_tanh_backward(&a, &z, &d);
    (void)bp_softmax_xent_forward(&z, labels, &a);
    bp_softmax_xent_backward(&a, labels, &d);
    bp_tensor_randn(&dW, &rng, 1);
    bp_momentum_step(&W, &dW, &s1, (bp_real)0.1, (bp_real)0.9);
    bp_adam_step(&W, &dW, &s1, &s2, 3, (bp_real)1e-3, (bp_real)0.9, (bp_real)0.999, (bp_real)1e-8);
    (void)bp_clip_grad_norm(grads, 2, (bp_real)0.5);
    CHECK(test_mallocs == before);
    EXPECT_NO_ERROR();
    bp_tensor_free(&z);
    bp_tensor_free(&a);
    bp_tensor_free(&d);
    bp_tensor_free(&W);
    bp_tensor_free(&dW);
    bp_tensor_free(&s1);
    bp_tensor_free(&s2);
}

/* ---- every tensor argument check of every function --------------------------------------------------
   A table of the functions that take tensors: each argument's name, its shape in a valid call, and its
   role.  For each function the sweep makes a valid call (no error), then breaks one argument at a time:
   NULL, data NULL, a negative size, more than INT_MAX elements, one row or column too many (where shapes
   are tied), and every output pointed at every other argument's memory, exactly and shifted by one
   element.  Each broken call must call the handler exactly once with "fn: " and the argument's name,
   write nothing anywhere (every buffer compared before and after), and return its error value. */

enum { ARG_IN, ARG_OUT, ARG_OPT_IN, ARG_OPT_OUT }; /* OPT: may be NULL */
#define SWEEP_ARGS 6
#define SWEEP_SLACK 64 /* elements per buffer: room for any shape below, and for shifted aliases */

typedef struct sweep_arg {
    const char *name;
    int rows, cols, role;
} sweep_arg;

typedef struct sweep_fn {
    const char *fn;
    double (*call)(bp_tensor *const *t); /* calls fn with t[0..] in order; returns its result (0 if void) */
    double on_error;                     /* what it returns after an error (NaN: NaN) */
    int free_shape;                      /* 1: no shape ties another argument's */
    int no_empty_size;                   /* a size that cannot be 0 alone (classes: then no label fits) */
    const char *in_place;                /* "out=in ..." pairs allowed exactly in place */
    sweep_arg args[SWEEP_ARGS];
} sweep_fn;

static const int sweep_labels[] = {0, 3, 1, 2};
static bp_tensor *sweep_param; /* bp_gradcheck's parameter, for its loss */
static bp_real sweep_loss(void *ctx)
{
    (void)ctx;
    return bp_tensor_norm(sweep_param);
}

static double call_norm(bp_tensor *const *t) { return (double)bp_tensor_norm(t[0]); }
static double call_all_finite(bp_tensor *const *t) { return bp_tensor_all_finite(t[0]); }
static double call_randn(bp_tensor *const *t)
{
    bp_rng rng;
    bp_rng_seed(&rng, 1);
    bp_tensor_randn(t[0], &rng, 1);
    return 0;
}
static double call_he(bp_tensor *const *t)
{
    bp_rng rng;
    bp_rng_seed(&rng, 1);
    bp_init_he(t[0], &rng);
    return 0;
}
static double call_xavier(bp_tensor *const *t)
{
    bp_rng rng;
    bp_rng_seed(&rng, 1);
    bp_init_xavier(t[0], &rng);
    return 0;
}
static double call_matmul(bp_tensor *const *t) { bp_matmul(t[0], t[1], t[2], 0); return 0; }
static double call_matmul_ta(bp_tensor *const *t) { bp_matmul(t[0], t[1], t[2], BP_TRANS_A); return 0; }
static double call_matmul_tb(bp_tensor *const *t) { bp_matmul(t[0], t[1], t[2], BP_TRANS_B | BP_ACCUMULATE); return 0; }
static double call_matmul_tab(bp_tensor *const *t) { bp_matmul(t[0], t[1], t[2], BP_TRANS_A | BP_TRANS_B); return 0; }
static double call_matmul_reference(bp_tensor *const *t) { bp_matmul_reference(t[0], t[1], t[2], BP_TRANS_A); return 0; }
static double call_matmul_reference_tb(bp_tensor *const *t)
{
    bp_matmul_reference(t[0], t[1], t[2], BP_TRANS_B | BP_ACCUMULATE);
    return 0;
}
static double call_linear_forward(bp_tensor *const *t) { bp_linear_forward(t[0], t[1], t[2], t[3]); return 0; }
static double call_linear_backward(bp_tensor *const *t)
{
    bp_linear_backward(t[0], t[1], t[2], t[3], t[4], t[5]);
    return 0;
}
static double call_relu_forward(bp_tensor *const *t) { bp_relu_forward(t[0], t[1]); return 0; }
static double call_relu_backward(bp_tensor *const *t) { bp_relu_backward(t[0], t[1], t[2]); return 0; }
static double call_sigmoid_forward(bp_tensor *const *t) { bp_sigmoid_forward(t[0], t[1]); return 0; }
static double call_sigmoid_backward(bp_tensor *const *t) { bp_sigmoid_backward(t[0], t[1], t[2]); return 0; }
static double call_tanh_forward(bp_tensor *const *t) { bp_tanh_forward(t[0], t[1]); return 0; }
static double call_tanh_backward(bp_tensor *const *t) { bp_tanh_backward(t[0], t[1], t[2]); return 0; }
static double call_mse_forward(bp_tensor *const *t) { return (double)bp_mse_forward(t[0], t[1]); }
static double call_mse_backward(bp_tensor *const *t) { bp_mse_backward(t[0], t[1], t[2]); return 0; }
static double call_xent_forward(bp_tensor *const *t)
{
    return (double)bp_softmax_xent_forward(t[0], sweep_labels, t[1]);
}
static double call_xent_backward(bp_tensor *const *t)
{
    bp_softmax_xent_backward(t[0], sweep_labels, t[1]);
    return 0;
}
static double call_sgd(bp_tensor *const *t) { bp_sgd_step(t[0], t[1], (bp_real)0.1); return 0; }
static double call_momentum(bp_tensor *const *t)
{
    bp_momentum_step(t[0], t[1], t[2], (bp_real)0.1, (bp_real)0.9);
    return 0;
}
static double call_adam(bp_tensor *const *t)
{
    bp_adam_step(t[0], t[1], t[2], t[3], 1, (bp_real)1e-3, (bp_real)0.9, (bp_real)0.999, (bp_real)1e-8);
    return 0;
}
static double call_clip(bp_tensor *const *t)
{
    bp_tensor *grads[2];
    grads[0] = t[0];
    grads[1] = t[1];
    return (double)bp_clip_grad_norm(grads, 2, (bp_real)0.5);
}
static double call_gradcheck(bp_tensor *const *t)
{
    sweep_param = t[0];
    return (double)bp_gradcheck(sweep_loss, NULL, t[0], t[1], (bp_real)1e-2);
}
#ifndef BACKPROP_NO_STDIO
static double call_save_npy(bp_tensor *const *t) { return bp_tensor_save_npy(t[0], SCRATCH "/sweep.npy"); }
static double call_npz_save(bp_tensor *const *t)
{
    const char *names[2] = {"a", "b"};
    const bp_tensor *tensors[2];
    tensors[0] = t[0];
    tensors[1] = t[1];
    return bp_npz_save(SCRATCH "/sweep.npz", 2, names, tensors);
}
#endif

static const sweep_fn sweep_fns[] = {
    {"bp_tensor_norm", call_norm, NAN, 1, 0, "", {{"t", 3, 4, ARG_IN}}},
    {"bp_tensor_all_finite", call_all_finite, 0, 1, 0, "", {{"t", 3, 4, ARG_IN}}},
    {"bp_tensor_randn", call_randn, 0, 1, 0, "", {{"t", 3, 4, ARG_OUT}}},
    {"bp_init_he", call_he, 0, 1, 0, "", {{"W", 3, 4, ARG_OUT}}},
    {"bp_init_xavier", call_xavier, 0, 1, 0, "", {{"W", 3, 4, ARG_OUT}}},
    {"bp_matmul", call_matmul, 0, 0, 0, "", {{"C", 2, 4, ARG_OUT}, {"A", 2, 3, ARG_IN}, {"B", 3, 4, ARG_IN}}},
    {"bp_matmul", call_matmul_ta, 0, 0, 0, "", {{"C", 2, 4, ARG_OUT}, {"A", 3, 2, ARG_IN}, {"B", 3, 4, ARG_IN}}},
    {"bp_matmul", call_matmul_tb, 0, 0, 0, "", {{"C", 2, 4, ARG_OUT}, {"A", 2, 3, ARG_IN}, {"B", 4, 3, ARG_IN}}},
    {"bp_matmul", call_matmul_tab, 0, 0, 0, "", {{"C", 2, 4, ARG_OUT}, {"A", 3, 2, ARG_IN}, {"B", 4, 3, ARG_IN}}},
    {"bp_matmul_reference", call_matmul_reference, 0, 0, 0, "",
     {{"C", 2, 4, ARG_OUT}, {"A", 3, 2, ARG_IN}, {"B", 3, 4, ARG_IN}}},
    {"bp_matmul_reference", call_matmul_reference_tb, 0, 0, 0, "",
     {{"C", 2, 4, ARG_OUT}, {"A", 2, 3, ARG_IN}, {"B", 4, 3, ARG_IN}}},
    {"bp_linear_forward", call_linear_forward, 0, 0, 0, "",
     {{"x", 4, 3, ARG_IN}, {"W", 3, 2, ARG_IN}, {"b", 1, 2, ARG_OPT_IN}, {"z", 4, 2, ARG_OUT}}},
    {"bp_linear_backward", call_linear_backward, 0, 0, 0, "",
     {{"x", 4, 3, ARG_IN}, {"W", 3, 2, ARG_IN}, {"dz", 4, 2, ARG_IN}, {"dx", 4, 3, ARG_OPT_OUT},
      {"dW", 3, 2, ARG_OUT}, {"db", 1, 2, ARG_OPT_OUT}}},
    {"bp_relu_forward", call_relu_forward, 0, 0, 0, "a=z", {{"z", 3, 4, ARG_IN}, {"a", 3, 4, ARG_OUT}}},
    {"bp_relu_backward", call_relu_backward, 0, 0, 0, "dz=z dz=da",
     {{"z", 3, 4, ARG_IN}, {"da", 3, 4, ARG_IN}, {"dz", 3, 4, ARG_OUT}}},
    {"bp_sigmoid_forward", call_sigmoid_forward, 0, 0, 0, "a=z", {{"z", 3, 4, ARG_IN}, {"a", 3, 4, ARG_OUT}}},
    {"bp_sigmoid_backward", call_sigmoid_backward, 0, 0, 0, "dz=a dz=da",
     {{"a", 3, 4, ARG_IN}, {"da", 3, 4, ARG_IN}, {"dz", 3, 4, ARG_OUT}}},
    {"bp_tanh_forward", call_tanh_forward, 0, 0, 0, "a=z", {{"z", 3, 4, ARG_IN}, {"a", 3, 4, ARG_OUT}}},
    {"bp_tanh_backward", call_tanh_backward, 0, 0, 0, "dz=a dz=da",
     {{"a", 3, 4, ARG_IN}, {"da", 3, 4, ARG_IN}, {"dz", 3, 4, ARG_OUT}}},
    {"bp_mse_forward", call_mse_forward, NAN, 0, 0, "", {{"yhat", 3, 4, ARG_IN}, {"y", 3, 4, ARG_IN}}},
    {"bp_mse_backward", call_mse_backward, 0, 0, 0, "dyhat=yhat dyhat=y",
     {{"yhat", 3, 4, ARG_IN}, {"y", 3, 4, ARG_IN}, {"dyhat", 3, 4, ARG_OUT}}},
    {"bp_softmax_xent_forward", call_xent_forward, NAN, 0, 5, "probs=logits",
     {{"logits", 4, 5, ARG_IN}, {"probs", 4, 5, ARG_OUT}}},
    {"bp_softmax_xent_backward", call_xent_backward, 0, 0, 5, "dlogits=probs",
     {{"probs", 4, 5, ARG_IN}, {"dlogits", 4, 5, ARG_OUT}}},
    {"bp_sgd_step", call_sgd, 0, 0, 0, "", {{"w", 3, 4, ARG_OUT}, {"dw", 3, 4, ARG_IN}}},
    {"bp_momentum_step", call_momentum, 0, 0, 0, "",
     {{"w", 3, 4, ARG_OUT}, {"dw", 3, 4, ARG_IN}, {"vel", 3, 4, ARG_OUT}}},
    {"bp_adam_step", call_adam, 0, 0, 0, "",
     {{"w", 3, 4, ARG_OUT}, {"dw", 3, 4, ARG_IN}, {"m", 3, 4, ARG_OUT}, {"v", 3, 4, ARG_OUT}}},
    {"bp_clip_grad_norm", call_clip, NAN, 1, 0, "", {{"grads[0]", 3, 4, ARG_OUT}, {"grads[1]", 2, 5, ARG_OUT}}},
    {"bp_gradcheck", call_gradcheck, HUGE_VAL, 0, 0, "", {{"param", 3, 4, ARG_OUT}, {"grad", 3, 4, ARG_IN}}},
#ifndef BACKPROP_NO_STDIO
    {"bp_tensor_save_npy", call_save_npy, -1, 1, 0, "", {{"t", 3, 4, ARG_IN}}},
    {"bp_npz_save", call_npz_save, -1, 1, 0, "", {{"tensors[0]", 3, 4, ARG_IN}, {"tensors[1]", 2, 5, ARG_IN}}},
#endif
};

static bp_real sweep_buf[SWEEP_ARGS][SWEEP_SLACK], sweep_before[SWEEP_ARGS][SWEEP_SLACK];

/* every argument valid: small values (the softmax labels fit), outputs filled with 7 */
static void sweep_reset(const sweep_fn *f, bp_tensor *t, bp_tensor **p)
{
    int i, k;
    for (i = 0; i < SWEEP_ARGS; i++) {
        for (k = 0; k < SWEEP_SLACK; k++) sweep_buf[i][k] = (bp_real)(0.25 + 0.01 * (i * SWEEP_SLACK + k));
        t[i].rows = f->args[i].rows;
        t[i].cols = f->args[i].cols;
        t[i].data = sweep_buf[i];
        p[i] = f->args[i].name ? &t[i] : NULL;
    }
}

/* Runs one broken call: one handler call naming fn and `name`, nothing written, the error value. */
static void sweep_expect_error(const sweep_fn *f, bp_tensor *const *p, const char *name, const char *how)
{
    double result;
    int ok;
    memcpy(sweep_before, sweep_buf, sizeof sweep_buf);
    result = f->call(p);
    ok = errors_seen == 1 && strncmp(last_error, f->fn, strlen(f->fn)) == 0 && last_error[strlen(f->fn)] == ':' &&
         strstr(last_error, name) != NULL && !strchr(last_error, '\n');
    ok &= memcmp(sweep_before, sweep_buf, sizeof sweep_buf) == 0;
    ok &= isnan(f->on_error) ? isnan(result) : result == f->on_error;
    if (!ok)
        printf("  %s, %s %s: %d handler calls (\"%s\"), returned %g, buffers %s\n", f->fn, name, how, errors_seen,
               last_error, result, memcmp(sweep_before, sweep_buf, sizeof sweep_buf) ? "WRITTEN" : "untouched");
    CHECK(ok);
    errors_seen = 0;
    last_error[0] = 0;
}

static int sweep_in_place_ok(const sweep_fn *f, const char *out, const char *in)
{
    char pair[64];
    const char *at;
    size_t n;
    snprintf(pair, sizeof pair, "%s=%s", out, in);
    n = strlen(pair);
    for (at = strstr(f->in_place, pair); at; at = strstr(at + 1, pair))
        if ((at == f->in_place || at[-1] == ' ') && (at[n] == ' ' || at[n] == 0)) return 1;
    return 0;
}

static void sweep_function(const sweep_fn *f)
{
    bp_tensor t[SWEEP_ARGS], *p[SWEEP_ARGS];
    int i, j, nargs = 0;
    char how[96];
    while (nargs < SWEEP_ARGS && f->args[nargs].name) nargs++;

    sweep_reset(f, t, p); /* the valid call */
    f->call(p);
    if (errors_seen) printf("  %s: the valid call failed: %s\n", f->fn, last_error);
    EXPECT_NO_ERROR();

    /* Empty tensors are valid everywhere: each size (other than 1) set to 0 in every argument that has
       it (the table's sizes are distinct per dimension, so the shapes still fit), data NULL where empty.
       REGRESSION: bp_linear_forward and bp_linear_backward formed row pointers into the NULL data of a
       0-column z or dz (NULL + 0 is undefined behaviour; clang's UBSan stopped on it). */
    for (i = 0; i < nargs; i++) {
        int sizes[2], d;
        sizes[0] = f->args[i].rows;
        sizes[1] = f->args[i].cols;
        for (d = 0; d < 2; d++) {
            if (sizes[d] == 1) continue;
            sweep_reset(f, t, p);
            for (j = 0; j < nargs; j++) {
                if (t[j].rows == sizes[d]) t[j].rows = 0;
                if (t[j].cols == sizes[d]) t[j].cols = 0;
                if (t[j].rows == 0 || t[j].cols == 0) t[j].data = NULL;
            }
            if (sizes[d] == f->no_empty_size) {
                sweep_expect_error(f, p, "labels", "0 classes");
                continue;
            }
            f->call(p);
            if (errors_seen) printf("  %s with size %d set to 0: %s\n", f->fn, sizes[d], last_error);
            EXPECT_NO_ERROR();
        }
    }

    for (i = 0; i < nargs; i++) {
        const sweep_arg *a = &f->args[i];
        sweep_reset(f, t, p); /* NULL: an error, unless the argument is optional */
        p[i] = NULL;
        if (a->role == ARG_OPT_IN || a->role == ARG_OPT_OUT) {
            f->call(p);
            EXPECT_NO_ERROR();
        } else if (strchr(a->name, '[') == NULL) { /* (a NULL grads[k] is not expressible in the table) */
            sweep_expect_error(f, p, a->name, "NULL");
        }
        sweep_reset(f, t, p);
        t[i].data = NULL;
        sweep_expect_error(f, p, a->name, "data NULL");
        sweep_reset(f, t, p);
        t[i].rows = -1;
        sweep_expect_error(f, p, a->name, "rows -1");
        sweep_reset(f, t, p);
        t[i].cols = -2;
        sweep_expect_error(f, p, a->name, "cols -2");
        sweep_reset(f, t, p);
        t[i].rows = t[i].cols = 1 << 16;
        sweep_expect_error(f, p, a->name, "65536x65536 (> INT_MAX elements)");
        if (!f->free_shape) {
            sweep_reset(f, t, p);
            t[i].rows++;
            sweep_expect_error(f, p, "", "one row too many");
            sweep_reset(f, t, p);
            t[i].cols++;
            sweep_expect_error(f, p, "", "one column too many");
        }
        if (a->role != ARG_OUT && a->role != ARG_OPT_OUT) continue;
        /* an output sharing memory with any other argument */
        for (j = 0; j < nargs; j++) {
            if (j == i) continue;
            sweep_reset(f, t, p);
            t[i].data = t[j].data; /* exactly on it */
            snprintf(how, sizeof how, "on %s", f->args[j].name);
            if (sweep_in_place_ok(f, a->name, f->args[j].name)) {
                f->call(p);
                EXPECT_NO_ERROR();
            } else {
                sweep_expect_error(f, p, a->name, how);
            }
            sweep_reset(f, t, p);
            t[i].data = t[j].data + 1; /* shifted by one element: never allowed */
            snprintf(how, sizeof how, "on %s shifted by one", f->args[j].name);
            sweep_expect_error(f, p, a->name, how);
        }
    }
}

static void test_argument_sweep(void)
{
    int k;
    for (k = 0; k < (int)(sizeof sweep_fns / sizeof *sweep_fns); k++) sweep_function(&sweep_fns[k]);
    remove(SCRATCH "/sweep.npy");
    remove(SCRATCH "/sweep.npz");
}
