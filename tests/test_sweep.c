/* Tests that sweep over many functions at once:
     - allocation_failure: every function that allocates (bp_tensor_new, bp_mlp_new, the .npy, .npz and IDX
       functions), run again and again with its 1st, 2nd, ... allocation failing: each failure reported, nothing leaked;
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

static int alloc_case_mlp_new(int *kept)
{
    static const int widths[] = {4, 8, 3}, acts[] = {BP_ACT_RELU, BP_ACT_NONE};
    bp_mlp *net = bp_mlp_new(2, widths, acts, NULL);
    if (!net) {
        *kept = errors_seen == 1 && strstr(last_error, "bp_mlp_new: out of memory") != NULL;
        errors_seen = 0;
        return -1;
    }
    *kept = errors_seen == 0 && net->layers == 2;
    bp_mlp_free(net);
    return 0;
}

#ifndef BACKPROP_NO_STDIO
static int alloc_case_mlp_save(int *kept)
{
    static const int widths[] = {4, 8, 3}, acts[] = {BP_ACT_RELU, BP_ACT_NONE};
    const char *path = SCRATCH "/alloc_sweep_mlp.npz";
    bp_mlp *net;
    int rc;
    long countdown = test_fail_countdown;
    test_fail_countdown = 0; /* the network itself is not part of this sweep */
    net = bp_mlp_new(2, widths, acts, NULL);
    test_fail_countdown = countdown;
    rc = bp_mlp_save(net, path);
    *kept = errors_seen == 0 && (rc == 0 || strstr(bp_failure_reason(), "out of memory") != NULL);
    test_fail_countdown = 0;
    bp_mlp_free(net);
    return rc;
}

static int alloc_case_mlp_load(int *kept)
{
    static const int widths[] = {4, 8, 3}, acts[] = {BP_ACT_RELU, BP_ACT_NONE};
    const char *path = SCRATCH "/alloc_sweep_mlp.npz";
    bp_mlp *net;
    bp_tensor before;
    int rc;
    long countdown = test_fail_countdown;
    test_fail_countdown = 0; /* the network and its file are not part of this sweep */
    net = bp_mlp_new(2, widths, acts, NULL);
    bp_mlp_save(net, path);
    fill(&net->layer[0].W, 5); /* to be overwritten by the load */
    before = bp_tensor_new(1, net->all.cols);
    memcpy(before.data, net->all.data, element_count(&before) * sizeof(bp_real));
    test_fail_countdown = countdown;
    rc = bp_mlp_load(net, path);
    test_fail_countdown = 0;
    if (rc == 0) *kept = errors_seen == 0 && !same_bits(&before, &net->all); /* loaded */
    else *kept = errors_seen == 0 && same_bits(&before, &net->all) && strstr(bp_failure_reason(), "out of memory");
    bp_tensor_free(&before);
    bp_mlp_free(net);
    remove(path);
    return rc;
}
#endif

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
        {"bp_mlp_new", alloc_case_mlp_new, 1}, /* everything in one */
#ifndef BACKPROP_NO_STDIO
        {"bp_mlp_save", alloc_case_mlp_save, 2},  /* the transposed weights and names; path.part */
        {"bp_mlp_load", alloc_case_mlp_load, 48}, /* the members read; bp_npz_list's and 4 bp_npz_load's own */
#endif
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

/* Every other function that takes tensors (init, randn, norm, rows, sigmoid, tanh, softmax + cross-entropy,
   momentum, Adam, RMSprop, clipping, layer norm, batch norm, dropout, convolution and max-pooling): no
   allocation. */
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
    (void)bp_tensor_rows(&z, 2, 3);
    bp_sigmoid_forward(&z, &a);
    bp_sigmoid_backward(&a, &z, &d);
    bp_tanh_forward(&z, &a);
    bp_tanh_backward(&a, &z, &d);
    (void)bp_softmax_xent_forward(&z, labels, &a);
    bp_softmax_xent_backward(&a, labels, &d);
    bp_tensor_randn(&dW, &rng, 1);
    bp_momentum_step(&W, &dW, &s1, (bp_real)0.1, (bp_real)0.9);
    bp_adam_step(&W, &dW, &s1, &s2, 3, (bp_real)1e-3, (bp_real)0.9, (bp_real)0.999, (bp_real)1e-8);
    bp_rmsprop_step(&W, &dW, &s2, (bp_real)1e-2, (bp_real)0.99, (bp_real)1e-8);
    (void)bp_clip_grad_norm(grads, 2, (bp_real)0.5);
    { /* the image layers: conv 2x4x4 -> 3 filters 3x3 -> pool 2; the tensors above as buffers */
        static const bp_window conv = {2, 4, 4, 3, 1, 0}, pool = {3, 2, 2, 2, 2, 0};
        int argmax[2 * 3];
        bp_tensor x = {2, 32, z.data}, Wc = {3, 18, a.data}, y = {2, 12, d.data}, col = {18, 4, s1.data};
        bp_tensor p = {2, 3, s2.data}, dWc = {3, 18, W.data}, dx = {2, 32, dW.data};
        bp_conv2d_forward(&conv, &x, &Wc, NULL, &y, &col);
        bp_maxpool2d_forward(&pool, &y, &p, argmax);
        bp_maxpool2d_backward(&pool, argmax, &p, &y);
        bp_conv2d_backward(&conv, &x, &Wc, &y, &dx, &dWc, NULL, &col);
        CHECK(bp_window_out_height(&conv) == 2 && bp_window_out_width(&pool) == 1);
    }
    /* the norms and dropout on z (16 x 10): W's rows serve as gamma and beta, s1 and s2 as statistics */
    {
        bp_tensor gamma = {1, 10, W.data}, beta = {1, 10, W.data + 10}, row_mean = {16, 1, s1.data};
        bp_tensor row_rstd = {16, 1, s1.data + 16}, col_mean = {1, 10, s2.data}, col_rstd = {1, 10, s2.data + 10};
        bp_tensor col_var = {1, 10, s2.data + 20}, col_dgamma = {1, 10, s2.data + 30}, col_dbeta = {1, 10, s2.data + 40};
        bp_layernorm_forward(&z, &gamma, &beta, (bp_real)1e-5, &a, &row_mean, &row_rstd);
        bp_layernorm_backward(&z, &gamma, &row_mean, &row_rstd, &a, &d, &col_dgamma, &col_dbeta);
        bp_batchnorm_forward(&z, &gamma, &beta, (bp_real)1e-5, &a, &col_mean, &col_rstd);
        bp_batchnorm_backward(&z, &gamma, &col_mean, &col_rstd, &a, &d, &col_dgamma, &col_dbeta);
        fill(&col_var, 1);
        bp_batchnorm_update_running(&col_mean, &col_var, &z, (bp_real)0.1);
        bp_batchnorm_inference(&z, &gamma, &beta, &col_mean, &col_var, (bp_real)1e-5, &a);
        bp_dropout_forward(&z, (bp_real)0.5, &rng, &a, &d);
        bp_dropout_backward(&a, &z, &d);
    }
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
#define SWEEP_ARGS 8
#define WINDOW (-1) /* no_empty_size of the image functions: only the batch (the rows of args[0]) may be 0 */
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
    int no_empty_size;                   /* a size that cannot be 0 alone (classes: then no label fits; the
                                            batch of the running statistics); WINDOW: any size but the batch */
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
static double call_tensor_rows(bp_tensor *const *t) /* 0 for the error view {0, 0, NULL}, 1 otherwise */
{
    int r = t[0] && t[0]->rows > 0 ? t[0]->rows : 0;
    bp_tensor v = bp_tensor_rows(t[0], r / 2, r - r / 2);
    return v.rows == 0 && v.cols == 0 && v.data == NULL ? 0 : 1;
}
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
static double call_layernorm_forward(bp_tensor *const *t)
{
    bp_layernorm_forward(t[0], t[1], t[2], (bp_real)1e-5, t[3], t[4], t[5]);
    return 0;
}
static double call_layernorm_backward(bp_tensor *const *t)
{
    bp_layernorm_backward(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
    return 0;
}
static double call_batchnorm_forward(bp_tensor *const *t)
{
    bp_batchnorm_forward(t[0], t[1], t[2], (bp_real)1e-5, t[3], t[4], t[5]);
    return 0;
}
static double call_batchnorm_backward(bp_tensor *const *t)
{
    bp_batchnorm_backward(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
    return 0;
}
static double call_batchnorm_running(bp_tensor *const *t)
{
    bp_batchnorm_update_running(t[0], t[1], t[2], (bp_real)0.1);
    return 0;
}
static double call_batchnorm_inference(bp_tensor *const *t)
{
    bp_batchnorm_inference(t[0], t[1], t[2], t[3], t[4], (bp_real)1e-5, t[5]);
    return 0;
}
static double call_dropout_forward(bp_tensor *const *t)
{
    bp_rng rng;
    bp_rng_seed(&rng, 1);
    bp_dropout_forward(t[0], (bp_real)0.5, &rng, t[1], t[2]);
    return 0;
}
static double call_dropout_backward(bp_tensor *const *t) { bp_dropout_backward(t[0], t[1], t[2]); return 0; }
static double call_rmsprop(bp_tensor *const *t)
{
    bp_rmsprop_step(t[0], t[1], t[2], (bp_real)1e-2, (bp_real)0.99, (bp_real)1e-8);
    return 0;
}
static double call_gradcheck(bp_tensor *const *t)
{
    sweep_param = t[0];
    return (double)bp_gradcheck(sweep_loss, NULL, t[0], t[1], (bp_real)1e-2);
}
/* The windows of the convolution and pooling rows below: conv 1x3x4, kernel 2, stride 1 (out 2x3, so
   x 2x12, W 3x4, b 1x3, y 2x18, col 4x6); pool 2x3x4, kernel 2, stride 2 (out 1x2: x 2x24, y 2x4). */
static const bp_window sweep_conv = {1, 3, 4, 2, 1, 0}, sweep_pool = {2, 3, 4, 2, 2, 0};
static int sweep_argmax[8] = {0, 1, 4, 5, 2, 3, 6, 7}; /* valid indices into a 3x4 plane */
static double call_conv_forward(bp_tensor *const *t)
{
    bp_conv2d_forward(&sweep_conv, t[0], t[1], t[2], t[3], t[4]);
    return 0;
}
static double call_conv_backward(bp_tensor *const *t)
{
    bp_conv2d_backward(&sweep_conv, t[0], t[1], t[2], t[3], t[4], t[5], t[6]);
    return 0;
}
static double call_pool_forward(bp_tensor *const *t)
{
    static int argmax[8];
    bp_maxpool2d_forward(&sweep_pool, t[0], t[1], argmax);
    return 0;
}
static double call_pool_backward(bp_tensor *const *t)
{
    bp_maxpool2d_backward(&sweep_pool, sweep_argmax, t[0], t[1]);
    return 0;
}
/* the network object: 1 -> 5 -> 1 with max_batch 3, so that x is 3x1 and y 3x1 (a size of 1 is never
   emptied by the sweep: x n x 1 with n <= 3 is valid for any n, 0 included) */
static bp_mlp *sweep_net;
static bp_mlp *sweep_mlp(void)
{
    static const int widths[] = {1, 5, 1}, acts[] = {BP_ACT_TANH, BP_ACT_NONE};
    bp_mlp_config cfg = bp_mlp_default_config();
    cfg.max_batch = 3;
    if (!sweep_net) sweep_net = bp_mlp_new(2, widths, acts, &cfg);
    return sweep_net;
}
static double call_mlp_predict(bp_tensor *const *t) /* 0 for the error view {0, 0, NULL}, 1 otherwise */
{
    bp_tensor out = bp_mlp_predict(sweep_mlp(), t[0]);
    return out.rows == 0 && out.cols == 0 && out.data == NULL ? 0 : 1;
}
static double call_mlp_train_step(bp_tensor *const *t)
{
    return (double)bp_mlp_train_step(sweep_mlp(), t[0], t[1], NULL);
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
    {"bp_tensor_rows", call_tensor_rows, 0, 1, 0, "", {{"t", 3, 4, ARG_IN}}},
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
    /* WINDOW (no_empty_size): every size but the batch is tied to the window, so it cannot be 0 alone */
    {"bp_conv2d_forward", call_conv_forward, 0, 0, WINDOW, "",
     {{"x", 2, 12, ARG_IN}, {"W", 3, 4, ARG_IN}, {"b", 1, 3, ARG_OPT_IN}, {"y", 2, 18, ARG_OUT},
      {"col", 4, 6, ARG_OUT}}},
    {"bp_conv2d_backward", call_conv_backward, 0, 0, WINDOW, "",
     {{"x", 2, 12, ARG_IN}, {"W", 3, 4, ARG_IN}, {"dy", 2, 18, ARG_IN}, {"dx", 2, 12, ARG_OPT_OUT},
      {"dW", 3, 4, ARG_OUT}, {"db", 1, 3, ARG_OPT_OUT}, {"col", 4, 6, ARG_OUT}}},
    {"bp_maxpool2d_forward", call_pool_forward, 0, 0, WINDOW, "", {{"x", 2, 24, ARG_IN}, {"y", 2, 4, ARG_OUT}}},
    {"bp_maxpool2d_backward", call_pool_backward, 0, 0, WINDOW, "", {{"dy", 2, 4, ARG_IN}, {"dx", 2, 24, ARG_OUT}}},
    {"bp_sgd_step", call_sgd, 0, 0, 0, "", {{"w", 3, 4, ARG_OUT}, {"dw", 3, 4, ARG_IN}}},
    {"bp_momentum_step", call_momentum, 0, 0, 0, "",
     {{"w", 3, 4, ARG_OUT}, {"dw", 3, 4, ARG_IN}, {"vel", 3, 4, ARG_OUT}}},
    {"bp_adam_step", call_adam, 0, 0, 0, "",
     {{"w", 3, 4, ARG_OUT}, {"dw", 3, 4, ARG_IN}, {"m", 3, 4, ARG_OUT}, {"v", 3, 4, ARG_OUT}}},
    {"bp_rmsprop_step", call_rmsprop, 0, 0, 0, "",
     {{"w", 3, 4, ARG_OUT}, {"dw", 3, 4, ARG_IN}, {"v", 3, 4, ARG_OUT}}},
    {"bp_layernorm_forward", call_layernorm_forward, 0, 0, 0, "y=x",
     {{"x", 3, 4, ARG_IN}, {"gamma", 1, 4, ARG_IN}, {"beta", 1, 4, ARG_IN}, {"y", 3, 4, ARG_OUT},
      {"mean", 3, 1, ARG_OUT}, {"rstd", 3, 1, ARG_OUT}}},
    {"bp_layernorm_backward", call_layernorm_backward, 0, 0, 0, "dx=dy",
     {{"x", 3, 4, ARG_IN}, {"gamma", 1, 4, ARG_IN}, {"mean", 3, 1, ARG_IN}, {"rstd", 3, 1, ARG_IN},
      {"dy", 3, 4, ARG_IN}, {"dx", 3, 4, ARG_OUT}, {"dgamma", 1, 4, ARG_OPT_OUT}, {"dbeta", 1, 4, ARG_OPT_OUT}}},
    {"bp_batchnorm_forward", call_batchnorm_forward, 0, 0, 0, "y=x",
     {{"x", 3, 4, ARG_IN}, {"gamma", 1, 4, ARG_IN}, {"beta", 1, 4, ARG_IN}, {"y", 3, 4, ARG_OUT},
      {"mean", 1, 4, ARG_OUT}, {"rstd", 1, 4, ARG_OUT}}},
    {"bp_batchnorm_backward", call_batchnorm_backward, 0, 0, 0, "dx=dy",
     {{"x", 3, 4, ARG_IN}, {"gamma", 1, 4, ARG_IN}, {"mean", 1, 4, ARG_IN}, {"rstd", 1, 4, ARG_IN},
      {"dy", 3, 4, ARG_IN}, {"dx", 3, 4, ARG_OUT}, {"dgamma", 1, 4, ARG_OPT_OUT}, {"dbeta", 1, 4, ARG_OPT_OUT}}},
    /* (x's batch is free: any B >= 2 fits running statistics of 1 x C) */
    {"bp_batchnorm_update_running", call_batchnorm_running, 0, 1, 3, "",
     {{"running_mean", 1, 4, ARG_OUT}, {"running_var", 1, 4, ARG_OUT}, {"x", 3, 4, ARG_IN}}},
    {"bp_batchnorm_inference", call_batchnorm_inference, 0, 0, 0, "y=x",
     {{"x", 3, 4, ARG_IN}, {"gamma", 1, 4, ARG_IN}, {"beta", 1, 4, ARG_IN}, {"running_mean", 1, 4, ARG_IN},
      {"running_var", 1, 4, ARG_IN}, {"y", 3, 4, ARG_OUT}}},
    {"bp_dropout_forward", call_dropout_forward, 0, 0, 0, "y=x",
     {{"x", 3, 4, ARG_IN}, {"mask", 3, 4, ARG_OUT}, {"y", 3, 4, ARG_OUT}}},
    {"bp_dropout_backward", call_dropout_backward, 0, 0, 0, "dx=mask dx=dy",
     {{"mask", 3, 4, ARG_IN}, {"dy", 3, 4, ARG_IN}, {"dx", 3, 4, ARG_OUT}}},
    {"bp_clip_grad_norm", call_clip, NAN, 1, 0, "", {{"grads[0]", 3, 4, ARG_OUT}, {"grads[1]", 2, 5, ARG_OUT}}},
    {"bp_gradcheck", call_gradcheck, HUGE_VAL, 0, 0, "", {{"param", 3, 4, ARG_OUT}, {"grad", 3, 4, ARG_IN}}},
    {"bp_mlp_predict", call_mlp_predict, 0, 0, 0, "", {{"x", 3, 1, ARG_IN}}},
    {"bp_mlp_train_step", call_mlp_train_step, NAN, 0, 0, "", {{"x", 3, 1, ARG_IN}, {"y", 3, 1, ARG_IN}}},
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
            if (sizes[d] == f->no_empty_size) { /* the message names the first argument of that size */
                for (j = 0; f->args[j].rows != sizes[d] && f->args[j].cols != sizes[d]; j++) continue;
                snprintf(how, sizeof how, "size %d set to 0", sizes[d]);
                sweep_expect_error(f, p, f->args[j].name, how);
                continue;
            }
            if (f->no_empty_size == WINDOW && sizes[d] != f->args[0].rows) { /* the window says otherwise */
                sweep_expect_error(f, p, "", "a size of the window's set to 0");
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
    bp_mlp_free(sweep_net);
    sweep_net = NULL;
    remove(SCRATCH "/sweep.npy");
    remove(SCRATCH "/sweep.npz");
}
