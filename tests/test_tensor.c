/* Tests of the tensor itself and what fills or measures one: bp_tensor_new/free (sizes, empty tensors,
   out of memory), the random generator (against tests/fixtures/rng.txt, from an independent Python
   implementation, and by its statistics), bp_tensor_randn, He and Xavier initialisation (by their sample
   standard deviation), bp_tensor_norm, bp_tensor_all_finite, bp_tensor_rows (views), and
   bp_set_error_handler.
   Part of the suite: tests/test_backprop.c includes this file (see there how to run one test). */

#include "harness.h"

/* ---- tensors ------------------------------------------------------------------------------------ */

static void test_tensor(void)
{
    bp_tensor t, e;
    long mallocs;
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
static void test_rng_vs_python(void)
{
    char line[256], kind[32], value[128];
    unsigned long long seed;
    int index, checked = 0, mismatches = 0;
    FILE *f = open_fixture("rng.txt");
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

    bp_rng_seed(NULL, 1);
    EXPECT_ERROR("bp_rng_seed", "NULL");
    CHECK(bp_rng_next_u64(NULL) == 0);
    EXPECT_ERROR("bp_rng_next_u64", "NULL");
    CHECK(bp_rng_uniform(NULL) == 0);
    EXPECT_ERROR("bp_rng_uniform", "NULL");
    CHECK(bp_rng_normal(NULL) == 0);
    EXPECT_ERROR("bp_rng_normal", "NULL");
}

/* bp_tensor_randn: std scales, 0 gives zeros, the same seed gives the same tensor */
static void test_randn(void)
{
    bp_tensor t = bp_tensor_new(4, 5), t2 = bp_tensor_new(4, 5);
    bp_rng a;
    int i, same = 1;
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
    bp_tensor_free(&t);
    bp_tensor_free(&t2);
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

/* One initialiser on W, seeded with seed: the sample standard deviation within 2% of want (for 120000
   samples it is off by ~1/sqrt(2n) = 0.2%), the mean near 0; the same seed gives the same W (drawn again
   into W2), another seed another. */
static void check_init(void (*init)(bp_tensor *W, bp_rng *rng), const char *name, bp_tensor *W, bp_tensor *W2,
                       uint64_t seed, double want)
{
    const size_t bytes = element_count(W) * sizeof(bp_real);
    double mean, std;
    bp_rng rng;
    bp_rng_seed(&rng, seed);
    init(W, &rng);
    sample_stats(W, &mean, &std);
    if (!(fabs(std / want - 1) < 0.02)) printf("  %s: std %g, expected %g\n", name, std, want);
    CHECK(fabs(std / want - 1) < 0.02);
    CHECK(fabs(mean) < 5 * want / sqrt((double)element_count(W)));
    bp_rng_seed(&rng, seed);
    init(W2, &rng);
    CHECK(memcmp(W->data, W2->data, bytes) == 0);
    bp_rng_seed(&rng, seed + 1);
    init(W2, &rng);
    CHECK(memcmp(W->data, W2->data, bytes) != 0);
}

static void test_init(void)
{
    const int fan_in = 400, fan_out = 300;
    bp_tensor W = bp_tensor_new(fan_in, fan_out), W2 = bp_tensor_new(fan_in, fan_out);
    bp_tensor empty = bp_tensor_new(0, 5), empty2 = bp_tensor_new(5, 0);
    const size_t bytes = element_count(&W) * sizeof(bp_real);
    bp_rng rng;

    /* He: N(0, 2/fan_in) */
    check_init(bp_init_he, "he", &W, &W2, 11, sqrt(2.0 / fan_in));
    /* it is bp_tensor_randn with that std (as documented), so deterministic per seed */
    bp_rng_seed(&rng, 11);
    bp_tensor_randn(&W2, &rng, (bp_real)sqrt(2.0 / fan_in));
    CHECK(memcmp(W.data, W2.data, bytes) == 0);

    /* Xavier (Glorot normal): N(0, 2/(fan_in + fan_out)) */
    check_init(bp_init_xavier, "xavier", &W, &W2, 13, sqrt(2.0 / (fan_in + fan_out)));

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

    /* argument checks: W untouched */
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

/* ---- non-finite values ----------------------------------------------------------------------------- */

static void test_all_finite(void)
{
    bp_tensor t = bp_tensor_new(3, 4), empty = {0, 5, NULL}, unallocated = {2, 2, NULL};
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

/* ---- views: bp_tensor_rows --------------------------------------------------------------------------- */

static int is_error_view(bp_tensor v) { return v.rows == 0 && v.cols == 0 && v.data == NULL; }

static void test_tensor_rows(void)
{
    bp_tensor t = bp_tensor_new(5, 3), v, empty = {0, 4, NULL}, no_cols = {6, 0, NULL};
    int i;
    for (i = 0; i < 15; i++) t.data[i] = (bp_real)i;
    v = bp_tensor_rows(&t, 1, 3); /* rows 1, 2, 3: the same memory, no copy */
    CHECK(v.rows == 3 && v.cols == 3 && v.data == t.data + 3);
    CHECK(v.data[0] == 3 && v.data[8] == 11);
    v.data[1] = 100; /* writes through to t */
    CHECK(t.data[4] == 100);
    v = bp_tensor_rows(&t, 0, 5); /* all of it */
    CHECK(v.rows == 5 && v.data == t.data);
    v = bp_tensor_rows(&t, 5, 0); /* empty, at the end: one past the last row */
    CHECK(v.rows == 0 && v.cols == 3 && v.data == t.data + 15);
    v = bp_tensor_rows(&t, 2, 0);
    CHECK(v.rows == 0 && v.cols == 3);
    v = bp_tensor_rows(&empty, 0, 0); /* an empty tensor with no data: an empty view with no data */
    CHECK(v.rows == 0 && v.cols == 4 && v.data == NULL);
    v = bp_tensor_rows(&no_cols, 2, 3);
    CHECK(v.rows == 3 && v.cols == 0 && v.data == NULL);
    CHECK(bp_tensor_all_finite(&v) == 1); /* and every function takes it */
    EXPECT_NO_ERROR();
    { /* a view of a view: rows of rows */
        bp_tensor inner = bp_tensor_rows(&t, 1, 4), w = bp_tensor_rows(&inner, 2, 2);
        CHECK(w.data == t.data + 9 && w.rows == 2);
    }
    /* every range outside t: one message with the numbers, and {0, 0, NULL} */
    CHECK(is_error_view(bp_tensor_rows(&t, 4, 2)));
    EXPECT_ERROR("bp_tensor_rows", "start 4 and n 2", "t is 5x3");
    CHECK(is_error_view(bp_tensor_rows(&t, -1, 2)));
    EXPECT_ERROR("bp_tensor_rows", "start -1 and n 2", "t is 5x3");
    CHECK(is_error_view(bp_tensor_rows(&t, 0, -1)));
    EXPECT_ERROR("bp_tensor_rows", "start 0 and n -1");
    CHECK(is_error_view(bp_tensor_rows(&t, 6, 0)));
    EXPECT_ERROR("bp_tensor_rows", "start 6 and n 0");
    CHECK(is_error_view(bp_tensor_rows(&t, 1, 2147483647))); /* start + n would overflow an int */
    EXPECT_ERROR("bp_tensor_rows", "start 1 and n 2147483647");
    CHECK(is_error_view(bp_tensor_rows(&t, 2147483647, 1)));
    EXPECT_ERROR("bp_tensor_rows", "start 2147483647 and n 1");
    CHECK(is_error_view(bp_tensor_rows(NULL, 0, 1)));
    EXPECT_ERROR("bp_tensor_rows", "t is NULL");
    bp_tensor_free(&t);
}

/* ---- the error handler itself ------------------------------------------------------------------- */

static void other_handler(const char *message) { (void)message; }

static void test_error_handler(void)
{
    bp_error_fn prev;
    prev = bp_set_error_handler(other_handler);
    CHECK(prev == record_error);
    prev = bp_set_error_handler(NULL); /* back to the default... */
    CHECK(prev == other_handler);
    prev = bp_set_error_handler(record_error); /* ...which is reported as NULL */
    CHECK(prev == NULL);
}

/* ---- the messages' formatter -------------------------------------------------------------------
   backprop.h formats its messages itself (bp__vformat: no <stdio.h> needed, for BACKPROP_NO_STDIO).  Its
   output must be what printf's would be: the integers, strings and hex exactly; %g to printf's 6
   significant digits, exactly for every value that has at most 5 significant digits (the values users
   type: 0.1, -1, 1e-08, 0.999, 1e+30), and otherwise at most one unit off in the last digit, only for a
   value within a rounding error of a halfway case (the header says so). */

static int same_as_printf_g(double v)
{
    char ours[64], libc[64];
    bp__format(ours, sizeof ours, "%g", v);
    snprintf(libc, sizeof libc, "%g", v);
    if (strcmp(ours, libc) == 0) return 1;
    printf("  %%g of %.17g: backprop.h \"%s\", printf \"%s\"\n", v, ours, libc);
    return 0;
}

/* Is v within a rounding error of a value halfway between two 6-digit decimals? */
static int near_halfway(double v)
{
    double scaled = fabs(v) * pow(10, 5 - floor(log10(fabs(v)))), frac = scaled - floor(scaled);
    return fabs(frac - 0.5) < 1e-6;
}

static void test_message_format(void)
{
    const double special[] = {0, 1, -1, 0.1, -0.1, 0.5, 1.5, 2.5, 100, 65536, 1e-4, 1e-5, 99999, 123456, 999999,
                              999999.5, 9999995, 1e6, 1234567, 1e15, 1e20, 1e30, 1e-30, 1e300, 1e-300, 4.9e-324,
                              DBL_MAX, (double)1e-8f, (double)0.9f, (double)0.999f, (double)-0.1f, 3.14159265};
    char text[64], small[8];
    bp_rng rng;
    int i, exact = 1, close = 1, odd_ones = 0;
    for (i = 0; i < (int)(sizeof special / sizeof *special); i++) exact &= same_as_printf_g(special[i]);
    bp_rng_seed(&rng, 31);
    for (i = 0; i < 20000; i++) {
        /* k * 10^e with k of at most 5 digits: must match exactly */
        double k = floor(bp_rng_uniform(&rng) * 99999) + 1, e = floor(bp_rng_uniform(&rng) * 60) - 30;
        double v = (i & 1 ? -k : k) * pow(10, e), w = (bp_rng_uniform(&rng) - 0.5) * pow(10, e);
        exact &= same_as_printf_g(v);
        /* any other value: the same, or (near a halfway case) one unit off in the 6th digit */
        if (!near_halfway(w)) close &= same_as_printf_g(w);
        else odd_ones++;
    }
    CHECK(exact);
    CHECK(close);
    CHECK(odd_ones < 100);
    CHECK(strcmp((bp__format(text, sizeof text, "%g %g %g", NAN, HUGE_VAL, -HUGE_VAL), text), "nan inf -inf") == 0);
    bp__format(text, sizeof text, "%s: %d %dx%d 0x%x %02x%02x %lu %.0f%%", "fn", -7, 2147483647, -2147483647 - 1,
               255u, 10u, 0u, 4000000000ul, 802816.0);
    CHECK(strcmp(text, "fn: -7 2147483647x-2147483648 0xff 0a00 4000000000 802816%") == 0);
    bp__format(small, sizeof small, "%s and more", "abcdef"); /* cut to the buffer, and terminated */
    CHECK(strcmp(small, "abcdef ") == 0);
}
