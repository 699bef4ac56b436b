/* The backprop.h test suite.  Built by tests/run.sh (make test) many ways: C99 and C++, float and double,
   gcc, clang and tcc, plain -O2 and -O3 -march=native, and with tiny matmul blocks.
   Run from the repository root (it reads tests/fixtures/); prints `N passed, M failed` last.

   What is checked, and against what:
     - every forward and backward against small cases computed by hand (ReLU, sigmoid, tanh, MSE, softmax +
       cross-entropy, including sigmoid/tanh at +-1000 and logits of +-1000: finite, no NaN), and every
       function that may work in place gives the same bits in place;
     - every backward against central finite differences (bp_gradcheck), in double to 1e-7 (float: 1e-2):
       Linear, ReLU, MSE, sigmoid, tanh, softmax + cross-entropy, alone and composed into a two-layer
       classifier;
     - the walkthrough against numpy's textbook code (tests/fixtures/walkthrough.txt, by gen_fixtures.py);
     - SGD with momentum and Adam against PyTorch's torch.optim.SGD / torch.optim.Adam run in float64,
       step by step (tests/fixtures/optim.txt), to 1e-12 relative in double; and one step of each by hand;
       gradient clipping by hand; He and Xavier initialisation by their sample standard deviation;
     - .npy files: every file numpy wrote in tests/fixtures/npy/ (float32/float64, either byte order, C and
       Fortran order, 1-D, a 2.0 header) loads with numpy's exact values; bp_tensor_save_npy writes the
       same bytes as np.save; save-then-load gives the same bits; each malformed file (empty, truncated,
       wrong magic, other dtypes, 0-D and 3-D, a huge shape, trailing bytes, a broken header) returns -1
       with a telling bp_failure_reason(), an empty tensor, no handler call and no leak;
     - the random generator against an independent Python implementation (tests/fixtures/rng.txt);
     - bp_matmul against a naive triple loop in higher precision, all four forms, with and without
       BP_ACCUMULATE, at shapes around every block and tile edge;
     - every argument check: the handler is called once, with the function's name and the shapes, and no
       output is written;
     - no heap allocation outside bp_tensor_new and bp_tensor_load_npy (a counting BP_MALLOC).
   Tests marked REGRESSION pin down a bug this suite found in backprop.h (now fixed there).
   Scratch files go to build/test/ (run.sh runs the suite from the repository root). */

#include <float.h>
#include <math.h>
#include <stdint.h> /* SIZE_MAX */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* A counting allocator, so the tests can prove which functions allocate (only bp_tensor_new may),
   and fail on demand to test the out-of-memory path. */
static long test_mallocs, test_frees;
static int test_fail_malloc;    /* while set, every allocation fails */
static long test_fail_countdown; /* if > 0: counts allocations down, and the one that reaches 0 fails */
static int test_failed_one;      /* set when the countdown made an allocation fail */
static void *test_malloc(size_t n)
{
    if (test_fail_malloc) return NULL;
    if (test_fail_countdown > 0 && --test_fail_countdown == 0) {
        test_failed_one = 1;
        return NULL;
    }
    test_mallocs++;
    return malloc(n);
}
static void test_free(void *p)
{
    if (p) test_frees++;
    free(p);
}
#define BP_MALLOC(n) test_malloc(n)
#define BP_FREE(p) test_free(p)
#define BACKPROP_IMPLEMENTATION
#include "../backprop.h"

/* ---- a tiny test framework --------------------------------------------------------------------- */

static int passed, failed;
static const char *current_test = "";

static void check_at(int ok, const char *what, const char *file, int line)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s:%d [%s] %s\n", file, line, current_test, what);
    }
}
#define CHECK(cond) check_at((cond) ? 1 : 0, #cond, __FILE__, __LINE__)

/* The error handler under test: records, and returns (so the library must return without writing). */
static int errors_seen;
static char last_error[1024];
static void record_error(const char *message)
{
    errors_seen++;
    strncpy(last_error, message, sizeof last_error - 1);
    last_error[sizeof last_error - 1] = 0;
}

/* After a call that must fail: exactly one handler call, a single line starting "fn: " and containing
   each given piece (the shapes), NULL-terminated. */
static void expect_error_at(const char *fn, const char *const *pieces, const char *file, int line)
{
    char what[1200];
    size_t n = strlen(fn);
    int ok = errors_seen == 1 && strncmp(last_error, fn, n) == 0 && last_error[n] == ':' &&
             !strchr(last_error, '\n');
    for (; ok && *pieces; pieces++) ok = strstr(last_error, *pieces) != NULL;
    snprintf(what, sizeof what, "expected one error from %s, got %d: \"%s\"", fn, errors_seen, last_error);
    check_at(ok, what, file, line);
    errors_seen = 0;
    last_error[0] = 0;
}
#define EXPECT_ERROR(fn, ...)                                                                                      \
    do {                                                                                                           \
        static const char *const pieces_[] = {__VA_ARGS__, NULL};                                                  \
        expect_error_at(fn, pieces_, __FILE__, __LINE__);                                                          \
    } while (0)
#define EXPECT_NO_ERROR()                                                                                          \
    do {                                                                                                           \
        check_at(errors_seen == 0, last_error, __FILE__, __LINE__);                                                \
        errors_seen = 0;                                                                                           \
    } while (0)

/* ---- helpers ------------------------------------------------------------------------------------ */

static bp_tensor make(int rows, int cols, const double *values)
{
    bp_tensor t = bp_tensor_new(rows, cols);
    int i;
    if (values)
        for (i = 0; i < rows * cols; i++) t.data[i] = (bp_real)values[i];
    return t;
}

static void fill(bp_tensor *t, bp_real v)
{
    int i;
    for (i = 0; i < t->rows * t->cols; i++) t->data[i] = v;
}

static int all_equal(const bp_tensor *t, bp_real v)
{
    int i;
    for (i = 0; i < t->rows * t->cols; i++)
        if (t->data[i] != v) return 0;
    return 1;
}

/* |t - values| <= tol * max(1, |value|), elementwise */
static int close_to(const bp_tensor *t, const double *values, double tol)
{
    int i;
    for (i = 0; i < t->rows * t->cols; i++) {
        double v = values[i], scale = fabs(v) > 1 ? fabs(v) : 1;
        if (!(fabs((double)t->data[i] - v) <= tol * scale)) {
            printf("  element %d is %.17g, expected %.17g\n", i, (double)t->data[i], v);
            return 0;
        }
    }
    return 1;
}

static void randomize(bp_tensor *t, bp_rng *rng)
{
    bp_tensor_randn(t, rng, 1);
}

/* REAL_EPS: machine epsilon of bp_real.  GRADCHECK_EPS/TOL: the finite-difference step and the largest
   relative error accepted.  In double the step is about the cube root of machine epsilon, which balances
   rounding (~1e-16/eps) against truncation (~eps^2); float needs large steps, as its rounding is coarse. */
#ifdef BACKPROP_DOUBLE
#define REAL_EPS DBL_EPSILON
#define GRADCHECK_EPS 1e-5
#define GRADCHECK_TOL 1e-7
#else
#define REAL_EPS FLT_EPSILON
#define GRADCHECK_EPS 1e-2f
#define GRADCHECK_TOL 1e-2
#endif

/* ---- tensors ------------------------------------------------------------------------------------ */

static void test_tensor(void)
{
    bp_tensor t, e;
    long mallocs;
    current_test = "tensor";
    t = bp_tensor_new(3, 5);
    CHECK(t.rows == 3 && t.cols == 5 && t.data != NULL);
    CHECK(all_equal(&t, 0));
    t.data[2 * 5 + 4] = 7; /* element (r,c) is data[r*cols + c] */
    CHECK(t.data[14] == 7);
    bp_tensor_free(&t);
    CHECK(t.data == NULL);
    bp_tensor_free(&t); /* twice is harmless */
    bp_tensor_free(NULL);
    CHECK(t.data == NULL);
    EXPECT_NO_ERROR();

    /* empty tensors: allowed, no allocation */
    mallocs = test_mallocs;
    e = bp_tensor_new(0, 4);
    CHECK(e.rows == 0 && e.cols == 4 && e.data == NULL && test_mallocs == mallocs);
    bp_tensor_free(&e);
    e = bp_tensor_new(0, 0);
    CHECK(e.rows == 0 && e.cols == 0 && e.data == NULL);
    EXPECT_NO_ERROR();

    /* bad sizes: reported, nothing allocated, an empty tensor returned */
    mallocs = test_mallocs;
    t = bp_tensor_new(-1, 3);
    EXPECT_ERROR("bp_tensor_new", "-1x3", "negative");
    CHECK(t.rows == 0 && t.cols == 0 && t.data == NULL);
    t = bp_tensor_new(4, -2);
    EXPECT_ERROR("bp_tensor_new", "4x-2");
    t = bp_tensor_new(1 << 20, 1 << 20);
    EXPECT_ERROR("bp_tensor_new", "1048576x1048576", "INT_MAX");
    CHECK(t.data == NULL && test_mallocs == mallocs);
    t = bp_tensor_new(46341, 46341); /* 46341^2 just exceeds INT_MAX */
    EXPECT_ERROR("bp_tensor_new", "46341x46341");
#if SIZE_MAX <= 0xffffffffu
    /* 32-bit size_t: fewer than INT_MAX elements, but more bytes than size_t counts (2^32) */
    t = bp_tensor_new(40000, 40000);
    EXPECT_ERROR("bp_tensor_new", "40000x40000", "size_t");
    CHECK(t.data == NULL && test_mallocs == mallocs);
#endif

    /* allocation failure goes through the handler too */
    test_fail_malloc = 1;
    t = bp_tensor_new(10, 10);
    test_fail_malloc = 0;
    EXPECT_ERROR("bp_tensor_new", "out of memory", "10x10");
    CHECK(t.rows == 0 && t.cols == 0 && t.data == NULL);
}

/* ---- random numbers ----------------------------------------------------------------------------- */

/* tests/fixtures/rng.txt: values from an independent Python implementation of the same algorithms. */
static void test_rng_fixture(const char *dir)
{
    char path[512], line[256], kind[32], value[128];
    unsigned long long seed;
    int index, checked = 0, mismatches = 0;
    FILE *f;
    current_test = "rng fixture";
    snprintf(path, sizeof path, "%s/rng.txt", dir);
    f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        bp_rng rng;
        int k;
        if (line[0] == '#' || sscanf(line, "%31s %llu %d %127s", kind, &seed, &index, value) != 4) continue;
        bp_rng_seed(&rng, (uint64_t)seed);
        for (k = 0; k < index; k++) {
            if (strcmp(kind, "normal") == 0) bp_rng_normal(&rng);
            else bp_rng_next_u64(&rng);
        }
        checked++;
        if (strcmp(kind, "u64") == 0) {
            mismatches += bp_rng_next_u64(&rng) != (uint64_t)strtoull(value, NULL, 16);
        } else if (strcmp(kind, "uniform") == 0) {
            mismatches += bp_rng_uniform(&rng) != strtod(value, NULL);
        } else if (strcmp(kind, "normal") == 0) {
            double got = bp_rng_normal(&rng), want = strtod(value, NULL);
#if defined(BP_TEST_FUSED_MULTIPLY_ADD) || (defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0)
            /* built with -ffp-contract=fast, or with x87 excess precision (FLT_EVAL_METHOD 2: 32-bit x86
               without -mfpmath=sse): the last bits may change, as documented */
            mismatches += !(fabs(got - want) <= 1e-14 * fabs(want));
#else
            mismatches += got != want; /* bit for bit */
#endif
            if (got != want && checked < 1000) printf("  normal seed %llu #%d: %a vs %a\n", seed, index, got, want);
        } else {
            checked--;
        }
    }
    fclose(f);
    CHECK(checked >= 100);
    CHECK(mismatches == 0);
}

static void test_rng(void)
{
    bp_rng a, b;
    double sum = 0, sum2 = 0, sum4 = 0, umin = 1, umax = 0;
    int i, n = 200000, same = 1;
    bp_tensor t, t2;
    current_test = "rng";
    bp_rng_seed(&a, 123);
    bp_rng_seed(&b, 123);
    for (i = 0; i < 100; i++) same &= bp_rng_next_u64(&a) == bp_rng_next_u64(&b);
    CHECK(same); /* the state is all in the struct */
    bp_rng_seed(&b, 124);
    CHECK(bp_rng_next_u64(&a) != bp_rng_next_u64(&b));

    for (i = 0; i < n; i++) {
        double u = bp_rng_uniform(&a);
        if (u < umin) umin = u;
        if (u > umax) umax = u;
    }
    CHECK(umin >= 0 && umin < 1e-3 && umax < 1 && umax > 1 - 1e-3);

    /* N(0,1): mean 0 (sd of the estimate 1/sqrt(n)), variance 1 (sd sqrt(2/n)), kurtosis 3 */
    for (i = 0; i < n; i++) {
        double x = bp_rng_normal(&a);
        sum += x;
        sum2 += x * x;
        sum4 += x * x * x * x;
    }
    CHECK(fabs(sum / n) < 5 / sqrt((double)n));
    CHECK(fabs(sum2 / n - 1) < 5 * sqrt(2.0 / n));
    CHECK(fabs(sum4 / n - 3) < 0.1);

    /* the private log against libm's, across the range the polar method uses and beyond */
    {
        double worst = 0, x;
        for (x = 1e-300; x < 1e300; x *= 1.37) {
            double err = fabs(bp__log(x) - log(x)) / fabs(log(x) != 0 ? log(x) : 1);
            if (err > worst) worst = err;
        }
        for (x = 0.001; x <= 1; x += 0.000731) {
            double err = fabs(bp__log(x) - log(x)), scale = fabs(log(x)) > 1e-3 ? fabs(log(x)) : 1e-3;
            if (err / scale > worst) worst = err / scale;
        }
        CHECK(worst < 4 * DBL_EPSILON);
    }

    /* randn: std scales, 0 gives zeros, the same seed gives the same tensor */
    t = bp_tensor_new(4, 5);
    t2 = bp_tensor_new(4, 5);
    bp_rng_seed(&a, 9);
    bp_tensor_randn(&t, &a, 2);
    bp_rng_seed(&a, 9);
    for (i = 0; i < 20; i++) same &= t.data[i] == (bp_real)(2 * bp_rng_normal(&a));
    CHECK(same);
    bp_rng_seed(&a, 9);
    bp_tensor_randn(&t2, &a, 2);
    CHECK(memcmp(t.data, t2.data, 20 * sizeof(bp_real)) == 0);
    bp_tensor_randn(&t, &a, 0);
    CHECK(all_equal(&t, 0));
    EXPECT_NO_ERROR();

    fill(&t, 5);
    bp_tensor_randn(&t, &a, -1);
    EXPECT_ERROR("bp_tensor_randn", "4x5", "std");
    bp_tensor_randn(&t, &a, (bp_real)NAN);
    EXPECT_ERROR("bp_tensor_randn", "4x5");
    bp_tensor_randn(&t, &a, (bp_real)HUGE_VAL);
    EXPECT_ERROR("bp_tensor_randn", "4x5", "std");
    bp_tensor_randn(&t, NULL, 1);
    EXPECT_ERROR("bp_tensor_randn", "rng is NULL");
    bp_tensor_randn(NULL, &a, 1);
    EXPECT_ERROR("bp_tensor_randn", "t is NULL");
    CHECK(all_equal(&t, 5));
    bp_rng_seed(NULL, 1);
    EXPECT_ERROR("bp_rng_seed", "NULL");
    CHECK(bp_rng_next_u64(NULL) == 0);
    EXPECT_ERROR("bp_rng_next_u64", "NULL");
    CHECK(bp_rng_uniform(NULL) == 0);
    EXPECT_ERROR("bp_rng_uniform", "NULL");
    CHECK(bp_rng_normal(NULL) == 0);
    EXPECT_ERROR("bp_rng_normal", "NULL");
    bp_tensor_free(&t);
    bp_tensor_free(&t2);
}

/* ---- matmul ------------------------------------------------------------------------------------- */

/* One shape of product, set up once for all eight forms: random A (M x K) and B (K x N), their stored
   transposes (what bp_matmul reads under BP_TRANS_A / BP_TRANS_B), and the reference ref = A.B summed in
   long double with mag = sum_k |a_ik b_kj| for the error bound. */
typedef struct {
    int M, N, K;
    bp_tensor A, B, At, Bt;
    long double *ref;
    double *mag;
} matmul_problem;

static bp_tensor transposed(const bp_tensor *X)
{
    bp_tensor T = bp_tensor_new(X->cols, X->rows);
    int r, c;
    for (r = 0; r < X->rows; r++)
        for (c = 0; c < X->cols; c++) T.data[c * X->rows + r] = X->data[r * X->cols + c];
    return T;
}

static matmul_problem matmul_problem_new(bp_rng *rng, int M, int N, int K)
{
    matmul_problem pb;
    int i, j, k;
    pb.M = M, pb.N = N, pb.K = K;
    pb.A = bp_tensor_new(M, K);
    pb.B = bp_tensor_new(K, N);
    randomize(&pb.A, rng);
    randomize(&pb.B, rng);
    pb.At = transposed(&pb.A);
    pb.Bt = transposed(&pb.B);
    pb.ref = (long double *)malloc((size_t)M * (size_t)N * sizeof *pb.ref);
    pb.mag = (double *)malloc((size_t)M * (size_t)N * sizeof *pb.mag);
    if (!pb.ref || !pb.mag) {
        printf("out of memory in the matmul test\n");
        exit(1);
    }
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            long double ref = 0;
            double mag = 0;
            for (k = 0; k < K; k++) {
                double a = (double)pb.A.data[i * K + k], b = (double)pb.B.data[k * N + j];
                ref += (long double)a * (long double)b;
                mag += fabs(a * b);
            }
            pb.ref[i * N + j] = ref;
            pb.mag[i * N + j] = mag;
        }
    return pb;
}

static void matmul_problem_free(matmul_problem *pb)
{
    bp_tensor_free(&pb->A);
    bp_tensor_free(&pb->B);
    bp_tensor_free(&pb->At);
    bp_tensor_free(&pb->Bt);
    free(pb->ref);
    free(pb->mag);
}

/* Runs one form (BP_TRANS_A | BP_TRANS_B | BP_ACCUMULATE) of the problem through bp_matmul and compares it
   with the reference (plus the start value C0 when accumulating).  The bound is the classic one for a dot
   product of length K: |error| <= K u sum_k |a_ik b_kj| (u = unit roundoff), doubled for the reference's
   own rounding where long double is no wider than bp_real. */
static int matmul_case(const matmul_problem *pb, bp_rng *rng, int flags)
{
    int M = pb->M, N = pb->N, K = pb->K, i, ok;
    const bp_tensor *A = flags & BP_TRANS_A ? &pb->At : &pb->A, *B = flags & BP_TRANS_B ? &pb->Bt : &pb->B;
    bp_tensor C = bp_tensor_new(M, N), C0 = bp_tensor_new(M, N);
    long mallocs;
    randomize(&C, rng); /* garbage to be overwritten, or the start value to accumulate on */
    if (bp__count(&C)) memcpy(C0.data, C.data, bp__count(&C) * sizeof(bp_real));
    mallocs = test_mallocs;
    bp_matmul(&C, A, B, flags);
    ok = errors_seen == 0 && test_mallocs == mallocs;
    for (i = 0; ok && i < M * N; i++) {
        int acc = (flags & BP_ACCUMULATE) != 0;
        long double ref = (acc ? (long double)C0.data[i] : 0) + pb->ref[i];
        double mag = (acc ? fabs((double)C0.data[i]) : 0) + pb->mag[i], got = (double)C.data[i];
        double tol = 2.0 * (K + 2) * (REAL_EPS / 2) * mag + DBL_MIN;
        if (!(fabs(got - (double)ref) <= tol)) {
            printf("  C(%d,%d) of %dx%dx%d flags %d: %.17g, expected %.17Lg\n", i / N, i % N, M, N, K, flags, got,
                   ref);
            ok = 0;
        }
    }
    if (!ok) printf("  matmul %dx%dx%d flags %d failed\n", M, N, K, flags);
    bp_tensor_free(&C);
    bp_tensor_free(&C0);
    return ok;
}

/* All eight forms of one shape. */
static int matmul_shape(bp_rng *rng, int M, int N, int K, int *cases)
{
    matmul_problem pb = matmul_problem_new(rng, M, N, K);
    int form, ok = 1;
    for (form = 0; form < 8; form++, (*cases)++) ok &= matmul_case(&pb, rng, form);
    matmul_problem_free(&pb);
    return ok;
}

static void test_matmul(void)
{
    /* Every dimension just below, at and above each tile (MR, NR) and block (MC, NC, KC) edge. */
    const int Ms[] = {1, BP__MR - 1, BP__MR + 1, BP_MATMUL_MC, BP_MATMUL_MC + 1, 2 * BP_MATMUL_MC + 3};
    const int Ns[] = {1, BP__NR - 1, BP__NR + 1, BP_MATMUL_NC - 1, BP_MATMUL_NC + 1};
    const int Ks[] = {1, 2, BP_MATMUL_KC - 1, BP_MATMUL_KC, 2 * BP_MATMUL_KC + 1};
    /* 1x1x1, primes, exact multiples, tall and skinny */
    const int shapes[][3] = {{1, 1, 1}, {2, 3, 4}, {13, 17, 19}, {31, 37, 41}, {BP__MR, BP__NR, 8},
                             {2 * BP__MR, 3 * BP__NR, 16}, {1000, 1, 3}, {1, 1000, 7}, {3, 2, 1000},
                             {200, 3, 1}, {64, 10, 256}, {97, 1, 89}, {1, 89, 97},
                             /* a narrow C, computed as its transpose: C's rows cross NC blocks */
                             {BP_MATMUL_NC + 1, 3, 5}, {2 * BP_MATMUL_NC + 1, BP__MR + 1, BP_MATMUL_KC + 1},
                             /* fewer rows than a tile (no packing), wide and deep */
                             {BP__MR - 1, 2 * BP_MATMUL_NC + 1, BP_MATMUL_KC + 1},
                             /* big enough for the OpenMP path (several row blocks, >= 4e6 multiply-adds) */
                             {2 * BP_MATMUL_MC + 1, 130, BP_MATMUL_KC + 1}};
    bp_rng rng;
    int a, b, c, ok = 1, cases = 0;
    bp_rng_seed(&rng, 2024);
    current_test = "matmul vs naive";
    for (a = 0; a < (int)(sizeof Ms / sizeof *Ms); a++)
        for (b = 0; b < (int)(sizeof Ns / sizeof *Ns); b++)
            for (c = 0; c < (int)(sizeof Ks / sizeof *Ks); c++)
                if (Ms[a] > 0 && Ns[b] > 0) ok &= matmul_shape(&rng, Ms[a], Ns[b], Ks[c], &cases);
    for (a = 0; a < (int)(sizeof shapes / sizeof *shapes); a++)
        ok &= matmul_shape(&rng, shapes[a][0], shapes[a][1], shapes[a][2], &cases);
    CHECK(ok);
    CHECK(cases > 1000);

#ifdef _OPENMP
    /* OpenMP shares row blocks among threads; each C element is still summed by one thread in one order */
    current_test = "matmul: 1 thread and 2 threads give the same bits";
    {
        bp_tensor A = bp_tensor_new(300, 301), B = bp_tensor_new(301, 302), C1 = bp_tensor_new(300, 302),
                  C2 = bp_tensor_new(300, 302);
        randomize(&A, &rng);
        randomize(&B, &rng);
        omp_set_num_threads(1);
        bp_matmul(&C1, &A, &B, 0);
        omp_set_num_threads(2);
        bp_matmul(&C2, &A, &B, 0);
        CHECK(memcmp(C1.data, C2.data, bp__count(&C1) * sizeof(bp_real)) == 0);
        bp_tensor_free(&A);
        bp_tensor_free(&B);
        bp_tensor_free(&C1);
        bp_tensor_free(&C2);
    }
#endif

    current_test = "matmul by hand";
    {
        /* [1 2 3; 4 5 6] . [7 8; 9 10; 11 12] = [58 64; 139 154] */
        const double a_[] = {1, 2, 3, 4, 5, 6}, b_[] = {7, 8, 9, 10, 11, 12};
        const double ab[] = {58, 64, 139, 154}, ab_twice[] = {116, 128, 278, 308};
        const double ata[] = {17, 22, 27, 22, 29, 36, 27, 36, 45}; /* A^T A */
        bp_tensor A = make(2, 3, a_), B = make(3, 2, b_), C = bp_tensor_new(2, 2), G = bp_tensor_new(3, 3);
        bp_tensor Bt = make(2, 3, NULL), At = make(3, 2, NULL);
        int i, j;
        for (i = 0; i < 3; i++)
            for (j = 0; j < 2; j++) {
                Bt.data[j * 3 + i] = B.data[i * 2 + j];
                At.data[i * 2 + j] = A.data[j * 3 + i];
            }
        bp_matmul(&C, &A, &B, 0);
        CHECK(close_to(&C, ab, 0));
        bp_matmul(&C, &A, &B, BP_ACCUMULATE);
        CHECK(close_to(&C, ab_twice, 0));
        bp_matmul(&C, &At, &B, BP_TRANS_A);
        CHECK(close_to(&C, ab, 0));
        bp_matmul(&C, &A, &Bt, BP_TRANS_B);
        CHECK(close_to(&C, ab, 0));
        bp_matmul(&C, &At, &Bt, BP_TRANS_A | BP_TRANS_B);
        CHECK(close_to(&C, ab, 0));
        bp_matmul(&G, &A, &A, BP_TRANS_A); /* the same tensor as both inputs is fine */
        CHECK(close_to(&G, ata, 0));
        EXPECT_NO_ERROR();

        /* empty tensors: K = 0 is a sum of nothing (0; accumulate leaves C alone), M = 0 has nothing to do */
        {
            bp_tensor E1 = bp_tensor_new(2, 0), E2 = bp_tensor_new(0, 2), Z = bp_tensor_new(0, 2);
            fill(&C, 3);
            bp_matmul(&C, &E1, &E2, BP_ACCUMULATE);
            CHECK(all_equal(&C, 3));
            bp_matmul(&C, &E1, &E2, 0);
            CHECK(all_equal(&C, 0));
            bp_matmul(&Z, &E2, &C, 0);
            EXPECT_NO_ERROR();
            bp_matmul(&Z, &E1, &E2, 0);
            EXPECT_ERROR("bp_matmul", "C is 0x2", "A.B is 2x2");
            bp_tensor_free(&E1);
            bp_tensor_free(&E2);
            bp_tensor_free(&Z);
        }

        /* argument checks: one message naming the shapes, C untouched */
        fill(&C, 42);
        bp_matmul(&C, &A, &A, 0);
        EXPECT_ERROR("bp_matmul", "A is 2x3", "B is 2x3", "op(A).cols must equal op(B).rows");
        bp_matmul(&C, &A, &B, BP_TRANS_A);
        EXPECT_ERROR("bp_matmul", "A^T is 3x2", "B is 3x2");
        bp_matmul(&C, &A, &B, BP_TRANS_B);
        EXPECT_ERROR("bp_matmul", "A is 2x3", "B^T is 2x3");
        bp_matmul(&G, &A, &B, 0);
        EXPECT_ERROR("bp_matmul", "C is 3x3", "2x2");
        bp_matmul(&C, &A, &B, 8);
        EXPECT_ERROR("bp_matmul", "unknown flags 0x8");
        bp_matmul(&C, &A, &B, -1);
        EXPECT_ERROR("bp_matmul", "unknown flags");
        bp_matmul(NULL, &A, &B, 0);
        EXPECT_ERROR("bp_matmul", "C is NULL");
        bp_matmul(&C, NULL, &B, 0);
        EXPECT_ERROR("bp_matmul", "A is NULL");
        bp_matmul(&C, &A, NULL, 0);
        EXPECT_ERROR("bp_matmul", "B is NULL");
        CHECK(all_equal(&C, 42));
        {
            bp_tensor bad = {2, 3, NULL}, neg = {-2, 3, NULL}, huge = {1 << 16, 1 << 16, NULL};
            bp_matmul(&C, &bad, &B, 0);
            EXPECT_ERROR("bp_matmul", "A is 2x3", "NULL");
            bp_matmul(&C, &neg, &B, 0);
            EXPECT_ERROR("bp_matmul", "-2x3", "negative");
            bp_matmul(&C, &huge, &B, 0);
            EXPECT_ERROR("bp_matmul", "65536x65536", "INT_MAX");
        }
        CHECK(all_equal(&C, 42));
        {
            /* outputs overlapping inputs would be silently wrong: refused */
            bp_tensor big = bp_tensor_new(4, 4), a2 = {2, 2, big.data}, c2 = {2, 2, big.data + 1}, sq = {2, 2, big.data + 8};
            fill(&big, 1);
            bp_matmul(&c2, &a2, &sq, 0);
            EXPECT_ERROR("bp_matmul", "C (2x2) shares memory with A (2x2)");
            bp_matmul(&a2, &sq, &a2, 0);
            EXPECT_ERROR("bp_matmul", "shares memory with B");
            CHECK(all_equal(&big, 1));
            bp_tensor_free(&big);
        }
        bp_tensor_free(&A);
        bp_tensor_free(&B);
        bp_tensor_free(&C);
        bp_tensor_free(&G);
        bp_tensor_free(&At);
        bp_tensor_free(&Bt);
    }
}

/* ---- linear layer ------------------------------------------------------------------------------- */

static void test_linear_by_hand(void)
{
    /* x = [1 2; 3 4; 5 6] (3x2), W = [1 0 -1; 2 1 0] (2x3), b = [0.5 -1 2] */
    const double x_[] = {1, 2, 3, 4, 5, 6}, W_[] = {1, 0, -1, 2, 1, 0}, b_[] = {0.5, -1, 2};
    /* z = xW + b: row1 [1+4, 2, -1] + b = [5.5 1 1]; row2 [3+8, 4, -3] + b = [11.5 3 -1]; row3 [17.5 5 -3] */
    const double z_[] = {5.5, 1, 1, 11.5, 3, -1, 17.5, 5, -3};
    const double zb0[] = {5, 2, -1, 11, 4, -3, 17, 6, -5};
    /* dz = [1 0 2; 0 1 0; -1 1 1] */
    const double dz_[] = {1, 0, 2, 0, 1, 0, -1, 1, 1};
    /* dW = x^T dz = [1*1+3*0+5*-1, 0+3+5, 2+0+5; 2+0-6, 0+4+6, 4+0+6] = [-4 8 7; -4 10 10] */
    const double dW_[] = {-4, 8, 7, -4, 10, 10};
    const double db_[] = {0, 2, 3}; /* column sums of dz */
    /* dx = dz W^T: row1 [1*1+0*0+2*-1, 1*2+0+0] = [-1 2]; row2 [0, 1]; row3 [-1+0-1, -2+1+0] = [-2 -1] */
    const double dx_[] = {-1, 2, 0, 1, -2, -1};
    bp_tensor x = make(3, 2, x_), W = make(2, 3, W_), b = make(1, 3, b_), z = bp_tensor_new(3, 3);
    bp_tensor dz = make(3, 3, dz_), dx = bp_tensor_new(3, 2), dW = bp_tensor_new(2, 3), db = bp_tensor_new(1, 3);
    long mallocs = test_mallocs;
    current_test = "linear by hand";
    bp_linear_forward(&x, &W, &b, &z);
    CHECK(close_to(&z, z_, 0));
    bp_linear_forward(&x, &W, NULL, &z);
    CHECK(close_to(&z, zb0, 0));
    fill(&dW, 99); /* results overwrite, never accumulate */
    fill(&db, 99);
    fill(&dx, 99);
    bp_linear_backward(&x, &W, &dz, &dx, &dW, &db);
    CHECK(close_to(&dW, dW_, 0));
    CHECK(close_to(&db, db_, 0));
    CHECK(close_to(&dx, dx_, 0));
    fill(&dW, 99);
    bp_linear_backward(&x, &W, &dz, NULL, &dW, NULL); /* dx and db skipped */
    CHECK(close_to(&dW, dW_, 0));
    CHECK(test_mallocs == mallocs);
    EXPECT_NO_ERROR();

    current_test = "linear errors";
    fill(&z, 7);
    fill(&dx, 7);
    fill(&dW, 7);
    fill(&db, 7);
    {
        bp_tensor x4 = bp_tensor_new(8, 4), W32 = bp_tensor_new(3, 2), z82 = bp_tensor_new(8, 2);
        bp_linear_forward(&x4, &W32, NULL, &z82);
        EXPECT_ERROR("bp_linear_forward", "x is 8x4 but W is 3x2 (x.cols must equal W.rows)");
        bp_tensor_free(&x4);
        bp_tensor_free(&W32);
        bp_tensor_free(&z82);
    }
    bp_linear_forward(&x, &W, &dz, &z);
    EXPECT_ERROR("bp_linear_forward", "b is 3x3", "1x3");
    bp_linear_forward(&x, &W, &b, &dx);
    EXPECT_ERROR("bp_linear_forward", "z is 3x2", "3x3");
    bp_linear_forward(NULL, &W, &b, &z);
    EXPECT_ERROR("bp_linear_forward", "x is NULL");
    bp_linear_forward(&x, NULL, &b, &z);
    EXPECT_ERROR("bp_linear_forward", "W is NULL");
    bp_linear_forward(&x, &W, &b, NULL);
    EXPECT_ERROR("bp_linear_forward", "z is NULL");
    {
        bp_tensor zx = {2, 1, x.data + 3};/* z on top of x: z = x.W would read what it wrote */
        bp_tensor x21 = {2, 2, x.data + 2}, W22 = {2, 1, W.data};
        bp_linear_forward(&x21, &W22, NULL, &zx);
        EXPECT_ERROR("bp_linear_forward", "z (2x1) shares memory with x (2x2)");
    }
    CHECK(all_equal(&z, 7));

    bp_linear_backward(&x, &W, &dz, &dx, &z, &db);
    EXPECT_ERROR("bp_linear_backward", "W is 2x3 but dW is 3x3");
    bp_linear_backward(&x, &W, &dx, &dx, &dW, &db);
    EXPECT_ERROR("bp_linear_backward", "dz is 3x2", "3x3");
    bp_linear_backward(&x, &W, &dz, &z, &dW, &db);
    EXPECT_ERROR("bp_linear_backward", "x is 3x2 but dx is 3x3");
    bp_linear_backward(&x, &W, &dz, &dx, &dW, &dW);
    EXPECT_ERROR("bp_linear_backward", "db is 2x3", "1x3");
    bp_linear_backward(&x, &dz, &dz, &dx, &dW, &db);
    EXPECT_ERROR("bp_linear_backward", "x is 3x2 but W is 3x3");
    bp_linear_backward(&x, &W, &dz, &dx, NULL, &db);
    EXPECT_ERROR("bp_linear_backward", "dW is NULL");
    bp_linear_backward(&x, &W, &dz, &dx, &W, &db);
    EXPECT_ERROR("bp_linear_backward", "dW (2x3) shares memory with W (2x3)");
    {
        bp_tensor db_in_dz = {1, 3, dz.data + 3};
        bp_linear_backward(&x, &W, &dz, &dx, &dW, &db_in_dz);
        EXPECT_ERROR("bp_linear_backward", "db (1x3) shares memory with dz (3x3)");
    }
    {
        bp_tensor db_in_W = {1, 3, W.data}, db_in_x = {1, 3, x.data + 1};
        bp_linear_backward(&x, &W, &dz, &dx, &dW, &db_in_W); /* db written before dx = dz.W^T reads W */
        EXPECT_ERROR("bp_linear_backward", "db (1x3) shares memory with W (2x3)");
        bp_linear_backward(&x, &W, &dz, &dx, &dW, &db_in_x);
        EXPECT_ERROR("bp_linear_backward", "db (1x3) shares memory with x (3x2)");
        bp_linear_backward(&x, &W, &dz, &dW, &dW, &db);
        EXPECT_ERROR("bp_linear_backward", "x is 3x2 but dx is 2x3");
        bp_linear_backward(&x, &W, &dz, &x, &dW, &db);
        EXPECT_ERROR("bp_linear_backward", "dx (3x2) shares memory with x (3x2)");
    }
    CHECK(all_equal(&dx, 7) && all_equal(&dW, 7) && all_equal(&db, 7));
    CHECK(close_to(&dz, dz_, 0) && close_to(&x, x_, 0) && close_to(&W, W_, 0));

    bp_tensor_free(&x);
    bp_tensor_free(&W);
    bp_tensor_free(&b);
    bp_tensor_free(&z);
    bp_tensor_free(&dz);
    bp_tensor_free(&dx);
    bp_tensor_free(&dW);
    bp_tensor_free(&db);
}

/* ---- ReLU --------------------------------------------------------------------------------------- */

static void test_relu(void)
{
    const double z_[] = {-2, -0.5, 0, 0.5, 3, -1e-30};
    const double a_[] = {0, 0, 0, 0.5, 3, 0};
    const double da_[] = {10, 20, 30, 40, 50, 60};
    const double dz_[] = {0, 0, 0, 40, 50, 0}; /* the derivative at exactly 0 is taken as 0 */
    bp_tensor z = make(2, 3, z_), a = bp_tensor_new(2, 3), da = make(2, 3, da_), dz = bp_tensor_new(2, 3);
    bp_tensor wrong = bp_tensor_new(3, 2);
    current_test = "relu";
    bp_relu_forward(&z, &a);
    CHECK(close_to(&a, a_, 0));
    bp_relu_backward(&z, &da, &dz);
    CHECK(close_to(&dz, dz_, 0));
    bp_relu_backward(&z, &da, &da); /* in place on da */
    CHECK(close_to(&da, dz_, 0));
    bp_relu_forward(&z, &z); /* in place */
    CHECK(close_to(&z, a_, 0));
    EXPECT_NO_ERROR();
    {
        bp_tensor n = bp_tensor_new(1, 1);
        n.data[0] = (bp_real)NAN;
        bp_relu_forward(&n, &n);
        CHECK(n.data[0] != n.data[0]); /* a NaN is not hidden */
        bp_tensor_free(&n);
    }

    fill(&a, 5);
    fill(&dz, 5);
    bp_relu_forward(&z, &wrong);
    EXPECT_ERROR("bp_relu_forward", "z is 2x3 but a is 3x2");
    bp_relu_forward(NULL, &a);
    EXPECT_ERROR("bp_relu_forward", "z is NULL");
    bp_relu_backward(&z, &wrong, &dz);
    EXPECT_ERROR("bp_relu_backward", "z is 2x3 but da is 3x2");
    bp_relu_backward(&z, &da, &wrong);
    EXPECT_ERROR("bp_relu_backward", "z is 2x3 but dz is 3x2");
    bp_relu_backward(&z, &da, NULL);
    EXPECT_ERROR("bp_relu_backward", "dz is NULL");
    {
        bp_tensor big = bp_tensor_new(1, 8), lo = {1, 6, big.data}, hi = {1, 6, big.data + 1};
        bp_relu_forward(&lo, &hi); /* overlapping but not the same: refused */
        EXPECT_ERROR("bp_relu_forward", "a (1x6) shares memory with z (1x6)", "only exactly in place");
        bp_tensor_free(&big);
    }
    CHECK(all_equal(&a, 5) && all_equal(&dz, 5));
    bp_tensor_free(&z);
    bp_tensor_free(&a);
    bp_tensor_free(&da);
    bp_tensor_free(&dz);
    bp_tensor_free(&wrong);
}

/* ---- MSE ---------------------------------------------------------------------------------------- */

static void test_mse(void)
{
    const double yhat_[] = {1, 2, 3, 4}, y_[] = {0, 2, 5, 3};
    /* differences 1, 0, -2, 1: squares 1 0 4 1, mean 6/4 = 1.5; gradient 2/4 * diff */
    const double dyhat_[] = {0.5, 0, -1, 0.5};
    bp_tensor yhat = make(2, 2, yhat_), y = make(2, 2, y_), d = bp_tensor_new(2, 2), wrong = bp_tensor_new(1, 4);
    bp_real loss;
    current_test = "mse";
    CHECK(bp_mse_forward(&yhat, &y) == (bp_real)1.5);
    bp_mse_backward(&yhat, &y, &d);
    CHECK(close_to(&d, dyhat_, 0));
    bp_mse_backward(&yhat, &y, &yhat); /* in place */
    CHECK(close_to(&yhat, dyhat_, 0));
    {
        bp_tensor e1 = bp_tensor_new(0, 3), e2 = bp_tensor_new(0, 3);
        CHECK(bp_mse_forward(&e1, &e2) == 0);
    }
    EXPECT_NO_ERROR();

    fill(&d, 8);
    loss = bp_mse_forward(&y, &wrong);
    EXPECT_ERROR("bp_mse_forward", "yhat is 2x2 but y is 1x4");
    CHECK(loss != loss); /* NaN on error */
    loss = bp_mse_forward(NULL, &y);
    EXPECT_ERROR("bp_mse_forward", "yhat is NULL");
    CHECK(loss != loss);
    bp_mse_backward(&y, &wrong, &d);
    EXPECT_ERROR("bp_mse_backward", "yhat is 2x2 but y is 1x4");
    bp_mse_backward(&y, &y, &wrong);
    EXPECT_ERROR("bp_mse_backward", "yhat is 2x2 but dyhat is 1x4");
    CHECK(all_equal(&d, 8));
    bp_tensor_free(&yhat);
    bp_tensor_free(&y);
    bp_tensor_free(&d);
    bp_tensor_free(&wrong);
}

/* ---- SGD ---------------------------------------------------------------------------------------- */

static void test_sgd(void)
{
    const double w_[] = {1, -2, 3}, dw_[] = {0.5, 0.25, -1}, after[] = {0.75, -2.125, 3.5};
    bp_tensor w = make(1, 3, w_), dw = make(1, 3, dw_), wrong = bp_tensor_new(3, 1);
    current_test = "sgd";
    bp_sgd_step(&w, &dw, (bp_real)0.5);
    CHECK(close_to(&w, after, 0));
    bp_sgd_step(&w, &wrong, 1);
    EXPECT_ERROR("bp_sgd_step", "w is 1x3 but dw is 3x1");
    bp_sgd_step(&w, &w, 1);
    EXPECT_ERROR("bp_sgd_step", "w (1x3) shares memory with dw (1x3)");
    CHECK(close_to(&w, after, 0));
    bp_tensor_free(&w);
    bp_tensor_free(&dw);
    bp_tensor_free(&wrong);
}

/* ---- He and Xavier initialisation, the norm ------------------------------------------------------ */

/* sample mean and standard deviation of all elements */
static void sample_stats(const bp_tensor *t, double *mean, double *std)
{
    double sum = 0, sum2 = 0;
    int i, n = t->rows * t->cols;
    for (i = 0; i < n; i++) sum += (double)t->data[i];
    *mean = sum / n;
    for (i = 0; i < n; i++) sum2 += ((double)t->data[i] - *mean) * ((double)t->data[i] - *mean);
    *std = sqrt(sum2 / (n - 1));
}

static void test_init(void)
{
    const int fan_in = 400, fan_out = 300;
    bp_tensor W = bp_tensor_new(fan_in, fan_out), W2 = bp_tensor_new(fan_in, fan_out);
    bp_tensor empty = bp_tensor_new(0, 5), empty2 = bp_tensor_new(5, 0);
    const size_t bytes = (size_t)(fan_in * fan_out) * sizeof(bp_real);
    double mean, std, want;
    bp_rng rng;
    current_test = "init he/xavier";

    /* He: N(0, 2/fan_in).  120000 samples: the sample std is off by ~1/sqrt(2n) = 0.2%, allow 2% */
    bp_rng_seed(&rng, 11);
    bp_init_he(&W, &rng);
    sample_stats(&W, &mean, &std);
    want = sqrt(2.0 / fan_in);
    if (!(fabs(std / want - 1) < 0.02)) printf("  he: std %g, expected %g\n", std, want);
    CHECK(fabs(std / want - 1) < 0.02);
    CHECK(fabs(mean) < 5 * want / sqrt((double)(fan_in * fan_out)));
    /* it is bp_tensor_randn with that std (as documented), so deterministic per seed */
    bp_rng_seed(&rng, 11);
    bp_tensor_randn(&W2, &rng, (bp_real)sqrt(2.0 / fan_in));
    CHECK(memcmp(W.data, W2.data, bytes) == 0);
    bp_rng_seed(&rng, 11);
    bp_init_he(&W2, &rng);
    CHECK(memcmp(W.data, W2.data, bytes) == 0);
    bp_rng_seed(&rng, 12);
    bp_init_he(&W2, &rng);
    CHECK(memcmp(W.data, W2.data, bytes) != 0);

    /* Xavier (Glorot normal): N(0, 2/(fan_in + fan_out)) */
    bp_rng_seed(&rng, 13);
    bp_init_xavier(&W, &rng);
    sample_stats(&W, &mean, &std);
    want = sqrt(2.0 / (fan_in + fan_out));
    if (!(fabs(std / want - 1) < 0.02)) printf("  xavier: std %g, expected %g\n", std, want);
    CHECK(fabs(std / want - 1) < 0.02);
    CHECK(fabs(mean) < 5 * want / sqrt((double)(fan_in * fan_out)));
    bp_rng_seed(&rng, 13);
    bp_init_xavier(&W2, &rng);
    CHECK(memcmp(W.data, W2.data, bytes) == 0);
    bp_rng_seed(&rng, 14);
    bp_init_xavier(&W2, &rng);
    CHECK(memcmp(W.data, W2.data, bytes) != 0);

    /* empty weights: nothing to draw, no error */
    bp_init_he(&empty, &rng);
    bp_init_he(&empty2, &rng);
    bp_init_xavier(&empty, &rng);
    bp_init_xavier(&empty2, &rng);
    {
        bp_tensor none = {0, 0, NULL}; /* 0x0: fan_in + fan_out = 0, nothing to draw, no division by 0 */
        bp_init_he(&none, &rng);
        bp_init_xavier(&none, &rng);
    }
    EXPECT_NO_ERROR();

    current_test = "init errors";
    memcpy(W2.data, W.data, bytes);
    bp_init_he(NULL, &rng);
    EXPECT_ERROR("bp_init_he", "W is NULL");
    bp_init_xavier(NULL, &rng);
    EXPECT_ERROR("bp_init_xavier", "W is NULL");
    {
        bp_tensor unallocated = {4, 3, NULL};
        bp_init_he(&unallocated, &rng);
        EXPECT_ERROR("bp_init_he", "W is 4x3", "NULL");
    }
    CHECK(memcmp(W.data, W2.data, bytes) == 0);

    /* REGRESSION: a NULL rng was reported as coming from bp_tensor_randn ("t is 400x300"), not from the
       function the user called, and for an empty W not at all. */
    current_test = "init with a NULL rng (regression)";
    bp_init_he(&W, NULL);
    EXPECT_ERROR("bp_init_he", "rng is NULL", "W is 400x300");
    bp_init_xavier(&W, NULL);
    EXPECT_ERROR("bp_init_xavier", "rng is NULL", "W is 400x300");
    bp_init_he(&empty, NULL);
    EXPECT_ERROR("bp_init_he", "rng is NULL");
    CHECK(memcmp(W.data, W2.data, bytes) == 0);

    bp_tensor_free(&W);
    bp_tensor_free(&W2);
    bp_tensor_free(&empty);
    bp_tensor_free(&empty2);
}

static void test_norm(void)
{
    const double v_[] = {3, 0, -4, 0}, big_[] = {1e20, -1e20, 1e20, -1e20}, tiny_[] = {1e-30, 1e-30};
    bp_tensor v = make(2, 2, v_), big = make(1, 4, big_), tiny = make(2, 1, tiny_), empty = bp_tensor_new(0, 3);
    bp_real r;
    current_test = "norm";
    CHECK(bp_tensor_norm(&v) == 5);
    CHECK(bp_tensor_norm(&empty) == 0);
    /* summed in double: in float the squares 1e40 would overflow, and 1e-60 underflow to 0 */
    r = bp_tensor_norm(&big);
    CHECK(fabs((double)r / 2e20 - 1) < 4 * REAL_EPS);
    r = bp_tensor_norm(&tiny);
    CHECK(fabs((double)r / (sqrt(2.0) * 1e-30) - 1) < 4 * REAL_EPS);
    EXPECT_NO_ERROR();
    r = bp_tensor_norm(NULL);
    EXPECT_ERROR("bp_tensor_norm", "t is NULL");
    CHECK(r != r);
    {
        bp_tensor unallocated = {2, 3, NULL};
        r = bp_tensor_norm(&unallocated);
        EXPECT_ERROR("bp_tensor_norm", "t is 2x3", "NULL");
        CHECK(r != r);
    }
    bp_tensor_free(&v);
    bp_tensor_free(&big);
    bp_tensor_free(&tiny);
}

/* ---- sigmoid and tanh ---------------------------------------------------------------------------- */

static int same_bits(const bp_tensor *a, const bp_tensor *b)
{
    return a->rows == b->rows && a->cols == b->cols &&
           (a->rows * a->cols == 0 || memcmp(a->data, b->data, bp__count(a) * sizeof(bp_real)) == 0);
}

static int all_finite(const bp_tensor *t)
{
    int i;
    for (i = 0; i < t->rows * t->cols; i++)
        if (!(fabs((double)t->data[i]) <= DBL_MAX)) return 0;
    return 1;
}

/* One activation, its forward and backward (which takes the forward's OUTPUT a), checked against values
   worked out by hand on a 2x3 tensor.  Elements 0, 3 and 4 are exact (0 and +-1000 in z). */
typedef struct {
    const char *name, *forward_name, *backward_name;
    void (*forward)(const bp_tensor *z, bp_tensor *a);
    void (*backward)(const bp_tensor *a, const bp_tensor *da, bp_tensor *dz);
    double z[6], a[6], da[6], dz[6];
} activation_case;

static void test_activation(const activation_case *c)
{
    bp_tensor z = make(2, 3, c->z), a = bp_tensor_new(2, 3), da = make(2, 3, c->da), dz = bp_tensor_new(2, 3);
    bp_tensor a_hand = make(2, 3, c->a), copy = bp_tensor_new(2, 3), wrong = bp_tensor_new(3, 2);
    const double tol = 4 * REAL_EPS;
    current_test = c->name;
    c->forward(&z, &a);
    CHECK(close_to(&a, c->a, tol));
    CHECK(a.data[0] == (bp_real)c->a[0] && a.data[3] == (bp_real)c->a[3] && a.data[4] == (bp_real)c->a[4] &&
          all_finite(&a));
    c->backward(&a_hand, &da, &dz); /* from the exact a, so only the backward's rounding counts */
    CHECK(close_to(&dz, c->dz, tol));
    c->backward(&a, &da, &dz);
    CHECK(close_to(&dz, c->dz, tol) && all_finite(&dz));

    /* in place: the same bits as out of place */
    memcpy(copy.data, z.data, 6 * sizeof(bp_real));
    c->forward(&copy, &copy);
    CHECK(same_bits(&copy, &a));
    memcpy(copy.data, da.data, 6 * sizeof(bp_real));
    c->backward(&a, &copy, &copy); /* dz == da */
    CHECK(same_bits(&copy, &dz));
    memcpy(copy.data, a.data, 6 * sizeof(bp_real));
    c->backward(&copy, &da, &copy); /* dz == a */
    CHECK(same_bits(&copy, &dz));
    EXPECT_NO_ERROR();

    /* argument checks: one message naming the shapes, no output written */
    fill(&a, 5);
    fill(&dz, 5);
    c->forward(NULL, &a);
    EXPECT_ERROR(c->forward_name, "z is NULL");
    c->forward(&z, NULL);
    EXPECT_ERROR(c->forward_name, "a is NULL");
    c->forward(&z, &wrong);
    EXPECT_ERROR(c->forward_name, "z is 2x3 but a is 3x2");
    c->backward(NULL, &da, &dz);
    EXPECT_ERROR(c->backward_name, "a is NULL");
    c->backward(&a, NULL, &dz);
    EXPECT_ERROR(c->backward_name, "da is NULL");
    c->backward(&a, &da, NULL);
    EXPECT_ERROR(c->backward_name, "dz is NULL");
    c->backward(&a, &wrong, &dz);
    EXPECT_ERROR(c->backward_name, "a is 2x3 but da is 3x2");
    c->backward(&a, &da, &wrong);
    EXPECT_ERROR(c->backward_name, "a is 2x3 but dz is 3x2");
    {
        bp_tensor big = bp_tensor_new(1, 8), lo = {1, 6, big.data}, hi = {1, 6, big.data + 1};
        bp_tensor da16 = bp_tensor_new(1, 6), unallocated = {2, 3, NULL};
        fill(&big, 3);
        c->forward(&lo, &hi);
        EXPECT_ERROR(c->forward_name, "a (1x6) shares memory with z (1x6)", "only exactly in place");
        c->backward(&lo, &da, &hi);
        EXPECT_ERROR(c->backward_name, "a is 1x6 but da is 2x3");
        c->backward(&lo, &lo, &hi);
        EXPECT_ERROR(c->backward_name, "dz (1x6) shares memory with da (1x6)");
        c->backward(&lo, &da16, &hi);
        EXPECT_ERROR(c->backward_name, "dz (1x6) shares memory with a (1x6)");
        CHECK(all_equal(&big, 3));
        c->forward(&unallocated, &a);
        EXPECT_ERROR(c->forward_name, "z is 2x3", "NULL");
        bp_tensor_free(&big);
        bp_tensor_free(&da16);
    }
    CHECK(all_equal(&a, 5) && all_equal(&dz, 5));
    bp_tensor_free(&z);
    bp_tensor_free(&a);
    bp_tensor_free(&da);
    bp_tensor_free(&dz);
    bp_tensor_free(&a_hand);
    bp_tensor_free(&copy);
    bp_tensor_free(&wrong);
}

static void test_sigmoid_tanh(void)
{
    static const activation_case cases[] = {
        /* a = 1/(1 + e^-z): sigmoid(0) = 1/2, sigmoid(1) = 0.7310585786300049, sigmoid(-1) = 1 - sigmoid(1),
           sigmoid(2.5) = 0.9241418199787566; at +-1000 exactly 1 and 0 (e^1000 would overflow).
           dz = da * a(1 - a): 0.25*1; 2*0.19661193324148185; -0.19661193324148185; 0 at the flat ends */
        {"sigmoid", "bp_sigmoid_forward", "bp_sigmoid_backward", bp_sigmoid_forward, bp_sigmoid_backward,
         {0, 1, -1, 1000, -1000, 2.5},
         {0.5, 0.7310585786300049, 0.2689414213699951, 1, 0, 0.9241418199787566},
         {1, 2, -1, 5, -5, 0.5},
         {0.25, 0.3932238664829637, -0.19661193324148185, 0, 0, 0.03505185827255403}},
        /* tanh(0) = 0, tanh(+-1) = +-0.7615941559557649, tanh(0.5) = 0.46211715726000974, tanh(+-1000) = +-1.
           dz = da * (1 - a^2): 1*1; 2*0.41997434161402614; -0.41997434161402614; 0 at +-1000;
           0.5*0.7864477329659274 */
        {"tanh", "bp_tanh_forward", "bp_tanh_backward", bp_tanh_forward, bp_tanh_backward,
         {0, 1, -1, 1000, -1000, 0.5},
         {0, 0.7615941559557649, -0.7615941559557649, 1, -1, 0.46211715726000974},
         {1, 2, -1, 5, -5, 0.5},
         {1, 0.8399486832280523, -0.41997434161402614, 0, 0, 0.3932238664829637}},
    };
    test_activation(&cases[0]);
    test_activation(&cases[1]);
}

/* ---- softmax + cross-entropy --------------------------------------------------------------------- */

static void test_softmax_xent(void)
{
    /* row 0: logits 5 + log(1, 2, 3, 4) give probs 0.1 0.2 0.3 0.4 (the shift by 5 changes nothing);
       label 3: loss -log 0.4.  Row 1: equal logits give 1/4 each; label 1: loss log 4.
       Mean: (log 4 - log 0.4)/2 = log(10)/2 = 1.151292546497023.
       dlogits = (probs - onehot)/2 = [0.05 0.1 0.15 -0.3; 0.125 -0.375 0.125 0.125] */
    const double logits_[] = {5, 5 + 0.69314718055994531, 5 + 1.0986122886681098, 5 + 1.3862943611198906,
                              7, 7, 7, 7};
    const double probs_[] = {0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25};
    const double dlogits_[] = {0.05, 0.1, 0.15, -0.3, 0.125, -0.375, 0.125, 0.125};
    const int labels[] = {3, 1};
    bp_tensor logits = make(2, 4, logits_), probs = bp_tensor_new(2, 4), d = bp_tensor_new(2, 4);
    bp_tensor copy = bp_tensor_new(2, 4), wrong = bp_tensor_new(4, 2);
    const double tol = 32 * REAL_EPS;
    bp_real loss;
    current_test = "softmax xent";
    loss = bp_softmax_xent_forward(&logits, labels, &probs);
    CHECK(fabs((double)loss - 1.151292546497023) <= tol);
    CHECK(close_to(&probs, probs_, tol));
    bp_softmax_xent_backward(&probs, labels, &d);
    CHECK(close_to(&d, dlogits_, tol));
    /* in place: probs == logits, then dlogits == probs; the same bits as out of place */
    memcpy(copy.data, logits.data, 8 * sizeof(bp_real));
    CHECK(bp_softmax_xent_forward(&copy, labels, &copy) == loss);
    CHECK(same_bits(&copy, &probs));
    bp_softmax_xent_backward(&copy, labels, &copy);
    CHECK(same_bits(&copy, &d));
    EXPECT_NO_ERROR();

    current_test = "softmax xent extremes";
    {
        /* logits 1000, 0, -1000: e^1000 would overflow without the max subtracted.  Label 0: loss 0;
           label 2: loss log-sum-exp - (-1000) = 1000 + 1000 = 2000, never log(0) = -inf */
        const double ext_[] = {1000, 0, -1000};
        const int zero[] = {0}, two[] = {2}, both[] = {0, 2};
        const double probs_ext[] = {1, 0, 0}, d_two[] = {1, 0, -1};
        bp_tensor ext = make(1, 3, ext_), p = bp_tensor_new(1, 3), dd = bp_tensor_new(1, 3);
        bp_tensor ext2 = bp_tensor_new(2, 3), p2 = bp_tensor_new(2, 3);
        loss = bp_softmax_xent_forward(&ext, zero, &p);
        CHECK(loss == 0);
        CHECK(close_to(&p, probs_ext, 0) && all_finite(&p));
        loss = bp_softmax_xent_forward(&ext, two, &p);
        CHECK(loss == 2000);
        bp_softmax_xent_backward(&p, two, &dd);
        CHECK(close_to(&dd, d_two, 0));
        memcpy(ext2.data, ext.data, 3 * sizeof(bp_real));
        memcpy(ext2.data + 3, ext.data, 3 * sizeof(bp_real));
        CHECK(bp_softmax_xent_forward(&ext2, both, &p2) == 1000); /* the mean over the batch */
        bp_tensor_free(&ext);
        bp_tensor_free(&p);
        bp_tensor_free(&dd);
        bp_tensor_free(&ext2);
        bp_tensor_free(&p2);
    }
    {
        /* equal logits: every class 1/C, the loss log C whatever the label */
        const int labels10[] = {0, 5, 9};
        bp_tensor u = bp_tensor_new(3, 10), p = bp_tensor_new(3, 10);
        int i, ok = 1;
        fill(&u, (bp_real)-3.5);
        loss = bp_softmax_xent_forward(&u, labels10, &p);
        CHECK(fabs((double)loss - 2.302585092994046) <= tol);
        for (i = 0; i < 30; i++) ok &= fabs((double)p.data[i] - 0.1) <= tol;
        CHECK(ok);
        bp_tensor_free(&u);
        bp_tensor_free(&p);
    }
    {
        /* one class: probability 1, loss 0, gradient 0; an empty batch: loss 0, labels not needed */
        const int zeros[] = {0, 0, 0};
        bp_tensor one = bp_tensor_new(3, 1), p = bp_tensor_new(3, 1), e = bp_tensor_new(0, 4);
        fill(&one, 42);
        CHECK(bp_softmax_xent_forward(&one, zeros, &p) == 0);
        CHECK(all_equal(&p, 1));
        bp_softmax_xent_backward(&p, zeros, &one);
        CHECK(all_equal(&one, 0));
        CHECK(bp_softmax_xent_forward(&e, NULL, &e) == 0);
        bp_softmax_xent_backward(&e, NULL, &e);
        bp_tensor_free(&one);
        bp_tensor_free(&p);
    }
    EXPECT_NO_ERROR();

    current_test = "softmax xent errors";
    {
        const int out_of_range[] = {3, 4}, negative[] = {-1, 0};
        fill(&probs, 9);
        fill(&d, 9);
        loss = bp_softmax_xent_forward(NULL, labels, &probs);
        EXPECT_ERROR("bp_softmax_xent_forward", "logits is NULL");
        CHECK(loss != loss);
        loss = bp_softmax_xent_forward(&logits, labels, NULL);
        EXPECT_ERROR("bp_softmax_xent_forward", "probs is NULL");
        CHECK(loss != loss);
        loss = bp_softmax_xent_forward(&logits, labels, &wrong);
        EXPECT_ERROR("bp_softmax_xent_forward", "logits is 2x4 but probs is 4x2");
        CHECK(loss != loss);
        loss = bp_softmax_xent_forward(&logits, NULL, &probs);
        EXPECT_ERROR("bp_softmax_xent_forward", "labels is NULL", "2x4");
        CHECK(loss != loss);
        loss = bp_softmax_xent_forward(&logits, out_of_range, &probs);
        EXPECT_ERROR("bp_softmax_xent_forward", "labels[1] is 4", "0..3");
        CHECK(loss != loss);
        loss = bp_softmax_xent_forward(&logits, negative, &probs);
        EXPECT_ERROR("bp_softmax_xent_forward", "labels[0] is -1");
        CHECK(loss != loss);
        bp_softmax_xent_backward(NULL, labels, &d);
        EXPECT_ERROR("bp_softmax_xent_backward", "probs is NULL");
        bp_softmax_xent_backward(&probs, labels, NULL);
        EXPECT_ERROR("bp_softmax_xent_backward", "dlogits is NULL");
        bp_softmax_xent_backward(&probs, labels, &wrong);
        EXPECT_ERROR("bp_softmax_xent_backward", "probs is 2x4 but dlogits is 4x2");
        bp_softmax_xent_backward(&probs, NULL, &d);
        EXPECT_ERROR("bp_softmax_xent_backward", "labels is NULL");
        bp_softmax_xent_backward(&probs, out_of_range, &d);
        EXPECT_ERROR("bp_softmax_xent_backward", "labels[1] is 4");
        bp_softmax_xent_backward(&probs, negative, &d);
        EXPECT_ERROR("bp_softmax_xent_backward", "labels[0] is -1");
        {
            bp_tensor big = bp_tensor_new(3, 4), lo = {2, 4, big.data}, hi = {2, 4, big.data + 4};
            fill(&big, 2);
            loss = bp_softmax_xent_forward(&lo, labels, &hi);
            EXPECT_ERROR("bp_softmax_xent_forward", "probs (2x4) shares memory with logits (2x4)");
            CHECK(loss != loss);
            bp_softmax_xent_backward(&lo, labels, &hi);
            EXPECT_ERROR("bp_softmax_xent_backward", "dlogits (2x4) shares memory with probs (2x4)");
            CHECK(all_equal(&big, 2));
            bp_tensor_free(&big);
        }
        CHECK(all_equal(&probs, 9) && all_equal(&d, 9));
        CHECK(close_to(&logits, logits_, REAL_EPS));
    }
    bp_tensor_free(&logits);
    bp_tensor_free(&probs);
    bp_tensor_free(&d);
    bp_tensor_free(&copy);
    bp_tensor_free(&wrong);
}

/* ---- momentum and Adam, by hand ------------------------------------------------------------------ */

static void test_momentum(void)
{
    /* lr 0.1, mu 0.9.  Step 1: vel = 0.9*0 + dw = [0.5 1], w = [1 -2] - 0.1 vel = [0.95 -2.1].
       Step 2 with dw = [1 0]: vel = [0.45 + 1, 0.9] = [1.45 0.9], w = [0.95 - 0.145, -2.1 - 0.09] */
    const double w_[] = {1, -2}, dw1_[] = {0.5, 1}, dw2_[] = {1, 0};
    const double w1[] = {0.95, -2.1}, vel1[] = {0.5, 1}, w2[] = {0.805, -2.19}, vel2[] = {1.45, 0.9};
    bp_tensor w = make(1, 2, w_), dw = make(1, 2, dw1_), vel = bp_tensor_new(1, 2), wrong = bp_tensor_new(2, 1);
    const double tol = 8 * REAL_EPS;
    current_test = "momentum";
    bp_momentum_step(&w, &dw, &vel, (bp_real)0.1, (bp_real)0.9);
    CHECK(close_to(&w, w1, tol) && close_to(&vel, vel1, 0));
    dw.data[0] = (bp_real)dw2_[0];
    dw.data[1] = (bp_real)dw2_[1];
    bp_momentum_step(&w, &dw, &vel, (bp_real)0.1, (bp_real)0.9);
    CHECK(close_to(&w, w2, tol) && close_to(&vel, vel2, tol));
    EXPECT_NO_ERROR();

    current_test = "momentum errors";
    fill(&w, 4);
    fill(&vel, 4);
    bp_momentum_step(NULL, &dw, &vel, 1, 1);
    EXPECT_ERROR("bp_momentum_step", "w is NULL");
    bp_momentum_step(&w, NULL, &vel, 1, 1);
    EXPECT_ERROR("bp_momentum_step", "dw is NULL");
    bp_momentum_step(&w, &dw, NULL, 1, 1);
    EXPECT_ERROR("bp_momentum_step", "vel is NULL");
    bp_momentum_step(&w, &wrong, &vel, 1, 1);
    EXPECT_ERROR("bp_momentum_step", "w is 1x2 but dw is 2x1");
    bp_momentum_step(&w, &dw, &wrong, 1, 1);
    EXPECT_ERROR("bp_momentum_step", "w is 1x2 but vel is 2x1");
    bp_momentum_step(&w, &w, &vel, 1, 1);
    EXPECT_ERROR("bp_momentum_step", "w (1x2) shares memory with dw (1x2)");
    bp_momentum_step(&w, &dw, &w, 1, 1);
    EXPECT_ERROR("bp_momentum_step", "w (1x2) shares memory with vel (1x2)");
    bp_momentum_step(&w, &vel, &vel, 1, 1);
    EXPECT_ERROR("bp_momentum_step", "vel (1x2) shares memory with dw (1x2)");
    CHECK(all_equal(&w, 4) && all_equal(&vel, 4));
    bp_tensor_free(&w);
    bp_tensor_free(&dw);
    bp_tensor_free(&vel);
    bp_tensor_free(&wrong);
}

static void test_adam(void)
{
    /* Step t = 1 from m = v = 0: m = (1-b1) g, v = (1-b2) g^2, and the bias corrections divide those
       factors out again: m_hat = g, v_hat = g^2, so w -= lr * g / (|g| + eps) -- a step of lr against the
       sign of g, whatever its size.  lr 0.1, eps 1e-8:  g = [2 -0.5 0]  gives
       w = [1 - 0.2/2.00000001, -1 + 0.05/0.50000001, 0.5] = [0.9000000005 -0.900000002 0.5] */
    const double w_[] = {1, -1, 0.5}, g_[] = {2, -0.5, 0};
    const double w1[] = {0.9000000005, -0.900000002, 0.5}, m1[] = {0.2, -0.05, 0}, v1[] = {0.004, 0.00025, 0};
    bp_tensor w = make(1, 3, w_), dw = make(1, 3, g_), m = bp_tensor_new(1, 3), v = bp_tensor_new(1, 3);
    bp_tensor wrong = bp_tensor_new(3, 1);
    const double tol = 16 * REAL_EPS;
    current_test = "adam";
    bp_adam_step(&w, &dw, &m, &v, 1, (bp_real)0.1, (bp_real)0.9, (bp_real)0.999, (bp_real)1e-8);
    CHECK(close_to(&w, w1, tol));
    /* m and v relative to their size (close_to is absolute below 1); float rounds 1 - 0.999f by 1.3e-5 */
    CHECK(fabs((double)m.data[0] - m1[0]) <= tol * m1[0] && fabs((double)m.data[1] - m1[1]) <= -tol * m1[1]);
    CHECK(fabs((double)v.data[0] / v1[0] - 1) <= (sizeof(bp_real) == 8 ? tol : 2e-5));
    CHECK(fabs((double)v.data[1] / v1[1] - 1) <= (sizeof(bp_real) == 8 ? tol : 2e-5));
    CHECK(m.data[2] == 0 && v.data[2] == 0 && w.data[2] == (bp_real)0.5); /* zero gradient: 0/(0+eps), no step */
    EXPECT_NO_ERROR();

    current_test = "adam errors";
    fill(&w, 4);
    fill(&m, 4);
    fill(&v, 4);
    bp_adam_step(NULL, &dw, &m, &v, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "w is NULL");
    bp_adam_step(&w, NULL, &m, &v, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "dw is NULL");
    bp_adam_step(&w, &dw, NULL, &v, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "m is NULL");
    bp_adam_step(&w, &dw, &m, NULL, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "v is NULL");
    bp_adam_step(&w, &wrong, &m, &v, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "w is 1x3 but dw is 3x1");
    bp_adam_step(&w, &dw, &wrong, &v, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "w is 1x3 but m is 3x1");
    bp_adam_step(&w, &dw, &m, &wrong, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "w is 1x3 but v is 3x1");
    bp_adam_step(&w, &dw, &m, &v, 0, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "t is 0", "1x3");
    bp_adam_step(&w, &dw, &m, &v, -3, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "t is -3");
    bp_adam_step(&w, &dw, &m, &v, 1, 1, 1, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "beta1 is 1", "[0, 1)");
    bp_adam_step(&w, &dw, &m, &v, 1, 1, 0.5, (bp_real)-0.1, 1);
    EXPECT_ERROR("bp_adam_step", "beta2 is -0.1");
    bp_adam_step(&w, &dw, &m, &v, 1, 1, (bp_real)NAN, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "beta1 is ", "nan"); /* "-nan" under tcc */
    bp_adam_step(&w, &dw, &m, &v, 1, 1, 0.5, 1, 1);
    EXPECT_ERROR("bp_adam_step", "beta2 is 1");
    bp_adam_step(&w, &w, &m, &v, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "w (1x3) shares memory with dw (1x3)");
    bp_adam_step(&w, &dw, &w, &v, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "w (1x3) shares memory with m (1x3)");
    bp_adam_step(&w, &dw, &m, &w, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "w (1x3) shares memory with v (1x3)");
    bp_adam_step(&w, &m, &m, &v, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "m (1x3) shares memory with dw (1x3)");
    bp_adam_step(&w, &v, &m, &v, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "v (1x3) shares memory with dw (1x3)");
    bp_adam_step(&w, &dw, &m, &m, 1, 1, 0.5, 0.5, 1);
    EXPECT_ERROR("bp_adam_step", "v (1x3) shares memory with m (1x3)");
    CHECK(all_equal(&w, 4) && all_equal(&m, 4) && all_equal(&v, 4));
    bp_tensor_free(&w);
    bp_tensor_free(&dw);
    bp_tensor_free(&m);
    bp_tensor_free(&v);
    bp_tensor_free(&wrong);
}

/* ---- momentum and Adam against PyTorch (tests/fixtures/optim.txt) --------------------------------- */

/* The next whitespace-separated token; '#' starts a comment that runs to the end of the line. */
static int next_token(FILE *f, char *buf, size_t size)
{
    int c;
    size_t n = 0;
    for (;;) {
        c = fgetc(f);
        if (c == EOF) return 0;
        if (c == '#') {
            while ((c = fgetc(f)) != EOF && c != '\n') continue;
            continue;
        }
        if (c != ' ' && c != '\n' && c != '\t' && c != '\r') break;
    }
    do {
        if (n + 1 < size) buf[n++] = (char)c;
        c = fgetc(f);
    } while (c != EOF && c != ' ' && c != '\n' && c != '\t' && c != '\r');
    buf[n] = 0;
    return 1;
}

static int next_number(FILE *f, double *v)
{
    char buf[64], *end;
    if (!next_token(f, buf, sizeof buf)) return 0;
    *v = strtod(buf, &end);
    return end != buf && *end == 0;
}

/* The word `word` followed by n numbers. */
static int read_values(FILE *f, const char *word, int n, double *out)
{
    char buf[64];
    int i;
    if (!next_token(f, buf, sizeof buf) || strcmp(buf, word) != 0) {
        printf("  optim.txt: expected '%s', read '%s'\n", word, buf);
        return 0;
    }
    for (i = 0; i < n; i++)
        if (!next_number(f, &out[i])) return 0;
    return 1;
}

static void set_values(bp_tensor *t, const double *values)
{
    int i;
    for (i = 0; i < t->rows * t->cols; i++) t->data[i] = (bp_real)values[i];
}

/* |got - want| <= tol * max(|want|, 1% of the array's largest |want|): relative, except for elements
   much smaller than the rest (where the last bits of a difference dominate) */
static int rel_close(const bp_tensor *t, const double *want, double tol, const char *what, int step)
{
    double floor = 0;
    int i, n = t->rows * t->cols;
    for (i = 0; i < n; i++)
        if (fabs(want[i]) > floor) floor = fabs(want[i]);
    floor *= 0.01;
    for (i = 0; i < n; i++) {
        double scale = fabs(want[i]) > floor ? fabs(want[i]) : floor;
        if (!(fabs((double)t->data[i] - want[i]) <= tol * scale)) {
            printf("  %s after step %d, element %d: %.17g, PyTorch %.17g\n", what, step, i, (double)t->data[i],
                   want[i]);
            return 0;
        }
    }
    return 1;
}

static void test_optim_fixture(const char *dir)
{
    char path[512], kind[32], name[32];
    double hp[4], w0[64], g[64], want[3][64];
    FILE *f;
    int cases = 0, steps_checked = 0;
#ifdef BACKPROP_DOUBLE
    const double base_tol = 1e-12;
#else
    const double base_tol = 1e-5;
#endif
    current_test = "optimizers vs PyTorch";
    snprintf(path, sizeof path, "%s/optim.txt", dir);
    f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    while (next_token(f, kind, sizeof kind)) {
        int adam = strcmp(kind, "adam") == 0, rows, cols, steps, t, n, k, ok = 1;
        double r, c, s, tol_m, tol_v;
        bp_tensor w, dw, s1, s2;
        char word[32];
        if (!adam && strcmp(kind, "momentum") != 0) {
            printf("  optim.txt: unexpected '%s'\n", kind);
            CHECK(0);
            break;
        }
        if (!next_token(f, name, sizeof name) || !next_number(f, &r) || !next_number(f, &c) ||
            !next_number(f, &s)) {
            CHECK(0);
            break;
        }
        rows = (int)r;
        cols = (int)c;
        steps = (int)s;
        n = rows * cols;
        for (k = 0; k < (adam ? 4 : 2); k++) ok &= next_number(f, &hp[k]);
        ok &= n > 0 && n <= 64 && read_values(f, "w", n, w0);
        CHECK(ok);
        if (!ok) break;
        /* In float, a hyperparameter that binary cannot hold is rounded: 1 - 0.999f is 1 - 0.999 off by
           1.3e-5 relative, and m and v carry that factor.  Allow for it on top of the base tolerance (it is
           0 in double and for the "exact" cases). */
        tol_m = base_tol;
        tol_v = base_tol;
        if (adam) {
            tol_m += 2 * fabs((double)(bp_real)hp[1] - hp[1]) / (1 - hp[1]);
            tol_v += 2 * fabs((double)(bp_real)hp[2] - hp[2]) / (1 - hp[2]);
        }
        w = bp_tensor_new(rows, cols);
        dw = bp_tensor_new(rows, cols);
        s1 = bp_tensor_new(rows, cols); /* vel, or m */
        s2 = bp_tensor_new(rows, cols); /* v */
        set_values(&w, w0);
        for (t = 1; t <= steps && ok; t++) {
            double step_no;
            ok &= next_token(f, word, sizeof word) && strcmp(word, "step") == 0 && next_number(f, &step_no) &&
                  (int)step_no == t;
            ok &= read_values(f, "grad", n, g) && read_values(f, "w", n, want[0]) &&
                  read_values(f, adam ? "m" : "vel", n, want[1]) && (!adam || read_values(f, "v", n, want[2]));
            if (!ok) break;
            set_values(&dw, g);
            if (adam)
                bp_adam_step(&w, &dw, &s1, &s2, t, (bp_real)hp[0], (bp_real)hp[1], (bp_real)hp[2], (bp_real)hp[3]);
            else
                bp_momentum_step(&w, &dw, &s1, (bp_real)hp[0], (bp_real)hp[1]);
            ok &= rel_close(&w, want[0], base_tol, adam ? "adam w" : "momentum w", t);
            ok &= rel_close(&s1, want[1], adam ? tol_m : base_tol, adam ? "adam m" : "momentum vel", t);
            if (adam) ok &= rel_close(&s2, want[2], tol_v, "adam v", t);
            steps_checked++;
        }
        ok &= next_token(f, word, sizeof word) && strcmp(word, "end") == 0;
        if (!ok) printf("  case %s %s failed\n", kind, name);
        CHECK(ok);
        cases++;
        bp_tensor_free(&w);
        bp_tensor_free(&dw);
        bp_tensor_free(&s1);
        bp_tensor_free(&s2);
    }
    fclose(f);
    CHECK(cases == 4 && steps_checked == 17);
    EXPECT_NO_ERROR();
}

/* ---- gradient clipping --------------------------------------------------------------------------- */

static void test_clip(void)
{
    /* two gradients, [3 4] and [12]: together sqrt(9 + 16 + 144) = 13 */
    static const double g1_[] = {3, 4}, g2_[] = {12};
    bp_tensor g1 = make(1, 2, g1_), g2 = make(1, 1, g2_), e = bp_tensor_new(0, 3);
    bp_tensor *grads[3];
    bp_real norm;
    double scale;
    const double tol = 4 * REAL_EPS;
    grads[0] = &g1;
    grads[1] = &e; /* an empty one counts for nothing */
    grads[2] = &g2;
    current_test = "clip grad norm";
    norm = bp_clip_grad_norm(grads, 3, 26); /* below the limit: untouched */
    CHECK(norm == 13 && close_to(&g1, g1_, 0) && close_to(&g2, g2_, 0));
    norm = bp_clip_grad_norm(grads, 3, 13); /* exactly at it: untouched too (only "exceeds" clips) */
    CHECK(norm == 13 && close_to(&g1, g1_, 0) && close_to(&g2, g2_, 0));
    /* above: everything scaled by max_norm / (norm + 1e-6), as PyTorch's clip_grad_norm_ does */
    norm = bp_clip_grad_norm(grads, 3, (bp_real)6.5);
    scale = 6.5 / (13 + 1e-6);
    CHECK(norm == 13);
    CHECK(fabs((double)g1.data[0] - 3 * scale) <= tol * 3 && fabs((double)g1.data[1] - 4 * scale) <= tol * 4 &&
          fabs((double)g2.data[0] - 12 * scale) <= tol * 12);
    norm = bp_clip_grad_norm(grads, 3, 100); /* the norm now: 6.5 less a hair */
    CHECK(fabs((double)norm - 6.5) <= 6.5 * tol + 1e-6);
    bp_clip_grad_norm(grads, 3, 0); /* max 0: all zeros */
    CHECK(all_equal(&g1, 0) && all_equal(&g2, 0));
    CHECK(bp_clip_grad_norm(grads, 0, 1) == 0);
    CHECK(bp_clip_grad_norm(NULL, 0, 1) == 0);
    EXPECT_NO_ERROR();

    current_test = "clip grad norm errors";
    set_values(&g1, g1_);
    set_values(&g2, g2_);
    norm = bp_clip_grad_norm(grads, -1, 1);
    EXPECT_ERROR("bp_clip_grad_norm", "-1 gradients");
    CHECK(norm != norm);
    norm = bp_clip_grad_norm(NULL, 2, 1);
    EXPECT_ERROR("bp_clip_grad_norm", "2 gradients", "grads non-NULL");
    CHECK(norm != norm);
    norm = bp_clip_grad_norm(grads, 3, -1);
    EXPECT_ERROR("bp_clip_grad_norm", "max_norm is -1");
    CHECK(norm != norm);
    norm = bp_clip_grad_norm(grads, 3, (bp_real)NAN);
    EXPECT_ERROR("bp_clip_grad_norm", "max_norm is");
    CHECK(norm != norm);
    {
        bp_tensor unallocated = {2, 2, NULL};
        bp_tensor *with_null[2], *with_bad[2];
        with_null[0] = &g1;
        with_null[1] = NULL;
        with_bad[0] = &g1;
        with_bad[1] = &unallocated;
        norm = bp_clip_grad_norm(with_null, 2, 1);
        EXPECT_ERROR("bp_clip_grad_norm", "grads[1] is NULL");
        CHECK(norm != norm);
        norm = bp_clip_grad_norm(with_bad, 2, 1);
        EXPECT_ERROR("bp_clip_grad_norm", "grads[1] is 2x2", "NULL");
        CHECK(norm != norm);
    }
    CHECK(close_to(&g1, g1_, 0) && close_to(&g2, g2_, 0));
    bp_tensor_free(&g1);
    bp_tensor_free(&g2);
}

/* ---- gradient checks: Linear -> ReLU -> MSE against finite differences ----------------------------- */

typedef struct net {
    bp_tensor x, W, b, y, z, a; /* inputs and parameters; z and a are the forward's cache */
} net;

static bp_real net_loss(void *ctx)
{
    net *n = (net *)ctx;
    bp_linear_forward(&n->x, &n->W, &n->b, &n->z);
    bp_relu_forward(&n->z, &n->a);
    return bp_mse_forward(&n->a, &n->y);
}

/* loss of the linear layer alone (no kink: the finite differences are exact up to rounding) */
static bp_real linear_loss(void *ctx)
{
    net *n = (net *)ctx;
    bp_linear_forward(&n->x, &n->W, &n->b, &n->z);
    return bp_mse_forward(&n->z, &n->y);
}

/* ReLU alone: L = mse(relu(z), y), checked with respect to z (grad from relu_backward of mse_backward) */
typedef struct relu_net {
    bp_tensor z, a, y;
} relu_net;

static bp_real relu_loss(void *ctx)
{
    relu_net *n = (relu_net *)ctx;
    bp_relu_forward(&n->z, &n->a);
    return bp_mse_forward(&n->a, &n->y);
}

/* MSE alone: L = mse(yhat, y), checked with respect to yhat */
static bp_real mse_loss(void *ctx)
{
    relu_net *n = (relu_net *)ctx;
    return bp_mse_forward(&n->a, &n->y);
}

static void test_gradcheck_relu_mse(void)
{
    relu_net n;
    bp_tensor d = bp_tensor_new(4, 6);
    bp_rng rng;
    const bp_real eps = GRADCHECK_EPS;
    const double tol = GRADCHECK_TOL;
    bp_real e;
    int i;
    current_test = "gradcheck relu, mse";
    bp_rng_seed(&rng, 5);
    n.z = bp_tensor_new(4, 6);
    n.a = bp_tensor_new(4, 6);
    n.y = bp_tensor_new(4, 6);
    bp_tensor_randn(&n.z, &rng, 1);
    bp_tensor_randn(&n.y, &rng, 1);
    for (i = 0; i < 24; i++) /* every z at least 0.1 from the kink at 0, half of them negative */
        n.z.data[i] = (i % 2 ? -1 : 1) * ((bp_real)fabs((double)n.z.data[i]) + (bp_real)0.1);
    relu_loss(&n);
    bp_mse_backward(&n.a, &n.y, &d);
    bp_relu_backward(&n.z, &d, &d);
    e = bp_gradcheck(relu_loss, &n, &n.z, &d, eps);
    if (!(e < tol)) printf("  relu dz: %g\n", (double)e);
    CHECK(e < tol);
    for (i = 1; i < 24; i += 2) CHECK(d.data[i] == 0); /* no gradient through an inactive unit */

    bp_mse_backward(&n.a, &n.y, &d); /* a is now the free variable yhat */
    e = bp_gradcheck(mse_loss, &n, &n.a, &d, eps);
    if (!(e < tol)) printf("  mse dyhat: %g\n", (double)e);
    CHECK(e < tol);
    EXPECT_NO_ERROR();
    bp_tensor_free(&n.z);
    bp_tensor_free(&n.a);
    bp_tensor_free(&n.y);
    bp_tensor_free(&d);
}

static void test_gradcheck_layers(void)
{
    const int batch = 6, in = 5, out = 3;
    net n;
    bp_tensor dz, dx, dW, db;
    bp_rng rng;
    const bp_real eps = GRADCHECK_EPS;
    const double tol = GRADCHECK_TOL;
    bp_real e;
    int i, layer;
    current_test = "gradcheck";
    bp_rng_seed(&rng, 77);
    n.x = bp_tensor_new(batch, in);
    n.W = bp_tensor_new(in, out);
    n.b = bp_tensor_new(1, out);
    n.y = bp_tensor_new(batch, out);
    n.z = bp_tensor_new(batch, out);
    n.a = bp_tensor_new(batch, out);
    dz = bp_tensor_new(batch, out);
    dx = bp_tensor_new(batch, in);
    dW = bp_tensor_new(in, out);
    db = bp_tensor_new(1, out);
    randomize(&n.x, &rng);
    randomize(&n.W, &rng);
    randomize(&n.b, &rng);
    randomize(&n.y, &rng);
    for (layer = 0; layer < 2; layer++) { /* 0: linear + MSE; 1: linear + ReLU + MSE */
        bp_real (*loss)(void *) = layer ? net_loss : linear_loss;
        loss(&n);
        if (layer) {
            /* keep every z at least 0.1 away from the ReLU kink, so the finite differences are valid */
            for (i = 0; i < batch * out; i++)
                if (fabs((double)n.z.data[i]) < 0.1) n.b.data[i % out] += (bp_real)0.3;
            loss(&n);
            for (i = 0; i < batch * out; i++) CHECK(fabs((double)n.z.data[i]) >= 0.05);
            bp_mse_backward(&n.a, &n.y, &dz);
            bp_relu_backward(&n.z, &dz, &dz);
        } else {
            bp_mse_backward(&n.z, &n.y, &dz);
        }
        bp_linear_backward(&n.x, &n.W, &dz, &dx, &dW, &db);
        e = bp_gradcheck(loss, &n, &n.W, &dW, eps);
        if (!(e < tol)) printf("  layer %d dW: %g\n", layer, (double)e);
        CHECK(e < tol);
        e = bp_gradcheck(loss, &n, &n.b, &db, eps);
        if (!(e < tol)) printf("  layer %d db: %g\n", layer, (double)e);
        CHECK(e < tol);
        e = bp_gradcheck(loss, &n, &n.x, &dx, eps);
        if (!(e < tol)) printf("  layer %d dx: %g\n", layer, (double)e);
        CHECK(e < tol);
    }
    EXPECT_NO_ERROR();

    /* the MSE gradient alone, with respect to yhat (here: a) */
    {
        bp_tensor d = bp_tensor_new(batch, out);
        net_loss(&n);
        bp_mse_backward(&n.a, &n.y, &d);
        /* perturbing y instead: dL/dy = -dL/dyhat */
        for (i = 0; i < batch * out; i++) d.data[i] = -d.data[i];
        e = bp_gradcheck(net_loss, &n, &n.y, &d, eps);
        if (!(e < tol)) printf("  dy: %g\n", (double)e);
        CHECK(e < tol);
        bp_tensor_free(&d);
    }

    current_test = "gradcheck itself";
    {
        /* it restores every parameter bit for bit, and catches a wrong gradient */
        bp_tensor saved = bp_tensor_new(in, out);
        memcpy(saved.data, n.W.data, (size_t)(in * out) * sizeof(bp_real));
        linear_loss(&n);
        bp_mse_backward(&n.z, &n.y, &dz);
        bp_linear_backward(&n.x, &n.W, &dz, NULL, &dW, NULL);
        CHECK(bp_gradcheck(linear_loss, &n, &n.W, &dW, eps) < tol);
        CHECK(memcmp(saved.data, n.W.data, (size_t)(in * out) * sizeof(bp_real)) == 0);
        dW.data[4] *= (bp_real)1.01; /* a 1% error in one element */
        e = bp_gradcheck(linear_loss, &n, &n.W, &dW, eps);
        CHECK(e > 0.005 && e < 0.02);
        dW.data[4] = -dW.data[4];
        CHECK(bp_gradcheck(linear_loss, &n, &n.W, &dW, eps) > 1);
        bp_tensor_free(&saved);
    }
    EXPECT_NO_ERROR();
    e = bp_gradcheck(linear_loss, &n, &n.W, &db, eps);
    EXPECT_ERROR("bp_gradcheck", "param is 5x3 but grad is 1x3");
    CHECK(e == (bp_real)HUGE_VAL);
    e = bp_gradcheck(NULL, &n, &n.W, &dW, eps);
    EXPECT_ERROR("bp_gradcheck", "loss is NULL");
    e = bp_gradcheck(linear_loss, &n, &n.W, &dW, 0);
    EXPECT_ERROR("bp_gradcheck", "eps", "5x3");
    e = bp_gradcheck(linear_loss, &n, &n.W, &n.W, eps);
    EXPECT_ERROR("bp_gradcheck", "shares memory");
    CHECK(e == (bp_real)HUGE_VAL);

    bp_tensor_free(&n.x);
    bp_tensor_free(&n.W);
    bp_tensor_free(&n.b);
    bp_tensor_free(&n.y);
    bp_tensor_free(&n.z);
    bp_tensor_free(&n.a);
    bp_tensor_free(&dz);
    bp_tensor_free(&dx);
    bp_tensor_free(&dW);
    bp_tensor_free(&db);
}

/* ---- gradient checks: sigmoid, tanh, softmax + cross-entropy, and a two-layer classifier ----------- */

/* L = mse(act(z), y), checked with respect to z; act is sigmoid (0) or tanh (1) */
typedef struct act_net {
    bp_tensor z, a, y;
    int use_tanh;
} act_net;

static bp_real act_loss(void *ctx)
{
    act_net *n = (act_net *)ctx;
    if (n->use_tanh) bp_tanh_forward(&n->z, &n->a);
    else bp_sigmoid_forward(&n->z, &n->a);
    return bp_mse_forward(&n->a, &n->y);
}

/* L = softmax_xent(logits, labels), checked with respect to the logits */
typedef struct xent_net {
    bp_tensor logits, probs;
    int labels[16];
} xent_net;

static bp_real xent_loss(void *ctx)
{
    xent_net *n = (xent_net *)ctx;
    return bp_softmax_xent_forward(&n->logits, n->labels, &n->probs);
}

static void test_gradcheck_activations(void)
{
    const int shapes[][2] = {{1, 1}, {3, 4}, {7, 2}, {2, 9}};
    const bp_real eps = GRADCHECK_EPS;
    const double tol = GRADCHECK_TOL;
    bp_rng rng;
    int s, which, i;
    current_test = "gradcheck sigmoid, tanh";
    bp_rng_seed(&rng, 31);
    for (which = 0; which < 2; which++)
        for (s = 0; s < 4; s++) {
            act_net n;
            bp_tensor d;
            bp_real e;
            n.use_tanh = which;
            n.z = bp_tensor_new(shapes[s][0], shapes[s][1]);
            n.a = bp_tensor_new(shapes[s][0], shapes[s][1]);
            n.y = bp_tensor_new(shapes[s][0], shapes[s][1]);
            d = bp_tensor_new(shapes[s][0], shapes[s][1]);
            bp_tensor_randn(&n.z, &rng, 1);
            bp_tensor_randn(&n.y, &rng, 1);
            for (i = 0; i < n.z.rows * n.z.cols; i++) /* |z| <= 2: off the flat tails, where dz is tiny */
                if (fabs((double)n.z.data[i]) > 2) n.z.data[i] = n.z.data[i] > 0 ? 2 : -2;
            act_loss(&n);
            for (i = 0; i < n.z.rows * n.z.cols; i++) { /* |a - y| >= 0.25: no gradient element near 0 */
                bp_real gap = (bp_real)0.25 + (bp_real)fabs((double)n.y.data[i]);
                n.y.data[i] = n.a.data[i] + (n.y.data[i] < 0 ? -gap : gap);
            }
            bp_mse_backward(&n.a, &n.y, &d);
            if (which) bp_tanh_backward(&n.a, &d, &d); /* from the forward's output a, in place */
            else bp_sigmoid_backward(&n.a, &d, &d);
            e = bp_gradcheck(act_loss, &n, &n.z, &d, eps);
            if (!(e < tol)) printf("  %s %dx%d dz: %g\n", which ? "tanh" : "sigmoid", n.z.rows, n.z.cols, (double)e);
            CHECK(e < tol);
            bp_tensor_free(&n.z);
            bp_tensor_free(&n.a);
            bp_tensor_free(&n.y);
            bp_tensor_free(&d);
        }
    EXPECT_NO_ERROR();
}

static void test_gradcheck_softmax_xent(void)
{
    /* batch x classes; one class (a constant loss of 0, gradient 0) included */
    const int shapes[][2] = {{1, 2}, {4, 3}, {2, 10}, {3, 1}, {8, 4}};
    const bp_real eps = GRADCHECK_EPS;
    const double tol = GRADCHECK_TOL;
    bp_rng rng;
    int s, r;
    current_test = "gradcheck softmax xent";
    bp_rng_seed(&rng, 41);
    for (s = 0; s < 5; s++) {
        xent_net n;
        bp_tensor d;
        bp_real e;
        n.logits = bp_tensor_new(shapes[s][0], shapes[s][1]);
        n.probs = bp_tensor_new(shapes[s][0], shapes[s][1]);
        d = bp_tensor_new(shapes[s][0], shapes[s][1]);
        bp_tensor_randn(&n.logits, &rng, 1); /* no probability tiny: small elements show rounding most */
        for (r = 0; r < shapes[s][0]; r++) n.labels[r] = (int)(bp_rng_next_u64(&rng) % (uint64_t)shapes[s][1]);
        xent_loss(&n);
        bp_softmax_xent_backward(&n.probs, n.labels, &d);
        e = bp_gradcheck(xent_loss, &n, &n.logits, &d, eps);
        if (!(e < tol)) printf("  xent %dx%d dlogits: %g\n", shapes[s][0], shapes[s][1], (double)e);
        CHECK(e < tol);
        bp_tensor_free(&n.logits);
        bp_tensor_free(&n.probs);
        bp_tensor_free(&d);
    }
    EXPECT_NO_ERROR();
}

/* A classifier: x -> Linear(W1, b1) -> sigmoid or tanh -> Linear(W2, b2) -> softmax + cross-entropy */
typedef struct mlp {
    bp_tensor x, W1, b1, z1, a1, W2, b2, z2, probs;
    int labels[8];
    int use_tanh;
} mlp;

static bp_real mlp_loss(void *ctx)
{
    mlp *n = (mlp *)ctx;
    bp_linear_forward(&n->x, &n->W1, &n->b1, &n->z1);
    if (n->use_tanh) bp_tanh_forward(&n->z1, &n->a1);
    else bp_sigmoid_forward(&n->z1, &n->a1);
    bp_linear_forward(&n->a1, &n->W2, &n->b2, &n->z2);
    return bp_softmax_xent_forward(&n->z2, n->labels, &n->probs);
}

static void test_gradcheck_classifier(void)
{
    const int batch = 3, in = 4, hidden = 5, classes = 3;
    const bp_real eps = GRADCHECK_EPS;
    const double tol = GRADCHECK_TOL;
    bp_tensor dz2, da1, dz1, dx, dW1, db1, dW2, db2;
    bp_rng rng;
    mlp n;
    int i;
    current_test = "gradcheck classifier";
    bp_rng_seed(&rng, 7);
    n.x = bp_tensor_new(batch, in);
    n.W1 = bp_tensor_new(in, hidden);
    n.b1 = bp_tensor_new(1, hidden);
    n.z1 = bp_tensor_new(batch, hidden);
    n.a1 = bp_tensor_new(batch, hidden);
    n.W2 = bp_tensor_new(hidden, classes);
    n.b2 = bp_tensor_new(1, classes);
    n.z2 = bp_tensor_new(batch, classes);
    n.probs = bp_tensor_new(batch, classes);
    dz2 = bp_tensor_new(batch, classes);
    da1 = bp_tensor_new(batch, hidden);
    dz1 = bp_tensor_new(batch, hidden);
    dx = bp_tensor_new(batch, in);
    dW1 = bp_tensor_new(in, hidden);
    db1 = bp_tensor_new(1, hidden);
    dW2 = bp_tensor_new(hidden, classes);
    db2 = bp_tensor_new(1, classes);
    randomize(&n.x, &rng);
    randomize(&n.b1, &rng);
    randomize(&n.b2, &rng);
    for (i = 0; i < batch; i++) n.labels[i] = i % classes;
    for (n.use_tanh = 0; n.use_tanh < 2; n.use_tanh++) {
        const char *act = n.use_tanh ? "tanh" : "sigmoid";
        bp_tensor *params[5], *grads[5];
        const char *names[5] = {"dW1", "db1", "dW2", "db2", "dx"};
        int k;
        if (n.use_tanh) bp_init_xavier(&n.W1, &rng);
        else bp_init_he(&n.W1, &rng);
        bp_init_xavier(&n.W2, &rng);
        mlp_loss(&n);
        /* the backward pass, the chain rule from the loss back to the input */
        bp_softmax_xent_backward(&n.probs, n.labels, &dz2);
        bp_linear_backward(&n.a1, &n.W2, &dz2, &da1, &dW2, &db2);
        if (n.use_tanh) bp_tanh_backward(&n.a1, &da1, &dz1);
        else bp_sigmoid_backward(&n.a1, &da1, &dz1);
        bp_linear_backward(&n.x, &n.W1, &dz1, &dx, &dW1, &db1);
        params[0] = &n.W1;
        grads[0] = &dW1;
        params[1] = &n.b1;
        grads[1] = &db1;
        params[2] = &n.W2;
        grads[2] = &dW2;
        params[3] = &n.b2;
        grads[3] = &db2;
        params[4] = &n.x;
        grads[4] = &dx;
        for (k = 0; k < 5; k++) {
            bp_real e;
            /* The check is only as good as the smallest gradient element: in float the loss's own rounding
               (~1e-7) over the step 2*eps is ~5e-6, 1% of an element of 5e-4.  With this seed every element
               is above 1e-3 (with many other seeds some element of dx or dW1 is not, and float reports a few
               percent although the gradient is right); double has room to spare either way. */
            int i2, small = 0;
            for (i2 = 0; i2 < grads[k]->rows * grads[k]->cols; i2++) small += fabs((double)grads[k]->data[i2]) < 1e-3;
            CHECK(small == 0);
            e = bp_gradcheck(mlp_loss, &n, params[k], grads[k], eps);
            if (!(e < tol)) printf("  %s classifier %s: %g\n", act, names[k], (double)e);
            CHECK(e < tol);
        }
    }
    EXPECT_NO_ERROR();
    bp_tensor_free(&n.x);
    bp_tensor_free(&n.W1);
    bp_tensor_free(&n.b1);
    bp_tensor_free(&n.z1);
    bp_tensor_free(&n.a1);
    bp_tensor_free(&n.W2);
    bp_tensor_free(&n.b2);
    bp_tensor_free(&n.z2);
    bp_tensor_free(&n.probs);
    bp_tensor_free(&dz2);
    bp_tensor_free(&da1);
    bp_tensor_free(&dz1);
    bp_tensor_free(&dx);
    bp_tensor_free(&dW1);
    bp_tensor_free(&db1);
    bp_tensor_free(&dW2);
    bp_tensor_free(&db2);
}

/* ---- the numpy fixture: the textbook walkthrough, computed by numpy ------------------------------------ */

/* Reads the block `name rows cols` + values from tests/fixtures/walkthrough.txt into a new tensor. */
static int read_block(FILE *f, const char *name, bp_tensor *t)
{
    char line[4096], got[64];
    int rows, cols, i;
    while (fgets(line, sizeof line, f))
        if (line[0] != '#' && line[0] != '\n') break;
    if (sscanf(line, "%63s %d %d", got, &rows, &cols) != 3 || strcmp(got, name) != 0) return 0;
    *t = bp_tensor_new(rows, cols);
    for (i = 0; i < rows * cols; i++) {
        double v;
        if (fscanf(f, "%lf", &v) != 1) return 0;
        t->data[i] = (bp_real)v;
    }
    return 1;
}

static void test_numpy_fixture(const char *dir)
{
    static const char *names[] = {"x", "y", "W", "b", "z", "a", "loss", "dW", "db", "dx"};
    bp_tensor t[10], z, a, dz, dx, dW, db;
    char path[512];
    FILE *f;
    int i, ok = 1;
    bp_real loss;
#ifdef BACKPROP_DOUBLE
    const double tol = 1e-12;
#else
    const double tol = 1e-5;
#endif
    current_test = "numpy fixture";
    snprintf(path, sizeof path, "%s/walkthrough.txt", dir);
    f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    for (i = 0; i < 10; i++) ok &= read_block(f, names[i], &t[i]);
    fclose(f);
    CHECK(ok);
    if (!ok) return;
    z = bp_tensor_new(8, 2);
    a = bp_tensor_new(8, 2);
    dz = bp_tensor_new(8, 2);
    dx = bp_tensor_new(8, 4);
    dW = bp_tensor_new(4, 2);
    db = bp_tensor_new(1, 2);
    bp_linear_forward(&t[0], &t[2], &t[3], &z);
    bp_relu_forward(&z, &a);
    loss = bp_mse_forward(&a, &t[1]);
    bp_mse_backward(&a, &t[1], &dz);
    bp_relu_backward(&z, &dz, &dz);
    bp_linear_backward(&t[0], &t[2], &dz, &dx, &dW, &db);
    CHECK(fabs((double)loss - (double)t[6].data[0]) <= tol * fabs((double)t[6].data[0]));
    /* relative to each array's largest element */
    {
        bp_tensor *mine[] = {&z, &a, &dW, &db, &dx};
        int theirs[] = {4, 5, 7, 8, 9}, k;
        for (k = 0; k < 5; k++) {
            double scale = 0, worst = 0;
            int n = (int)bp__count(mine[k]);
            CHECK(bp__same_shape(mine[k], &t[theirs[k]]));
            for (i = 0; i < n; i++)
                if (fabs((double)t[theirs[k]].data[i]) > scale) scale = fabs((double)t[theirs[k]].data[i]);
            for (i = 0; i < n; i++) {
                double err = fabs((double)mine[k]->data[i] - (double)t[theirs[k]].data[i]);
                if (err > worst) worst = err;
            }
            if (!(worst <= tol * scale)) printf("  %s differs from numpy by %g\n", names[theirs[k]], worst);
            CHECK(worst <= tol * scale);
        }
    }
    for (i = 0; i < 10; i++) bp_tensor_free(&t[i]);
    bp_tensor_free(&z);
    bp_tensor_free(&a);
    bp_tensor_free(&dz);
    bp_tensor_free(&dx);
    bp_tensor_free(&dW);
    bp_tensor_free(&db);
}

/* ---- .npy files: numpy's files load exactly, malformed ones are refused cleanly -------------------- */

/* The directory the suite writes its scratch files into (run.sh runs from the repository root). */
#define SCRATCH "build/test"

/* The whole file in a malloc'd buffer (the test's own malloc, not the library's); NULL if unreadable. */
static unsigned char *slurp(const char *path, long *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (*size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = (unsigned char *)malloc((size_t)*size + 1);
    if (buf && fread(buf, 1, (size_t)*size, f) != (size_t)*size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static int same_file_bytes(const char *a, const char *b)
{
    long na = -1, nb = -2;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, (size_t)na) == 0;
    if (!same) printf("  %s (%ld bytes) and %s (%ld bytes) differ\n", a, na, b, nb);
    free(x);
    free(y);
    return same;
}

/* tests/fixtures/npy/expected.txt: every good file, the values np.load reads from it */
static void test_npy_load_good(const char *dir)
{
    char path[512], line[4096], name[64];
    FILE *f;
    int files = 0;
    current_test = "npy load";
    snprintf(path, sizeof path, "%s/npy/expected.txt", dir);
    f = fopen(path, "r");
    CHECK(f != NULL);
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        int rows, cols, i, ok = 1, rc;
        long mallocs = test_mallocs, frees = test_frees;
        bp_tensor t = {5, 5, NULL};
        if (line[0] == '#' || sscanf(line, "%63s %d %d", name, &rows, &cols) != 3) continue;
        snprintf(path, sizeof path, "%s/npy/%s", dir, name);
        rc = bp_tensor_load_npy(&t, path);
        if (rc != 0) printf("  %s: %s\n", name, bp_failure_reason());
        ok = rc == 0 && t.rows == rows && t.cols == cols && (rows * cols == 0) == (t.data == NULL);
        ok &= bp_failure_reason()[0] == 0;
        for (i = 0; i < rows * cols; i++) {
            double v;
            bp_real want;
            if (fscanf(f, "%lf", &v) != 1) {
                ok = 0;
                break;
            }
            want = (bp_real)v; /* exact for a float32 file; a float build rounds float64 values like this */
            if (ok && memcmp(&t.data[i], &want, sizeof want) != 0) { /* bits: -0.0 must stay -0.0 */
                printf("  %s element %d: %.17g, numpy %.17g\n", name, i, (double)t.data[i], (double)want);
                ok = 0;
            }
        }
        if (!ok) printf("  %s failed\n", name);
        CHECK(ok);
        bp_tensor_free(&t);
        CHECK(test_mallocs - mallocs == test_frees - frees); /* the header buffer freed, the data ours */
        files++;
    }
    fclose(f);
    CHECK(files == 10);
    EXPECT_NO_ERROR();
}

static void test_npy_load_bad(const char *dir)
{
    /* each malformed file (written by gen_fixtures.py) and a word its failure reason must contain */
    static const char *const bad[][2] = {
        {"empty.npy", "not a .npy"},                /* 0 bytes */
        {"truncated_data.npy", "truncated"},        /* 3x4 float64 less its last 4 bytes */
        {"truncated_header.npy", "truncated"},      /* the first 40 bytes of a file */
        {"bad_magic.npy", "not a .npy"},            /* \x93NUMPX */
        {"not_npy.npy", "not a .npy"},              /* a CSV file */
        {"int64.npy", "dtype '<i8'"},               /* np.save of an int64 array */
        {"f2.npy", "dtype '<f2'"},                  /* float16 */
        {"3d.npy", "3-D"},                          /* shape (2, 2, 2) */
        {"0d.npy", "0-D"},                          /* np.save(np.float64(3.0)): shape () */
        {"huge_shape.npy", "INT_MAX"},              /* claims (100000, 100000) */
#if SIZE_MAX > 0xffffffffu
        {"big_shape_no_data.npy", "truncated"},     /* claims (40000, 40000): refused before allocating */
#else /* 32-bit size_t: its 1.6e9 elements' bytes do not fit size_t, which is checked first */
        {"big_shape_no_data.npy", "size_t can count"},
#endif
        {"trailing.npy", "more bytes"},             /* 8 bytes after the data (the only one found after reading) */
        {"bad_dict.npy", "malformed"},              /* a comma missing in the header dict */
        {"not_dict.npy", "not a dict"},             /* descr=<f8 shape=3x4 */
        {"bad_version.npy", "version 4.0"},         /* format version 4.0 */
        {"missing_shape.npy", "lacks 'shape'"},     /* no 'shape' key */
        {"bad_fortran.npy", "fortran_order"},       /* 'fortran_order': 0 */
        {"negative_shape.npy", "shape"},            /* (-3, 4) */
        {"no_such_file.npy", "cannot open"},        /* not there at all */
        /* REGRESSION: an unknown key after 'shape' was reported as "key 'zzz' appears twice" */
        {"extra_key.npy", "unexpected key 'zzz'"},
    };
    char path[512];
    int k;
    current_test = "npy load refuses malformed files";
    for (k = 0; k < (int)(sizeof bad / sizeof *bad); k++) {
        bp_real sentinel = 7;
        bp_tensor t;
        long mallocs = test_mallocs, frees = test_frees;
        const char *reason;
        int rc, ok;
        t.rows = 7; /* whatever t held is overwritten, never freed */
        t.cols = 9;
        t.data = &sentinel;
        snprintf(path, sizeof path, "%s/npy/%s", dir, bad[k][0]);
        rc = bp_tensor_load_npy(&t, path);
        reason = bp_failure_reason();
        ok = rc == -1 && t.data == NULL && t.rows == 0 && t.cols == 0 && errors_seen == 0;
        ok &= test_mallocs - mallocs == test_frees - frees; /* nothing leaked */
        if (strcmp(bad[k][0], "trailing.npy") != 0) ok &= test_mallocs - mallocs <= 1; /* the header only */
        ok &= strncmp(reason, "bp_tensor_load_npy: ", 20) == 0 && strstr(reason, path) != NULL &&
              strstr(reason, bad[k][1]) != NULL && !strchr(reason, '\n');
        if (!ok)
            printf("  %s: returned %d, t %dx%d, %d handler calls, %ld mallocs %ld frees, reason \"%s\" "
                   "(wanted \"%s\")\n",
                   bad[k][0], rc, t.rows, t.cols, errors_seen, test_mallocs - mallocs, test_frees - frees, reason,
                   bad[k][1]);
        CHECK(ok);
        errors_seen = 0;
    }
    current_test = "npy load refuses malformed files";

    /* bad arguments are programming errors: the handler */
    {
        bp_tensor t = {3, 3, NULL};
        CHECK(bp_tensor_load_npy(NULL, "x.npy") == -1);
        EXPECT_ERROR("bp_tensor_load_npy", "t is NULL");
        CHECK(bp_tensor_load_npy(&t, NULL) == -1);
        EXPECT_ERROR("bp_tensor_load_npy", "path is NULL");
        CHECK(t.rows == 0 && t.cols == 0 && t.data == NULL);
    }
}

/* Writes a .npy file by hand: magic, version major.0, the header length (2 bytes for 1.0, else 4), the
   header text as given (not padded: the loader does not insist on numpy's alignment), data_bytes bytes. */
static void write_npy(const char *path, int major, const char *header, size_t data_bytes)
{
    FILE *f = fopen(path, "wb");
    size_t n = strlen(header), i;
    if (!f) return;
    fwrite("\x93NUMPY", 1, 6, f);
    fputc(major, f);
    fputc(0, f);
    fputc((int)(n & 0xff), f);
    fputc((int)(n >> 8 & 0xff), f);
    if (major > 1) {
        fputc((int)(n >> 16 & 0xff), f);
        fputc((int)(n >> 24 & 0xff), f);
    }
    fwrite(header, 1, n, f);
    for (i = 0; i < data_bytes; i++) fputc(0x3f, f); /* float32 bytes 3f3f3f3f = 0.747..., float64 also finite */
    fclose(f);
}

/* The header parser, one rule at a time: headers numpy would not write but might (other quotes, no trailing
   comma, any whitespace) load; each kind of malformed header is refused with its own reason. */
static void test_npy_headers(void)
{
    static const struct {
        const char *header;
        int major;
        size_t data_bytes;
        const char *reason; /* NULL: must load, as rows x cols */
        int rows, cols;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)}", 1, 24, NULL, 2, 3}, /* no trailing comma */
        {"{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (3,), }\n", 1, 24, NULL, 1, 3},
        {"{ 'shape' :\t( 2 ,\n1 ) ,'fortran_order':True,'descr':'>f4' }", 3, 8, NULL, 2, 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }", 1, 0, NULL, 1, 0},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 0), }", 2, 0, NULL, 3, 0},
        {"{'descr': 5, 'fortran_order': False, 'shape': (2,), }", 1, 8, "descr is not a short string", 0, 0},
        {"{'descr': '<f4f4f4f4f4f4f4f4f4', 'fortran_order': False, 'shape': (2,), }", 1, 8, "descr is not", 0, 0},
        {"{'descr': '<f4", 1, 0, "descr is not a short string", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", 1, 24, "not a tuple", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2 3), }", 1, 24, "shape tuple is malformed", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (,), }", 1, 0, "sizes from 0", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 1, 0, "sizes from 0", 0, 0},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 1, 8, "appears twice", 0, 0},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (2,), }", 1, 8, "dict is malformed", 0, 0},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", 1, 8, "dict is malformed", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", 1, 8, "unexpected text after", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, }", 1, 8, "lacks 'shape'", 0, 0},
        {"{'fortran_order': False, 'shape': (2,), }", 1, 8, "lacks 'descr'", 0, 0},
        {"{'descr': '<f4', 'shape': (2,), }", 1, 8, "lacks 'fortran_order'", 0, 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), '\x7f\x01': 1}", 1, 8, "key '?" "?'", 0, 0}, /* control characters shown as ? */
    };
    const char *path = SCRATCH "/header.npy";
    int k;
    current_test = "npy header parser";
    for (k = 0; k < (int)(sizeof cases / sizeof *cases); k++) {
        bp_tensor t = {0, 0, NULL};
        long mallocs = test_mallocs, frees = test_frees;
        int rc, ok;
        write_npy(path, cases[k].major, cases[k].header, cases[k].data_bytes);
        rc = bp_tensor_load_npy(&t, path);
        if (cases[k].reason)
            ok = rc == -1 && strstr(bp_failure_reason(), cases[k].reason) != NULL &&
                 !strchr(bp_failure_reason(), '\n') && t.data == NULL && t.rows == 0;
        else
            ok = rc == 0 && t.rows == cases[k].rows && t.cols == cases[k].cols;
        if (!ok)
            printf("  header %s: returned %d, %dx%d, \"%s\" (wanted %s)\n", cases[k].header, rc, t.rows, t.cols,
                   bp_failure_reason(), cases[k].reason ? cases[k].reason : "success");
        CHECK(ok);
        bp_tensor_free(&t);
        CHECK(test_mallocs - mallocs == test_frees - frees);
    }
    /* the fixed part of the file */
    {
        FILE *f = fopen(path, "wb");
        bp_tensor t = {0, 0, NULL};
        if (f) {
            fwrite("\x93NUMPY\x02\x00\x10\x00\x00", 1, 11, f); /* 2.0 needs 4 length bytes: only 3 */
            fclose(f);
        }
        CHECK(bp_tensor_load_npy(&t, path) == -1 && strstr(bp_failure_reason(), "truncated in the header"));
        f = fopen(path, "wb");
        if (f) {
            fwrite("\x93NUMPY\x02\x00\x71\x11\x01\x00", 1, 12, f); /* a header of 70001 bytes */
            fclose(f);
        }
        CHECK(bp_tensor_load_npy(&t, path) == -1 && strstr(bp_failure_reason(), "more than 65536"));
        f = fopen(path, "wb");
        if (f) {
            fwrite("\x93NUMPY\x01\x01\x10\x00", 1, 10, f); /* version 1.1 does not exist */
            fclose(f);
        }
        CHECK(bp_tensor_load_npy(&t, path) == -1 && strstr(bp_failure_reason(), "version 1.1"));
    }
    EXPECT_NO_ERROR();
    remove(path);
}

#ifdef BP_TEST_LARGE_FILES
/* REGRESSION (Windows, where long is 32 bits): ftell failed past 2 GiB, so the size check was skipped and a
   3 GiB file whose header claims 40000x40000 doubles was allocated (6.4 GB) and read before it was found
   truncated.  Needs sparse files, or it writes 3 GiB: make cross-test defines this for its Windows build,
   which runs under wine on Linux. */
static void test_npy_load_large_file(const char *dir)
{
    const char *big = SCRATCH "/big_3gib.npy";
    char path[512];
    unsigned char header[128];
    size_t header_len;
    long mallocs = test_mallocs, frees = test_frees;
    bp_tensor t = {0, 0, NULL};
    FILE *in, *out;
    int ok;
    current_test = "npy load: a 3 GiB file shorter than its header says";
    snprintf(path, sizeof path, "%s/npy/big_shape_no_data.npy", dir);
    in = fopen(path, "rb");
    out = fopen(big, "wb");
    CHECK(in && out);
    if (!in || !out) return;
    header_len = fread(header, 1, sizeof header, in);
    fclose(in);
#ifdef _WIN32
    ok = fwrite(header, 1, header_len, out) == header_len && _fseeki64(out, (3LL << 30) - 1, SEEK_SET) == 0;
#else
    ok = fwrite(header, 1, header_len, out) == header_len && fseek(out, (long)((3LL << 30) - 1), SEEK_SET) == 0;
#endif
    ok &= fputc(0, out) != EOF;
    ok &= fclose(out) == 0;
    CHECK(ok);
    CHECK(bp_tensor_load_npy(&t, big) == -1 && t.data == NULL);
    CHECK(strstr(bp_failure_reason(), "truncated: the header says 40000x40000 float64") != NULL);
    if (!strstr(bp_failure_reason(), "header says")) printf("  %s\n", bp_failure_reason());
    CHECK(test_mallocs - mallocs <= 1 && test_mallocs - mallocs == test_frees - frees); /* the header only */
    CHECK(errors_seen == 0);
    remove(big);
}
#endif

/* Is there no file at path? */
static int fopen_fails(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f == NULL;
}

static void test_npy_save(const char *dir)
{
    const char *roundtrip = SCRATCH "/roundtrip.npy";
    char path[512];
    bp_rng rng;
    long mallocs, frees;
    int shape, ok;
    current_test = "npy save";
    bp_rng_seed(&rng, 61);

    /* save, load: the same bits, for several shapes, with -0, infinity and the smallest subnormal */
    for (shape = 0; shape < 4; shape++) {
        const int shapes[][2] = {{1, 1}, {1, 7}, {0, 4}, {3, 5}};
        bp_tensor t = bp_tensor_new(shapes[shape][0], shapes[shape][1]), back = {0, 0, NULL};
        int n = shapes[shape][0] * shapes[shape][1];
        bp_tensor_randn(&t, &rng, 1);
        if (n >= 7) {
            t.data[1] = -(bp_real)0.0;
            t.data[2] = (bp_real)HUGE_VAL;
            t.data[3] = -(bp_real)HUGE_VAL;
            t.data[4] = sizeof(bp_real) == 8 ? (bp_real)4.9406564584124654e-324 : (bp_real)1.4012984643e-45;
            t.data[5] = sizeof(bp_real) == 8 ? (bp_real)DBL_MAX : (bp_real)FLT_MAX;
        }
        mallocs = test_mallocs;
        frees = test_frees;
        ok = bp_tensor_save_npy(&t, roundtrip) == 0 && bp_failure_reason()[0] == 0;
        ok &= test_mallocs - mallocs == 1 && test_frees - frees == 1; /* only the name of path.part */
        ok &= fopen_fails(SCRATCH "/roundtrip.npy.part");               /* renamed away */
        ok &= bp_tensor_load_npy(&back, roundtrip) == 0 && same_bits(&back, &t);
        if (!ok) printf("  round trip %dx%d: %s\n", t.rows, t.cols, bp_failure_reason());
        CHECK(ok);
        bp_tensor_free(&t);
        bp_tensor_free(&back);
    }
    /* (the last one, 3x5 with -0, +-inf, the smallest subnormal and the largest finite value, stays in
       build/test/roundtrip.npy: np.load reads it, the same values) */
    EXPECT_NO_ERROR();

    /* saving over an existing file replaces it */
    {
        bp_tensor a = bp_tensor_new(2, 3), b = bp_tensor_new(4, 1), back = {0, 0, NULL};
        const char *twice = SCRATCH "/saved_twice.npy";
        fill(&a, 1);
        fill(&b, 2);
        CHECK(bp_tensor_save_npy(&a, twice) == 0 && bp_tensor_save_npy(&b, twice) == 0);
        CHECK(bp_tensor_load_npy(&back, twice) == 0 && back.rows == 4 && back.cols == 1 && all_equal(&back, 2));
        remove(twice);
        bp_tensor_free(&a);
        bp_tensor_free(&b);
        bp_tensor_free(&back);
    }

    /* the bytes numpy writes for the same array: tests/fixtures/npy/f4_c.npy (2x3) or f8_c.npy (3x4),
       written by np.save; in the float build also the empty 0x3 float32 file */
    current_test = "npy save: numpy's bytes";
    {
        static const char *const same_as_numpy[] = {
#ifdef BACKPROP_DOUBLE
            "f8_c.npy",
#else
            "f4_c.npy", "f4_empty.npy",
#endif
        };
        int k;
        for (k = 0; k < (int)(sizeof same_as_numpy / sizeof *same_as_numpy); k++) {
            char mine[512];
            bp_tensor t = {0, 0, NULL};
            snprintf(path, sizeof path, "%s/npy/%s", dir, same_as_numpy[k]);
            snprintf(mine, sizeof mine, SCRATCH "/saved_%s", same_as_numpy[k]);
            ok = bp_tensor_load_npy(&t, path) == 0 && bp_tensor_save_npy(&t, mine) == 0;
            CHECK(ok);
            CHECK(ok && same_file_bytes(mine, path));
            remove(mine);
            bp_tensor_free(&t);
        }
    }

    current_test = "npy save failures";
    {
        const char *unwritable = SCRATCH "/no_such_directory/x.npy";
        bp_tensor t = bp_tensor_new(2, 2), unallocated = {2, 2, NULL};
        fill(&t, 1);
        CHECK(bp_tensor_save_npy(&t, unwritable) == -1);
        CHECK(errors_seen == 0); /* a file problem is not a programming error: no handler */
        CHECK(strncmp(bp_failure_reason(), "bp_tensor_save_npy: ", 20) == 0 &&
              strstr(bp_failure_reason(), unwritable) != NULL && strstr(bp_failure_reason(), "cannot open") != NULL);
        CHECK(fopen_fails(unwritable));
        /* the rename fails: the path is a folder (build/test itself); the .part file is removed again */
        CHECK(bp_tensor_save_npy(&t, SCRATCH) == -1 && strstr(bp_failure_reason(), "cannot rename") != NULL);
        CHECK(errors_seen == 0 && fopen_fails(SCRATCH ".part"));
        CHECK(bp_tensor_save_npy(NULL, roundtrip) == -1);
        EXPECT_ERROR("bp_tensor_save_npy", "t is NULL");
        CHECK(bp_tensor_save_npy(&t, NULL) == -1);
        EXPECT_ERROR("bp_tensor_save_npy", "path is NULL", "2x2");
        CHECK(bp_tensor_save_npy(&unallocated, roundtrip) == -1);
        EXPECT_ERROR("bp_tensor_save_npy", "t is 2x2", "NULL");
        bp_tensor_free(&t);
    }
    /* the failure reason is cleared by the next success */
    {
        bp_tensor t = {0, 0, NULL};
        snprintf(path, sizeof path, "%s/npy/f8_c.npy", dir);
        CHECK(bp_failure_reason()[0] != 0);
        CHECK(bp_tensor_load_npy(&t, path) == 0 && bp_failure_reason()[0] == 0);
        bp_tensor_free(&t);
    }
}

/* ---- IDX files ------------------------------------------------------------------------------------ */

/* Writes an IDX file: the 4-byte magic 00 00 type ndim, the sizes big-endian, then extra bytes (if any). */
static void write_idx(const char *path, int type, int ndim, const unsigned long *sizes, const unsigned char *extra,
                      size_t extra_size)
{
    FILE *f = fopen(path, "wb");
    int i;
    if (!f) return;
    fputc(0, f);
    fputc(0, f);
    fputc(type, f);
    fputc(ndim, f);
    for (i = 0; i < ndim; i++) {
        fputc((int)(sizes[i] >> 24 & 0xff), f);
        fputc((int)(sizes[i] >> 16 & 0xff), f);
        fputc((int)(sizes[i] >> 8 & 0xff), f);
        fputc((int)(sizes[i] & 0xff), f);
    }
    if (extra_size) fwrite(extra, 1, extra_size, f);
    fclose(f);
}

static void test_idx(void)
{
    const char *path = SCRATCH "/test.idx";
    unsigned char bytes[64];
    bp_idx idx;
    int i;
    current_test = "idx load";
    for (i = 0; i < 64; i++) bytes[i] = (unsigned char)(i * 37 + 1);

    /* good files: 3-D images, 1-D labels, 2-D, and an empty one */
    {
        const unsigned long images[] = {2, 3, 4}, labels[] = {5}, matrix[] = {3, 7}, empty[] = {0, 28, 28};
        long mallocs = test_mallocs;
        write_idx(path, 0x08, 3, images, bytes, 24);
        CHECK(bp_idx_load(&idx, path) == 0 && bp_failure_reason()[0] == 0);
        CHECK(idx.ndim == 3 && idx.dims[0] == 2 && idx.dims[1] == 3 && idx.dims[2] == 4);
        CHECK(idx.data && memcmp(idx.data, bytes, 24) == 0); /* row-major, byte for byte */
        CHECK(test_mallocs - mallocs == 1);
        bp_idx_free(&idx);
        CHECK(idx.data == NULL);
        bp_idx_free(&idx); /* twice is harmless */
        bp_idx_free(NULL);
        write_idx(path, 0x08, 1, labels, bytes, 5);
        CHECK(bp_idx_load(&idx, path) == 0 && idx.ndim == 1 && idx.dims[0] == 5 && idx.dims[1] == 1 &&
              idx.dims[2] == 1 && memcmp(idx.data, bytes, 5) == 0);
        bp_idx_free(&idx);
        write_idx(path, 0x08, 2, matrix, bytes, 21);
        CHECK(bp_idx_load(&idx, path) == 0 && idx.ndim == 2 && idx.dims[0] == 3 && idx.dims[1] == 7 &&
              idx.dims[2] == 1 && memcmp(idx.data, bytes, 21) == 0);
        bp_idx_free(&idx);
        mallocs = test_mallocs;
        write_idx(path, 0x08, 3, empty, NULL, 0);
        CHECK(bp_idx_load(&idx, path) == 0 && idx.ndim == 3 && idx.dims[0] == 0 && idx.dims[1] == 28 &&
              idx.data == NULL && test_mallocs == mallocs); /* nothing to allocate */
        bp_idx_free(&idx);
        EXPECT_NO_ERROR();
    }

    /* bad files: -1, idx zeroed, one line naming the function, the file and the problem; no handler call,
       nothing leaked, nothing allocated before the sizes are known to match the file */
    current_test = "idx load refuses malformed files";
    {
        static const unsigned long big[] = {2147483648UL}, product[] = {65536, 65536, 1}, mnist[] = {60000, 28, 28},
                                   two[] = {2, 3}, five[] = {5}, four[] = {1, 1, 1, 1};
        static const struct {
            const char *what, *reason;
            int type, ndim, raw_size;          /* raw_size >= 0: write only the first raw_size bytes of raw */
            const unsigned long *sizes;
            size_t data;                       /* data bytes after the header */
            unsigned char raw[8];
        } bad[] = {
            {"empty file", "truncated", 0, 0, 0, NULL, 0, {0}},
            {"3 bytes", "truncated", 0, 0, 3, NULL, 0, {0, 0, 8}},
            {"gzip", "gzip", 0, 0, 8, NULL, 0, {0x1f, 0x8b, 8, 0, 0, 0, 0, 0}},
            {"not IDX (text)", "not an IDX file", 0, 0, 8, NULL, 0, {'h', 'e', 'l', 'l', 'o', '!', '\n', 0}},
            {"int32 values", "type 0x0c", 0x0c, 1, -1, five, 20, {0}},
            {"float values", "type 0x0d", 0x0d, 1, -1, five, 20, {0}},
            {"no sizes", "0 sizes", 0x08, 0, -1, NULL, 4, {0}},
            {"4 sizes", "4 sizes", 0x08, 4, -1, four, 1, {0}},
            {"header cut short", "truncated in the header", 0, 0, 7, NULL, 0, {0, 0, 8, 2, 0, 0, 0}},
            {"size above INT_MAX", "INT_MAX", 0x08, 1, -1, big, 0, {0}},
            {"product above INT_MAX", "INT_MAX", 0x08, 3, -1, product, 0, {0}},
            {"MNIST's header, no data", "truncated", 0x08, 3, -1, mnist, 50, {0}},
            {"data cut short", "truncated", 0x08, 2, -1, two, 5, {0}},
            {"bytes after the data", "more bytes", 0x08, 2, -1, two, 7, {0}},
        };
        int k;
        for (k = 0; k < (int)(sizeof bad / sizeof *bad); k++) {
            long mallocs = test_mallocs;
            const char *reason;
            int rc, ok;
            if (bad[k].raw_size >= 0) {
                FILE *f = fopen(path, "wb");
                if (f) {
                    fwrite(bad[k].raw, 1, (size_t)bad[k].raw_size, f);
                    fclose(f);
                }
            } else {
                write_idx(path, bad[k].type, bad[k].ndim, bad[k].sizes, bytes, bad[k].data);
            }
            idx.ndim = 3; /* garbage: overwritten */
            idx.data = bytes;
            rc = bp_idx_load(&idx, path);
            reason = bp_failure_reason();
            ok = rc == -1 && idx.ndim == 0 && idx.dims[0] == 0 && idx.data == NULL && errors_seen == 0;
            ok &= test_mallocs == mallocs; /* refused before allocating */
            ok &= strncmp(reason, "bp_idx_load: ", 13) == 0 && strstr(reason, path) != NULL &&
                  strstr(reason, bad[k].reason) != NULL && !strchr(reason, '\n');
            if (!ok)
                printf("  %s: returned %d, ndim %d, %d handler calls, reason \"%s\" (wanted \"%s\")\n", bad[k].what,
                       rc, idx.ndim, errors_seen, reason, bad[k].reason);
            CHECK(ok);
            errors_seen = 0;
        }
        CHECK(bp_idx_load(&idx, SCRATCH "/no_such_file.idx") == -1 && strstr(bp_failure_reason(), "cannot open"));
        CHECK(errors_seen == 0);
    }

    /* bad arguments are programming errors: the handler */
    current_test = "idx load arguments";
    CHECK(bp_idx_load(NULL, path) == -1);
    EXPECT_ERROR("bp_idx_load", "idx is NULL");
    idx.ndim = 2;
    CHECK(bp_idx_load(&idx, NULL) == -1);
    EXPECT_ERROR("bp_idx_load", "path is NULL");
    CHECK(idx.ndim == 0 && idx.data == NULL);
    remove(path);
}

/* ---- non-finite values ----------------------------------------------------------------------------- */

static void test_all_finite(void)
{
    bp_tensor t = bp_tensor_new(3, 4), empty = {0, 5, NULL}, unallocated = {2, 2, NULL};
    current_test = "all finite";
    CHECK(bp_tensor_all_finite(&t) == 1);
    t.data[11] = sizeof(bp_real) == 8 ? (bp_real)DBL_MAX : (bp_real)FLT_MAX; /* huge is still finite */
    t.data[0] = -(bp_real)0.0;
    CHECK(bp_tensor_all_finite(&t) == 1);
    t.data[7] = (bp_real)NAN;
    CHECK(bp_tensor_all_finite(&t) == 0);
    t.data[7] = (bp_real)HUGE_VAL;
    CHECK(bp_tensor_all_finite(&t) == 0);
    t.data[7] = -(bp_real)HUGE_VAL;
    CHECK(bp_tensor_all_finite(&t) == 0);
    t.data[7] = 0;
    t.data[11] = t.data[11] * 2; /* overflows to infinity */
    CHECK(bp_tensor_all_finite(&t) == 0);
    CHECK(bp_tensor_all_finite(&empty) == 1);
    EXPECT_NO_ERROR();
    CHECK(bp_tensor_all_finite(NULL) == 0);
    EXPECT_ERROR("bp_tensor_all_finite", "t is NULL");
    CHECK(bp_tensor_all_finite(&unallocated) == 0);
    EXPECT_ERROR("bp_tensor_all_finite", "2x2", "NULL");
    bp_tensor_free(&t);
}

/* ---- allocation failure ----------------------------------------------------------------------------
   Every function that allocates, run again and again with its 1st, 2nd, ... allocation failing, until a
   run makes no allocation fail.  Each failing run must report (the handler for bp_tensor_new, the failure
   reason for the file functions), return its error, leave the caller's tensors as the contract says and
   leak nothing (counted here; LeakSanitizer watches too under make sanitize). */

/* One call of an allocating function; returns its result (0 success, -1 failure).  rc_ok says whether the
   call's other promises held. */
typedef int (*alloc_case_fn)(const char *dir, int *promises_kept);

static int alloc_case_tensor_new(const char *dir, int *kept)
{
    bp_tensor t = bp_tensor_new(30, 40);
    (void)dir;
    if (!t.data) {
        *kept = errors_seen == 1 && strstr(last_error, "bp_tensor_new: out of memory") && t.rows == 0 && t.cols == 0;
        errors_seen = 0;
        return -1;
    }
    *kept = errors_seen == 0 && t.rows == 30 && all_equal(&t, 0);
    bp_tensor_free(&t);
    return 0;
}

static int alloc_case_load_npy(const char *dir, int *kept)
{
    static const char *const files[] = {"f4_c.npy", "f8_fortran.npy", "f8_v2.npy"};
    char path[512];
    int k, rc = 0;
    *kept = 1;
    for (k = 0; k < 3 && rc == 0; k++) {
        bp_tensor t = {9, 9, NULL};
        snprintf(path, sizeof path, "%s/npy/%s", dir, files[k]);
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

static int alloc_case_save_npy(const char *dir, int *kept)
{
    const char *path = SCRATCH "/alloc_sweep.npy";
    bp_tensor t = {2, 3, NULL}, back = {0, 0, NULL};
    bp_real data[6] = {1, 2, 3, 4, 5, 6};
    int rc;
    (void)dir;
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

static int alloc_case_idx(const char *dir, int *kept)
{
    const char *path = SCRATCH "/alloc_sweep.idx";
    static const unsigned long sizes[] = {4, 5};
    unsigned char bytes[20] = {1, 2, 3};
    bp_idx idx;
    int rc;
    (void)dir;
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

static void test_allocation_failure(const char *dir)
{
    static const struct {
        const char *name;
        alloc_case_fn run;
        int allocations; /* how many each makes: the sweep must find exactly these */
    } cases[] = {
        {"bp_tensor_new", alloc_case_tensor_new, 1},
        {"bp_tensor_load_npy (3 files)", alloc_case_load_npy, 6}, /* header and data, per file */
        {"bp_tensor_save_npy", alloc_case_save_npy, 1},           /* the name of path.part */
        {"bp_idx_load", alloc_case_idx, 1},
    };
    int k;
    current_test = "allocation failure sweep";
    for (k = 0; k < (int)(sizeof cases / sizeof *cases); k++) {
        long n;
        for (n = 1; n < 100; n++) {
            long live = test_mallocs - test_frees;
            int kept = 0, rc;
            test_failed_one = 0;
            test_fail_countdown = n;
            rc = cases[k].run(dir, &kept);
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

/* ---- no hidden allocation ------------------------------------------------------------------------ */

static void test_no_allocation(void)
{
    bp_tensor x = bp_tensor_new(64, 100), W = bp_tensor_new(100, 50), b = bp_tensor_new(1, 50);
    bp_tensor z = bp_tensor_new(64, 50), y = bp_tensor_new(64, 50), d = bp_tensor_new(64, 50);
    bp_tensor dx = bp_tensor_new(64, 100), dW = bp_tensor_new(100, 50), db = bp_tensor_new(1, 50);
    bp_rng rng;
    long before = test_mallocs;
    current_test = "no hidden allocation";
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

static void test_no_allocation_new(void)
{
    const int labels[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5};
    bp_tensor z = bp_tensor_new(16, 10), a = bp_tensor_new(16, 10), d = bp_tensor_new(16, 10);
    bp_tensor W = bp_tensor_new(10, 10), dW = bp_tensor_new(10, 10), s1 = bp_tensor_new(10, 10),
              s2 = bp_tensor_new(10, 10);
    bp_tensor *grads[2];
    bp_rng rng;
    long before = test_mallocs;
    current_test = "no hidden allocation (new functions)";
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
static double call_save_npy(bp_tensor *const *t) { return bp_tensor_save_npy(t[0], SCRATCH "/sweep.npy"); }

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
    {"bp_tensor_save_npy", call_save_npy, -1, 1, 0, "", {{"t", 3, 4, ARG_IN}}},
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
    current_test = "argument sweep";
    for (k = 0; k < (int)(sizeof sweep_fns / sizeof *sweep_fns); k++) sweep_function(&sweep_fns[k]);
    remove(SCRATCH "/sweep.npy");
}

/* ---- the error handler itself ------------------------------------------------------------------- */

static void other_handler(const char *message) { (void)message; }

static void test_error_handler(void)
{
    bp_error_fn prev;
    current_test = "error handler";
    prev = bp_set_error_handler(other_handler);
    CHECK(prev == record_error);
    prev = bp_set_error_handler(NULL); /* back to the default... */
    CHECK(prev == other_handler);
    prev = bp_set_error_handler(record_error); /* ...which is reported as NULL */
    CHECK(prev == NULL);
}

int main(int argc, char **argv)
{
    const char *fixtures = argc > 1 ? argv[1] : "tests/fixtures";
    bp_set_error_handler(record_error);
    printf("backprop.h tests: bp_real is %s, matmul tile %dx%d, blocks MC=%d NC=%d KC=%d\n",
           sizeof(bp_real) == 8 ? "double" : "float", BP__MR, BP__NR, BP_MATMUL_MC, BP_MATMUL_NC, BP_MATMUL_KC);
    test_tensor();
    test_rng_fixture(fixtures);
    test_rng();
    test_matmul();
    test_linear_by_hand();
    test_relu();
    test_mse();
    test_sgd();
    test_init();
    test_norm();
    test_sigmoid_tanh();
    test_softmax_xent();
    test_momentum();
    test_adam();
    test_optim_fixture(fixtures);
    test_clip();
    test_gradcheck_relu_mse();
    test_gradcheck_layers();
    test_gradcheck_activations();
    test_gradcheck_softmax_xent();
    test_gradcheck_classifier();
    test_numpy_fixture(fixtures);
    test_npy_load_good(fixtures);
    test_npy_load_bad(fixtures);
    test_npy_headers();
#ifdef BP_TEST_LARGE_FILES
    test_npy_load_large_file(fixtures);
#endif
    test_npy_save(fixtures);
    test_idx();
    test_all_finite();
    test_allocation_failure(fixtures);
    test_no_allocation();
    test_no_allocation_new();
    test_argument_sweep();
    test_error_handler();
    current_test = "no leaks";
    CHECK(test_mallocs == test_frees);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
