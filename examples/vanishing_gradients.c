/* vanishing_gradients.c - why gradients vanish or explode in deep networks, and why ReLU, residual
   connections and normalisation help.

   One forward and one backward pass through a deep stack: DEPTH = 20 layers, each 64 -> 64 wide, on a
   batch of 64 random N(0,1) inputs, with the mean squared error against random N(0,1) targets at the end:

       h_0 = x,   z_l = h_{l-1} W_l + b_l,   h_l = act(z_l)   (l = 1 .. 20),   loss = MSE(h_20, y)

   Backpropagation runs the chain rule from the loss down to layer 1.  At every layer the gradient is
   multiplied by the activation's derivative and by W_l^T:

       dL/dz_l = dL/dh_l * act'(z_l)          dL/dW_l = h_{l-1}^T dL/dz_l          dL/dh_{l-1} = dL/dz_l W_l^T

   so the gradient reaching layer 1 carries a PRODUCT of 19 such factors.  A product of many numbers below 1
   vanishes; above 1, it explodes.  The program measures ||dL/dW_l|| for every layer in seven stacks:

     sigmoid   (Xavier init)  sigmoid'(z) = s(1-s) is at most 1/4 (at z = 0): the gradient shrinks ~4x or more
                              per layer, so layer 1's gradient is ~10^12 times smaller than layer 20's.
     tanh      (Xavier init)  tanh'(0) = 1: flat at this init (tanh vanishes too once its units saturate).
     ReLU      (He init)      ReLU' is 1 or 0, and He's std sqrt(2/fan_in) makes the gain 1 on average.
     residual  (He / 20)      h_l = h_{l-1} + relu(z_l): the skip path hands the gradient down unchanged.
     sigmoid + batch norm     the sigmoid stack with each linear map's input normalised,
     sigmoid + layer norm     z_l = norm(h_{l-1}) W_l + b_l (bp_batchnorm_*, bp_layernorm_*): the norm's
               (Xavier)       backward multiplies by rstd = 1/std(h_{l-1}) ~ 5, and the sigmoid, which takes
                              ~0.2 of the signal (its slope), also leaves ~0.2 of the spread in its outputs:
                              the two cancel, layer after layer, whatever the init's scale.
     ReLU 2x He               a too-large init: every layer doubles the signal, forward and backward.

   (Where the norm goes matters for layer norm.  Put between W and the sigmoid instead, h_l = s(LN(z_l)), it
   leaves ~0.4 per layer (measured: ||dW_1||/||dW_20|| = 1.4e-8): the sigmoid's outputs share a mean of
   ~0.5 in every feature, so z = hW carries a pattern 0.5 * column sums of W, the same for every example,
   which layer norm (over one example's features) counts as spread and divides by, while batch norm (over
   the batch, per feature) removes it.  Batch norm works in either place.)

   and then shows what gradient clipping (bp_clip_grad_norm) does to the exploding one.  It asserts each
   claim and exits non-zero if one fails; the last line is a one-line summary.  It writes two charts:
   vanishing_gradients.svg and exploding_gradients.svg (log-scale SVG, any browser opens them).

   Build and run:  make vanishing          (or ./build/vanishing_gradients [OUT_DIR], from any folder)
   OUT_DIR: where the charts go, default build (created if missing).  Runs in ~20 ms: 7 stacks x 20 layers
   of 64x64x64 matmuls, forward and back, and the norms. */

#define BACKPROP_IMPLEMENTATION
#include "../backprop.h"

#include "chart.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define DEPTH 20
#define WIDTH 64
#define BATCH 64
#define MAX_NORM 1.0 /* gradient clipping threshold */

enum activation { SIGMOID, TANH, RELU };
enum init { XAVIER, HE };
enum norm { NO_NORM, BATCH_NORM, LAYER_NORM };

/* One variant of the stack: how it is built. */
typedef struct variant {
    const char *name;
    enum activation act;
    enum init init;
    double init_scale; /* the init's std is multiplied by this */
    int residual;      /* 1: h_l = h_{l-1} + act(z_l) */
    enum norm norm;    /* BATCH_NORM, LAYER_NORM: z_l = norm(h_{l-1}) W_l + b_l */
} variant;

/* The stack's tensors.  Arrays are indexed by layer, l = 1 (nearest the input) .. DEPTH; index 0 of the
   per-layer arrays is unused (never allocated), except h[0], which is the input x. */
typedef struct stack {
    bp_tensor W[DEPTH + 1], b[DEPTH + 1];   /* parameters: W_l is WIDTH x WIDTH, b_l is 1 x WIDTH */
    bp_tensor dW[DEPTH + 1], db[DEPTH + 1]; /* their gradients */
    bp_tensor z[DEPTH + 1];                 /* forward cache: pre-activations z_l = h_{l-1} W_l + b_l */
    bp_tensor h[DEPTH + 1];                 /* forward cache: h_0 = x, h_l = output of layer l */
    bp_tensor dz[DEPTH + 1];                /* dL/dz_l, kept to print */
    bp_tensor dh, dh_below, dbranch;        /* scratch for the backward pass (BATCH x WIDTH each) */
    /* normalisation of each linear map's input: u_l = norm(h_{l-1}), z_l = u_l W_l + b_l */
    bp_tensor u[DEPTH + 1];                 /* forward cache: the normalised h_{l-1} */
    bp_tensor mean[DEPTH + 1], rstd[DEPTH + 1]; /* forward cache: 1 x WIDTH (batch norm), BATCH x 1 (layer) */
    bp_tensor gamma, beta;                  /* gamma = 1, beta = 0 (not trained here) */
} stack;

/* What we measure on one stack. */
typedef struct measures {
    double dW_norm[DEPTH + 1]; /* ||dL/dW_l|| */
    double dz_norm[DEPTH + 1]; /* ||dL/dz_l||: the backward signal arriving at layer l */
    double h_norm[DEPTH + 1];  /* ||h_l||: the forward signal (h_0 = x) */
    double mean_act_slope;     /* the average of act'(z) over every unit of every layer */
    double mean_rstd;          /* with a norm: the average of its rstd over every layer (else 0) */
    double ratio;              /* ||dL/dW_1|| / ||dL/dW_DEPTH||: 1 if every layer gets as much gradient */
} measures;

static void stack_alloc(stack *s, bp_tensor *x)
{
    int l;
    s->h[0] = *x; /* a copy of the struct: the same buffer, freed by main, not here */
    for (l = 1; l <= DEPTH; l++) {
        s->W[l] = bp_tensor_new(WIDTH, WIDTH);
        s->b[l] = bp_tensor_new(1, WIDTH); /* biases start at 0 (bp_tensor_new zero-fills) */
        s->dW[l] = bp_tensor_new(WIDTH, WIDTH);
        s->db[l] = bp_tensor_new(1, WIDTH);
        s->z[l] = bp_tensor_new(BATCH, WIDTH);
        s->h[l] = bp_tensor_new(BATCH, WIDTH);
        s->dz[l] = bp_tensor_new(BATCH, WIDTH);
    }
    s->dh = bp_tensor_new(BATCH, WIDTH);
    s->dh_below = bp_tensor_new(BATCH, WIDTH);
    s->dbranch = bp_tensor_new(BATCH, WIDTH);
    for (l = 1; l <= DEPTH; l++) {
        s->u[l] = bp_tensor_new(BATCH, WIDTH);
        s->mean[l] = bp_tensor_new(BATCH, WIDTH); /* room for either shape; reshaped by norm_stats */
        s->rstd[l] = bp_tensor_new(BATCH, WIDTH);
    }
    s->gamma = bp_tensor_new(1, WIDTH);
    s->beta = bp_tensor_new(1, WIDTH);
    for (l = 0; l < WIDTH; l++) s->gamma.data[l] = 1;
}

/* The shape of the norm's statistics: one per feature (batch norm) or one per example (layer norm). */
static void norm_stats(stack *s, const variant *v, int l)
{
    s->mean[l].rows = s->rstd[l].rows = v->norm == LAYER_NORM ? BATCH : 1;
    s->mean[l].cols = s->rstd[l].cols = v->norm == LAYER_NORM ? 1 : WIDTH;
}

static void stack_free(stack *s)
{
    int l;
    for (l = 1; l <= DEPTH; l++) {
        bp_tensor_free(&s->W[l]); bp_tensor_free(&s->b[l]);
        bp_tensor_free(&s->dW[l]); bp_tensor_free(&s->db[l]);
        bp_tensor_free(&s->z[l]); bp_tensor_free(&s->h[l]); bp_tensor_free(&s->dz[l]);
    }
    bp_tensor_free(&s->dh); bp_tensor_free(&s->dh_below); bp_tensor_free(&s->dbranch);
    for (l = 1; l <= DEPTH; l++) {
        bp_tensor_free(&s->u[l]); bp_tensor_free(&s->mean[l]); bp_tensor_free(&s->rstd[l]);
    }
    bp_tensor_free(&s->gamma); bp_tensor_free(&s->beta);
}

/* Every variant draws its weights from the same seed, so they differ only in scale and activation. */
static void stack_init(stack *s, const variant *v)
{
    bp_rng rng;
    int l;
    size_t i;
    bp_rng_seed(&rng, 2024);
    for (l = 1; l <= DEPTH; l++) {
        if (v->init == HE)
            bp_init_he(&s->W[l], &rng);     /* N(0, 2/fan_in): std 0.177 for fan_in 64 */
        else
            bp_init_xavier(&s->W[l], &rng); /* N(0, 2/(fan_in+fan_out)): std 0.125 for 64 -> 64 */
        for (i = 0; i < (size_t)WIDTH * WIDTH; i++) s->W[l].data[i] *= (bp_real)v->init_scale;
    }
}

static bp_real forward(stack *s, const variant *v, const bp_tensor *y)
{
    int l;
    size_t i;
    for (l = 1; l <= DEPTH; l++) {
        const bp_tensor *in = &s->h[l - 1]; /* what the linear map takes: h_{l-1}, or norm(h_{l-1}) */
        if (v->norm) { /* u_l = norm(h_{l-1}): mean 0, variance 1 per feature (batch) or per example (layer) */
            norm_stats(s, v, l);
            if (v->norm == BATCH_NORM)
                bp_batchnorm_forward(in, &s->gamma, &s->beta, (bp_real)1e-5, &s->u[l], &s->mean[l], &s->rstd[l]);
            else
                bp_layernorm_forward(in, &s->gamma, &s->beta, (bp_real)1e-5, &s->u[l], &s->mean[l], &s->rstd[l]);
            in = &s->u[l];
        }
        bp_linear_forward(in, &s->W[l], &s->b[l], &s->z[l]); /* z_l = h_{l-1} W_l + b_l  (or u_l W_l + b_l) */
        if (v->act == SIGMOID) bp_sigmoid_forward(&s->z[l], &s->h[l]);
        if (v->act == TANH) bp_tanh_forward(&s->z[l], &s->h[l]);
        if (v->act == RELU) bp_relu_forward(&s->z[l], &s->h[l]);
        if (v->residual) /* h_l = h_{l-1} + relu(z_l): add the skip path */
            for (i = 0; i < (size_t)BATCH * WIDTH; i++) s->h[l].data[i] += s->h[l - 1].data[i];
    }
    return bp_mse_forward(&s->h[DEPTH], y);
}

static void backward(stack *s, const variant *v, const bp_tensor *y)
{
    int l;
    size_t i;
    bp_tensor swap;
    bp_mse_backward(&s->h[DEPTH], y, &s->dh); /* dh = dL/dh_20 = 2/N (h_20 - y) */
    for (l = DEPTH; l >= 1; l--) {
        /* here dh = dL/dh_l.  Through the activation: dz_l = dh * act'(z_l) */
        if (v->act == SIGMOID) bp_sigmoid_backward(&s->h[l], &s->dh, &s->dz[l]); /* * s(1-s), s = h_l */
        if (v->act == TANH) bp_tanh_backward(&s->h[l], &s->dh, &s->dz[l]);       /* * (1 - h_l^2) */
        if (v->act == RELU) bp_relu_backward(&s->z[l], &s->dh, &s->dz[l]);       /* * 1[z_l > 0] */
        /* (the residual stack's h_l is not relu(z_l), but bp_relu_backward only looks at z_l: correct) */

        /* Through the linear map: dW_l = h_{l-1}^T dz_l,  db_l = sum of dz_l,  dbranch = dz_l W_l^T
           (with a norm, its input u_l in place of h_{l-1}, and dbranch = dL/du_l) */
        bp_linear_backward(v->norm ? &s->u[l] : &s->h[l - 1], &s->W[l], &s->dz[l], &s->dbranch, &s->dW[l],
                           &s->db[l]);

        /* Through the norm, to dL/dh_{l-1} = rstd (du - mean(du) - uhat mean(du uhat)), the means over the
           batch (batch norm) or over the features (layer norm).  The factor rstd = 1/std(h_{l-1}) is the
           cure: the sigmoid shrinks the backward signal by its slope s(1-s) ~ 0.2, and shrinks the spread of
           its outputs h by about the same factor, so the next norm's rstd ~ 1/0.2 gives the signal back. */
        if (v->norm == BATCH_NORM)
            bp_batchnorm_backward(&s->h[l - 1], &s->gamma, &s->mean[l], &s->rstd[l], &s->dbranch, &s->dbranch,
                                  NULL, NULL);
        if (v->norm == LAYER_NORM)
            bp_layernorm_backward(&s->h[l - 1], &s->gamma, &s->mean[l], &s->rstd[l], &s->dbranch, &s->dbranch,
                                  NULL, NULL);

        /* dL/dh_{l-1}.  A plain layer has one path from h_{l-1} to the loss: through W_l.
           A residual layer, h_l = h_{l-1} + relu(h_{l-1} W_l + b_l), has two, and the chain rule adds them:
               dL/dh_{l-1} = dL/dh_l              (the skip path: dh_l/dh_{l-1} = identity)
                           + dz_l W_l^T           (the branch path, as in a plain layer)
           The first term is the whole point: the gradient from the top arrives at every layer undamped,
           however small the branch's factors are. */
        if (v->residual)
            for (i = 0; i < (size_t)BATCH * WIDTH; i++)
                s->dh_below.data[i] = s->dh.data[i] + s->dbranch.data[i];
        else
            for (i = 0; i < (size_t)BATCH * WIDTH; i++) s->dh_below.data[i] = s->dbranch.data[i];
        swap = s->dh; s->dh = s->dh_below; s->dh_below = swap; /* dh = dL/dh_{l-1} for the next step */
    }
}

static void measure(stack *s, const variant *v, measures *m)
{
    int l;
    size_t i;
    double slope_sum = 0;
    for (l = 0; l <= DEPTH; l++) m->h_norm[l] = bp_tensor_norm(&s->h[l]);
    m->dW_norm[0] = m->dz_norm[0] = 0;
    for (l = 1; l <= DEPTH; l++) {
        m->dW_norm[l] = bp_tensor_norm(&s->dW[l]);
        m->dz_norm[l] = bp_tensor_norm(&s->dz[l]);
        for (i = 0; i < (size_t)BATCH * WIDTH; i++) { /* act'(z), recomputed from the forward cache */
            double a = s->h[l].data[i], z = s->z[l].data[i];
            slope_sum += v->act == SIGMOID ? a * (1 - a) : v->act == TANH ? 1 - a * a : (z > 0 ? 1.0 : 0.0);
        }
    }
    m->mean_act_slope = slope_sum / ((double)DEPTH * BATCH * WIDTH);
    m->mean_rstd = 0;
    for (l = 1; l <= DEPTH && v->norm; l++)
        m->mean_rstd += (double)bp_tensor_norm(&s->rstd[l]) / sqrt((double)s->rstd[l].rows * s->rstd[l].cols) / DEPTH;
    m->ratio = m->dW_norm[1] / m->dW_norm[DEPTH];
}

/* ---- the seven stacks, and clipping the exploding one ------------------------------------------------- */

enum { N_VARIANTS = 7, HE_PLAIN = 2, SIGMOID_BN = 4, SIGMOID_LN = 5, EXPLODE = 6 }; /* [HE_PLAIN]: the healthy ReLU stack */
static const variant variants[N_VARIANTS] = {
    {"sigmoid", SIGMOID, XAVIER, 1.0, 0, NO_NORM},
    {"tanh", TANH, XAVIER, 1.0, 0, NO_NORM},
    {"ReLU", RELU, HE, 1.0, 0, NO_NORM},
    /* The residual branch's weights are He scaled by 1/DEPTH, so each block adds only a small step:
       h_l = h_{l-1} + relu(z_l).  Why scale at all: with plain He init relu(z_l) is as large as h_{l-1}
       itself, so every block would double E[h^2]: ||h|| grows 2^10 ~ 10^3x over 20 blocks (measured:
       2e4x, and a loss of 4e8).  Why 1/DEPTH and not GPT-2's 1/sqrt(DEPTH): 1/sqrt(L) is right for
       branches whose outputs have mean zero -- they add up like a random walk, and L steps of size
       1/sqrt(L) stay O(1).  This branch ends in a ReLU, whose outputs are all >= 0, so their means add
       up in the same direction, like a sum: L steps of size 1/L stay O(1).  Measured here: ||h_20|| / ||x||
       is 6.6 with 1/sqrt(20), 1.17 with 1/20.  The gradients are flat across layers at ANY of these
       scales (it is the skip path that does that); the scale only keeps the forward pass sane. */
    {"residual", RELU, HE, 1.0 / DEPTH, 1, NO_NORM},
    /* The sigmoid stack again, each linear map's input normalised: h_l = s(norm(h_{l-1}) W_l + b_l). */
    {"sigmoid + batch norm", SIGMOID, XAVIER, 1.0, 0, BATCH_NORM},
    {"sigmoid + layer norm", SIGMOID, XAVIER, 1.0, 0, LAYER_NORM},
    {"ReLU, 2x He", RELU, HE, 2.0, 0, NO_NORM},
};

/* The smallest and largest of a per-layer quantity (indices 1 .. DEPTH). */
static void layer_range(const double *v, double *lo, double *hi)
{
    int l;
    *lo = *hi = v[1];
    for (l = 2; l <= DEPTH; l++) {
        if (v[l] < *lo) *lo = v[l];
        if (v[l] > *hi) *hi = v[l];
    }
}

/* max over layers / min over layers: 1 if every layer has the same */
static double spread(const double *v)
{
    double lo, hi;
    layer_range(v, &lo, &hi);
    return hi / lo;
}

/* The exploding stack next to the healthy He one, and what clipping its gradients did. */
typedef struct explosion {
    double growth[DEPTH + 1];       /* ||dL/dW_l|| with 2x He over ||dL/dW_l|| with He */
    double growth_lo, growth_hi;    /* the smallest and largest of those */
    double norm_before, norm_after; /* the norm of all 40 gradients taken together as one vector */
    double cosine;                  /* between that vector clipped and unclipped */
    double clipped_dW[DEPTH + 1];   /* ||dL/dW_l|| after clipping */
} explosion;

/* bp_clip_grad_norm on the stack's 40 gradients (dW and db of every layer) as one vector.  A copy taken
   before says what it changed: the norm, and the direction (computed in double). */
static void clip_gradients(stack *s, explosion *e)
{
    bp_tensor *grads[2 * DEPTH];
    bp_tensor saved[2 * DEPTH];
    double dot = 0, n_saved = 0, n_clipped = 0;
    int l, g;
    size_t i;
    for (l = 1; l <= DEPTH; l++) {
        grads[2 * (l - 1)] = &s->dW[l];
        grads[2 * (l - 1) + 1] = &s->db[l];
    }
    for (g = 0; g < 2 * DEPTH; g++) {
        saved[g] = bp_tensor_new(grads[g]->rows, grads[g]->cols);
        memcpy(saved[g].data, grads[g]->data, sizeof(bp_real) * (size_t)grads[g]->rows * grads[g]->cols);
    }
    e->norm_before = bp_clip_grad_norm(grads, 2 * DEPTH, (bp_real)MAX_NORM);
    for (g = 0; g < 2 * DEPTH; g++) {
        for (i = 0; i < (size_t)grads[g]->rows * grads[g]->cols; i++) {
            double a = saved[g].data[i], b = grads[g]->data[i];
            dot += a * b;
            n_saved += a * a;
            n_clipped += b * b;
        }
        bp_tensor_free(&saved[g]);
    }
    e->norm_after = sqrt(n_clipped);
    e->cosine = dot / (sqrt(n_saved) * sqrt(n_clipped));
    e->clipped_dW[0] = 0;
    for (l = 1; l <= DEPTH; l++) e->clipped_dW[l] = bp_tensor_norm(&s->dW[l]);
}

/* One forward and one backward pass through each variant of the stack, measured into m[k], on the same
   random inputs and targets; then the last, exploding, variant against the He one, and clipped. */
static void run_variants(measures *m, explosion *e)
{
    bp_tensor x = bp_tensor_new(BATCH, WIDTH), y = bp_tensor_new(BATCH, WIDTH);
    stack s;
    bp_rng rng;
    int k, l;
    bp_rng_seed(&rng, 7);
    bp_tensor_randn(&x, &rng, 1); /* inputs  ~ N(0, 1) */
    bp_tensor_randn(&y, &rng, 1); /* targets ~ N(0, 1) */
    stack_alloc(&s, &x);
    for (k = 0; k < N_VARIANTS; k++) {
        stack_init(&s, &variants[k]);
        forward(&s, &variants[k], &y);
        backward(&s, &variants[k], &y);
        measure(&s, &variants[k], &m[k]);
    }
    e->growth[0] = 0;
    for (l = 1; l <= DEPTH; l++) e->growth[l] = m[EXPLODE].dW_norm[l] / m[HE_PLAIN].dW_norm[l];
    layer_range(e->growth, &e->growth_lo, &e->growth_hi);
    clip_gradients(&s, e); /* the stack holds the last variant run: the exploding one */
    stack_free(&s);
    bp_tensor_free(&x);
    bp_tensor_free(&y);
}

/* ---- what the numbers say -------------------------------------------------------------------------------- */

static void print_vanishing(const measures *m)
{
    int l;
    printf("layer    sigmoid       tanh       ReLU (He)   residual    sigmoid+BN  sigmoid+LN\n");
    for (l = 1; l <= DEPTH; l++)
        printf("%4d   %10.3e  %10.3e  %10.3e  %10.3e  %10.3e  %10.3e\n", l, m[0].dW_norm[l], m[1].dW_norm[l],
               m[2].dW_norm[l], m[3].dW_norm[l], m[SIGMOID_BN].dW_norm[l], m[SIGMOID_LN].dW_norm[l]);

    printf("\nratio ||dW_1|| / ||dW_%d||  (1 = every layer gets the same size of gradient)\n", DEPTH);
    printf("  sigmoid  (Xavier)       %9.2e   the backward signal is multiplied by %.2f per layer:\n"
           "                                      sigmoid'(z) = s(1-s) <= 1/4 (here %.3f on average); W^T keeps\n"
           "                                      its size (Xavier)\n",
           m[0].ratio, pow(m[0].dz_norm[1] / m[0].dz_norm[DEPTH], 1.0 / (DEPTH - 1)), m[0].mean_act_slope);
    printf("  tanh     (Xavier)       %9.2e   tanh'(z) = 1 - tanh^2 <= 1 (mean here %.3f): dz fades %.1fx toward\n"
           "                                      the input, h fades %.1fx toward the output; dW = h^T dz, flat\n",
           m[1].ratio, m[1].mean_act_slope, m[1].dz_norm[DEPTH] / m[1].dz_norm[1],
           m[1].h_norm[0] / m[1].h_norm[DEPTH - 1]);
    printf("  ReLU     (He)           %9.2e   ReLU' is 1 on half the units, He's 2/fan_in doubles it back\n",
           m[2].ratio);
    printf("  residual (He/%d)        %9.2e   the skip path carries dL/dh down undamped (||h_%d||/||x|| = %.2f)\n",
           DEPTH, m[3].ratio, DEPTH, m[3].h_norm[DEPTH] / m[3].h_norm[0]);
    printf("  sigmoid + batch norm    %9.2e   each layer's input normalised: the norm's rstd = 1/std(h) ~ %.1f gives\n"
           "                                      back what s(1-s) ~ %.3f took (max/min over layers %.2f)\n",
           m[SIGMOID_BN].ratio, m[SIGMOID_BN].mean_rstd, m[SIGMOID_BN].mean_act_slope, spread(m[SIGMOID_BN].dW_norm));
    printf("  sigmoid + layer norm    %9.2e   the same per example, over its features (max/min over layers %.2f)\n",
           m[SIGMOID_LN].ratio, spread(m[SIGMOID_LN].dW_norm));
}

static void print_exploding(const measures *m, const explosion *e)
{
    const measures *he2 = &m[EXPLODE]; /* the stack with std 2x He */
    int l;
    printf("\nExploding gradients: the same ReLU stack with std 2x He.  Every layer doubles the signal, forward\n"
           "AND backward.  dW_l = h_{l-1}^T dz_l multiplies the two, so the weight gradient is ~2^%d = %.1e\n"
           "times too large in EVERY layer, while the backpropagated signal dz_l grows layer by layer toward\n"
           "the input.\n\n", 2 * DEPTH - 1, pow(2.0, 2 * DEPTH - 1));
    printf("layer  ||h_{l-1}|| (fwd in)  ||dL/dz_l|| (bwd)   ||dL/dW_l||   vs He    after clipping\n");
    for (l = 1; l <= DEPTH; l++)
        printf("%4d      %10.3e          %10.3e        %10.3e   %8.2e   %10.3e\n", l, he2->h_norm[l - 1],
               he2->dz_norm[l], he2->dW_norm[l], e->growth[l], e->clipped_dW[l]);
    printf("\n  the backward signal ||dL/dz_l|| grows %.2e x from layer %d down to layer 1 (2^%d = %.2e)\n",
           he2->dz_norm[1] / he2->dz_norm[DEPTH], DEPTH, DEPTH - 1, pow(2.0, DEPTH - 1));
    printf("  ||dL/dW_l|| is %.2e .. %.2e times its He value, in every layer (2^%d = %.2e)\n", e->growth_lo,
           e->growth_hi, 2 * DEPTH - 1, pow(2.0, 2 * DEPTH - 1));
    printf("  bp_clip_grad_norm(max_norm %.1f) over all %d gradients: total norm %.3e -> %.6f\n", MAX_NORM,
           2 * DEPTH, e->norm_before, e->norm_after);
    printf("  cosine(clipped, unclipped) = %.7f: every gradient was scaled by the same %.3e, so the\n"
           "  direction (and each layer's share of the step) is kept; only the step's length changed.\n",
           e->cosine, MAX_NORM / (e->norm_before + 1e-6));
    printf("  Clipping caps the length of the step, so one bad batch cannot wreck the weights; it does not\n"
           "  remove the cause (the activations are still ~10^7 too large), and it cannot help a VANISHING\n"
           "  gradient at all.  The cures are the init (He), the architecture (residual) or normalisation (above).\n");
}

/* The two charts, into out_dir: ||dL/dW_l|| per layer of the first six stacks, and the exploding stack's
   signals before and after clipping.  1 if both were written (else stderr said which and why), else 0. */
static int write_charts(const char *out_dir, const measures *m, const explosion *e)
{
    const measures *he2 = &m[EXPLODE]; /* the stack with std 2x He */
    double layer[DEPTH], h_into[DEPTH]; /* x = l, and ||h_{l-1}||: what goes into layer l */
    const chart_line vanishing[6] = {
        {"sigmoid (Xavier)", "#d62728", layer, m[0].dW_norm + 1, DEPTH, 0},
        {"tanh (Xavier)", "#ff7f0e", layer, m[1].dW_norm + 1, DEPTH, 0},
        {"ReLU (He)", "#1f77b4", layer, m[2].dW_norm + 1, DEPTH, 0},
        {"ReLU + residual (He/20)", "#2ca02c", layer, m[3].dW_norm + 1, DEPTH, 0},
        {"sigmoid + batch norm (Xavier)", "#8c564b", layer, m[SIGMOID_BN].dW_norm + 1, DEPTH, 0},
        {"sigmoid + layer norm (Xavier)", "#e377c2", layer, m[SIGMOID_LN].dW_norm + 1, DEPTH, 0},
    };
    const chart_line exploding[5] = {
        {"||h_{l-1}||  forward signal into layer l", "#8c564b", layer, h_into, DEPTH, 1},
        {"||dL/dz_l||  backward signal at layer l", "#e377c2", layer, he2->dz_norm + 1, DEPTH, 1},
        {"||dL/dW_l||  2x He", "#9467bd", layer, he2->dW_norm + 1, DEPTH, 0},
        {"||dL/dW_l||  2x He, clipped (total norm 1)", "#17becf", layer, e->clipped_dW + 1, DEPTH, 0},
        {"||dL/dW_l||  He (for scale)", "#1f77b4", layer, m[HE_PLAIN].dW_norm + 1, DEPTH, 0},
    };
    const char *x_title = "layer l  (1 = nearest the input, 20 = nearest the loss)";
    const chart_panel panels[2] = {
        {"Gradient norm per layer, 20-layer stack, one backward pass", x_title, "||dL/dW_l|| (log scale)", 0, 1,
         NULL, vanishing, 6},
        {"Exploding gradients: ReLU stack with std 2x He", x_title, "norm (log scale)", 0, 1, NULL, exploding, 5},
    };
    int l, written;
    for (l = 1; l <= DEPTH; l++) {
        layer[l - 1] = l;
        h_into[l - 1] = he2->h_norm[l - 1];
    }
    written = chart_save("vanishing_gradients", out_dir, "vanishing_gradients.svg", NULL, &panels[0], 1) == 0;
    return chart_save("vanishing_gradients", out_dir, "exploding_gradients.svg", NULL, &panels[1], 1) == 0 &&
           written;
}

/* ---- checks ---------------------------------------------------------------------------------------------- */

static int checks_passed = 0, checks_failed = 0;

static void check(int ok, const char *claim)
{
    printf("  %s  %s\n", ok ? "PASS" : "FAIL", claim);
    if (ok)
        checks_passed++;
    else
        checks_failed++;
}

static void check_claims(const measures *m, const explosion *e, int charts_written)
{
    printf("\nchecks:\n");
    check(m[0].ratio < 1e-2, "sigmoid: layer 1's gradient is > 100x smaller than layer 20's");
    check(m[0].mean_act_slope <= 0.25, "sigmoid: its derivative s(1-s) averages <= 1/4");
    check(spread(m[2].dW_norm) < 10, "ReLU (He): every layer's ||dW|| within 10x of every other's");
    check(spread(m[3].dW_norm) < 10, "residual: every layer's ||dW|| within 10x of every other's");
    check(spread(m[3].h_norm) < 10, "residual: the activations stay bounded (||h_l|| within 10x)");
    check(spread(m[SIGMOID_BN].dW_norm) < 3 && spread(m[0].dW_norm) > 1e6,
          "sigmoid + batch norm: every layer's ||dW|| within 3x, where the plain sigmoid's spread > 10^6x");
    check(spread(m[SIGMOID_LN].dW_norm) < 3, "sigmoid + layer norm: every layer's ||dW|| within 3x");
    check(m[EXPLODE].dz_norm[1] / m[EXPLODE].dz_norm[DEPTH] > 100,
          "2x He: the backward signal grows > 100x from layer 20 to layer 1");
    check(e->growth_lo > 1e6, "2x He: every layer's ||dW|| is > 10^6 times its He value");
    check(e->norm_before > MAX_NORM && e->norm_after <= MAX_NORM + 1e-4, "clipping: total norm <= max_norm after");
    check(fabs(e->cosine - 1) < 1e-5, "clipping: cosine(clipped, unclipped) = 1");
    check(charts_written, "both charts written");
}

int main(int argc, char **argv)
{
    const char *out_dir = argc > 1 ? argv[1] : "build";
    static measures m[N_VARIANTS]; /* static: ~1 KB each, kept off the stack by habit */
    explosion e;
    int charts_written;

    printf("A stack of %d layers, %d -> %d each, batch %d, MSE loss against random targets:\n"
           "one forward and one backward pass per variant.  ||dL/dW_l|| per layer (1 = nearest the input):\n\n",
           DEPTH, WIDTH, WIDTH, BATCH);
    run_variants(m, &e);
    print_vanishing(m);
    print_exploding(m, &e);
    printf("\n");
    make_folder(out_dir);
    charts_written = write_charts(out_dir, m, &e);
    check_claims(m, &e, charts_written);

    printf("\nvanishing_gradients: %d/%d checks passed; ||dW_1||/||dW_20|| sigmoid %.1e, tanh %.2f, ReLU %.2f, "
           "residual %.2f, sigmoid + batch norm %.2f, + layer norm %.2f; 2x He: backward x%.1e, clipped %.1e -> %.3f\n",
           checks_passed, checks_passed + checks_failed, m[0].ratio, m[1].ratio, m[2].ratio, m[3].ratio,
           m[SIGMOID_BN].ratio, m[SIGMOID_LN].ratio,
           m[EXPLODE].dz_norm[1] / m[EXPLODE].dz_norm[DEPTH], e.norm_before, e.norm_after);
    return checks_failed ? 1 : 0;
}
