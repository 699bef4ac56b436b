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
                   OUT_DIR   the folder for the weights (fashion_W1.npy ...) and the chart
                             fashion_mnist.svg, default build (created if missing)
                   LEARNING_RATE  Adam's starting rate, default 1e-3.  A rate far too high drives the
                             loss to NaN or infinity; the program then stops at that step and says so
                             (exit status 1) instead of training on garbage.  Adam moves a weight by at
                             most about the rate per step, so it takes an absurd one: try 1e20.
   One line per epoch goes to stdout, progress dots within an epoch to stderr.  A run that finishes ends
   stdout with the line "test accuracy: 0.XXXX".  Exit status 0 if the test accuracy is at least 0.89;
   1 if it is below, or if a file could not be read or written (one line on stderr says which and why).
   The run is the same every time for one build (seeded); other compilers and CPUs round differently, so
   the last digits vary between machines.

   Timing: each epoch line ends with "T s + E s": T seconds of training (the shuffle, every batch's
   forward, backward and Adam step), then E seconds of evaluation on the test set.  Wall-clock seconds from
   clock_gettime(CLOCK_MONOTONIC) where the system has it (Linux, macOS, the BSDs), else clock() (processor
   time, the same thing here since the program runs on one thread). */

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

#define INPUTS 784 /* 28 x 28 pixels */
#define HIDDEN1 256
#define HIDDEN2 128
#define CLASSES 10
#define BATCH 128
#define DEFAULT_EPOCHS 20
#define MAX_EPOCHS 1000
#define TARGET_ACCURACY 0.89
#define SEED 42

static const char *const class_names[CLASSES] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* ---- reading the data: the IDX format -------------------------------------------------------------------

   The files are in the IDX format, which bp_idx_load reads (backprop.h says how): the images file holds
   count x 28 x 28 bytes, the labels file count bytes.  A file is outside data: bp_idx_load checks every
   size before trusting it, and a bad file gives one line saying which file and what is wrong, never a
   crash.  What is checked here is that the two files belong together. */

/* One split of the data set: count images of rows x cols pixels and their labels (0 .. CLASSES-1).  The
   file holds a byte per pixel (0 = black .. 255 = white), and they stay bytes: load_batch turns the rows of
   a batch into what the network reads, pixel / 255 as bp_real, as it copies them.  (Converted once on
   loading instead, the set would take 188 MB rather than 47, and each epoch's random rows would cost more
   to fetch than the conversion costs: measured, 0.026 against 0.018 s an epoch.) */
typedef struct dataset {
    int count, rows, cols;
    bp_idx images, labels;      /* as read: image i is bytes i*784 .. i*784+783 of images.data */
    const unsigned char *label; /* labels.data */
} dataset;

static void dataset_free(dataset *ds)
{
    bp_idx_free(&ds->images);
    bp_idx_free(&ds->labels);
    ds->label = NULL;
}

/* Reads the image file and the label file of one split, in data_dir, into ds and checks that they
   belong together: 3 sizes in the image file and 1 in the label file (else the names are probably
   swapped), as many labels as images, at least one pixel, 28x28 images, every label a class.  0 on
   success; -1 with one line on stderr, and nothing left allocated, on failure. */
static int read_dataset(const char *data_dir, const char *images_file, const char *labels_file, dataset *ds)
{
    char images[1024], labels[1024];
    int i;
    memset(ds, 0, sizeof *ds);
    if (snprintf(images, sizeof images, "%s/%s", data_dir, images_file) >= (int)sizeof images ||
        snprintf(labels, sizeof labels, "%s/%s", data_dir, labels_file) >= (int)sizeof labels) {
        fprintf(stderr, "fashion_mnist: folder name too long\n");
        return -1;
    }
    if (bp_idx_load(&ds->images, images) != 0 || bp_idx_load(&ds->labels, labels) != 0) {
        fprintf(stderr, "fashion_mnist: %s\n", bp_failure_reason());
        goto refuse;
    }
    if (ds->images.ndim != 3 || ds->labels.ndim != 1) {
        fprintf(stderr, "fashion_mnist: %s has %d sizes and %s has %d: expected 3 (images) and 1 (labels); names "
                "swapped?\n", images, ds->images.ndim, labels, ds->labels.ndim);
        goto refuse;
    }
    if (ds->images.dims[0] != ds->labels.dims[0]) {
        fprintf(stderr, "fashion_mnist: %s has %d images but %s has %d labels (they must match one to one)\n",
                images, ds->images.dims[0], labels, ds->labels.dims[0]);
        goto refuse;
    }
    if (!ds->images.data) {
        fprintf(stderr, "fashion_mnist: %s: has no pixels (%d images of %dx%d)\n", images, ds->images.dims[0],
                ds->images.dims[1], ds->images.dims[2]);
        goto refuse;
    }
    if (ds->images.dims[1] * ds->images.dims[2] != INPUTS) {
        fprintf(stderr, "fashion_mnist: %s: the images are %dx%d but this network takes 28x28 = %d pixels\n",
                images, ds->images.dims[1], ds->images.dims[2], INPUTS);
        goto refuse;
    }
    for (i = 0; i < ds->labels.dims[0]; i++) {
        if (ds->labels.data[i] >= CLASSES) {
            fprintf(stderr, "fashion_mnist: %s: label %d (of image %d) is not a class 0..%d\n", labels,
                    ds->labels.data[i], i, CLASSES - 1);
            goto refuse;
        }
    }
    ds->count = ds->images.dims[0];
    ds->rows = ds->images.dims[1];
    ds->cols = ds->images.dims[2];
    ds->label = ds->labels.data;
    return 0;
refuse:
    dataset_free(ds);
    return -1;
}

/* ---- the network ------------------------------------------------------------------------------------ */

/* The parameters: W is fan_in x fan_out, b is 1 x fan_out.  The gradients (dW1 ...) and Adam's two moving
   averages per parameter live in tensors of the same shapes, kept in the same order. */
enum { W1, B1, W2, B2, W3, B3, NPARAMS };
static const char *const param_names[NPARAMS] = {"W1", "b1", "W2", "b2", "W3", "b3"};

typedef struct model {
    bp_tensor param[NPARAMS], grad[NPARAMS];
    bp_tensor adam_m[NPARAMS], adam_v[NPARAMS]; /* Adam's moving averages of the gradient and its square */
} model;

/* All zero but the weights: He initialisation, W ~ N(0, 2/fan_in), so the signal keeps its size through
   each ReLU layer. */
static void model_new(model *m, bp_rng *rng)
{
    const int fan_in[NPARAMS] = {INPUTS, 1, HIDDEN1, 1, HIDDEN2, 1};
    const int fan_out[NPARAMS] = {HIDDEN1, HIDDEN1, HIDDEN2, HIDDEN2, CLASSES, CLASSES};
    int k;
    for (k = 0; k < NPARAMS; k++) {
        m->param[k] = bp_tensor_new(fan_in[k], fan_out[k]); /* biases start at 0 (zero-filled) */
        m->grad[k] = bp_tensor_new(fan_in[k], fan_out[k]);
        m->adam_m[k] = bp_tensor_new(fan_in[k], fan_out[k]); /* Adam's state starts at 0 */
        m->adam_v[k] = bp_tensor_new(fan_in[k], fan_out[k]);
    }
    bp_init_he(&m->param[W1], rng);
    bp_init_he(&m->param[W2], rng);
    bp_init_he(&m->param[W3], rng);
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

/* Everything one batch needs, made once: the input, the activations the backward pass reads back (the
   forward's cache), and the gradients flowing back through them.  All have BATCH rows; a smaller batch
   uses the first n rows (bp_tensor_rows: a view, no copy). */
typedef struct workspace {
    bp_tensor x;          /* batch x 784: pixels scaled to [0,1] */
    int labels[BATCH];    /* the class of each row */
    bp_tensor z1, a1;     /* batch x 256: z1 = x W1 + b1, a1 = max(0, z1) */
    bp_tensor z2, a2;     /* batch x 128 */
    bp_tensor logits;     /* batch x 10:  a2 W3 + b3 */
    bp_tensor probs;      /* batch x 10:  softmax(logits); becomes dL/dlogits in place */
    bp_tensor da1, da2;   /* dL/da1 then dL/dz1 (in place), dL/da2 then dL/dz2 */
} workspace;

static void workspace_new(workspace *ws)
{
    ws->x = bp_tensor_new(BATCH, INPUTS);
    ws->z1 = bp_tensor_new(BATCH, HIDDEN1);
    ws->a1 = bp_tensor_new(BATCH, HIDDEN1);
    ws->da1 = bp_tensor_new(BATCH, HIDDEN1);
    ws->z2 = bp_tensor_new(BATCH, HIDDEN2);
    ws->a2 = bp_tensor_new(BATCH, HIDDEN2);
    ws->da2 = bp_tensor_new(BATCH, HIDDEN2);
    ws->logits = bp_tensor_new(BATCH, CLASSES);
    ws->probs = bp_tensor_new(BATCH, CLASSES);
}

static void workspace_free(workspace *ws)
{
    bp_tensor *all[] = {&ws->x, &ws->z1, &ws->a1, &ws->da1, &ws->z2, &ws->a2, &ws->da2, &ws->logits, &ws->probs};
    int i;
    for (i = 0; i < (int)(sizeof all / sizeof all[0]); i++) bp_tensor_free(all[i]);
}

/* Asks the memory for an image's 784 bytes (13 cache lines) without waiting for them: a prefetch, a hint
   that GNU C compilers (gcc, clang) offer; elsewhere it does nothing. */
static void prefetch_image(const unsigned char *image)
{
#if defined(__GNUC__)
    int k;
    for (k = 0; k < INPUTS; k += 64) __builtin_prefetch(image + k);
#else
    (void)image;
#endif
}

/* Copies examples order[0..n-1] of ds into the workspace's first n rows, as pixel / 255, and their labels.
   Each image is a random one of 47 MB, which the copy would wait for (about 0.3-0.4 us on our VM); asking
   for the one 4 ahead first lets that wait overlap this copy (0.028 s an epoch without, 0.018 with). */
#define PREFETCH_AHEAD 4
static void load_batch(const dataset *ds, const int *order, int n, workspace *ws)
{
    int r, j;
    for (r = 0; r < n; r++) {
        const unsigned char *image = ds->images.data + (size_t)order[r] * INPUTS;
        bp_real *row = ws->x.data + (size_t)r * INPUTS;
        if (r + PREFETCH_AHEAD < n) prefetch_image(ds->images.data + (size_t)order[r + PREFETCH_AHEAD] * INPUTS);
        for (j = 0; j < INPUTS; j++) row[j] = (bp_real)image[j] * (bp_real)(1.0 / 255.0);
        ws->labels[r] = ds->label[order[r]];
    }
}

/* The forward pass on the first n rows; returns the mean cross-entropy loss and leaves softmax in probs. */
static bp_real forward(const bp_tensor *p, workspace *ws, int n)
{
    bp_tensor x = bp_tensor_rows(&ws->x, 0, n);
    bp_tensor z1 = bp_tensor_rows(&ws->z1, 0, n), a1 = bp_tensor_rows(&ws->a1, 0, n);
    bp_tensor z2 = bp_tensor_rows(&ws->z2, 0, n), a2 = bp_tensor_rows(&ws->a2, 0, n);
    bp_tensor logits = bp_tensor_rows(&ws->logits, 0, n), probs = bp_tensor_rows(&ws->probs, 0, n);

    bp_linear_forward(&x, &p[W1], &p[B1], &z1);      /* z1 = x W1 + b1      (n x 256) */
    bp_relu_forward(&z1, &a1);                       /* a1 = max(0, z1)               */
    bp_linear_forward(&a1, &p[W2], &p[B2], &z2);     /* z2 = a1 W2 + b2     (n x 128) */
    bp_relu_forward(&z2, &a2);                       /* a2 = max(0, z2)               */
    bp_linear_forward(&a2, &p[W3], &p[B3], &logits); /* logits = a2 W3 + b3 (n x 10)  */
    return bp_softmax_xent_forward(&logits, ws->labels, &probs); /* probs = softmax; loss = mean -log p[label] */
}

/* The backward pass after forward on the same n rows: every gradient, from the loss back to W1. */
static void backward(const bp_tensor *p, bp_tensor *grad, workspace *ws, int n)
{
    bp_tensor x = bp_tensor_rows(&ws->x, 0, n);
    bp_tensor z1 = bp_tensor_rows(&ws->z1, 0, n), a1 = bp_tensor_rows(&ws->a1, 0, n);
    bp_tensor z2 = bp_tensor_rows(&ws->z2, 0, n), a2 = bp_tensor_rows(&ws->a2, 0, n);
    bp_tensor probs = bp_tensor_rows(&ws->probs, 0, n);
    bp_tensor da1 = bp_tensor_rows(&ws->da1, 0, n), da2 = bp_tensor_rows(&ws->da2, 0, n);
    bp_tensor *dlogits = &probs; /* computed in place over probs */

    bp_softmax_xent_backward(&probs, ws->labels, dlogits);                 /* (probs - onehot) / n      */
    bp_linear_backward(&a2, &p[W3], dlogits, &da2, &grad[W3], &grad[B3]);  /* dW3 = a2^T dl, da2 = dl W3^T */
    bp_relu_backward(&z2, &da2, &da2);                                     /* dz2 = da2 * 1[z2 > 0]     */
    bp_linear_backward(&a1, &p[W2], &da2, &da1, &grad[W2], &grad[B2]);     /* dW2 = a1^T dz2, da1 = dz2 W2^T */
    bp_relu_backward(&z1, &da1, &da1);                                     /* dz1 = da1 * 1[z1 > 0]     */
    bp_linear_backward(&x, &p[W1], &da1, NULL, &grad[W1], &grad[B1]);      /* dW1 = x^T dz1 (no dx needed) */
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
static double evaluate(const bp_tensor *p, const dataset *ds, int *order, workspace *ws, double *loss,
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

/* ---- training ------------------------------------------------------------------------------------------ */

/* A fresh order of 0 .. n-1 (Fisher-Yates): each permutation equally likely. */
static void shuffle(int *order, int n, bp_rng *rng)
{
    int i;
    for (i = 0; i < n; i++) order[i] = i;
    for (i = n - 1; i > 0; i--) {
        int j = (int)(bp_rng_uniform(rng) * (i + 1)), tmp = order[i]; /* 0 <= j <= i */
        order[i] = order[j];
        order[j] = tmp;
    }
}

/* What went wrong, or NULL if the loss and every gradient are finite numbers.  A NaN or infinity spreads
   to every weight within a step or two, and from then on the numbers mean nothing. */
static const char *not_finite(bp_real loss, const bp_tensor *grad)
{
    int k;
    if (isnan(loss)) return "loss became NaN";
    if (isinf(loss)) return "loss became infinite";
    for (k = 0; k < NPARAMS; k++)
        if (!bp_tensor_all_finite(&grad[k])) return "a gradient became NaN or infinite";
    return NULL;
}

/* One epoch over train_set in the given order: forward, backward and an Adam step per batch.  *step counts the
   steps of all epochs (Adam counts from 1).  Puts the epoch's mean loss and accuracy, measured on each
   batch while the weights change, in *loss and *accuracy.  If the numbers stop being finite: stops, says
   where and the likely cause on stderr, and returns -1. */
static int train_epoch(model *m, const dataset *train_set, const int *order, workspace *ws, bp_real lr, int epoch,
                       int *step, double *loss, double *accuracy)
{
    const bp_real beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
    const int batches = (train_set->count + BATCH - 1) / BATCH;
    double loss_sum = 0;
    int batch, k, r, correct = 0, dots = 0;
    for (batch = 0; batch < batches; batch++) {
        int start = batch * BATCH, n = train_set->count - start < BATCH ? train_set->count - start : BATCH;
        bp_real batch_loss;
        const char *wrong;
        load_batch(train_set, order + start, n, ws);
        batch_loss = forward(m->param, ws, n);
        for (r = 0; r < n; r++) correct += predicted_class(ws, r) == ws->labels[r];
        backward(m->param, m->grad, ws, n);
        wrong = not_finite(batch_loss, m->grad);
        if (wrong) {
            fprintf(stderr, "\nfashion_mnist: %s at step %d (epoch %d): learning rate %g too high?\n", wrong,
                    *step + 1, epoch, (double)lr);
            return -1;
        }
        loss_sum += (double)batch_loss * n;
        *step += 1; /* Adam counts its steps from 1 */
        for (k = 0; k < NPARAMS; k++)
            bp_adam_step(&m->param[k], &m->grad[k], &m->adam_m[k], &m->adam_v[k], *step, lr, beta1, beta2, eps);
        while (dots < 20 * (batch + 1) / batches) { /* 20 dots per epoch, for a person watching */
            fputc('.', stderr);
            fflush(stderr);
            dots++;
        }
    }
    fputc('\n', stderr);
    *loss = loss_sum / train_set->count;
    *accuracy = (double)correct / train_set->count;
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

/* The loss and accuracy of each epoch (index epoch - 1). */
typedef struct history {
    double train_loss[MAX_EPOCHS], test_loss[MAX_EPOCHS];
    double train_acc[MAX_EPOCHS], test_acc[MAX_EPOCHS];
} history;

/* epochs epochs of training, each followed by a run on the test set: one line per epoch on stdout, their
   numbers in h.  -1 if the training stopped (train_epoch said why). */
static int train_all_epochs(model *m, const dataset *train_set, const dataset *test_set, int *order, workspace *ws,
                            bp_rng *rng, bp_real lr, int epochs, history *h)
{
    int epoch, step = 0;
    for (epoch = 1; epoch <= epochs; epoch++) {
        double started = seconds_now(), trained;
        /* cosine schedule: lr_e = lr * (1 + cos(pi * (e-1) / epochs)) / 2, from lr at epoch 1 down towards 0 */
        bp_real lr_now = (bp_real)(lr * 0.5 * (1 + cos(3.14159265358979 * (epoch - 1) / epochs)));
        shuffle(order, train_set->count, rng);
        fprintf(stderr, "epoch %d/%d ", epoch, epochs);
        if (train_epoch(m, train_set, order, ws, lr_now, epoch, &step, &h->train_loss[epoch - 1],
                        &h->train_acc[epoch - 1]) != 0)
            return -1;
        trained = seconds_now();
        h->test_acc[epoch - 1] = evaluate(m->param, test_set, order, ws, &h->test_loss[epoch - 1], NULL);
        printf("epoch %2d  lr %.6f  train loss %.4f acc %.4f  test loss %.4f acc %.4f  %.2f s + %.2f s\n", epoch,
               (double)lr_now, h->train_loss[epoch - 1], h->train_acc[epoch - 1], h->test_loss[epoch - 1],
               h->test_acc[epoch - 1], trained - started, seconds_now() - trained);
        fflush(stdout);
    }
    return 0;
}

/* ---- what the network gets wrong -------------------------------------------------------------------------- */

static void print_per_class(int confusion[CLASSES][CLASSES])
{
    int c, k;
    printf("\nper class (of the test images):\n");
    for (c = 0; c < CLASSES; c++) {
        int total = 0;
        for (k = 0; k < CLASSES; k++) total += confusion[c][k];
        printf("  %-12s %6.1f%%  (%d of %d)\n", class_names[c], total ? 100.0 * confusion[c][c] / total : 0.0,
               confusion[c][c], total);
    }
}

/* The three least accurate classes, each with the three classes it is most often taken for. */
static void print_hardest(int confusion[CLASSES][CLASSES])
{
    int worst[CLASSES], c, i, k;
    /* sort the classes from least to most accurate (insertion sort on the diagonal) */
    for (c = 0; c < CLASSES; c++) {
        int j = c;
        while (j > 0 && confusion[worst[j - 1]][worst[j - 1]] > confusion[c][c]) {
            worst[j] = worst[j - 1];
            j--;
        }
        worst[j] = c;
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
}

/* ---- the chart and the saved weights ---------------------------------------------------------------------- */

/* Loss per epoch on the left, accuracy per epoch on the right, into out_dir.  0, or -1 (stderr says why). */
static int write_chart(const char *out_dir, const history *h, int epochs, bp_real lr)
{
    double epoch[MAX_EPOCHS], target_x[2], target_y[2] = {TARGET_ACCURACY, TARGET_ACCURACY};
    char title[120];
    const chart_line losses[2] = {
        {"train (during epoch)", "#1f77b4", epoch, h->train_loss, epochs, 0},
        {"test", "#d62728", epoch, h->test_loss, epochs, 0},
    };
    const chart_line accuracies[3] = {
        {"train (during epoch)", "#1f77b4", epoch, h->train_acc, epochs, 0},
        {"test", "#d62728", epoch, h->test_acc, epochs, 0},
        {"target 0.89", "#2ca02c", target_x, target_y, 2, 1},
    };
    const chart_panel panels[2] = {
        {"Cross-entropy loss", "epoch", "loss (mean per example)", 0, 0, NULL, losses, 2},
        {"Accuracy", "epoch", "fraction correct", 0, 0, NULL, accuracies, 3},
    };
    int e;
    for (e = 0; e < epochs; e++) epoch[e] = e + 1;
    target_x[0] = 1;
    target_x[1] = epochs;
    sprintf(title, "Fashion-MNIST, MLP 784-256-128-10, Adam lr %g cosine-decayed, batch %d", (double)lr, BATCH);
    return chart_save("fashion_mnist", out_dir, "fashion_mnist.svg", title, panels, 2);
}

/* Saves the weights as out_dir/fashion_W1.npy ..., loads them back and runs the reloaded network on the
   test set.  0 if they came back bit for bit and give the same accuracy; else -1. */
static int save_and_reload(const model *m, const char *out_dir, const dataset *test, int *order, workspace *ws,
                           double accuracy)
{
    bp_tensor loaded[NPARAMS];
    char path[1024];
    double reloaded_accuracy = -1, loss;
    int k, identical = 1;
    for (k = 0; k < NPARAMS; k++) loaded[k] = bp_tensor_new(0, 0);
    for (k = 0; k < NPARAMS; k++) {
        snprintf(path, sizeof path, "%s/fashion_%s.npy", out_dir, param_names[k]);
        if (bp_tensor_save_npy(&m->param[k], path) != 0 || bp_tensor_load_npy(&loaded[k], path) != 0) break;
        if (loaded[k].rows != m->param[k].rows || loaded[k].cols != m->param[k].cols ||
            memcmp(loaded[k].data, m->param[k].data, sizeof(bp_real) * (size_t)m->param[k].rows * m->param[k].cols))
            identical = 0;
    }
    if (k < NPARAMS) {
        fprintf(stderr, "fashion_mnist: %s\n", bp_failure_reason());
    } else {
        if (identical) reloaded_accuracy = evaluate(loaded, test, order, ws, &loss, NULL);
        printf("weights saved to %s/fashion_{W1,b1,W2,b2,W3,b3}.npy and loaded back: %s, test accuracy %.4f (%s)\n",
               out_dir, identical ? "bit for bit the same" : "DIFFERENT", reloaded_accuracy,
               reloaded_accuracy == accuracy ? "identical" : "NOT identical");
    }
    for (k = 0; k < NPARAMS; k++) bp_tensor_free(&loaded[k]);
    return identical && reloaded_accuracy == accuracy ? 0 : -1;
}

/* ---- main ---------------------------------------------------------------------------------------------- */

/* EPOCHS from the command line: a whole number 1 .. MAX_EPOCHS, or 0 if it is not one. */
static int parse_epochs(const char *text)
{
    char *end;
    long n = strtol(text, &end, 10);
    return end != text && *end == '\0' && n >= 1 && n <= MAX_EPOCHS ? (int)n : 0;
}

int main(int argc, char **argv)
{
    const char *data_dir = argc > 1 ? argv[1] : "examples/data/fashion-mnist";
    const char *out_dir = argc > 3 ? argv[3] : "build";
    const bp_real lr = argc > 4 ? (bp_real)atof(argv[4]) : 1e-3f;
    const int epochs = argc > 2 ? parse_epochs(argv[2]) : DEFAULT_EPOCHS;
    static history h; /* static: 32 KB, kept off the stack */
    dataset train_set, test_set;
    model m;
    workspace ws;
    bp_rng rng;
    int *order, status = 1, confusion[CLASSES][CLASSES];
    double accuracy, loss, started;

    if (epochs == 0 || !(lr > 0)) {
        fprintf(stderr, "usage: %s [DATA_DIR [EPOCHS (1..%d) [OUT_DIR [LEARNING_RATE > 0]]]]\n", argv[0], MAX_EPOCHS);
        return 2;
    }
    if (read_dataset(data_dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", &train_set) != 0) return 1;
    if (read_dataset(data_dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", &test_set) != 0) {
        dataset_free(&train_set);
        return 1;
    }
    printf("data: %d training and %d test images of %dx%d pixels from %s\n", train_set.count, test_set.count,
           train_set.rows, train_set.cols, data_dir);
    /* every tensor and buffer, made once: nothing is allocated inside the training loop */
    bp_rng_seed(&rng, SEED);
    model_new(&m, &rng);
    workspace_new(&ws);
    order = (int *)malloc(sizeof(int) * (size_t)(train_set.count > test_set.count ? train_set.count : test_set.count));
    if (!order) {
        fprintf(stderr, "fashion_mnist: out of memory\n");
        goto cleanup;
    }

    printf("network: %d -> %d -> ReLU -> %d -> ReLU -> %d, softmax cross-entropy; Adam, lr %g on a cosine "
           "schedule, batch %d, %d epochs\n", INPUTS, HIDDEN1, HIDDEN2, CLASSES, (double)lr, BATCH, epochs);
    printf("(train loss and acc: measured on each batch during the epoch, while the weights change)\n");
    started = seconds_now();
    if (train_all_epochs(&m, &train_set, &test_set, order, &ws, &rng, lr, epochs, &h) != 0) goto cleanup;
    accuracy = evaluate(m.param, &test_set, order, &ws, &loss, confusion);
    printf("\ntrained in %.1f s; test accuracy %.4f, test loss %.4f\n", seconds_now() - started, accuracy, loss);
    print_per_class(confusion);
    print_hardest(confusion);

    printf("\n");
    make_folder(out_dir);
    if (write_chart(out_dir, &h, epochs, lr) != 0) goto cleanup;
    if (save_and_reload(&m, out_dir, &test_set, order, &ws, accuracy) != 0) goto cleanup;
    if (accuracy < TARGET_ACCURACY)
        fprintf(stderr, "fashion_mnist: test accuracy %.4f is below the target %.2f\n", accuracy, TARGET_ACCURACY);
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
