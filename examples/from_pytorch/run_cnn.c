/* From PyTorch to C, a CNN: runs the small convolutional network export.py trained in PyTorch on the
   images it saved, and compares the outputs with PyTorch's.

       make from_pytorch     (or: ./build/run_cnn [DIR], DIR holding cnn.npz and cnn_io.npz)

   The nn.Sequential, module by module (its numbers name the state_dict's members):
       0 Conv2d(1, 4, 3, padding=1)  1 ReLU  2 MaxPool2d(2)      1x12x12 -> 4x12x12 -> 4x6x6
       3 Conv2d(4, 8, 3, padding=1)  4 ReLU  5 MaxPool2d(2)      4x6x6   -> 8x6x6   -> 8x3x3
       6 Flatten  7 Linear(72, 16)  8 ReLU  9 Linear(16, 3)     72 -> 16 -> 3
   The layout mapping:
     - an image is one ROW of a tensor, its (C, H, W) values in PyTorch's order: an NCHW batch reshaped
       to (N, -1), which is what cnn_io.npz's "x" holds (N x 144);
     - a conv weight (F, C, K, K) is F x (C*K*K), the same numbers reshaped (export.py saved it so: a .npz
       member for backprop.h is 1-D or 2-D); its bias is 1 x F;
     - the conv and pool outputs keep that order, so row n of the last pool is torch's x.flatten(1):
       nn.Flatten costs nothing;
     - nn.Linear's weight is out x in, the transpose of bp_linear_forward's W: used as it is, through
       bp_matmul(&z, &a, &W, BP_TRANS_B), z = a W^T, then + b.
   Exits 1 unless every output agrees with PyTorch's to 1e-5 (|c - t| <= 1e-5 max(|t|, 1)) and every
   predicted class is PyTorch's. */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#define BACKPROP_IMPLEMENTATION
#include "../../backprop.h"

static const bp_window conv1 = {1, 12, 12, 3, 1, 1}; /* channels, height, width, kernel, stride, pad */
static const bp_window pool1 = {4, 12, 12, 2, 2, 0};
static const bp_window conv2 = {4, 6, 6, 3, 1, 1};
static const bp_window pool2 = {8, 6, 6, 2, 2, 0};

static const char *dir = "examples/from_pytorch";

static bp_tensor load(const char *file, const char *name)
{
    char path[1024];
    bp_tensor t = {0, 0, NULL};
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (bp_npz_load(&t, path, name) != 0) {
        fprintf(stderr, "run_cnn: %s\n", bp_failure_reason());
        exit(1);
    }
    return t;
}

/* Conv2d then ReLU then MaxPool2d(2): a is B x (F*H*W), y is B x (F*H/2*W/2) */
static void conv_relu_pool(const bp_window *conv, const bp_window *pool, const char *weight, const char *bias,
                           const bp_tensor *x, bp_tensor *y)
{
    bp_tensor W = load("cnn.npz", weight), b = load("cnn.npz", bias); /* F x (C*K*K), 1 x F */
    int OH = bp_window_out_height(conv), OW = bp_window_out_width(conv);
    bp_tensor a = bp_tensor_new(x->rows, W.rows * OH * OW);
    bp_tensor col = bp_tensor_new(conv->channels * conv->kernel * conv->kernel, OH * OW); /* im2col, 1 image */
    int *argmax = (int *)malloc(sizeof(int) * (size_t)y->rows * (size_t)y->cols); /* the backward's cache, unused */
    bp_conv2d_forward(conv, x, &W, &b, &a, &col);
    bp_relu_forward(&a, &a);
    bp_maxpool2d_forward(pool, &a, y, argmax);
    free(argmax);
    bp_tensor_free(&col);
    bp_tensor_free(&a);
    bp_tensor_free(&W);
    bp_tensor_free(&b);
}

/* nn.Linear on its out x in weight: z = a W^T + b */
static void linear(const char *weight, const char *bias, const bp_tensor *a, bp_tensor *z)
{
    bp_tensor W = load("cnn.npz", weight), b = load("cnn.npz", bias);
    int r, j;
    bp_matmul(z, a, &W, BP_TRANS_B);
    for (r = 0; r < z->rows; r++)
        for (j = 0; j < z->cols; j++) z->data[r * z->cols + j] += b.data[j];
    bp_tensor_free(&W);
    bp_tensor_free(&b);
}

int main(int argc, char **argv)
{
    bp_tensor x, logits, p1, p2, h, out;
    double worst = 0;
    int n, r, j, same = 1, ok;
    if (argc > 1) dir = argv[1];
    x = load("cnn_io.npz", "x");           /* n x 144: 1x12x12 images, one a row */
    logits = load("cnn_io.npz", "logits"); /* n x 3: PyTorch's outputs */
    n = x.rows;
    p1 = bp_tensor_new(n, 4 * 6 * 6);
    p2 = bp_tensor_new(n, 8 * 3 * 3);
    h = bp_tensor_new(n, 16);
    out = bp_tensor_new(n, 3);
    conv_relu_pool(&conv1, &pool1, "0.weight", "0.bias", &x, &p1); /* modules 0, 1, 2 */
    conv_relu_pool(&conv2, &pool2, "3.weight", "3.bias", &p1, &p2); /* modules 3, 4, 5; p2 is flattened */
    linear("7.weight", "7.bias", &p2, &h);
    bp_relu_forward(&h, &h);
    linear("9.weight", "9.bias", &h, &out);

    /* worst |c - t| / max(|t|, 1), and the largest output of every row at the same place */
    for (r = 0; r < n; r++) {
        int cc = 0, tc = 0;
        for (j = 0; j < 3; j++) {
            double c = (double)out.data[3 * r + j], t = (double)logits.data[3 * r + j];
            double d = fabs(c - t) / (fabs(t) > 1 ? fabs(t) : 1);
            if (d > worst) worst = d;
            if (out.data[3 * r + j] > out.data[3 * r + cc]) cc = j;
            if (logits.data[3 * r + j] > logits.data[3 * r + tc]) tc = j;
        }
        if (cc != tc) same = 0;
    }
    ok = worst <= 1e-5 && same;
    printf("%d images 1x12x12, 3 classes; PyTorch's logits of image 0: %.6f %.6f %.6f\n", n,
           (double)logits.data[0], (double)logits.data[1], (double)logits.data[2]);
    printf("conv/relu/maxpool x2, linear/relu/linear:  worst relative difference %.2e, classes %s\n", worst,
           same ? "all equal" : "DIFFER");
    printf("%s: the C outputs are PyTorch's to 1e-5 and the classes equal%s\n", ok ? "PASS" : "FAIL",
           ok ? "" : ": NOT");
    bp_tensor_free(&x);
    bp_tensor_free(&logits);
    bp_tensor_free(&p1);
    bp_tensor_free(&p2);
    bp_tensor_free(&h);
    bp_tensor_free(&out);
    return ok ? 0 : 1;
}
