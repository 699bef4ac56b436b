/* The backprop.h test suite: the one file the build scripts compile.  tests/run.sh (make test) builds it
   many ways: C99 and C++, float and double, gcc, clang and tcc, plain -O2 and -O3 -march=native, with tiny
   matmul blocks and with OpenMP; make sanitize, make valgrind, make coverage and make cross-test run it too.

   It is one translation unit: harness.h (the checks, the counting allocator, backprop.h's implementation
   compiled with it), then the topic files, then the table of tests and main below.
     test_tensor.c   bp_tensor_new/free, the random generator (against tests/fixtures/rng.txt, from an
                     independent Python implementation), randn, He/Xavier init, norm, all_finite, rows (views), the
                     error handler and the formatter of its messages (against printf)
     test_matmul.c   bp_matmul by hand; against bp_matmul_reference and a long double loop at every tile
                     and block edge; 1 vs 2 threads
     test_layers.c   Linear, ReLU, sigmoid, tanh, MSE, softmax + cross-entropy: by hand, against finite
                     differences (bp_gradcheck), and the walkthrough against numpy
                     (tests/fixtures/walkthrough.txt); its top comment says where each layer is tested
     test_optim.c    SGD, momentum and Adam by hand and against PyTorch (tests/fixtures/optim.txt); clipping
     test_files.c    .npy load and save (numpy's own files in tests/fixtures/npy/, malformed ones, the header
                     parser, np.save's bytes), .npz archives (np.savez's in tests/fixtures/npz/, malformed
                     ones, zipfile's bytes), writes failing mid-file (full disks), IDX files
     test_mlp.c      the network in one object (bp_mlp_*): one allocation, the same bits as the explicit
                     layer calls, no allocation after it is made, it learns, its argument checks; saved as
                     PyTorch's state_dict (names, out x in weights, 1-D biases), loaded back, and a model
                     trained in PyTorch (the .npz files of examples/from_pytorch) giving PyTorch's outputs
     test_sweep.c    every allocation failing in turn, no hidden allocation, every argument check of every
                     function
     test_threads.c  bp_failure_reason per thread, and the layers in several threads at once (pthreads)
   Tests marked REGRESSION pin down a bug this suite found in backprop.h (now fixed there).

   Running it, from the repository root (it reads tests/fixtures/ and writes scratch files into
   build/test/ below the folder it runs in):

       mkdir -p build/test
       cc -std=c99 -O2 tests/test_backprop.c -o build/test/suite -lm    (-DBACKPROP_DOUBLE: in double)
       build/test/suite                      every test
       build/test/suite matmul               the tests whose name contains "matmul"
       build/test/suite rng                  the test named "rng" alone: a NAME that is a test's whole name
                                             selects that test only; any other NAME, every test whose name
                                             contains it.  Several NAMEs: the tests any of them selects.
       build/test/suite --list [NAME...]     the names of the tests (that the NAMEs select), one a line
       build/test/suite --fixtures DIR ...   read the fixtures from DIR (default tests/fixtures)

   Output: the first line says the build (`backprop.h tests: bp_real is float, matmul tile ...`); then one
   line per test, `ok    name   N checks  T s` (T: CPU seconds), each failed check's `FAIL file:line [name]
   what` (and any detail lines) just before its test's line, which then starts with FAIL; then no_leaks,
   which always runs: every allocation freed; the last line is `N passed, M failed`, the checks of the
   whole run.  Exit status 0 if every check passed; 1 if any failed; 2 for a NAME that selects no test or
   an unknown option. */

#include "harness.h"

#include "test_tensor.c"
#include "test_matmul.c"
#include "test_layers.c"
#include "test_optim.c"
#include "test_files.c"
#include "test_mlp.c"
#include "test_sweep.c"
#include "test_threads.c"

static const test_case tests[] = {
    /* test_tensor.c */
    {"tensor", test_tensor},
    {"rng", test_rng},
    {"rng_vs_python", test_rng_vs_python},
    {"randn", test_randn},
    {"init", test_init},
    {"norm", test_norm},
    {"all_finite", test_all_finite},
    {"tensor_rows", test_tensor_rows},
    {"error_handler", test_error_handler},
    {"message_format", test_message_format},
    /* test_matmul.c */
    {"matmul_by_hand", test_matmul_by_hand},
    {"matmul_vs_reference", test_matmul_vs_reference},
#ifdef _OPENMP
    {"matmul_threads", test_matmul_threads},
#endif
    /* test_layers.c */
    {"linear_by_hand", test_linear_by_hand},
    {"linear_fused_bits", test_linear_fused_bits},
    {"linear_bias_gradient", test_linear_bias_gradient},
    {"relu_by_hand", test_relu_by_hand},
    {"sigmoid_by_hand", test_sigmoid_by_hand},
    {"tanh_by_hand", test_tanh_by_hand},
    {"exp_accuracy", test_exp_accuracy},
    {"mse_by_hand", test_mse_by_hand},
    {"softmax_xent_by_hand", test_softmax_xent_by_hand},
    {"softmax_xent_extremes", test_softmax_xent_extremes},
    {"gradcheck_relu_mse", test_gradcheck_relu_mse},
    {"gradcheck_linear", test_gradcheck_linear},
    {"gradcheck_itself", test_gradcheck_itself},
    {"gradcheck_sigmoid_tanh", test_gradcheck_sigmoid_tanh},
    {"gradcheck_softmax_xent", test_gradcheck_softmax_xent},
    {"gradcheck_classifier", test_gradcheck_classifier},
    {"walkthrough_vs_numpy", test_walkthrough_vs_numpy},
    {"conv2d_by_hand", test_conv2d_by_hand},
    {"maxpool2d_by_hand", test_maxpool2d_by_hand},
    {"conv2d_vs_pytorch", test_conv2d_vs_pytorch},
    {"maxpool2d_vs_pytorch", test_maxpool2d_vs_pytorch},
    {"gradcheck_conv2d_maxpool2d", test_gradcheck_conv2d_maxpool2d},
    {"layernorm_by_hand", test_layernorm_by_hand},
    {"batchnorm_by_hand", test_batchnorm_by_hand},
    {"dropout", test_dropout},
    {"gradcheck_norms", test_gradcheck_norms},
    {"norms_vs_pytorch", test_norms_vs_pytorch},
    /* test_optim.c */
    {"sgd_by_hand", test_sgd_by_hand},
    {"momentum_by_hand", test_momentum_by_hand},
    {"adam_by_hand", test_adam_by_hand},
    {"adam_zero_gradients", test_adam_zero_gradients},
    {"momentum_adam_vs_pytorch", test_momentum_adam_vs_pytorch},
    {"rmsprop_by_hand", test_rmsprop_by_hand},
    {"rmsprop_vs_pytorch", test_rmsprop_vs_pytorch},
    {"clip_grad_norm", test_clip_grad_norm},
    /* test_files.c (no files with BACKPROP_NO_STDIO) */
#ifndef BACKPROP_NO_STDIO
    {"npy_load", test_npy_load},
    {"npy_load_malformed", test_npy_load_malformed},
    {"npy_headers", test_npy_headers},
#ifdef BP_TEST_LARGE_FILES
    {"npy_load_large_file", test_npy_load_large_file},
#endif
    {"npy_save", test_npy_save},
    {"npz_load", test_npz_load},
    {"npz_load_malformed", test_npz_load_malformed},
    {"npz_save", test_npz_save},
#ifdef BP_TEST_FULL_DISK
    {"full_disk", test_full_disk},
    {"unseekable_files", test_unseekable_files},
#endif
    {"idx", test_idx},
#endif
    /* test_mlp.c */
    {"mlp_new", test_mlp_new},
    {"mlp_vs_explicit", test_mlp_vs_explicit},
    {"mlp_no_allocation", test_mlp_no_allocation},
    {"mlp_learns", test_mlp_learns},
    {"mlp_guards", test_mlp_guards},
#ifndef BACKPROP_NO_STDIO
    {"mlp_pytorch_layout", test_mlp_pytorch_layout},
    {"mlp_save_load", test_mlp_save_load},
    {"mlp_vs_pytorch", test_mlp_vs_pytorch},
    {"cnn_vs_pytorch", test_cnn_vs_pytorch},
#endif
    /* test_sweep.c */
    {"allocation_failure", test_allocation_failure},
    {"no_allocation_step", test_no_allocation_step},
    {"no_allocation_others", test_no_allocation_others},
    {"argument_sweep", test_argument_sweep},
    /* test_threads.c */
#ifdef BP_TEST_THREADS
#ifndef BACKPROP_NO_STDIO
    {"failure_reason_threads", test_failure_reason_threads},
#endif
    {"layers_threads", test_layers_threads},
#endif
};
static const int test_count = (int)(sizeof tests / sizeof *tests);

/* Run after the selected tests, whichever they are: everything the library allocated has been freed. */
static void test_no_leaks(void)
{
    if (test_mallocs != test_frees) printf("  %ld allocations, %ld frees\n", test_mallocs, test_frees);
    CHECK(test_mallocs == test_frees);
}

static void usage(FILE *to)
{
    fprintf(to, "usage: suite [--fixtures DIR] [--list] [NAME...]\n"
                "  NAME            run the test of that name; if there is none, the tests whose name contains NAME\n"
                "  --list          list the names of the tests (that the NAMEs select) and exit\n"
                "  --fixtures DIR  read the fixtures from DIR (default: tests/fixtures, from the repository root)\n");
}

int main(int argc, char **argv)
{
    static const test_case no_leaks = {"no_leaks", test_no_leaks};
    char **filters = argv + 1; /* the NAMEs, gathered at the front of argv[1..] as the options are read */
    int i, k, count = 0, list = 0;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fixtures") == 0 && i + 1 < argc) {
            fixtures_dir = argv[++i];
        } else if (strcmp(argv[i], "--list") == 0) {
            list = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "suite: unknown option or missing value: %s\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            filters[count++] = argv[i];
        }
    }
    for (i = 0; i < count; i++) { /* each NAME must select a test: a typo is an error, not a quiet pass */
        for (k = 0; k < test_count && !test_selected(tests[k].name, &filters[i], 1, tests, test_count); k++) continue;
        if (k == test_count) {
            fprintf(stderr, "suite: no test is named or contains \"%s\" (suite --list lists them)\n", filters[i]);
            return 2;
        }
    }
    if (list) {
        for (k = 0; k < test_count; k++)
            if (test_selected(tests[k].name, filters, count, tests, test_count)) printf("%s\n", tests[k].name);
        return 0;
    }

    bp_set_error_handler(record_error);
    printf("backprop.h tests: bp_real is %s, matmul tile %dx%d, blocks MC=%d NC=%d KC=%d\n",
           sizeof(bp_real) == 8 ? "double" : "float", BP__MR, BP__NR, BP_MATMUL_MC, BP_MATMUL_NC, BP_MATMUL_KC);
    for (k = 0; k < test_count; k++)
        if (test_selected(tests[k].name, filters, count, tests, test_count)) run_test(&tests[k]);
    run_test(&no_leaks);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
