/* tests/coursework_mains.c - the mains of `make coursework` (tests/coursework.sh).  Not compiled as it is:
   the script writes build/coursework/NAME.c from the lines of backprop.h that README.md's recipe
   "Copying into coursework" says to copy, then appends the section "common" below and the section NAME.
   Each main runs the COPIED function (bp__NAME, static in that file) and the LIBRARY's bp_NAME (linked in
   from an object compiled from backprop.h, and declared here by hand, since the file must not include
   backprop.h) on the same inputs, and compares the results to rounding.  A section starts at a line that
   holds only the comment "== NAME ==", and runs to the next such line. */

/* == common == */
/* ---- from here on: not copied from backprop.h; the test that make coursework adds ---- */
#include <stdio.h>
#include <stdlib.h>

static unsigned cw_state = 2463534242u;

double cw_uniform(void) /* xorshift32: uniform in [-1, 1) */
{
    cw_state ^= cw_state << 13;
    cw_state ^= cw_state >> 17;
    cw_state ^= cw_state << 5;
    return (double)cw_state / 2147483648.0 - 1;
}

/* rows x cols of uniform numbers in [-scale, scale) (scale 0: zeros); never freed: the program is short */
bp_tensor cw_tensor(int rows, int cols, double scale)
{
    bp_tensor t;
    int i;
    t.rows = rows;
    t.cols = cols;
    t.data = (bp_real *)malloc(sizeof(bp_real) * (size_t)(rows * cols + 1));
    for (i = 0; i < rows * cols; i++) t.data[i] = (bp_real)(scale * cw_uniform());
    return t;
}

static double cw_worst;
static int cw_failed;

/* |mine - lib| <= tol * max(1, |lib|) */
void cw_compare_value(const char *what, double mine, double lib, double tol)
{
    double diff = mine > lib ? mine - lib : lib - mine, scale = lib > 1 ? lib : lib < -1 ? -lib : 1;
    if (diff > cw_worst) cw_worst = diff;
    if (!(diff <= tol * scale)) {
        printf("%s: copied %.9g, library %.9g\n", what, mine, lib);
        cw_failed = 1;
    }
}

void cw_compare(const char *what, const bp_tensor *mine, const bp_tensor *lib, double tol)
{
    int i;
    for (i = 0; i < lib->rows * lib->cols; i++) cw_compare_value(what, (double)mine->data[i], (double)lib->data[i], tol);
}

int cw_done(void)
{
    printf("%s: max difference %.2g\n", cw_failed ? "FAIL" : "same", cw_worst);
    return cw_failed;
}

/* == matmul_reference == */
/* the copied loops against the library's fast bp_matmul, all four forms, then accumulating */
void bp_matmul(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags);
int main(void)
{
    bp_tensor A = cw_tensor(13, 37, 1), At = cw_tensor(37, 13, 1), B = cw_tensor(37, 21, 1), Bt = cw_tensor(21, 37, 1);
    bp_tensor mine = cw_tensor(13, 21, 0), lib = cw_tensor(13, 21, 0);
    int flags;
    for (flags = 0; flags <= (BP_TRANS_A | BP_TRANS_B); flags++) {
        const bp_tensor *a = (flags & BP_TRANS_A) ? &At : &A, *b = (flags & BP_TRANS_B) ? &Bt : &B;
        bp__matmul_reference(&mine, a, b, flags);
        bp_matmul(&lib, a, b, flags);
        cw_compare("C", &mine, &lib, 1e-5);
        bp__matmul_reference(&mine, a, b, flags | BP_ACCUMULATE);
        bp_matmul(&lib, a, b, flags | BP_ACCUMULATE);
        cw_compare("C accumulated", &mine, &lib, 1e-5);
    }
    return cw_done();
}

/* == linear == */
/* forward and backward, the copied ones on the reference matmul, the library's on its fast one */
void bp_linear_forward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *b, bp_tensor *z);
void bp_linear_backward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *dz, bp_tensor *dx, bp_tensor *dW,
                        bp_tensor *db);
int main(void)
{
    bp_tensor x = cw_tensor(9, 17, 1), W = cw_tensor(17, 11, 1), b = cw_tensor(1, 11, 1), dz = cw_tensor(9, 11, 1);
    bp_tensor z = cw_tensor(9, 11, 0), dx = cw_tensor(9, 17, 0), dW = cw_tensor(17, 11, 0), db = cw_tensor(1, 11, 0);
    bp_tensor z2 = cw_tensor(9, 11, 0), dx2 = cw_tensor(9, 17, 0), dW2 = cw_tensor(17, 11, 0), db2 = cw_tensor(1, 11, 0);
    bp__linear_forward(&x, &W, &b, &z);
    bp_linear_forward(&x, &W, &b, &z2);
    cw_compare("z", &z, &z2, 1e-5);
    bp__linear_backward(&x, &W, &dz, &dx, &dW, &db);
    bp_linear_backward(&x, &W, &dz, &dx2, &dW2, &db2);
    cw_compare("dx", &dx, &dx2, 1e-5);
    cw_compare("dW", &dW, &dW2, 1e-5);
    cw_compare("db", &db, &db2, 1e-5);
    return cw_done();
}

/* == relu_forward == */
void bp_relu_forward(const bp_tensor *z, bp_tensor *a);
int main(void)
{
    bp_tensor z = cw_tensor(7, 5, 2), mine = cw_tensor(7, 5, 0), lib = cw_tensor(7, 5, 0);
    bp__relu_forward(&z, &mine);
    bp_relu_forward(&z, &lib);
    cw_compare("a", &mine, &lib, 0);
    return cw_done();
}

/* == relu_backward == */
void bp_relu_backward(const bp_tensor *z, const bp_tensor *da, bp_tensor *dz);
int main(void)
{
    bp_tensor z = cw_tensor(7, 5, 2), da = cw_tensor(7, 5, 1), mine = cw_tensor(7, 5, 0), lib = cw_tensor(7, 5, 0);
    bp__relu_backward(&z, &da, &mine);
    bp_relu_backward(&z, &da, &lib);
    cw_compare("dz", &mine, &lib, 0);
    return cw_done();
}

/* == sigmoid_forward == */
void bp_sigmoid_forward(const bp_tensor *z, bp_tensor *a);
int main(void)
{
    bp_tensor z = cw_tensor(7, 5, 30), mine = cw_tensor(7, 5, 0), lib = cw_tensor(7, 5, 0);
    bp__sigmoid_forward(&z, &mine);
    bp_sigmoid_forward(&z, &lib);
    cw_compare("a", &mine, &lib, 0);
    return cw_done();
}

/* == sigmoid_backward == */
void bp_sigmoid_backward(const bp_tensor *a, const bp_tensor *da, bp_tensor *dz);
int main(void)
{
    bp_tensor a = cw_tensor(7, 5, 1), da = cw_tensor(7, 5, 1), mine = cw_tensor(7, 5, 0), lib = cw_tensor(7, 5, 0);
    bp__sigmoid_backward(&a, &da, &mine);
    bp_sigmoid_backward(&a, &da, &lib);
    cw_compare("dz", &mine, &lib, 0);
    return cw_done();
}

/* == tanh_forward == */
void bp_tanh_forward(const bp_tensor *z, bp_tensor *a);
int main(void)
{
    bp_tensor z = cw_tensor(7, 5, 4), mine = cw_tensor(7, 5, 0), lib = cw_tensor(7, 5, 0);
    bp__tanh_forward(&z, &mine);
    bp_tanh_forward(&z, &lib);
    cw_compare("a", &mine, &lib, 0);
    return cw_done();
}

/* == tanh_backward == */
void bp_tanh_backward(const bp_tensor *a, const bp_tensor *da, bp_tensor *dz);
int main(void)
{
    bp_tensor a = cw_tensor(7, 5, 1), da = cw_tensor(7, 5, 1), mine = cw_tensor(7, 5, 0), lib = cw_tensor(7, 5, 0);
    bp__tanh_backward(&a, &da, &mine);
    bp_tanh_backward(&a, &da, &lib);
    cw_compare("dz", &mine, &lib, 0);
    return cw_done();
}

/* == mse_forward == */
bp_real bp_mse_forward(const bp_tensor *yhat, const bp_tensor *y);
int main(void)
{
    bp_tensor yhat = cw_tensor(8, 3, 1), y = cw_tensor(8, 3, 1);
    cw_compare_value("loss", (double)bp__mse_forward(&yhat, &y), (double)bp_mse_forward(&yhat, &y), 0);
    return cw_done();
}

/* == mse_backward == */
void bp_mse_backward(const bp_tensor *yhat, const bp_tensor *y, bp_tensor *dyhat);
int main(void)
{
    bp_tensor yhat = cw_tensor(8, 3, 1), y = cw_tensor(8, 3, 1), mine = cw_tensor(8, 3, 0), lib = cw_tensor(8, 3, 0);
    bp__mse_backward(&yhat, &y, &mine);
    bp_mse_backward(&yhat, &y, &lib);
    cw_compare("dyhat", &mine, &lib, 0);
    return cw_done();
}

/* == softmax_xent_forward == */
bp_real bp_softmax_xent_forward(const bp_tensor *logits, const int *labels, bp_tensor *probs);
int main(void)
{
    int labels[6] = {0, 3, 9, 2, 2, 7};
    bp_tensor logits = cw_tensor(6, 10, 5), mine = cw_tensor(6, 10, 0), lib = cw_tensor(6, 10, 0);
    double loss_mine = (double)bp__softmax_xent_forward(&logits, labels, &mine);
    cw_compare_value("loss", loss_mine, (double)bp_softmax_xent_forward(&logits, labels, &lib), 0);
    cw_compare("probs", &mine, &lib, 0);
    return cw_done();
}

/* == softmax_xent_backward == */
void bp_softmax_xent_backward(const bp_tensor *probs, const int *labels, bp_tensor *dlogits);
int main(void)
{
    int labels[6] = {0, 3, 9, 2, 2, 7};
    bp_tensor probs = cw_tensor(6, 10, 1), mine = cw_tensor(6, 10, 0), lib = cw_tensor(6, 10, 0);
    bp__softmax_xent_backward(&probs, labels, &mine);
    bp_softmax_xent_backward(&probs, labels, &lib);
    cw_compare("dlogits", &mine, &lib, 0);
    return cw_done();
}

/* == sgd_step == */
void bp_sgd_step(bp_tensor *w, const bp_tensor *dw, bp_real lr);
int main(void)
{
    bp_tensor w = cw_tensor(4, 6, 1), w2 = cw_tensor(4, 6, 0), dw = cw_tensor(4, 6, 1);
    int i;
    for (i = 0; i < 24; i++) w2.data[i] = w.data[i];
    bp__sgd_step(&w, &dw, (bp_real)0.1);
    bp_sgd_step(&w2, &dw, (bp_real)0.1);
    cw_compare("w", &w, &w2, 0);
    return cw_done();
}

/* == momentum_step == */
void bp_momentum_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *vel, bp_real lr, bp_real mu);
int main(void)
{
    bp_tensor w = cw_tensor(4, 6, 0), w2 = cw_tensor(4, 6, 0), vel = cw_tensor(4, 6, 0), vel2 = cw_tensor(4, 6, 0);
    int step;
    for (step = 0; step < 5; step++) {
        bp_tensor dw = cw_tensor(4, 6, 1);
        bp__momentum_step(&w, &dw, &vel, (bp_real)0.1, (bp_real)0.9);
        bp_momentum_step(&w2, &dw, &vel2, (bp_real)0.1, (bp_real)0.9);
    }
    cw_compare("w", &w, &w2, 0);
    cw_compare("vel", &vel, &vel2, 0);
    return cw_done();
}

/* == adam_step == */
void bp_adam_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *m, bp_tensor *v, int t, bp_real lr, bp_real beta1,
                  bp_real beta2, bp_real eps);
int main(void)
{
    bp_tensor w = cw_tensor(4, 6, 0), m = cw_tensor(4, 6, 0), v = cw_tensor(4, 6, 0);
    bp_tensor w2 = cw_tensor(4, 6, 0), m2 = cw_tensor(4, 6, 0), v2 = cw_tensor(4, 6, 0);
    int t;
    for (t = 1; t <= 5; t++) {
        bp_tensor dw = cw_tensor(4, 6, 1);
        bp__adam_step(&w, &dw, &m, &v, t, (bp_real)1e-3, (bp_real)0.9, (bp_real)0.999, (bp_real)1e-8);
        bp_adam_step(&w2, &dw, &m2, &v2, t, (bp_real)1e-3, (bp_real)0.9, (bp_real)0.999, (bp_real)1e-8);
    }
    cw_compare("w", &w, &w2, 0);
    cw_compare("m", &m, &m2, 0);
    cw_compare("v", &v, &v2, 0);
    return cw_done();
}

/* == clip_grad_norm == */
bp_real bp_clip_grad_norm(bp_tensor *const *grads, int count, bp_real max_norm);
int main(void)
{
    bp_tensor a = cw_tensor(3, 4, 2), b = cw_tensor(1, 5, 2), a2 = cw_tensor(3, 4, 0), b2 = cw_tensor(1, 5, 0);
    bp_tensor *mine[2], *lib[2];
    int i;
    for (i = 0; i < 12; i++) a2.data[i] = a.data[i];
    for (i = 0; i < 5; i++) b2.data[i] = b.data[i];
    mine[0] = &a;
    mine[1] = &b;
    lib[0] = &a2;
    lib[1] = &b2;
    cw_compare_value("norm", (double)bp__clip_grad_norm(mine, 2, 1), (double)bp_clip_grad_norm(lib, 2, 1), 0);
    cw_compare("grads[0]", &a, &a2, 0);
    cw_compare("grads[1]", &b, &b2, 0);
    return cw_done();
}

/* == conv2d == */
/* forward and backward, the copied ones on the reference matmul, the library's on its fast one: a stride
   and pad that leave pixels over, several channels and filters */
void bp_conv2d_forward(const bp_window *g, const bp_tensor *x, const bp_tensor *W, const bp_tensor *b, bp_tensor *y,
                       bp_tensor *col);
void bp_conv2d_backward(const bp_window *g, const bp_tensor *x, const bp_tensor *W, const bp_tensor *dy, bp_tensor *dx,
                        bp_tensor *dW, bp_tensor *db, bp_tensor *col);
int main(void)
{
    const bp_window g = {3, 9, 7, 3, 2, 1}; /* out 5x4 */
    bp_tensor x = cw_tensor(2, 3 * 9 * 7, 1), W = cw_tensor(4, 27, 1), b = cw_tensor(1, 4, 1), dy = cw_tensor(2, 80, 1);
    bp_tensor y = cw_tensor(2, 80, 0), dx = cw_tensor(2, 189, 0), dW = cw_tensor(4, 27, 0), db = cw_tensor(1, 4, 0);
    bp_tensor y2 = cw_tensor(2, 80, 0), dx2 = cw_tensor(2, 189, 0), dW2 = cw_tensor(4, 27, 0), db2 = cw_tensor(1, 4, 0);
    bp_tensor col = cw_tensor(27, 20, 0);
    bp__conv2d_forward(&g, &x, &W, &b, &y, &col);
    bp_conv2d_forward(&g, &x, &W, &b, &y2, &col);
    cw_compare("y", &y, &y2, 1e-5);
    bp__conv2d_backward(&g, &x, &W, &dy, &dx, &dW, &db, &col);
    bp_conv2d_backward(&g, &x, &W, &dy, &dx2, &dW2, &db2, &col);
    cw_compare("dx", &dx, &dx2, 1e-5);
    cw_compare("dW", &dW, &dW2, 1e-5);
    cw_compare("db", &db, &db2, 1e-5);
    return cw_done();
}

/* == maxpool2d_forward == */
void bp_maxpool2d_forward(const bp_window *g, const bp_tensor *x, bp_tensor *y, int *argmax);
int main(void)
{
    const bp_window g = {2, 7, 6, 3, 2, 1}; /* out 4x3 */
    bp_tensor x = cw_tensor(3, 2 * 7 * 6, 1), y = cw_tensor(3, 24, 0), y2 = cw_tensor(3, 24, 0);
    int argmax[72], argmax2[72], i;
    bp__maxpool2d_forward(&g, &x, &y, argmax);
    bp_maxpool2d_forward(&g, &x, &y2, argmax2);
    cw_compare("y", &y, &y2, 0);
    for (i = 0; i < 72; i++) cw_compare_value("argmax", argmax[i], argmax2[i], 0);
    return cw_done();
}

/* == maxpool2d_backward == */
void bp_maxpool2d_backward(const bp_window *g, const int *argmax, const bp_tensor *dy, bp_tensor *dx);
int main(void)
{
    const bp_window g = {2, 7, 6, 3, 2, 1}; /* out 4x3 */
    bp_tensor dy = cw_tensor(3, 24, 1), dx = cw_tensor(3, 84, 0), dx2 = cw_tensor(3, 84, 0);
    int argmax[72], i;
    for (i = 0; i < 72; i++) argmax[i] = (i * 17) % 42; /* any pixels, some chosen twice */
    bp__maxpool2d_backward(&g, argmax, &dy, &dx);
    bp_maxpool2d_backward(&g, argmax, &dy, &dx2);
    cw_compare("dx", &dx, &dx2, 0);
    return cw_done();
}

/* == gradcheck == */
/* both checkers on the same loss, L(p) = sum_i c_i p_i^3, whose gradient 3 c_i p_i^2 is given once right
   and once with one element wrong: the copied and the library's checker must report the same errors */
bp_real bp_gradcheck(bp_real (*loss)(void *ctx), void *ctx, bp_tensor *param, const bp_tensor *grad, bp_real eps);
static bp_real cube_loss(void *ctx)
{
    const bp_tensor *p = (const bp_tensor *)ctx;
    double sum = 0;
    int i;
    for (i = 0; i < p->rows * p->cols; i++) sum += (i + 1) * (double)p->data[i] * (double)p->data[i] * (double)p->data[i];
    return (bp_real)sum;
}
int main(void)
{
    bp_tensor p = cw_tensor(3, 4, 1), grad = cw_tensor(3, 4, 0);
    int i;
    for (i = 0; i < 12; i++) grad.data[i] = (bp_real)(3 * (i + 1) * (double)p.data[i] * (double)p.data[i]);
    cw_compare_value("right gradient", (double)bp__gradcheck(cube_loss, &p, &p, &grad, (bp_real)1e-2),
                     (double)bp_gradcheck(cube_loss, &p, &p, &grad, (bp_real)1e-2), 0);
    grad.data[5] += 1;
    cw_compare_value("wrong gradient", (double)bp__gradcheck(cube_loss, &p, &p, &grad, (bp_real)1e-2),
                     (double)bp_gradcheck(cube_loss, &p, &p, &grad, (bp_real)1e-2), 0);
    return cw_done();
}

/* == layernorm_forward == */
/* rows with a large mean (x + 1000) included: the two-pass moments keep their digits */
void bp_layernorm_forward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *beta, bp_real eps,
                          bp_tensor *y, bp_tensor *mean, bp_tensor *rstd);
int main(void)
{
    bp_tensor x = cw_tensor(6, 9, 2), gamma = cw_tensor(1, 9, 1), beta = cw_tensor(1, 9, 1);
    bp_tensor y = cw_tensor(6, 9, 0), mean = cw_tensor(6, 1, 0), rstd = cw_tensor(6, 1, 0);
    bp_tensor y2 = cw_tensor(6, 9, 0), mean2 = cw_tensor(6, 1, 0), rstd2 = cw_tensor(6, 1, 0);
    int j;
    for (j = 0; j < 9; j++) x.data[9 + j] += 1000;
    bp__layernorm_forward(&x, &gamma, &beta, (bp_real)1e-5, &y, &mean, &rstd);
    bp_layernorm_forward(&x, &gamma, &beta, (bp_real)1e-5, &y2, &mean2, &rstd2);
    cw_compare("y", &y, &y2, 0);
    cw_compare("mean", &mean, &mean2, 0);
    cw_compare("rstd", &rstd, &rstd2, 0);
    return cw_done();
}

/* == layernorm_backward == */
void bp_layernorm_backward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *mean, const bp_tensor *rstd,
                           const bp_tensor *dy, bp_tensor *dx, bp_tensor *dgamma, bp_tensor *dbeta);
int main(void)
{
    bp_tensor x = cw_tensor(6, 9, 2), gamma = cw_tensor(1, 9, 1), mean = cw_tensor(6, 1, 1), rstd = cw_tensor(6, 1, 1);
    bp_tensor dy = cw_tensor(6, 9, 1), dx = cw_tensor(6, 9, 0), dgamma = cw_tensor(1, 9, 0), dbeta = cw_tensor(1, 9, 0);
    bp_tensor dx2 = cw_tensor(6, 9, 0), dgamma2 = cw_tensor(1, 9, 0), dbeta2 = cw_tensor(1, 9, 0);
    bp__layernorm_backward(&x, &gamma, &mean, &rstd, &dy, &dx, &dgamma, &dbeta);
    bp_layernorm_backward(&x, &gamma, &mean, &rstd, &dy, &dx2, &dgamma2, &dbeta2);
    cw_compare("dx", &dx, &dx2, 0);
    cw_compare("dgamma", &dgamma, &dgamma2, 0);
    cw_compare("dbeta", &dbeta, &dbeta2, 0);
    return cw_done();
}

/* == batchnorm_forward == */
/* a column with a large mean (x + 1000) included */
void bp_batchnorm_forward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *beta, bp_real eps,
                          bp_tensor *y, bp_tensor *mean, bp_tensor *rstd);
int main(void)
{
    bp_tensor x = cw_tensor(8, 5, 2), gamma = cw_tensor(1, 5, 1), beta = cw_tensor(1, 5, 1);
    bp_tensor y = cw_tensor(8, 5, 0), mean = cw_tensor(1, 5, 0), rstd = cw_tensor(1, 5, 0);
    bp_tensor y2 = cw_tensor(8, 5, 0), mean2 = cw_tensor(1, 5, 0), rstd2 = cw_tensor(1, 5, 0);
    int r;
    for (r = 0; r < 8; r++) x.data[r * 5 + 2] += 1000;
    bp__batchnorm_forward(&x, &gamma, &beta, (bp_real)1e-5, &y, &mean, &rstd);
    bp_batchnorm_forward(&x, &gamma, &beta, (bp_real)1e-5, &y2, &mean2, &rstd2);
    cw_compare("y", &y, &y2, 0);
    cw_compare("mean", &mean, &mean2, 0);
    cw_compare("rstd", &rstd, &rstd2, 0);
    return cw_done();
}

/* == batchnorm_backward == */
void bp_batchnorm_backward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *mean, const bp_tensor *rstd,
                           const bp_tensor *dy, bp_tensor *dx, bp_tensor *dgamma, bp_tensor *dbeta);
int main(void)
{
    bp_tensor x = cw_tensor(8, 5, 2), gamma = cw_tensor(1, 5, 1), mean = cw_tensor(1, 5, 1), rstd = cw_tensor(1, 5, 1);
    bp_tensor dy = cw_tensor(8, 5, 1), dx = cw_tensor(8, 5, 0), dgamma = cw_tensor(1, 5, 0), dbeta = cw_tensor(1, 5, 0);
    bp_tensor dx2 = cw_tensor(8, 5, 0), dgamma2 = cw_tensor(1, 5, 0), dbeta2 = cw_tensor(1, 5, 0);
    bp__batchnorm_backward(&x, &gamma, &mean, &rstd, &dy, &dx, &dgamma, &dbeta);
    bp_batchnorm_backward(&x, &gamma, &mean, &rstd, &dy, &dx2, &dgamma2, &dbeta2);
    cw_compare("dx", &dx, &dx2, 0);
    cw_compare("dgamma", &dgamma, &dgamma2, 0);
    cw_compare("dbeta", &dbeta, &dbeta2, 0);
    return cw_done();
}

/* == batchnorm_update_running == */
void bp_batchnorm_update_running(bp_tensor *running_mean, bp_tensor *running_var, const bp_tensor *x, bp_real momentum);
int main(void)
{
    bp_tensor rm = cw_tensor(1, 5, 0), rv = cw_tensor(1, 5, 0), rm2 = cw_tensor(1, 5, 0), rv2 = cw_tensor(1, 5, 0);
    int step, j;
    for (j = 0; j < 5; j++) rv.data[j] = rv2.data[j] = 1; /* torch's start: mean 0, variance 1 */
    for (step = 0; step < 3; step++) {
        bp_tensor x = cw_tensor(8, 5, 2);
        bp__batchnorm_update_running(&rm, &rv, &x, (bp_real)0.1);
        bp_batchnorm_update_running(&rm2, &rv2, &x, (bp_real)0.1);
    }
    cw_compare("running_mean", &rm, &rm2, 0);
    cw_compare("running_var", &rv, &rv2, 0);
    return cw_done();
}

/* == batchnorm_inference == */
void bp_batchnorm_inference(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *beta,
                            const bp_tensor *running_mean, const bp_tensor *running_var, bp_real eps, bp_tensor *y);
int main(void)
{
    bp_tensor x = cw_tensor(8, 5, 2), gamma = cw_tensor(1, 5, 1), beta = cw_tensor(1, 5, 1), rm = cw_tensor(1, 5, 1);
    bp_tensor rv = cw_tensor(1, 5, 1), y = cw_tensor(8, 5, 0), y2 = cw_tensor(8, 5, 0);
    int j;
    for (j = 0; j < 5; j++) rv.data[j] = rv.data[j] * rv.data[j]; /* a variance: >= 0 */
    bp__batchnorm_inference(&x, &gamma, &beta, &rm, &rv, (bp_real)1e-5, &y);
    bp_batchnorm_inference(&x, &gamma, &beta, &rm, &rv, (bp_real)1e-5, &y2);
    cw_compare("y", &y, &y2, 0);
    return cw_done();
}

/* == dropout_forward == */
/* the same seed for both: the same mask */
void bp_dropout_forward(const bp_tensor *x, bp_real p, bp_rng *rng, bp_tensor *mask, bp_tensor *y);
void bp_rng_seed(bp_rng *rng, uint64_t seed);
int main(void)
{
    bp_tensor x = cw_tensor(7, 9, 1), mask = cw_tensor(7, 9, 0), y = cw_tensor(7, 9, 0);
    bp_tensor mask2 = cw_tensor(7, 9, 0), y2 = cw_tensor(7, 9, 0);
    bp_rng rng, rng2;
    bp_rng_seed(&rng, 5);
    bp_rng_seed(&rng2, 5);
    bp__dropout_forward(&x, (bp_real)0.3, &rng, &mask, &y);
    bp_dropout_forward(&x, (bp_real)0.3, &rng2, &mask2, &y2);
    cw_compare("mask", &mask, &mask2, 0);
    cw_compare("y", &y, &y2, 0);
    return cw_done();
}

/* == dropout_backward == */
void bp_dropout_backward(const bp_tensor *mask, const bp_tensor *dy, bp_tensor *dx);
int main(void)
{
    bp_tensor mask = cw_tensor(7, 9, 2), dy = cw_tensor(7, 9, 1), dx = cw_tensor(7, 9, 0), dx2 = cw_tensor(7, 9, 0);
    bp__dropout_backward(&mask, &dy, &dx);
    bp_dropout_backward(&mask, &dy, &dx2);
    cw_compare("dx", &dx, &dx2, 0);
    return cw_done();
}

/* == rmsprop_step == */
void bp_rmsprop_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *v, bp_real lr, bp_real alpha, bp_real eps);
int main(void)
{
    bp_tensor w = cw_tensor(4, 6, 0), v = cw_tensor(4, 6, 0), w2 = cw_tensor(4, 6, 0), v2 = cw_tensor(4, 6, 0);
    int step;
    for (step = 0; step < 5; step++) {
        bp_tensor dw = cw_tensor(4, 6, 1);
        bp__rmsprop_step(&w, &dw, &v, (bp_real)1e-2, (bp_real)0.99, (bp_real)1e-8);
        bp_rmsprop_step(&w2, &dw, &v2, (bp_real)1e-2, (bp_real)0.99, (bp_real)1e-8);
    }
    cw_compare("w", &w, &w2, 0);
    cw_compare("v", &v, &v2, 0);
    return cw_done();
}
