/* fashion_mnist.c - a multi-layer perceptron learns to tell apart ten kinds of clothing, by hand.

       x (batch x 784 pixels) -> Linear(784->256) -> ReLU -> Linear(256->128) -> ReLU -> Linear(128->10)
         -> softmax cross-entropy against the labels

   Fashion-MNIST is 70,000 grey 28x28 photos of clothes (60,000 to train on, 10,000 to test on), ten classes
   from T-shirt/top to Ankle boot.  It is a harder drop-in for the handwritten digits of MNIST: the same
   file format and sizes, but a shirt and a pullover look far more alike than a 1 and a 7.

   What the program shows:
     - reading the data set's IDX files safely (bp_idx_load: every size checked before it is trusted),
     - the training loop every network uses, with the things people skip when they copy one: mini-batches,
       a fresh shuffle every epoch, He initialisation, Adam, and a test set the network never trains on,
     - a learning rate that starts at Adam's usual 1e-3 and falls along a half cosine to nearly 0 at the
       last epoch: big steps while far from a minimum, small ones at the end so the weights settle (with
       a constant 1e-3 the test accuracy keeps jumping between about 0.885 and 0.895 from epoch to epoch),
     - every tensor allocated ONCE before the loop; the last, shorter batch of an epoch is a "view" of the
       first rows of the same buffers (a bp_tensor is just {rows, cols, pointer}),
     - what the network gets wrong (per-class accuracy and the classes it confuses),
     - saving the weights as .npy files (numpy's np.load reads them), loading them back, and checking that
       the reloaded network gives the same test accuracy.

   Build and run:  make fashion      (the data: apt-get install -y dataset-fashion-mnist; make unpacks it)
             or:   ./build/fashion_mnist [DATA_DIR [EPOCHS [OUT_DIR [LEARNING_RATE]]]]
                   DATA_DIR  a folder with train-images-idx3-ubyte, train-labels-idx1-ubyte,
                             t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (unzipped),
                             default examples/data/fashion-mnist; the original MNIST works as well
                   EPOCHS    default 20
                   OUT_DIR   an existing folder for the weights (fashion_W1.npy ...) and the chart
                             fashion_mnist.svg, default build
                   LEARNING_RATE  Adam's starting rate, default 1e-3.  A rate far too high drives the
                             loss to NaN or infinity; the program then stops at that step and says so
                             (exit status 1) instead of training on garbage.  Adam moves a weight by at
                             most about the rate per step, so it takes an absurd one: try 1e20.
   One line per epoch goes to stdout, progress dots within an epoch to stderr.  A run that finishes ends
   stdout with the line "test accuracy: 0.XXXX".  Exit status 0 if the test accuracy is at least 0.89;
   1 if it is below, or if a file could not be read or written (one line on stderr says which and why).
   The run is the same every time for one build (seeded); other compilers and CPUs round differently, so
   the last digits vary between machines.

   Timing: wall-clock seconds from clock_gettime(CLOCK_MONOTONIC) where the system has it (Linux, macOS,
   the BSDs), else clock() (processor time, the same thing here since the program runs on one thread). */

#if defined(__unix__) || defined(__APPLE__)
#define _POSIX_C_SOURCE 199309L /* clock_gettime; must come before any system header */
#endif

#define BACKPROP_IMPLEMENTATION
#include "../backprop.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INPUTS 784 /* 28 x 28 pixels */
#define HIDDEN1 256
#define HIDDEN2 128
#define CLASSES 10
#define BATCH 128
#define DEFAULT_EPOCHS 20
#define TARGET_ACCURACY 0.89
#define SEED 42

static const char *const class_names[CLASSES] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* ---- reading the data: the IDX format -------------------------------------------------------------------

   The files are in the IDX format, which bp_idx_load reads (backprop.h says how): the images file holds
   count x 28 x 28 bytes, the labels file count bytes.  A file is outside data: bp_idx_load checks every
   size before trusting it, and a bad file gives one line saying which file and what is wrong, never a
   crash.  What is checked here is that the two files belong together. */

/* One split of the data set: count images of rows x cols pixels (0 = black .. 255 = white, one byte each,
   image i at pixels[i*rows*cols]) and their labels (0 .. CLASSES-1). */
typedef struct dataset {
    int count, rows, cols;
    bp_idx images, labels;
    const unsigned char *pixels; /* images.data */
    const unsigned char *label;  /* labels.data */
} dataset;

static void dataset_free(dataset *ds)
{
    bp_idx_free(&ds->images);
    bp_idx_free(&ds->labels);
    ds->pixels = ds->label = NULL;
}

/* Reads an image file and its label file into ds and checks that they belong together: 3 sizes in the
   image file and 1 in the label file (else the names are probably swapped), as many labels as images, at
   least one pixel, every label below classes.  0 on success; -1 with one line in err, and nothing left
   allocated, on failure. */
static int read_dataset(const char *images_path, const char *labels_path, int classes, dataset *ds, char *err,
                        size_t err_size)
{
    int i;
    memset(ds, 0, sizeof *ds);
    if (bp_idx_load(&ds->images, images_path) != 0 || bp_idx_load(&ds->labels, labels_path) != 0) {
        snprintf(err, err_size, "%s", bp_failure_reason());
        dataset_free(ds);
        return -1;
    }
    if (ds->images.ndim != 3 || ds->labels.ndim != 1) {
        snprintf(err, err_size, "%s has %d sizes and %s has %d: expected 3 (images) and 1 (labels); names swapped?",
                 images_path, ds->images.ndim, labels_path, ds->labels.ndim);
        dataset_free(ds);
        return -1;
    }
    if (ds->images.dims[0] != ds->labels.dims[0]) {
        snprintf(err, err_size, "%s has %d images but %s has %d labels (they must match one to one)", images_path,
                 ds->images.dims[0], labels_path, ds->labels.dims[0]);
        dataset_free(ds);
        return -1;
    }
    if (!ds->images.data) {
        snprintf(err, err_size, "%s: has no pixels (%d images of %dx%d)", images_path, ds->images.dims[0],
                 ds->images.dims[1], ds->images.dims[2]);
        dataset_free(ds);
        return -1;
    }
    for (i = 0; i < ds->labels.dims[0]; i++) {
        if (ds->labels.data[i] >= classes) {
            snprintf(err, err_size, "%s: label %d (of image %d) is not a class 0..%d", labels_path,
                     ds->labels.data[i], i, classes - 1);
            dataset_free(ds);
            return -1;
        }
    }
    ds->count = ds->images.dims[0];
    ds->rows = ds->images.dims[1];
    ds->cols = ds->images.dims[2];
    ds->pixels = ds->images.data;
    ds->label = ds->labels.data;
    return 0;
}

/* ---- the network ------------------------------------------------------------------------------------ */

/* The parameters: W is fan_in x fan_out, b is 1 x fan_out.  The gradients (dW1 ...) and Adam's two moving
   averages per parameter live in tensors of the same shapes, kept in the same order. */
enum { W1, B1, W2, B2, W3, B3, NPARAMS };
static const char *const param_names[NPARAMS] = {"W1", "b1", "W2", "b2", "W3", "b3"};

/* Everything one batch needs, made once: the input, the activations the backward pass reads back (the
   forward's cache), and the gradients flowing back through them.  All have BATCH rows; a smaller batch
   uses the first n rows (see first_rows). */
typedef struct workspace {
    bp_tensor x;          /* batch x 784: pixels scaled to [0,1] */
    int labels[BATCH];    /* the class of each row */
    bp_tensor z1, a1;     /* batch x 256: z1 = x W1 + b1, a1 = max(0, z1) */
    bp_tensor z2, a2;     /* batch x 128 */
    bp_tensor logits;     /* batch x 10:  a2 W3 + b3 */
    bp_tensor probs;      /* batch x 10:  softmax(logits); becomes dL/dlogits in place */
    bp_tensor da1, da2;   /* dL/da1 then dL/dz1 (in place), dL/da2 then dL/dz2 */
} workspace;

/* The first n rows of t, sharing t's memory: no copy, no allocation (never bp_tensor_free a view). */
static bp_tensor first_rows(const bp_tensor *t, int n)
{
    bp_tensor view;
    view.rows = n;
    view.cols = t->cols;
    view.data = t->data;
    return view;
}

/* Copies examples order[0..n-1] of ds into the workspace's first n rows: pixels / 255 into x, labels. */
static void load_batch(const dataset *ds, const int *order, int n, workspace *ws)
{
    int r, j;
    for (r = 0; r < n; r++) {
        const unsigned char *image = ds->pixels + (size_t)order[r] * INPUTS;
        bp_real *row = ws->x.data + (size_t)r * INPUTS;
        for (j = 0; j < INPUTS; j++) row[j] = (bp_real)image[j] * (bp_real)(1.0 / 255.0);
        ws->labels[r] = ds->label[order[r]];
    }
}

/* The forward pass on the first n rows; returns the mean cross-entropy loss and leaves softmax in probs. */
static bp_real forward(bp_tensor *const *p, workspace *ws, int n)
{
    bp_tensor x = first_rows(&ws->x, n);
    bp_tensor z1 = first_rows(&ws->z1, n), a1 = first_rows(&ws->a1, n);
    bp_tensor z2 = first_rows(&ws->z2, n), a2 = first_rows(&ws->a2, n);
    bp_tensor logits = first_rows(&ws->logits, n), probs = first_rows(&ws->probs, n);

    bp_linear_forward(&x, p[W1], p[B1], &z1);      /* z1 = x W1 + b1      (n x 256) */
    bp_relu_forward(&z1, &a1);                     /* a1 = max(0, z1)               */
    bp_linear_forward(&a1, p[W2], p[B2], &z2);     /* z2 = a1 W2 + b2     (n x 128) */
    bp_relu_forward(&z2, &a2);                     /* a2 = max(0, z2)               */
    bp_linear_forward(&a2, p[W3], p[B3], &logits); /* logits = a2 W3 + b3 (n x 10)  */
    return bp_softmax_xent_forward(&logits, ws->labels, &probs); /* probs = softmax; loss = mean -log p[label] */
}

/* The backward pass after forward on the same n rows: every gradient, from the loss back to W1. */
static void backward(bp_tensor *const *p, bp_tensor *const *grad, workspace *ws, int n)
{
    bp_tensor x = first_rows(&ws->x, n);
    bp_tensor z1 = first_rows(&ws->z1, n), a1 = first_rows(&ws->a1, n);
    bp_tensor z2 = first_rows(&ws->z2, n), a2 = first_rows(&ws->a2, n);
    bp_tensor probs = first_rows(&ws->probs, n);
    bp_tensor da1 = first_rows(&ws->da1, n), da2 = first_rows(&ws->da2, n);
    bp_tensor *dlogits = &probs; /* computed in place over probs */

    bp_softmax_xent_backward(&probs, ws->labels, dlogits);                 /* (probs - onehot) / n      */
    bp_linear_backward(&a2, p[W3], dlogits, &da2, grad[W3], grad[B3]);     /* dW3 = a2^T dl, da2 = dl W3^T */
    bp_relu_backward(&z2, &da2, &da2);                                     /* dz2 = da2 * 1[z2 > 0]     */
    bp_linear_backward(&a1, p[W2], &da2, &da1, grad[W2], grad[B2]);        /* dW2 = a1^T dz2, da1 = dz2 W2^T */
    bp_relu_backward(&z1, &da1, &da1);                                     /* dz1 = da1 * 1[z1 > 0]     */
    bp_linear_backward(&x, p[W1], &da1, NULL, grad[W1], grad[B1]);         /* dW1 = x^T dz1 (no dx needed) */
}

/* The class with the highest probability in row r. */
static int predicted_class(const workspace *ws, int r)
{
    const bp_real *row = ws->probs.data + (size_t)r * CLASSES;
    int c, best = 0;
    for (c = 1; c < CLASSES; c++)
        if (row[c] > row[best]) best = c;
    return best;
}

/* Runs the network on all of ds in batches, without training.  Returns the accuracy; puts the mean loss in
   *loss and, if confusion is not NULL, counts confusion[true class][predicted class]. */
static double evaluate(bp_tensor *const *p, const dataset *ds, int *order, workspace *ws, double *loss,
                       int confusion[CLASSES][CLASSES])
{
    int start, r, correct = 0;
    double loss_sum = 0;
    if (confusion) memset(confusion, 0, sizeof(int) * CLASSES * CLASSES);
    for (start = 0; start < ds->count; start += BATCH) {
        int n = ds->count - start < BATCH ? ds->count - start : BATCH;
        for (r = 0; r < n; r++) order[r] = start + r; /* the test set in its own order */
        load_batch(ds, order, n, ws);
        loss_sum += (double)forward(p, ws, n) * n;
        for (r = 0; r < n; r++) {
            int guess = predicted_class(ws, r);
            correct += guess == ws->labels[r];
            if (confusion) confusion[ws->labels[r]][guess]++;
        }
    }
    *loss = loss_sum / ds->count;
    return (double)correct / ds->count;
}

/* ---- small helpers ------------------------------------------------------------------------------------ */

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

/* Ticks for an axis from lo to hi: a step of 1, 2 or 5 times a power of ten giving about 5 ticks. */
static double tick_step(double lo, double hi)
{
    double raw = (hi - lo) / 5, power = 1;
    if (!(raw > 0)) return 1;
    while (power * 10 <= raw) power *= 10;
    while (power > raw) power /= 10;
    if (raw >= 5 * power) return 5 * power;
    if (raw >= 2 * power) return 2 * power;
    return power;
}

/* One panel of the chart: two series over epochs 1..epochs, axes with ticks, titles and a legend.  y_mark, if
   positive, draws a dashed horizontal line labelled mark_label (the target accuracy). */
static void svg_panel(FILE *f, double left, double top, double width, double height, const char *title,
                      const char *y_title, int epochs, const double *s1, const char *name1, const double *s2,
                      const char *name2, double y_mark, const char *mark_label, int legend_at_top)
{
    const char *colors[2] = {"#1f77b4", "#d62728"};
    const double *series[2];
    const char *names[2];
    double lo = s1[0], hi = s1[0], step, t, x_step;
    int e, k;

    series[0] = s1;
    series[1] = s2;
    names[0] = name1;
    names[1] = name2;
    for (k = 0; k < 2; k++)
        for (e = 0; e < epochs; e++) {
            if (series[k][e] < lo) lo = series[k][e];
            if (series[k][e] > hi) hi = series[k][e];
        }
    if (y_mark > 0) {
        if (y_mark < lo) lo = y_mark;
        if (y_mark > hi) hi = y_mark;
    }
    if (hi - lo < 1e-6) hi = lo + 1e-6;
    step = tick_step(lo, hi);
    lo = step * floor(lo / step); /* the axis starts and ends on a tick */
    hi = step * ceil(hi / step);

#define SX(epoch) (left + (epochs > 1 ? ((epoch) - 1.0) / (epochs - 1.0) : 0.5) * width)
#define SY(value) (top + height - ((value) - lo) / (hi - lo) * height)
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">%s</text>\n",
            left + width / 2, top - 12, title);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n", left,
            top, width, height);
    for (t = lo; t <= hi + step * 1e-6; t += step) { /* y ticks and grid lines */
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, SY(t),
                left + width, SY(t));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%g</text>\n", left - 5,
                SY(t) + 4, fabs(t) < step * 1e-6 ? 0.0 : t);
    }
    x_step = epochs <= 10 ? 1 : epochs <= 20 ? 2 : epochs <= 50 ? 5 : 10 * ceil(epochs / 100.0);
    for (e = 1; e <= epochs; e++) /* x ticks */
        if ((e == 1 && x_step == 1) || e % (int)x_step == 0) {
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", SX(e),
                    top + height, SX(e), top + height + 4);
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%d</text>\n", SX(e),
                    top + height + 17, e);
        }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\">epoch</text>\n", left + width / 2,
            top + height + 36);
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"13\" "
            "transform=\"rotate(-90 %.1f %.1f)\">%s</text>\n",
            left - 48, top + height / 2, left - 48, top + height / 2, y_title);
    if (y_mark > 0) {
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#2ca02c\" stroke-dasharray=\"6,4\"/>\n",
                left, SY(y_mark), left + width, SY(y_mark));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" fill=\"#2ca02c\">%s</text>\n",
                left + width - 4, SY(y_mark) - 4, mark_label);
    }
    for (k = 0; k < 2; k++) { /* the two series: a line with a dot at every epoch */
        double legend_y = legend_at_top ? top + 18 + 18 * k : top + height - 36 + 18 * k;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colors[k]);
        for (e = 1; e <= epochs; e++) fprintf(f, "%.1f,%.1f ", SX(e), SY(series[k][e - 1]));
        fprintf(f, "\"/>\n");
        for (e = 1; e <= epochs; e++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", SX(e), SY(series[k][e - 1]),
                    colors[k]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                left + width - 150, legend_y, left + width - 126, legend_y, colors[k]);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">%s</text>\n", left + width - 120, legend_y + 4,
                names[k]);
    }
#undef SX
#undef SY
}

/* The chart: loss per epoch on the left, accuracy per epoch on the right.  0 on success, -1 on a file error. */
static int write_chart(const char *path, int epochs, const double *train_loss, const double *test_loss,
                       const double *train_acc, const double *test_acc)
{
    FILE *f = fopen(path, "w");
    int failed;
    if (!f) return -1;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"960\" height=\"400\" "
               "viewBox=\"0 0 960 400\" font-family=\"sans-serif\">\n");
    fprintf(f, "<rect width=\"960\" height=\"400\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"480\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">Fashion-MNIST, MLP 784-256-128-10, "
               "Adam lr 1e-3 cosine-decayed, batch %d</text>\n", BATCH);
    svg_panel(f, 80, 70, 360, 260, "Cross-entropy loss", "loss (mean per example)", epochs, train_loss,
              "train (during epoch)", test_loss, "test", 0, NULL, 1);
    svg_panel(f, 570, 70, 360, 260, "Accuracy", "fraction correct", epochs, train_acc, "train (during epoch)",
              test_acc, "test", TARGET_ACCURACY, "target 0.89", 0);
    fprintf(f, "</svg>\n");
    failed = ferror(f);
    if (fclose(f) != 0) failed = 1;
    return failed ? -1 : 0;
}

/* ---- main ---------------------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *data_dir = argc > 1 ? argv[1] : "examples/data/fashion-mnist";
    const char *out_dir = argc > 3 ? argv[3] : "build";
    const int fan_in[NPARAMS] = {INPUTS, 1, HIDDEN1, 1, HIDDEN2, 1};
    const int fan_out[NPARAMS] = {HIDDEN1, HIDDEN1, HIDDEN2, HIDDEN2, CLASSES, CLASSES};
    const bp_real lr = argc > 4 ? (bp_real)atof(argv[4]) : 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    int epochs = DEFAULT_EPOCHS;
    char path[4][1024], err[1200];
    dataset train, test;
    bp_tensor param[NPARAMS], grad[NPARAMS], adam_m[NPARAMS], adam_v[NPARAMS], loaded[NPARAMS];
    bp_tensor *p[NPARAMS], *g[NPARAMS], *reloaded[NPARAMS];
    workspace ws;
    bp_rng rng;
    int *order = NULL;
    double *train_loss = NULL, *test_loss = NULL, *train_acc = NULL, *test_acc = NULL;
    double accuracy = 0, reloaded_accuracy = -1, loss, started, total_seconds;
    int confusion[CLASSES][CLASSES], worst[CLASSES];
    int i, k, c, epoch, step = 0, status = 1, weights_identical = 1;

    if (argc > 2) {
        char *end;
        long n = strtol(argv[2], &end, 10);
        if (end == argv[2] || *end != '\0' || n < 1 || n > 1000 || !(lr > 0)) {
            fprintf(stderr, "usage: %s [DATA_DIR [EPOCHS (1..1000) [OUT_DIR [LEARNING_RATE > 0]]]]\n", argv[0]);
            return 2;
        }
        epochs = (int)n;
    }

    /* ---- the data */
    if (strlen(data_dir) + strlen(out_dir) > 900) {
        fprintf(stderr, "fashion_mnist: folder name too long\n");
        return 1;
    }
    sprintf(path[0], "%s/train-images-idx3-ubyte", data_dir);
    sprintf(path[1], "%s/train-labels-idx1-ubyte", data_dir);
    sprintf(path[2], "%s/t10k-images-idx3-ubyte", data_dir);
    sprintf(path[3], "%s/t10k-labels-idx1-ubyte", data_dir);
    if (read_dataset(path[0], path[1], CLASSES, &train, err, sizeof err) != 0) {
        fprintf(stderr, "fashion_mnist: %s\n", err);
        return 1;
    }
    if (read_dataset(path[2], path[3], CLASSES, &test, err, sizeof err) != 0) {
        fprintf(stderr, "fashion_mnist: %s\n", err);
        dataset_free(&train);
        return 1;
    }
    if (train.rows * train.cols != INPUTS || test.rows * test.cols != INPUTS) {
        const dataset *bad = train.rows * train.cols != INPUTS ? &train : &test;
        fprintf(stderr, "fashion_mnist: %s: the images are %dx%d but this network takes 28x28 = %d pixels\n",
                bad == &train ? path[0] : path[2], bad->rows, bad->cols, INPUTS);
        dataset_free(&train);
        dataset_free(&test);
        return 1;
    }
    printf("data: %d training and %d test images of %dx%d pixels from %s\n", train.count, test.count, train.rows,
           train.cols, data_dir);

    /* ---- every tensor and buffer, made once: nothing is allocated inside the training loop */
    for (k = 0; k < NPARAMS; k++) {
        param[k] = bp_tensor_new(fan_in[k], fan_out[k]);  /* biases start at 0 (zero-filled) */
        grad[k] = bp_tensor_new(fan_in[k], fan_out[k]);
        adam_m[k] = bp_tensor_new(fan_in[k], fan_out[k]); /* Adam's state starts at 0 */
        adam_v[k] = bp_tensor_new(fan_in[k], fan_out[k]);
        loaded[k].rows = loaded[k].cols = 0;
        loaded[k].data = NULL;
        p[k] = &param[k];
        g[k] = &grad[k];
        reloaded[k] = &loaded[k];
    }
    ws.x = bp_tensor_new(BATCH, INPUTS);
    ws.z1 = bp_tensor_new(BATCH, HIDDEN1);
    ws.a1 = bp_tensor_new(BATCH, HIDDEN1);
    ws.da1 = bp_tensor_new(BATCH, HIDDEN1);
    ws.z2 = bp_tensor_new(BATCH, HIDDEN2);
    ws.a2 = bp_tensor_new(BATCH, HIDDEN2);
    ws.da2 = bp_tensor_new(BATCH, HIDDEN2);
    ws.logits = bp_tensor_new(BATCH, CLASSES);
    ws.probs = bp_tensor_new(BATCH, CLASSES);
    order = (int *)malloc(sizeof(int) * (size_t)(train.count > test.count ? train.count : test.count));
    train_loss = (double *)malloc(sizeof(double) * (size_t)epochs);
    test_loss = (double *)malloc(sizeof(double) * (size_t)epochs);
    train_acc = (double *)malloc(sizeof(double) * (size_t)epochs);
    test_acc = (double *)malloc(sizeof(double) * (size_t)epochs);
    if (!order || !train_loss || !test_loss || !train_acc || !test_acc) {
        fprintf(stderr, "fashion_mnist: out of memory\n");
        goto cleanup;
    }

    /* He initialisation: W ~ N(0, 2/fan_in), so the signal keeps its size through each ReLU layer */
    bp_rng_seed(&rng, SEED);
    bp_init_he(&param[W1], &rng);
    bp_init_he(&param[W2], &rng);
    bp_init_he(&param[W3], &rng);

    printf("network: %d -> %d -> ReLU -> %d -> ReLU -> %d, softmax cross-entropy; Adam, lr %g on a cosine "
           "schedule, batch %d, %d epochs\n",
           INPUTS, HIDDEN1, HIDDEN2, CLASSES, (double)lr, BATCH, epochs);
    printf("(train loss and acc: measured on each batch during the epoch, while the weights change)\n");
    started = seconds_now();
    for (epoch = 1; epoch <= epochs; epoch++) {
        const int batches = (train.count + BATCH - 1) / BATCH;
        double epoch_started = seconds_now(), loss_sum = 0;
        int batch, correct = 0, dots = 0;
        /* cosine schedule: lr_e = lr * (1 + cos(pi * (e-1) / epochs)) / 2, from lr at epoch 1 down towards 0 */
        bp_real lr_now = (bp_real)(lr * 0.5 * (1 + cos(3.14159265358979 * (epoch - 1) / epochs)));

        /* a fresh order every epoch (Fisher-Yates): each permutation equally likely */
        for (i = 0; i < train.count; i++) order[i] = i;
        for (i = train.count - 1; i > 0; i--) {
            int j = (int)(bp_rng_uniform(&rng) * (i + 1)), tmp = order[i]; /* 0 <= j <= i */
            order[i] = order[j];
            order[j] = tmp;
        }

        fprintf(stderr, "epoch %d/%d ", epoch, epochs);
        for (batch = 0; batch < batches; batch++) {
            int start = batch * BATCH, n = train.count - start < BATCH ? train.count - start : BATCH, r;

            bp_real batch_loss;

            load_batch(&train, order + start, n, &ws);
            batch_loss = forward(p, &ws, n);
            for (r = 0; r < n; r++) correct += predicted_class(&ws, r) == ws.labels[r];
            backward(p, g, &ws, n);
            /* A NaN or infinity spreads to every weight within a step or two, and from then on the numbers
               mean nothing: stop, and say where and the likely cause. */
            for (k = 0; k < NPARAMS && isfinite(batch_loss); k++)
                if (!bp_tensor_all_finite(g[k])) break;
            if (!isfinite(batch_loss) || k < NPARAMS) {
                fprintf(stderr, "\nfashion_mnist: %s at step %d (epoch %d): learning rate %g too high?\n",
                        isnan(batch_loss)   ? "loss became NaN"
                        : isinf(batch_loss) ? "loss became infinite"
                                            : "a gradient became NaN or infinite",
                        step + 1, epoch, (double)lr_now);
                goto cleanup;
            }
            loss_sum += (double)batch_loss * n;
            step++; /* Adam counts its steps from 1 */
            for (k = 0; k < NPARAMS; k++)
                bp_adam_step(p[k], g[k], &adam_m[k], &adam_v[k], step, lr_now, beta1, beta2, eps);

            while (dots < 20 * (batch + 1) / batches) { /* 20 dots per epoch, for a person watching */
                fputc('.', stderr);
                fflush(stderr);
                dots++;
            }
        }
        fputc('\n', stderr);
        train_loss[epoch - 1] = loss_sum / train.count;
        train_acc[epoch - 1] = (double)correct / train.count;
        test_acc[epoch - 1] = evaluate(p, &test, order, &ws, &test_loss[epoch - 1], NULL);
        printf("epoch %2d  lr %.6f  train loss %.4f acc %.4f  test loss %.4f acc %.4f  %4.1f s\n", epoch,
               (double)lr_now, train_loss[epoch - 1], train_acc[epoch - 1], test_loss[epoch - 1], test_acc[epoch - 1],
               seconds_now() - epoch_started);
        fflush(stdout);
    }
    total_seconds = seconds_now() - started;

    /* ---- what the network gets wrong */
    accuracy = evaluate(p, &test, order, &ws, &loss, confusion);
    printf("\ntrained in %.1f s; test accuracy %.4f, test loss %.4f\n", total_seconds, accuracy, loss);
    printf("\nper class (of the test images):\n");
    for (c = 0; c < CLASSES; c++) {
        int total = 0;
        for (k = 0; k < CLASSES; k++) total += confusion[c][k];
        printf("  %-12s %6.1f%%  (%d of %d)\n", class_names[c], total ? 100.0 * confusion[c][c] / total : 0.0,
               confusion[c][c], total);
        worst[c] = c;
    }
    /* sort the classes from least to most accurate (insertion sort on the diagonal) */
    for (c = 1; c < CLASSES; c++) {
        int w = worst[c], j = c;
        while (j > 0 && confusion[worst[j - 1]][worst[j - 1]] > confusion[w][w]) {
            worst[j] = worst[j - 1];
            j--;
        }
        worst[j] = w;
    }
    printf("\nthe hardest classes, and what the network takes them for:\n");
    for (i = 0; i < 3; i++) {
        int truth = worst[i], total = 0, shown;
        int used[CLASSES] = {0};
        for (k = 0; k < CLASSES; k++) total += confusion[truth][k];
        if (total == 0) continue;
        printf("  %s is mistaken for", class_names[truth]);
        used[truth] = 1;
        for (shown = 0; shown < 3; shown++) { /* the three most frequent wrong answers */
            int best = -1;
            for (k = 0; k < CLASSES; k++)
                if (!used[k] && (best < 0 || confusion[truth][k] > confusion[truth][best])) best = k;
            if (best < 0 || confusion[truth][best] == 0) break;
            used[best] = 1;
            printf("%s %s %.1f%%", shown ? "," : "", class_names[best], 100.0 * confusion[truth][best] / total);
        }
        printf("\n");
    }

    /* ---- the chart */
    sprintf(path[0], "%s/fashion_mnist.svg", out_dir);
    if (write_chart(path[0], epochs, train_loss, test_loss, train_acc, test_acc) != 0) {
        fprintf(stderr, "fashion_mnist: cannot write %s: %s\n", path[0], strerror(errno));
        goto cleanup;
    }
    printf("\nchart: %s\n", path[0]);

    /* ---- save the weights, load them back, and check the reloaded network gives the same answers */
    for (k = 0; k < NPARAMS; k++) {
        sprintf(path[0], "%s/fashion_%s.npy", out_dir, param_names[k]);
        if (bp_tensor_save_npy(&param[k], path[0]) != 0 || bp_tensor_load_npy(&loaded[k], path[0]) != 0) {
            fprintf(stderr, "fashion_mnist: %s\n", bp_failure_reason());
            goto cleanup;
        }
        if (loaded[k].rows != param[k].rows || loaded[k].cols != param[k].cols ||
            memcmp(loaded[k].data, param[k].data, sizeof(bp_real) * (size_t)param[k].rows * param[k].cols) != 0)
            weights_identical = 0;
    }
    if (weights_identical) reloaded_accuracy = evaluate(reloaded, &test, order, &ws, &loss, NULL);
    printf("weights saved to %s/fashion_{W1,b1,W2,b2,W3,b3}.npy and loaded back: %s, test accuracy %.4f (%s)\n",
           out_dir, weights_identical ? "bit for bit the same" : "DIFFERENT", reloaded_accuracy,
           reloaded_accuracy == accuracy ? "identical" : "NOT identical");
    if (!weights_identical || reloaded_accuracy != accuracy) goto cleanup;

    if (accuracy < TARGET_ACCURACY)
        fprintf(stderr, "fashion_mnist: test accuracy %.4f is below the target %.2f\n", accuracy, TARGET_ACCURACY);
    else
        status = 0;
    printf("test accuracy: %.4f\n", accuracy);

cleanup:
    for (k = 0; k < NPARAMS; k++) {
        bp_tensor_free(&param[k]);
        bp_tensor_free(&grad[k]);
        bp_tensor_free(&adam_m[k]);
        bp_tensor_free(&adam_v[k]);
        bp_tensor_free(&loaded[k]);
    }
    bp_tensor_free(&ws.x);
    bp_tensor_free(&ws.z1);
    bp_tensor_free(&ws.a1);
    bp_tensor_free(&ws.da1);
    bp_tensor_free(&ws.z2);
    bp_tensor_free(&ws.a2);
    bp_tensor_free(&ws.da2);
    bp_tensor_free(&ws.logits);
    bp_tensor_free(&ws.probs);
    free(order);
    free(train_loss);
    free(test_loss);
    free(train_acc);
    free(test_acc);
    dataset_free(&train);
    dataset_free(&test);
    return status;
}
