/* The suite's tiny test framework, shared by every topic file (test_tensor.c, test_matmul.c, ...).
   tests/test_backprop.c includes it first, then the topic files: the whole suite is one translation unit.
   (Each topic file includes it too, so that it reads on its own; the include guard keeps it to once.)

   What is here, top to bottom:
     - a counting allocator, and backprop.h's implementation compiled with it (BP_MALLOC, BP_FREE), so
       a test can prove which functions allocate and make an allocation fail on demand;
     - CHECK(cond): one check; a false one prints `FAIL file:line [test] cond`;
     - record_error, the error handler the suite installs (it records the message and returns), and
       EXPECT_ERROR / EXPECT_NO_ERROR, which check what it recorded;
     - small helpers: make, fill, all_equal, close_to, element_count, same_shape, same_bits, randomize;
       the tolerances (against numpy and PyTorch, of bp_real, of the gradient checks);
     - files: the fixtures folder and open_fixture, the scratch folder, write_idx;
     - running tests: test_case (a name and a function), run_test, test_selected; test_backprop.c holds
       the table of tests and main. */

#ifndef BP_TEST_HARNESS_H
#define BP_TEST_HARNESS_H

#include <float.h>
#include <math.h>
#include <stdint.h> /* SIZE_MAX */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the counting allocator, and the library compiled with it ---------------------------------- */

static long test_mallocs, test_frees;
static int test_fail_malloc;     /* while set, every allocation fails */
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

/* ---- checks --------------------------------------------------------------------------------------- */

static int passed, failed;          /* checks, over the whole run */
static const char *current_test = ""; /* the running test's name, for FAIL lines */

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

/* A new rows x cols tensor holding values (row by row), or zeros if values is NULL. */
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

/* rows * cols, as a size_t (for memcpy and memcmp) */
static size_t element_count(const bp_tensor *t)
{
    return (size_t)t->rows * (size_t)t->cols;
}

static int same_shape(const bp_tensor *a, const bp_tensor *b)
{
    return a->rows == b->rows && a->cols == b->cols;
}

/* the same shape and the same bits (-0.0 differs from 0.0; a NaN equals the same NaN) */
static int same_bits(const bp_tensor *a, const bp_tensor *b)
{
    return same_shape(a, b) &&
           (element_count(a) == 0 || memcmp(a->data, b->data, element_count(a) * sizeof(bp_real)) == 0);
}

static void randomize(bp_tensor *t, bp_rng *rng)
{
    bp_tensor_randn(t, rng, 1);
}

/* REFERENCE_TOL: the relative error accepted against numpy's and PyTorch's float64 results.
   REAL_EPS: machine epsilon of bp_real.  GRADCHECK_EPS/TOL: the finite-difference step and the largest
   relative error accepted.  In double the step is about the cube root of machine epsilon, which balances
   rounding (~1e-16/eps) against truncation (~eps^2); float needs large steps, as its rounding is coarse. */
#ifdef BACKPROP_DOUBLE
#define REFERENCE_TOL 1e-12
#define REAL_EPS DBL_EPSILON
#define GRADCHECK_EPS 1e-5
#define GRADCHECK_TOL 1e-7
#else
#define REFERENCE_TOL 1e-5
#define REAL_EPS FLT_EPSILON
#define GRADCHECK_EPS 1e-2f
#define GRADCHECK_TOL 1e-2
#endif

/* ---- files -------------------------------------------------------------------------------------- */

/* tests/fixtures/ (numpy's and PyTorch's reference values, numpy's .npy files): --fixtures DIR sets it */
static const char *fixtures_dir = "tests/fixtures";

/* The text file fixtures_dir/name, open for reading; one check that it opened. */
static FILE *open_fixture(const char *name)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", fixtures_dir, name);
    f = fopen(path, "r");
    if (!f) printf("  cannot open %s (run from the repository root, or give --fixtures DIR)\n", path);
    CHECK(f != NULL);
    return f;
}

/* The folder the suite writes its scratch files into, below the folder it runs in (run.sh makes it). */
#define SCRATCH "build/test"

#ifndef BACKPROP_NO_STDIO /* (only the tests of the file functions write IDX files) */
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
#endif

/* ---- running tests ------------------------------------------------------------------------------ */

typedef struct test_case {
    const char *name; /* short, lower case: what the command line selects it by */
    void (*run)(void);
} test_case;

static const char *skip_reason; /* a test that cannot run in this build sets it, and makes no checks */

/* Runs one test and prints its line: status, name, checks, CPU seconds (or `skip  name  (why)` for a test
   that set skip_reason: it cannot run in this build).  The FAIL lines of its failed
   checks come before it.  An error handler call that no EXPECT_ERROR or EXPECT_NO_ERROR looked at by the
   end of the test fails it too: counted as a check only then, and not left over for the next test. */
static void run_test(const test_case *t)
{
    int passed_before = passed, failed_before = failed, checks, fails;
    clock_t start = clock();
    double seconds;
    current_test = t->name;
    skip_reason = NULL;
    errors_seen = 0;
    last_error[0] = 0;
    t->run();
    if (errors_seen) {
        char what[1200];
        snprintf(what, sizeof what, "%d error handler call(s) that no EXPECT_ERROR checked, the last: \"%s\"",
                 errors_seen, last_error);
        check_at(0, what, __FILE__, __LINE__);
        errors_seen = 0;
    }
    seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    checks = passed - passed_before + failed - failed_before;
    fails = failed - failed_before;
    if (skip_reason && checks == 0) {
        printf("skip  %-24s (%s)\n", t->name, skip_reason);
        fflush(stdout);
        return;
    }
    printf("%s  %-24s %5d %s  %.3f s", fails ? "FAIL" : "ok  ", t->name, checks, checks == 1 ? "check " : "checks",
           seconds);
    if (fails) printf("  (%d failed)", fails);
    printf("\n");
    fflush(stdout);
}

/* Do the command line's name filters select the test called name?  No filters: every test does.  A
   filter that is the whole name of a test in tests[0..test_count) selects that test alone; any other
   filter selects every test whose name contains it. */
static int test_selected(const char *name, char *const *filters, int filter_count, const test_case *tests,
                         int test_count)
{
    int i, k, exact;
    if (filter_count == 0) return 1;
    for (i = 0; i < filter_count; i++) {
        for (k = 0, exact = 0; k < test_count; k++) exact |= strcmp(tests[k].name, filters[i]) == 0;
        if (exact ? strcmp(name, filters[i]) == 0 : strstr(name, filters[i]) != NULL) return 1;
    }
    return 0;
}

#endif /* BP_TEST_HARNESS_H */
