/* fashion_cnn.c - a small convolutional network learns Fashion-MNIST, by hand.

       x (batch x 1x28x28) -> conv 3x3 (C1 filters, pad 1) -> max-pool 2 -> ReLU -> (C1 x 14x14)
                           -> conv 3x3 (C2 filters, pad 1) -> max-pool 2 -> ReLU -> (C2 x 7x7)
                           -> Linear(C2*49 -> 128) -> ReLU -> Linear(128 -> 10)
                           -> softmax cross-entropy against the labels

   (ReLU and max-pooling commute: max(0, max of a window) = max of the window of max(0, .), and the
   gradients agree too.  So the ReLU runs after the pooling, on a quarter of the numbers: the same network
   as conv -> ReLU -> max-pool, which is how it is usually drawn.)

   The multi-layer perceptron of fashion_mnist.c sees 784 unrelated numbers; this network sees an image.
   Each 3x3 filter is slid over every position, so a feature (an edge, a collar, a strap) is detected
   wherever it is, with 9 weights per input channel instead of one weight per pixel, and the pooling keeps
   the strongest response of each 2x2 patch, so a feature shifted by a pixel still counts.  It reaches
   about 0.91 test accuracy in a few epochs where the MLP stays near 0.90.

   What the program shows:
     - the layers of backprop.h's convolution section, chained by hand: each forward stores what its
       backward needs (the conv: its input; ReLU: its output, in place; the pool: argmax), and the
       backward runs the same chain in reverse;
     - the image layout: one image per ROW of a tensor, channels x height x width flattened in PyTorch's
       (C, H, W) order, so the output of one layer is the input of the next with no reshaping, and the
       flattened C2 x 7 x 7 pooled map is exactly what torch's x.flatten(1) gives to the Linear layer;
     - the convolutions take a whole batch per call, with one image's im2col workspace (col) that the
       images of the batch take turns in: nothing is allocated inside the training loop;
     - the training loop of fashion_mnist.c (a shuffle per epoch, Adam, a cosine learning rate, a test set
       never trained on), the seconds each epoch trains and evaluates, and a chart;
     - the weights saved as .npy files in PyTorch's layouts, so torch loads them as they are:
           conv1_weight.npy  C1 x 9          torch's conv1.weight (C1, 1, 3, 3) reshaped: .reshape(C1, 1, 3, 3)
           conv2_weight.npy  C2 x (C1*9)     torch's conv2.weight (C2, C1, 3, 3): .reshape(C2, C1, 3, 3)
           fc1_weight.npy    128 x (C2*49)   torch's fc1.weight, out x in.  backprop.h's Linear weight is
           fc2_weight.npy    10 x 128        in x out (z = x.W), so the files hold its transpose W^T:
                                             torch's weight[o][i] is W[i][o]
           conv1_bias.npy, ..., fc2_bias.npy   1 x n: torch's 1-D bias is .reshape(-1)
       e.g.  net.conv1.weight.data = torch.from_numpy(np.load("conv1_weight.npy")).reshape(C1, 1, 3, 3)

   Build and run:  make fashion-cnn     (the data: apt-get install -y dataset-fashion-mnist; make unpacks it)
             or:   ./build/fashion_cnn [DATA_DIR [EPOCHS [OUT_DIR]]]
                   DATA_DIR  a folder with the four unzipped IDX files (as fashion_mnist.c), default
                             examples/data/fashion-mnist
                   EPOCHS    default 6 (about 1.5 minutes on one core of the Zen 5 server of tests/README.md)
                   OUT_DIR   the folder for the weights (cnn_*.npy) and the chart fashion_cnn.svg, default
                             build (created if missing)
   One line per epoch to stdout (with its training and evaluation seconds: wall-clock, and the processor
   time of the training, which is what it would take alone on a machine shared with other work), progress
   dots to stderr; the
   last line is "test accuracy: 0.XXXX".  Exit status 0 if the test accuracy is at least 0.91; 1 if it is
   below, or if a file could not be read or written (one line on stderr says which and why). */

#if defined(__unix__) || defined(__APPLE__)
#define _POSIX_C_SOURCE 199309L /* clock_gettime; must come before any system header */
#endif

#define BACKPROP_IMPLEMENTATION
#include "../backprop.h"

#include "chart.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIDE 28 /* 28 x 28 pixels, one channel */
#define PIXELS (SIDE * SIDE)
#ifndef C1
#define C1 16 /* filters of the first convolution */
#endif
#ifndef C2
#define C2 32 /* filters of the second */
#endif
#define K 3   /* kernel size of both (pad 1: same size out) */
#define HIDDEN 128 /* the hidden Linear layer's width */
#define CLASSES 10
#ifndef BATCH
#define BATCH 64
#endif
#ifndef DEFAULT_EPOCHS
#define DEFAULT_EPOCHS 6
#endif
#define MAX_EPOCHS 100
#ifndef LR
#define LR 2e-3 /* Adam's starting rate, on a cosine schedule down to 0 */
#endif
#define TARGET_ACCURACY 0.91
#define SEED 42

/* The geometry of each layer: channels x height x width of its input, kernel, stride, pad. */
static const bp_window conv1 = {1, SIDE, SIDE, K, 1, 1};                 /* 1x28x28  -> C1x28x28 */
static const bp_window pool1 = {C1, SIDE, SIDE, 2, 2, 0};                /* C1x28x28 -> C1x14x14 */
static const bp_window conv2 = {C1, SIDE / 2, SIDE / 2, K, 1, 1};        /* C1x14x14 -> C2x14x14 */
static const bp_window pool2 = {C2, SIDE / 2, SIDE / 2, 2, 2, 0};        /* C2x14x14 -> C2x7x7   */
#define A1 (C1 * SIDE * SIDE)             /* conv1's output per image */
#define P1 (C1 * (SIDE / 2) * (SIDE / 2)) /* pool1's */
#define A2 (C2 * (SIDE / 2) * (SIDE / 2)) /* conv2's */
#define P2 (C2 * (SIDE / 4) * (SIDE / 4)) /* pool2's: the first Linear layer's input */

/* ---- the data: as fashion_mnist.c, shortened (that file explains the IDX checks) --------------------- */

typedef struct dataset {
    int count;
    bp_idx images, labels;
} dataset;

static void dataset_free(dataset *ds)
{
    bp_idx_free(&ds->images);
    bp_idx_free(&ds->labels);
}

/* Reads one split; 0, or -1 with one line on stderr and nothing left allocated. */
static int read_dataset(const char *dir, const char *images_file, const char *labels_file, dataset *ds)
{
    char images[1024], labels[1024];
    int i;
    memset(ds, 0, sizeof *ds);
    snprintf(images, sizeof images, "%s/%s", dir, images_file);
    snprintf(labels, sizeof labels, "%s/%s", dir, labels_file);
    if (bp_idx_load(&ds->images, images) != 0 || bp_idx_load(&ds->labels, labels) != 0) {
        fprintf(stderr, "fashion_cnn: %s\n", bp_failure_reason());
        goto refuse;
    }
    if (ds->images.ndim != 3 || ds->labels.ndim != 1 || ds->images.dims[0] != ds->labels.dims[0] ||
        ds->images.dims[1] != SIDE || ds->images.dims[2] != SIDE || !ds->images.data) {
        fprintf(stderr, "fashion_cnn: %s and %s are not as many 28x28 images as labels\n", images, labels);
        goto refuse;
    }
    for (i = 0; i < ds->labels.dims[0]; i++)
        if (ds->labels.data[i] >= CLASSES) {
            fprintf(stderr, "fashion_cnn: %s: label %d (of image %d) is not a class\n", labels, ds->labels.data[i], i);
            goto refuse;
        }
    ds->count = ds->images.dims[0];
    return 0;
refuse:
    dataset_free(ds);
    return -1;
}

/* ---- the network ------------------------------------------------------------------------------------ */

/* Parameters: the conv weights are F x (C*K*K) (torch's (F, C, K, K) reshaped), their biases 1 x F; the
   Linear weights are in x out (P2 x 128, 128 x 10).  Gradients and Adam's state have the same shapes, in
   the same order. */
enum { W1, B1, W2, B2, W3, B3, W4, B4, NPARAMS };
static const char *const param_names[NPARAMS] = {"conv1_weight", "conv1_bias", "conv2_weight", "conv2_bias",
                                                 "fc1_weight",   "fc1_bias",   "fc2_weight",   "fc2_bias"};

typedef struct model {
    bp_tensor param[NPARAMS], grad[NPARAMS], adam_m[NPARAMS], adam_v[NPARAMS];
} model;

/* He initialisation, N(0, 2/fan_in), fan_in = the inputs each output sums: C*K*K for a convolution (the
   COLUMNS of its weight, so not bp_init_he, which takes W.rows), W.rows for the Linear layers.  Biases 0. */
static void model_new(model *m, bp_rng *rng)
{
    const int rows[NPARAMS] = {C1, 1, C2, 1, P2, 1, HIDDEN, 1};
    const int cols[NPARAMS] = {K * K, C1, C1 * K * K, C2, HIDDEN, HIDDEN, CLASSES, CLASSES};
    int k;
    for (k = 0; k < NPARAMS; k++) {
        m->param[k] = bp_tensor_new(rows[k], cols[k]);
        m->grad[k] = bp_tensor_new(rows[k], cols[k]);
        m->adam_m[k] = bp_tensor_new(rows[k], cols[k]);
        m->adam_v[k] = bp_tensor_new(rows[k], cols[k]);
    }
    bp_tensor_randn(&m->param[W1], rng, (bp_real)sqrt(2.0 / (K * K)));
    bp_tensor_randn(&m->param[W2], rng, (bp_real)sqrt(2.0 / (C1 * K * K)));
    bp_init_he(&m->param[W3], rng);
    bp_init_he(&m->param[W4], rng);
}

static void model_free(model *m)
{
    int k;
    for (k = 0; k < NPARAMS; k++) {
        bp_tensor_free(&m->param[k]);
        bp_tensor_free(&m->grad[k]);
        bp_tensor_free(&m->adam_m[k]);
        bp_tensor_free(&m->adam_v[k]);
    }
}

/* One batch's tensors, made once (BATCH rows; a shorter batch uses the first n rows).  The forward's cache
   is what the backward reads: x (conv1's input), argmax1, p1 (ReLU's output: p1 > 0 exactly where its
   input was, and conv2's input), argmax2, p2 (the same, and fc1's input), h (the same, fc2's input) and
   probs. */
typedef struct workspace {
    bp_tensor x;                 /* batch x 784, pixels / 255 */
    int labels[BATCH];
    bp_tensor a1, p1, a2, p2;    /* conv1(x), relu(pool1(a1)), conv2(p1), relu(pool2(a2)) */
    int argmax1[BATCH * P1], argmax2[BATCH * P2];
    bp_tensor h;                 /* batch x 128: relu(p2 W3 + b3) */
    bp_tensor logits, probs;     /* batch x 10 */
    bp_tensor dh, dp2, da2, dp1, da1; /* the gradients flowing back, the shapes of h, p2, a2, p1, a1 */
    bp_tensor col1, col2;        /* im2col workspaces, one image each: (1*9) x 784 and (C1*9) x 196 */
} workspace;

static int workspace_new(workspace *ws)
{
    bp_tensor *all[] = {&ws->x,  &ws->a1,  &ws->p1,  &ws->a2,  &ws->p2,  &ws->h,    &ws->logits, &ws->probs,
                        &ws->dh, &ws->dp2, &ws->da2, &ws->dp1, &ws->da1, &ws->col1, &ws->col2};
    const int cols[] = {PIXELS, A1, P1, A2, P2, HIDDEN, CLASSES, CLASSES, HIDDEN, P2, A2, P1, A1};
    int i;
    for (i = 0; i < 13; i++) *all[i] = bp_tensor_new(BATCH, cols[i]);
    ws->col1 = bp_tensor_new(1 * K * K, PIXELS);
    ws->col2 = bp_tensor_new(C1 * K * K, (SIDE / 2) * (SIDE / 2));
    for (i = 0; i < 15; i++)
        if (!all[i]->data) return -1;
    return 0;
}

static void workspace_free(workspace *ws)
{
    bp_tensor *all[] = {&ws->x,  &ws->a1,  &ws->p1,  &ws->a2,  &ws->p2,  &ws->h,    &ws->logits, &ws->probs,
                        &ws->dh, &ws->dp2, &ws->da2, &ws->dp1, &ws->da1, &ws->col1, &ws->col2};
    int i;
    for (i = 0; i < 15; i++) bp_tensor_free(all[i]);
}

/* The first n rows of t, sharing its memory (never bp_tensor_free a view). */
static bp_tensor rows_of(const bp_tensor *t, int n)
{
    bp_tensor view;
    view.rows = n;
    view.cols = t->cols;
    view.data = t->data;
    return view;
}

static void load_batch(const dataset *ds, const int *order, int n, workspace *ws)
{
    int r, j;
    for (r = 0; r < n; r++) {
        const unsigned char *image = ds->images.data + (size_t)order[r] * PIXELS;
        for (j = 0; j < PIXELS; j++) ws->x.data[r * PIXELS + j] = (bp_real)image[j] * (bp_real)(1.0 / 255.0);
        ws->labels[r] = ds->labels.data[order[r]];
    }
}

/* The forward pass on the first n rows: returns the mean loss, leaves the softmax in probs. */
static bp_real forward(const bp_tensor *p, workspace *ws, int n)
{
    bp_tensor x = rows_of(&ws->x, n), a1 = rows_of(&ws->a1, n), p1 = rows_of(&ws->p1, n);
    bp_tensor a2 = rows_of(&ws->a2, n), p2 = rows_of(&ws->p2, n), h = rows_of(&ws->h, n);
    bp_tensor logits = rows_of(&ws->logits, n), probs = rows_of(&ws->probs, n);
    bp_conv2d_forward(&conv1, &x, &p[W1], &p[B1], &a1, &ws->col1); /* a1 = conv1(x)       n x C1*28*28 */
    bp_maxpool2d_forward(&pool1, &a1, &p1, ws->argmax1);            /* p1 = pool(a1)      n x C1*14*14 */
    bp_relu_forward(&p1, &p1);                                      /* p1 = max(0, p1), in place       */
    bp_conv2d_forward(&conv2, &p1, &p[W2], &p[B2], &a2, &ws->col2); /* a2 = conv2(p1)     n x C2*14*14 */
    bp_maxpool2d_forward(&pool2, &a2, &p2, ws->argmax2);            /* p2 = pool(a2)      n x C2*7*7   */
    bp_relu_forward(&p2, &p2);
    bp_linear_forward(&p2, &p[W3], &p[B3], &h);                     /* h = p2 W3 + b3     n x 128      */
    bp_relu_forward(&h, &h);
    bp_linear_forward(&h, &p[W4], &p[B4], &logits);                 /* logits = h W4 + b4 n x 10       */
    return bp_softmax_xent_forward(&logits, ws->labels, &probs);
}

/* The backward pass after forward on the same n rows: the same chain in reverse. */
static void backward(const bp_tensor *p, bp_tensor *grad, workspace *ws, int n)
{
    bp_tensor x = rows_of(&ws->x, n), p1 = rows_of(&ws->p1, n);
    bp_tensor p2 = rows_of(&ws->p2, n), h = rows_of(&ws->h, n), probs = rows_of(&ws->probs, n);
    bp_tensor dh = rows_of(&ws->dh, n), dp2 = rows_of(&ws->dp2, n), da2 = rows_of(&ws->da2, n);
    bp_tensor dp1 = rows_of(&ws->dp1, n), da1 = rows_of(&ws->da1, n);
    bp_softmax_xent_backward(&probs, ws->labels, &probs);                   /* dlogits, in place over probs */
    bp_linear_backward(&h, &p[W4], &probs, &dh, &grad[W4], &grad[B4]);     /* dW4 = h^T dl, dh = dl W4^T  */
    bp_relu_backward(&h, &dh, &dh);
    bp_linear_backward(&p2, &p[W3], &dh, &dp2, &grad[W3], &grad[B3]);      /* dW3 = p2^T dh, dp2 = dh W3^T */
    bp_relu_backward(&p2, &dp2, &dp2);                                      /* through the ReLU            */
    bp_maxpool2d_backward(&pool2, ws->argmax2, &dp2, &da2);                 /* each dp2 to its argmax      */
    bp_conv2d_backward(&conv2, &p1, &p[W2], &da2, &dp1, &grad[W2], &grad[B2], &ws->col2);
    bp_relu_backward(&p1, &dp1, &dp1);
    bp_maxpool2d_backward(&pool1, ws->argmax1, &dp1, &da1);
    bp_conv2d_backward(&conv1, &x, &p[W1], &da1, NULL, &grad[W1], &grad[B1], &ws->col1); /* no dx needed */
}

static int predicted_class(const workspace *ws, int r)
{
    const bp_real *row = ws->probs.data + (size_t)r * CLASSES;
    int c, best = 0;
    for (c = 1; c < CLASSES; c++)
        if (row[c] > row[best]) best = c;
    return best;
}

/* The accuracy on all of ds, without training; the mean loss in *loss. */
static double evaluate(const bp_tensor *p, const dataset *ds, int *order, workspace *ws, double *loss)
{
    int start, r, correct = 0;
    double loss_sum = 0;
    for (start = 0; start < ds->count; start += BATCH) {
        int n = ds->count - start < BATCH ? ds->count - start : BATCH;
        for (r = 0; r < n; r++) order[r] = start + r;
        load_batch(ds, order, n, ws);
        loss_sum += (double)forward(p, ws, n) * n;
        for (r = 0; r < n; r++) correct += predicted_class(ws, r) == ws->labels[r];
    }
    *loss = loss_sum / ds->count;
    return (double)correct / ds->count;
}

/* ---- training ------------------------------------------------------------------------------------------ */

static void shuffle(int *order, int n, bp_rng *rng)
{
    int i;
    for (i = 0; i < n; i++) order[i] = i;
    for (i = n - 1; i > 0; i--) {
        int j = (int)(bp_rng_uniform(rng) * (i + 1)), tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

/* One epoch: forward, backward and an Adam step per batch.  The mean loss and accuracy measured on the
   batches (while the weights change) in *loss and *accuracy.  -1 if the numbers stop being finite. */
static int train_epoch(model *m, const dataset *ds, const int *order, workspace *ws, bp_real lr, int *step,
                       double *loss, double *accuracy)
{
    const int batches = (ds->count + BATCH - 1) / BATCH;
    double loss_sum = 0;
    int batch, k, r, correct = 0, dots = 0;
    for (batch = 0; batch < batches; batch++) {
        int start = batch * BATCH, n = ds->count - start < BATCH ? ds->count - start : BATCH;
        bp_real batch_loss;
        load_batch(ds, order + start, n, ws);
        batch_loss = forward(m->param, ws, n);
        for (r = 0; r < n; r++) correct += predicted_class(ws, r) == ws->labels[r];
        backward(m->param, m->grad, ws, n);
        for (k = 0; k < NPARAMS; k++)
            if (!bp_tensor_all_finite(&m->grad[k]) || !(batch_loss == batch_loss)) {
                fprintf(stderr, "\nfashion_cnn: the loss or a gradient became NaN or infinite at step %d\n", *step + 1);
                return -1;
            }
        loss_sum += (double)batch_loss * n;
        *step += 1;
        for (k = 0; k < NPARAMS; k++)
            bp_adam_step(&m->param[k], &m->grad[k], &m->adam_m[k], &m->adam_v[k], *step, lr, 0.9f, 0.999f, 1e-8f);
        while (dots < 20 * (batch + 1) / batches) {
            fputc('.', stderr);
            fflush(stderr);
            dots++;
        }
    }
    fputc('\n', stderr);
    *loss = loss_sum / ds->count;
    *accuracy = (double)correct / ds->count;
    return 0;
}

static double seconds_now(void)
{
#if (defined(__unix__) || defined(__APPLE__)) && defined(CLOCK_MONOTONIC)
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
#else
    return (double)clock() / CLOCKS_PER_SEC;
#endif
}

typedef struct history {
    double train_loss[MAX_EPOCHS], test_loss[MAX_EPOCHS], train_acc[MAX_EPOCHS], test_acc[MAX_EPOCHS];
    double train_seconds[MAX_EPOCHS], test_seconds[MAX_EPOCHS], train_cpu[MAX_EPOCHS];
} history;

/* ---- the chart and the weights ----------------------------------------------------------------------- */

static int write_chart(const char *out_dir, const history *h, int epochs, double lr)
{
    double epoch[MAX_EPOCHS], target_x[2], target_y[2] = {TARGET_ACCURACY, TARGET_ACCURACY};
    char title[160];
    const chart_line losses[2] = {
        {"train (during epoch)", "#1f77b4", epoch, h->train_loss, epochs, 0},
        {"test", "#d62728", epoch, h->test_loss, epochs, 0},
    };
    const chart_line accuracies[3] = {
        {"train (during epoch)", "#1f77b4", epoch, h->train_acc, epochs, 0},
        {"test", "#d62728", epoch, h->test_acc, epochs, 0},
        {"target 0.91", "#2ca02c", target_x, target_y, 2, 1},
    };
    const chart_panel panels[2] = {
        {"Cross-entropy loss", "epoch", "loss (mean per example)", 0, 0, NULL, losses, 2},
        {"Accuracy", "epoch", "fraction correct", 0, 0, NULL, accuracies, 3},
    };
    int e;
    for (e = 0; e < epochs; e++) epoch[e] = e + 1;
    target_x[0] = 1;
    target_x[1] = epochs;
    sprintf(title, "Fashion-MNIST, CNN conv%d-pool-conv%d-pool-fc%d-fc10, Adam lr %g cosine-decayed, batch %d", C1,
            C2, HIDDEN, lr, BATCH);
    return chart_save("fashion_cnn", out_dir, "fashion_cnn.svg", title, panels, 2);
}

/* Saves the parameters as out_dir/cnn_NAME.npy in PyTorch's layouts (the top comment): the conv weights
   and all biases as they are, the Linear weights transposed to torch's out x in.  0, or -1 (stderr says why). */
static int save_weights(const model *m, const char *out_dir)
{
    char path[1024];
    int k, i, j, rc = 0;
    for (k = 0; k < NPARAMS && rc == 0; k++) {
        const bp_tensor *w = &m->param[k];
        bp_tensor t = bp_tensor_new(w->cols, w->rows); /* W^T, for the Linear weights */
        if (!t.data) return -1;
        for (i = 0; i < w->rows; i++)
            for (j = 0; j < w->cols; j++) t.data[j * w->rows + i] = w->data[i * w->cols + j];
        snprintf(path, sizeof path, "%s/cnn_%s.npy", out_dir, param_names[k]);
        rc = bp_tensor_save_npy(k == W3 || k == W4 ? &t : w, path);
        if (rc != 0) fprintf(stderr, "fashion_cnn: %s\n", bp_failure_reason());
        bp_tensor_free(&t);
    }
    if (rc == 0)
        printf("weights saved to %s/cnn_{conv1,conv2,fc1,fc2}_{weight,bias}.npy (PyTorch's layouts)\n", out_dir);
    return rc;
}

/* ---- main ---------------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *data_dir = argc > 1 ? argv[1] : "examples/data/fashion-mnist";
    const int epochs = argc > 2 ? atoi(argv[2]) : DEFAULT_EPOCHS;
    const char *out_dir = argc > 3 ? argv[3] : "build";
    const double lr = LR;
    static history h;
    static workspace ws; /* static: the argmax arrays are large */
    dataset train_set, test_set;
    model m;
    bp_rng rng;
    int *order = NULL, status = 1, epoch, step = 0;
    double accuracy = 0, train_total = 0;

    if (epochs < 1 || epochs > MAX_EPOCHS) {
        fprintf(stderr, "usage: %s [DATA_DIR [EPOCHS (1..%d) [OUT_DIR]]]\n", argv[0], MAX_EPOCHS);
        return 2;
    }
    if (read_dataset(data_dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", &train_set) != 0) return 1;
    if (read_dataset(data_dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", &test_set) != 0) {
        dataset_free(&train_set);
        return 1;
    }
    printf("data: %d training and %d test images of 28x28 pixels from %s\n", train_set.count, test_set.count,
           data_dir);
    bp_rng_seed(&rng, SEED);
    model_new(&m, &rng);
    order = (int *)malloc(sizeof(int) * (size_t)train_set.count);
    if (workspace_new(&ws) != 0 || !order) {
        fprintf(stderr, "fashion_cnn: out of memory\n");
        goto cleanup;
    }
    printf("network: 1x28x28 -> conv 3x3 x%d -> max-pool 2 -> ReLU -> conv 3x3 x%d -> max-pool 2 -> ReLU -> "
           "Linear %d -> %d -> ReLU -> 10, softmax cross-entropy; Adam, lr %g on a cosine schedule, batch %d, %d "
           "epochs\n", C1, C2, P2, HIDDEN, lr, BATCH, epochs);
    for (epoch = 1; epoch <= epochs; epoch++) {
        const int e = epoch - 1;
        bp_real lr_now = (bp_real)(lr * 0.5 * (1 + cos(3.14159265358979 * e / epochs)));
        double started = seconds_now();
        clock_t cpu = clock();
        shuffle(order, train_set.count, &rng);
        fprintf(stderr, "epoch %d/%d ", epoch, epochs);
        if (train_epoch(&m, &train_set, order, &ws, lr_now, &step, &h.train_loss[e], &h.train_acc[e]) != 0)
            goto cleanup;
        h.train_seconds[e] = seconds_now() - started;
        h.train_cpu[e] = (double)(clock() - cpu) / CLOCKS_PER_SEC;
        started = seconds_now();
        h.test_acc[e] = evaluate(m.param, &test_set, order, &ws, &h.test_loss[e]);
        h.test_seconds[e] = seconds_now() - started;
        train_total += h.train_seconds[e];
        printf("epoch %2d  lr %.6f  train loss %.4f acc %.4f  test loss %.4f acc %.4f  train %5.1f s (cpu %5.1f s)"
               "  eval %4.1f s\n", epoch, (double)lr_now, h.train_loss[e], h.train_acc[e], h.test_loss[e],
               h.test_acc[e], h.train_seconds[e], h.train_cpu[e], h.test_seconds[e]);
        fflush(stdout);
    }
    accuracy = h.test_acc[epochs - 1];
    printf("\ntrained in %.1f s (%.1f s per epoch); test accuracy %.4f, test loss %.4f\n", train_total,
           train_total / epochs, accuracy, h.test_loss[epochs - 1]);
    make_folder(out_dir);
    if (write_chart(out_dir, &h, epochs, lr) != 0 || save_weights(&m, out_dir) != 0) goto cleanup;
    if (accuracy < TARGET_ACCURACY)
        fprintf(stderr, "fashion_cnn: test accuracy %.4f is below the target %.2f\n", accuracy, TARGET_ACCURACY);
    else
        status = 0;
    printf("test accuracy: %.4f\n", accuracy);

cleanup:
    free(order);
    model_free(&m);
    workspace_free(&ws);
    dataset_free(&train_set);
    dataset_free(&test_set);
    return status;
}
