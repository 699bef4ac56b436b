/* Tests of the network in one object (bp_mlp_*): its one allocation and layout, its starting weights,
   that predict and a training step give the same numbers, bit for bit, as the explicit layer calls
   written out as in the lesson (every activation, both losses, all three optimizers, full and smaller
   batches), that nothing allocates after bp_mlp_new, that it learns, and every argument check.
   Part of the suite: tests/test_backprop.c includes this file (see there how to run one test). */

#include "harness.h"

/* A 3-layer network 5 -> 7 -> 6 -> 4 with the given activations and config. */
static bp_mlp *mlp_make(const int *acts, int loss, int optimizer, int max_batch)
{
    static const int widths[] = {5, 7, 6, 4};
    bp_mlp_config cfg = bp_mlp_default_config();
    cfg.loss = loss;
    cfg.optimizer = optimizer;
    cfg.max_batch = max_batch;
    cfg.lr = optimizer == BP_OPT_ADAM ? (bp_real)0.01 : (bp_real)0.1;
    cfg.seed = 7;
    return bp_mlp_new(3, widths, acts, &cfg);
}

static void test_mlp_new(void)
{
    static const int widths[] = {5, 7, 6, 4}, acts[] = {BP_ACT_RELU, BP_ACT_TANH, BP_ACT_NONE};
    const int opts[] = {BP_OPT_SGD, BP_OPT_MOMENTUM, BP_OPT_ADAM};
    int k, l;
    for (k = 0; k < 3; k++) {
        long before = test_mallocs;
        bp_mlp *net = mlp_make(acts, BP_LOSS_MSE, opts[k], 9);
        size_t expected = 0, seen = 0, params = 0;
        bp_rng rng;
        int m = opts[k] != BP_OPT_SGD, v = opts[k] == BP_OPT_ADAM, group;
        CHECK(test_mallocs == before + 1); /* one allocation for everything */
        CHECK(net->layers == 3 && net->inputs == 5 && net->outputs == 4 && net->step == 0);
        bp_rng_seed(&rng, 7);
        for (l = 0; l < 3; l++) {
            const bp_mlp_layer *L = &net->layer[l];
            int in = widths[l], out = widths[l + 1], none = acts[l] == BP_ACT_NONE;
            const bp_tensor *t[11];
            bp_tensor W = bp_tensor_new(in, out);
            int i, n = 0;
            t[n++] = &L->b, t[n++] = &L->dW, t[n++] = &L->db, t[n++] = &L->mW, t[n++] = &L->mb;
            t[n++] = &L->vW, t[n++] = &L->vb, t[n++] = &L->z;
            if (!none) t[n++] = &L->a; /* (BP_ACT_NONE: a is z) */
            t[n++] = &L->da;
            CHECK(L->activation == acts[l]);
            CHECK(L->W.rows == in && L->W.cols == out && same_shape(&L->W, &L->dW));
            CHECK(L->b.rows == 1 && L->b.cols == out && same_shape(&L->b, &L->db));
            CHECK(L->mW.rows == m * in && L->mW.cols == m * out && L->mb.rows == m && L->mb.cols == m * out);
            CHECK(L->vW.rows == v * in && L->vW.cols == v * out && L->vb.rows == v && L->vb.cols == v * out);
            CHECK(L->z.rows == 9 && L->z.cols == out && same_shape(&L->z, &L->a) && same_shape(&L->a, &L->da));
            CHECK((L->a.data == L->z.data) == none);
            /* the starting weights: He before a ReLU, Xavier otherwise, drawn in layer order; the rest 0 */
            if (acts[l] == BP_ACT_RELU) bp_init_he(&W, &rng);
            else bp_init_xavier(&W, &rng);
            CHECK(same_bits(&W, &L->W));
            bp_tensor_free(&W);
            for (i = 0; i < n; i++) CHECK(all_equal(t[i], 0));
            params += (size_t)(in * out + out);
            expected += (size_t)(2 + m + v) * (size_t)(in * out + out) + (size_t)(none ? 2 : 3) * 9 * (size_t)out;
        }
        /* every tensor inside `all`, one after the other: the weights and biases of every layer, then their
           gradients, then the optimizer's m and v, then the activations; params, grads, m, v: those groups */
        for (group = 0; group < 5; group++)
            for (l = 0; l < 3; l++) {
                const bp_mlp_layer *L = &net->layer[l];
                const bp_tensor *t[3];
                int i, n = 0;
                if (group == 0) t[n++] = &L->W, t[n++] = &L->b;
                else if (group == 1) t[n++] = &L->dW, t[n++] = &L->db;
                else if (group == 2) t[n++] = &L->mW, t[n++] = &L->mb;
                else if (group == 3) t[n++] = &L->vW, t[n++] = &L->vb;
                else {
                    t[n++] = &L->z;
                    if (acts[l] != BP_ACT_NONE) t[n++] = &L->a;
                    t[n++] = &L->da;
                }
                for (i = 0; i < n; i++) {
                    CHECK(t[i]->data == net->all.data + seen);
                    seen += element_count(t[i]);
                }
            }
        CHECK(net->params.data == net->all.data && net->params.rows == 1 && (size_t)net->params.cols == params);
        CHECK(net->grads.data == net->all.data + params && net->grads.rows == 1 && (size_t)net->grads.cols == params);
        CHECK(net->m.rows == m && (size_t)net->m.cols == m * params && (!m || net->m.data == net->all.data + 2 * params));
        CHECK(net->v.rows == v && (size_t)net->v.cols == v * params && (!v || net->v.data == net->all.data + 3 * params));
        CHECK(seen == expected && net->all.rows == 1 && (size_t)net->all.cols == expected);
        CHECK(bp_tensor_all_finite(&net->all));
        bp_mlp_free(net);
        CHECK(test_frees == test_mallocs);
    }
    bp_mlp_free(NULL);
    EXPECT_NO_ERROR();
    { /* config NULL: the defaults */
        bp_mlp *net = bp_mlp_new(1, widths, acts, NULL);
        bp_mlp_config d = bp_mlp_default_config();
        CHECK(net && net->config.max_batch == 32 && net->config.loss == BP_LOSS_MSE &&
              net->config.optimizer == BP_OPT_SGD && net->config.lr == (bp_real)0.01 && net->config.seed == 1);
        CHECK(memcmp(&net->config, &d, sizeof d) == 0);
        bp_mlp_free(net);
    }
}

/* ---- the same numbers as the explicit calls ----------------------------------------------------------
   The network's weights are copied into tensors of our own, and the lesson's calls are made on those,
   with separate z and a tensors (the object applies the activation in place): every weight, bias, loss
   and output must have the same bits. */

typedef struct explicit_net {
    int layers, acts[3], loss, optimizer, step;
    bp_mlp_config cfg;
    bp_tensor W[3], b[3], dW[3], db[3], mW[3], mb[3], vW[3], vb[3], z[3], a[3], dz[3], da[3];
} explicit_net;

static void explicit_from(explicit_net *e, const bp_mlp *net, int n)
{
    int l;
    e->layers = net->layers;
    e->cfg = net->config;
    e->step = 0;
    for (l = 0; l < net->layers; l++) {
        const bp_mlp_layer *L = &net->layer[l];
        int out = L->W.cols;
        e->acts[l] = L->activation;
        e->W[l] = bp_tensor_new(L->W.rows, out);
        memcpy(e->W[l].data, L->W.data, element_count(&L->W) * sizeof(bp_real));
        e->b[l] = bp_tensor_new(1, out);
        e->dW[l] = bp_tensor_new(L->W.rows, out);
        e->db[l] = bp_tensor_new(1, out);
        e->mW[l] = bp_tensor_new(L->W.rows, out);
        e->mb[l] = bp_tensor_new(1, out);
        e->vW[l] = bp_tensor_new(L->W.rows, out);
        e->vb[l] = bp_tensor_new(1, out);
        e->z[l] = bp_tensor_new(n, out);
        e->a[l] = bp_tensor_new(n, out);
        e->dz[l] = bp_tensor_new(n, out);
        e->da[l] = bp_tensor_new(n, out);
    }
}

static void explicit_free(explicit_net *e)
{
    int l;
    for (l = 0; l < e->layers; l++) {
        bp_tensor *all[] = {&e->W[l], &e->b[l], &e->dW[l], &e->db[l], &e->mW[l], &e->mb[l], &e->vW[l], &e->vb[l],
                            &e->z[l], &e->a[l], &e->dz[l], &e->da[l]};
        int i;
        for (i = 0; i < 12; i++) bp_tensor_free(all[i]);
    }
}

/* the lesson's forward: z = in W + b; a = act(z), on n rows (the tensors are n rows: made for this batch) */
static void explicit_forward(explicit_net *e, const bp_tensor *x)
{
    int l;
    for (l = 0; l < e->layers; l++) {
        const bp_tensor *in = l == 0 ? x : &e->a[l - 1];
        bp_linear_forward(in, &e->W[l], &e->b[l], &e->z[l]);
        if (e->acts[l] == BP_ACT_RELU) bp_relu_forward(&e->z[l], &e->a[l]);
        else if (e->acts[l] == BP_ACT_SIGMOID) bp_sigmoid_forward(&e->z[l], &e->a[l]);
        else if (e->acts[l] == BP_ACT_TANH) bp_tanh_forward(&e->z[l], &e->a[l]);
        else memcpy(e->a[l].data, e->z[l].data, element_count(&e->z[l]) * sizeof(bp_real));
    }
}

static bp_real explicit_step(explicit_net *e, const bp_tensor *x, const bp_tensor *y, const int *labels)
{
    int l, last = e->layers - 1;
    bp_real loss;
    const bp_mlp_config *c = &e->cfg;
    explicit_forward(e, x);
    if (c->loss == BP_LOSS_MSE) {
        loss = bp_mse_forward(&e->a[last], y);
        bp_mse_backward(&e->a[last], y, &e->da[last]);
    } else {
        bp_tensor probs = bp_tensor_new(e->a[last].rows, e->a[last].cols);
        loss = bp_softmax_xent_forward(&e->a[last], labels, &probs);
        bp_softmax_xent_backward(&probs, labels, &e->da[last]);
        bp_tensor_free(&probs);
    }
    for (l = last; l >= 0; l--) {
        const bp_tensor *in = l == 0 ? x : &e->a[l - 1];
        if (e->acts[l] == BP_ACT_RELU) bp_relu_backward(&e->z[l], &e->da[l], &e->dz[l]);
        else if (e->acts[l] == BP_ACT_SIGMOID) bp_sigmoid_backward(&e->a[l], &e->da[l], &e->dz[l]);
        else if (e->acts[l] == BP_ACT_TANH) bp_tanh_backward(&e->a[l], &e->da[l], &e->dz[l]);
        else memcpy(e->dz[l].data, e->da[l].data, element_count(&e->da[l]) * sizeof(bp_real));
        bp_linear_backward(in, &e->W[l], &e->dz[l], l > 0 ? &e->da[l - 1] : NULL, &e->dW[l], &e->db[l]);
    }
    e->step++;
    for (l = 0; l < e->layers; l++) {
        if (c->optimizer == BP_OPT_SGD) {
            bp_sgd_step(&e->W[l], &e->dW[l], c->lr);
            bp_sgd_step(&e->b[l], &e->db[l], c->lr);
        } else if (c->optimizer == BP_OPT_MOMENTUM) {
            bp_momentum_step(&e->W[l], &e->dW[l], &e->mW[l], c->lr, c->momentum);
            bp_momentum_step(&e->b[l], &e->db[l], &e->mb[l], c->lr, c->momentum);
        } else {
            bp_adam_step(&e->W[l], &e->dW[l], &e->mW[l], &e->vW[l], e->step, c->lr, c->beta1, c->beta2, c->eps);
            bp_adam_step(&e->b[l], &e->db[l], &e->mb[l], &e->vb[l], e->step, c->lr, c->beta1, c->beta2, c->eps);
        }
    }
    return loss;
}

static int same_loss(bp_real a, bp_real b) { return memcmp(&a, &b, sizeof a) == 0; }

static void test_mlp_vs_explicit(void)
{
    static const int act_sets[][3] = {{BP_ACT_RELU, BP_ACT_RELU, BP_ACT_NONE},
                                      {BP_ACT_SIGMOID, BP_ACT_TANH, BP_ACT_NONE},
                                      {BP_ACT_TANH, BP_ACT_RELU, BP_ACT_SIGMOID}};
    const int opts[] = {BP_OPT_SGD, BP_OPT_MOMENTUM, BP_OPT_ADAM}, batch = 11, n = 8; /* n < max_batch */
    int s, loss, o, step, r, l;
    bp_rng rng;
    bp_tensor x = bp_tensor_new(n, 5), y = bp_tensor_new(n, 4);
    int labels[8];
    bp_rng_seed(&rng, 3);
    for (s = 0; s < 3; s++)
        for (loss = BP_LOSS_MSE; loss <= BP_LOSS_SOFTMAX_XENT; loss++)
            for (o = 0; o < 3; o++) {
                bp_mlp *net = mlp_make(act_sets[s], loss, opts[o], batch);
                explicit_net e;
                int same = 1;
                explicit_from(&e, net, n);
                for (step = 0; step < 4; step++) {
                    bp_real l1, l2;
                    bp_tensor out;
                    bp_tensor_randn(&x, &rng, 1);
                    bp_tensor_randn(&y, &rng, 1);
                    for (r = 0; r < n; r++) labels[r] = (int)(bp_rng_next_u64(&rng) % 4);
                    if (loss == BP_LOSS_MSE) l1 = bp_mlp_train_step(net, &x, &y, NULL);
                    else l1 = bp_mlp_train_step(net, &x, NULL, labels);
                    l2 = explicit_step(&e, &x, &y, labels);
                    same &= same_loss(l1, l2) && l1 == l1;
                    for (l = 0; l < 3; l++)
                        same &= same_bits(&net->layer[l].W, &e.W[l]) && same_bits(&net->layer[l].b, &e.b[l]) &&
                                same_bits(&net->layer[l].dW, &e.dW[l]) && same_bits(&net->layer[l].db, &e.db[l]);
                    out = bp_mlp_predict(net, &x);
                    explicit_forward(&e, &x);
                    same &= same_bits(&out, &e.a[2]) && out.data == net->layer[2].a.data;
                }
                same &= net->step == 4;
                if (!same) printf("  activations set %d, loss %d, optimizer %d: different bits\n", s, loss, o);
                CHECK(same);
                explicit_free(&e);
                bp_mlp_free(net);
            }
    EXPECT_NO_ERROR();
    bp_tensor_free(&x);
    bp_tensor_free(&y);
}

/* predict and train_step on every batch size up to max_batch, and none past it: no allocation at all */
static void test_mlp_no_allocation(void)
{
    static const int acts[] = {BP_ACT_RELU, BP_ACT_SIGMOID, BP_ACT_NONE};
    bp_mlp *net = mlp_make(acts, BP_LOSS_SOFTMAX_XENT, BP_OPT_ADAM, 6);
    bp_mlp *reg = mlp_make(acts, BP_LOSS_MSE, BP_OPT_MOMENTUM, 6);
    bp_tensor x = bp_tensor_new(6, 5), y = bp_tensor_new(6, 4);
    const int labels[] = {0, 1, 2, 3, 0, 1};
    long before;
    int n;
    bp_rng rng;
    bp_rng_seed(&rng, 5);
    bp_tensor_randn(&x, &rng, 1);
    before = test_mallocs;
    for (n = 0; n <= 6; n++) {
        bp_tensor xs = bp_tensor_rows(&x, 0, n), ys = bp_tensor_rows(&y, 0, n), out;
        bp_real loss = bp_mlp_train_step(net, &xs, NULL, labels);
        CHECK(loss >= 0 && (n > 0 || loss == 0));
        out = bp_mlp_predict(net, &xs);
        CHECK(out.rows == n && out.cols == 4 && out.data == net->layer[2].a.data);
        loss = bp_mlp_train_step(reg, &xs, &ys, NULL);
        CHECK(loss >= 0);
    }
    CHECK(test_mallocs == before);
    CHECK(bp_tensor_all_finite(&net->all) && bp_tensor_all_finite(&reg->all));
    EXPECT_NO_ERROR();
    bp_mlp_free(net);
    bp_mlp_free(reg);
    bp_tensor_free(&x);
    bp_tensor_free(&y);
}

/* It learns: XOR (MSE, SGD, tanh) and 3 Gaussian blobs (cross-entropy, Adam, ReLU) */
static void test_mlp_learns(void)
{
    static const int xor_widths[] = {2, 8, 1}, xor_acts[] = {BP_ACT_TANH, BP_ACT_SIGMOID};
    static const int blob_widths[] = {2, 16, 3}, blob_acts[] = {BP_ACT_RELU, BP_ACT_NONE};
    bp_real x_data[8] = {0, 0, 0, 1, 1, 0, 1, 1}, y_data[4] = {0, 1, 1, 0};
    bp_tensor x = {4, 2, x_data}, y = {4, 1, y_data}, out, blobs = bp_tensor_new(60, 2);
    bp_mlp_config cfg = bp_mlp_default_config();
    bp_mlp *net;
    bp_real first = 0, loss = 0;
    int i, r, labels[60], correct = 0;
    bp_rng rng;
    cfg.max_batch = 4;
    cfg.lr = 1;
    net = bp_mlp_new(2, xor_widths, xor_acts, &cfg);
    for (i = 0; i < 2000; i++) {
        loss = bp_mlp_train_step(net, &x, &y, NULL);
        if (i == 0) first = loss;
    }
    out = bp_mlp_predict(net, &x);
    if (!(loss < (bp_real)0.01)) printf("  XOR: loss %g after 2000 steps (from %g)\n", (double)loss, (double)first);
    CHECK(loss < (bp_real)0.01 && loss < first);
    CHECK(out.data[0] < (bp_real)0.2 && out.data[1] > (bp_real)0.8 && out.data[2] > (bp_real)0.8 &&
          out.data[3] < (bp_real)0.2);
    bp_mlp_free(net);

    cfg.max_batch = 60;
    cfg.loss = BP_LOSS_SOFTMAX_XENT;
    cfg.optimizer = BP_OPT_ADAM;
    cfg.lr = (bp_real)0.05;
    net = bp_mlp_new(2, blob_widths, blob_acts, &cfg);
    bp_rng_seed(&rng, 11);
    for (r = 0; r < 60; r++) { /* class c around (2c, (c % 2) * 3) */
        labels[r] = r % 3;
        blobs.data[2 * r] = (bp_real)(2 * labels[r] + 0.5 * bp_rng_normal(&rng));
        blobs.data[2 * r + 1] = (bp_real)(3 * (labels[r] % 2) + 0.5 * bp_rng_normal(&rng));
    }
    for (i = 0; i < 300; i++) loss = bp_mlp_train_step(net, &blobs, NULL, labels);
    out = bp_mlp_predict(net, &blobs);
    for (r = 0; r < 60; r++) {
        const bp_real *row = out.data + 3 * r;
        int best = row[1] > row[0] ? 1 : 0;
        if (row[2] > row[best]) best = 2;
        correct += best == labels[r];
    }
    if (correct < 57) printf("  blobs: %d/60 correct, loss %g\n", correct, (double)loss);
    CHECK(correct >= 57 && loss < (bp_real)0.2);
    EXPECT_NO_ERROR();
    bp_mlp_free(net);
    bp_tensor_free(&blobs);
}

/* ---- every argument check: one message, NULL or NaN or {0,0,NULL} returned, the network unchanged ---- */

static void test_mlp_guards(void)
{
    static const int widths[] = {5, 7, 6, 4}, acts[] = {BP_ACT_RELU, BP_ACT_TANH, BP_ACT_NONE};
    int bad_widths[] = {5, 7, 0, 4}, bad_acts[] = {BP_ACT_RELU, 9, BP_ACT_NONE};
    bp_mlp_config cfg = bp_mlp_default_config();
    bp_mlp *net, *xent;
    bp_tensor x = bp_tensor_new(3, 5), y = bp_tensor_new(3, 4), wide = bp_tensor_new(3, 6);
    bp_tensor tall = bp_tensor_new(33, 5), snapshot, out;
    int labels[] = {0, 1, 3}, bad_labels[] = {0, 4, 1};
    long before = test_mallocs;

    /* bp_mlp_new: NULL, no allocation made */
    CHECK(bp_mlp_new(0, widths, acts, NULL) == NULL);
    EXPECT_ERROR("bp_mlp_new", "0 layers", "at least 1 layer");
    CHECK(bp_mlp_new(3, NULL, acts, NULL) == NULL);
    EXPECT_ERROR("bp_mlp_new", "widths 0x0");
    CHECK(bp_mlp_new(3, widths, NULL, NULL) == NULL);
    EXPECT_ERROR("bp_mlp_new", "activations 0x0");
    CHECK(bp_mlp_new(3, bad_widths, acts, NULL) == NULL);
    EXPECT_ERROR("bp_mlp_new", "widths[2] is 0");
    bad_widths[2] = -3;
    CHECK(bp_mlp_new(3, bad_widths, acts, NULL) == NULL);
    EXPECT_ERROR("bp_mlp_new", "widths[2] is -3");
    CHECK(bp_mlp_new(3, widths, bad_acts, NULL) == NULL);
    EXPECT_ERROR("bp_mlp_new", "activations[1] is 9");
    cfg.max_batch = 0;
    CHECK(bp_mlp_new(3, widths, acts, &cfg) == NULL);
    EXPECT_ERROR("bp_mlp_new", "config.max_batch is 0");
    cfg = bp_mlp_default_config();
    cfg.loss = 2;
    CHECK(bp_mlp_new(3, widths, acts, &cfg) == NULL);
    EXPECT_ERROR("bp_mlp_new", "config.loss 2");
    cfg = bp_mlp_default_config();
    cfg.optimizer = -1;
    CHECK(bp_mlp_new(3, widths, acts, &cfg) == NULL);
    EXPECT_ERROR("bp_mlp_new", "config.optimizer -1");
    cfg = bp_mlp_default_config();
    cfg.lr = (bp_real)NAN;
    CHECK(bp_mlp_new(3, widths, acts, &cfg) == NULL);
    EXPECT_ERROR("bp_mlp_new", "config.lr is nan");
    cfg = bp_mlp_default_config();
    cfg.beta2 = 1;
    CHECK(bp_mlp_new(3, widths, acts, &cfg) == NULL);
    EXPECT_ERROR("bp_mlp_new", "beta2 1");
    cfg = bp_mlp_default_config();
    cfg.momentum = -1;
    CHECK(bp_mlp_new(3, widths, acts, &cfg) == NULL);
    EXPECT_ERROR("bp_mlp_new", "momentum -1");
    cfg = bp_mlp_default_config();
    cfg.max_batch = 1 << 20;
    { /* too big to count: 2^20 rows of 2^12 outputs in one tensor */
        int huge[] = {5, 1 << 12};
        CHECK(bp_mlp_new(1, huge, acts, &cfg) == NULL);
        EXPECT_ERROR("bp_mlp_new", "layer 0 is 5x4096 with max_batch 1048576");
    }
    cfg.max_batch = 1 << 14;
    { /* each tensor fits, not all of them together */
        int big[] = {5, 1 << 15, 1 << 15};
        CHECK(bp_mlp_new(2, big, acts, &cfg) == NULL);
        EXPECT_ERROR("bp_mlp_new", "2 layers of", "more than INT_MAX");
    }
    CHECK(test_mallocs == before);
    test_fail_malloc = 1;
    CHECK(bp_mlp_new(3, widths, acts, NULL) == NULL);
    test_fail_malloc = 0;
    EXPECT_ERROR("bp_mlp_new", "out of memory allocating");

    net = mlp_make(acts, BP_LOSS_MSE, BP_OPT_MOMENTUM, 32);
    xent = mlp_make(acts, BP_LOSS_SOFTMAX_XENT, BP_OPT_SGD, 3);
    snapshot = bp_tensor_new(1, net->all.cols);
    bp_mlp_train_step(net, &x, &y, NULL); /* state not all zeros */
    memcpy(snapshot.data, net->all.data, element_count(&snapshot) * sizeof(bp_real));

    /* bp_mlp_predict */
    out = bp_mlp_predict(NULL, &x);
    EXPECT_ERROR("bp_mlp_predict", "net is NULL");
    CHECK(out.rows == 0 && out.cols == 0 && out.data == NULL);
    out = bp_mlp_predict(net, NULL);
    EXPECT_ERROR("bp_mlp_predict", "x is NULL");
    CHECK(out.data == NULL);
    out = bp_mlp_predict(net, &wide);
    EXPECT_ERROR("bp_mlp_predict", "x is 3x6 but the network takes n x 5, n <= 32 (max_batch)");
    CHECK(out.data == NULL);
    out = bp_mlp_predict(net, &tall);
    EXPECT_ERROR("bp_mlp_predict", "x is 33x5", "n <= 32");
    CHECK(out.data == NULL);
    {
        bp_tensor inside = bp_tensor_rows(&net->layer[0].a, 0, 1); /* the network's own memory as x */
        inside.cols = 5;
        out = bp_mlp_predict(net, &inside);
        EXPECT_ERROR("bp_mlp_predict", "the network", "shares memory with x");
        CHECK(out.data == NULL);
    }
    CHECK(same_bits(&snapshot, &net->all)); /* (predict writes activations: so only after errors) */

    /* bp_mlp_train_step */
    CHECK(isnan(bp_mlp_train_step(NULL, &x, &y, NULL)));
    EXPECT_ERROR("bp_mlp_train_step", "net is NULL");
    CHECK(isnan(bp_mlp_train_step(net, NULL, &y, NULL)));
    EXPECT_ERROR("bp_mlp_train_step", "x is NULL");
    CHECK(isnan(bp_mlp_train_step(net, &wide, &y, NULL)));
    EXPECT_ERROR("bp_mlp_train_step", "x is 3x6");
    CHECK(isnan(bp_mlp_train_step(net, &x, NULL, NULL)));
    EXPECT_ERROR("bp_mlp_train_step", "y is NULL");
    CHECK(isnan(bp_mlp_train_step(net, &x, &x, NULL)));
    EXPECT_ERROR("bp_mlp_train_step", "x is 3x5 but y is 3x5 (y must be 3x4");
    CHECK(isnan(bp_mlp_train_step(net, &x, &y, labels)));
    EXPECT_ERROR("bp_mlp_train_step", "labels given, but config.loss is BP_LOSS_MSE");
    {
        bp_tensor inside = bp_tensor_rows(&net->layer[2].da, 0, 3);
        CHECK(isnan(bp_mlp_train_step(net, &x, &inside, NULL)));
        EXPECT_ERROR("bp_mlp_train_step", "the network", "shares memory with y");
    }
    net->config.lr = -1;
    CHECK(isnan(bp_mlp_train_step(net, &x, &y, NULL)));
    EXPECT_ERROR("bp_mlp_train_step", "config.lr is -1");
    net->config.lr = (bp_real)0.1;
    net->config.optimizer = BP_OPT_ADAM; /* its state was made for momentum */
    CHECK(isnan(bp_mlp_train_step(net, &x, &y, NULL)));
    EXPECT_ERROR("bp_mlp_train_step", "config.optimizer is 2, not the one the network was made for");
    net->config.optimizer = BP_OPT_SGD;
    CHECK(isnan(bp_mlp_train_step(net, &x, &y, NULL)));
    EXPECT_ERROR("bp_mlp_train_step", "config.optimizer is 0");
    net->config.optimizer = BP_OPT_MOMENTUM;
    CHECK(same_bits(&snapshot, &net->all));

    CHECK(isnan(bp_mlp_train_step(xent, &x, NULL, NULL)));
    EXPECT_ERROR("bp_mlp_train_step", "labels is NULL");
    CHECK(isnan(bp_mlp_train_step(xent, &x, &y, labels)));
    EXPECT_ERROR("bp_mlp_train_step", "y given, but config.loss is BP_LOSS_SOFTMAX_XENT");
    CHECK(isnan(bp_mlp_train_step(xent, &x, NULL, bad_labels)));
    EXPECT_ERROR("bp_mlp_train_step", "labels[1] is 4", "0..3");
    CHECK(xent->step == 0 && net->step == 1);
    CHECK(bp_mlp_train_step(xent, &x, NULL, labels) > 0);
    EXPECT_NO_ERROR();

    bp_mlp_free(net);
    bp_mlp_free(xent);
    bp_tensor_free(&x);
    bp_tensor_free(&y);
    bp_tensor_free(&wide);
    bp_tensor_free(&tall);
    bp_tensor_free(&snapshot);
}

#ifndef BACKPROP_NO_STDIO
/* ---- one .npz file, as PyTorch's state_dict ---------------------------------------------------------- */

/* the trained PyTorch model of examples/from_pytorch (written by its export.py; committed) */
static void example_path(char *path, size_t size, const char *file)
{
    snprintf(path, size, "%s/../../examples/from_pytorch/%s", fixtures_dir, file);
}

typedef struct member_list {
    int count;
    char names[8][16];
    int rows[8], cols[8];
} member_list;

static void list_member(void *ctx, const char *name, int rows, int cols)
{
    member_list *m = (member_list *)ctx;
    if (m->count < 8) {
        snprintf(m->names[m->count], sizeof m->names[0], "%s", name);
        m->rows[m->count] = rows;
        m->cols[m->count] = cols;
    }
    m->count++;
}

/* the whole file as bytes (the archive is stored, not compressed: each member's .npy header is in it) */
static long read_bytes(const char *path, char *out, long size)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f) return -1;
    n = (long)fread(out, 1, (size_t)size - 1, f);
    fclose(f);
    out[n < 0 ? 0 : n] = 0;
    return n;
}

static int contains_bytes(const char *hay, long n, const char *needle)
{
    long i, k = (long)strlen(needle);
    for (i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, (size_t)k) == 0) return 1;
    return 0;
}

/* Saved by backprop.h: the names and layouts of nn.Sequential(Linear(5,7), ReLU, Linear(7,6), Tanh,
   Linear(6,4)).state_dict(): "0.weight" 7x5 = W^T, "0.bias" 1-D (7,), "2.weight", "2.bias", "4.weight",
   "4.bias" (the activations take numbers 1 and 3; a BP_ACT_NONE takes none). */
static void test_mlp_pytorch_layout(void)
{
    static const int acts[] = {BP_ACT_RELU, BP_ACT_TANH, BP_ACT_NONE}, none_first[] = {BP_ACT_NONE, BP_ACT_SIGMOID};
    static const int widths2[] = {3, 2, 5};
    const char *path = SCRATCH "/mlp_layout.npz";
    static const char *const names[] = {"0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"};
    bp_mlp *net = mlp_make(acts, BP_LOSS_MSE, BP_OPT_SGD, 4);
    member_list m;
    char bytes[8192];
    long n;
    int l, r, c;
    bp_rng rng;
    bp_rng_seed(&rng, 2);
    for (l = 0; l < 3; l++) bp_tensor_randn(&net->layer[l].b, &rng, 1);
    CHECK(bp_mlp_save(net, path) == 0);
    memset(&m, 0, sizeof m);
    CHECK(bp_npz_list(path, list_member, &m) == 6 && m.count == 6);
    for (l = 0; l < 3; l++) {
        const bp_mlp_layer *L = &net->layer[l];
        bp_tensor weight = {0, 0, NULL}, bias = {0, 0, NULL};
        int same = 1;
        CHECK(strcmp(m.names[2 * l], names[2 * l]) == 0 && strcmp(m.names[2 * l + 1], names[2 * l + 1]) == 0);
        CHECK(m.rows[2 * l] == L->W.cols && m.cols[2 * l] == L->W.rows); /* out x in */
        CHECK(m.rows[2 * l + 1] == 1 && m.cols[2 * l + 1] == L->W.cols);
        CHECK(bp_npz_load(&weight, path, names[2 * l]) == 0 && bp_npz_load(&bias, path, names[2 * l + 1]) == 0);
        for (r = 0; r < L->W.rows; r++)
            for (c = 0; c < L->W.cols; c++) same &= weight.data[c * weight.cols + r] == L->W.data[r * L->W.cols + c];
        CHECK(same && same_bits(&bias, &L->b));
        bp_tensor_free(&weight);
        bp_tensor_free(&bias);
    }
    /* the .npy headers inside: the weight 2-D, the bias 1-D, as state_dict's tensors are */
    n = read_bytes(path, bytes, sizeof bytes);
    CHECK(n > 0 && contains_bytes(bytes, n, "'shape': (7, 5), }") && contains_bytes(bytes, n, "'shape': (7,), }") &&
          contains_bytes(bytes, n, "'shape': (4, 6), }") && contains_bytes(bytes, n, "'shape': (4,), }") &&
          !contains_bytes(bytes, n, "'shape': (1, "));
    bp_mlp_free(net);
    /* a first layer without activation: the next Linear is module 1 */
    net = bp_mlp_new(2, widths2, none_first, NULL);
    CHECK(bp_mlp_save(net, path) == 0);
    memset(&m, 0, sizeof m);
    CHECK(bp_npz_list(path, list_member, &m) == 4);
    CHECK(strcmp(m.names[0], "0.weight") == 0 && strcmp(m.names[2], "1.weight") == 0 &&
          strcmp(m.names[3], "1.bias") == 0 && m.rows[2] == 5 && m.cols[2] == 2);
    bp_mlp_free(net);
    remove(path);
    EXPECT_NO_ERROR();
}

/* Saved and loaded: the same weights bit for bit and the same predictions; the optimizer starts again;
   a file of another network, a missing member, a missing file: -1, a reason, the network unchanged. */
static void test_mlp_save_load(void)
{
    static const int acts[] = {BP_ACT_SIGMOID, BP_ACT_RELU, BP_ACT_NONE}, other_acts[] = {BP_ACT_RELU, BP_ACT_NONE};
    static const int other_widths[] = {5, 7, 4}, wrong_widths[] = {5, 8, 6, 4};
    const char *path = SCRATCH "/mlp_round_trip.npz", *other_path = SCRATCH "/mlp_other.npz";
    bp_mlp *net = mlp_make(acts, BP_LOSS_SOFTMAX_XENT, BP_OPT_ADAM, 6), *back, *other, *wrong;
    bp_mlp_config cfg = bp_mlp_default_config();
    bp_tensor x = bp_tensor_new(6, 5), out1 = bp_tensor_new(6, 4), snapshot;
    const int labels[] = {0, 1, 2, 3, 0, 1};
    bp_rng rng;
    int i, l, same = 1;
    bp_rng_seed(&rng, 9);
    bp_tensor_randn(&x, &rng, 1);
    for (i = 0; i < 5; i++) bp_mlp_train_step(net, &x, NULL, labels);
    CHECK(bp_mlp_save(net, path) == 0);
    CHECK(bp_failure_reason()[0] == 0);
    memcpy(out1.data, bp_mlp_predict(net, &x).data, element_count(&out1) * sizeof(bp_real));
    back = mlp_make(acts, BP_LOSS_SOFTMAX_XENT, BP_OPT_ADAM, 6);
    back->config.seed = 1234;
    bp_mlp_train_step(back, &x, NULL, labels); /* some optimizer state, to be cleared by the load */
    CHECK(back->step == 1);
    CHECK(bp_mlp_load(back, path) == 0);
    for (l = 0; l < 3; l++) {
        same &= same_bits(&net->layer[l].W, &back->layer[l].W) && same_bits(&net->layer[l].b, &back->layer[l].b);
        same &= all_equal(&back->layer[l].mW, 0) && all_equal(&back->layer[l].vW, 0) &&
                all_equal(&back->layer[l].mb, 0) && all_equal(&back->layer[l].vb, 0);
    }
    CHECK(same && back->step == 0);
    {
        bp_tensor out2 = bp_mlp_predict(back, &x);
        CHECK(same_bits(&out1, &out2));
    }
    EXPECT_NO_ERROR();

    /* files that do not fit: the reason names the file and the member, and back is unchanged */
    snapshot = bp_tensor_new(1, back->all.cols);
    memcpy(snapshot.data, back->all.data, element_count(&snapshot) * sizeof(bp_real));
    cfg.max_batch = 6;
    other = bp_mlp_new(2, other_widths, other_acts, &cfg); /* 2 layers: 4 members */
    CHECK(bp_mlp_save(other, other_path) == 0);
    CHECK(bp_mlp_load(back, other_path) == -1);
    CHECK(strstr(bp_failure_reason(), "bp_mlp_load: ") && strstr(bp_failure_reason(), "4 members") &&
          strstr(bp_failure_reason(), "has 6"));
    CHECK(bp_mlp_load(other, path) == -1); /* and the other way */
    CHECK(strstr(bp_failure_reason(), "6 members") != NULL);
    wrong = bp_mlp_new(3, wrong_widths, acts, &cfg); /* the same members, another width */
    CHECK(bp_mlp_load(wrong, path) == -1);
    CHECK(strstr(bp_failure_reason(), "0.weight is 7x5, but layer 0 is nn.Linear(5, 8): its weight is 8x5") != NULL);
    CHECK(bp_mlp_load(back, SCRATCH "/no_such_file.npz") == -1);
    CHECK(strstr(bp_failure_reason(), "no_such_file.npz") != NULL);
    { /* the activations differ: module numbers 0, 2, 4 against 0, 1, 3 */
        static const int shifted[] = {BP_ACT_NONE, BP_ACT_RELU, BP_ACT_NONE};
        bp_mlp *s = mlp_make(shifted, BP_LOSS_MSE, BP_OPT_SGD, 2);
        CHECK(bp_mlp_load(s, path) == -1);
        CHECK(strstr(bp_failure_reason(), "no member '1.weight'") != NULL);
        bp_mlp_free(s);
    }
    { /* a bias of the wrong size */
        static const int one_widths[] = {2, 3}, one_act[] = {BP_ACT_NONE};
        bp_mlp *one = bp_mlp_new(1, one_widths, one_act, NULL);
        bp_tensor weight = bp_tensor_new(3, 2), bias = bp_tensor_new(1, 4);
        const char *names[] = {"0.weight", "0.bias"};
        const bp_tensor *members[2];
        members[0] = &weight;
        members[1] = &bias;
        CHECK(bp_npz_save(other_path, 2, names, members) == 0);
        CHECK(bp_mlp_load(one, other_path) == -1);
        CHECK(strstr(bp_failure_reason(), "0.bias is 1x4, but layer 0 has 3 outputs") != NULL);
        bp_tensor_free(&weight);
        bp_tensor_free(&bias);
        bp_mlp_free(one);
    }
    CHECK(same_bits(&snapshot, &back->all));
    CHECK(bp_mlp_save(NULL, path) == -1);
    EXPECT_ERROR("bp_mlp_save", "net is NULL");
    CHECK(bp_mlp_save(net, NULL) == -1);
    EXPECT_ERROR("bp_mlp_save", "path is NULL");
    CHECK(bp_mlp_load(NULL, path) == -1);
    EXPECT_ERROR("bp_mlp_load", "net is NULL");
    CHECK(bp_mlp_load(net, NULL) == -1);
    EXPECT_ERROR("bp_mlp_load", "path is NULL");
    remove(path);
    remove(other_path);
    bp_mlp_free(net);
    bp_mlp_free(back);
    bp_mlp_free(other);
    bp_mlp_free(wrong);
    bp_tensor_free(&x);
    bp_tensor_free(&out1);
    bp_tensor_free(&snapshot);
}

/* PyTorch's own file (np.savez of a trained nn.Sequential's state_dict) runs here with PyTorch's outputs:
   to 1e-5 (|c - t| <= 1e-5 max(|t|, 1)), and every predicted class equal; through bp_mlp_load and through
   the explicit calls on the members as they are (z = x W^T + b with BP_TRANS_B). */
static void test_mlp_vs_pytorch(void)
{
    static const int widths[] = {4, 16, 12, 8, 3};
    static const int acts[] = {BP_ACT_RELU, BP_ACT_TANH, BP_ACT_SIGMOID, BP_ACT_NONE};
    char model[512], io[512], name[32];
    bp_tensor x = {0, 0, NULL}, logits = {0, 0, NULL}, out, a, z = {0, 0, NULL};
    bp_mlp_config cfg = bp_mlp_default_config();
    bp_mlp *net;
    double worst = 0, worst_explicit = 0;
    int r, j, l, classes_equal = 1;
    example_path(model, sizeof model, "mlp.npz");
    example_path(io, sizeof io, "mlp_io.npz");
    CHECK(bp_npz_load(&x, io, "x") == 0 && bp_npz_load(&logits, io, "logits") == 0);
    CHECK(x.rows == 30 && x.cols == 4 && logits.rows == 30 && logits.cols == 3);
    if (x.rows != 30 || logits.rows != 30) {
        printf("  %s\n", bp_failure_reason());
        return;
    }
    cfg.max_batch = 30;
    net = bp_mlp_new(4, widths, acts, &cfg);
    CHECK(bp_mlp_load(net, model) == 0);
    out = bp_mlp_predict(net, &x);
    a = x;
    for (l = 0; l < 4; l++) { /* the explicit calls, on nn.Linear's out x in weight as it is */
        bp_tensor W = {0, 0, NULL}, b = {0, 0, NULL}, next = bp_tensor_new(30, widths[l + 1]);
        snprintf(name, sizeof name, "%d.weight", 2 * l);
        CHECK(bp_npz_load(&W, model, name) == 0);
        snprintf(name, sizeof name, "%d.bias", 2 * l);
        CHECK(bp_npz_load(&b, model, name) == 0);
        bp_matmul(&next, &a, &W, BP_TRANS_B);
        for (r = 0; r < next.rows; r++)
            for (j = 0; j < next.cols; j++) next.data[r * next.cols + j] += b.data[j];
        if (acts[l] == BP_ACT_RELU) bp_relu_forward(&next, &next);
        if (acts[l] == BP_ACT_TANH) bp_tanh_forward(&next, &next);
        if (acts[l] == BP_ACT_SIGMOID) bp_sigmoid_forward(&next, &next);
        bp_tensor_free(&W);
        bp_tensor_free(&b);
        bp_tensor_free(&z);
        a = z = next;
    }
    for (r = 0; r < 30; r++) {
        int mine = 0, theirs = 0;
        for (j = 0; j < 3; j++) {
            double t = (double)logits.data[3 * r + j], scale = fabs(t) > 1 ? fabs(t) : 1;
            double e1 = fabs((double)out.data[3 * r + j] - t) / scale, e2 = fabs((double)z.data[3 * r + j] - t) / scale;
            worst = e1 > worst ? e1 : worst;
            worst_explicit = e2 > worst_explicit ? e2 : worst_explicit;
            if (out.data[3 * r + j] > out.data[3 * r + mine]) mine = j;
            if (logits.data[3 * r + j] > logits.data[3 * r + theirs]) theirs = j;
        }
        classes_equal &= mine == theirs;
    }
    if (!(worst <= 1e-5 && worst_explicit <= 1e-5 && classes_equal))
        printf("  against PyTorch: worst relative difference %.2e (bp_mlp), %.2e (explicit calls); classes %s\n",
               worst, worst_explicit, classes_equal ? "equal" : "DIFFER");
    CHECK(worst <= 1e-5 && worst_explicit <= 1e-5 && classes_equal);
    EXPECT_NO_ERROR();
    bp_mlp_free(net);
    bp_tensor_free(&x);
    bp_tensor_free(&logits);
    bp_tensor_free(&z);
}

/* The CNN of examples/from_pytorch (Conv2d, ReLU, MaxPool2d twice, Flatten, Linear, ReLU, Linear; its conv
   weights saved as F x (C*K*K)) runs here, layer by layer, with PyTorch's outputs on 20 images: to 1e-5
   (|c - t| <= 1e-5 max(|t|, 1)), and every predicted class equal. */
static void test_cnn_vs_pytorch(void)
{
    static const bp_window conv[2] = {{1, 12, 12, 3, 1, 1}, {4, 6, 6, 3, 1, 1}};
    static const bp_window pool[2] = {{4, 12, 12, 2, 2, 0}, {8, 6, 6, 2, 2, 0}};
    static const int filters[2] = {4, 8}, sides[2] = {12, 6}, linear_outs[2] = {16, 3};
    static const char *const names[4][2] = {{"0.weight", "0.bias"}, {"3.weight", "3.bias"},
                                            {"7.weight", "7.bias"}, {"9.weight", "9.bias"}};
    char model[512], io[512];
    bp_tensor x = {0, 0, NULL}, logits = {0, 0, NULL}, a, y = {0, 0, NULL};
    double worst = 0;
    int r, j, l, classes_equal = 1;
    example_path(model, sizeof model, "cnn.npz");
    example_path(io, sizeof io, "cnn_io.npz");
    CHECK(bp_npz_load(&x, io, "x") == 0 && bp_npz_load(&logits, io, "logits") == 0);
    CHECK(x.rows == 20 && x.cols == 144 && logits.rows == 20 && logits.cols == 3);
    if (x.rows != 20 || x.cols != 144 || logits.rows != 20 || logits.cols != 3) {
        printf("  %s\n", bp_failure_reason());
        bp_tensor_free(&x);
        bp_tensor_free(&logits);
        return;
    }
    a = x;
    for (l = 0; l < 4; l++) {
        bp_tensor W = {0, 0, NULL}, b = {0, 0, NULL}, next;
        CHECK(bp_npz_load(&W, model, names[l][0]) == 0 && bp_npz_load(&b, model, names[l][1]) == 0);
        if (l < 2) { /* Conv2d, ReLU, MaxPool2d(2) */
            int side = sides[l], F = filters[l];
            bp_tensor z = bp_tensor_new(20, F * side * side), col = bp_tensor_new(conv[l].channels * 9, side * side);
            int *argmax = (int *)malloc(sizeof(int) * 20 * (size_t)(F * side * side / 4));
            CHECK(W.rows == F && W.cols == conv[l].channels * 9 && b.rows == 1 && b.cols == F);
            next = bp_tensor_new(20, F * side * side / 4);
            bp_conv2d_forward(&conv[l], &a, &W, &b, &z, &col);
            bp_relu_forward(&z, &z);
            bp_maxpool2d_forward(&pool[l], &z, &next, argmax);
            free(argmax);
            bp_tensor_free(&z);
            bp_tensor_free(&col);
        } else { /* Linear on its out x in weight (the last pool's rows are torch's flatten(1)), then ReLU */
            next = bp_tensor_new(20, linear_outs[l - 2]);
            bp_matmul(&next, &a, &W, BP_TRANS_B);
            for (r = 0; r < next.rows; r++)
                for (j = 0; j < next.cols; j++) next.data[r * next.cols + j] += b.data[j];
            if (l == 2) bp_relu_forward(&next, &next);
        }
        bp_tensor_free(&W);
        bp_tensor_free(&b);
        bp_tensor_free(&y);
        a = y = next;
    }
    for (r = 0; r < 20; r++) {
        int mine = 0, theirs = 0;
        for (j = 0; j < 3; j++) {
            double t = (double)logits.data[3 * r + j], scale = fabs(t) > 1 ? fabs(t) : 1;
            double e = fabs((double)y.data[3 * r + j] - t) / scale;
            worst = e > worst ? e : worst;
            if (y.data[3 * r + j] > y.data[3 * r + mine]) mine = j;
            if (logits.data[3 * r + j] > logits.data[3 * r + theirs]) theirs = j;
        }
        classes_equal &= mine == theirs;
    }
    if (!(worst <= 1e-5 && classes_equal))
        printf("  against PyTorch: worst relative difference %.2e; classes %s\n", worst,
               classes_equal ? "equal" : "DIFFER");
    CHECK(worst <= 1e-5 && classes_equal);
    EXPECT_NO_ERROR();
    bp_tensor_free(&x);
    bp_tensor_free(&logits);
    bp_tensor_free(&y);
}
#endif
