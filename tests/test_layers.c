/* Tests of the layers and losses, forward and backward: Linear, ReLU, sigmoid, tanh, MSE, softmax +
   cross-entropy, layer norm, batch norm, dropout, 2-D convolution and max-pooling.  Three kinds of test, in
   this order:
     - by hand: each forward and backward on a case small enough to work out on paper (the working is in
       the comments), its in-place forms (the same bits), and each argument check's message;
     - gradient checks: each backward against central finite differences (bp_gradcheck), in double to 1e-7
       (float: 1e-2), alone and composed into Linear -> ReLU -> MSE and a two-layer classifier;
     - walkthrough_vs_numpy: the walkthrough's forward and backward against numpy's textbook code
       (tests/fixtures/walkthrough.txt, written by tests/gen_fixtures.py); norms_vs_pytorch: the norms and
       dropout against PyTorch (tests/fixtures/norms.txt).
   Where each function is tested (here, unless test_sweep.c is named):
     bp_linear_forward, bp_linear_backward   linear_by_hand, linear_fused_bits, linear_bias_gradient,
                                             gradcheck_linear, gradcheck_itself, gradcheck_classifier,
                                             walkthrough_vs_numpy
     bp_relu_forward, bp_relu_backward       relu_by_hand, gradcheck_relu_mse, gradcheck_linear,
                                             walkthrough_vs_numpy
     bp_sigmoid_*, bp_tanh_*                 sigmoid_by_hand, tanh_by_hand, exp_accuracy (the forwards, in
                                             ulps), gradcheck_sigmoid_tanh, gradcheck_classifier
     bp_mse_forward, bp_mse_backward         mse_by_hand, gradcheck_relu_mse, gradcheck_linear,
                                             walkthrough_vs_numpy
     bp_softmax_xent_*                       softmax_xent_by_hand, softmax_xent_extremes, exp_accuracy
                                             (the forward), gradcheck_softmax_xent, gradcheck_classifier
     bp_window_out_height, _width            conv2d_by_hand, no_allocation_others (test_sweep.c)
     bp_conv2d_forward, bp_conv2d_backward   conv2d_by_hand, conv2d_vs_pytorch (tests/fixtures/windows.txt),
                                             gradcheck_conv2d_maxpool2d
     bp_maxpool2d_forward, _backward         maxpool2d_by_hand, maxpool2d_vs_pytorch,
                                             gradcheck_conv2d_maxpool2d
     bp_layernorm_*                          layernorm_by_hand, batchnorm_by_hand (batch norm is layer norm of
                                             the transpose), gradcheck_norms, norms_vs_pytorch
     bp_batchnorm_* (all four)               batchnorm_by_hand, gradcheck_norms, norms_vs_pytorch
     bp_dropout_*                            dropout (its statistics), gradcheck_norms, norms_vs_pytorch
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

/* db = column sums of dz, which bp__column_sums adds eight rows to a pass: batches of 1, 2, 8, 9 (row 0 and
   one block of eight), 17, 20 and 100 rows (blocks and a rest), 1 to 128 columns.  Small integers first,
   whose sums are exact in any order: db must be exactly the sum, so a row left out or added twice shows.
   Then random numbers, against the sum in double: within the rounding of one float sum per column. */
static void test_linear_bias_gradient(void)
{
    static const int batches[] = {1, 2, 8, 9, 17, 20, 100}, widths[] = {1, 3, 13, 128};
    bp_rng rng;
    int bi, wi, r, j, pass;
    bp_rng_seed(&rng, 21);
    for (pass = 0; pass < 2; pass++)
        for (bi = 0; bi < (int)(sizeof batches / sizeof batches[0]); bi++)
            for (wi = 0; wi < (int)(sizeof widths / sizeof widths[0]); wi++) {
                int R = batches[bi], C = widths[wi], ok = 1;
                bp_tensor x = bp_tensor_new(R, 1), W = bp_tensor_new(1, C), dz = bp_tensor_new(R, C);
                bp_tensor dW = bp_tensor_new(1, C), db = bp_tensor_new(1, C);
                randomize(&x, &rng);
                randomize(&W, &rng);
                for (r = 0; r < R * C; r++)
                    dz.data[r] = pass == 0 ? (bp_real)((r * 7 + r / C * 3) % 11 - 5) : (bp_real)bp_rng_normal(&rng);
                bp_linear_backward(&x, &W, &dz, NULL, &dW, &db);
                for (j = 0; j < C; j++) {
                    double sum = 0, size = 0;
                    for (r = 0; r < R; r++) sum += (double)dz.data[r * C + j], size += fabs((double)dz.data[r * C + j]);
                    ok &= pass == 0 ? (double)db.data[j] == sum
                                    : fabs((double)db.data[j] - sum) <= R * size * (sizeof(bp_real) == 4 ? 6e-8 : 1.2e-16);
                }
                if (!ok) printf("  db wrong: %d rows x %d columns, %s\n", R, C, pass == 0 ? "integers" : "random");
                CHECK(ok);
                bp_tensor_free(&x), bp_tensor_free(&W), bp_tensor_free(&dz), bp_tensor_free(&dW), bp_tensor_free(&db);
            }
    EXPECT_NO_ERROR();
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

/* Error of y against the reference ref, in units in the last place of bp_real at ref (below the smallest
   normal number, in units of that number: results there may be flushed to 0) */
static double ulps(double y, double ref)
{
    const double smallest = sizeof(bp_real) == 4 ? FLT_MIN : DBL_MIN;
    int e;
    if (y == ref) return 0;
    if (!(fabs(ref) >= smallest)) return fabs(y - ref) / smallest;
    frexp(ref, &e); /* |ref| in [2^(e-1), 2^e): an ulp is 2^(e - 24) in float, 2^(e - 53) in double */
    return fabs(y - ref) / ldexp(1, e - (sizeof(bp_real) == 4 ? 24 : 53));
}

/* bp__exp (e^x and e^x - 1), the sigmoid, tanh and the softmax forward against libm in double, in ulps of
   bp_real, over a sweep of inputs: 0 to +-110 in steps of about 2e-3, and +-1e-40 to +-1 by factors of
   about 1.002 (plus -1e-45 in float, a subnormal).  In float builds the reference (libm's double exp,
   expm1, tanh, computed from the float input) is exact to far below a float ulp.  In double builds it is
   libm's own result, within an ulp or so, so the bounds allow it one more.  Worst measured (x86-64, gcc
   -O2 and -O3 -march=native -ffp-contract=fast, here and in a finer sweep; float, and double against long
   double): e^x 1.21 and 1.15 ulps, e^x - 1 1.30 and 1.41, sigmoid 2.23 and 2.34, tanh 2.49 and 2.67.  The
   softmax's p_j adds the rounding of l_j - m to bp_real, a relative error up to |l_j - m| ulps (PyTorch's
   float softmax rounds it too), so its bound is 4 + |l_j - m| ulps (worst measured: 0.89 of that in float,
   given l_j - m rounded 2.2 ulps); its loss within 1e-6 (float) of the reference.  Special values: +-0,
   +-inf, NaN, and where e^x is below the smallest normal number (x < -87.3 in float). */
static void test_exp_accuracy(void)
{
    const int n = 2 * 55000 + 2 * 18500;
    const double slack = sizeof(bp_real) == 4 ? 0 : 1, lo = sizeof(bp_real) == 4 ? -87.3 : -708;
    bp_tensor z = bp_tensor_new(1, n), a = bp_tensor_new(1, n);
    double worst[4] = {0, 0, 0, 0}, x;
    int i, k, under = 0;
    for (i = 0; i < 55000; i++) z.data[2 * i] = (bp_real)(i * 0.002), z.data[2 * i + 1] = -(bp_real)(i * 0.002);
    for (i = 0; i < 18500; i++) { /* 1e-40 .. 1: a subnormal in float at the start */
        z.data[110000 + 2 * i] = (bp_real)pow(10, -40 + i * (40.0 / 18499));
        z.data[110000 + 2 * i + 1] = -z.data[110000 + 2 * i];
    }
    for (i = 0; i < n; i++) { /* e^x and e^x - 1 for x <= 0 (bp__exp's domain) */
        bp_real xr = z.data[i] < 0 ? z.data[i] : -z.data[i];
        x = (double)xr;
        if (x < lo) { /* e^x below the smallest normal number: 0 or close, and e^x - 1 is -1 */
            if (!(ulps((double)bp__exp(xr, 0), exp(x)) <= 1 && bp__exp(xr, 1) == -1)) under++;
        } else {
            double e0 = ulps((double)bp__exp(xr, 0), exp(x)), e1 = ulps((double)bp__exp(xr, 1), expm1(x));
            worst[0] = e0 > worst[0] ? e0 : worst[0];
            worst[1] = e1 > worst[1] ? e1 : worst[1];
        }
    }
    bp_sigmoid_forward(&z, &a);
    for (i = 0; i < n; i++) {
        double ez, ref, u;
        x = (double)z.data[i];
        ez = exp(-fabs(x));
        ref = x >= 0 ? 1 / (1 + ez) : ez / (1 + ez);
        u = ulps((double)a.data[i], ref);
        worst[2] = u > worst[2] ? u : worst[2];
    }
    bp_tanh_forward(&z, &a);
    for (i = 0; i < n; i++) {
        double u = ulps((double)a.data[i], tanh((double)z.data[i]));
        worst[3] = u > worst[3] ? u : worst[3];
    }
    if (!(worst[0] <= 1.5 + slack && worst[1] <= 1.5 + slack && worst[2] <= 2.5 + slack && worst[3] <= 3 + slack))
        printf("  ulps: e^x %.3f, e^x - 1 %.3f, sigmoid %.3f, tanh %.3f\n", worst[0], worst[1], worst[2], worst[3]);
    CHECK(under == 0);
    CHECK(worst[0] <= 1.5 + slack);
    CHECK(worst[1] <= 1.5 + slack);
    CHECK(worst[2] <= 2.5 + slack);
    CHECK(worst[3] <= 3 + slack);

    /* special values: 0 keeps its sign through tanh, NaN stays NaN, the ends are exact */
    {
        static const double in[8] = {0, -0.0, 1, -1, 1e-300, -1e-300, 0, 0};
        bp_tensor s = bp_tensor_new(1, 8), o = bp_tensor_new(1, 8);
        for (i = 0; i < 6; i++) s.data[i] = (bp_real)in[i] * (i == 2 || i == 3 ? (bp_real)HUGE_VAL : 1);
        s.data[6] = (bp_real)NAN;
        s.data[7] = (bp_real)-NAN;
        bp_sigmoid_forward(&s, &o);
        CHECK(o.data[0] == (bp_real)0.5 && o.data[1] == (bp_real)0.5 && o.data[2] == 1 && o.data[3] == 0);
        CHECK(o.data[4] == (bp_real)0.5 && o.data[5] == (bp_real)0.5 && o.data[6] != o.data[6] && o.data[7] != o.data[7]);
        bp_tanh_forward(&s, &o);
        CHECK(o.data[0] == 0 && !signbit(o.data[0]) && o.data[1] == 0 && signbit(o.data[1]));
        CHECK(o.data[2] == 1 && o.data[3] == -1 && o.data[4] == s.data[4] && o.data[5] == s.data[5]);
        CHECK(o.data[6] != o.data[6] && o.data[7] != o.data[7]);
        CHECK(bp__exp((bp_real)-HUGE_VAL, 0) == 0 && bp__exp((bp_real)-HUGE_VAL, 1) == -1 && bp__exp(0, 0) == 1 &&
              bp__exp(0, 1) == 0 && bp__exp((bp_real)NAN, 0) != bp__exp((bp_real)NAN, 0));
        bp_tensor_free(&s);
        bp_tensor_free(&o);
    }

    /* the softmax: rows of 10 (and one row of 7 at the end: a block of 16 rows that is not full), and rows
       long enough for the maximum and sum in 8 lanes (bp__row_max, bp__row_sum): 1000 (whole lanes), 37
       (5 left over), 32 (the first length that uses them), 31 (the last that does not); logits uniform in
       (-20, 20), every 7th tripled.  Then the backward, (p - onehot) / rows, out of place and in place. */
    {
        const int rows = 1000, shape[6][2] = {{1000, 10}, {1, 7}, {10, 1000}, {27, 37}, {3, 32}, {40, 31}};
        bp_tensor l = bp_tensor_new(rows, 10), p = bp_tensor_new(rows, 10), dl = bp_tensor_new(rows, 10);
        int *labels = (int *)malloc(sizeof(int) * rows);
        bp_rng rng;
        double total = 0, worst_p = 0, loss;
        bp_rng_seed(&rng, 12);
        for (i = 0; i < rows * 10; i++)
            l.data[i] = (bp_real)((bp_rng_uniform(&rng) * 40 - 20) * (i % 7 == 0 ? 3 : 1));
        for (i = 0; i < rows; i++) labels[i] = (i * 3) % 7;
        for (k = 0; k < 6; k++) {
            int r, j, R = shape[k][0], C = shape[k][1], bad_backward = 0, bad_in_place = 0;
            bp_tensor lk = {R, C, l.data}, pk = {R, C, p.data}, dk = {R, C, dl.data};
            total = 0;
            loss = (double)bp_softmax_xent_forward(&lk, labels, &pk);
            for (r = 0; r < R; r++) {
                double m = (double)l.data[r * C], s = 0;
                for (j = 1; j < C; j++) m = (double)l.data[r * C + j] > m ? (double)l.data[r * C + j] : m;
                for (j = 0; j < C; j++) s += exp((double)l.data[r * C + j] - m);
                total += log(s) - ((double)l.data[r * C + labels[r]] - m);
                for (j = 0; j < C; j++) {
                    double d = (double)l.data[r * C + j] - m, u = ulps((double)p.data[r * C + j], exp(d) / s);
                    u = u / (4 + slack - d); /* the bound: 1 or less */
                    worst_p = u > worst_p ? u : worst_p;
                }
            }
            CHECK(fabs(loss - total / R) <= (sizeof(bp_real) == 4 ? 1e-6 : 1e-14) * (1 + fabs(total / R)));
            bp_softmax_xent_backward(&pk, labels, &dk);
            for (r = 0; r < R; r++) /* (p - 1[j = label]) / R, to 2 ulps (x87's excess precision rounds twice) */
                for (j = 0; j < C; j++)
                    bad_backward += !(ulps((double)dl.data[r * C + j], ((double)p.data[r * C + j] - (j == labels[r])) / R) <= 2);
            bp_softmax_xent_backward(&pk, labels, &pk); /* in place: the same numbers */
            for (j = 0; j < R * C; j++) bad_in_place += p.data[j] != dl.data[j];
            CHECK(bad_backward == 0);
            CHECK(bad_in_place == 0);
        }
        if (!(worst_p <= 1)) printf("  softmax: worst error %.3f of its bound\n", worst_p);
        CHECK(worst_p <= 1);
        free(labels);
        bp_tensor_free(&l);
        bp_tensor_free(&p);
        bp_tensor_free(&dl);
    }
    bp_tensor_free(&z);
    bp_tensor_free(&a);
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

/* ---- convolution and max-pooling ----------------------------------------------------------------
   By hand, against PyTorch (tests/fixtures/windows.txt: F.conv2d and F.max_pool2d in float64 autograd,
   written by tests/gen_fixtures.py), and against finite differences. */

static bp_window window(int channels, int height, int width, int kernel, int stride, int pad)
{
    bp_window g;
    g.channels = channels;
    g.height = height;
    g.width = width;
    g.kernel = kernel;
    g.stride = stride;
    g.pad = pad;
    return g;
}

static void test_conv2d_by_hand(void)
{
    /* x = [1 2 3; 4 5 6; 7 8 9], W = [1 2; 3 4], b = 0.5; kernel 2, stride 1, pad 0: y is 2x2,
       y[0][0] = 1*1 + 2*2 + 4*3 + 5*4 = 37, y[0][1] = 2 + 6 + 15 + 24 = 47, y[1][0] = 67, y[1][1] = 77 */
    const double x_[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, W_[] = {1, 2, 3, 4}, b_[] = {0.5};
    const double y_[] = {37.5, 47.5, 67.5, 77.5};
    /* dy = [1 0; 0 1]:  dW = patch(0,0) + patch(1,1) = [1 2; 4 5] + [5 6; 8 9];  db = 2;
       dx = W placed at (0,0) plus W placed at (1,1) (col2im: where they overlap, x[1][1], they add) */
    const double dy_[] = {1, 0, 0, 1}, dW_[] = {6, 8, 12, 14}, db_[] = {2}, dx_[] = {1, 2, 0, 3, 5, 2, 0, 3, 4};
    /* pad 1, stride 2: windows at (-1,-1), (-1,1), (1,-1), (1,1) over the zero-padded 5x5 image:
       x00*W11 = 4;  x01*W10 + x02*W11 = 6 + 12;  x10*W01 + x20*W11 = 8 + 28;  5 + 12 + 24 + 36 */
    const double yp_[] = {4, 18, 36, 77};
    bp_window g = window(1, 3, 3, 2, 1, 0), gp = window(1, 3, 3, 2, 2, 1);
    bp_tensor x = make(1, 9, x_), W = make(1, 4, W_), b = make(1, 1, b_), y = bp_tensor_new(1, 4);
    bp_tensor col = bp_tensor_new(4, 4), dy = make(1, 4, dy_), dx = bp_tensor_new(1, 9), dW = bp_tensor_new(1, 4);
    bp_tensor db = bp_tensor_new(1, 1), x2 = bp_tensor_new(2, 9), y2 = bp_tensor_new(2, 4);
    long mallocs = test_mallocs;
    CHECK(bp_window_out_height(&g) == 2 && bp_window_out_width(&g) == 2);
    CHECK(bp_window_out_height(&gp) == 2 && bp_window_out_width(&gp) == 2);
    bp_conv2d_forward(&g, &x, &W, &b, &y, &col);
    CHECK(close_to(&y, y_, 0));
    fill(&dW, 99); /* results overwrite, never accumulate */
    fill(&db, 99);
    fill(&dx, 99);
    bp_conv2d_backward(&g, &x, &W, &dy, &dx, &dW, &db, &col);
    CHECK(close_to(&dW, dW_, 0));
    CHECK(close_to(&db, db_, 0));
    CHECK(close_to(&dx, dx_, 0));
    fill(&dW, 99);
    bp_conv2d_backward(&g, &x, &W, &dy, NULL, &dW, NULL, &col); /* dx and db skipped */
    CHECK(close_to(&dW, dW_, 0));
    bp_conv2d_forward(&gp, &x, &W, NULL, &y, &col);
    CHECK(close_to(&y, yp_, 0));
    /* two images: each as alone */
    memcpy(x2.data, x.data, 9 * sizeof(bp_real));
    memcpy(x2.data + 9, x.data, 9 * sizeof(bp_real));
    x2.data[9] = 0; /* the second image: x00 = 0, so its y00 = 4 - 4 = 0 */
    bp_conv2d_forward(&gp, &x2, &W, NULL, &y2, &col);
    CHECK(y2.data[0] == 4 && y2.data[4] == 0 && y2.data[5] == 18 && y2.data[7] == 77);
    CHECK(test_mallocs == mallocs);
    EXPECT_NO_ERROR();

    /* empty: no images (dW and db are then 0), and no filters */
    {
        bp_tensor x0 = {0, 9, NULL}, y0 = {0, 4, NULL}, W0 = {0, 4, NULL}, yf0 = {1, 0, NULL}, b0 = {1, 0, NULL};
        bp_conv2d_forward(&g, &x0, &W, &b, &y0, &col);
        bp_conv2d_backward(&g, &x0, &W, &y0, &x0, &dW, &db, &col);
        CHECK(all_equal(&dW, 0) && all_equal(&db, 0));
        bp_conv2d_forward(&g, &x, &W0, &b0, &yf0, &col);
        fill(&dx, 99);
        bp_conv2d_backward(&g, &x, &W0, &yf0, &dx, &W0, &b0, &col);
        CHECK(all_equal(&dx, 0));
        EXPECT_NO_ERROR();
    }

    /* argument checks: one message naming the shapes, nothing written */
    fill(&y, 7);
    fill(&dx, 7);
    fill(&dW, 7);
    fill(&col, 7);
    {
        bp_window bad = g;
        bp_conv2d_forward(NULL, &x, &W, &b, &y, &col);
        EXPECT_ERROR("bp_conv2d_forward", "the window g is NULL");
        bad.kernel = 0;
        bp_conv2d_forward(&bad, &x, &W, &b, &y, &col);
        EXPECT_ERROR("bp_conv2d_forward", "window 1x3x3 (CxHxW), kernel 0, stride 1, pad 0", ">= 1");
        bad = g;
        bad.stride = 0;
        bp_conv2d_backward(&bad, &x, &W, &dy, &dx, &dW, &db, &col);
        EXPECT_ERROR("bp_conv2d_backward", "stride 0");
        bad = g;
        bad.pad = -1;
        bp_conv2d_forward(&bad, &x, &W, &b, &y, &col);
        EXPECT_ERROR("bp_conv2d_forward", "pad -1");
        bad = g;
        bad.kernel = 4;
        bp_conv2d_forward(&bad, &x, &W, &b, &y, &col);
        EXPECT_ERROR("bp_conv2d_forward", "kernel 4", "larger than the padded image");
        bad.pad = 1; /* a 4x4 kernel fits the 5x5 padded image: now the shapes are wrong */
        bp_conv2d_forward(&bad, &x, &W, &b, &y, &col);
        EXPECT_ERROR("bp_conv2d_forward", "W is 1x4 but must be 1x16");
        bad = g;
        bad.channels = 1 << 16;
        bad.height = bad.width = 1 << 8;
        CHECK(bp_window_out_height(&bad) == -1);
        EXPECT_ERROR("bp_window_out_height", "more than INT_MAX");
        CHECK(bp_window_out_width(NULL) == -1);
        EXPECT_ERROR("bp_window_out_width", "NULL");
        bad = g;
        bad.width = 4;
        bp_conv2d_forward(&bad, &x, &W, &b, &y, &col);
        EXPECT_ERROR("bp_conv2d_forward", "x is 1x9 but must be 1x12", "window 1x3x4 (CxHxW), kernel 2");
    }
    bp_conv2d_forward(&g, &x, &W, &b, &y, &y2);
    EXPECT_ERROR("bp_conv2d_forward", "col is 2x4 but must be 4x4");
    bp_conv2d_forward(&g, &x, &W, &b, &y2, &col);
    EXPECT_ERROR("bp_conv2d_forward", "y is 2x4 but must be 1x4");
    bp_conv2d_forward(&g, &x, &W, &dy, &y, &col);
    EXPECT_ERROR("bp_conv2d_forward", "b is 1x4 but must be 1x1");
    bp_conv2d_forward(&g, &x, &W, &b, &y, &x);
    EXPECT_ERROR("bp_conv2d_forward", "col is 1x9 but must be 4x4");
    bp_conv2d_backward(&g, &x, &W, &dy, &dx, &dW, &db, &dy);
    EXPECT_ERROR("bp_conv2d_backward", "col is 1x4 but must be 4x4");
    bp_conv2d_backward(&g, &x, &W, &dy, &dx, &dy, &db, &col);
    EXPECT_ERROR("bp_conv2d_backward", "shares memory");
    bp_conv2d_backward(&g, &x, &W, &dy, &dx, &x2, &db, &col);
    EXPECT_ERROR("bp_conv2d_backward", "dW is 2x9 but must be 1x4");
    CHECK(all_equal(&y, 7) && all_equal(&dx, 7) && all_equal(&dW, 7) && all_equal(&col, 7));
    bp_tensor_free(&x);
    bp_tensor_free(&W);
    bp_tensor_free(&b);
    bp_tensor_free(&y);
    bp_tensor_free(&col);
    bp_tensor_free(&dy);
    bp_tensor_free(&dx);
    bp_tensor_free(&dW);
    bp_tensor_free(&db);
    bp_tensor_free(&x2);
    bp_tensor_free(&y2);
}

static void test_maxpool2d_by_hand(void)
{
    /* x (3x4) = [1 3 3 0; 2 3 1 -1; -5 -6 -7 -8].  Kernel 2, stride 2: windows [1 3; 2 3] and [3 0; 1 -1]:
       y = [3 3], argmax = [1 2] (the first 3 in row-major order).  Kernel 3, stride 2, pad 1: windows over
       rows 0-1 / 1-2 and columns 0-1 / 1-3: y = [3 3 3 3], argmax = [1 1 5 5]; dy = [1 2 3 4] goes to
       dx[1] = 1 + 2 and dx[5] = 3 + 4 (the overlapping windows add up). */
    const double x_[] = {1, 3, 3, 0, 2, 3, 1, -1, -5, -6, -7, -8}, y_[] = {3, 3}, yp_[] = {3, 3, 3, 3};
    const double dy_[] = {1, 2, 3, 4}, dx_[] = {0, 3, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0};
    bp_window g = window(1, 3, 4, 2, 2, 0), gp = window(1, 3, 4, 3, 2, 1);
    bp_tensor x = make(1, 12, x_), y = bp_tensor_new(1, 2), yp = bp_tensor_new(1, 4), dy = make(1, 4, dy_);
    bp_tensor dx = bp_tensor_new(1, 12);
    int argmax[4] = {9, 9, 9, 9};
    long mallocs = test_mallocs;
    bp_maxpool2d_forward(&g, &x, &y, argmax);
    CHECK(close_to(&y, y_, 0) && argmax[0] == 1 && argmax[1] == 2 && argmax[2] == 9);
    bp_maxpool2d_forward(&gp, &x, &yp, argmax);
    CHECK(close_to(&yp, yp_, 0) && argmax[0] == 1 && argmax[1] == 1 && argmax[2] == 5 && argmax[3] == 5);
    fill(&dx, 99);
    bp_maxpool2d_backward(&gp, argmax, &dy, &dx);
    CHECK(close_to(&dx, dx_, 0));
    CHECK(test_mallocs == mallocs);
    /* a NaN wins over any number; of two NaNs the last; all -infinity: the first pixel */
    {
        bp_window g2 = window(1, 2, 2, 2, 1, 0);
        bp_tensor n = bp_tensor_new(1, 4), m = bp_tensor_new(1, 1);
        n.data[0] = 1;
        n.data[1] = (bp_real)NAN;
        n.data[2] = (bp_real)NAN;
        n.data[3] = 2;
        bp_maxpool2d_forward(&g2, &n, &m, argmax);
        CHECK(isnan((double)m.data[0]) && argmax[0] == 2);
        fill(&n, -(bp_real)INFINITY);
        bp_maxpool2d_forward(&g2, &n, &m, argmax);
        CHECK(m.data[0] == -(bp_real)INFINITY && argmax[0] == 0);
        bp_tensor_free(&n);
        bp_tensor_free(&m);
    }
    EXPECT_NO_ERROR();

    /* argument checks */
    fill(&y, 7);
    fill(&dx, 7);
    argmax[0] = argmax[1] = argmax[2] = argmax[3] = 1;
    {
        bp_window bad = gp;
        bad.pad = 2; /* more than kernel/2: fine for a convolution, not for pooling */
        bp_maxpool2d_forward(&bad, &x, &yp, argmax);
        EXPECT_ERROR("bp_maxpool2d_forward", "kernel 3, stride 2, pad 2", "pad <= kernel/2");
        bad = gp;
        bad.kernel = 6;
        bp_maxpool2d_backward(&bad, argmax, &dy, &dx);
        EXPECT_ERROR("bp_maxpool2d_backward", "larger than the padded image");
    }
    bp_maxpool2d_forward(&g, &x, &y, NULL);
    EXPECT_ERROR("bp_maxpool2d_forward", "argmax is NULL", "y is 1x2");
    bp_maxpool2d_forward(&g, &x, &yp, argmax);
    EXPECT_ERROR("bp_maxpool2d_forward", "y is 1x4 but must be 1x2");
    bp_maxpool2d_forward(&g, &x, &y, (int *)(void *)x.data);
    EXPECT_ERROR("bp_maxpool2d_forward", "argmax (2 ints) shares memory with x");
    bp_maxpool2d_backward(&gp, NULL, &dy, &dx);
    EXPECT_ERROR("bp_maxpool2d_backward", "argmax is NULL", "dy is 1x4");
    argmax[2] = 12;
    bp_maxpool2d_backward(&gp, argmax, &dy, &dx);
    EXPECT_ERROR("bp_maxpool2d_backward", "argmax[2] is 12", "0..11");
    argmax[2] = -1;
    bp_maxpool2d_backward(&gp, argmax, &dy, &dx);
    EXPECT_ERROR("bp_maxpool2d_backward", "argmax[2] is -1");
    bp_maxpool2d_backward(&gp, argmax, &dy, &x);
    EXPECT_ERROR("bp_maxpool2d_backward", "argmax[2] is -1");
    argmax[2] = 1;
    bp_maxpool2d_backward(&gp, argmax, &y, &dx);
    EXPECT_ERROR("bp_maxpool2d_backward", "dy is 1x2 but must be 1x4");
    bp_maxpool2d_backward(&gp, (const int *)(const void *)dx.data, &dy, &dx);
    EXPECT_ERROR("bp_maxpool2d_backward", "argmax (4 ints) shares memory with dx");
    CHECK(all_equal(&y, 7) && all_equal(&dx, 7) && argmax[0] == 1 && argmax[3] == 1);
    /* empty: no images, argmax may then be NULL */
    {
        bp_tensor x0 = {0, 12, NULL}, y0 = {0, 2, NULL};
        bp_maxpool2d_forward(&g, &x0, &y0, NULL);
        bp_maxpool2d_backward(&g, NULL, &y0, &x0);
        EXPECT_NO_ERROR();
    }
    bp_tensor_free(&x);
    bp_tensor_free(&y);
    bp_tensor_free(&yp);
    bp_tensor_free(&dy);
    bp_tensor_free(&dx);
}

/* The worst error of t against want, relative to want's largest element (as walkthrough_vs_numpy) */
static double worst_relative(const bp_tensor *t, const bp_tensor *want)
{
    double scale = 0, worst = 0;
    int i, n = (int)element_count(want);
    if (!same_shape(t, want)) return HUGE_VAL;
    for (i = 0; i < n; i++)
        if (fabs((double)want->data[i]) > scale) scale = fabs((double)want->data[i]);
    for (i = 0; i < n; i++) {
        double e = fabs((double)t->data[i] - (double)want->data[i]);
        if (e > worst) worst = e;
    }
    return scale > 0 ? worst / scale : worst;
}

/* BP_TEST_REPORT=1 in the environment: print the worst relative error per function (for the docs) */
static void report_worst(const char *what, double worst)
{
    if (getenv("BP_TEST_REPORT")) printf("  %-24s worst relative error vs PyTorch %.2g\n", what, worst);
}

static void test_conv2d_vs_pytorch(void)
{
    static const char *names[] = {"x", "W", "b", "dy", "y", "dx", "dW", "db"};
    FILE *f = open_fixture("windows.txt");
    double worst[4] = {0, 0, 0, 0}; /* y, dx, dW, db */
    int cases = 0;
    if (!f) return;
    for (;;) {
        bp_tensor geom, t[8], y, dx, dW, db, col;
        bp_window g;
        int k, B, Fn, has_bias;
        double e[4];
        if (!read_block(f, "conv", &geom)) break;
        B = (int)geom.data[0];
        g = window((int)geom.data[1], (int)geom.data[2], (int)geom.data[3], (int)geom.data[5], (int)geom.data[6],
                   (int)geom.data[7]);
        Fn = (int)geom.data[4];
        has_bias = geom.data[8] != 0;
        for (k = 0; k < 8; k++) CHECK(read_block(f, names[k], &t[k]));
        y = bp_tensor_new(B, Fn * bp_window_out_height(&g) * bp_window_out_width(&g));
        dx = bp_tensor_new(B, g.channels * g.height * g.width);
        dW = bp_tensor_new(Fn, g.channels * g.kernel * g.kernel);
        db = bp_tensor_new(1, Fn);
        col = bp_tensor_new(g.channels * g.kernel * g.kernel, bp_window_out_height(&g) * bp_window_out_width(&g));
        bp_conv2d_forward(&g, &t[0], &t[1], has_bias ? &t[2] : NULL, &y, &col);
        bp_conv2d_backward(&g, &t[0], &t[1], &t[3], &dx, &dW, has_bias ? &db : NULL, &col);
        EXPECT_NO_ERROR();
        if (!has_bias) memcpy(db.data, t[7].data, element_count(&db) * sizeof(bp_real)); /* (no db: torch has none) */
        e[0] = worst_relative(&y, &t[4]);
        e[1] = worst_relative(&dx, &t[5]);
        e[2] = worst_relative(&dW, &t[6]);
        e[3] = worst_relative(&db, &t[7]);
        for (k = 0; k < 4; k++) {
            if (!(e[k] <= REFERENCE_TOL))
                printf("  case %d (%dx%dx%dx%d, kernel %d, stride %d, pad %d): %s differs by %g\n", cases, B,
                       g.channels, g.height, g.width, g.kernel, g.stride, g.pad, names[4 + k], e[k]);
            CHECK(e[k] <= REFERENCE_TOL);
            if (e[k] > worst[k]) worst[k] = e[k];
        }
        cases++;
        bp_tensor_free(&geom);
        for (k = 0; k < 8; k++) bp_tensor_free(&t[k]);
        bp_tensor_free(&y);
        bp_tensor_free(&dx);
        bp_tensor_free(&dW);
        bp_tensor_free(&db);
        bp_tensor_free(&col);
    }
    fclose(f);
    CHECK(cases == 8);
    report_worst("bp_conv2d_forward y", worst[0]);
    report_worst("bp_conv2d_backward dx", worst[1]);
    report_worst("bp_conv2d_backward dW", worst[2]);
    report_worst("bp_conv2d_backward db", worst[3]);
}

static void test_maxpool2d_vs_pytorch(void)
{
    static const char *names[] = {"nan", "x", "dy", "y", "argmax", "dx"};
    FILE *f = open_fixture("windows.txt");
    double worst[2] = {0, 0}; /* y, dx */
    int cases = 0, nan_cases = 0;
    long skip = 0;
    char line[64];
    if (!f) return;
    /* skip the convolutions: count the reads up to the first "pool" line, then read that many again from
       the start (ftell's offsets in a text-mode file are not byte offsets on Windows: a seek missed) */
    while (fgets(line, sizeof line, f) && strncmp(line, "pool ", 5) != 0) skip++;
    rewind(f);
    while (skip-- > 0 && fgets(line, sizeof line, f)) continue;
    for (;;) {
        bp_tensor geom, t[6], y, dx;
        bp_window g;
        int k, i, n, *argmax, same = 1;
        if (!read_block(f, "pool", &geom)) break;
        g = window((int)geom.data[1], (int)geom.data[2], (int)geom.data[3], (int)geom.data[4], (int)geom.data[5],
                   (int)geom.data[6]);
        for (k = 0; k < 6; k++) CHECK(read_block(f, names[k], &t[k]));
        for (i = 0; i < t[0].cols; i++) t[1].data[(int)t[0].data[i]] = (bp_real)NAN;
        nan_cases += t[0].cols > 0;
        y = bp_tensor_new(t[3].rows, t[3].cols);
        dx = bp_tensor_new(t[5].rows, t[5].cols);
        n = (int)element_count(&y);
        argmax = (int *)malloc((size_t)n * sizeof(int) + 1);
        bp_maxpool2d_forward(&g, &t[1], &y, argmax);
        bp_maxpool2d_backward(&g, argmax, &t[2], &dx);
        EXPECT_NO_ERROR();
        for (i = 0; i < n; i++) { /* torch's argmax exactly; y NaN where its pixel is NaN, else torch's y */
            int plane = i / (n / (t[1].rows * g.channels));
            double chosen = (double)t[1].data[plane * g.height * g.width + argmax[i]];
            same &= argmax[i] == (int)t[4].data[i];
            if (isnan(chosen)) {
                same &= isnan((double)y.data[i]) != 0;
                y.data[i] = 0; /* as written in the fixture */
            }
        }
        if (!same) printf("  pool case %d: argmax or NaN differs from torch\n", cases);
        CHECK(same);
        for (k = 0; k < 2; k++) {
            double e = worst_relative(k ? &dx : &y, &t[k ? 5 : 3]);
            if (!(e <= REFERENCE_TOL)) printf("  pool case %d: %s differs by %g\n", cases, k ? "dx" : "y", e);
            CHECK(e <= REFERENCE_TOL);
            if (e > worst[k]) worst[k] = e;
        }
        cases++;
        free(argmax);
        bp_tensor_free(&geom);
        for (k = 0; k < 6; k++) bp_tensor_free(&t[k]);
        bp_tensor_free(&y);
        bp_tensor_free(&dx);
    }
    fclose(f);
    CHECK(cases == 8 && nan_cases == 1);
    report_worst("bp_maxpool2d_forward y", worst[0]);
    report_worst("bp_maxpool2d_backward dx", worst[1]);
}

/* Finite differences: L = sum(r * y) for a fixed random r, so dL/dy = r.  conv -> maxpool, each checked
   alone and composed: dx, dW, db of the convolution and dx of the pooling.  The loss is summed in double
   and returned minus its value at the start (offset): the gradient is the same, and float then rounds
   the small change the step makes, not the large sum. */
typedef struct window_net {
    bp_window conv, pool;
    bp_tensor x, W, b, y, col, r, p, rp; /* p: the pooled y; rp: its r */
    int *argmax, stage;                  /* stage 0: L = sum(r*conv(x)); 1: sum(rp*pool(conv(x))); 2: sum(rp*pool(y)) */
    double offset;
} window_net;

static double dot(const bp_tensor *t, const bp_tensor *r)
{
    double sum = 0;
    int i;
    for (i = 0; i < (int)element_count(t); i++) sum += (double)t->data[i] * (double)r->data[i];
    return sum;
}

static bp_real window_loss(void *ctx)
{
    window_net *n = (window_net *)ctx;
    if (n->stage < 2) bp_conv2d_forward(&n->conv, &n->x, &n->W, &n->b, &n->y, &n->col);
    if (n->stage == 0) return (bp_real)(dot(&n->y, &n->r) - n->offset);
    bp_maxpool2d_forward(&n->pool, &n->y, &n->p, n->argmax);
    return (bp_real)(dot(&n->p, &n->rp) - n->offset);
}

/* bp_gradcheck of param against grad at the given stage, the offset set to the loss there */
static bp_real window_check(window_net *n, int stage, bp_tensor *param, const bp_tensor *grad)
{
    n->stage = stage;
    n->offset = 0;
    window_loss(n);
    n->offset = stage == 0 ? dot(&n->y, &n->r) : dot(&n->p, &n->rp);
    return bp_gradcheck(window_loss, n, param, grad, GRADCHECK_EPS);
}

static void test_gradcheck_conv2d_maxpool2d(void)
{
    /* (C, H, W, F, K, S, P) of the convolution, then (K, S, P) of the pooling over its output */
    static const int geoms[3][10] = {{2, 7, 5, 3, 3, 2, 1, 2, 2, 0}, {3, 9, 11, 2, 5, 3, 2, 3, 1, 1},
                                     {1, 6, 6, 4, 3, 1, 0, 3, 2, 1}};
    static const char *what[4] = {"conv dx", "conv dW", "conv db", "maxpool dx"};
    const double tol = GRADCHECK_TOL;
    double worst[4] = {0, 0, 0, 0};
    bp_rng rng;
    int k, i, B = 2;
    bp_rng_seed(&rng, 13);
    for (k = 0; k < 3; k++) {
        const int *q = geoms[k];
        window_net n;
        bp_tensor dy, dx, dW, db, dp;
        int OH, OW, POH, POW, F = q[3];
        bp_real e[4];
        n.conv = window(q[0], q[1], q[2], q[4], q[5], q[6]);
        OH = bp_window_out_height(&n.conv);
        OW = bp_window_out_width(&n.conv);
        n.pool = window(F, OH, OW, q[7], q[8], q[9]);
        POH = bp_window_out_height(&n.pool);
        POW = bp_window_out_width(&n.pool);
        n.x = bp_tensor_new(B, q[0] * q[1] * q[2]);
        n.W = bp_tensor_new(F, q[0] * q[4] * q[4]);
        n.b = bp_tensor_new(1, F);
        n.y = bp_tensor_new(B, F * OH * OW);
        n.col = bp_tensor_new(q[0] * q[4] * q[4], OH * OW);
        n.r = bp_tensor_new(B, F * OH * OW);
        n.p = bp_tensor_new(B, F * POH * POW);
        n.rp = bp_tensor_new(B, F * POH * POW);
        n.argmax = (int *)malloc(element_count(&n.p) * sizeof(int));
        dy = bp_tensor_new(B, F * OH * OW);
        dx = bp_tensor_new(B, q[0] * q[1] * q[2]);
        dW = bp_tensor_new(F, q[0] * q[4] * q[4]);
        db = bp_tensor_new(1, F);
        dp = bp_tensor_new(B, F * OH * OW);
        randomize(&n.x, &rng);
        randomize(&n.W, &rng);
        randomize(&n.b, &rng);
        randomize(&n.r, &rng);
        randomize(&n.rp, &rng);
        /* x, W and r positive, at least 0.5: then no element of dx, dW or db is near 0 (a pixel at the edge,
           under one window, gets one product W r), where the check's rounding error, relative to the
           element, would be large */
        for (i = 0; i < (int)element_count(&n.x); i++) n.x.data[i] = (bp_real)fabs((double)n.x.data[i]) + (bp_real)0.5;
        for (i = 0; i < (int)element_count(&n.W); i++) n.W.data[i] = (bp_real)fabs((double)n.W.data[i]) + (bp_real)0.5;
        for (i = 0; i < (int)element_count(&n.r); i++) n.r.data[i] = (bp_real)fabs((double)n.r.data[i]) + (bp_real)0.5;
        /* the convolution alone: dy = r */
        bp_conv2d_backward(&n.conv, &n.x, &n.W, &n.r, &dx, &dW, &db, &n.col);
        e[0] = window_check(&n, 0, &n.x, &dx);
        e[1] = window_check(&n, 0, &n.W, &dW);
        e[2] = window_check(&n, 0, &n.b, &db);
        /* the pooling alone, on y's values replaced by distinct numbers 0.1 apart (no tie within eps, so
           the finite differences never move an argmax): L = sum(rp * maxpool(y)) with respect to y */
        for (i = 0; i < (int)element_count(&n.y); i++)
            n.y.data[i] = (bp_real)(0.1 * ((i * 7919) % (int)element_count(&n.y)) - 1);
        bp_maxpool2d_forward(&n.pool, &n.y, &n.p, n.argmax);
        bp_maxpool2d_backward(&n.pool, n.argmax, &n.rp, &dp);
        e[3] = window_check(&n, 2, &n.y, &dp);
        for (i = 0; i < 4; i++) {
            if (!(e[i] < tol)) printf("  geometry %d %s: %g\n", k, what[i], (double)e[i]);
            CHECK(e[i] < tol);
            if ((double)e[i] > worst[i]) worst[i] = (double)e[i];
        }
#ifdef BACKPROP_DOUBLE
        /* composed: conv -> maxpool -> sum(rp * p); dy from the pooling's backward.  Only in double: float's
           step (1e-2) moves some y past a neighbour in its window, which changes the argmax (a kink). */
        for (i = 0; i < (int)element_count(&n.rp); i++)
            n.rp.data[i] = (bp_real)fabs((double)n.rp.data[i]) + (bp_real)0.1;
        n.stage = 1;
        window_loss(&n);
        bp_maxpool2d_backward(&n.pool, n.argmax, &n.rp, &dy);
        bp_conv2d_backward(&n.conv, &n.x, &n.W, &dy, &dx, &dW, &db, &n.col);
        e[0] = window_check(&n, 1, &n.W, &dW);
        e[1] = window_check(&n, 1, &n.b, &db);
        if (!(e[0] < tol && e[1] < tol)) printf("  geometry %d composed: dW %g db %g\n", k, (double)e[0], (double)e[1]);
        CHECK(e[0] < tol && e[1] < tol);
#else
        (void)dy;
#endif
        EXPECT_NO_ERROR();
        free(n.argmax);
        bp_tensor_free(&n.x);
        bp_tensor_free(&n.W);
        bp_tensor_free(&n.b);
        bp_tensor_free(&n.y);
        bp_tensor_free(&n.col);
        bp_tensor_free(&n.r);
        bp_tensor_free(&n.p);
        bp_tensor_free(&n.rp);
        bp_tensor_free(&dy);
        bp_tensor_free(&dx);
        bp_tensor_free(&dW);
        bp_tensor_free(&db);
        bp_tensor_free(&dp);
    }
    if (getenv("BP_TEST_REPORT"))
        for (i = 0; i < 4; i++) printf("  %-24s worst gradcheck error %.2g\n", what[i], worst[i]);
}

/* ---- normalisation and dropout, by hand ---------------------------------------------------------- */

static void test_layernorm_by_hand(void)
{
    /* x = [1 3; 6 2], gamma = [2 -1], beta = [1 1], eps = 3.  Row 1: mean 2, var 1, rstd 1/sqrt(1+3) = 0.5,
       xhat = [-0.5 0.5], y = [2*-0.5+1, -1*0.5+1] = [0 0.5].  Row 2: mean 4, var 4, rstd s = 1/sqrt(7),
       xhat = [2s -2s], y = [1+4s, 1+2s].
       dy = [1 0; 0 1].  Row 1: g = dy*gamma = [2 0], mean(g) = 1, mean(g xhat) = -0.5,
       dx = 0.5 ([2 0] - 1 - [-0.5 0.5](-0.5)) = [0.375 -0.375].  Row 2: g = [0 -1], mean(g) = -0.5,
       mean(g xhat) = s, dx = s ([0 -1] + 0.5 - [2s -2s] s) = s [3/14 -3/14].
       dgamma = sum over rows of dy xhat = [-0.5, -2s];  dbeta = [1 1]. */
    const double s = 0.3779644730092272;
    const double x_[] = {1, 3, 6, 2}, gamma_[] = {2, -1}, beta_[] = {1, 1}, dy_[] = {1, 0, 0, 1};
    const double y_[] = {0, 0.5, 2.511857892036909, 1.7559289460184544}, mean_[] = {2, 4}, rstd_[] = {0.5, s};
    const double dx_[] = {0.375, -0.375, 0.08099238707340582, -0.08099238707340582};
    const double dgamma_[] = {-0.5, -0.7559289460184544}, dbeta_[] = {1, 1};
    const double tol = 4 * REAL_EPS;
    bp_tensor x = make(2, 2, x_), gamma = make(1, 2, gamma_), beta = make(1, 2, beta_), dy = make(2, 2, dy_);
    bp_tensor y = make(2, 2, NULL), mean = make(2, 1, NULL), rstd = make(2, 1, NULL), dx = make(2, 2, NULL);
    bp_tensor dgamma = make(1, 2, NULL), dbeta = make(1, 2, NULL), copy = make(2, 2, NULL), wrong = make(2, 1, NULL);
    long mallocs = test_mallocs;
    fill(&dgamma, 99); /* gradients overwrite */
    bp_layernorm_forward(&x, &gamma, &beta, 3, &y, &mean, &rstd);
    CHECK(close_to(&y, y_, tol) && close_to(&mean, mean_, 0) && close_to(&rstd, rstd_, tol));
    bp_layernorm_backward(&x, &gamma, &mean, &rstd, &dy, &dx, &dgamma, &dbeta);
    CHECK(close_to(&dx, dx_, tol) && close_to(&dgamma, dgamma_, tol) && close_to(&dbeta, dbeta_, 0));
    fill(&dx, 99);
    bp_layernorm_backward(&x, &gamma, &mean, &rstd, &dy, &dx, NULL, NULL); /* parameters' gradients skipped */
    CHECK(close_to(&dx, dx_, tol));
    memcpy(copy.data, x.data, 4 * sizeof(bp_real)); /* in place: the same bits */
    bp_layernorm_forward(&copy, &gamma, &beta, 3, &copy, &mean, &rstd);
    CHECK(same_bits(&copy, &y));
    memcpy(copy.data, dy.data, 4 * sizeof(bp_real));
    bp_layernorm_backward(&x, &gamma, &mean, &rstd, &copy, &copy, NULL, &dbeta);
    CHECK(same_bits(&copy, &dx));
    CHECK(test_mallocs == mallocs);
    EXPECT_NO_ERROR();

    /* argument checks: one message naming the shapes, nothing written */
    fill(&y, 5);
    fill(&mean, 5);
    fill(&dx, 5);
    fill(&dgamma, 5);
    bp_layernorm_forward(&x, &gamma, &beta, 0, &y, &mean, &rstd);
    EXPECT_ERROR("bp_layernorm_forward", "eps is 0 (x is 2x2; eps must be > 0)");
    bp_layernorm_forward(&x, &gamma, &beta, (bp_real)NAN, &y, &mean, &rstd);
    EXPECT_ERROR("bp_layernorm_forward", "eps is nan");
    bp_layernorm_forward(&x, &gamma, &beta, -1, &y, &mean, &rstd);
    EXPECT_ERROR("bp_layernorm_forward", "eps is -1");
    bp_layernorm_forward(&x, &gamma, &beta, 3, &y, &gamma, &rstd);
    EXPECT_ERROR("bp_layernorm_forward", "x is 2x2 but mean is 1x2 (it must be 2x1)");
    bp_layernorm_forward(&x, &wrong, &beta, 3, &y, &mean, &rstd);
    EXPECT_ERROR("bp_layernorm_forward", "x is 2x2 but gamma is 2x1 (it must be 1x2)");
    bp_layernorm_forward(&x, &gamma, &beta, 3, &wrong, &mean, &rstd);
    EXPECT_ERROR("bp_layernorm_forward", "x is 2x2 but y is 2x1 (it must be 2x2)");
    bp_layernorm_forward(&x, &gamma, NULL, 3, &y, &mean, &rstd);
    EXPECT_ERROR("bp_layernorm_forward", "beta is NULL");
    bp_layernorm_forward(&x, &gamma, &beta, 3, &y, &mean, &mean);
    EXPECT_ERROR("bp_layernorm_forward", "mean (2x1) shares memory with rstd (2x1)");
    {
        bp_tensor mean_on_x = {2, 1, x.data};
        bp_layernorm_forward(&x, &gamma, &beta, 3, &y, &mean_on_x, &rstd);
        EXPECT_ERROR("bp_layernorm_forward", "mean (2x1) shares memory with x (2x2)");
    }
    bp_layernorm_backward(&x, &gamma, &mean, &rstd, &dy, &dx, &dbeta, &dbeta);
    EXPECT_ERROR("bp_layernorm_backward", "dgamma (1x2) shares memory with dbeta (1x2)");
    bp_layernorm_backward(&x, &gamma, &mean, &rstd, &dy, &x, NULL, NULL);
    EXPECT_ERROR("bp_layernorm_backward", "dx (2x2) shares memory with x (2x2)");
    bp_layernorm_backward(&x, &gamma, &mean, &rstd, &wrong, &dx, NULL, NULL);
    EXPECT_ERROR("bp_layernorm_backward", "x is 2x2 but dy is 2x1 (it must be 2x2)");
    bp_layernorm_backward(&x, &gamma, &mean, &rstd, &dy, &dx, &wrong, NULL);
    EXPECT_ERROR("bp_layernorm_backward", "x is 2x2 but dgamma is 2x1 (it must be 1x2)");
    bp_layernorm_backward(&x, &gamma, &mean, NULL, &dy, &dx, NULL, NULL);
    EXPECT_ERROR("bp_layernorm_backward", "rstd is NULL");
    CHECK(all_equal(&y, 5) && all_equal(&mean, 5) && all_equal(&dx, 5) && all_equal(&dgamma, 5));

    /* empty: no rows, or no features (the mean of no numbers is 0: rstd = 1/sqrt(eps)) */
    {
        bp_tensor x0 = {3, 0, NULL}, g0 = {1, 0, NULL}, m3 = make(3, 1, NULL), r3 = make(3, 1, NULL);
        bp_layernorm_forward(&x0, &g0, &g0, (bp_real)0.25, &x0, &m3, &r3);
        CHECK(all_equal(&m3, 0) && all_equal(&r3, 2));
        bp_layernorm_backward(&x0, &g0, &m3, &r3, &x0, &x0, &g0, &g0);
        EXPECT_NO_ERROR();
        bp_tensor_free(&m3);
        bp_tensor_free(&r3);
    }
    bp_tensor_free(&x);
    bp_tensor_free(&gamma);
    bp_tensor_free(&beta);
    bp_tensor_free(&dy);
    bp_tensor_free(&y);
    bp_tensor_free(&mean);
    bp_tensor_free(&rstd);
    bp_tensor_free(&dx);
    bp_tensor_free(&dgamma);
    bp_tensor_free(&dbeta);
    bp_tensor_free(&copy);
    bp_tensor_free(&wrong);
}

static void test_batchnorm_by_hand(void)
{
    /* Layer norm's numbers, by columns: x = [1 6; 3 2] has the columns [1 3] (mean 2, var 1, rstd 0.5 with
       eps = 3) and [6 2] (mean 4, var 4, rstd s = 1/sqrt(7)).  gamma = [2 -1], beta = [1 1]:
       y = [2(-0.5)+1, -(2s)+1; 2(0.5)+1, -(-2s)+1] = [0, 1-2s; 2, 1+2s].
       dy = [1 0; 0 1].  Column 1: dbeta = 1, dgamma = -0.5, dx = 2*0.5 ([1 0] - ([1 1] + [-0.5 0.5](-0.5))/2)
       = [0.375 -0.375].  Column 2: dbeta = 1, dgamma = -2s, dx = -s ([0 1] - ([1 1] + [2s -2s](-2s))/2)
       = s [3/14 -3/14].
       Running statistics from this x (B = 2), momentum 0.5, from (0, 1): the unbiased variances are
       [1 4] * 2/1 = [2 8], so running_mean = 0.5*0 + 0.5*[2 4] = [1 2] and running_var = 0.5*1 + 0.5*[2 8]
       = [1.5 4.5].  Evaluation with running statistics equal to the batch's (biased) ones gives the
       training forward's y. */
    const double s = 0.3779644730092272;
    const double x_[] = {1, 6, 3, 2}, gamma_[] = {2, -1}, beta_[] = {1, 1}, dy_[] = {1, 0, 0, 1};
    const double y_[] = {0, 0.2440710539815456, 2, 1.7559289460184544}, mean_[] = {2, 4}, rstd_[] = {0.5, s};
    const double dx_[] = {0.375, 0.08099238707340582, -0.375, -0.08099238707340582};
    const double dgamma_[] = {-0.5, -0.7559289460184544}, dbeta_[] = {1, 1}, var_[] = {1, 4};
    const double rm_[] = {1, 2}, rv_[] = {1.5, 4.5};
    const double tol = 4 * REAL_EPS;
    bp_tensor x = make(2, 2, x_), gamma = make(1, 2, gamma_), beta = make(1, 2, beta_), dy = make(2, 2, dy_);
    bp_tensor y = make(2, 2, NULL), mean = make(1, 2, NULL), rstd = make(1, 2, NULL), dx = make(2, 2, NULL);
    bp_tensor dgamma = make(1, 2, NULL), dbeta = make(1, 2, NULL), copy = make(2, 2, NULL), wrong = make(2, 1, NULL);
    bp_tensor rm = make(1, 2, NULL), rv = make(1, 2, NULL), var = make(1, 2, var_);
    long mallocs = test_mallocs;
    bp_batchnorm_forward(&x, &gamma, &beta, 3, &y, &mean, &rstd);
    CHECK(close_to(&y, y_, tol) && close_to(&mean, mean_, 0) && close_to(&rstd, rstd_, tol));
    fill(&dgamma, 99);
    bp_batchnorm_backward(&x, &gamma, &mean, &rstd, &dy, &dx, &dgamma, &dbeta);
    CHECK(close_to(&dx, dx_, tol) && close_to(&dgamma, dgamma_, tol) && close_to(&dbeta, dbeta_, 0));
    memcpy(copy.data, x.data, 4 * sizeof(bp_real)); /* in place: the same bits */
    bp_batchnorm_forward(&copy, &gamma, &beta, 3, &copy, &mean, &rstd);
    CHECK(same_bits(&copy, &y));
    memcpy(copy.data, dy.data, 4 * sizeof(bp_real));
    bp_batchnorm_backward(&x, &gamma, &mean, &rstd, &copy, &copy, &dgamma, NULL);
    CHECK(same_bits(&copy, &dx));
    fill(&rv, 1);
    bp_batchnorm_update_running(&rm, &rv, &x, (bp_real)0.5);
    CHECK(close_to(&rm, rm_, 0) && close_to(&rv, rv_, 0));
    bp_batchnorm_inference(&x, &gamma, &beta, &mean, &var, 3, &copy);
    CHECK(close_to(&copy, y_, tol));
    bp_batchnorm_inference(&copy, &gamma, &beta, &mean, &var, 3, &copy); /* in place */
    bp_batchnorm_inference(&y, &gamma, &beta, &mean, &var, 3, &dx);
    CHECK(same_bits(&copy, &dx));
    CHECK(test_mallocs == mallocs);
    EXPECT_NO_ERROR();

    /* batch norm is layer norm of the transpose (with gamma = 1 and beta = 0, which do not transpose) */
    {
        bp_rng rng;
        bp_tensor xb = bp_tensor_new(5, 3), ones = bp_tensor_new(1, 3), zeros = bp_tensor_new(1, 3);
        bp_tensor yb = bp_tensor_new(5, 3), mb = bp_tensor_new(1, 3), rb = bp_tensor_new(1, 3);
        bp_tensor ones5 = bp_tensor_new(1, 5), zeros5 = bp_tensor_new(1, 5), xt, yl = bp_tensor_new(3, 5);
        bp_tensor ml = bp_tensor_new(3, 1), rl = bp_tensor_new(3, 1), ylt;
        bp_rng_seed(&rng, 13);
        randomize(&xb, &rng);
        fill(&ones, 1);
        fill(&ones5, 1);
        xt = transposed(&xb);
        bp_batchnorm_forward(&xb, &ones, &zeros, (bp_real)1e-3, &yb, &mb, &rb);
        bp_layernorm_forward(&xt, &ones5, &zeros5, (bp_real)1e-3, &yl, &ml, &rl);
        ylt = transposed(&yl);
        CHECK(same_bits(&yb, &ylt));
        CHECK(memcmp(mb.data, ml.data, 3 * sizeof(bp_real)) == 0 && memcmp(rb.data, rl.data, 3 * sizeof(bp_real)) == 0);
        bp_tensor_free(&xb);
        bp_tensor_free(&ones);
        bp_tensor_free(&zeros);
        bp_tensor_free(&yb);
        bp_tensor_free(&mb);
        bp_tensor_free(&rb);
        bp_tensor_free(&ones5);
        bp_tensor_free(&zeros5);
        bp_tensor_free(&xt);
        bp_tensor_free(&yl);
        bp_tensor_free(&ml);
        bp_tensor_free(&rl);
        bp_tensor_free(&ylt);
    }

    /* argument checks */
    fill(&y, 5);
    fill(&dx, 5);
    fill(&rm, 5);
    fill(&rv, 5);
    bp_batchnorm_forward(&x, &gamma, &beta, 0, &y, &mean, &rstd);
    EXPECT_ERROR("bp_batchnorm_forward", "eps is 0 (x is 2x2; eps must be > 0)");
    bp_batchnorm_forward(&x, &gamma, &beta, 3, &y, &wrong, &rstd);
    EXPECT_ERROR("bp_batchnorm_forward", "x is 2x2 but mean is 2x1 (it must be 1x2)");
    bp_batchnorm_backward(&x, &gamma, &mean, &wrong, &dy, &dx, NULL, NULL);
    EXPECT_ERROR("bp_batchnorm_backward", "x is 2x2 but rstd is 2x1 (it must be 1x2)");
    bp_batchnorm_backward(&x, &gamma, &mean, &rstd, &dy, &dx, &gamma, NULL);
    EXPECT_ERROR("bp_batchnorm_backward", "dgamma (1x2) shares memory with gamma (1x2)");
    bp_batchnorm_update_running(&rm, &rv, &x, (bp_real)1.5);
    EXPECT_ERROR("bp_batchnorm_update_running", "momentum is 1.5 (x is 2x2; momentum must be in [0, 1])");
    bp_batchnorm_update_running(&rm, &rv, &x, (bp_real)-0.1);
    EXPECT_ERROR("bp_batchnorm_update_running", "momentum is -0.1");
    bp_batchnorm_update_running(&rm, &rv, &x, (bp_real)NAN);
    EXPECT_ERROR("bp_batchnorm_update_running", "momentum is nan");
    {
        bp_tensor one_row = {1, 2, x.data}, no_rows = {0, 2, NULL};
        bp_batchnorm_update_running(&rm, &rv, &one_row, (bp_real)0.1);
        EXPECT_ERROR("bp_batchnorm_update_running", "x is 1x2 (the unbiased variance needs a batch of B >= 2 rows)");
        bp_batchnorm_update_running(&rm, &rv, &no_rows, (bp_real)0.1);
        EXPECT_ERROR("bp_batchnorm_update_running", "x is 0x2");
    }
    bp_batchnorm_update_running(&rm, &rm, &x, (bp_real)0.1);
    EXPECT_ERROR("bp_batchnorm_update_running", "running_mean (1x2) shares memory with running_var (1x2)");
    bp_batchnorm_update_running(&rm, &wrong, &x, (bp_real)0.1);
    EXPECT_ERROR("bp_batchnorm_update_running", "x is 2x2 but running_var is 2x1 (it must be 1x2)");
    bp_batchnorm_inference(&x, &gamma, &beta, &mean, &var, -3, &y);
    EXPECT_ERROR("bp_batchnorm_inference", "eps is -3");
    bp_batchnorm_inference(&x, &gamma, &beta, &mean, &wrong, 3, &y);
    EXPECT_ERROR("bp_batchnorm_inference", "x is 2x2 but running_var is 2x1 (it must be 1x2)");
    bp_batchnorm_inference(&x, &gamma, &beta, &mean, &var, 3, &copy);
    EXPECT_NO_ERROR();
    {
        bp_tensor mean_in_y = {1, 2, y.data + 2};
        bp_batchnorm_inference(&x, &gamma, &beta, &mean_in_y, &var, 3, &y);
        EXPECT_ERROR("bp_batchnorm_inference", "y (2x2) shares memory with running_mean (1x2)");
    }
    CHECK(all_equal(&dx, 5) && all_equal(&rm, 5) && all_equal(&rv, 5));

    /* B = 1 (torch refuses it): var 0, so y = beta; dx = 0 (nothing in y depends on x) */
    {
        bp_tensor x1 = {1, 2, x.data}, dy1 = {1, 2, dy.data}, y1 = make(1, 2, NULL), d1 = make(1, 2, NULL);
        bp_batchnorm_forward(&x1, &gamma, &beta, 3, &y1, &mean, &rstd);
        CHECK(close_to(&y1, beta_, 0));
        bp_batchnorm_backward(&x1, &gamma, &mean, &rstd, &dy1, &d1, NULL, NULL);
        CHECK(all_equal(&d1, 0));
        bp_tensor_free(&y1);
        bp_tensor_free(&d1);
    }
    EXPECT_NO_ERROR();
    bp_tensor_free(&x);
    bp_tensor_free(&gamma);
    bp_tensor_free(&beta);
    bp_tensor_free(&dy);
    bp_tensor_free(&y);
    bp_tensor_free(&mean);
    bp_tensor_free(&rstd);
    bp_tensor_free(&dx);
    bp_tensor_free(&dgamma);
    bp_tensor_free(&dbeta);
    bp_tensor_free(&copy);
    bp_tensor_free(&wrong);
    bp_tensor_free(&rm);
    bp_tensor_free(&rv);
    bp_tensor_free(&var);
}

/* Dropout's statistics: the kept fraction, the exact scaling 1/(1-p), the same seed giving the same mask,
   p = 0 the identity; the backward; the argument checks. */
static void test_dropout(void)
{
    const int rows = 200, cols = 500, n = rows * cols; /* 100000 draws */
    const double ps[] = {0, 0.1, 0.5, 0.9};
    bp_tensor x = bp_tensor_new(rows, cols), mask = bp_tensor_new(rows, cols), y = bp_tensor_new(rows, cols);
    bp_tensor mask2 = bp_tensor_new(rows, cols), y2 = bp_tensor_new(rows, cols), dx = bp_tensor_new(rows, cols);
    bp_rng rng, rng2;
    int k, i;
    bp_rng_seed(&rng, 3);
    randomize(&x, &rng);
    for (k = 0; k < 4; k++) {
        const bp_real p = (bp_real)ps[k], scale = (bp_real)(1 / (1 - (double)p));
        double kept = 0, sigma = sqrt((1 - (double)p) * (double)p / n), sum_mask = 0;
        int exact = 1;
        long mallocs = test_mallocs;
        bp_rng_seed(&rng, 100 + (uint64_t)k);
        bp_dropout_forward(&x, p, &rng, &mask, &y);
        for (i = 0; i < n; i++) {
            kept += mask.data[i] != 0;
            sum_mask += (double)mask.data[i];
            exact &= mask.data[i] == 0 || mask.data[i] == scale;
            exact &= y.data[i] == (bp_real)(x.data[i] * mask.data[i]); /* (the cast: x87 keeps more bits) */
        }
        kept /= n;
        if (!(fabs(kept - (1 - (double)p)) <= 5 * sigma + 1e-12))
            printf("  p %g: kept %.5f, expected %.5f +- %.5f\n", (double)p, kept, 1 - (double)p, 5 * sigma);
        CHECK(fabs(kept - (1 - (double)p)) <= 5 * sigma + 1e-12);
        CHECK(exact); /* every mask element is 0 or exactly 1/(1-p), and y = x * mask exactly */
        /* E[mask] = 1: the mean of the mask is 1 within its standard error, scale * sigma */
        CHECK(fabs(sum_mask / n - 1) <= 5 * (double)scale * sigma + 1e-12);
        bp_rng_seed(&rng2, 100 + (uint64_t)k); /* the same seed: the same mask, bit for bit */
        bp_dropout_forward(&x, p, &rng2, &mask2, &y2);
        CHECK(same_bits(&mask, &mask2) && same_bits(&y, &y2) && rng.state == rng2.state);
        memcpy(y2.data, x.data, element_count(&x) * sizeof(bp_real)); /* in place */
        bp_rng_seed(&rng2, 100 + (uint64_t)k);
        bp_dropout_forward(&y2, p, &rng2, &mask2, &y2);
        CHECK(same_bits(&y, &y2));
        if (p == 0) CHECK(same_bits(&y, &x) && all_equal(&mask, 1)); /* p = 0: the identity */
        bp_dropout_backward(&mask, &x, &dx); /* dx = dy * mask: here dy = x, so dx = y */
        CHECK(same_bits(&dx, &y));
        memcpy(dx.data, x.data, element_count(&x) * sizeof(bp_real));
        bp_dropout_backward(&mask, &dx, &dx); /* in place */
        CHECK(same_bits(&dx, &y));
        CHECK(test_mallocs == mallocs);
    }
    bp_rng_seed(&rng2, 999); /* another seed: another mask */
    bp_dropout_forward(&x, (bp_real)0.9, &rng2, &mask2, &y2);
    CHECK(!same_bits(&mask, &mask2));
    EXPECT_NO_ERROR();

    fill(&mask, 5);
    fill(&y, 5);
    fill(&dx, 5);
    bp_dropout_forward(&x, 1, &rng, &mask, &y);
    EXPECT_ERROR("bp_dropout_forward", "p is 1 (x is 200x500; p must be in [0, 1))");
    bp_dropout_forward(&x, (bp_real)-0.5, &rng, &mask, &y);
    EXPECT_ERROR("bp_dropout_forward", "p is -0.5");
    bp_dropout_forward(&x, (bp_real)NAN, &rng, &mask, &y);
    EXPECT_ERROR("bp_dropout_forward", "p is nan");
    bp_dropout_forward(&x, (bp_real)0.5, NULL, &mask, &y);
    EXPECT_ERROR("bp_dropout_forward", "rng is NULL (x is 200x500)");
    bp_dropout_forward(&y2, (bp_real)0.5, &rng, &y2, &y);
    EXPECT_ERROR("bp_dropout_forward", "mask (200x500) shares memory with x (200x500)");
    bp_dropout_forward(&x, (bp_real)0.5, &rng, &y, &y);
    EXPECT_ERROR("bp_dropout_forward", "mask (200x500) shares memory with y (200x500)");
    bp_dropout_forward(&x, (bp_real)0.5, &rng, &mask, &dx);
    EXPECT_NO_ERROR();
    fill(&dx, 5);
    fill(&mask, 5);
    bp_dropout_backward(&mask, &x, NULL);
    EXPECT_ERROR("bp_dropout_backward", "dx is NULL");
    {
        bp_tensor small = {2, 3, dx.data};
        bp_dropout_backward(&mask, &x, &small);
        EXPECT_ERROR("bp_dropout_backward", "mask is 200x500 but dx is 2x3");
    }
    CHECK(all_equal(&mask, 5) && all_equal(&y, 5) && all_equal(&dx, 5));
    bp_tensor_free(&x);
    bp_tensor_free(&mask);
    bp_tensor_free(&y);
    bp_tensor_free(&mask2);
    bp_tensor_free(&y2);
    bp_tensor_free(&dx);
}

/* ---- gradient checks: layer norm, batch norm, dropout ------------------------------------------------
   L = sum of c * y for fixed random c, so dL/dy = c; each backward's dx, dgamma and dbeta against central
   differences of the forward (bp_gradcheck), element by element.  And along a direction: x = x0 + t v for
   a random v, dL/dt = sum of dx * v, checked at t = 0 -- one number of the size of the whole gradient,
   which stays meaningful with a large mean (x + 100), where each element's difference quotient carries the
   rounding of (x - mean) at 100 and the elements of dx near 0 show nothing but that. */
typedef struct norm_net {
    bp_tensor x, gamma, beta, y, mean, rstd, c, mask;
    bp_tensor x0, v, t; /* the directional check: x = x0 + t v (t is 1x1) */
    int kind;           /* 0 layer norm, 1 batch norm, 2 dropout */
    int along;          /* 1: x is set from x0, v and t first */
    bp_rng rng;
} norm_net;

static bp_real norm_loss(void *ctx)
{
    norm_net *n = (norm_net *)ctx;
    double sum = 0;
    int i;
    for (i = 0; n->along && i < n->x.rows * n->x.cols; i++) n->x.data[i] = n->x0.data[i] + n->t.data[0] * n->v.data[i];
    if (n->kind == 0) bp_layernorm_forward(&n->x, &n->gamma, &n->beta, (bp_real)1e-5, &n->y, &n->mean, &n->rstd);
    if (n->kind == 1) bp_batchnorm_forward(&n->x, &n->gamma, &n->beta, (bp_real)1e-5, &n->y, &n->mean, &n->rstd);
    if (n->kind == 2) {
        bp_rng_seed(&n->rng, 77); /* the same mask on every call */
        bp_dropout_forward(&n->x, (bp_real)0.4, &n->rng, &n->mask, &n->y);
    }
    for (i = 0; i < n->y.rows * n->y.cols; i++) sum += (double)n->c.data[i] * (double)n->y.data[i];
    return (bp_real)sum;
}

static void test_gradcheck_norms(void)
{
    /* B x C (not C = 2 for layer norm, nor B = 2 for batch norm: two numbers normalise to -1 and 1 whatever
       they are, so dx is ~0 and only rounding is left to compare), and a shift added to x */
    const int shapes[][2] = {{4, 6}, {1, 5}, {7, 3}, {5, 4}};
    const double shifts[] = {0, 100};
    const char *kinds[] = {"layernorm", "batchnorm", "dropout"};
    const bp_real eps = GRADCHECK_EPS;
    const double tol = GRADCHECK_TOL;
    bp_rng rng;
    int s, kind, sh, i;
    bp_rng_seed(&rng, 1313);
    for (kind = 0; kind < 3; kind++)
        for (s = 0; s < 4; s++)
            for (sh = 0; sh < 2; sh++) {
                const int B = shapes[s][0], C = shapes[s][1];
                norm_net n;
                bp_tensor dx, dgamma, dbeta, dt;
                bp_tensor *params[3], *grads[3];
                const char *names[3] = {"dx", "dgamma", "dbeta"};
                double along = 0;
                bp_real e;
                int k, count = kind == 2 ? 1 : 3;
                if (kind == 1 && B == 1) continue; /* batch norm of one example: y = beta, dx = 0 */
                n.kind = kind;
                n.along = 0;
                n.x = bp_tensor_new(B, C);
                n.gamma = bp_tensor_new(1, C);
                n.beta = bp_tensor_new(1, C);
                n.y = bp_tensor_new(B, C);
                n.mean = bp_tensor_new(kind == 0 ? B : 1, kind == 0 ? 1 : C);
                n.rstd = bp_tensor_new(kind == 0 ? B : 1, kind == 0 ? 1 : C);
                n.c = bp_tensor_new(B, C);
                n.mask = bp_tensor_new(B, C);
                n.x0 = bp_tensor_new(B, C);
                n.v = bp_tensor_new(B, C);
                n.t = bp_tensor_new(1, 1);
                dx = bp_tensor_new(B, C);
                dgamma = bp_tensor_new(1, C);
                dbeta = bp_tensor_new(1, C);
                dt = bp_tensor_new(1, 1);
                randomize(&n.x, &rng);
                randomize(&n.gamma, &rng);
                randomize(&n.beta, &rng);
                randomize(&n.c, &rng);
                randomize(&n.v, &rng);
                for (i = 0; i < B * C; i++) n.x.data[i] += (bp_real)shifts[sh];
                memcpy(n.x0.data, n.x.data, element_count(&n.x) * sizeof(bp_real));
                norm_loss(&n);
                if (kind == 0) bp_layernorm_backward(&n.x, &n.gamma, &n.mean, &n.rstd, &n.c, &dx, &dgamma, &dbeta);
                if (kind == 1) bp_batchnorm_backward(&n.x, &n.gamma, &n.mean, &n.rstd, &n.c, &dx, &dgamma, &dbeta);
                if (kind == 2) bp_dropout_backward(&n.mask, &n.c, &dx);
                params[0] = &n.x;
                grads[0] = &dx;
                params[1] = &n.gamma;
                grads[1] = &dgamma;
                params[2] = &n.beta;
                grads[2] = &dbeta;
                /* element by element, without the shift (in float an element of dx below ~5e-3 would show
                   the loss's own rounding, ~1e-6 over the step 2*eps; with this seed none fails) */
                for (k = 0; k < count && sh == 0; k++) {
                    e = bp_gradcheck(norm_loss, &n, params[k], grads[k], eps);
                    if (!(e < tol))
                        printf("  %s %dx%d %s: %g\n", kinds[kind], B, C, names[k], (double)e);
                    CHECK(e < tol);
                }
                /* along v: dL/dt = sum of dx * v */
                for (i = 0; i < B * C; i++) along += (double)dx.data[i] * (double)n.v.data[i];
                dt.data[0] = (bp_real)along;
                n.along = 1;
                e = bp_gradcheck(norm_loss, &n, &n.t, &dt, eps);
                if (!(e < tol)) printf("  %s %dx%d shift %g along v: %g\n", kinds[kind], B, C, shifts[sh], (double)e);
                CHECK(e < tol);
                bp_tensor_free(&n.x);
                bp_tensor_free(&n.gamma);
                bp_tensor_free(&n.beta);
                bp_tensor_free(&n.y);
                bp_tensor_free(&n.mean);
                bp_tensor_free(&n.rstd);
                bp_tensor_free(&n.c);
                bp_tensor_free(&n.mask);
                bp_tensor_free(&n.x0);
                bp_tensor_free(&n.v);
                bp_tensor_free(&n.t);
                bp_tensor_free(&dx);
                bp_tensor_free(&dgamma);
                bp_tensor_free(&dbeta);
                bp_tensor_free(&dt);
            }
    EXPECT_NO_ERROR();
}

/* ---- normalisation, dropout and RMSprop against PyTorch (tests/fixtures/norms.txt) ------------------- */

/* The next case line of norms.txt: its kind (layernorm, batchnorm, running, dropout, rmsprop or end), its
   name and up to 4 numbers; 0 at the end of the file.  Lines of other cases' blocks are skipped. */
static int next_norm_case(FILE *f, char *kind, char *name, double *nums)
{
    static const char *const kinds[] = {"layernorm", "batchnorm", "running", "dropout", "rmsprop", "end"};
    char line[4096], word[32];
    int k;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || sscanf(line, "%31s", word) != 1) continue;
        for (k = 0; k < 6; k++)
            if (strcmp(word, kinds[k]) == 0) {
                strcpy(kind, word);
                name[0] = 0;
                nums[0] = nums[1] = nums[2] = nums[3] = 0;
                sscanf(line, "%*s %31s %lf %lf %lf %lf", name, &nums[0], &nums[1], &nums[2], &nums[3]);
                return 1;
            }
    }
    return 0;
}

/* The largest |mine - theirs| over the largest |theirs| (the array's scale; at least 1), with a FAIL line
   above tol. */
static double worst_error(const bp_tensor *mine, const bp_tensor *theirs, const char *what, double tol)
{
    double scale = 0, worst = 0;
    int i, n = (int)element_count(theirs);
    if (!same_shape(mine, theirs)) {
        printf("  %s: %dx%d, expected %dx%d\n", what, mine->rows, mine->cols, theirs->rows, theirs->cols);
        CHECK(0);
        return HUGE_VAL;
    }
    for (i = 0; i < n; i++)
        if (fabs((double)theirs->data[i]) > scale) scale = fabs((double)theirs->data[i]);
    for (i = 0; i < n; i++) {
        double err = fabs((double)mine->data[i] - (double)theirs->data[i]);
        if (!(err <= worst)) worst = err;
    }
    worst /= scale > 1 ? scale : 1; /* (an array that is 0 but for rounding: one_feature's dx) */
    if (!(worst <= tol)) printf("  %s differs from PyTorch by %.3g (relative to its largest element; allowed %.3g)\n",
                                what, worst, tol);
    CHECK(worst <= tol);
    return worst;
}

/* The worst relative errors seen, per function, for tests/README.md (printed with BP_TEST_REPORT) */
static double norms_worst[10];
enum { W_LN_F, W_LN_B, W_BN_F, W_BN_B, W_RUNNING, W_INFERENCE, W_DROPOUT_F, W_DROPOUT_B, W_RMSPROP };
static void note_worst(int which, double e)
{
    if (e > norms_worst[which]) norms_worst[which] = e;
}

static void test_norms_vs_pytorch(void)
{
    static const char *const names[] = {"x", "gamma", "beta", "dy", "y", "mean", "rstd", "dx", "dgamma", "dbeta"};
    char kind[32], name[64], what[128];
    double nums[4];
    int cases = 0, ok = 1, i;
    FILE *f = open_fixture("norms.txt");
    if (!f) return;
    while (ok && next_norm_case(f, kind, name, nums) && strcmp(kind, "end") != 0) {
        int layer = strcmp(kind, "layernorm") == 0;
        if (layer || strcmp(kind, "batchnorm") == 0) {
            bp_tensor t[10], y, mean, rstd, dx, dgamma, dbeta;
            bp_real eps = (bp_real)nums[0];
            double tol = REFERENCE_TOL, big = 0, rs = 0;
            for (i = 0; i < 10; i++) ok &= read_block(f, names[i], &t[i]);
            CHECK(ok);
            if (!ok) break;
            y = bp_tensor_new(t[0].rows, t[0].cols);
            dx = bp_tensor_new(t[0].rows, t[0].cols);
            mean = bp_tensor_new(t[5].rows, t[5].cols);
            rstd = bp_tensor_new(t[6].rows, t[6].cols);
            dgamma = bp_tensor_new(1, t[0].cols);
            dbeta = bp_tensor_new(1, t[0].cols);
            /* The cached mean is a bp_real: in float, a mean of 1000 is held to half an ulp, 3e-5, and every
               xhat = (x - mean) rstd the backward rebuilds is off by that times rstd.  Allowed for on top of
               the base tolerance (1e-13 in double). */
            for (i = 0; i < t[5].rows * t[5].cols; i++) {
                if (fabs((double)t[5].data[i]) > big) big = fabs((double)t[5].data[i]);
                if ((double)t[6].data[i] > rs) rs = (double)t[6].data[i];
            }
            if (layer) bp_layernorm_forward(&t[0], &t[1], &t[2], eps, &y, &mean, &rstd);
            else bp_batchnorm_forward(&t[0], &t[1], &t[2], eps, &y, &mean, &rstd);
            snprintf(what, sizeof what, "%s %s", kind, name);
            note_worst(layer ? W_LN_F : W_BN_F, worst_error(&y, &t[4], what, tol));
            note_worst(layer ? W_LN_F : W_BN_F, worst_error(&mean, &t[5], what, tol));
            note_worst(layer ? W_LN_F : W_BN_F, worst_error(&rstd, &t[6], what, tol));
            if (layer) bp_layernorm_backward(&t[0], &t[1], &mean, &rstd, &t[3], &dx, &dgamma, &dbeta);
            else bp_batchnorm_backward(&t[0], &t[1], &mean, &rstd, &t[3], &dx, &dgamma, &dbeta);
            tol += 2 * REAL_EPS * big * rs;
            note_worst(layer ? W_LN_B : W_BN_B, worst_error(&dx, &t[7], what, tol));
            note_worst(layer ? W_LN_B : W_BN_B, worst_error(&dgamma, &t[8], what, tol));
            note_worst(layer ? W_LN_B : W_BN_B, worst_error(&dbeta, &t[9], what, tol));
            for (i = 0; i < 10; i++) bp_tensor_free(&t[i]);
            bp_tensor_free(&y);
            bp_tensor_free(&dx);
            bp_tensor_free(&mean);
            bp_tensor_free(&rstd);
            bp_tensor_free(&dgamma);
            bp_tensor_free(&dbeta);
        } else if (strcmp(kind, "running") == 0) {
            /* BatchNorm1d's buffers, batch after batch (from running_mean 0 and running_var 1), then eval() */
            bp_tensor x, rm_want, rv_want, rm, rv, gamma, beta, y_want, y;
            int b, C = 0;
            bp_real eps = (bp_real)nums[0], momentum = (bp_real)nums[1];
            /* in float, momentum 0.1 is rounded: relative 1.5e-8, carried by every update */
            double tol = REFERENCE_TOL + 4 * fabs((double)momentum - nums[1]) / nums[1];
            rm = rv = bp_tensor_new(0, 0);
            for (b = 0; b < (int)nums[2] && ok; b++) {
                ok &= read_block(f, "x", &x) && read_block(f, "running_mean", &rm_want) &&
                      read_block(f, "running_var", &rv_want);
                if (!ok) break;
                if (b == 0) {
                    C = x.cols;
                    rm = bp_tensor_new(1, C);
                    rv = bp_tensor_new(1, C);
                    fill(&rv, 1);
                }
                bp_batchnorm_update_running(&rm, &rv, &x, momentum);
                snprintf(what, sizeof what, "running mean after batch %d", b + 1);
                note_worst(W_RUNNING, worst_error(&rm, &rm_want, what, tol));
                snprintf(what, sizeof what, "running var after batch %d", b + 1);
                note_worst(W_RUNNING, worst_error(&rv, &rv_want, what, tol));
                bp_tensor_free(&x);
                bp_tensor_free(&rm_want);
                bp_tensor_free(&rv_want);
            }
            ok &= read_block(f, "x", &x) && read_block(f, "gamma", &gamma) && read_block(f, "beta", &beta) &&
                  read_block(f, "y", &y_want);
            CHECK(ok);
            if (!ok) break;
            y = bp_tensor_new(x.rows, x.cols);
            /* the running statistics are the library's own, so their error (above) carries into y */
            bp_batchnorm_inference(&x, &gamma, &beta, &rm, &rv, eps, &y);
            note_worst(W_INFERENCE, worst_error(&y, &y_want, "inference", tol + 300 * 2 * REAL_EPS));
            bp_tensor_free(&x);
            bp_tensor_free(&gamma);
            bp_tensor_free(&beta);
            bp_tensor_free(&y_want);
            bp_tensor_free(&y);
            bp_tensor_free(&rm);
            bp_tensor_free(&rv);
        } else if (strcmp(kind, "dropout") == 0) {
            /* torch's mask is its own random draw: taken back from its y (x has no zeros), then the scale of
               the kept elements, and the backward with that mask, must be torch's */
            bp_tensor x, y_want, dy, dx_want, mask, y, dx;
            bp_real p = (bp_real)nums[0], scale = (bp_real)(1 / (1 - (double)p));
            ok &= read_block(f, "x", &x) && read_block(f, "y", &y_want) && read_block(f, "dy", &dy) &&
                  read_block(f, "dx", &dx_want);
            CHECK(ok);
            if (!ok) break;
            mask = bp_tensor_new(x.rows, x.cols);
            y = bp_tensor_new(x.rows, x.cols);
            dx = bp_tensor_new(x.rows, x.cols);
            for (i = 0; i < x.rows * x.cols; i++) {
                mask.data[i] = y_want.data[i] != 0 ? scale : 0;
                y.data[i] = x.data[i] * mask.data[i]; /* what bp_dropout_forward writes for a kept element */
            }
            note_worst(W_DROPOUT_F, worst_error(&y, &y_want, "dropout y", REAL_EPS));
            bp_dropout_backward(&mask, &dy, &dx);
            note_worst(W_DROPOUT_B, worst_error(&dx, &dx_want, "dropout dx", REAL_EPS));
            bp_tensor_free(&x);
            bp_tensor_free(&y_want);
            bp_tensor_free(&dy);
            bp_tensor_free(&dx_want);
            bp_tensor_free(&mask);
            bp_tensor_free(&y);
            bp_tensor_free(&dx);
        } else {
            continue; /* rmsprop: test_optim.c */
        }
        cases++;
    }
    fclose(f);
    CHECK(ok && cases == 9);
#ifdef BP_TEST_REPORT
    printf("  worst relative error vs PyTorch: layernorm fwd %.2g bwd %.2g; batchnorm fwd %.2g bwd %.2g; running %.2g;"
           " inference %.2g; dropout fwd %.2g bwd %.2g\n", norms_worst[W_LN_F], norms_worst[W_LN_B], norms_worst[W_BN_F],
           norms_worst[W_BN_B], norms_worst[W_RUNNING], norms_worst[W_INFERENCE], norms_worst[W_DROPOUT_F],
           norms_worst[W_DROPOUT_B]);
#endif
    EXPECT_NO_ERROR();
}
