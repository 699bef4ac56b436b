/* Tests of the optimizers and gradient clipping: bp_sgd_step, bp_momentum_step, bp_adam_step and
   bp_rmsprop_step, one or two steps by hand with every argument check; momentum and Adam step by step
   against PyTorch's torch.optim.SGD and torch.optim.Adam run in float64 (tests/fixtures/optim.txt, written
   by tests/gen_fixtures.py), to 1e-12 relative in double, and RMSprop against torch.optim.RMSprop
   (tests/fixtures/norms.txt); and bp_clip_grad_norm by hand.
   Part of the suite: tests/test_backprop.c includes this file (see there how to run one test). */

#include "harness.h"

/* ---- SGD ---------------------------------------------------------------------------------------- */

static void test_sgd_by_hand(void)
{
    const double w_[] = {1, -2, 3}, dw_[] = {0.5, 0.25, -1}, after[] = {0.75, -2.125, 3.5};
    bp_tensor w = make(1, 3, w_), dw = make(1, 3, dw_), wrong = bp_tensor_new(3, 1);
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

/* ---- momentum and Adam, by hand ------------------------------------------------------------------ */

static void test_momentum_by_hand(void)
{
    /* lr 0.1, mu 0.9.  Step 1: vel = 0.9*0 + dw = [0.5 1], w = [1 -2] - 0.1 vel = [0.95 -2.1].
       Step 2 with dw = [1 0]: vel = [0.45 + 1, 0.9] = [1.45 0.9], w = [0.95 - 0.145, -2.1 - 0.09] */
    const double w_[] = {1, -2}, dw1_[] = {0.5, 1}, dw2_[] = {1, 0};
    const double w1[] = {0.95, -2.1}, vel1[] = {0.5, 1}, w2[] = {0.805, -2.19}, vel2[] = {1.45, 0.9};
    bp_tensor w = make(1, 2, w_), dw = make(1, 2, dw1_), vel = bp_tensor_new(1, 2), wrong = bp_tensor_new(2, 1);
    const double tol = 8 * REAL_EPS;
    bp_momentum_step(&w, &dw, &vel, (bp_real)0.1, (bp_real)0.9);
    CHECK(close_to(&w, w1, tol) && close_to(&vel, vel1, 0));
    dw.data[0] = (bp_real)dw2_[0];
    dw.data[1] = (bp_real)dw2_[1];
    bp_momentum_step(&w, &dw, &vel, (bp_real)0.1, (bp_real)0.9);
    CHECK(close_to(&w, w2, tol) && close_to(&vel, vel2, tol));
    EXPECT_NO_ERROR();

    /* argument checks: one message naming the shapes, w and vel untouched */
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

static void test_adam_by_hand(void)
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
    bp_adam_step(&w, &dw, &m, &v, 1, (bp_real)0.1, (bp_real)0.9, (bp_real)0.999, (bp_real)1e-8);
    CHECK(close_to(&w, w1, tol));
    /* m and v relative to their size (close_to is absolute below 1); float rounds 1 - 0.999f by 1.3e-5 */
    CHECK(fabs((double)m.data[0] - m1[0]) <= tol * m1[0] && fabs((double)m.data[1] - m1[1]) <= -tol * m1[1]);
    CHECK(fabs((double)v.data[0] / v1[0] - 1) <= (sizeof(bp_real) == 8 ? tol : 2e-5));
    CHECK(fabs((double)v.data[1] / v1[1] - 1) <= (sizeof(bp_real) == 8 ? tol : 2e-5));
    CHECK(m.data[2] == 0 && v.data[2] == 0 && w.data[2] == (bp_real)0.5); /* zero gradient: 0/(0+eps), no step */
    EXPECT_NO_ERROR();

    /* argument checks: one message naming the shapes or the bad hyperparameter, w, m and v untouched */
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
    bp_adam_step(&w, &dw, &m, &m, 1, 1, 0.5, 0.5, 1); /* two outputs: the first in argument order is named first */
    EXPECT_ERROR("bp_adam_step", "m (1x3) shares memory with v (1x3)");
    CHECK(all_equal(&w, 4) && all_equal(&m, 4) && all_equal(&v, 4));
    bp_tensor_free(&w);
    bp_tensor_free(&dw);
    bp_tensor_free(&m);
    bp_tensor_free(&v);
    bp_tensor_free(&wrong);
}

/* Adam where the gradients stop: 10 steps of ordinary gradients (sizes 1e-3 to 1, and one weight whose
   gradient is 0 throughout), then 100,000 steps of exactly-0 gradients, as for a pixel that is 0 in every
   image.  m and v decay by beta1 and beta2 per step; they must never become subnormal (bp_adam_step sets
   them to 0 below 1e-36, 1e-300 in double) and must end at 0 where they decayed that far (float: both;
   double: m, since v needs 700,000 steps), and the weights must be those of PyTorch's formula computed
   here in bp_real with libm's sqrt and no such flushing, to a few roundings: the steps dropped are far
   below a weight's rounding (bp_adam_step says why). */
static int is_subnormal(bp_real x)
{
    return x != 0 && fabs((double)x) < (sizeof(bp_real) == 4 ? (double)FLT_MIN : DBL_MIN);
}

static void test_adam_zero_gradients(void)
{
    enum { N = 6, STEPS = 100000 };
    const double w_[N] = {0.5, -1.25, 2, 0.75, -0.3, 1}, g_[N] = {1, -0.1, 0.01, -1e-3, 0.3, 0};
    const bp_real lr = (bp_real)1e-3, b1 = (bp_real)0.9, b2 = (bp_real)0.999, eps = (bp_real)1e-8;
    bp_tensor w = make(1, N, w_), dw = make(1, N, g_), m = bp_tensor_new(1, N), v = bp_tensor_new(1, N);
    bp_real rw[N], rm[N] = {0}, rv[N] = {0};
    int t, i, subnormal = 0;
    for (i = 0; i < N; i++) rw[i] = w.data[i];
    for (t = 1; t <= STEPS; t++) {
        bp_real step_size = (bp_real)(lr / (1 - pow(b1, t))), bias2_sqrt = (bp_real)sqrt(1 - pow(b2, t));
        if (t == 11) fill(&dw, 0); /* from step 11 on, exactly 0 */
        bp_adam_step(&w, &dw, &m, &v, t, lr, b1, b2, eps);
        for (i = 0; i < N; i++) { /* the reference: PyTorch's formula, subnormals and all */
            rm[i] = b1 * rm[i] + (1 - b1) * dw.data[i];
            rv[i] = b2 * rv[i] + (1 - b2) * dw.data[i] * dw.data[i];
            rw[i] -= step_size * rm[i] / ((bp_real)sqrt(rv[i]) / bias2_sqrt + eps);
            subnormal += is_subnormal(m.data[i]) + is_subnormal(v.data[i]);
        }
    }
    CHECK(subnormal == 0);
    for (i = 0; i < N; i++) {
        CHECK(m.data[i] == 0 && (sizeof(bp_real) == 8 || v.data[i] == 0));
        CHECK(is_subnormal(rm[i]) || rm[i] == 0); /* the reference went where bp_adam_step does not */
        CHECK(fabs((double)w.data[i] - (double)rw[i]) <= 16 * REAL_EPS * fabs((double)rw[i]));
    }
    CHECK(w.data[N - 1] == (bp_real)w_[N - 1]); /* a gradient of 0 throughout: no step at all */
    EXPECT_NO_ERROR();
    bp_tensor_free(&w);
    bp_tensor_free(&dw);
    bp_tensor_free(&m);
    bp_tensor_free(&v);
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

static void test_momentum_adam_vs_pytorch(void)
{
    char kind[32], name[32];
    double hp[4], w0[64], g[64], want[3][64];
    const double base_tol = REFERENCE_TOL;
    FILE *f = open_fixture("optim.txt");
    int cases = 0, steps_checked = 0;
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

/* ---- RMSprop, by hand and against PyTorch (tests/fixtures/norms.txt) ------------------------------ */

static void test_rmsprop_by_hand(void)
{
    /* lr 0.25, alpha 0.75, eps 1e-8 (negligible here).  Step 1, dw = [0.5 -1]: v = 0.25 dw^2 = [0.0625 0.25],
       sqrt(v) = [0.25 0.5], w = [1 -2] - 0.25 [0.5/0.25, -1/0.5] = [0.5 -1.5].
       Step 2, dw = [0.5 0]: v = 0.75 [0.0625 0.25] + 0.25 [0.25 0] = [7/64 0.1875], sqrt(7/64) = sqrt(7)/8,
       w = [0.5 - 0.25*0.5*8/sqrt(7), -1.5] = [0.5 - 1/sqrt(7), -1.5]  (a zero gradient: no step at all) */
    const double w_[] = {1, -2}, dw1_[] = {0.5, -1}, dw2_[] = {0.5, 0};
    const double w1[] = {0.5, -1.5}, v1[] = {0.0625, 0.25}, w2[] = {0.1220355269907728, -1.5}, v2[] = {0.109375, 0.1875};
    bp_tensor w = make(1, 2, w_), dw = make(1, 2, dw1_), v = bp_tensor_new(1, 2), wrong = bp_tensor_new(2, 1);
    const double tol = 8 * REAL_EPS + 1e-7;
    long mallocs = test_mallocs;
    bp_real before;
    bp_rmsprop_step(&w, &dw, &v, (bp_real)0.25, (bp_real)0.75, (bp_real)1e-8);
    CHECK(close_to(&w, w1, tol) && close_to(&v, v1, 0));
    dw.data[0] = (bp_real)dw2_[0];
    dw.data[1] = (bp_real)dw2_[1];
    before = w.data[1];
    bp_rmsprop_step(&w, &dw, &v, (bp_real)0.25, (bp_real)0.75, (bp_real)1e-8);
    CHECK(close_to(&w, w2, tol) && close_to(&v, v2, 0) && w.data[1] == before);
    CHECK(test_mallocs == mallocs);
    EXPECT_NO_ERROR();

    /* argument checks: one message naming the shapes, w and v untouched */
    fill(&w, 4);
    fill(&v, 4);
    bp_rmsprop_step(&w, &dw, &v, 1, 1, (bp_real)1e-8);
    EXPECT_ERROR("bp_rmsprop_step", "alpha is 1 (w is 1x2; alpha must be in [0, 1))");
    bp_rmsprop_step(&w, &dw, &v, 1, (bp_real)-0.5, (bp_real)1e-8);
    EXPECT_ERROR("bp_rmsprop_step", "alpha is -0.5");
    bp_rmsprop_step(&w, &dw, &v, 1, (bp_real)NAN, (bp_real)1e-8);
    EXPECT_ERROR("bp_rmsprop_step", "alpha is nan");
    bp_rmsprop_step(&w, &dw, &v, 1, (bp_real)0.9, 0);
    EXPECT_ERROR("bp_rmsprop_step", "eps is 0 (w is 1x2; eps must be > 0)");
    bp_rmsprop_step(&w, &wrong, &v, 1, (bp_real)0.9, (bp_real)1e-8);
    EXPECT_ERROR("bp_rmsprop_step", "w is 1x2 but dw is 2x1");
    bp_rmsprop_step(&w, &dw, NULL, 1, (bp_real)0.9, (bp_real)1e-8);
    EXPECT_ERROR("bp_rmsprop_step", "v is NULL");
    bp_rmsprop_step(&w, &dw, &w, 1, (bp_real)0.9, (bp_real)1e-8);
    EXPECT_ERROR("bp_rmsprop_step", "w (1x2) shares memory with v (1x2)");
    bp_rmsprop_step(&w, &dw, &dw, 1, (bp_real)0.9, (bp_real)1e-8);
    EXPECT_ERROR("bp_rmsprop_step", "v (1x2) shares memory with dw (1x2)");
    CHECK(all_equal(&w, 4) && all_equal(&v, 4));
    bp_tensor_free(&w);
    bp_tensor_free(&dw);
    bp_tensor_free(&v);
    bp_tensor_free(&wrong);
}

static void test_rmsprop_vs_pytorch(void)
{
    char kind[32], name[64], what[96];
    double nums[4];
    int cases = 0, steps_checked = 0, ok = 1;
    FILE *f = open_fixture("norms.txt");
    if (!f) return;
    while (ok && next_norm_case(f, kind, name, nums) && strcmp(kind, "end") != 0) {
        bp_tensor w0, w, v, g, w_want, v_want;
        bp_real lr = (bp_real)nums[0], alpha = (bp_real)nums[1], eps = (bp_real)nums[2];
        /* in float, alpha 0.99 is rounded, and 1 - alpha is 0.01 off by 2e-8 / 0.01 relative: v carries
           that factor, w half of it (through sqrt(v)) */
        double tol = REFERENCE_TOL + 2 * fabs((double)alpha - nums[1]) / (1 - nums[1]);
        int t;
        if (strcmp(kind, "rmsprop") != 0) continue;
        ok &= read_block(f, "w", &w0);
        if (!ok) break;
        w = w0;
        v = bp_tensor_new(w.rows, w.cols);
        for (t = 1; t <= (int)nums[3] && ok; t++) {
            ok &= read_block(f, "grad", &g) && read_block(f, "w", &w_want) && read_block(f, "v", &v_want);
            if (!ok) break;
            bp_rmsprop_step(&w, &g, &v, lr, alpha, eps);
            snprintf(what, sizeof what, "rmsprop %s w after step %d", name, t);
            note_worst(W_RMSPROP, worst_error(&w, &w_want, what, tol));
            snprintf(what, sizeof what, "rmsprop %s v after step %d", name, t);
            note_worst(W_RMSPROP, worst_error(&v, &v_want, what, tol));
            bp_tensor_free(&g);
            bp_tensor_free(&w_want);
            bp_tensor_free(&v_want);
            steps_checked++;
        }
        bp_tensor_free(&w);
        bp_tensor_free(&v);
        cases++;
    }
    fclose(f);
    CHECK(ok && cases == 2 && steps_checked == 10);
#ifdef BP_TEST_REPORT
    printf("  worst relative error vs PyTorch: rmsprop %.2g\n", norms_worst[W_RMSPROP]);
#endif
    EXPECT_NO_ERROR();
}

/* ---- gradient clipping --------------------------------------------------------------------------- */

static void test_clip_grad_norm(void)
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

    /* argument checks: one message, NaN returned, the gradients untouched */
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
