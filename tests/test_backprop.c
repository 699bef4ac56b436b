/* The backprop.h test suite.  Built by tests/run.sh (make test) many ways: C99 and C++, float and double,
   gcc, clang and tcc, plain -O2 and -O3 -march=native, and with tiny matmul blocks.
   Run from the repository root (it reads tests/fixtures/); prints `N passed, M failed` last.

   What is checked, and against what:
     - every forward and backward against small cases computed by hand;
     - every backward against central finite differences (bp_gradcheck), in double to 1e-7;
     - the walkthrough against numpy's textbook code (tests/fixtures/walkthrough.txt, by gen_fixtures.py);
     - the random generator against an independent Python implementation (tests/fixtures/rng.txt);
     - bp_matmul against a naive triple loop in higher precision, all four forms, with and without
       BP_ACCUMULATE, at shapes around every block and tile edge;
     - every argument check: the handler is called once, with the function's name and the shapes, and no
       output is written;
     - no heap allocation outside bp_tensor_new (a counting BP_MALLOC). */

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A counting allocator, so the tests can prove which functions allocate (only bp_tensor_new may),
   and fail on demand to test the out-of-memory path. */
static long test_mallocs, test_frees;
static int test_fail_malloc;
static void *test_malloc(size_t n)
{
    if (test_fail_malloc) return NULL;
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
#ifdef BP_TEST_FUSED_MULTIPLY_ADD
            /* built with -ffp-contract=fast: fused multiply-adds may change the last bits, as documented */
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

/* op(X)(i, j) for a stored tensor */
static double op_at(const bp_tensor *X, int trans, int i, int j)
{
    return trans ? (double)X->data[j * X->cols + i] : (double)X->data[i * X->cols + j];
}

/* Compares C (computed by bp_matmul from C0) with a long double triple loop.  The bound is the classic
   one for a dot product of length K: |error| <= K u sum_k |a_ik b_kj| (u = unit roundoff), doubled for
   the reference's own rounding where long double is no wider than bp_real. */
static int matmul_matches(const bp_tensor *C, const bp_tensor *C0, const bp_tensor *A, const bp_tensor *B,
                          int flags)
{
    int ta = (flags & BP_TRANS_A) != 0, tb = (flags & BP_TRANS_B) != 0;
    int M = C->rows, N = C->cols, K = ta ? A->rows : A->cols, i, j, k;
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            long double ref = (flags & BP_ACCUMULATE) ? (long double)C0->data[i * N + j] : 0;
            double mag = (flags & BP_ACCUMULATE) ? fabs((double)C0->data[i * N + j]) : 0, got, tol;
            for (k = 0; k < K; k++) {
                double a = op_at(A, ta, i, k), b = op_at(B, tb, k, j);
                ref += (long double)a * (long double)b;
                mag += fabs(a * b);
            }
            got = (double)C->data[i * N + j];
            tol = 2.0 * (K + 2) * (REAL_EPS / 2) * mag + DBL_MIN;
            if (!(fabs(got - (double)ref) <= tol)) {
                printf("  C(%d,%d) of %dx%dx%d flags %d: %.17g, expected %.17Lg\n", i, j, M, N, K, flags, got, ref);
                return 0;
            }
        }
    return 1;
}

static int matmul_case(bp_rng *rng, int M, int N, int K, int flags)
{
    int ta = (flags & BP_TRANS_A) != 0, tb = (flags & BP_TRANS_B) != 0, ok;
    bp_tensor A = bp_tensor_new(ta ? K : M, ta ? M : K);
    bp_tensor B = bp_tensor_new(tb ? N : K, tb ? K : N);
    bp_tensor C = bp_tensor_new(M, N), C0 = bp_tensor_new(M, N);
    long mallocs;
    randomize(&A, rng);
    randomize(&B, rng);
    randomize(&C, rng); /* garbage to be overwritten, or the start value to accumulate on */
    if (bp__count(&C)) memcpy(C0.data, C.data, bp__count(&C) * sizeof(bp_real));
    mallocs = test_mallocs;
    bp_matmul(&C, &A, &B, flags);
    ok = errors_seen == 0 && test_mallocs == mallocs && matmul_matches(&C, &C0, &A, &B, flags);
    if (!ok) printf("  matmul %dx%dx%d flags %d failed\n", M, N, K, flags);
    bp_tensor_free(&A);
    bp_tensor_free(&B);
    bp_tensor_free(&C);
    bp_tensor_free(&C0);
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
                             {200, 3, 1}, {64, 10, 256}, {97, 1, 89}, {1, 89, 97}};
    bp_rng rng;
    int form, a, b, c, ok = 1, cases = 0;
    bp_rng_seed(&rng, 2024);
    current_test = "matmul vs naive";
    for (form = 0; form < 8; form++) { /* BP_TRANS_A | BP_TRANS_B | BP_ACCUMULATE */
        for (a = 0; a < (int)(sizeof Ms / sizeof *Ms); a++)
            for (b = 0; b < (int)(sizeof Ns / sizeof *Ns); b++)
                for (c = 0; c < (int)(sizeof Ks / sizeof *Ks); c++, cases++)
                    if (Ms[a] > 0 && Ns[b] > 0) ok &= matmul_case(&rng, Ms[a], Ns[b], Ks[c], form);
        for (a = 0; a < (int)(sizeof shapes / sizeof *shapes); a++, cases++)
            ok &= matmul_case(&rng, shapes[a][0], shapes[a][1], shapes[a][2], form);
    }
    CHECK(ok);
    CHECK(cases > 1000);

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
    test_gradcheck_relu_mse();
    test_gradcheck_layers();
    test_numpy_fixture(fixtures);
    test_no_allocation();
    test_error_handler();
    current_test = "no leaks";
    CHECK(test_mallocs == test_frees);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
