/* checkpointing.c - what the forward pass must store for backprop, and what gradient checkpointing trades.

   The network: DEPTH = 36 layers, each Linear(256 -> 256) followed by ReLU, on a batch of 64, with the
   mean squared error against fixed random targets, trained a few steps with plain SGD.

   WHAT BACKWARD NEEDS.  Layer l computes z_l = x_l W_l + b_l and a_l = max(0, z_l) = x_(l+1).  Going
   back through it, the chain rule needs two of the forward's values:
       the ReLU's input z_l      for  dz_l = da_l * 1[z_l > 0]       (bp_relu_backward's z)
       the Linear's input x_l    for  dW_l = x_l^T dz_l              (bp_linear_backward's x)
   (dx_l = dz_l W_l^T needs only the weights, which are kept anyway.)  So the forward pass leaves behind
   two 64x256 tensors per layer, and they all wait in memory until backward reaches their layer: the
   activation memory grows with depth, and in big networks it, not the weights, fills the memory.
   (ReLU's mask could also be read from its output, since a > 0 exactly where z > 0, which would save
   one tensor per layer; this program keeps what the library's backward functions take: x and z.)

   PLAN A, CACHE ALL: keep every x_l and z_l.  2 * DEPTH = 72 tensors; one forward, one backward.

   PLAN B, CHECKPOINT EVERY k LAYERS: cut the network into segments of k layers.  The forward pass keeps
   only each segment's input (its checkpoint) and runs the segment through ONE set of buffers for k layers,
   reused by every segment.  Backward takes the segments last to first: it reruns the segment's forward
   from its checkpoint, which refills the buffers with exactly the x's and z's plan A kept, then
   back-propagates through the segment.  The last segment needs no rerun: the forward pass left its values
   in the buffers.
       memory   ceil(DEPTH/k) - 1 checkpoints (the first segment's input is the data batch itself) + k z's
                + k - 1 x's + the output: about DEPTH/k + 2k tensors, 16 at k = 4 and 17 at k = 6 = sqrt(36),
                against 72.  Small k keeps many checkpoints, large k makes big segments; in between, near
                k = sqrt(DEPTH/2), the total grows like sqrt(DEPTH) instead of like DEPTH.
       time     DEPTH - k layers run forward twice: at most one extra forward pass F.  Backward costs about
                two forwards (two matrix products per layer against one), so a step of about 3 F becomes
                about 4 F: up to ~1.3x.  The program prints the F it measured and the slowdown to expect.

   Plan B calls the same layer functions on the same numbers in the same order as plan A, so it must give
   the same gradients bit for bit: the program checks that with memcmp (every step's loss, the last step's
   gradients, and the weights after all steps, which every step's gradients went into) and exits non-zero
   if anything differs.
   It prints the activation bytes each plan allocated and its time per training step, and writes the chart
   checkpointing.svg (a chart it cannot write makes the exit status non-zero too; stderr says why).

   Build and run:  make checkpoint    (or ./build/checkpointing [OUT_DIR], from any folder)
   OUT_DIR: where the chart goes, default build (created if missing).
   Timing: C's clock(): processor time on Linux and macOS (a busy shared machine disturbs it less than a
   wall clock), wall time on Windows.  Each plan trains ROUNDS times from the same start, the plans taking
   turns; its time is its fastest step. */

#define BACKPROP_IMPLEMENTATION
#include "../backprop.h"

#include "chart.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* A sanitizer build (make sanitize) checks memory and undefined behaviour, not speed, and runs some 40x
   slower: there the layers are narrower and each plan trains once (the timings mean little then). */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZER_BUILD
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZER_BUILD
#endif
#endif

#define DEPTH 36
#define STEPS 3 /* training steps per plan and round */
#ifdef SANITIZER_BUILD
#define WIDTH 64
#define BATCH 16
#define ROUNDS 1
#else
#define WIDTH 256
#define BATCH 64
#define ROUNDS 4 /* each plan trains ROUNDS times from the start; its time is its fastest step */
#endif
#define LR 0.01f
#define NPLANS 7
static const int segment_lengths[NPLANS - 1] = {1, 2, 4, 6, 12, 36}; /* the k's of plan B */

/* ---- the network and the two things every plan does per layer ---- */

typedef struct net {
    bp_tensor W[DEPTH], b[DEPTH];   /* layer l: z = x W[l] + b[l] */
    bp_tensor dW[DEPTH], db[DEPTH]; /* their gradients (not allocated in copies that keep weights only) */
} net;

static void net_new(net *n, int with_gradients)
{
    int l;
    for (l = 0; l < DEPTH; l++) {
        n->W[l] = bp_tensor_new(WIDTH, WIDTH);
        n->b[l] = bp_tensor_new(1, WIDTH);
        n->dW[l] = bp_tensor_new(with_gradients ? WIDTH : 0, with_gradients ? WIDTH : 0);
        n->db[l] = bp_tensor_new(1, with_gradients ? WIDTH : 0);
    }
}

static void net_free(net *n)
{
    int l;
    for (l = 0; l < DEPTH; l++) {
        bp_tensor_free(&n->W[l]);
        bp_tensor_free(&n->b[l]);
        bp_tensor_free(&n->dW[l]);
        bp_tensor_free(&n->db[l]);
    }
}

static size_t bytes_of(const bp_tensor *t) { return (size_t)t->rows * (size_t)t->cols * sizeof(bp_real); }

static void copy_tensor(bp_tensor *to, const bp_tensor *from) { memcpy(to->data, from->data, bytes_of(from)); }

static int same_bits(const bp_tensor *a, const bp_tensor *b)
{
    return a->rows == b->rows && a->cols == b->cols && memcmp(a->data, b->data, bytes_of(a)) == 0;
}

/* Forward through layer l:  z = x W + b,  a = max(0, z).  Backward will need x and z. */
static void layer_forward(net *n, int l, const bp_tensor *x, bp_tensor *z, bp_tensor *a)
{
    bp_linear_forward(x, &n->W[l], &n->b[l], z);
    bp_relu_forward(z, a);
}

/* Back through layer l, given *g = dL/da.  Writes dW[l], db[l], and swaps the two gradient buffers so
   that *g = dL/dx (= dL/da of layer l-1) afterwards.  Needs the forward's x and z of this layer. */
static void layer_backward(net *n, int l, const bp_tensor *x, const bp_tensor *z, bp_tensor **g, bp_tensor **gx)
{
    bp_tensor *t;
    /* dz = da * 1[z > 0], in place */
    bp_relu_backward(z, *g, *g);
    /* dW = x^T dz,  db = column sums of dz,  dx = dz W^T (not needed below the first layer) */
    bp_linear_backward(x, &n->W[l], *g, l > 0 ? *gx : NULL, &n->dW[l], &n->db[l]);
    t = *g;
    *g = *gx;
    *gx = t;
}

static void sgd_update(net *n)
{
    int l;
    for (l = 0; l < DEPTH; l++) {
        bp_sgd_step(&n->W[l], &n->dW[l], LR);
        bp_sgd_step(&n->b[l], &n->db[l], LR);
    }
}

/* A BATCH x WIDTH tensor for activations, its bytes added to *bytes: the plans' memory is counted here. */
static bp_tensor new_activation(size_t *bytes)
{
    *bytes += (size_t)BATCH * WIDTH * sizeof(bp_real);
    return bp_tensor_new(BATCH, WIDTH);
}

/* ---- plan A: cache every layer's x and z ---- */

typedef struct cache_all {
    bp_tensor x[DEPTH]; /* x[l], the input of layer l; x[0] is the data batch itself (not allocated here) */
    bp_tensor z[DEPTH]; /* z[l], the input of layer l's ReLU */
    bp_tensor out;      /* the output a of the last layer, for the loss */
    size_t bytes;       /* what the activations above take */
} cache_all;

static void cache_all_new(cache_all *c, const bp_tensor *input)
{
    int l;
    c->bytes = 0;
    c->x[0] = *input;
    for (l = 1; l < DEPTH; l++) c->x[l] = new_activation(&c->bytes);
    for (l = 0; l < DEPTH; l++) c->z[l] = new_activation(&c->bytes);
    c->out = new_activation(&c->bytes);
}

static void cache_all_free(cache_all *c)
{
    int l;
    for (l = 1; l < DEPTH; l++) bp_tensor_free(&c->x[l]);
    for (l = 0; l < DEPTH; l++) bp_tensor_free(&c->z[l]);
    bp_tensor_free(&c->out);
}

static void cache_all_forward(cache_all *c, net *n)
{
    int l;
    for (l = 0; l < DEPTH; l++) layer_forward(n, l, &c->x[l], &c->z[l], l + 1 < DEPTH ? &c->x[l + 1] : &c->out);
}

/* Forward (keeping everything), loss, backward.  g and gx are two BATCH x WIDTH gradient buffers. */
static bp_real cache_all_gradient(cache_all *c, net *n, const bp_tensor *y, bp_tensor *g, bp_tensor *gx)
{
    bp_real loss;
    int l;
    cache_all_forward(c, n);
    loss = bp_mse_forward(&c->out, y);
    bp_mse_backward(&c->out, y, g); /* g = dL/d(out) */
    for (l = DEPTH - 1; l >= 0; l--) layer_backward(n, l, &c->x[l], &c->z[l], &g, &gx);
    return loss;
}

/* ---- plan B: keep each segment's input; rerun the segment's forward during backward ---- */

typedef struct checkpointed {
    int k, segments;       /* segment length, and ceil(DEPTH / k) segments */
    bp_tensor ckpt[DEPTH]; /* ckpt[s], the input of segment s; ckpt[0] is the data batch (not allocated) */
    bp_tensor x[DEPTH];    /* ONE segment's buffers: x[j], the input of its layer j (x[0] is unused: that
                              input is the checkpoint) ... */
    bp_tensor z[DEPTH];    /* ... and z[j], for j = 0 .. k-1 */
    bp_tensor out;         /* the output a of the last layer, for the loss */
    size_t bytes;
} checkpointed;

static void checkpointed_new(checkpointed *c, int k, const bp_tensor *input)
{
    int s, j;
    c->k = k;
    c->segments = (DEPTH + k - 1) / k;
    c->bytes = 0;
    c->ckpt[0] = *input;
    for (s = 1; s < c->segments; s++) c->ckpt[s] = new_activation(&c->bytes);
    for (j = 1; j < k; j++) c->x[j] = new_activation(&c->bytes);
    for (j = 0; j < k; j++) c->z[j] = new_activation(&c->bytes);
    c->out = new_activation(&c->bytes);
}

static void checkpointed_free(checkpointed *c)
{
    int s, j;
    for (s = 1; s < c->segments; s++) bp_tensor_free(&c->ckpt[s]);
    for (j = 1; j < c->k; j++) bp_tensor_free(&c->x[j]);
    for (j = 0; j < c->k; j++) bp_tensor_free(&c->z[j]);
    bp_tensor_free(&c->out);
}

/* The layers of segment s: first = s*k, and count of them (the last segment may be shorter). */
static int segment_count(const checkpointed *c, int s)
{
    int first = s * c->k;
    return DEPTH - first < c->k ? DEPTH - first : c->k;
}

/* The input of layer j of the current segment s: its checkpoint for j = 0, else the buffer x[j]. */
static bp_tensor *segment_input(checkpointed *c, int s, int j) { return j == 0 ? &c->ckpt[s] : &c->x[j]; }

/* Forward through segment s from its checkpoint, filling the segment's buffers x[1..], z[0..].  The last
   layer's output goes to the next checkpoint (or the network's output).  When this is a rerun during
   backward, that rewrites the next checkpoint with the very same numbers: harmless. */
static void segment_forward(checkpointed *c, net *n, int s)
{
    int j, count = segment_count(c, s);
    for (j = 0; j < count; j++) {
        bp_tensor *a = j + 1 < count ? &c->x[j + 1] : s + 1 < c->segments ? &c->ckpt[s + 1] : &c->out;
        layer_forward(n, s * c->k + j, segment_input(c, s, j), &c->z[j], a);
    }
}

/* Forward (keeping the checkpoints), loss, then backward segment by segment, last to first, each segment
   rerun from its checkpoint first.  The layer calls are plan A's, in plan A's order. */
static bp_real checkpointed_gradient(checkpointed *c, net *n, const bp_tensor *y, bp_tensor *g, bp_tensor *gx)
{
    bp_real loss;
    int s, j;
    for (s = 0; s < c->segments; s++) segment_forward(c, n, s); /* keeps only the checkpoints (and out) */
    loss = bp_mse_forward(&c->out, y);
    bp_mse_backward(&c->out, y, g);
    for (s = c->segments - 1; s >= 0; s--) {
        if (s < c->segments - 1) segment_forward(c, n, s); /* the rerun: this segment's x's and z's again */
        for (j = segment_count(c, s) - 1; j >= 0; j--)
            layer_backward(n, s * c->k + j, segment_input(c, s, j), &c->z[j], &g, &gx);
    }
    return loss;
}

/* ---- training a few steps with either plan ---- */

typedef struct outcome {
    double seconds;           /* the fastest training step */
    size_t bytes;             /* activation memory the plan allocated */
    int checkpoints, buffers; /* what that memory is, in BATCH x WIDTH tensors (plus the output) */
    int rerun;                /* layers whose forward runs twice per step */
    bp_real losses[STEPS];    /* the loss at each step */
} outcome;

/* STEPS steps of SGD from the weights in start, with plan A (k == 0) or plan B (checkpoints every k layers).
   n ends with the trained weights and the last step's gradients. */
static outcome train(int k, net *n, const net *start, const bp_tensor *input, const bp_tensor *y, bp_tensor *g,
                     bp_tensor *gx)
{
    outcome o;
    cache_all A;
    checkpointed B;
    int l, step;
    for (l = 0; l < DEPTH; l++) { /* every plan starts from the same weights */
        copy_tensor(&n->W[l], &start->W[l]);
        copy_tensor(&n->b[l], &start->b[l]);
    }
    if (k == 0) {
        cache_all_new(&A, input);
        o.bytes = A.bytes;
        o.checkpoints = 0;
        o.buffers = 2 * DEPTH - 1; /* DEPTH - 1 x's, DEPTH z's */
        o.rerun = 0;
    } else {
        checkpointed_new(&B, k, input);
        o.bytes = B.bytes;
        o.checkpoints = B.segments - 1;
        o.buffers = 2 * k - 1;                               /* k - 1 x's, k z's */
        o.rerun = DEPTH - segment_count(&B, B.segments - 1); /* all layers but the last segment's */
    }
    o.seconds = 1e300;
    for (step = 0; step < STEPS; step++) {
        clock_t t0 = clock();
        double t;
        o.losses[step] = k == 0 ? cache_all_gradient(&A, n, y, g, gx) : checkpointed_gradient(&B, n, y, g, gx);
        sgd_update(n);
        t = (double)(clock() - t0) / CLOCKS_PER_SEC;
        if (t < o.seconds) o.seconds = t;
    }
    if (k == 0)
        cache_all_free(&A);
    else
        checkpointed_free(&B);
    return o;
}

/* The fastest of STEPS forward passes alone (plan A's): F, to predict what a rerun costs. */
static double forward_seconds(net *n, const bp_tensor *input)
{
    cache_all A;
    double best = 1e300;
    int step;
    cache_all_new(&A, input);
    for (step = 0; step < STEPS; step++) {
        clock_t t0 = clock();
        double t;
        cache_all_forward(&A, n);
        t = (double)(clock() - t0) / CLOCKS_PER_SEC;
        if (t < best) best = t;
    }
    cache_all_free(&A);
    return best;
}

/* ---- every plan, in turns ---- */

/* What the plans did.  Plan 0 is plan A, plan p >= 1 plan B with k = segment_lengths[p - 1]. */
typedef struct comparison {
    outcome result[NPLANS];                              /* each plan's fastest round */
    int identical[NPLANS];                               /* plan B matched plan A bit for bit, every round */
    double F;                                            /* seconds: the fastest forward pass alone */
    char name[NPLANS][32];                               /* "cache all", "k = 1", ... */
    double memory_percent[NPLANS], time_percent[NPLANS]; /* of plan A's */
} comparison;

static int plan_k(int plan) { return plan == 0 ? 0 : segment_lengths[plan - 1]; }

/* Copies the weights and gradients of from into to. */
static void copy_net(net *to, const net *from)
{
    int l;
    for (l = 0; l < DEPTH; l++) {
        copy_tensor(&to->W[l], &from->W[l]);
        copy_tensor(&to->b[l], &from->b[l]);
        copy_tensor(&to->dW[l], &from->dW[l]);
        copy_tensor(&to->db[l], &from->db[l]);
    }
}

/* Plan B must match plan A bit for bit: every loss, the final weights, the last gradients. */
static int same_as_plan_A(const outcome *o, const net *n, const outcome *A, const net *after_A)
{
    int l, same = memcmp(o->losses, A->losses, sizeof o->losses) == 0;
    for (l = 0; l < DEPTH; l++)
        same &= same_bits(&n->W[l], &after_A->W[l]) && same_bits(&n->b[l], &after_A->b[l]) &&
                same_bits(&n->dW[l], &after_A->dW[l]) && same_bits(&n->db[l], &after_A->db[l]);
    return same;
}

/* ROUNDS rounds, the plans taking turns in each, so that a slow spell of a shared machine hits them alike;
   every round retrains from the same start, and every plan B is checked against plan A in every round. */
static void compare_plans(const net *start, const bp_tensor *input, const bp_tensor *y, comparison *c)
{
    bp_tensor g = bp_tensor_new(BATCH, WIDTH), gx = bp_tensor_new(BATCH, WIDTH); /* gradients, both plans */
    net n, after_A; /* the trained network; plan A's final weights and gradients, the reference */
    int plan, round;
    net_new(&n, 1);
    net_new(&after_A, 1);
    for (plan = 0; plan < NPLANS; plan++) c->identical[plan] = 1;
    for (round = 0; round < ROUNDS; round++)
        for (plan = 0; plan < NPLANS; plan++) {
            outcome o = train(plan_k(plan), &n, start, input, y, &g, &gx);
            if (round == 0 || o.seconds < c->result[plan].seconds) c->result[plan] = o;
            if (plan == 0) {
                double t = forward_seconds(&n, input);
                if (round == 0 || t < c->F) c->F = t;
                if (round == 0) copy_net(&after_A, &n); /* plan A's result is the reference */
            } else if (!same_as_plan_A(&o, &n, &c->result[0], &after_A)) {
                c->identical[plan] = 0;
            }
        }
    for (plan = 0; plan < NPLANS; plan++) {
        int k = plan_k(plan);
        if (plan == 0)
            sprintf(c->name[plan], "cache all");
        else
            sprintf(c->name[plan], k * k == DEPTH ? "k = %d = sqrt %d" : "k = %d", k, DEPTH);
        c->memory_percent[plan] = 100.0 * (double)c->result[plan].bytes / (double)c->result[0].bytes;
        c->time_percent[plan] = 100.0 * c->result[plan].seconds / c->result[0].seconds;
    }
    net_free(&n);
    net_free(&after_A);
    bp_tensor_free(&g);
    bp_tensor_free(&gx);
}

/* ---- what they cost ---- */

/* The table, one row per plan, and plan A's losses. */
static void print_plans(const comparison *c)
{
    const outcome *A = &c->result[0];
    int plan, step;
    printf("  %-16s %11s %8s %4s %6s   %-16s  %9s  %6s  %-11s  %8s\n", "plan", "checkpoints", "buffers", "out",
           "total", "activation bytes", "step time", "vs A", "run twice", "expected");
    for (plan = 0; plan < NPLANS; plan++) {
        const outcome *o = &c->result[plan];
        double expected = 1 + o->rerun * (c->F / DEPTH) / A->seconds; /* plan A's step + the rerun layers */
        printf("  %-16s %11d %8d %4d %6d   %9lu (%3.0f%%)  %6.1f ms  %5.2fx  %2d = %.2f F  %7.2fx   %s\n",
               plan == 0 ? "A: cache all" : c->name[plan], o->checkpoints, o->buffers, 1,
               o->checkpoints + o->buffers + 1, (unsigned long)o->bytes, c->memory_percent[plan], 1e3 * o->seconds,
               c->time_percent[plan] / 100, o->rerun, (double)o->rerun / DEPTH, expected,
               plan == 0             ? "(the reference)"
               : c->identical[plan] ? "gradients bit-identical"
                                    : "gradients DIFFER");
    }
    printf("\ncheckpoints, buffers, out: the %dx%d activation tensors a plan keeps (plan B's buffers: k z's\n",
           BATCH, WIDTH);
    printf("and k - 1 x's).  run twice: the layers whose forward runs again during backward, as a fraction of\n");
    printf("one forward pass F = %.1f ms (%.0f%% of plan A's step); expected = 1 + (run twice) x F / (A's step).\n",
           1e3 * c->F, 100 * c->F / A->seconds);
    printf("plan A's loss per step:");
    for (step = 0; step < STEPS; step++) printf(" %.6f", (double)A->losses[step]);
}

/* Per plan, activation memory and step time as % of plan A's. */
static int write_chart(const char *out_dir, const comparison *c)
{
    double plan[NPLANS], hundred[NPLANS]; /* x = 1 .. NPLANS; plan A's 100% */
    const char *names[NPLANS];
    char title[100];
    const chart_line lines[3] = {
        {"activation memory kept for backward", "#1f77b4", plan, c->memory_percent, NPLANS, 0},
        {"time per training step", "#ff7f0e", plan, c->time_percent, NPLANS, 0},
        {"plan A = 100%", "#888888", plan, hundred, NPLANS, 1},
    };
    const chart_panel panel = {title, "plan A (cache all), then plan B with a checkpoint every k layers",
                               "% of plan A", 0, 0, names, lines, 3};
    int i;
    for (i = 0; i < NPLANS; i++) {
        plan[i] = i + 1;
        hundred[i] = 100;
        names[i] = c->name[i];
    }
    sprintf(title, "Gradient checkpointing: %d layers of %dx%d, batch %d", DEPTH, WIDTH, WIDTH, BATCH);
    return chart_save("checkpointing", out_dir, "checkpointing.svg", NULL, &panel, 1);
}

int main(int argc, char **argv)
{
    const char *out_dir = argc > 1 ? argv[1] : "build";
    bp_tensor input = bp_tensor_new(BATCH, WIDTH), y = bp_tensor_new(BATCH, WIDTH);
    static comparison c; /* static: ~1 KB, kept off the stack by habit */
    net start;           /* the weights every plan starts from */
    bp_rng rng;
    int plan, l, all_identical = 1, sqrt_plan = 0, chart_written;

    bp_rng_seed(&rng, 3);
    bp_tensor_randn(&input, &rng, 1);
    bp_tensor_randn(&y, &rng, 1);
    net_new(&start, 0);
    for (l = 0; l < DEPTH; l++) bp_init_he(&start.W[l], &rng); /* biases start at 0 */

    printf("%d layers Linear(%d->%d) + ReLU, batch %d, %s; %d SGD steps per plan, from the same start.\n", DEPTH,
           WIDTH, WIDTH, BATCH, sizeof(bp_real) == 4 ? "float" : "double", STEPS);
    printf("Backward needs, per layer, the Linear's input x (for dW = x^T dz) and the ReLU's input z (for the\n");
    printf("mask 1[z > 0]).  Activation tensors are %dx%d, %lu bytes each.  Step time: fastest of %d.\n\n", BATCH,
           WIDTH, (unsigned long)((size_t)BATCH * WIDTH * sizeof(bp_real)), ROUNDS * STEPS);
    compare_plans(&start, &input, &y, &c);
    print_plans(&c);
    for (plan = 0; plan < NPLANS; plan++) {
        all_identical &= c.identical[plan];
        if (plan_k(plan) * plan_k(plan) == DEPTH) sqrt_plan = plan;
    }
    printf(all_identical ? "; every plan B: the same bits, and the same final weights\n" : "\n");

    make_folder(out_dir);
    chart_written = write_chart(out_dir, &c) == 0;

    if (all_identical)
        printf("OK: checkpoints every %d layers keep %.0f%% of the activation memory (%lu of %lu bytes) for %.2fx "
               "the step time; gradients bit-identical for every k\n",
               plan_k(sqrt_plan), c.memory_percent[sqrt_plan], (unsigned long)c.result[sqrt_plan].bytes,
               (unsigned long)c.result[0].bytes, c.time_percent[sqrt_plan] / 100);
    else
        printf("FAILED: checkpointed gradients differ from the cache-all gradients\n");

    net_free(&start);
    bp_tensor_free(&input);
    bp_tensor_free(&y);
    return all_identical && chart_written ? 0 : 1;
}
