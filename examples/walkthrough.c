/* walkthrough.c - the textbook backpropagation example, by hand, with backprop.h.

   The network: one Linear layer, a ReLU, and the mean squared error, on a batch of 8 examples.

       x (8x4) --Linear W (4x2), b (1x2)--> z (8x2) --ReLU--> a (8x2) --MSE against y (8x2)--> loss

   One example per row.  The numbers are exactly those of this numpy listing (x, y and W are pasted below
   as C literals with 17 significant digits, so they are the same doubles), and the program prints the
   same loss and gradients:

       rng = np.random.default_rng(0)
       x = rng.normal(size=(8, 4)); y = rng.normal(size=(8, 2))
       W = rng.normal(size=(4, 2)) * 0.1; b = np.zeros(2)
       z = x @ W + b;  a = np.maximum(0, z);  loss = np.mean((a - y)**2)      # forward
       da = 2 * (a - y) / a.size                                               # backward
       dz = da * (z > 0);  dW = x.T @ dz;  db = dz.sum(0);  dx = dz @ W.T

   Then it checks every gradient against finite differences, which need no calculus at all.

   Build:  cc -std=c99 -O2 examples/walkthrough.c -o walkthrough -lm */

#define BACKPROP_DOUBLE /* bp_real is double: the numbers match numpy's float64 */
#define BACKPROP_IMPLEMENTATION
#include "../backprop.h"

#include <stdio.h>

/* The data (from tests/gen_fixtures.py).  A tensor is just {rows, cols, pointer to a row-major buffer},
   so these static arrays can be used directly.  Such tensors must never be passed to bp_tensor_free:
   their memory was not allocated by bp_tensor_new. */
static bp_real x_data[8 * 4] = {
    0.1257302210933933, -0.13210486329130189, 0.64042265044328206, 0.10490011715303971,
    -0.53566937316111096, 0.36159505490948474, 1.3040000451301372, 0.94708096312924217,
    -0.7037352358069926, -1.2654214710460525, -0.62327446253735219, 0.041325979347243601,
    -2.3250307746388343, -0.21879166393254573, -1.2459109472530652, -0.73226735470345161,
    -0.54425898285730989, -0.31630015636915454, 0.41163053637413283, 1.0425133694426776,
    -0.12853466294403426, 1.3664634705496859, -0.66519467348661354, 0.35151007009301971,
    0.90347018165180859, 0.094012297760874566, -0.7434992493538084, -0.92172537625841944,
    -0.45772582566733916, 0.22019512347004941, -1.0096181835387359, -0.20917557487171307,
};
static bp_real y_data[8 * 2] = {
    -0.15922500991447772, 0.54084558468580768,
    0.21465912250634089, 0.35537270903992141,
    -0.65382860941833942, -0.12961363369276946,
    0.7839754700613295, 1.4934311452207607,
    -1.2590655321041202, 1.5139237747390626,
    1.3458754237823045, 0.78131140070042748,
    0.26445563032930353, -0.31392281453642779,
    1.4580206835369587, 1.9602583164499647,
};
static bp_real W_data[4 * 2] = {
    0.18016348698661253, 0.131510376473437,
    0.0357380410658956, -0.12083186322821715,
    -0.0004454133120083229, 0.065647493507633589,
    -0.12883614637495544, 0.039512206018200824,
};
static bp_real b_data[1 * 2] = {0, 0};

/* Everything the loss depends on, so the gradient check can rerun the forward pass. */
typedef struct net {
    bp_tensor *x, *y, *W, *b; /* inputs, targets, parameters */
    bp_tensor *z, *a;         /* what the forward pass computes, and the backward pass needs */
} net;

/* Forward: z = xW + b,  a = relu(z),  loss = mean((a - y)^2). */
static bp_real forward(net *n)
{
    bp_linear_forward(n->x, n->W, n->b, n->z);
    bp_relu_forward(n->z, n->a);
    return bp_mse_forward(n->a, n->y);
}

static bp_real loss_callback(void *ctx) { return forward((net *)ctx); }

/* Prints "name[r] = v v ..." per row ("name = v v ..." for a single row), as tests/gen_fixtures.py does. */
static void print_tensor(const char *name, const bp_tensor *t)
{
    int r, c;
    for (r = 0; r < t->rows; r++) {
        if (t->rows == 1)
            printf("%s =", name);
        else
            printf("%s[%d] =", name, r);
        for (c = 0; c < t->cols; c++) printf(" % .10f", t->data[r * t->cols + c]);
        printf("\n");
    }
}

/* Checks grad against central differences of the loss over every element of param.  eps is 1e-5, not
   the usual 1e-6: this loss is piecewise quadratic in each number, so the central difference is exact
   but for rounding, and rounding in loss(p+eps) - loss(p-eps) costs about 1e-16/eps.  With eps = 1e-6
   the smallest gradient here, dW[3][0] = -2.5e-4, would show a relative error of 2.3e-7. */
static int check(const char *name, net *n, bp_tensor *param, const bp_tensor *grad)
{
    bp_real err = bp_gradcheck(loss_callback, n, param, grad, 1e-5);
    int ok = err < 1e-7;
    printf("gradcheck %-2s: max relative error %.3e  %s\n", name, err, ok ? "PASS" : "FAIL");
    return ok;
}

int main(void)
{
    bp_tensor x = {8, 4, x_data}, y = {8, 2, y_data}; /* wrap the static buffers: never bp_tensor_free */
    bp_tensor W = {4, 2, W_data}, b = {1, 2, b_data};
    bp_tensor z = bp_tensor_new(8, 2), a = bp_tensor_new(8, 2);    /* forward results */
    bp_tensor da = bp_tensor_new(8, 2), dz = bp_tensor_new(8, 2);  /* gradients: dL/d(thing) */
    bp_tensor dW = bp_tensor_new(4, 2), db = bp_tensor_new(1, 2), dx = bp_tensor_new(8, 4);
    net n;
    bp_real loss;
    int ok = 1;
    n.x = &x; n.y = &y; n.W = &W; n.b = &b; n.z = &z; n.a = &a;

    /* ---- forward ---- */
    loss = forward(&n); /* z = xW + b (8x2), a = max(0, z) (8x2), loss = mean over all 16 of (a - y)^2 */
    printf("loss = %.10f\n", loss);

    /* ---- backward: the chain rule, one step per layer, from the loss back to the inputs ---- */

    /* dL/da = 2/N (a - y), N = 16 elements: the derivative of the mean of squares. */
    bp_mse_backward(&a, &y, &da);

    /* dz = da (.) 1[z > 0]: ReLU passes the gradient where it was active and blocks it elsewhere. */
    bp_relu_backward(&z, &da, &dz);

    /* z[r][j] = sum_k x[r][k] W[k][j] + b[j], so one call gives all three:
       dW = x^T dz  (4x2):  dL/dW[k][j] = sum_r x[r][k] dz[r][j]
       db = sum dz  (1x2):  b was added to every row, so its gradient is the sum of dz over the batch
       dx = dz W^T  (8x4):  dL/dx[r][k] = sum_j dz[r][j] W[k][j]  (what a layer below x would receive) */
    bp_linear_backward(&x, &W, &dz, &dx, &dW, &db);

    print_tensor("dW", &dW);
    print_tensor("db", &db);
    print_tensor("dx", &dx);

    /* ---- check: nudge each number by +-1e-5, rerun the forward pass, compare the slope ---- */
    ok &= check("dW", &n, &W, &dW);
    ok &= check("db", &n, &b, &db);
    ok &= check("dx", &n, &x, &dx); /* perturbs the inputs x: dx is what a layer below would receive */
    printf("%s\n", ok ? "all gradients PASS" : "some gradient FAILED");

    bp_tensor_free(&z); bp_tensor_free(&a); bp_tensor_free(&da); bp_tensor_free(&dz);
    bp_tensor_free(&dW); bp_tensor_free(&db); bp_tensor_free(&dx);
    return ok ? 0 : 1;
}
