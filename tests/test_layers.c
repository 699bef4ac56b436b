/* Tests of the layers and losses, forward and backward: Linear, ReLU, sigmoid, tanh, MSE, and softmax +
   cross-entropy.  Three kinds of test, in this order:
     - by hand: each forward and backward on a case small enough to work out on paper (the working is in
       the comments), its in-place forms (the same bits), and each argument check's message;
     - gradient checks: each backward against central finite differences (bp_gradcheck), in double to 1e-7
       (float: 1e-2), alone and composed into Linear -> ReLU -> MSE and a two-layer classifier;
     - walkthrough_vs_numpy: the walkthrough's forward and backward against numpy's textbook code
       (tests/fixtures/walkthrough.txt, written by tests/gen_fixtures.py).
   Where each function is tested (here, unless test_sweep.c is named):
     bp_linear_forward, bp_linear_backward   linear_by_hand, gradcheck_linear, gradcheck_itself,
                                             gradcheck_classifier, walkthrough_vs_numpy
     bp_relu_forward, bp_relu_backward       relu_by_hand, gradcheck_relu_mse, gradcheck_linear,
                                             walkthrough_vs_numpy
     bp_sigmoid_*, bp_tanh_*                 sigmoid_by_hand, tanh_by_hand, gradcheck_sigmoid_tanh,
                                             gradcheck_classifier
     bp_mse_forward, bp_mse_backward         mse_by_hand, gradcheck_relu_mse, gradcheck_linear,
                                             walkthrough_vs_numpy
     bp_softmax_xent_*                       softmax_xent_by_hand, softmax_xent_extremes,
                                             gradcheck_softmax_xent, gradcheck_classifier
     bp_gradcheck                            gradcheck_itself (and every gradcheck_* relies on it)
     all of them                             argument_sweep (every argument check) and no_allocation_*,
                                             in test_sweep.c
   Part of the suite: tests/test_backprop.c includes this file (see there how to run one test). */

#include "harness.h"

/* ---- Linear ------------------------------------------------------------------------------------- */

static void test_linear_by_hand(void)
{
    /* x = [1 2; 3 4; 5 6] (3x2), W = [1 0 -1; 2 1 0] (2x3), b = [0.5 -1 2] */
    const double x_[] = {1, 2, 3, 4, 5, 6}, W_[] = {1, 0, -1, 2, 1, 0}, b_[] = {0.5, -1, 2};
    /* z = xW + b: row1 [1+4, 2, -1] + b = [5.5 1 1]; row2 [3+8, 4, -3] + b = [11.5 3 -1]; row3 [17.5 5 -3] */
    const double z_[] = {5.5, 1, 1, 11.5, 3, -1, 17.5, 5, -3};
    const double zb0[] = {5, 2, -1, 11, 4, -3, 17, 6, -5};
    /* dz = [1 0 2; 0 1 0; -1 1 1] */
    const double dz_[] = {1, 0, 2, 0, 1, 0, -1, 1, 1};
    /* dW = x^T dz = [1*1+3*0+5*-1, 0+3+5, 2+0+5; 2+0-6, 0+4+6, 4+0+6] = [-4 8 7; -4 10 10] */
    const double dW_[] = {-4, 8, 7, -4, 10, 10};
    const double db_[] = {0, 2, 3}; /* column sums of dz */
    /* dx = dz W^T: row1 [1*1+0*0+2*-1, 1*2+0+0] = [-1 2]; row2 [0, 1]; row3 [-1+0-1, -2+1+0] = [-2 -1] */
    const double dx_[] = {-1, 2, 0, 1, -2, -1};
    bp_tensor x = make(3, 2, x_), W = make(2, 3, W_), b = make(1, 3, b_), z = bp_tensor_new(3, 3);
    bp_tensor dz = make(3, 3, dz_), dx = bp_tensor_new(3, 2), dW = bp_tensor_new(2, 3), db = bp_tensor_new(1, 3);
    long mallocs = test_mallocs;
    bp_linear_forward(&x, &W, &b, &z);
    CHECK(close_to(&z, z_, 0));
    bp_linear_forward(&x, &W, NULL, &z);
    CHECK(close_to(&z, zb0, 0));
    fill(&dW, 99); /* results overwrite, never accumulate */
    fill(&db, 99);
    fill(&dx, 99);
    bp_linear_backward(&x, &W, &dz, &dx, &dW, &db);
    CHECK(close_to(&dW, dW_, 0));
    CHECK(close_to(&db, db_, 0));
    CHECK(close_to(&dx, dx_, 0));
    fill(&dW, 99);
    bp_linear_backward(&x, &W, &dz, NULL, &dW, NULL); /* dx and db skipped */
    CHECK(close_to(&dW, dW_, 0));
    CHECK(test_mallocs == mallocs);
    EXPECT_NO_ERROR();

    /* argument checks: one message naming the shapes, no output written, no input changed */
    fill(&z, 7);
    fill(&dx, 7);
    fill(&dW, 7);
    fill(&db, 7);
    {
        bp_tensor x4 = bp_tensor_new(8, 4), W32 = bp_tensor_new(3, 2), z82 = bp_tensor_new(8, 2);
        bp_linear_forward(&x4, &W32, NULL, &z82);
        EXPECT_ERROR("bp_linear_forward", "x is 8x4 but W is 3x2 (x.cols must equal W.rows)");
        bp_tensor_free(&x4);
        bp_tensor_free(&W32);
        bp_tensor_free(&z82);
    }
    bp_linear_forward(&x, &W, &dz, &z);
    EXPECT_ERROR("bp_linear_forward", "b is 3x3", "1x3");
    bp_linear_forward(&x, &W, &b, &dx);
    EXPECT_ERROR("bp_linear_forward", "z is 3x2", "3x3");
    bp_linear_forward(NULL, &W, &b, &z);
    EXPECT_ERROR("bp_linear_forward", "x is NULL");
    bp_linear_forward(&x, NULL, &b, &z);
    EXPECT_ERROR("bp_linear_forward", "W is NULL");
    bp_linear_forward(&x, &W, &b, NULL);
    EXPECT_ERROR("bp_linear_forward", "z is NULL");
    {
        bp_tensor zx = {2, 1, x.data + 3};/* z on top of x: z = x.W would read what it wrote */
        bp_tensor x21 = {2, 2, x.data + 2}, W22 = {2, 1, W.data};
        bp_linear_forward(&x21, &W22, NULL, &zx);
        EXPECT_ERROR("bp_linear_forward", "z (2x1) shares memory with x (2x2)");
    }
    CHECK(all_equal(&z, 7));

    bp_linear_backward(&x, &W, &dz, &dx, &z, &db);
    EXPECT_ERROR("bp_linear_backward", "W is 2x3 but dW is 3x3");
    bp_linear_backward(&x, &W, &dx, &dx, &dW, &db);
    EXPECT_ERROR("bp_linear_backward", "dz is 3x2", "3x3");
    bp_linear_backward(&x, &W, &dz, &z, &dW, &db);
    EXPECT_ERROR("bp_linear_backward", "x is 3x2 but dx is 3x3");
    bp_linear_backward(&x, &W, &dz, &dx, &dW, &dW);
    EXPECT_ERROR("bp_linear_backward", "db is 2x3", "1x3");
    bp_linear_backward(&x, &dz, &dz, &dx, &dW, &db);
    EXPECT_ERROR("bp_linear_backward", "x is 3x2 but W is 3x3");
    bp_linear_backward(&x, &W, &dz, &dx, NULL, &db);
    EXPECT_ERROR("bp_linear_backward", "dW is NULL");
    bp_linear_backward(&x, &W, &dz, &dx, &W, &db);
    EXPECT_ERROR("bp_linear_backward", "dW (2x3) shares memory with W (2x3)");
    {
        bp_tensor db_in_dz = {1, 3, dz.data + 3};
        bp_linear_backward(&x, &W, &dz, &dx, &dW, &db_in_dz);
        EXPECT_ERROR("bp_linear_backward", "db (1x3) shares memory with dz (3x3)");
    }
    {
        bp_tensor db_in_W = {1, 3, W.data}, db_in_x = {1, 3, x.data + 1};
        bp_linear_backward(&x, &W, &dz, &dx, &dW, &db_in_W); /* db written before dx = dz.W^T reads W */
        EXPECT_ERROR("bp_linear_backward", "db (1x3) shares memory with W (2x3)");
        bp_linear_backward(&x, &W, &dz, &dx, &dW, &db_in_x);
        EXPECT_ERROR("bp_linear_backward", "db (1x3) shares memory with x (3x2)");
        bp_linear_backward(&x, &W, &dz, &dW, &dW, &db);
        EXPECT_ERROR("bp_linear_backward", "x is 3x2 but dx is 2x3");
        bp_linear_backward(&x, &W, &dz, &x, &dW, &db);
        EXPECT_ERROR("bp_linear_backward", "dx (3x2) shares memory with x (3x2)");
    }
    CHECK(all_equal(&dx, 7) && all_equal(&dW, 7) && all_equal(&db, 7));
    CHECK(close_to(&dz, dz_, 0) && close_to(&x, x_, 0) && close_to(&W, W_, 0));

    bp_tensor_free(&x);
    bp_tensor_free(&W);
    bp_tensor_free(&b);
    bp_tensor_free(&z);
    bp_tensor_free(&dz);
    bp_tensor_free(&dx);
    bp_tensor_free(&dW);
    bp_tensor_free(&db);
}

/* bp_linear_forward adds b as the matmul writes z (bp__linear_forward_fused); bp__linear_forward, the
   textbook block, computes x.W and then adds b.  The same bits on every road of bp__gemm: a tiny product,
   batch 1, a narrow z (10 columns), a z computed transposed, the blocked kernel (K in several slices), and
   edges of every tile and block. */
static void test_linear_fused_bits(void)
{
    static const int shapes[][3] = {{2, 3, 4}, {1, 300, 50}, {3, 1, 700}, {64, 10, 256}, {70, 16, 600}, {19, 5, 33},
                                    {300, 20, 30}, {64, 256, 784}, {67, 45, 513}, {BP__MR + 1, BP__NR + 3, 9}};
    bp_rng rng;
    int s;
    bp_rng_seed(&rng, 12);
    for (s = 0; s < (int)(sizeof shapes / sizeof shapes[0]); s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        bp_tensor x = bp_tensor_new(M, K), W = bp_tensor_new(K, N), b = bp_tensor_new(1, N);
        bp_tensor z = bp_tensor_new(M, N), ref = bp_tensor_new(M, N);
        randomize(&x, &rng);
        randomize(&W, &rng);
        randomize(&b, &rng);
        bp_linear_forward(&x, &W, &b, &z);
        bp__linear_forward(&x, &W, &b, &ref);
        CHECK(same_bits(&z, &ref));
        bp_tensor_free(&x), bp_tensor_free(&W), bp_tensor_free(&b), bp_tensor_free(&z), bp_tensor_free(&ref);
    }
}

/* ---- ReLU --------------------------------------------------------------------------------------- */

static void test_relu_by_hand(void)
{
    const double z_[] = {-2, -0.5, 0, 0.5, 3, -1e-30};
    const double a_[] = {0, 0, 0, 0.5, 3, 0};
    const double da_[] = {10, 20, 30, 40, 50, 60};
    const double dz_[] = {0, 0, 0, 40, 50, 0}; /* the derivative at exactly 0 is taken as 0 */
    bp_tensor z = make(2, 3, z_), a = bp_tensor_new(2, 3), da = make(2, 3, da_), dz = bp_tensor_new(2, 3);
    bp_tensor wrong = bp_tensor_new(3, 2);
    bp_relu_forward(&z, &a);
    CHECK(close_to(&a, a_, 0));
    bp_relu_backward(&z, &da, &dz);
    CHECK(close_to(&dz, dz_, 0));
    bp_relu_backward(&z, &da, &da); /* in place on da */
    CHECK(close_to(&da, dz_, 0));
    bp_relu_forward(&z, &z); /* in place */
    CHECK(close_to(&z, a_, 0));
    EXPECT_NO_ERROR();
    {
        bp_tensor n = bp_tensor_new(1, 1);
        n.data[0] = (bp_real)NAN;
        bp_relu_forward(&n, &n);
        CHECK(n.data[0] != n.data[0]); /* a NaN is not hidden */
        bp_tensor_free(&n);
    }

    fill(&a, 5);
    fill(&dz, 5);
    bp_relu_forward(&z, &wrong);
    EXPECT_ERROR("bp_relu_forward", "z is 2x3 but a is 3x2");
    bp_relu_forward(NULL, &a);
    EXPECT_ERROR("bp_relu_forward", "z is NULL");
    bp_relu_backward(&z, &wrong, &dz);
    EXPECT_ERROR("bp_relu_backward", "z is 2x3 but da is 3x2");
    bp_relu_backward(&z, &da, &wrong);
    EXPECT_ERROR("bp_relu_backward", "z is 2x3 but dz is 3x2");
    bp_relu_backward(&z, &da, NULL);
    EXPECT_ERROR("bp_relu_backward", "dz is NULL");
    {
        bp_tensor big = bp_tensor_new(1, 8), lo = {1, 6, big.data}, hi = {1, 6, big.data + 1};
        bp_relu_forward(&lo, &hi); /* overlapping but not the same: refused */
        EXPECT_ERROR("bp_relu_forward", "a (1x6) shares memory with z (1x6)", "only exactly in place");
        bp_tensor_free(&big);
    }
    CHECK(all_equal(&a, 5) && all_equal(&dz, 5));
    bp_tensor_free(&z);
    bp_tensor_free(&a);
    bp_tensor_free(&da);
    bp_tensor_free(&dz);
    bp_tensor_free(&wrong);
}

/* ---- sigmoid and tanh ---------------------------------------------------------------------------- */

/* no NaN, no infinity (the test's own loop: bp_tensor_all_finite is tested in test_tensor.c) */
static int all_finite(const bp_tensor *t)
{
    int i;
    for (i = 0; i < t->rows * t->cols; i++)
        if (!(fabs((double)t->data[i]) <= DBL_MAX)) return 0;
    return 1;
}

/* One activation, its forward and backward (which takes the forward's OUTPUT a), checked against values
   worked out by hand on a 2x3 tensor.  Elements 0, 3 and 4 are exact (0 and +-1000 in z). */
typedef struct {
    const char *forward_name, *backward_name;
    void (*forward)(const bp_tensor *z, bp_tensor *a);
    void (*backward)(const bp_tensor *a, const bp_tensor *da, bp_tensor *dz);
    double z[6], a[6], da[6], dz[6];
} activation_case;

static void check_activation(const activation_case *c)
{
    bp_tensor z = make(2, 3, c->z), a = bp_tensor_new(2, 3), da = make(2, 3, c->da), dz = bp_tensor_new(2, 3);
    bp_tensor a_hand = make(2, 3, c->a), copy = bp_tensor_new(2, 3), wrong = bp_tensor_new(3, 2);
    const double tol = 4 * REAL_EPS;
    c->forward(&z, &a);
    CHECK(close_to(&a, c->a, tol));
    CHECK(a.data[0] == (bp_real)c->a[0] && a.data[3] == (bp_real)c->a[3] && a.data[4] == (bp_real)c->a[4] &&
          all_finite(&a));
    c->backward(&a_hand, &da, &dz); /* from the exact a, so only the backward's rounding counts */
    CHECK(close_to(&dz, c->dz, tol));
    c->backward(&a, &da, &dz);
    CHECK(close_to(&dz, c->dz, tol) && all_finite(&dz));

    /* in place: the same bits as out of place */
    memcpy(copy.data, z.data, 6 * sizeof(bp_real));
    c->forward(&copy, &copy);
    CHECK(same_bits(&copy, &a));
    memcpy(copy.data, da.data, 6 * sizeof(bp_real));
    c->backward(&a, &copy, &copy); /* dz == da */
    CHECK(same_bits(&copy, &dz));
    memcpy(copy.data, a.data, 6 * sizeof(bp_real));
    c->backward(&copy, &da, &copy); /* dz == a */
    CHECK(same_bits(&copy, &dz));
    EXPECT_NO_ERROR();

    /* argument checks: one message naming the shapes, no output written */
    fill(&a, 5);
    fill(&dz, 5);
    c->forward(NULL, &a);
    EXPECT_ERROR(c->forward_name, "z is NULL");
    c->forward(&z, NULL);
    EXPECT_ERROR(c->forward_name, "a is NULL");
    c->forward(&z, &wrong);
    EXPECT_ERROR(c->forward_name, "z is 2x3 but a is 3x2");
    c->backward(NULL, &da, &dz);
    EXPECT_ERROR(c->backward_name, "a is NULL");
    c->backward(&a, NULL, &dz);
    EXPECT_ERROR(c->backward_name, "da is NULL");
    c->backward(&a, &da, NULL);
    EXPECT_ERROR(c->backward_name, "dz is NULL");
    c->backward(&a, &wrong, &dz);
    EXPECT_ERROR(c->backward_name, "a is 2x3 but da is 3x2");
    c->backward(&a, &da, &wrong);
    EXPECT_ERROR(c->backward_name, "a is 2x3 but dz is 3x2");
    {
        bp_tensor big = bp_tensor_new(1, 8), lo = {1, 6, big.data}, hi = {1, 6, big.data + 1};
        bp_tensor da16 = bp_tensor_new(1, 6), unallocated = {2, 3, NULL};
        fill(&big, 3);
        c->forward(&lo, &hi);
        EXPECT_ERROR(c->forward_name, "a (1x6) shares memory with z (1x6)", "only exactly in place");
        c->backward(&lo, &da, &hi);
        EXPECT_ERROR(c->backward_name, "a is 1x6 but da is 2x3");
        c->backward(&lo, &lo, &hi); /* dz overlaps both inputs: the first in argument order is named */
        EXPECT_ERROR(c->backward_name, "dz (1x6) shares memory with a (1x6)");
        c->backward(&lo, &da16, &hi);
        EXPECT_ERROR(c->backward_name, "dz (1x6) shares memory with a (1x6)");
        /* dz exactly on a (allowed) does not excuse dz overlapping da.  REGRESSION: a draft of the shared
           guard (bp__bad_overlaps) returned at the first pair allowed in place, before checking the rest. */
        c->backward(&lo, &hi, &lo);
        EXPECT_ERROR(c->backward_name, "dz (1x6) shares memory with da (1x6)");
        c->backward(&hi, &lo, &lo);
        EXPECT_ERROR(c->backward_name, "dz (1x6) shares memory with a (1x6)");
        CHECK(all_equal(&big, 3));
        c->forward(&unallocated, &a);
        EXPECT_ERROR(c->forward_name, "z is 2x3", "NULL");
        bp_tensor_free(&big);
        bp_tensor_free(&da16);
    }
    CHECK(all_equal(&a, 5) && all_equal(&dz, 5));
    bp_tensor_free(&z);
    bp_tensor_free(&a);
    bp_tensor_free(&da);
    bp_tensor_free(&dz);
    bp_tensor_free(&a_hand);
    bp_tensor_free(&copy);
    bp_tensor_free(&wrong);
}

static void test_sigmoid_by_hand(void)
{
    /* a = 1/(1 + e^-z): sigmoid(0) = 1/2, sigmoid(1) = 0.7310585786300049, sigmoid(-1) = 1 - sigmoid(1),
       sigmoid(2.5) = 0.9241418199787566; at +-1000 exactly 1 and 0 (e^1000 would overflow).
       dz = da * a(1 - a): 0.25*1; 2*0.19661193324148185; -0.19661193324148185; 0 at the flat ends */
    static const activation_case sigmoid_case = {
        "bp_sigmoid_forward", "bp_sigmoid_backward", bp_sigmoid_forward, bp_sigmoid_backward,
        {0, 1, -1, 1000, -1000, 2.5},
        {0.5, 0.7310585786300049, 0.2689414213699951, 1, 0, 0.9241418199787566},
        {1, 2, -1, 5, -5, 0.5},
        {0.25, 0.3932238664829637, -0.19661193324148185, 0, 0, 0.03505185827255403}};
    check_activation(&sigmoid_case);
}

static void test_tanh_by_hand(void)
{
    /* tanh(0) = 0, tanh(+-1) = +-0.7615941559557649, tanh(0.5) = 0.46211715726000974, tanh(+-1000) = +-1.
       dz = da * (1 - a^2): 1*1; 2*0.41997434161402614; -0.41997434161402614; 0 at +-1000;
       0.5*0.7864477329659274 */
    static const activation_case tanh_case = {
        "bp_tanh_forward", "bp_tanh_backward", bp_tanh_forward, bp_tanh_backward,
        {0, 1, -1, 1000, -1000, 0.5},
        {0, 0.7615941559557649, -0.7615941559557649, 1, -1, 0.46211715726000974},
        {1, 2, -1, 5, -5, 0.5},
        {1, 0.8399486832280523, -0.41997434161402614, 0, 0, 0.3932238664829637}};
    check_activation(&tanh_case);
}

/* ---- MSE ---------------------------------------------------------------------------------------- */

static void test_mse_by_hand(void)
{
    const double yhat_[] = {1, 2, 3, 4}, y_[] = {0, 2, 5, 3};
    /* differences 1, 0, -2, 1: squares 1 0 4 1, mean 6/4 = 1.5; gradient 2/4 * diff */
    const double dyhat_[] = {0.5, 0, -1, 0.5};
    bp_tensor yhat = make(2, 2, yhat_), y = make(2, 2, y_), d = bp_tensor_new(2, 2), wrong = bp_tensor_new(1, 4);
    bp_real loss;
    CHECK(bp_mse_forward(&yhat, &y) == (bp_real)1.5);
    bp_mse_backward(&yhat, &y, &d);
    CHECK(close_to(&d, dyhat_, 0));
    bp_mse_backward(&yhat, &y, &yhat); /* in place */
    CHECK(close_to(&yhat, dyhat_, 0));
    {
        bp_tensor e1 = bp_tensor_new(0, 3), e2 = bp_tensor_new(0, 3);
        CHECK(bp_mse_forward(&e1, &e2) == 0);
    }
    EXPECT_NO_ERROR();

    fill(&d, 8);
    loss = bp_mse_forward(&y, &wrong);
    EXPECT_ERROR("bp_mse_forward", "yhat is 2x2 but y is 1x4");
    CHECK(loss != loss); /* NaN on error */
    loss = bp_mse_forward(NULL, &y);
    EXPECT_ERROR("bp_mse_forward", "yhat is NULL");
    CHECK(loss != loss);
    bp_mse_backward(&y, &wrong, &d);
    EXPECT_ERROR("bp_mse_backward", "yhat is 2x2 but y is 1x4");
    bp_mse_backward(&y, &y, &wrong);
    EXPECT_ERROR("bp_mse_backward", "yhat is 2x2 but dyhat is 1x4");
    CHECK(all_equal(&d, 8));
    bp_tensor_free(&yhat);
    bp_tensor_free(&y);
    bp_tensor_free(&d);
    bp_tensor_free(&wrong);
}

/* ---- softmax + cross-entropy --------------------------------------------------------------------- */

static void test_softmax_xent_by_hand(void)
{
    /* row 0: logits 5 + log(1, 2, 3, 4) give probs 0.1 0.2 0.3 0.4 (the shift by 5 changes nothing);
       label 3: loss -log 0.4.  Row 1: equal logits give 1/4 each; label 1: loss log 4.
       Mean: (log 4 - log 0.4)/2 = log(10)/2 = 1.151292546497023.
       dlogits = (probs - onehot)/2 = [0.05 0.1 0.15 -0.3; 0.125 -0.375 0.125 0.125] */
    const double logits_[] = {5, 5 + 0.69314718055994531, 5 + 1.0986122886681098, 5 + 1.3862943611198906,
                              7, 7, 7, 7};
    const double probs_[] = {0.1, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25};
    const double dlogits_[] = {0.05, 0.1, 0.15, -0.3, 0.125, -0.375, 0.125, 0.125};
    const int labels[] = {3, 1};
    bp_tensor logits = make(2, 4, logits_), probs = bp_tensor_new(2, 4), d = bp_tensor_new(2, 4);
    bp_tensor copy = bp_tensor_new(2, 4), wrong = bp_tensor_new(4, 2);
    const double tol = 32 * REAL_EPS;
    bp_real loss;
    loss = bp_softmax_xent_forward(&logits, labels, &probs);
    CHECK(fabs((double)loss - 1.151292546497023) <= tol);
    CHECK(close_to(&probs, probs_, tol));
    bp_softmax_xent_backward(&probs, labels, &d);
    CHECK(close_to(&d, dlogits_, tol));
    /* in place: probs == logits, then dlogits == probs; the same bits as out of place */
    memcpy(copy.data, logits.data, 8 * sizeof(bp_real));
    CHECK(bp_softmax_xent_forward(&copy, labels, &copy) == loss);
    CHECK(same_bits(&copy, &probs));
    bp_softmax_xent_backward(&copy, labels, &copy);
    CHECK(same_bits(&copy, &d));
    EXPECT_NO_ERROR();

    /* argument checks: one message naming the shapes (or the bad label), no output written */
    {
        const int out_of_range[] = {3, 4}, negative[] = {-1, 0};
        fill(&probs, 9);
        fill(&d, 9);
        loss = bp_softmax_xent_forward(NULL, labels, &probs);
        EXPECT_ERROR("bp_softmax_xent_forward", "logits is NULL");
        CHECK(loss != loss);
        loss = bp_softmax_xent_forward(&logits, labels, NULL);
        EXPECT_ERROR("bp_softmax_xent_forward", "probs is NULL");
        CHECK(loss != loss);
        loss = bp_softmax_xent_forward(&logits, labels, &wrong);
        EXPECT_ERROR("bp_softmax_xent_forward", "logits is 2x4 but probs is 4x2");
        CHECK(loss != loss);
        loss = bp_softmax_xent_forward(&logits, NULL, &probs);
        EXPECT_ERROR("bp_softmax_xent_forward", "labels is NULL", "2x4");
        CHECK(loss != loss);
        loss = bp_softmax_xent_forward(&logits, out_of_range, &probs);
        EXPECT_ERROR("bp_softmax_xent_forward", "labels[1] is 4", "0..3");
        CHECK(loss != loss);
        loss = bp_softmax_xent_forward(&logits, negative, &probs);
        EXPECT_ERROR("bp_softmax_xent_forward", "labels[0] is -1");
        CHECK(loss != loss);
        bp_softmax_xent_backward(NULL, labels, &d);
        EXPECT_ERROR("bp_softmax_xent_backward", "probs is NULL");
        bp_softmax_xent_backward(&probs, labels, NULL);
        EXPECT_ERROR("bp_softmax_xent_backward", "dlogits is NULL");
        bp_softmax_xent_backward(&probs, labels, &wrong);
        EXPECT_ERROR("bp_softmax_xent_backward", "probs is 2x4 but dlogits is 4x2");
        bp_softmax_xent_backward(&probs, NULL, &d);
        EXPECT_ERROR("bp_softmax_xent_backward", "labels is NULL");
        bp_softmax_xent_backward(&probs, out_of_range, &d);
        EXPECT_ERROR("bp_softmax_xent_backward", "labels[1] is 4");
        bp_softmax_xent_backward(&probs, negative, &d);
        EXPECT_ERROR("bp_softmax_xent_backward", "labels[0] is -1");
        {
            bp_tensor big = bp_tensor_new(3, 4), lo = {2, 4, big.data}, hi = {2, 4, big.data + 4};
            fill(&big, 2);
            loss = bp_softmax_xent_forward(&lo, labels, &hi);
            EXPECT_ERROR("bp_softmax_xent_forward", "probs (2x4) shares memory with logits (2x4)");
            CHECK(loss != loss);
            bp_softmax_xent_backward(&lo, labels, &hi);
            EXPECT_ERROR("bp_softmax_xent_backward", "dlogits (2x4) shares memory with probs (2x4)");
            CHECK(all_equal(&big, 2));
            bp_tensor_free(&big);
        }
        CHECK(all_equal(&probs, 9) && all_equal(&d, 9));
        CHECK(close_to(&logits, logits_, REAL_EPS));
    }
    bp_tensor_free(&logits);
    bp_tensor_free(&probs);
    bp_tensor_free(&d);
    bp_tensor_free(&copy);
    bp_tensor_free(&wrong);
}

/* Extreme and degenerate logits: no overflow, no log(0), and the cases a reader can do in their head. */
static void test_softmax_xent_extremes(void)
{
    const double tol = 32 * REAL_EPS;
    bp_real loss;
    {
        /* logits 1000, 0, -1000: e^1000 would overflow without the max subtracted.  Label 0: loss 0;
           label 2: loss log-sum-exp - (-1000) = 1000 + 1000 = 2000, never log(0) = -inf */
        const double ext_[] = {1000, 0, -1000};
        const int zero[] = {0}, two[] = {2}, both[] = {0, 2};
        const double probs_ext[] = {1, 0, 0}, d_two[] = {1, 0, -1};
        bp_tensor ext = make(1, 3, ext_), p = bp_tensor_new(1, 3), dd = bp_tensor_new(1, 3);
        bp_tensor ext2 = bp_tensor_new(2, 3), p2 = bp_tensor_new(2, 3);
        loss = bp_softmax_xent_forward(&ext, zero, &p);
        CHECK(loss == 0);
        CHECK(close_to(&p, probs_ext, 0) && all_finite(&p));
        loss = bp_softmax_xent_forward(&ext, two, &p);
        CHECK(loss == 2000);
        bp_softmax_xent_backward(&p, two, &dd);
        CHECK(close_to(&dd, d_two, 0));
        memcpy(ext2.data, ext.data, 3 * sizeof(bp_real));
        memcpy(ext2.data + 3, ext.data, 3 * sizeof(bp_real));
        CHECK(bp_softmax_xent_forward(&ext2, both, &p2) == 1000); /* the mean over the batch */
        bp_tensor_free(&ext);
        bp_tensor_free(&p);
        bp_tensor_free(&dd);
        bp_tensor_free(&ext2);
        bp_tensor_free(&p2);
    }
    {
        /* equal logits: every class 1/C, the loss log C whatever the label */
        const int labels10[] = {0, 5, 9};
        bp_tensor u = bp_tensor_new(3, 10), p = bp_tensor_new(3, 10);
        int i, ok = 1;
        fill(&u, (bp_real)-3.5);
        loss = bp_softmax_xent_forward(&u, labels10, &p);
        CHECK(fabs((double)loss - 2.302585092994046) <= tol);
        for (i = 0; i < 30; i++) ok &= fabs((double)p.data[i] - 0.1) <= tol;
        CHECK(ok);
        bp_tensor_free(&u);
        bp_tensor_free(&p);
    }
    {
        /* one class: probability 1, loss 0, gradient 0; an empty batch: loss 0, labels not needed */
        const int zeros[] = {0, 0, 0};
        bp_tensor one = bp_tensor_new(3, 1), p = bp_tensor_new(3, 1), e = bp_tensor_new(0, 4);
        fill(&one, 42);
        CHECK(bp_softmax_xent_forward(&one, zeros, &p) == 0);
        CHECK(all_equal(&p, 1));
        bp_softmax_xent_backward(&p, zeros, &one);
        CHECK(all_equal(&one, 0));
        CHECK(bp_softmax_xent_forward(&e, NULL, &e) == 0);
        bp_softmax_xent_backward(&e, NULL, &e);
        bp_tensor_free(&one);
        bp_tensor_free(&p);
    }
    EXPECT_NO_ERROR();
}

/* ---- gradient checks: ReLU, MSE and Linear against finite differences ------------------------------ */

/* ReLU alone: L = mse(relu(z), y), checked with respect to z (grad from relu_backward of mse_backward) */
typedef struct relu_net {
    bp_tensor z, a, y;
} relu_net;

static bp_real relu_loss(void *ctx)
{
    relu_net *n = (relu_net *)ctx;
    bp_relu_forward(&n->z, &n->a);
    return bp_mse_forward(&n->a, &n->y);
}

/* MSE alone: L = mse(yhat, y), checked with respect to yhat */
static bp_real mse_loss(void *ctx)
{
    relu_net *n = (relu_net *)ctx;
    return bp_mse_forward(&n->a, &n->y);
}

static void test_gradcheck_relu_mse(void)
{
    relu_net n;
    bp_tensor d = bp_tensor_new(4, 6);
    bp_rng rng;
    const bp_real eps = GRADCHECK_EPS;
    const double tol = GRADCHECK_TOL;
    bp_real e;
    int i;
    bp_rng_seed(&rng, 5);
    n.z = bp_tensor_new(4, 6);
    n.a = bp_tensor_new(4, 6);
    n.y = bp_tensor_new(4, 6);
    bp_tensor_randn(&n.z, &rng, 1);
    bp_tensor_randn(&n.y, &rng, 1);
    for (i = 0; i < 24; i++) /* every z at least 0.1 from the kink at 0, half of them negative */
        n.z.data[i] = (i % 2 ? -1 : 1) * ((bp_real)fabs((double)n.z.data[i]) + (bp_real)0.1);
    relu_loss(&n);
    bp_mse_backward(&n.a, &n.y, &d);
    bp_relu_backward(&n.z, &d, &d);
    e = bp_gradcheck(relu_loss, &n, &n.z, &d, eps);
    if (!(e < tol)) printf("  relu dz: %g\n", (double)e);
    CHECK(e < tol);
    for (i = 1; i < 24; i += 2) CHECK(d.data[i] == 0); /* no gradient through an inactive unit */

    bp_mse_backward(&n.a, &n.y, &d); /* a is now the free variable yhat */
    e = bp_gradcheck(mse_loss, &n, &n.a, &d, eps);
    if (!(e < tol)) printf("  mse dyhat: %g\n", (double)e);
    CHECK(e < tol);
    EXPECT_NO_ERROR();
    bp_tensor_free(&n.z);
    bp_tensor_free(&n.a);
    bp_tensor_free(&n.y);
    bp_tensor_free(&d);
}

/* A linear layer with a loss: x (6x5) -> Linear(W 5x3, b 1x3) -> [ReLU] -> MSE against y, and the
   gradients the backward pass writes. */
typedef struct net {
    bp_tensor x, W, b, y, z, a; /* inputs and parameters; z and a are the forward's cache */
    bp_tensor dz, dx, dW, db;   /* the backward's results */
} net;

/* x, W, b and y drawn from N(0, 1) with the seed 77 */
static void net_new(net *n)
{
    const int batch = 6, in = 5, out = 3;
    bp_rng rng;
    bp_rng_seed(&rng, 77);
    n->x = bp_tensor_new(batch, in);
    n->W = bp_tensor_new(in, out);
    n->b = bp_tensor_new(1, out);
    n->y = bp_tensor_new(batch, out);
    n->z = bp_tensor_new(batch, out);
    n->a = bp_tensor_new(batch, out);
    n->dz = bp_tensor_new(batch, out);
    n->dx = bp_tensor_new(batch, in);
    n->dW = bp_tensor_new(in, out);
    n->db = bp_tensor_new(1, out);
    randomize(&n->x, &rng);
    randomize(&n->W, &rng);
    randomize(&n->b, &rng);
    randomize(&n->y, &rng);
}

static void net_free(net *n)
{
    bp_tensor_free(&n->x);
    bp_tensor_free(&n->W);
    bp_tensor_free(&n->b);
    bp_tensor_free(&n->y);
    bp_tensor_free(&n->z);
    bp_tensor_free(&n->a);
    bp_tensor_free(&n->dz);
    bp_tensor_free(&n->dx);
    bp_tensor_free(&n->dW);
    bp_tensor_free(&n->db);
}

/* Linear -> ReLU -> MSE */
static bp_real net_loss(void *ctx)
{
    net *n = (net *)ctx;
    bp_linear_forward(&n->x, &n->W, &n->b, &n->z);
    bp_relu_forward(&n->z, &n->a);
    return bp_mse_forward(&n->a, &n->y);
}

/* loss of the linear layer alone (no kink: the finite differences are exact up to rounding) */
static bp_real linear_loss(void *ctx)
{
    net *n = (net *)ctx;
    bp_linear_forward(&n->x, &n->W, &n->b, &n->z);
    return bp_mse_forward(&n->z, &n->y);
}

/* Linear + MSE, then Linear + ReLU + MSE: dW, db and dx from bp_linear_backward against finite
   differences; and dL/dy. */
static void test_gradcheck_linear(void)
{
    net n;
    const bp_real eps = GRADCHECK_EPS;
    const double tol = GRADCHECK_TOL;
    bp_real e;
    int i, layer, count;
    net_new(&n);
    count = n.z.rows * n.z.cols;
    for (layer = 0; layer < 2; layer++) { /* 0: linear + MSE; 1: linear + ReLU + MSE */
        bp_real (*loss)(void *) = layer ? net_loss : linear_loss;
        loss(&n);
        if (layer) {
            /* keep every z at least 0.1 away from the ReLU kink, so the finite differences are valid */
            for (i = 0; i < count; i++)
                if (fabs((double)n.z.data[i]) < 0.1) n.b.data[i % n.z.cols] += (bp_real)0.3;
            loss(&n);
            for (i = 0; i < count; i++) CHECK(fabs((double)n.z.data[i]) >= 0.05);
            bp_mse_backward(&n.a, &n.y, &n.dz);
            bp_relu_backward(&n.z, &n.dz, &n.dz);
        } else {
            bp_mse_backward(&n.z, &n.y, &n.dz);
        }
        bp_linear_backward(&n.x, &n.W, &n.dz, &n.dx, &n.dW, &n.db);
        e = bp_gradcheck(loss, &n, &n.W, &n.dW, eps);
        if (!(e < tol)) printf("  layer %d dW: %g\n", layer, (double)e);
        CHECK(e < tol);
        e = bp_gradcheck(loss, &n, &n.b, &n.db, eps);
        if (!(e < tol)) printf("  layer %d db: %g\n", layer, (double)e);
        CHECK(e < tol);
        e = bp_gradcheck(loss, &n, &n.x, &n.dx, eps);
        if (!(e < tol)) printf("  layer %d dx: %g\n", layer, (double)e);
        CHECK(e < tol);
    }
    EXPECT_NO_ERROR();

    /* the MSE gradient alone, with respect to yhat (here: a) */
    {
        bp_tensor d = bp_tensor_new(n.a.rows, n.a.cols);
        net_loss(&n);
        bp_mse_backward(&n.a, &n.y, &d);
        /* perturbing y instead: dL/dy = -dL/dyhat */
        for (i = 0; i < count; i++) d.data[i] = -d.data[i];
        e = bp_gradcheck(net_loss, &n, &n.y, &d, eps);
        if (!(e < tol)) printf("  dy: %g\n", (double)e);
        CHECK(e < tol);
        bp_tensor_free(&d);
    }
    net_free(&n);
}

/* bp_gradcheck itself: it restores every parameter bit for bit, catches a wrong gradient, and checks its
   arguments. */
static void test_gradcheck_itself(void)
{
    net n;
    const bp_real eps = GRADCHECK_EPS;
    const double tol = GRADCHECK_TOL;
    bp_tensor saved;
    bp_real e;
    net_new(&n);
    saved = bp_tensor_new(n.W.rows, n.W.cols);
    memcpy(saved.data, n.W.data, element_count(&n.W) * sizeof(bp_real));
    linear_loss(&n);
    bp_mse_backward(&n.z, &n.y, &n.dz);
    bp_linear_backward(&n.x, &n.W, &n.dz, NULL, &n.dW, NULL);
    CHECK(bp_gradcheck(linear_loss, &n, &n.W, &n.dW, eps) < tol);
    CHECK(memcmp(saved.data, n.W.data, element_count(&n.W) * sizeof(bp_real)) == 0);
    n.dW.data[4] *= (bp_real)1.01; /* a 1% error in one element */
    e = bp_gradcheck(linear_loss, &n, &n.W, &n.dW, eps);
    CHECK(e > 0.005 && e < 0.02);
    n.dW.data[4] = -n.dW.data[4];
    CHECK(bp_gradcheck(linear_loss, &n, &n.W, &n.dW, eps) > 1);
    bp_tensor_free(&saved);
    EXPECT_NO_ERROR();

    e = bp_gradcheck(linear_loss, &n, &n.W, &n.db, eps);
    EXPECT_ERROR("bp_gradcheck", "param is 5x3 but grad is 1x3");
    CHECK(e == (bp_real)HUGE_VAL);
    e = bp_gradcheck(NULL, &n, &n.W, &n.dW, eps);
    EXPECT_ERROR("bp_gradcheck", "loss is NULL");
    e = bp_gradcheck(linear_loss, &n, &n.W, &n.dW, 0);
    EXPECT_ERROR("bp_gradcheck", "eps", "5x3");
    e = bp_gradcheck(linear_loss, &n, &n.W, &n.W, eps);
    EXPECT_ERROR("bp_gradcheck", "shares memory");
    CHECK(e == (bp_real)HUGE_VAL);
    net_free(&n);
}

/* ---- gradient checks: sigmoid, tanh, softmax + cross-entropy, and a two-layer classifier ----------- */

/* L = mse(act(z), y), checked with respect to z; act is sigmoid (0) or tanh (1) */
typedef struct act_net {
    bp_tensor z, a, y;
    int use_tanh;
} act_net;

static bp_real act_loss(void *ctx)
{
    act_net *n = (act_net *)ctx;
    if (n->use_tanh) bp_tanh_forward(&n->z, &n->a);
    else bp_sigmoid_forward(&n->z, &n->a);
    return bp_mse_forward(&n->a, &n->y);
}

/* L = softmax_xent(logits, labels), checked with respect to the logits */
typedef struct xent_net {
    bp_tensor logits, probs;
    int labels[16];
} xent_net;

static bp_real xent_loss(void *ctx)
{
    xent_net *n = (xent_net *)ctx;
    return bp_softmax_xent_forward(&n->logits, n->labels, &n->probs);
}

static void test_gradcheck_sigmoid_tanh(void)
{
    const int shapes[][2] = {{1, 1}, {3, 4}, {7, 2}, {2, 9}};
    const bp_real eps = GRADCHECK_EPS;
    const double tol = GRADCHECK_TOL;
    bp_rng rng;
    int s, which, i;
    bp_rng_seed(&rng, 31);
    for (which = 0; which < 2; which++)
        for (s = 0; s < 4; s++) {
            act_net n;
            bp_tensor d;
            bp_real e;
            n.use_tanh = which;
            n.z = bp_tensor_new(shapes[s][0], shapes[s][1]);
            n.a = bp_tensor_new(shapes[s][0], shapes[s][1]);
            n.y = bp_tensor_new(shapes[s][0], shapes[s][1]);
            d = bp_tensor_new(shapes[s][0], shapes[s][1]);
            bp_tensor_randn(&n.z, &rng, 1);
            bp_tensor_randn(&n.y, &rng, 1);
            for (i = 0; i < n.z.rows * n.z.cols; i++) /* |z| <= 2: off the flat tails, where dz is tiny */
                if (fabs((double)n.z.data[i]) > 2) n.z.data[i] = n.z.data[i] > 0 ? 2 : -2;
            act_loss(&n);
            for (i = 0; i < n.z.rows * n.z.cols; i++) { /* |a - y| >= 0.25: no gradient element near 0 */
                bp_real gap = (bp_real)0.25 + (bp_real)fabs((double)n.y.data[i]);
                n.y.data[i] = n.a.data[i] + (n.y.data[i] < 0 ? -gap : gap);
            }
            bp_mse_backward(&n.a, &n.y, &d);
            if (which) bp_tanh_backward(&n.a, &d, &d); /* from the forward's output a, in place */
            else bp_sigmoid_backward(&n.a, &d, &d);
            e = bp_gradcheck(act_loss, &n, &n.z, &d, eps);
            if (!(e < tol)) printf("  %s %dx%d dz: %g\n", which ? "tanh" : "sigmoid", n.z.rows, n.z.cols, (double)e);
            CHECK(e < tol);
            bp_tensor_free(&n.z);
            bp_tensor_free(&n.a);
            bp_tensor_free(&n.y);
            bp_tensor_free(&d);
        }
    EXPECT_NO_ERROR();
}

static void test_gradcheck_softmax_xent(void)
{
    /* batch x classes; one class (a constant loss of 0, gradient 0) included */
    const int shapes[][2] = {{1, 2}, {4, 3}, {2, 10}, {3, 1}, {8, 4}};
    const bp_real eps = GRADCHECK_EPS;
    const double tol = GRADCHECK_TOL;
    bp_rng rng;
    int s, r;
    bp_rng_seed(&rng, 41);
    for (s = 0; s < 5; s++) {
        xent_net n;
        bp_tensor d;
        bp_real e;
        n.logits = bp_tensor_new(shapes[s][0], shapes[s][1]);
        n.probs = bp_tensor_new(shapes[s][0], shapes[s][1]);
        d = bp_tensor_new(shapes[s][0], shapes[s][1]);
        bp_tensor_randn(&n.logits, &rng, 1); /* no probability tiny: small elements show rounding most */
        for (r = 0; r < shapes[s][0]; r++) n.labels[r] = (int)(bp_rng_next_u64(&rng) % (uint64_t)shapes[s][1]);
        xent_loss(&n);
        bp_softmax_xent_backward(&n.probs, n.labels, &d);
        e = bp_gradcheck(xent_loss, &n, &n.logits, &d, eps);
        if (!(e < tol)) printf("  xent %dx%d dlogits: %g\n", shapes[s][0], shapes[s][1], (double)e);
        CHECK(e < tol);
        bp_tensor_free(&n.logits);
        bp_tensor_free(&n.probs);
        bp_tensor_free(&d);
    }
    EXPECT_NO_ERROR();
}

/* A classifier: x -> Linear(W1, b1) -> sigmoid or tanh -> Linear(W2, b2) -> softmax + cross-entropy */
typedef struct mlp {
    bp_tensor x, W1, b1, z1, a1, W2, b2, z2, probs;
    int labels[8];
    int use_tanh;
} mlp;

static bp_real mlp_loss(void *ctx)
{
    mlp *n = (mlp *)ctx;
    bp_linear_forward(&n->x, &n->W1, &n->b1, &n->z1);
    if (n->use_tanh) bp_tanh_forward(&n->z1, &n->a1);
    else bp_sigmoid_forward(&n->z1, &n->a1);
    bp_linear_forward(&n->a1, &n->W2, &n->b2, &n->z2);
    return bp_softmax_xent_forward(&n->z2, n->labels, &n->probs);
}

static void test_gradcheck_classifier(void)
{
    const int batch = 3, in = 4, hidden = 5, classes = 3;
    const bp_real eps = GRADCHECK_EPS;
    const double tol = GRADCHECK_TOL;
    bp_tensor dz2, da1, dz1, dx, dW1, db1, dW2, db2;
    bp_rng rng;
    mlp n;
    int i;
    bp_rng_seed(&rng, 7);
    n.x = bp_tensor_new(batch, in);
    n.W1 = bp_tensor_new(in, hidden);
    n.b1 = bp_tensor_new(1, hidden);
    n.z1 = bp_tensor_new(batch, hidden);
    n.a1 = bp_tensor_new(batch, hidden);
    n.W2 = bp_tensor_new(hidden, classes);
    n.b2 = bp_tensor_new(1, classes);
    n.z2 = bp_tensor_new(batch, classes);
    n.probs = bp_tensor_new(batch, classes);
    dz2 = bp_tensor_new(batch, classes);
    da1 = bp_tensor_new(batch, hidden);
    dz1 = bp_tensor_new(batch, hidden);
    dx = bp_tensor_new(batch, in);
    dW1 = bp_tensor_new(in, hidden);
    db1 = bp_tensor_new(1, hidden);
    dW2 = bp_tensor_new(hidden, classes);
    db2 = bp_tensor_new(1, classes);
    randomize(&n.x, &rng);
    randomize(&n.b1, &rng);
    randomize(&n.b2, &rng);
    for (i = 0; i < batch; i++) n.labels[i] = i % classes;
    for (n.use_tanh = 0; n.use_tanh < 2; n.use_tanh++) {
        const char *act = n.use_tanh ? "tanh" : "sigmoid";
        bp_tensor *params[5], *grads[5];
        const char *names[5] = {"dW1", "db1", "dW2", "db2", "dx"};
        int k;
        if (n.use_tanh) bp_init_xavier(&n.W1, &rng);
        else bp_init_he(&n.W1, &rng);
        bp_init_xavier(&n.W2, &rng);
        mlp_loss(&n);
        /* the backward pass, the chain rule from the loss back to the input */
        bp_softmax_xent_backward(&n.probs, n.labels, &dz2);
        bp_linear_backward(&n.a1, &n.W2, &dz2, &da1, &dW2, &db2);
        if (n.use_tanh) bp_tanh_backward(&n.a1, &da1, &dz1);
        else bp_sigmoid_backward(&n.a1, &da1, &dz1);
        bp_linear_backward(&n.x, &n.W1, &dz1, &dx, &dW1, &db1);
        params[0] = &n.W1;
        grads[0] = &dW1;
        params[1] = &n.b1;
        grads[1] = &db1;
        params[2] = &n.W2;
        grads[2] = &dW2;
        params[3] = &n.b2;
        grads[3] = &db2;
        params[4] = &n.x;
        grads[4] = &dx;
        for (k = 0; k < 5; k++) {
            bp_real e;
            /* The check is only as good as the smallest gradient element: in float the loss's own rounding
               (~1e-7) over the step 2*eps is ~5e-6, 1% of an element of 5e-4.  With this seed every element
               is above 1e-3 (with many other seeds some element of dx or dW1 is not, and float reports a few
               percent although the gradient is right); double has room to spare either way. */
            int i2, small = 0;
            for (i2 = 0; i2 < grads[k]->rows * grads[k]->cols; i2++) small += fabs((double)grads[k]->data[i2]) < 1e-3;
            CHECK(small == 0);
            e = bp_gradcheck(mlp_loss, &n, params[k], grads[k], eps);
            if (!(e < tol)) printf("  %s classifier %s: %g\n", act, names[k], (double)e);
            CHECK(e < tol);
        }
    }
    EXPECT_NO_ERROR();
    bp_tensor_free(&n.x);
    bp_tensor_free(&n.W1);
    bp_tensor_free(&n.b1);
    bp_tensor_free(&n.z1);
    bp_tensor_free(&n.a1);
    bp_tensor_free(&n.W2);
    bp_tensor_free(&n.b2);
    bp_tensor_free(&n.z2);
    bp_tensor_free(&n.probs);
    bp_tensor_free(&dz2);
    bp_tensor_free(&da1);
    bp_tensor_free(&dz1);
    bp_tensor_free(&dx);
    bp_tensor_free(&dW1);
    bp_tensor_free(&db1);
    bp_tensor_free(&dW2);
    bp_tensor_free(&db2);
}

/* ---- the walkthrough against numpy (tests/fixtures/walkthrough.txt) ----------------------------- */

/* Reads the block `name rows cols` + values from tests/fixtures/walkthrough.txt into a new tensor. */
static int read_block(FILE *f, const char *name, bp_tensor *t)
{
    char line[4096], got[64];
    int rows, cols, i;
    while (fgets(line, sizeof line, f))
        if (line[0] != '#' && line[0] != '\n') break;
    if (sscanf(line, "%63s %d %d", got, &rows, &cols) != 3 || strcmp(got, name) != 0) return 0;
    *t = bp_tensor_new(rows, cols);
    for (i = 0; i < rows * cols; i++) {
        double v;
        if (fscanf(f, "%lf", &v) != 1) return 0;
        t->data[i] = (bp_real)v;
    }
    return 1;
}

static void test_walkthrough_vs_numpy(void)
{
    static const char *names[] = {"x", "y", "W", "b", "z", "a", "loss", "dW", "db", "dx"};
    bp_tensor t[10], z, a, dz, dx, dW, db;
    const double tol = REFERENCE_TOL;
    FILE *f = open_fixture("walkthrough.txt");
    int i, ok = 1;
    bp_real loss;
    if (!f) return;
    for (i = 0; i < 10; i++) ok &= read_block(f, names[i], &t[i]);
    fclose(f);
    CHECK(ok);
    if (!ok) return;
    z = bp_tensor_new(8, 2);
    a = bp_tensor_new(8, 2);
    dz = bp_tensor_new(8, 2);
    dx = bp_tensor_new(8, 4);
    dW = bp_tensor_new(4, 2);
    db = bp_tensor_new(1, 2);
    bp_linear_forward(&t[0], &t[2], &t[3], &z);
    bp_relu_forward(&z, &a);
    loss = bp_mse_forward(&a, &t[1]);
    bp_mse_backward(&a, &t[1], &dz);
    bp_relu_backward(&z, &dz, &dz);
    bp_linear_backward(&t[0], &t[2], &dz, &dx, &dW, &db);
    CHECK(fabs((double)loss - (double)t[6].data[0]) <= tol * fabs((double)t[6].data[0]));
    /* relative to each array's largest element */
    {
        bp_tensor *mine[] = {&z, &a, &dW, &db, &dx};
        int theirs[] = {4, 5, 7, 8, 9}, k;
        for (k = 0; k < 5; k++) {
            double scale = 0, worst = 0;
            int n = (int)element_count(mine[k]);
            CHECK(same_shape(mine[k], &t[theirs[k]]));
            for (i = 0; i < n; i++)
                if (fabs((double)t[theirs[k]].data[i]) > scale) scale = fabs((double)t[theirs[k]].data[i]);
            for (i = 0; i < n; i++) {
                double err = fabs((double)mine[k]->data[i] - (double)t[theirs[k]].data[i]);
                if (err > worst) worst = err;
            }
            if (!(worst <= tol * scale)) printf("  %s differs from numpy by %g\n", names[theirs[k]], worst);
            CHECK(worst <= tol * scale);
        }
    }
    for (i = 0; i < 10; i++) bp_tensor_free(&t[i]);
    bp_tensor_free(&z);
    bp_tensor_free(&a);
    bp_tensor_free(&dz);
    bp_tensor_free(&dx);
    bp_tensor_free(&dW);
    bp_tensor_free(&db);
}
