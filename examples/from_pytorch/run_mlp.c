/* From PyTorch to C, the same numbers: runs the MLP that export.py trained in PyTorch on the inputs it
   saved, and compares the outputs with PyTorch's.

       make from_pytorch     (or: ./build/run_mlp [DIR [OUT]], DIR holding mlp.npz and mlp_io.npz)

   Two roads, both checked:
     1. the network object: bp_mlp_new with the same layers, bp_mlp_load (which transposes nn.Linear's
        out x in weight into backprop.h's in x out), bp_mlp_predict;
     2. the explicit calls on the state_dict as it is: bp_npz_load each member, and z = x W^T + b as
        bp_matmul(&z, &x, &W, BP_TRANS_B) plus the bias (no transpose made), then the activation.
   It also saves the network again with bp_mlp_save, as OUT/resaved_mlp.npz (OUT: build by default), and
   export.py --check FILE loads that file back into the nn.Sequential.
   Exits 1 unless every output agrees with PyTorch's to 1e-5 (|c - t| <= 1e-5 max(|t|, 1)) and every
   predicted class is PyTorch's.  The CNN version of this path: run_cnn.c. */

#include <math.h>
#include <stdio.h>
#include <string.h>
#define BACKPROP_IMPLEMENTATION
#include "../../backprop.h"

#define LAYERS 4
static const int widths[LAYERS + 1] = {4, 16, 12, 8, 3};
static const int acts[LAYERS] = {BP_ACT_RELU, BP_ACT_TANH, BP_ACT_SIGMOID, BP_ACT_NONE};

static int load(bp_tensor *t, const char *dir, const char *file, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (bp_npz_load(t, path, name) == 0) return 1;
    fprintf(stderr, "run_mlp: %s\n", bp_failure_reason());
    return 0;
}

/* the explicit calls: PyTorch's weight (out x in) used as it is, through BP_TRANS_B */
static int explicit_forward(const char *dir, const bp_tensor *x, bp_tensor *out)
{
    bp_tensor a = *x, z = {0, 0, NULL}, prev = {0, 0, NULL};
    int l, r, j, ok = 1;
    for (l = 0; l < LAYERS && ok; l++) {
        char name[32];
        bp_tensor W, b;
        snprintf(name, sizeof name, "%d.weight", 2 * l);
        ok = load(&W, dir, "mlp.npz", name);
        snprintf(name, sizeof name, "%d.bias", 2 * l);
        if (ok && !load(&b, dir, "mlp.npz", name)) {
            bp_tensor_free(&W);
            ok = 0;
        }
        if (!ok) break;
        z = bp_tensor_new(x->rows, W.rows);
        bp_matmul(&z, &a, &W, BP_TRANS_B); /* z = a W^T */
        for (r = 0; r < z.rows; r++)
            for (j = 0; j < z.cols; j++) z.data[r * z.cols + j] += b.data[j]; /* + b */
        if (acts[l] == BP_ACT_RELU) bp_relu_forward(&z, &z);
        if (acts[l] == BP_ACT_TANH) bp_tanh_forward(&z, &z);
        if (acts[l] == BP_ACT_SIGMOID) bp_sigmoid_forward(&z, &z);
        bp_tensor_free(&W);
        bp_tensor_free(&b);
        bp_tensor_free(&prev);
        a = prev = z;
    }
    *out = z;
    if (!ok) bp_tensor_free(&prev);
    return ok;
}

/* worst |c - t| / max(|t|, 1) and whether the largest output of every row is at the same place */
static double compare(const bp_tensor *c, const bp_tensor *t, int *same_classes)
{
    double worst = 0;
    int r, j;
    *same_classes = 1;
    for (r = 0; r < t->rows; r++) {
        int cc = 0, tc = 0;
        for (j = 0; j < t->cols; j++) {
            double d = fabs((double)c->data[r * t->cols + j] - (double)t->data[r * t->cols + j]);
            double scale = fabs((double)t->data[r * t->cols + j]) > 1 ? fabs((double)t->data[r * t->cols + j]) : 1;
            if (d / scale > worst) worst = d / scale;
            if (c->data[r * t->cols + j] > c->data[r * t->cols + cc]) cc = j;
            if (t->data[r * t->cols + j] > t->data[r * t->cols + tc]) tc = j;
        }
        if (cc != tc) *same_classes = 0;
    }
    return worst;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "examples/from_pytorch";
    char path[1024];
    bp_mlp_config cfg = bp_mlp_default_config();
    bp_tensor x, logits, out, explicit_out;
    bp_mlp *net;
    double err1, err2;
    int same1, same2, ok;

    if (!load(&x, dir, "mlp_io.npz", "x") || !load(&logits, dir, "mlp_io.npz", "logits")) return 1;
    cfg.max_batch = x.rows;
    net = bp_mlp_new(LAYERS, widths, acts, &cfg); /* the same layers as export.py's nn.Sequential */
    snprintf(path, sizeof path, "%s/mlp.npz", dir);
    if (bp_mlp_load(net, path) != 0) {
        fprintf(stderr, "run_mlp: %s\n", bp_failure_reason());
        return 1;
    }
    out = bp_mlp_predict(net, &x);
    err1 = compare(&out, &logits, &same1);
    if (!explicit_forward(dir, &x, &explicit_out)) return 1;
    err2 = compare(&explicit_out, &logits, &same2);
    printf("%d inputs, %d classes; PyTorch's logits of row 0: %.6f %.6f %.6f\n", x.rows, logits.cols,
           (double)logits.data[0], (double)logits.data[1], (double)logits.data[2]);
    printf("bp_mlp_load + bp_mlp_predict:          worst relative difference %.2e, classes %s\n", err1,
           same1 ? "all equal" : "DIFFER");
    printf("bp_npz_load + bp_matmul(BP_TRANS_B):   worst relative difference %.2e, classes %s\n", err2,
           same2 ? "all equal" : "DIFFER");

    snprintf(path, sizeof path, "%s/resaved_mlp.npz", argc > 2 ? argv[2] : "build");
    if (bp_mlp_save(net, path) != 0) {
        fprintf(stderr, "run_mlp: %s\n", bp_failure_reason());
        return 1;
    }
    ok = err1 <= 1e-5 && err2 <= 1e-5 && same1 && same2;
    printf("%s: the C outputs are PyTorch's to 1e-5 and the classes equal%s (saved again as %s)\n",
           ok ? "PASS" : "FAIL", ok ? "" : ": NOT", path);
    bp_mlp_free(net);
    bp_tensor_free(&x);
    bp_tensor_free(&logits);
    bp_tensor_free(&explicit_out);
    return ok ? 0 : 1;
}
