/* forward_vs_reverse.c - why backpropagation runs backwards: reverse mode against forward mode.

   The network, on a batch of 8, for hidden widths H = 4, 8, ..., 512:

       x (8x4) -> Linear(4->H) -> ReLU -> Linear(H->2) -> yhat (8x2),   L = MSE(yhat, y)

   It has P = 4H + H + 2H + 2 = 7H + 2 parameters (30 ... 3586).  The loss is ONE number that depends on
   all P of them, and training needs all P partial derivatives dL/dp.  Two exact ways to get them (no
   finite differences in this file):

     reverse mode (backprop)  one forward pass, then one backward pass that carries dL/d(value) from the
                              loss back through every layer (bp_*_backward): all P derivatives at once.
     forward mode (JVPs)      a forward pass that carries, next to every value v, its TANGENT
                              v_dot = dv/dp for ONE chosen parameter p: start with p_dot = 1 and every
                              other parameter's tangent 0, push the tangents through each layer by the
                              chain rule (the *_jvp functions below, each under its forward), and the
                              loss's tangent L_dot at the end is dL/dp.  One number per pass: the full
                              gradient needs P passes.

   Both give the same gradient (to rounding: this file is built in double precision).  A forward-mode
   pass costs about as much as forward + backward, so forward mode costs about P times as much as reverse
   mode.  That is why networks are trained with reverse mode.  (The opposite shape -- few inputs, many
   outputs -- is where forward mode wins: one pass per INPUT gives the derivatives of all outputs.)

   The program computes the gradient both ways at every width, checks that they agree, times both, prints
   a table and the slope of log(cost ratio) against log(P), and writes the chart forward_vs_reverse.svg.
   It exits non-zero if the gradients differ by more than 1e-9 (relative to the largest one), if the
   cost ratio does not grow with P, or if the chart cannot be written (stderr says why).

   Build and run:  make modes      (or ./build/forward_vs_reverse [OUT_DIR], from any folder)
   OUT_DIR: where the chart goes, default build (created if missing).
   Timing: C's clock().  On Linux and macOS it counts the processor time this program used, so another
   program busy on a shared machine disturbs it less than a wall clock; on Windows it is wall time. */

#define BACKPROP_DOUBLE /* bp_real is double: the two gradients agree to ~1e-16 */
#define BACKPROP_IMPLEMENTATION
#include "../backprop.h"

#include "chart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BATCH 8
#define IN 4
#define OUT 2

/* A sanitizer build (make sanitize) checks memory and undefined behaviour, not speed, and runs some 20x
   slower: there it stops at H = 128. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_BUILD
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER_BUILD
#endif
#endif

#ifdef SANITIZER_BUILD
#define NSIZES 6
#else
#define NSIZES 8
#endif
static const int hidden_widths[8] = {4, 8, 16, 32, 64, 128, 256, 512};

#define AGREE_TOL 1e-9   /* max |forward - reverse| / max |reverse| allowed */
#define MIN_TIMING 0.005 /* seconds: one timing is enough back-to-back calls to last at least this long */
#define ROUNDS 3         /* each method is timed this many times, interleaved; the fastest counts */
#define SLOW_CALL 0.050  /* seconds: a method whose one call takes this long is timed in one round only */

/* ---- the network: its values, its gradients (reverse mode) and its tangents (forward mode) ---- */

typedef struct mlp {
    bp_tensor x, y;                           /* data: inputs (BATCH x IN) and targets (BATCH x OUT) */
    bp_tensor W1, b1, W2, b2;                 /* parameters */
    bp_tensor z1, a1, yhat;                   /* values of the forward pass */
    bp_tensor dyhat, da1;                     /* reverse mode: dL/d(value), flowing backwards */
    bp_tensor dW1, db1, dW2, db2;             /* reverse mode: dL/d(parameter), the result */
    bp_tensor W1_dot, b1_dot, W2_dot, b2_dot; /* forward mode: d(parameter)/dp, all 0 but the seed's 1 */
    bp_tensor z1_dot, a1_dot, yhat_dot;       /* forward mode: d(value)/dp, flowing forwards */
    int P;                                    /* number of parameters */
} mlp;

static mlp mlp_new(int hidden, bp_rng *rng)
{
    mlp n;
    n.x = bp_tensor_new(BATCH, IN);
    n.y = bp_tensor_new(BATCH, OUT);
    n.W1 = bp_tensor_new(IN, hidden);
    n.b1 = bp_tensor_new(1, hidden);
    n.W2 = bp_tensor_new(hidden, OUT);
    n.b2 = bp_tensor_new(1, OUT);
    n.z1 = bp_tensor_new(BATCH, hidden);
    n.a1 = bp_tensor_new(BATCH, hidden);
    n.yhat = bp_tensor_new(BATCH, OUT);
    n.dyhat = bp_tensor_new(BATCH, OUT);
    n.da1 = bp_tensor_new(BATCH, hidden);
    n.dW1 = bp_tensor_new(IN, hidden);
    n.db1 = bp_tensor_new(1, hidden);
    n.dW2 = bp_tensor_new(hidden, OUT);
    n.db2 = bp_tensor_new(1, OUT);
    n.W1_dot = bp_tensor_new(IN, hidden); /* zero-filled: no parameter is seeded yet */
    n.b1_dot = bp_tensor_new(1, hidden);
    n.W2_dot = bp_tensor_new(hidden, OUT);
    n.b2_dot = bp_tensor_new(1, OUT);
    n.z1_dot = bp_tensor_new(BATCH, hidden);
    n.a1_dot = bp_tensor_new(BATCH, hidden);
    n.yhat_dot = bp_tensor_new(BATCH, OUT);
    n.P = IN * hidden + hidden + hidden * OUT + OUT;
    bp_tensor_randn(&n.x, rng, 1);
    bp_tensor_randn(&n.y, rng, 1);
    bp_init_he(&n.W1, rng);
    bp_init_he(&n.W2, rng);
    bp_tensor_randn(&n.b1, rng, 0.1); /* small non-zero biases, so their gradients are not trivial */
    bp_tensor_randn(&n.b2, rng, 0.1);
    return n;
}

static void mlp_free(mlp *n)
{
    bp_tensor *all[] = {&n->x,      &n->y,      &n->W1,     &n->b1,      &n->W2,     &n->b2,
                        &n->z1,     &n->a1,     &n->yhat,   &n->dyhat,   &n->da1,    &n->dW1,
                        &n->db1,    &n->dW2,    &n->db2,    &n->W1_dot,  &n->b1_dot, &n->W2_dot,
                        &n->b2_dot, &n->z1_dot, &n->a1_dot, &n->yhat_dot};
    int i;
    for (i = 0; i < (int)(sizeof all / sizeof all[0]); i++) bp_tensor_free(all[i]);
}

/* The forward pass: z1 = x W1 + b1,  a1 = max(0, z1),  yhat = a1 W2 + b2,  L = mean (yhat - y)^2 */
static double forward(mlp *n)
{
    bp_linear_forward(&n->x, &n->W1, &n->b1, &n->z1);
    bp_relu_forward(&n->z1, &n->a1);
    bp_linear_forward(&n->a1, &n->W2, &n->b2, &n->yhat);
    return bp_mse_forward(&n->yhat, &n->y);
}

/* ---- reverse mode: the library's backward functions, from the loss back to every parameter ---- */

/* The gradient, flattened into grad[0 .. P-1] in the order W1, b1, W2, b2 (row-major within each). */
static void flatten(double *grad, const bp_tensor *W1, const bp_tensor *b1, const bp_tensor *W2,
                    const bp_tensor *b2)
{
    const bp_tensor *parts[] = {W1, b1, W2, b2};
    int k, i, at = 0;
    for (k = 0; k < 4; k++)
        for (i = 0; i < parts[k]->rows * parts[k]->cols; i++) grad[at++] = parts[k]->data[i];
}

/* ONE forward and ONE backward pass give all P derivatives. */
static void gradient_reverse_mode(mlp *n, double *grad)
{
    forward(n);
    /* dyhat = 2/N (yhat - y) */
    bp_mse_backward(&n->yhat, &n->y, &n->dyhat);
    /* dW2 = a1^T dyhat,  db2 = column sums of dyhat,  da1 = dyhat W2^T */
    bp_linear_backward(&n->a1, &n->W2, &n->dyhat, &n->da1, &n->dW2, &n->db2);
    /* dz1 = da1 * 1[z1 > 0], in place */
    bp_relu_backward(&n->z1, &n->da1, &n->da1);
    /* dW1 = x^T dz1,  db1 = column sums of dz1  (dx: not needed) */
    bp_linear_backward(&n->x, &n->W1, &n->da1, NULL, &n->dW1, &n->db1);
    flatten(grad, &n->dW1, &n->db1, &n->dW2, &n->db2);
}

/* ---- forward mode: each layer's forward, and under it its JVP (Jacobian-vector product) ----
   Notation: v_dot = dv/dp, the derivative of the value v with respect to the ONE seeded parameter p.
   Each JVP is the chain rule applied in the same direction as the forward pass: given the tangents of a
   layer's inputs, it gives the tangent of its output.  It needs the forward's values (x, z, yhat) too. */

/* Linear:  z = x W + b.  Differentiate each factor (product rule):
       z_dot = x_dot W + x W_dot + b_dot          (b_dot added to every row, as b is)
   x_dot may be NULL: the data x does not depend on any parameter. */
static void linear_jvp(const bp_tensor *x, const bp_tensor *x_dot, const bp_tensor *W, const bp_tensor *W_dot,
                       const bp_tensor *b_dot, bp_tensor *z_dot)
{
    int r, j;
    bp_matmul(z_dot, x, W_dot, 0);                        /* z_dot  = x W_dot */
    if (x_dot) bp_matmul(z_dot, x_dot, W, BP_ACCUMULATE); /* z_dot += x_dot W */
    for (r = 0; r < z_dot->rows; r++)                     /* z_dot += b_dot   */
        for (j = 0; j < z_dot->cols; j++) z_dot->data[r * z_dot->cols + j] += b_dot->data[j];
}

/* ReLU:  a = max(0, z) has slope 1 where z > 0 and 0 elsewhere, so
       a_dot = z_dot * 1[z > 0]                   (the same mask as the backward's, the other way) */
static void relu_jvp(const bp_tensor *z, const bp_tensor *z_dot, bp_tensor *a_dot)
{
    int i;
    for (i = 0; i < z->rows * z->cols; i++) a_dot->data[i] = z->data[i] > 0 ? z_dot->data[i] : 0;
}

/* MSE:  L = 1/N sum_i (yhat_i - y_i)^2  over all N = rows*cols elements, so
       L_dot = 2/N sum_i (yhat_i - y_i) yhat_dot_i        (y is data: y_dot = 0) */
static double mse_jvp(const bp_tensor *yhat, const bp_tensor *y, const bp_tensor *yhat_dot)
{
    int i, N = yhat->rows * yhat->cols;
    double sum = 0;
    for (i = 0; i < N; i++) sum += (yhat->data[i] - y->data[i]) * yhat_dot->data[i];
    return 2.0 / N * sum;
}

/* One forward-mode pass: every value computed next to its tangent.  Returns L_dot = dL/dp, where p is the
   parameter whose tangent holds 1.  (The values z1, a1, yhat do not depend on the seed; a cleverer forward
   mode would compute them once.  That saves 2 of the pass's 5 matrix products, not the factor P.) */
static double jvp_pass(mlp *n)
{
    /* z1 = x W1 + b1,  z1_dot = x W1_dot + b1_dot */
    bp_linear_forward(&n->x, &n->W1, &n->b1, &n->z1);
    linear_jvp(&n->x, NULL, &n->W1, &n->W1_dot, &n->b1_dot, &n->z1_dot);
    /* a1 = max(0, z1),  a1_dot = z1_dot * 1[z1 > 0] */
    bp_relu_forward(&n->z1, &n->a1);
    relu_jvp(&n->z1, &n->z1_dot, &n->a1_dot);
    /* yhat = a1 W2 + b2,  yhat_dot = a1_dot W2 + a1 W2_dot + b2_dot */
    bp_linear_forward(&n->a1, &n->W2, &n->b2, &n->yhat);
    linear_jvp(&n->a1, &n->a1_dot, &n->W2, &n->W2_dot, &n->b2_dot, &n->yhat_dot);
    /* L_dot = 2/N sum (yhat - y) yhat_dot = dL/dp */
    return mse_jvp(&n->yhat, &n->y, &n->yhat_dot);
}

/* P passes, one per parameter: seed its tangent with 1, run the pass, read off dL/dp, unseed. */
static void gradient_forward_mode(mlp *n, double *grad)
{
    bp_tensor *tangent[] = {&n->W1_dot, &n->b1_dot, &n->W2_dot, &n->b2_dot};
    int k, i, at = 0;
    for (k = 0; k < 4; k++)
        for (i = 0; i < tangent[k]->rows * tangent[k]->cols; i++) {
            tangent[k]->data[i] = 1; /* p_dot = 1: "the direction of this one parameter" */
            grad[at++] = jvp_pass(n);
            tangent[k]->data[i] = 0;
        }
}

/* The loss alone, for scale: what one plain forward pass costs. */
static void loss_only(mlp *n, double *out) { out[0] = forward(n); }

/* ---- timing ---- */

static double now_seconds(void) { return (double)clock() / CLOCKS_PER_SEC; }

typedef void (*method_fn)(mlp *, double *);

/* The smallest step clock() takes: 1 microsecond on Linux, but 1 to 16 ms on Windows (and under wine). */
static double clock_resolution(void)
{
    double t0 = now_seconds(), t1;
    while ((t1 = now_seconds()) == t0) continue;
    t0 = t1;
    while ((t1 = now_seconds()) == t0) continue;
    return t1 - t0;
}

/* One timing must last at least MIN_TIMING seconds and at least 20 steps of the clock (or it could read 0
   where the clock is coarse); set by the first calibration. */
static double min_timing = 0;

/* How many back-to-back calls last at least min_timing. */
static long calls_for_min_timing(method_fn fn, mlp *n, double *out)
{
    long calls = 1, i;
    if (min_timing == 0) min_timing = fmax(MIN_TIMING, 20 * clock_resolution());
    for (;;) {
        double t0 = now_seconds();
        for (i = 0; i < calls; i++) fn(n, out);
        if (now_seconds() - t0 >= min_timing || calls >= (1L << 24)) return calls;
        calls *= 2;
    }
}

/* Seconds per call over `calls` calls, more if they took under half of min_timing (a calibration slowed by
   other work on the machine can leave too few calls to time: under wine a timing then read 0, and its
   ratio NaN). */
static double seconds_per_call(method_fn fn, mlp *n, double *out, long calls)
{
    for (;;) {
        long i;
        double t0 = now_seconds(), t;
        for (i = 0; i < calls; i++) fn(n, out);
        t = now_seconds() - t0;
        if (t >= min_timing / 2 || calls >= (1L << 24)) return t / (double)calls;
        calls *= 2;
    }
}

/* Least-squares slope of log(y) against log(x). */
static double loglog_slope(const double *x, const double *y, int n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0;
    int i;
    for (i = 0; i < n; i++) mx += log(x[i]) / n, my += log(y[i]) / n;
    for (i = 0; i < n; i++) {
        sxy += (log(x[i]) - mx) * (log(y[i]) - my);
        sxx += (log(x[i]) - mx) * (log(x[i]) - mx);
    }
    return sxy / sxx;
}

/* ---- measuring both at one width ---- */

/* The measurements, one entry per hidden width. */
typedef struct results {
    double P[NSIZES];                                    /* the number of parameters */
    double t_loss[NSIZES], t_rev[NSIZES], t_fwd[NSIZES]; /* seconds per call: the loss alone, each mode */
    double ratio[NSIZES];                                /* t_fwd / t_rev */
    double diff[NSIZES];                                 /* max |forward - reverse| / max |reverse| */
} results;

/* The same gradient, both ways: how far apart they are, relative to the largest derivative. */
static double compare_gradients(mlp *n, double *g_rev, double *g_fwd)
{
    double max_diff = 0, max_grad = 0;
    int i;
    gradient_reverse_mode(n, g_rev);
    gradient_forward_mode(n, g_fwd);
    for (i = 0; i < n->P; i++) {
        if (fabs(g_fwd[i] - g_rev[i]) > max_diff) max_diff = fabs(g_fwd[i] - g_rev[i]);
        if (fabs(g_rev[i]) > max_grad) max_grad = fabs(g_rev[i]);
    }
    return max_diff / max_grad;
}

/* Their cost: each method timed ROUNDS times, the methods taking turns, the fastest kept (a slow one, once:
   forward mode at the largest P, in a sanitizer build or on a slow machine). */
static void time_methods(mlp *n, double *g_rev, double *g_fwd, results *r, int s)
{
    double loss;
    long calls_loss = calls_for_min_timing(loss_only, n, &loss);
    long calls_rev = calls_for_min_timing(gradient_reverse_mode, n, g_rev);
    long calls_fwd = calls_for_min_timing(gradient_forward_mode, n, g_fwd);
    int round;
    r->t_loss[s] = r->t_rev[s] = r->t_fwd[s] = 1e300;
    for (round = 0; round < ROUNDS; round++) {
        double t;
        t = seconds_per_call(loss_only, n, &loss, calls_loss);
        if (t < r->t_loss[s]) r->t_loss[s] = t;
        t = seconds_per_call(gradient_reverse_mode, n, g_rev, calls_rev);
        if (t < r->t_rev[s]) r->t_rev[s] = t;
        if (round > 0 && r->t_fwd[s] >= SLOW_CALL) continue;
        t = seconds_per_call(gradient_forward_mode, n, g_fwd, calls_fwd);
        if (t < r->t_fwd[s]) r->t_fwd[s] = t;
    }
    r->ratio[s] = r->t_fwd[s] / r->t_rev[s];
}

/* Both measurements at hidden width hidden_widths[s], into entry s of r.  -1 if out of memory. */
static int measure_width(int s, bp_rng *rng, results *r)
{
    mlp n = mlp_new(hidden_widths[s], rng);
    double *g_rev = (double *)malloc(sizeof(double) * (size_t)n.P);
    double *g_fwd = (double *)malloc(sizeof(double) * (size_t)n.P);
    int status = -1;
    if (g_rev && g_fwd) {
        r->P[s] = n.P;
        r->diff[s] = compare_gradients(&n, g_rev, g_fwd);
        time_methods(&n, g_rev, g_fwd, r, s);
        status = 0;
    }
    free(g_rev);
    free(g_fwd);
    mlp_free(&n);
    return status;
}

/* Left: microseconds per full gradient against P.  Right: the ratio forward/reverse against P.  Both log-log. */
static int write_chart(const char *out_dir, const results *r)
{
    double us_loss[NSIZES], us_rev[NSIZES], us_fwd[NSIZES];
    char label_loss[80], label_rev[80], label_fwd[80], label_ratio[80];
    const chart_line times[3] = {
        {label_fwd, "#d62728", r->P, us_fwd, NSIZES, 0},
        {label_rev, "#1f77b4", r->P, us_rev, NSIZES, 0},
        {label_loss, "#7f7f7f", r->P, us_loss, NSIZES, 0},
    };
    const chart_line ratios[2] = {
        {label_ratio, "#9467bd", r->P, r->ratio, NSIZES, 0},
        {"ratio = P", "#000000", r->P, r->P, NSIZES, 1},
    };
    const chart_panel panels[2] = {
        {"Time for the full gradient", "P, number of parameters (hidden width 4, 8, 16, ...)",
         "microseconds per gradient", 1, 1, NULL, times, 3},
        {"Forward mode costs P times reverse mode", "P, number of parameters",
         "time forward mode / time reverse mode", 1, 1, NULL, ratios, 2},
    };
    int s;
    for (s = 0; s < NSIZES; s++) {
        us_loss[s] = 1e6 * r->t_loss[s];
        us_rev[s] = 1e6 * r->t_rev[s];
        us_fwd[s] = 1e6 * r->t_fwd[s];
    }
    sprintf(label_fwd, "forward mode: P JVP passes (slope %.2f)", loglog_slope(r->P, r->t_fwd, NSIZES));
    sprintf(label_rev, "reverse mode: 1 forward + 1 backward (slope %.2f)", loglog_slope(r->P, r->t_rev, NSIZES));
    sprintf(label_loss, "the loss alone: 1 forward (slope %.2f)", loglog_slope(r->P, r->t_loss, NSIZES));
    sprintf(label_ratio, "forward / reverse, measured (slope %.2f)", loglog_slope(r->P, r->ratio, NSIZES));
    return chart_save("forward_vs_reverse", out_dir, "forward_vs_reverse.svg", NULL, panels, 2);
}

int main(int argc, char **argv)
{
    const char *out_dir = argc > 1 ? argv[1] : "build";
    const int last = NSIZES - 1;
    results r;
    double worst_diff = 0, slope;
    int s, agree = 1, grows, chart_written;
    bp_rng rng;
    bp_rng_seed(&rng, 7);

    printf("The gradient of L = MSE(Linear(H->2)(ReLU(Linear(4->H)(x))), y), batch %d, double precision,\n",
           BATCH);
    printf("for all P parameters: by reverse mode (1 forward + 1 backward pass) and by forward mode (P passes,\n");
    printf("each carrying the tangents d(value)/dp of one parameter p).  Times: fastest of %d, interleaved.\n\n",
           ROUNDS);
    printf("    H      P   loss alone    reverse   forward mode   fwd/rev  (fwd/rev)/P   max|fwd-rev|/max|rev|\n");
    for (s = 0; s < NSIZES; s++) {
        if (measure_width(s, &rng, &r) != 0) {
            fprintf(stderr, "forward_vs_reverse: out of memory\n");
            return 1;
        }
        if (!(r.diff[s] <= AGREE_TOL)) agree = 0; /* (a NaN fails too) */
        if (r.diff[s] > worst_diff) worst_diff = r.diff[s];
        printf("  %3d  %5d  %8.2f us %8.2f us %11.1f us  %7.1f  %9.2f    %12.1e%s\n", hidden_widths[s], (int)r.P[s],
               1e6 * r.t_loss[s], 1e6 * r.t_rev[s], 1e6 * r.t_fwd[s], r.ratio[s], r.ratio[s] / r.P[s], r.diff[s],
               r.diff[s] <= AGREE_TOL ? "" : "  DISAGREE");
    }

    slope = loglog_slope(r.P, r.ratio, NSIZES);
    printf("\nslope of log(fwd/rev) against log(P): %.2f  (1: forward mode's extra cost is proportional to P)\n",
           slope);
    printf("at P = %d: reverse mode costs %.1f loss evaluations, forward mode %.0f\n", (int)r.P[last],
           r.t_rev[last] / r.t_loss[last], r.t_fwd[last] / r.t_loss[last]);
    grows = slope >= 0.5 && r.ratio[last] > 4 * r.ratio[0];
    if (!grows)
        printf("the cost ratio does not grow with P as expected (slope %.2f, ratio %.1f at P = %d, %.1f at P = %d)\n",
               slope, r.ratio[0], (int)r.P[0], r.ratio[last], (int)r.P[last]);

    make_folder(out_dir);
    chart_written = write_chart(out_dir, &r) == 0;

    if (agree && grows)
        printf("OK: forward and reverse mode agree to %.1e; at P = %d forward mode takes %.0fx reverse mode's time "
               "(%.2f P), log-log slope %.2f\n",
               worst_diff, (int)r.P[last], r.ratio[last], r.ratio[last] / r.P[last], slope);
    else
        printf("FAILED: max rel. diff %.1e (limit %.0e), log-log slope of the cost ratio %.2f (needs >= 0.5)\n",
               worst_diff, AGREE_TOL, slope);
    return agree && grows && chart_written ? 0 : 1;
}
