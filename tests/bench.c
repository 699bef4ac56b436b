/* tests/bench.c - the source of `make bench`: how fast is bp_matmul, and one training step?

   Part 1, matmul.  For each problem C = op(A).op(B) it measures GFLOP/s (2*M*N*K / seconds) of
     ijk       the naive i-j-k triple loop: each C element is a dot product (inner loop over k),
     ikj       the naive i-k-j loop: the inner loop runs along a row of C and a row of op(B),
     bp        bp_matmul,
     OpenBLAS  cblas_sgemm / cblas_dgemm on one thread (only when built with -DBENCH_OPENBLAS),
   and prints bp's speed as a ratio to each.  The naive loops handle the same transposes as bp_matmul by
   indexing the transposed operand directly, as a naive user would; one loop nest per form, so no loop
   carries a branch that a user's specialised loop would not have.

   --matmul-only: only this table.

   Part 2, a training step: Linear(784->256) -> ReLU -> Linear(256->10) -> MSE with plain SGD, at batch
   1, 64 and 256, in microseconds per step (forward + backward + update): with backprop.h, with the same
   step written around the naive i-k-j loop, and (--torch FILE) PyTorch's time for it on one thread, as
   measured by tests/bench_torch.py just before (make bench runs both).  --train-only times backprop.h's
   step alone and prints the process's peak memory (max RSS): what such a training program needs.

   Part 3 (--cnn-only), the CNN of examples/fashion_cnn.c: one training step at batch 64 (forward +
   backward + Adam), and (--torch FILE) PyTorch's time for the same network, as tests/bench_torch.py
   measured it.

   Part 4 (--mlp-only), the network in one object (bp_mlp_train_step) against the same step in explicit
   calls: what the object's bookkeeping costs.

   Part 5 (--passes-only), float builds: every optimizer, activation and loss pass, the Linear layer's bias
   add and bias gradient (column sums) and dropout, in GB/s beside a plain triad loop over arrays of the
   same size, in and out of cache.  Part 6 (--fashion-only): the training steps of examples/fashion_mnist.c's
   network, against PyTorch's (--torch FILE).  Both count CPU time.

   Part 7, a tiny network one sample per step (genann's example 4: 4-4-3 sigmoid, Iris-shaped data): the
   step in backprop.h calls against genann's own loops in plain C (with its exact sigmoid, and with its
   default lookup-table sigmoid), from the same weights, timed alternately
   (--tiny-only: only this, 750,000 steps per timing as in genann's example; --tiny-passes N: N passes of
   150 steps).  Where per-call costs (argument checks, dispatch) show: a product here is 12-16 multiply-adds.

   Part 8, built with -fopenmp (make bench builds build/bench_omp; --threads-only): bp_matmul on 1 and on
   2 threads, the speedup, and a bit-for-bit comparison of the two results.

   Method.  The machine this runs on may be a small shared VM, so a single timing means little:
     - one timing = enough back-to-back calls to last >= MIN_TIMING seconds, divided by the call count;
     - each repetition times every method once, in an order that rotates from one repetition to the next,
       so a slow spell of the machine hits all methods alike;
     - the reported figure is the median over REPS repetitions (a method whose single call takes
       >= SLOW_CALL seconds is timed only in every other repetition, to keep the run short);
     - the ratios compare medians measured in the same run, interleaved.
   Before timing, every method's result is compared with the i-k-j result: a benchmark of a wrong kernel
   is worthless, so a mismatch prints MISMATCH and the program exits with status 1.  Speed never fails it.

   Build (see the Makefile):
       cc -O3 -march=native -ffp-contract=fast tests/bench.c -o build/bench -lm
       cc -O3 -march=native -ffp-contract=fast -DBENCH_OPENBLAS -I<openblas include dir> tests/bench.c \
          -o build/bench -lopenblas -lm
   add -DBACKPROP_DOUBLE for double precision.
   OpenBLAS 0.3.21 does not know every CPU: on Intel Emerald Rapids it falls back to its SSE3 "Prescott"
   kernel, 4x slower than its AVX-512 one (and PyTorch inherits that), which would make every ratio here
   fiction.  So make bench first runs `bench --openblas-probe` under each OPENBLAS_CORETYPE worth trying
   (the variable is read when the library loads: one process each), and runs OpenBLAS and PyTorch pinned
   to the fastest (tests/openblas_core.sh). */

#define _POSIX_C_SOURCE 199309L /* clock_gettime */
#define _DEFAULT_SOURCE          /* getrusage's ru_maxrss, for the peak memory */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKPROP_IMPLEMENTATION
#include "../backprop.h"

#ifdef BENCH_OPENBLAS
#include <cblas.h>
#endif

#define MIN_TIMING 0.020 /* seconds: one timing is at least this long */
#define REPS 7           /* repetitions; the median is reported */
#define SLOW_CALL 0.100  /* seconds: a call this slow is timed in every other repetition only */
#define BEST_TRIES 40    /* single calls of bp and of OpenBLAS, alternating, for the "best" ratio */
#ifndef IJK_BUDGET
/* seconds: skip the i-j-k loop where one call is predicted to take longer.  The prediction scales the rate
   measured on a smaller problem of the same form, and is optimistic: at 1024^3 (A.B) the loop falls out of
   cache and runs ~3x slower per flop than at 512^3 (about 3.5 s per call on a Zen 5 core). */
#define IJK_BUDGET 0.5
#endif

#ifdef BACKPROP_DOUBLE
#define MATCH_TOL 1e-10 /* max |C - C_ref| / max |C_ref| */
#else
#define MATCH_TOL 1e-4
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double median(double *v, int n) /* sorts v */
{
    int i, j;
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- the methods: all share bp_matmul's signature (C = op(A).op(B), C is M x N) ------------------------
   A is stored M x K, or K x M with BP_TRANS_A;  B is stored K x N, or N x K with BP_TRANS_B. */

typedef void (*matmul_fn)(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags);

/* (a) i-j-k: C[i][j] = sum_p op(A)[i][p] * op(B)[p][j], a dot product per element of C. */
static void naive_ijk(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags)
{
    const bp_real *a = A->data, *b = B->data;
    bp_real *c = C->data;
    size_t M = (size_t)C->rows, N = (size_t)C->cols, K = (size_t)((flags & BP_TRANS_A) ? A->rows : A->cols);
    size_t i, j, p;
    bp_real s;
    switch (flags) {
    case 0: /* A[i][p] * B[p][j] */
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                for (s = 0, p = 0; p < K; p++) s += a[i * K + p] * b[p * N + j];
                c[i * N + j] = s;
            }
        break;
    case BP_TRANS_A: /* A[p][i] * B[p][j] */
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                for (s = 0, p = 0; p < K; p++) s += a[p * M + i] * b[p * N + j];
                c[i * N + j] = s;
            }
        break;
    case BP_TRANS_B: /* A[i][p] * B[j][p] */
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                for (s = 0, p = 0; p < K; p++) s += a[i * K + p] * b[j * K + p];
                c[i * N + j] = s;
            }
        break;
    default: /* both transposed: A[p][i] * B[j][p] */
        for (i = 0; i < M; i++)
            for (j = 0; j < N; j++) {
                for (s = 0, p = 0; p < K; p++) s += a[p * M + i] * b[j * K + p];
                c[i * N + j] = s;
            }
        break;
    }
}

/* (b) i-k-j: C[i][:] += op(A)[i][p] * op(B)[p][:] for each p; the inner loop walks a row of C. */
static void naive_ikj(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags)
{
    const bp_real *a = A->data, *b = B->data;
    bp_real *c = C->data;
    size_t M = (size_t)C->rows, N = (size_t)C->cols, K = (size_t)((flags & BP_TRANS_A) ? A->rows : A->cols);
    size_t i, j, p;
    bp_real aip;
    memset(c, 0, M * N * sizeof *c);
    switch (flags) {
    case 0: /* A[i][p], B[p][j] */
        for (i = 0; i < M; i++)
            for (p = 0; p < K; p++)
                for (aip = a[i * K + p], j = 0; j < N; j++) c[i * N + j] += aip * b[p * N + j];
        break;
    case BP_TRANS_A: /* A[p][i], B[p][j] */
        for (i = 0; i < M; i++)
            for (p = 0; p < K; p++)
                for (aip = a[p * M + i], j = 0; j < N; j++) c[i * N + j] += aip * b[p * N + j];
        break;
    case BP_TRANS_B: /* A[i][p], B[j][p]: op(B)'s row is a column of B, strided */
        for (i = 0; i < M; i++)
            for (p = 0; p < K; p++)
                for (aip = a[i * K + p], j = 0; j < N; j++) c[i * N + j] += aip * b[j * K + p];
        break;
    default: /* A[p][i], B[j][p] */
        for (i = 0; i < M; i++)
            for (p = 0; p < K; p++)
                for (aip = a[p * M + i], j = 0; j < N; j++) c[i * N + j] += aip * b[j * K + p];
        break;
    }
}

#ifdef BENCH_OPENBLAS
#ifdef BACKPROP_DOUBLE
#define BENCH_GEMM cblas_dgemm
#else
#define BENCH_GEMM cblas_sgemm
#endif
/* (d) OpenBLAS, row-major, with the same transposes; the leading dimension of a stored matrix is its cols. */
static void openblas_gemm(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags)
{
    int ta = (flags & BP_TRANS_A) != 0, tb = (flags & BP_TRANS_B) != 0;
    int M = C->rows, N = C->cols, K = ta ? A->rows : A->cols;
    BENCH_GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1,
               A->data, A->cols, B->data, B->cols, 0, C->data, C->cols);
}
#endif

enum { M_IJK, M_IKJ, M_BP, M_BLAS, M_ALL };
#ifdef BENCH_OPENBLAS
#define N_METHODS 4
#else
#define N_METHODS 3
#endif
static const matmul_fn method_fn[M_ALL] = {naive_ijk, naive_ikj, bp_matmul,
#ifdef BENCH_OPENBLAS
                                           openblas_gemm
#else
                                           0
#endif
};
static const char *const method_name[M_ALL] = {"ijk", "ikj", "bp", "OpenBLAS"};

/* ---- timing a method -------------------------------------------------------------------------------- */

/* Seconds for `calls` back-to-back calls.  Everything is allocated beforehand. */
static double time_calls(matmul_fn fn, bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags, int calls)
{
    double t0 = now();
    int i;
    for (i = 0; i < calls; i++) fn(C, A, B, flags);
    return now() - t0;
}

/* Finds how many calls make one timing >= MIN_TIMING.  The first call doubles as warm-up and leaves the
   result in C for the check.  Stores the seconds per call in *per_call. */
static int calibrate(matmul_fn fn, bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags,
                     double *per_call)
{
    int calls = 1;
    for (;;) {
        double t = time_calls(fn, C, A, B, flags, calls);
        if (t >= MIN_TIMING) {
            *per_call = t / calls;
            return calls;
        }
        calls = t > 0 ? (int)(calls * 1.2 * MIN_TIMING / t) + 1 : calls * 10; /* aim 20% over */
    }
}

/* max |C - R| / max |R|; NaN if either holds a NaN */
static double rel_diff(const bp_tensor *C, const bp_tensor *R)
{
    size_t i, n = (size_t)C->rows * (size_t)C->cols;
    double maxdiff = 0, maxref = 0;
    for (i = 0; i < n; i++) {
        double d = fabs((double)C->data[i] - (double)R->data[i]), r = fabs((double)R->data[i]);
        if (d > maxdiff || d != d) maxdiff = d;
        if (r > maxref || r != r) maxref = r;
    }
    return maxdiff / (maxref > 0 ? maxref : 1);
}

/* ---- part 1: the matmul table ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    int M, N, K, flags;
} problem;

static const problem problems[] = {
    {"square", 256, 256, 256, 0},
    {"square", 512, 512, 512, 0},
    {"square", 1024, 1024, 1024, 0},
    {"MLP fwd z1 = x.W1", 64, 256, 784, 0},                /* x 64x784, W1 784x256 */
    {"MLP fwd z2 = a1.W2", 64, 10, 256, 0},                /* a1 64x256, W2 256x10 */
    {"MLP dW1 = x^T.dz", 784, 256, 64, BP_TRANS_A},        /* x 64x784, dz 64x256 */
    {"MLP dx = dz.W1^T", 64, 784, 256, BP_TRANS_B},        /* dz 64x256, W1 784x256 */
    {"square", 512, 512, 512, BP_TRANS_A},
    {"square", 512, 512, 512, BP_TRANS_B},
    {"square", 512, 512, 512, BP_TRANS_A | BP_TRANS_B},
};

static const char *form_name(int flags)
{
    static const char *const names[4] = {"A.B", "A^T.B", "A.B^T", "A^T.B^T"};
    return names[flags & 3];
}

/* GFLOP/s of the i-j-k loop on the last problem it ran, per form: predicts whether it is worth running */
static double ijk_rate[4];

/* Measures one problem: fills gflops[] (median) and best[] (fastest timing) (0 = not run) and returns bp's relative difference from i-k-j.
   Exits with status 1 on a mismatch. */
static double run_problem(const problem *pb, bp_rng *rng, double gflops[M_ALL], double best[M_ALL])
{
    const double flop = 2.0 * pb->M * pb->N * pb->K;
    int ta = (pb->flags & BP_TRANS_A) != 0, tb = (pb->flags & BP_TRANS_B) != 0;
    bp_tensor A = ta ? bp_tensor_new(pb->K, pb->M) : bp_tensor_new(pb->M, pb->K);
    bp_tensor B = tb ? bp_tensor_new(pb->N, pb->K) : bp_tensor_new(pb->K, pb->N);
    bp_tensor C[M_ALL];
    int calls[M_ALL], run[M_ALL], slow[M_ALL], n[M_ALL];
    double secs[M_ALL][REPS], per_call, bp_err = 0;
    int m, r, k;

    bp_tensor_randn(&A, rng, 1);
    bp_tensor_randn(&B, rng, 1);

    /* which methods run: i-j-k is skipped where one call is predicted to exceed IJK_BUDGET */
    for (m = 0; m < M_ALL; m++) {
        run[m] = m < N_METHODS;
        n[m] = 0;
        gflops[m] = best[m] = 0;
        C[m] = bp_tensor_new(run[m] ? pb->M : 0, run[m] ? pb->N : 0);
    }
    if (ijk_rate[pb->flags] > 0 && flop / (ijk_rate[pb->flags] * 1e9) > IJK_BUDGET) run[M_IJK] = 0;

    /* calibrate (and warm up) each method, then check every result against i-k-j */
    for (m = 0; m < M_ALL; m++) {
        if (!run[m]) continue;
        calls[m] = calibrate(method_fn[m], &C[m], &A, &B, pb->flags, &per_call);
        slow[m] = per_call >= SLOW_CALL;
    }
    for (m = 0; m < M_ALL; m++) {
        double err;
        if (!run[m] || m == M_IKJ) continue;
        err = rel_diff(&C[m], &C[M_IKJ]);
        if (m == M_BP) bp_err = err;
        if (!(err < MATCH_TOL)) {
            printf("MISMATCH: %s %dx%dx%d %s: %s differs from the naive i-k-j loop by %.3g of max|C| "
                   "(tolerance %.0e)\n",
                   pb->name, pb->M, pb->N, pb->K, form_name(pb->flags), method_name[m], err, MATCH_TOL);
            exit(1);
        }
    }

    /* the timed repetitions: rotate the order each time; slow methods only on even repetitions */
    for (r = 0; r < REPS; r++)
        for (k = 0; k < M_ALL; k++) {
            m = (r + k) % M_ALL;
            if (!run[m] || (slow[m] && r % 2)) continue;
            secs[m][n[m]++] = time_calls(method_fn[m], &C[m], &A, &B, pb->flags, calls[m]) / calls[m];
        }
    for (m = 0; m < M_ALL; m++)
        if (run[m]) gflops[m] = flop / median(secs[m], n[m]) * 1e-9;
    /* best: the fastest of BEST_TRIES single calls of bp and OpenBLAS, alternating.  A timing that spans no
       preemption is the machine's real speed; on a busy VM the 20 ms timings above rarely do */
    for (m = 0; m < M_ALL; m++)
        if (run[m] && m >= M_BP) best[m] = 1e30;
    for (r = 0; r < BEST_TRIES; r++)
        for (m = M_BP; m < M_ALL; m++)
            if (run[m]) {
                double t = time_calls(method_fn[m], &C[m], &A, &B, pb->flags, 1);
                if (t < best[m]) best[m] = t;
            }
    for (m = M_BP; m < M_ALL; m++)
        if (run[m]) best[m] = flop / best[m] * 1e-9;
    if (run[M_IJK]) ijk_rate[pb->flags] = gflops[M_IJK];

    for (m = 0; m < M_ALL; m++) bp_tensor_free(&C[m]);
    bp_tensor_free(&A);
    bp_tensor_free(&B);
    return bp_err;
}

static void print_gflops(double g)
{
    if (g > 0)
        printf(" %8.1f", g);
    else
        printf(" %8s", "-");
}

static void print_ratio(double num, double den)
{
    if (num > 0 && den > 0)
        printf(num / den < 10 ? " %7.2fx" : " %7.1fx", num / den); /* 0.95x: the targets are in hundredths */
    else
        printf(" %8s", "-");
}

/* Runs every problem, prints the table, and returns bp / i-j-k on square 512^3 A.B. */
static double matmul_table(bp_rng *rng)
{
    double ratio512 = 0;
    size_t i;
    int m;
    printf("\nmatmul C = op(A).op(B), C is MxN, inner dimension K: GFLOP/s = 2MNK / s, median of %d\n", REPS);
    printf("%-20s %5s %5s %5s %-7s", "problem", "M", "N", "K", "form");
    for (m = 0; m < N_METHODS; m++) printf(" %8s", method_name[m]);
    printf(" %8s %8s", "bp/ijk", "bp/ikj");
#ifdef BENCH_OPENBLAS
    printf(" %8s %8s", "bp/BLAS", "best");
#endif
    printf(" %9s\n", "bp err");
    for (i = 0; i < sizeof problems / sizeof problems[0]; i++) {
        const problem *pb = &problems[i];
        double g[M_ALL], best[M_ALL], err;
        err = run_problem(pb, rng, g, best);
        printf("%-20s %5d %5d %5d %-7s", pb->name, pb->M, pb->N, pb->K, form_name(pb->flags));
        for (m = 0; m < N_METHODS; m++) print_gflops(g[m]);
        print_ratio(g[M_BP], g[M_IJK]);
        print_ratio(g[M_BP], g[M_IKJ]);
#ifdef BENCH_OPENBLAS
        print_ratio(g[M_BP], g[M_BLAS]);
        print_ratio(best[M_BP], best[M_BLAS]);
#endif
        printf(" %9.1e\n", err);
        fflush(stdout);
        if (pb->M == 512 && pb->N == 512 && pb->K == 512 && pb->flags == 0 && g[M_IJK] > 0)
            ratio512 = g[M_BP] / g[M_IJK];
    }
    printf("(ijk, ikj: the naive loops; '-': i-j-k skipped, one call predicted to take > %.1f s;\n"
           " best: bp / OpenBLAS from the fastest of %d single calls each, alternating (steadier on a busy machine);\n"
           " bp err: max|C_bp - C_ikj| / max|C_ikj|, checked for every method before timing)\n",
           IJK_BUDGET, BEST_TRIES);
    return ratio512;
}

/* ---- part 2: a training step ------------------------------------------------------------------------- */

#define IN 784
#define HIDDEN 256
#define OUT 10
#define LR ((bp_real)0.001)

/* A two-layer network and every buffer one step needs, allocated once. */
typedef struct {
    int batch;
    bp_tensor x, y;                 /* one fixed batch of random inputs and targets */
    bp_tensor W1, b1, W2, b2;       /* parameters */
    bp_tensor z1, a1, z2;           /* forward activations (cached for the backward) */
    bp_tensor dz2, da1;             /* dL/dz2, then dL/da1 turned into dL/dz1 in place */
    bp_tensor dW1, db1, dW2, db2;   /* parameter gradients */
} mlp;

static mlp mlp_new(int batch, bp_rng *rng)
{
    mlp n;
    n.batch = batch;
    n.x = bp_tensor_new(batch, IN);
    n.y = bp_tensor_new(batch, OUT);
    n.W1 = bp_tensor_new(IN, HIDDEN);
    n.b1 = bp_tensor_new(1, HIDDEN);
    n.W2 = bp_tensor_new(HIDDEN, OUT);
    n.b2 = bp_tensor_new(1, OUT);
    n.z1 = bp_tensor_new(batch, HIDDEN);
    n.a1 = bp_tensor_new(batch, HIDDEN);
    n.z2 = bp_tensor_new(batch, OUT);
    n.dz2 = bp_tensor_new(batch, OUT);
    n.da1 = bp_tensor_new(batch, HIDDEN);
    n.dW1 = bp_tensor_new(IN, HIDDEN);
    n.db1 = bp_tensor_new(1, HIDDEN);
    n.dW2 = bp_tensor_new(HIDDEN, OUT);
    n.db2 = bp_tensor_new(1, OUT);
    bp_tensor_randn(&n.x, rng, 1);
    bp_tensor_randn(&n.y, rng, 1);
    bp_tensor_randn(&n.W1, rng, (bp_real)sqrt(2.0 / IN)); /* He initialisation */
    bp_tensor_randn(&n.W2, rng, (bp_real)sqrt(2.0 / HIDDEN));
    return n;
}

static void mlp_free(mlp *n)
{
    bp_tensor *t[15];
    int i;
    t[0] = &n->x, t[1] = &n->y, t[2] = &n->W1, t[3] = &n->b1, t[4] = &n->W2, t[5] = &n->b2, t[6] = &n->z1;
    t[7] = &n->a1, t[8] = &n->z2, t[9] = &n->dz2, t[10] = &n->da1, t[11] = &n->dW1, t[12] = &n->db1;
    t[13] = &n->dW2, t[14] = &n->db2;
    for (i = 0; i < 15; i++) bp_tensor_free(t[i]);
}

/* One SGD step on the batch; returns the loss of the forward pass (before this step's update). */
static bp_real mlp_step(mlp *n)
{
    bp_real loss;
    bp_linear_forward(&n->x, &n->W1, &n->b1, &n->z1); /* z1 = x.W1 + b1 */
    bp_relu_forward(&n->z1, &n->a1);                  /* a1 = relu(z1) */
    bp_linear_forward(&n->a1, &n->W2, &n->b2, &n->z2); /* z2 = a1.W2 + b2 */
    loss = bp_mse_forward(&n->z2, &n->y);
    bp_mse_backward(&n->z2, &n->y, &n->dz2);                          /* dL/dz2 */
    bp_linear_backward(&n->a1, &n->W2, &n->dz2, &n->da1, &n->dW2, &n->db2); /* dL/dW2, dL/db2, dL/da1 */
    bp_relu_backward(&n->z1, &n->da1, &n->da1);                       /* dL/dz1, in place */
    bp_linear_backward(&n->x, &n->W1, &n->da1, NULL, &n->dW1, &n->db1); /* dL/dW1, dL/db1 (no dL/dx) */
    bp_sgd_step(&n->W1, &n->dW1, LR);
    bp_sgd_step(&n->b1, &n->db1, LR);
    bp_sgd_step(&n->W2, &n->dW2, LR);
    bp_sgd_step(&n->b2, &n->db2, LR);
    return loss;
}

/* The same step written with the naive i-k-j loop in place of bp_matmul (and the bias loops of
   bp_linear_forward/backward spelled out): what a user would get without the blocked kernel. */
static bp_real mlp_step_naive(mlp *n)
{
    bp_real loss;
    int r, j;
    naive_ikj(&n->z1, &n->x, &n->W1, 0);
    for (r = 0; r < n->batch; r++)
        for (j = 0; j < HIDDEN; j++) n->z1.data[r * HIDDEN + j] += n->b1.data[j];
    bp_relu_forward(&n->z1, &n->a1);
    naive_ikj(&n->z2, &n->a1, &n->W2, 0);
    for (r = 0; r < n->batch; r++)
        for (j = 0; j < OUT; j++) n->z2.data[r * OUT + j] += n->b2.data[j];
    loss = bp_mse_forward(&n->z2, &n->y);
    bp_mse_backward(&n->z2, &n->y, &n->dz2);
    naive_ikj(&n->dW2, &n->a1, &n->dz2, BP_TRANS_A);
    naive_ikj(&n->da1, &n->dz2, &n->W2, BP_TRANS_B);
    for (j = 0; j < OUT; j++) n->db2.data[j] = 0;
    for (r = 0; r < n->batch; r++)
        for (j = 0; j < OUT; j++) n->db2.data[j] += n->dz2.data[r * OUT + j];
    bp_relu_backward(&n->z1, &n->da1, &n->da1);
    naive_ikj(&n->dW1, &n->x, &n->da1, BP_TRANS_A);
    for (j = 0; j < HIDDEN; j++) n->db1.data[j] = 0;
    for (r = 0; r < n->batch; r++)
        for (j = 0; j < HIDDEN; j++) n->db1.data[j] += n->da1.data[r * HIDDEN + j];
    bp_sgd_step(&n->W1, &n->dW1, LR);
    bp_sgd_step(&n->b1, &n->db1, LR);
    bp_sgd_step(&n->W2, &n->dW2, LR);
    bp_sgd_step(&n->b2, &n->db2, LR);
    return loss;
}

typedef bp_real (*step_fn)(mlp *n);

/* Seconds for `steps` steps; the loss of the last one goes to *last_loss. */
static double time_steps(step_fn step, mlp *n, int steps, bp_real *last_loss)
{
    double t0 = now();
    int i;
    for (i = 0; i < steps; i++) *last_loss = step(n);
    return now() - t0;
}

/* PyTorch's microseconds per step, read from the file tests/bench_torch.py wrote (lines "torch B us
   fastest-us"): the median, or with `fastest` the fastest timing; 0 where absent. */
static double torch_us(const char *path, int batch, int fastest)
{
    char line[128];
    double us = 0, v, v_min;
    int b, got;
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if ((got = sscanf(line, "torch %d %lf %lf", &b, &v, &v_min)) >= 2 && b == batch)
            us = fastest ? (got == 3 ? v_min : 0) : v;
    fclose(f);
    return us;
}

/* Times the training step at batch 1, 64, 256: bp (bp_linear_* etc.), and unless bp_only the same step
   with the naive i-k-j loop, interleaved; PyTorch's figures come from torch_file when given. */
static void training_table(bp_rng *rng, int bp_only, const char *torch_file)
{
    static const int batches[] = {1, 64, 256};
    enum { NB = sizeof batches / sizeof batches[0], NS = 2 };
    static const step_fn steppers[NS] = {mlp_step, mlp_step_naive};
    mlp net[NS][NB];
    bp_real first_loss[NB], last_loss[NS][NB];
    long total_steps[NB];
    int steps[NS][NB], n[NS][NB], b, r, k, m, methods = bp_only ? 1 : NS;
    double secs[NS][NB][REPS], fastest[NB];

    printf("\ntraining step: Linear(%d->%d) -> ReLU -> Linear(%d->%d) -> MSE, SGD lr=%g; forward + backward +"
           " update, median of %d\n",
           IN, HIDDEN, HIDDEN, OUT, (double)LR, REPS);
    printf("%6s %10s %10s %12s %12s %8s %12s %8s %8s  %s\n", "batch", "bp us", "GFLOP/s", "samples/s",
           "ikj-loop us", "ikj/bp", "PyTorch us", "Py/bp", "best", "bp loss first -> last step (steps)");

    /* each batch size and method trains its own network on one fixed random batch, so the loss must fall */
    for (b = 0; b < NB; b++)
        for (m = 0; m < methods; m++) {
            double t;
            bp_rng copy = *rng; /* the same start for both methods */
            net[m][b] = mlp_new(batches[b], &copy);
            n[m][b] = 0;
            last_loss[m][b] = steppers[m](&net[m][b]); /* warm-up, and the loss before any update */
            if (m == 0) first_loss[b] = last_loss[m][b], total_steps[b] = 1;
            for (steps[m][b] = 1;; steps[m][b] *= 2) { /* calibrate: one timing >= MIN_TIMING */
                t = time_steps(steppers[m], &net[m][b], steps[m][b], &last_loss[m][b]);
                if (m == 0) total_steps[b] += steps[m][b];
                if (t >= MIN_TIMING) break;
            }
        }
    for (r = 0; r < REPS; r++)
        for (k = 0; k < NB * methods; k++) {
            int idx = (r + k) % (NB * methods); /* rotate the order from one repetition to the next */
            b = idx / methods, m = idx % methods;
            secs[m][b][n[m][b]++] = time_steps(steppers[m], &net[m][b], steps[m][b], &last_loss[m][b]) / steps[m][b];
            if (m == 0) total_steps[b] += steps[m][b];
        }
    for (b = 0; b < NB; b++) { /* the fastest single step of bp (200 tries), for the "best" column */
        fastest[b] = 1e30;
        for (r = 0; r < 200; r++) {
            double t = time_steps(steppers[0], &net[0][b], 1, &last_loss[0][b]);
            if (t < fastest[b]) fastest[b] = t;
        }
        total_steps[b] += 200;
    }
    for (b = 0; b < NB; b++) {
        /* matmul flops: forward x.W1, a1.W2; backward x^T.dz1, a1^T.dz2, dz2.W2^T */
        double flop = 2.0 * batches[b] * (2.0 * IN * HIDDEN + 3.0 * HIDDEN * OUT);
        double s = median(secs[0][b], n[0][b]), naive = bp_only ? 0 : median(secs[1][b], n[1][b]);
        double torch = torch_us(torch_file, batches[b], 0) * 1e-6, torch_best = torch_us(torch_file, batches[b], 1);
        printf("%6d %10.1f %10.1f %12.0f", batches[b], s * 1e6, flop / s * 1e-9, batches[b] / s);
        if (naive > 0) printf(" %12.1f %7.2fx", naive * 1e6, naive / s);
        else printf(" %12s %8s", "-", "-");
        if (torch > 0) printf(" %12.1f %7.2fx", torch * 1e6, torch / s);
        else printf(" %12s %8s", "-", "-");
        print_ratio(torch_best * 1e-6, fastest[b]);
        printf("  %.4f -> %.4f (%ld)\n", (double)first_loss[b], (double)last_loss[0][b], total_steps[b]);
        for (m = 0; m < methods; m++) mlp_free(&net[m][b]);
    }
    printf("(GFLOP/s counts the matmuls only: 2*batch*(2*%d*%d + 3*%d*%d) per step.  ikj-loop: the same step\n"
           " with the naive i-k-j loop in place of bp_matmul.  best: PyTorch / bp, the fastest of 200 single steps each.\n"
           " PyTorch: tests/bench_torch.py, one thread, %s)\n",
           IN, HIDDEN, HIDDEN, OUT, torch_file ? "run just before this program" : "not run (no file given)");
}

/* ---- part 3: a training step of the CNN of examples/fashion_cnn.c ------------------------------------
   conv 3x3 (16 filters, pad 1) -> max-pool 2 -> ReLU -> conv 3x3 (32, pad 1) -> max-pool 2 -> ReLU ->
   Linear(1568 -> 128) -> ReLU -> Linear(128 -> 10) -> softmax cross-entropy, Adam (ReLU after the pooling:
   the same function), on a batch of 64 28x28 images (random pixels and
   labels): forward + backward + update, against the same network in PyTorch on one thread (the line
   "torch_cnn 64 US" of tests/bench_torch.py's output).  The same sizes as fashion_cnn.c; change both. */
#define CNN_BATCH 64
#define CNN_C1 16
#define CNN_C2 32
#define CNN_HIDDEN 128
enum { CW1, CB1, CW2, CB2, CW3, CB3, CW4, CB4, CNN_PARAMS };

typedef struct cnn {
    bp_window conv1, pool1, conv2, pool2;
    bp_tensor param[CNN_PARAMS], grad[CNN_PARAMS], m[CNN_PARAMS], v[CNN_PARAMS];
    bp_tensor x, a1, p1, a2, p2, h, logits, probs, dh, dp2, da2, dp1, da1, col1, col2;
    int labels[CNN_BATCH], *argmax1, *argmax2, t;
} cnn;

static void cnn_new(cnn *n, bp_rng *rng)
{
    const bp_window conv1 = {1, 28, 28, 3, 1, 1}, pool1 = {CNN_C1, 28, 28, 2, 2, 0};
    const bp_window conv2 = {CNN_C1, 14, 14, 3, 1, 1}, pool2 = {CNN_C2, 14, 14, 2, 2, 0};
    const int rows[CNN_PARAMS] = {CNN_C1, 1, CNN_C2, 1, CNN_C2 * 49, 1, CNN_HIDDEN, 1};
    const int cols[CNN_PARAMS] = {9, CNN_C1, CNN_C1 * 9, CNN_C2, CNN_HIDDEN, CNN_HIDDEN, 10, 10};
    int k, i;
    n->conv1 = conv1;
    n->pool1 = pool1;
    n->conv2 = conv2;
    n->pool2 = pool2;
    for (k = 0; k < CNN_PARAMS; k++) {
        n->param[k] = bp_tensor_new(rows[k], cols[k]);
        n->grad[k] = bp_tensor_new(rows[k], cols[k]);
        n->m[k] = bp_tensor_new(rows[k], cols[k]);
        n->v[k] = bp_tensor_new(rows[k], cols[k]);
    }
    bp_tensor_randn(&n->param[CW1], rng, (bp_real)sqrt(2.0 / 9));
    bp_tensor_randn(&n->param[CW2], rng, (bp_real)sqrt(2.0 / (CNN_C1 * 9)));
    bp_init_he(&n->param[CW3], rng);
    bp_init_he(&n->param[CW4], rng);
    n->x = bp_tensor_new(CNN_BATCH, 784);
    for (i = 0; i < CNN_BATCH * 784; i++) n->x.data[i] = (bp_real)bp_rng_uniform(rng);
    for (i = 0; i < CNN_BATCH; i++) n->labels[i] = (int)(bp_rng_uniform(rng) * 10);
    n->a1 = bp_tensor_new(CNN_BATCH, CNN_C1 * 784);
    n->da1 = bp_tensor_new(CNN_BATCH, CNN_C1 * 784);
    n->p1 = bp_tensor_new(CNN_BATCH, CNN_C1 * 196);
    n->dp1 = bp_tensor_new(CNN_BATCH, CNN_C1 * 196);
    n->a2 = bp_tensor_new(CNN_BATCH, CNN_C2 * 196);
    n->da2 = bp_tensor_new(CNN_BATCH, CNN_C2 * 196);
    n->p2 = bp_tensor_new(CNN_BATCH, CNN_C2 * 49);
    n->dp2 = bp_tensor_new(CNN_BATCH, CNN_C2 * 49);
    n->h = bp_tensor_new(CNN_BATCH, CNN_HIDDEN);
    n->dh = bp_tensor_new(CNN_BATCH, CNN_HIDDEN);
    n->logits = bp_tensor_new(CNN_BATCH, 10);
    n->probs = bp_tensor_new(CNN_BATCH, 10);
    n->col1 = bp_tensor_new(9, 784);
    n->col2 = bp_tensor_new(CNN_C1 * 9, 196);
    n->argmax1 = (int *)malloc(sizeof(int) * CNN_BATCH * CNN_C1 * 196);
    n->argmax2 = (int *)malloc(sizeof(int) * CNN_BATCH * CNN_C2 * 49);
    n->t = 0;
}

static void cnn_free(cnn *n)
{
    bp_tensor *all[] = {&n->x,   &n->a1,  &n->p1,  &n->a2,  &n->p2,  &n->h,    &n->logits, &n->probs,
                        &n->dh,  &n->dp2, &n->da2, &n->dp1, &n->da1, &n->col1, &n->col2};
    int k;
    for (k = 0; k < CNN_PARAMS; k++) {
        bp_tensor_free(&n->param[k]);
        bp_tensor_free(&n->grad[k]);
        bp_tensor_free(&n->m[k]);
        bp_tensor_free(&n->v[k]);
    }
    for (k = 0; k < (int)(sizeof all / sizeof *all); k++) bp_tensor_free(all[k]);
    free(n->argmax1);
    free(n->argmax2);
}

/* One step, as fashion_cnn.c's forward, backward and Adam; returns the loss. */
static bp_real cnn_step(cnn *n)
{
    bp_tensor *p = n->param, *g = n->grad;
    bp_real loss;
    int k;
    bp_conv2d_forward(&n->conv1, &n->x, &p[CW1], &p[CB1], &n->a1, &n->col1);
    bp_maxpool2d_forward(&n->pool1, &n->a1, &n->p1, n->argmax1);
    bp_relu_forward(&n->p1, &n->p1);
    bp_conv2d_forward(&n->conv2, &n->p1, &p[CW2], &p[CB2], &n->a2, &n->col2);
    bp_maxpool2d_forward(&n->pool2, &n->a2, &n->p2, n->argmax2);
    bp_relu_forward(&n->p2, &n->p2);
    bp_linear_forward(&n->p2, &p[CW3], &p[CB3], &n->h);
    bp_relu_forward(&n->h, &n->h);
    bp_linear_forward(&n->h, &p[CW4], &p[CB4], &n->logits);
    loss = bp_softmax_xent_forward(&n->logits, n->labels, &n->probs);
    bp_softmax_xent_backward(&n->probs, n->labels, &n->probs);
    bp_linear_backward(&n->h, &p[CW4], &n->probs, &n->dh, &g[CW4], &g[CB4]);
    bp_relu_backward(&n->h, &n->dh, &n->dh);
    bp_linear_backward(&n->p2, &p[CW3], &n->dh, &n->dp2, &g[CW3], &g[CB3]);
    bp_relu_backward(&n->p2, &n->dp2, &n->dp2);
    bp_maxpool2d_backward(&n->pool2, n->argmax2, &n->dp2, &n->da2);
    bp_conv2d_backward(&n->conv2, &n->p1, &p[CW2], &n->da2, &n->dp1, &g[CW2], &g[CB2], &n->col2);
    bp_relu_backward(&n->p1, &n->dp1, &n->dp1);
    bp_maxpool2d_backward(&n->pool1, n->argmax1, &n->dp1, &n->da1);
    bp_conv2d_backward(&n->conv1, &n->x, &p[CW1], &n->da1, NULL, &g[CW1], &g[CB1], &n->col1);
    n->t++;
    for (k = 0; k < CNN_PARAMS; k++)
        bp_adam_step(&p[k], &g[k], &n->m[k], &n->v[k], n->t, (bp_real)1e-3, (bp_real)0.9, (bp_real)0.999, (bp_real)1e-8);
    return loss;
}

/* PyTorch's microseconds per CNN step from torch_file (the line "torch_cnn BATCH US"); 0 if absent */
static double torch_cnn_us(const char *path)
{
    char line[128];
    double us = 0, v;
    int b;
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "torch_cnn %d %lf", &b, &v) == 2 && b == CNN_BATCH) us = v;
    fclose(f);
    return us;
}

static void cnn_table(bp_rng *rng, const char *torch_file)
{
    cnn n;
    double secs[REPS], s, torch = torch_cnn_us(torch_file) * 1e-6;
    /* conv flops per image: forward 2*F*CKK*P, backward twice that (dW and dx; conv1 has no dx) */
    double flop = CNN_BATCH * 2.0 * (3.0 * CNN_C1 * 9 * 784 - CNN_C1 * 9 * 784 + 3.0 * CNN_C2 * CNN_C1 * 9 * 196 +
                                     3.0 * CNN_C2 * 49 * CNN_HIDDEN + 3.0 * CNN_HIDDEN * 10);
    bp_real first, last = 0;
    int steps, r;
    cnn_new(&n, rng);
    first = cnn_step(&n);
    for (steps = 1;; steps *= 2) {
        double t0 = now();
        int i;
        for (i = 0; i < steps; i++) last = cnn_step(&n);
        if (now() - t0 >= MIN_TIMING) break;
    }
    for (r = 0; r < REPS; r++) {
        double t0 = now();
        int i;
        for (i = 0; i < steps; i++) last = cnn_step(&n);
        secs[r] = (now() - t0) / steps;
    }
    s = median(secs, REPS);
    printf("\nCNN training step (examples/fashion_cnn.c): 1x28x28 -> conv3x3 x%d -> maxpool 2 -> ReLU -> conv3x3 x%d"
           " -> maxpool 2 -> ReLU -> Linear(%d->%d) -> ReLU -> Linear(%d->10) -> softmax xent, Adam; batch %d,"
           " median of %d\n", CNN_C1, CNN_C2, CNN_C2 * 49, CNN_HIDDEN, CNN_HIDDEN, CNN_BATCH, REPS);
    printf("%6s %10s %10s %12s %12s %8s  %s\n", "batch", "bp us", "GFLOP/s", "samples/s", "PyTorch us", "Py/bp",
           "bp loss first -> last step");
    printf("%6d %10.1f %10.1f %12.0f", CNN_BATCH, s * 1e6, flop / s * 1e-9, CNN_BATCH / s);
    if (torch > 0) printf(" %12.1f %7.2fx", torch * 1e6, torch / s);
    else printf(" %12s %8s", "-", "-");
    printf("  %.4f -> %.4f\n", (double)first, (double)last);
    printf("(GFLOP/s counts the convolutions' and the Linear layers' products.  PyTorch: tests/bench_torch.py, one"
           " thread, %s)\n", torch_file ? "run just before this program" : "not run (no file given)");
    cnn_free(&n);
}

/* ---- part 4: the network in one object against the explicit calls ------------------------------------
   bp_mlp_train_step against the same step written as the lesson's explicit calls (two Linear layers, the
   activations, MSE, SGD) on tensors of their own, starting from the same weights: the 784-256-10 network
   above at batch 1, 64, 256, and genann's Iris network (4-4-3, sigmoid after both layers) at batch 1,
   one example per step as genann trains.  Both compute the same numbers (the last losses are compared bit
   for bit); the table says what the object's bookkeeping (views, the loop over layers) costs. */

typedef struct {
    int act1, act2, batch;
    bp_mlp *net;
    bp_tensor x, y, W1, b1, W2, b2, z1, a1, z2, a2, d2, d1, dW1, db1, dW2, db2;
} object_pair;

static void pair_activate(int act, bp_tensor *z, bp_tensor *a)
{
    if (act == BP_ACT_RELU) bp_relu_forward(z, a);
    else if (act == BP_ACT_SIGMOID) bp_sigmoid_forward(z, a);
}

static void pair_deactivate(int act, const bp_tensor *z, const bp_tensor *a, bp_tensor *d)
{
    if (act == BP_ACT_RELU) bp_relu_backward(z, d, d);
    else if (act == BP_ACT_SIGMOID) bp_sigmoid_backward(a, d, d);
}

static bp_real pair_explicit_step(object_pair *p)
{
    bp_real loss;
    bp_linear_forward(&p->x, &p->W1, &p->b1, &p->z1);
    pair_activate(p->act1, &p->z1, &p->a1);
    bp_linear_forward(&p->a1, &p->W2, &p->b2, &p->z2);
    pair_activate(p->act2, &p->z2, &p->a2);
    loss = bp_mse_forward(&p->a2, &p->y);
    bp_mse_backward(&p->a2, &p->y, &p->d2);
    pair_deactivate(p->act2, &p->z2, &p->a2, &p->d2);
    bp_linear_backward(&p->a1, &p->W2, &p->d2, &p->d1, &p->dW2, &p->db2);
    pair_deactivate(p->act1, &p->z1, &p->a1, &p->d1);
    bp_linear_backward(&p->x, &p->W1, &p->d1, NULL, &p->dW1, &p->db1);
    bp_sgd_step(&p->W1, &p->dW1, LR);
    bp_sgd_step(&p->b1, &p->db1, LR);
    bp_sgd_step(&p->W2, &p->dW2, LR);
    bp_sgd_step(&p->b2, &p->db2, LR);
    return loss;
}

static bp_real pair_object_step(object_pair *p) { return bp_mlp_train_step(p->net, &p->x, &p->y, NULL); }

static object_pair pair_new(const int *widths, int act1, int act2, int batch, bp_rng *rng)
{
    object_pair p;
    int acts[2];
    bp_mlp_config cfg = bp_mlp_default_config();
    acts[0] = act1, acts[1] = act2;
    cfg.max_batch = batch;
    cfg.lr = LR;
    p.act1 = act1, p.act2 = act2, p.batch = batch;
    p.net = bp_mlp_new(2, widths, acts, &cfg);
    p.x = bp_tensor_new(batch, widths[0]);
    p.y = bp_tensor_new(batch, widths[2]);
    bp_tensor_randn(&p.x, rng, 1);
    bp_tensor_randn(&p.y, rng, 1);
    p.W1 = bp_tensor_new(widths[0], widths[1]);
    p.W2 = bp_tensor_new(widths[1], widths[2]);
    memcpy(p.W1.data, p.net->layer[0].W.data, sizeof(bp_real) * (size_t)widths[0] * (size_t)widths[1]);
    memcpy(p.W2.data, p.net->layer[1].W.data, sizeof(bp_real) * (size_t)widths[1] * (size_t)widths[2]);
    p.b1 = bp_tensor_new(1, widths[1]), p.db1 = bp_tensor_new(1, widths[1]), p.dW1 = bp_tensor_new(widths[0], widths[1]);
    p.b2 = bp_tensor_new(1, widths[2]), p.db2 = bp_tensor_new(1, widths[2]), p.dW2 = bp_tensor_new(widths[1], widths[2]);
    p.z1 = bp_tensor_new(batch, widths[1]), p.a1 = bp_tensor_new(batch, widths[1]), p.d1 = bp_tensor_new(batch, widths[1]);
    p.z2 = bp_tensor_new(batch, widths[2]), p.a2 = bp_tensor_new(batch, widths[2]), p.d2 = bp_tensor_new(batch, widths[2]);
    if (act2 == BP_ACT_NONE) { /* no activation: a2 is z2 */
        bp_tensor_free(&p.a2);
        p.a2 = p.z2;
    }
    return p;
}

static void pair_free(object_pair *p)
{
    bp_tensor *t[16];
    int i;
    t[0] = &p->x, t[1] = &p->y, t[2] = &p->W1, t[3] = &p->b1, t[4] = &p->W2, t[5] = &p->b2, t[6] = &p->z1;
    t[7] = &p->a1, t[8] = &p->z2, t[9] = &p->d2, t[10] = &p->d1, t[11] = &p->dW1, t[12] = &p->db1;
    t[13] = &p->dW2, t[14] = &p->db2, t[15] = &p->a2;
    for (i = 0; i < (p->act2 == BP_ACT_NONE ? 15 : 16); i++) bp_tensor_free(t[i]);
    bp_mlp_free(p->net);
}

typedef bp_real (*pair_step_fn)(object_pair *p);

/* CPU seconds of this process for `steps` steps: on a machine shared with other work, time the process
   spends waiting for a core does not count (both sides are measured the same way, back to back). */
static double time_pair(pair_step_fn step, object_pair *p, int steps, bp_real *last_loss)
{
    struct timespec t0, t1;
    int i;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    for (i = 0; i < steps; i++) *last_loss = step(p);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    return (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
}

#define PAIR_REPS 21

static void object_table(bp_rng *rng)
{
    static const int big[] = {IN, HIDDEN, OUT}, iris[] = {4, 4, 3};
    static const struct {
        const int *widths;
        int act1, act2, batch;
        const char *name;
    } cases[] = {{big, BP_ACT_RELU, BP_ACT_NONE, 1, "784-256-10 relu"},
                 {big, BP_ACT_RELU, BP_ACT_NONE, 64, "784-256-10 relu"},
                 {big, BP_ACT_RELU, BP_ACT_NONE, 256, "784-256-10 relu"},
                 {iris, BP_ACT_SIGMOID, BP_ACT_SIGMOID, 1, "4-4-3 sigmoid (genann's Iris)"}};
    enum { NC = sizeof cases / sizeof cases[0] };
    int c, r, steps, same = 1;

    printf("\nthe network object: bp_mlp_train_step against the same step as explicit calls (MSE, SGD lr=%g);\n"
           "CPU microseconds per step, the two timed back to back %d times (order alternating), medians\n",
           (double)LR, PAIR_REPS);
    printf("%-30s %6s %12s %12s %14s\n", "network", "batch", "bp_mlp us", "explicit us", "median ratio");
    for (c = 0; c < NC; c++) {
        double object_s[PAIR_REPS], explicit_s[PAIR_REPS], ratio[PAIR_REPS];
        bp_real loss[2];
        bp_rng copy = *rng; /* the same inputs, targets and weights for both */
        object_pair p[2];
        p[0] = pair_new(cases[c].widths, cases[c].act1, cases[c].act2, cases[c].batch, &copy);
        copy = *rng;
        p[1] = pair_new(cases[c].widths, cases[c].act1, cases[c].act2, cases[c].batch, &copy);
        for (steps = 1;; steps *= 2) /* calibrated on the explicit calls; both then take as many steps */
            if (time_pair(pair_explicit_step, &p[1], steps, &loss[1]) >= MIN_TIMING) break;
        time_pair(pair_object_step, &p[0], 2 * steps - 1, &loss[0]); /* as many steps as the calibration took */
        for (r = 0; r < PAIR_REPS; r++) {
            if (r % 2 == 0) {
                object_s[r] = time_pair(pair_object_step, &p[0], steps, &loss[0]) / steps;
                explicit_s[r] = time_pair(pair_explicit_step, &p[1], steps, &loss[1]) / steps;
            } else {
                explicit_s[r] = time_pair(pair_explicit_step, &p[1], steps, &loss[1]) / steps;
                object_s[r] = time_pair(pair_object_step, &p[0], steps, &loss[0]) / steps;
            }
            ratio[r] = object_s[r] / explicit_s[r];
        }
        if (memcmp(&loss[0], &loss[1], sizeof(bp_real)) != 0) same = 0; /* the same weights all along */
        printf("%-30s %6d %12.2f %12.2f %13.2fx\n", cases[c].name, cases[c].batch, median(object_s, PAIR_REPS) * 1e6,
               median(explicit_s, PAIR_REPS) * 1e6, median(ratio, PAIR_REPS));
        pair_free(&p[0]);
        pair_free(&p[1]);
    }
    printf("(the last losses of the two %s bit for bit: the object computes what the explicit calls compute)\n",
           same ? "agree" : "DISAGREE");
}

/* ---- part 7: a tiny network, one sample per step ----------------------------------------------------------
   genann's example 4 (Iris: 4 inputs, a hidden layer of 4 sigmoids, 3 sigmoid outputs, one sample per step,
   150 samples x 5000 passes = 750,000 steps, learning rate 0.01), on synthetic data of Iris's shape (150 x 4
   inputs, 3 classes as one-hot targets).  Two programs train the same network from the same weights:
     plain C     genann's loops as genann writes them (genann_run and genann_train: one flat weight array,
                 each neuron's bias weight first times -1, the output delta (t - o) o (1 - o), the hidden
                 deltas, the updates), over flat arrays; sigmoid 1 / (1 + e^-a) in double, as genann's
                 exact activation (genann_act_sigmoid);
     plain C, lookup   the same loops with genann's default activation, genann_act_sigmoid_cached: the
                 sigmoid read from a 4096-entry table over [-15, 15) (no e^ at all, and up to about 2e-3
                 off; its weights are not compared);
     backprop.h  the same step in library calls: linear, sigmoid, linear, sigmoid forward; mse_backward
                 (scaled: 2/3 (o - t), so its learning rate is 1.5 x 0.01 for the same update), the two
                 sigmoid and linear backwards, four SGD steps: 13 calls, each with its guard;
     bp_mlp      the same network as one object (examples/iris_mlp.c's port of the example): one
                 bp_mlp_train_step per sample, which checks x and y once and runs the 13 steps' math
                 (and the MSE itself, which the others do not compute).
   All four are timed in turn (median of REPS timings); all but the lookup end with the same weights (to
   rounding). */

#define TINY_SAMPLES 150
#define TINY_IN 4
#define TINY_HID 4
#define TINY_OUT 3
#define TINY_LR 0.01

/* genann's weight layout: hidden neuron j: [bias, w from input 0..3], then output neuron j: [bias, w from
   hidden 0..3]; the bias weight multiplies -1 */
#define TINY_WEIGHTS ((TINY_IN + 1) * TINY_HID + (TINY_HID + 1) * TINY_OUT)

/* genann's struct: the sizes are read at run time, the activations called through pointers */
typedef struct tiny_plain {
    int inputs, hidden, outputs;
    bp_real (*activation_hidden)(const struct tiny_plain *ann, bp_real a);
    bp_real (*activation_output)(const struct tiny_plain *ann, bp_real a);
    bp_real w[TINY_WEIGHTS], out[TINY_IN + TINY_HID + TINY_OUT], delta[TINY_HID + TINY_OUT];
} tiny_plain;

#if defined(__GNUC__)
#define TINY_NOINLINE __attribute__((noinline)) /* genann.c is a file of its own: its calls are not inlined */
#else
#define TINY_NOINLINE
#endif

static bp_real tiny_sigmoid(const tiny_plain *ann, bp_real a) /* genann_act_sigmoid */
{
    (void)ann;
    if (a < -45) return 0;
    if (a > 45) return 1;
    return (bp_real)(1.0 / (1 + exp(-(double)a)));
}

/* genann_act_sigmoid_cached: the nearest of 4096 values of the sigmoid over [-15, 15) (genann_init_sigmoid_lookup
   fills the table) */
#define TINY_LOOKUP 4096
static bp_real tiny_lookup[TINY_LOOKUP];
static void tiny_lookup_init(void)
{
    int i;
    for (i = 0; i < TINY_LOOKUP; i++) tiny_lookup[i] = tiny_sigmoid(NULL, (bp_real)(-15.0 + 30.0 / TINY_LOOKUP * i));
}
static bp_real tiny_sigmoid_cached(const tiny_plain *ann, bp_real a)
{
    size_t j;
    (void)ann;
    if (a < -15) return tiny_lookup[0];
    if (a >= 15) return tiny_lookup[TINY_LOOKUP - 1];
    j = (size_t)((a + 15.0) * (TINY_LOOKUP / 30.0) + 0.5);
    return tiny_lookup[j < TINY_LOOKUP ? j : TINY_LOOKUP - 1];
}

/* genann_run, for one hidden layer */
static TINY_NOINLINE void tiny_plain_run(tiny_plain *ann, const bp_real *inputs)
{
    const bp_real *w = ann->w, *i = ann->out;
    bp_real *o = ann->out + ann->inputs;
    int j, k;
    memcpy(ann->out, inputs, sizeof(bp_real) * (size_t)ann->inputs);
    for (j = 0; j < ann->hidden; ++j) {
        bp_real sum = *w++ * -1;
        for (k = 0; k < ann->inputs; ++k) sum += *w++ * i[k];
        *o++ = ann->activation_hidden(ann, sum);
    }
    i += ann->inputs;
    for (j = 0; j < ann->outputs; ++j) {
        bp_real sum = *w++ * -1;
        for (k = 0; k < ann->hidden; ++k) sum += *w++ * i[k];
        *o++ = ann->activation_output(ann, sum);
    }
}

/* genann_train, for one hidden layer: run forward, output deltas, hidden deltas, then the updates */
static TINY_NOINLINE void tiny_plain_train(tiny_plain *ann, const bp_real *inputs, const bp_real *desired,
                                           bp_real learning_rate)
{
    int j, k;
    tiny_plain_run(ann, inputs);
    { /* output layer deltas */
        const bp_real *o = ann->out + ann->inputs + ann->hidden, *t = desired;
        bp_real *d = ann->delta + ann->hidden;
        for (j = 0; j < ann->outputs; ++j) {
            *d++ = (*t - *o) * *o * (1 - *o);
            ++o, ++t;
        }
    }
    { /* hidden layer deltas */
        const bp_real *o = ann->out + ann->inputs, *dd = ann->delta + ann->hidden;
        const bp_real *ww = ann->w + (ann->inputs + 1) * ann->hidden;
        bp_real *d = ann->delta;
        for (j = 0; j < ann->hidden; ++j) {
            bp_real delta = 0;
            for (k = 0; k < ann->outputs; ++k) delta += dd[k] * ww[k * (ann->hidden + 1) + (j + 1)];
            *d = *o * (1 - *o) * delta;
            ++d, ++o;
        }
    }
    { /* train the outputs */
        const bp_real *d = ann->delta + ann->hidden, *i = ann->out + ann->inputs;
        bp_real *w = ann->w + (ann->inputs + 1) * ann->hidden;
        for (j = 0; j < ann->outputs; ++j) {
            *w++ += *d * learning_rate * -1;
            for (k = 1; k < ann->hidden + 1; ++k) *w++ += *d * learning_rate * i[k - 1];
            ++d;
        }
    }
    { /* train the hidden layer */
        const bp_real *d = ann->delta, *i = ann->out;
        bp_real *w = ann->w;
        for (j = 0; j < ann->hidden; ++j) {
            *w++ += *d * learning_rate * -1;
            for (k = 1; k < ann->inputs + 1; ++k) *w++ += *d * learning_rate * i[k - 1];
            ++d;
        }
    }
}

typedef struct {
    bp_tensor W1, b1, z1, a1, W2, b2, z2, a2, d2, da1, dW1, db1, dW2, db2;
} tiny_bp;

static TINY_NOINLINE void tiny_bp_train(tiny_bp *n, bp_real *in, bp_real *target, bp_real lr)
{
    bp_tensor x = {1, TINY_IN, in}, y = {1, TINY_OUT, target};
    bp_linear_forward(&x, &n->W1, &n->b1, &n->z1);
    bp_sigmoid_forward(&n->z1, &n->a1);
    bp_linear_forward(&n->a1, &n->W2, &n->b2, &n->z2);
    bp_sigmoid_forward(&n->z2, &n->a2);
    bp_mse_backward(&n->a2, &y, &n->d2);
    bp_sigmoid_backward(&n->a2, &n->d2, &n->d2);
    bp_linear_backward(&n->a1, &n->W2, &n->d2, &n->da1, &n->dW2, &n->db2);
    bp_sigmoid_backward(&n->a1, &n->da1, &n->da1);
    bp_linear_backward(&x, &n->W1, &n->da1, NULL, &n->dW1, &n->db1);
    bp_sgd_step(&n->W1, &n->dW1, lr);
    bp_sgd_step(&n->b1, &n->db1, lr);
    bp_sgd_step(&n->W2, &n->dW2, lr);
    bp_sgd_step(&n->b2, &n->db2, lr);
}

static TINY_NOINLINE void tiny_mlp_train(bp_mlp *net, bp_real *in, bp_real *target)
{
    bp_tensor x = {1, TINY_IN, in}, y = {1, TINY_OUT, target};
    bp_mlp_train_step(net, &x, &y, NULL);
}

/* one step of program m: 0 plain C, 1 backprop.h calls, 2 bp_mlp, 3 plain C with the lookup (plain[1]) */
static void tiny_train(int m, tiny_plain *plain, tiny_bp *net, bp_mlp *object, int j, bp_real *x, bp_real *y)
{
    if (m == 0 || m == 3) tiny_plain_train(&plain[m == 3], x + j * TINY_IN, y + j * TINY_OUT, (bp_real)TINY_LR);
    else if (m == 1) tiny_bp_train(net, x + j * TINY_IN, y + j * TINY_OUT, (bp_real)(1.5 * TINY_LR));
    else tiny_mlp_train(object, x + j * TINY_IN, y + j * TINY_OUT);
}

/* the largest difference between the two networks' weights */
static double tiny_weight_diff(const tiny_plain *p, const tiny_bp *n)
{
    double d = 0;
    int j, k;
    for (j = 0; j < TINY_HID; j++) {
        d = fmax(d, fabs((double)p->w[j * (TINY_IN + 1)] + (double)n->b1.data[j]));
        for (k = 0; k < TINY_IN; k++)
            d = fmax(d, fabs((double)p->w[j * (TINY_IN + 1) + 1 + k] - (double)n->W1.data[k * TINY_HID + j]));
    }
    for (j = 0; j < TINY_OUT; j++) {
        const bp_real *w = p->w + (TINY_IN + 1) * TINY_HID + j * (TINY_HID + 1);
        d = fmax(d, fabs((double)w[0] + (double)n->b2.data[j]));
        for (k = 0; k < TINY_HID; k++) d = fmax(d, fabs((double)w[1 + k] - (double)n->W2.data[k * TINY_OUT + j]));
    }
    return d;
}

/* passes: passes over the 150 samples per timing (5000 for genann's example) */
static void tiny_table(bp_rng *rng, int passes)
{
    static bp_real x[TINY_SAMPLES * TINY_IN], y[TINY_SAMPLES * TINY_OUT];
    tiny_plain plain[2]; /* genann's exact sigmoid, and its default lookup */
    tiny_bp net;
    bp_mlp *object;
    bp_mlp_config config = bp_mlp_default_config();
    const int widths[3] = {TINY_IN, TINY_HID, TINY_OUT}, activations[2] = {BP_ACT_SIGMOID, BP_ACT_SIGMOID};
    bp_tensor *t[14];
    double secs[4][REPS], fastest[4], loss = 0;
    int i, j, k, r, m;
    /* synthetic Iris: class c's 4 features scattered around 4 means, as Iris's are (cm) */
    for (i = 0; i < TINY_SAMPLES; i++) {
        int c = i % TINY_OUT;
        for (k = 0; k < TINY_IN; k++) x[i * TINY_IN + k] = (bp_real)(1 + c + 0.5 * k + 0.4 * bp_rng_normal(rng));
        for (k = 0; k < TINY_OUT; k++) y[i * TINY_OUT + k] = k == c;
    }
    t[0] = &net.W1, t[1] = &net.b1, t[2] = &net.z1, t[3] = &net.a1, t[4] = &net.W2, t[5] = &net.b2;
    t[6] = &net.z2, t[7] = &net.a2, t[8] = &net.d2, t[9] = &net.da1, t[10] = &net.dW1, t[11] = &net.db1;
    t[12] = &net.dW2, t[13] = &net.db2;
    net.W1 = bp_tensor_new(TINY_IN, TINY_HID), net.dW1 = bp_tensor_new(TINY_IN, TINY_HID);
    net.W2 = bp_tensor_new(TINY_HID, TINY_OUT), net.dW2 = bp_tensor_new(TINY_HID, TINY_OUT);
    net.b1 = bp_tensor_new(1, TINY_HID), net.z1 = bp_tensor_new(1, TINY_HID), net.a1 = bp_tensor_new(1, TINY_HID);
    net.da1 = bp_tensor_new(1, TINY_HID), net.db1 = bp_tensor_new(1, TINY_HID);
    net.b2 = bp_tensor_new(1, TINY_OUT), net.z2 = bp_tensor_new(1, TINY_OUT), net.a2 = bp_tensor_new(1, TINY_OUT);
    net.d2 = bp_tensor_new(1, TINY_OUT), net.db2 = bp_tensor_new(1, TINY_OUT);
    plain[0].inputs = TINY_IN, plain[0].hidden = TINY_HID, plain[0].outputs = TINY_OUT; /* genann_init(4, 1, 4, 3) */
    plain[0].activation_hidden = plain[0].activation_output = tiny_sigmoid;
    for (i = 0; i < TINY_WEIGHTS; i++) plain[0].w[i] = (bp_real)(bp_rng_uniform(rng) - 0.5); /* genann_randomize */
    plain[1] = plain[0];
    plain[1].activation_hidden = plain[1].activation_output = tiny_sigmoid_cached;
    tiny_lookup_init();
    for (j = 0; j < TINY_HID; j++) { /* the same weights in backprop.h's layout: b = -bias weight */
        net.b1.data[j] = -plain[0].w[j * (TINY_IN + 1)];
        for (k = 0; k < TINY_IN; k++) net.W1.data[k * TINY_HID + j] = plain[0].w[j * (TINY_IN + 1) + 1 + k];
    }
    for (j = 0; j < TINY_OUT; j++) {
        const bp_real *w = plain[0].w + (TINY_IN + 1) * TINY_HID + j * (TINY_HID + 1);
        net.b2.data[j] = -w[0];
        for (k = 0; k < TINY_HID; k++) net.W2.data[k * TINY_OUT + j] = w[1 + k];
    }
    config.max_batch = 1; /* the object: the same network, weights and step */
    config.lr = (bp_real)(1.5 * TINY_LR);
    object = bp_mlp_new(2, widths, activations, &config);
    memcpy(object->layer[0].W.data, net.W1.data, sizeof(bp_real) * TINY_IN * TINY_HID);
    memcpy(object->layer[0].b.data, net.b1.data, sizeof(bp_real) * TINY_HID);
    memcpy(object->layer[1].W.data, net.W2.data, sizeof(bp_real) * TINY_HID * TINY_OUT);
    memcpy(object->layer[1].b.data, net.b2.data, sizeof(bp_real) * TINY_OUT);
    for (r = 0; r < REPS; r++)
        for (m = 0; m < 4; m++) {
            int which = (r + m) % 4; /* rotate which goes first */
            double t0 = now();
            for (i = 0; i < passes; i++)
                for (j = 0; j < TINY_SAMPLES; j++) tiny_train(which, plain, &net, object, j, x, y);
            secs[which][r] = now() - t0;
        }
    for (r = 0; r < BEST_TRIES * 5; r++) /* and the fastest of many single passes (150 steps), in turn */
        for (m = 0; m < 4; m++) {
            double t0 = now(), t;
            for (j = 0; j < TINY_SAMPLES; j++) tiny_train(m, plain, &net, object, j, x, y);
            t = now() - t0;
            if (r == 0 || t < fastest[m]) fastest[m] = t;
        }
    for (j = 0; j < TINY_SAMPLES; j++) { /* the trained network's mean squared error, summed per sample */
        bp_tensor xs = {1, TINY_IN, x + j * TINY_IN}, ys = {1, TINY_OUT, y + j * TINY_OUT};
        bp_linear_forward(&xs, &net.W1, &net.b1, &net.z1);
        bp_sigmoid_forward(&net.z1, &net.a1);
        bp_linear_forward(&net.a1, &net.W2, &net.b2, &net.z2);
        bp_sigmoid_forward(&net.z2, &net.a2);
        loss += (double)bp_mse_forward(&net.a2, &ys) / TINY_SAMPLES;
    }
    {
        double p = median(secs[0], REPS), b = median(secs[1], REPS), o = median(secs[2], REPS);
        double q = median(secs[3], REPS);
        double steps = (double)passes * TINY_SAMPLES, object_diff = 0;
        for (i = 0; i < TINY_IN * TINY_HID; i++)
            object_diff = fmax(object_diff, fabs((double)object->layer[0].W.data[i] - (double)net.W1.data[i]));
        for (i = 0; i < TINY_HID * TINY_OUT; i++)
            object_diff = fmax(object_diff, fabs((double)object->layer[1].W.data[i] - (double)net.W2.data[i]));
        printf("\ntiny network, one sample per step (genann's example 4: Iris-shaped data, 4-4-3 sigmoid, MSE, "
               "SGD lr %g), %d steps per timing, median of %d\n",
               TINY_LR, passes * TINY_SAMPLES, REPS);
        printf("%-34s %10s %10s\n", "", "s", "ns/step");
        printf("%-34s %10.3f %10.1f\n", "plain C loop, written as genann's", p, p / steps * 1e9);
        printf("%-34s %10.3f %10.1f\n", "the same, genann's lookup sigmoid", q, q / steps * 1e9);
        printf("%-34s %10.3f %10.1f\n", "backprop.h calls", b, b / steps * 1e9);
        printf("%-34s %10.3f %10.1f\n", "bp_mlp_train_step", o, o / steps * 1e9);
        printf("plain C / backprop.h calls: %.2fx (fastest of %d single passes each: %.2fx, %.1f against %.1f ns/step;"
               " above 1: backprop.h is faster)\n",
               p / b, BEST_TRIES * 5, fastest[0] / fastest[1], fastest[0] / TINY_SAMPLES * 1e9,
               fastest[1] / TINY_SAMPLES * 1e9);
        printf("plain C / bp_mlp: %.2fx (fastest single passes: %.2fx, %.1f against %.1f ns/step)\n", p / o,
               fastest[0] / fastest[2], fastest[0] / TINY_SAMPLES * 1e9, fastest[2] / TINY_SAMPLES * 1e9);
        printf("plain C with genann's default lookup sigmoid / bp_mlp: %.2fx (fastest single passes: %.2fx, %.1f"
               " against %.1f ns/step)\n", q / o, fastest[3] / fastest[2], fastest[3] / TINY_SAMPLES * 1e9,
               fastest[2] / TINY_SAMPLES * 1e9);
        printf("weights differ by at most %.1e (plain C vs calls) and %.1e (calls vs bp_mlp) after %.0f steps each;"
               " MSE now %.4f\n", tiny_weight_diff(&plain[0], &net), object_diff,
               steps * REPS + (double)BEST_TRIES * 5 * TINY_SAMPLES, loss);
    }
    for (i = 0; i < 14; i++) bp_tensor_free(t[i]);
    bp_mlp_free(object);
}

#ifdef _OPENMP
#include <omp.h>
/* With -fopenmp: bp_matmul on 1 thread and on 2, same inputs; the results must be bit-identical. */
static void threads_table(bp_rng *rng)
{
    static const int sizes[][3] = {{1024, 1024, 1024}, {512, 512, 512}, {256, 784, 64}, {64, 256, 784}};
    int s, r, threads;
    printf("\nOpenMP: bp_matmul A.B on 1 and 2 threads (GFLOP/s, median of %d), results compared bit for bit\n",
           REPS);
    printf("%5s %5s %5s %10s %10s %9s %s\n", "M", "N", "K", "1 thread", "2 threads", "speedup", "identical");
    for (s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++) {
        int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2], calls;
        bp_tensor A = bp_tensor_new(M, K), B = bp_tensor_new(K, N), C1 = bp_tensor_new(M, N),
                  C2 = bp_tensor_new(M, N);
        double secs[2][REPS], t;
        int same;
        bp_tensor_randn(&A, rng, 1);
        bp_tensor_randn(&B, rng, 1);
        omp_set_num_threads(1);
        bp_matmul(&C1, &A, &B, 0);
        omp_set_num_threads(2);
        bp_matmul(&C2, &A, &B, 0);
        same = memcmp(C1.data, C2.data, (size_t)M * N * sizeof(bp_real)) == 0;
        for (calls = 1;; calls *= 2) {
            t = now();
            for (r = 0; r < calls; r++) bp_matmul(&C2, &A, &B, 0);
            if (now() - t >= MIN_TIMING) break;
        }
        for (r = 0; r < REPS; r++)
            for (threads = 1; threads <= 2; threads++) {
                int c, th = r % 2 ? 3 - threads : threads; /* alternate which goes first */
                omp_set_num_threads(th);
                t = now();
                for (c = 0; c < calls; c++) bp_matmul(&C2, &A, &B, 0);
                secs[th - 1][r] = (now() - t) / calls;
            }
        {
            double g1 = 2.0 * M * N * K / median(secs[0], REPS) * 1e-9, g2 = 2.0 * M * N * K / median(secs[1], REPS) * 1e-9;
            printf("%5d %5d %5d %10.1f %10.1f %8.2fx %s\n", M, N, K, g1, g2, g2 / g1, same ? "yes" : "NO");
        }
        if (!same) {
            printf("MISMATCH: 1 and 2 threads give different bits\n");
            exit(1);
        }
        bp_tensor_free(&A);
        bp_tensor_free(&B);
        bp_tensor_free(&C1);
        bp_tensor_free(&C2);
    }
    printf("(the machine's %d cores; the speedup is the 2-thread rate over the 1-thread rate)\n", omp_get_num_procs());
}
#endif

/* ---- part 5: the elementwise passes against a triad loop ----------------------------------------------
   Every optimizer, activation and loss (and the bias add, the column sums and dropout) is one pass over its
   arrays, and can go no faster than memory feeds it.  Each is timed beside the plain triad loop over arrays
   of the same size, in the same run, in alternating order: passes that update in place against
   a[i] += s*c[i], passes that write a new array (and the two loss forwards and the column sums, which only
   read) against a[i] = b[i] + s*c[i].  GB/s counts the useful bytes: each array element read once and each
   written once (Adam: w, dw, m, v read, w, m, v written: 28 bytes per element in float).  In cache: 4096
   elements per array; out of cache: 48M per array (192 MB in float), beyond the last-level cache of both
   CPUs named in tests/README.md.  Parts 4 and 5 time this process's CPU time (cpu_now), not the wall
   clock: on a VM shared with other busy processes the wall clock also counts the time they held the core,
   which no median of 20 ms timings removes. */

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define PASS_IN_CACHE 4096
#define PASS_OUT_OF_CACHE (48 << 20)

typedef struct {
    bp_tensor a, b, c, d; /* n elements each, as 1 x n (or n/10 x 10 for the softmax) */
    int *labels;          /* n/10 class indices, for the softmax */
    int t;                /* Adam's step count */
    bp_real norm;         /* clipping's last norm */
    bp_rng rng;           /* dropout's draws */
} pass_data;

typedef void (*pass_fn)(pass_data *p);

static void triad_in_place(pass_data *p) /* a += s*c */
{
    bp_real *a = p->a.data, s = (bp_real)1e-9;
    const bp_real *c = p->c.data;
    int i, n = p->a.rows * p->a.cols;
    for (i = 0; i < n; i++) a[i] += s * c[i];
}

static void triad_new(pass_data *p) /* d = b + s*c */
{
    bp_real *d = p->d.data, s = (bp_real)1e-9;
    const bp_real *b = p->b.data, *c = p->c.data;
    int i, n = p->a.rows * p->a.cols;
    for (i = 0; i < n; i++) d[i] = b[i] + s * c[i];
}

/* The tensors as batch x width, for the softmax: 10 classes (this network's), or 1024 (n is a multiple of
   both there) */
static bp_tensor as_rows(const bp_tensor *t, int width)
{
    bp_tensor r;
    r.rows = t->rows * t->cols / width;
    r.cols = width;
    r.data = t->data;
    return r;
}

static void pass_sgd(pass_data *p) { bp_sgd_step(&p->a, &p->b, (bp_real)1e-9); }
static void pass_momentum(pass_data *p) { bp_momentum_step(&p->a, &p->b, &p->c, (bp_real)1e-9, (bp_real)0.9); }
static void pass_adam(pass_data *p)
{
    bp_adam_step(&p->a, &p->b, &p->c, &p->d, ++p->t, (bp_real)1e-9, (bp_real)0.9, (bp_real)0.999, (bp_real)1e-8);
}
static void pass_rmsprop(pass_data *p)
{
    bp_rmsprop_step(&p->a, &p->b, &p->d, (bp_real)1e-9, (bp_real)0.99, (bp_real)1e-8);
}
static void pass_clip(pass_data *p) /* clips by a millionth each time: both of its passes run */
{
    bp_tensor *grads[1];
    grads[0] = &p->b;
    p->norm = bp_clip_grad_norm(grads, 1, p->norm * (bp_real)(1 - 1e-6));
}
/* The Linear layer's bias add (z += b on every row) and its bias gradient (db = column sums of dz), on rows
   of 128 (the width of the Fashion-MNIST network's second layer).  Both are the header's own static
   functions, called directly: bp_linear_forward adds b as the matmul writes z (bp__linear_forward_fused),
   so this pass is the textbook forward's (and any road with nothing to fuse); bp_linear_backward runs
   bp__column_sums as here.  Dropout's mask goes to a (an optimizer's w, which no pass after it reads). */
static void pass_bias_add(pass_data *p)
{
    bp_tensor z = as_rows(&p->a, 128), b = as_rows(&p->c, 128);
    b.rows = 1;
    bp__add_bias(&z, &b);
}
static void pass_column_sums(pass_data *p)
{
    bp_tensor dz = as_rows(&p->b, 128), db = as_rows(&p->d, 128);
    db.rows = 1;
    bp__column_sums(&dz, &db);
}
static void pass_dropout_forward(pass_data *p)
{
    bp_dropout_forward(&p->b, (bp_real)0.5, &p->rng, &p->a, &p->d); /* y = d, mask = a */
}
static void pass_dropout_backward(pass_data *p) { bp_dropout_backward(&p->a, &p->b, &p->d); }
static void pass_relu_forward(pass_data *p) { bp_relu_forward(&p->b, &p->d); }
static void pass_relu_backward(pass_data *p) { bp_relu_backward(&p->b, &p->c, &p->d); }
static void pass_sigmoid_forward(pass_data *p) { bp_sigmoid_forward(&p->b, &p->d); }
static void pass_sigmoid_backward(pass_data *p) { bp_sigmoid_backward(&p->b, &p->c, &p->d); }
static void pass_tanh_forward(pass_data *p) { bp_tanh_forward(&p->b, &p->d); }
static void pass_tanh_backward(pass_data *p) { bp_tanh_backward(&p->b, &p->c, &p->d); }
static void pass_mse_forward(pass_data *p) { p->norm = bp_mse_forward(&p->b, &p->c); }
static void pass_mse_backward(pass_data *p) { bp_mse_backward(&p->b, &p->c, &p->d); }
static void softmax_forward(pass_data *p, int width)
{
    bp_tensor logits = as_rows(&p->b, width), probs = as_rows(&p->d, width);
    bp_softmax_xent_forward(&logits, p->labels, &probs);
}
static void softmax_backward(pass_data *p, int width)
{
    bp_tensor probs = as_rows(&p->c, width), dlogits = as_rows(&p->d, width);
    bp_softmax_xent_backward(&probs, p->labels, &dlogits);
}
static void pass_softmax_forward(pass_data *p) { softmax_forward(p, 10); }
static void pass_softmax_backward(pass_data *p) { softmax_backward(p, 10); }
static void pass_softmax_forward_wide(pass_data *p) { softmax_forward(p, 1024); }
static void pass_softmax_backward_wide(pass_data *p) { softmax_backward(p, 1024); }

static const struct {
    const char *name;
    pass_fn fn;
    int in_place;  /* compared with a += s*c (else with d = b + s*c) */
    double bytes;  /* useful bytes per element, in units of sizeof(bp_real) (labels: an int per 10) */
} passes[] = {
    {"sgd_step", pass_sgd, 1, 3},
    {"momentum_step", pass_momentum, 1, 5},
    {"adam_step", pass_adam, 1, 7},
    {"rmsprop_step", pass_rmsprop, 1, 5},
    {"clip_grad_norm", pass_clip, 1, 3},
    {"bias_add", pass_bias_add, 1, 2},
    {"column_sums", pass_column_sums, 0, 1},
    {"relu_forward", pass_relu_forward, 0, 2},
    {"relu_backward", pass_relu_backward, 0, 3},
    {"sigmoid_forward", pass_sigmoid_forward, 0, 2},
    {"sigmoid_backward", pass_sigmoid_backward, 0, 3},
    {"tanh_forward", pass_tanh_forward, 0, 2},
    {"tanh_backward", pass_tanh_backward, 0, 3},
    {"dropout_forward", pass_dropout_forward, 0, 3},
    {"dropout_backward", pass_dropout_backward, 0, 3},
    {"mse_forward", pass_mse_forward, 0, 2},
    {"mse_backward", pass_mse_backward, 0, 3},
    {"softmax_xent_forward", pass_softmax_forward, 0, 2.1},
    {"softmax_xent_backward", pass_softmax_backward, 0, 2.1},
    {"softmax_xent_forward (1024)", pass_softmax_forward_wide, 0, 2 + 1 / 1024.},
    {"softmax_xent_backward (1024)", pass_softmax_backward_wide, 0, 2 + 1 / 1024.},
};
#define NPASSES ((int)(sizeof passes / sizeof passes[0]))

/* Seconds per call of fn, one timing of `calls` calls */
static double time_pass(pass_fn fn, pass_data *p, int calls)
{
    double t = cpu_now();
    int i;
    for (i = 0; i < calls; i++) fn(p);
    return (cpu_now() - t) / calls;
}

/* Times every pass and its triad at n elements per array; fills gbs[pass][0] (the pass) and [1] (triad). */
static void time_passes(pass_data *p, int n, bp_rng *rng, double gbs[][2])
{
    int k, r, calls, i;
    p->a.cols = p->b.cols = p->c.cols = p->d.cols = n;
    bp_tensor_randn(&p->a, rng, 1);
    bp_tensor_randn(&p->b, rng, 1);
    for (i = 0; i < n; i++) p->c.data[i] = (bp_real)0.5 + (bp_real)0.25 * (bp_real)(i % 3); /* in (0, 1) */
    for (i = 0; i < n / 10; i++) p->labels[i] = i % 10;
    for (k = 0; k < NPASSES; k++) {
        pass_fn fns[2];
        double secs[2][REPS];
        fns[0] = passes[k].fn;
        fns[1] = passes[k].in_place ? triad_in_place : triad_new;
        if (fns[0] == pass_adam || fns[0] == pass_rmsprop) /* their v >= 0 */
            memset(p->d.data, 0, (size_t)n * sizeof(bp_real));
        p->norm = (bp_real)sqrt((double)n); /* about the norm of b */
        fns[0](p);
        for (calls = 1; time_pass(fns[0], p, calls) * calls < MIN_TIMING; calls *= 2) continue;
        for (r = 0; r < REPS; r++) {
            secs[r % 2][r] = time_pass(fns[r % 2], p, calls); /* alternate which goes first */
            secs[1 - r % 2][r] = time_pass(fns[1 - r % 2], p, calls);
        }
        gbs[k][0] = passes[k].bytes * sizeof(bp_real) * n / median(secs[0], REPS) * 1e-9;
        gbs[k][1] = 3.0 * sizeof(bp_real) * n / median(secs[1], REPS) * 1e-9;
    }
}

static void passes_table(bp_rng *rng)
{
    pass_data p;
    double in_cache[NPASSES][2], out_of_cache[NPASSES][2];
    int k, n = PASS_OUT_OF_CACHE;
    memset(&p, 0, sizeof p);
    bp_rng_seed(&p.rng, 5);
    p.a = bp_tensor_new(1, n), p.b = bp_tensor_new(1, n), p.c = bp_tensor_new(1, n), p.d = bp_tensor_new(1, n);
    p.labels = (int *)malloc(sizeof(int) * (size_t)(n / 10));
    if (!p.a.data || !p.b.data || !p.c.data || !p.d.data || !p.labels) {
        printf("\nelementwise passes: not run (out of memory)\n");
        return;
    }
    printf("\nelementwise passes: GB/s of useful bytes (each element read once, written once), beside a triad\n"
           "loop on arrays of the same size in the same run (median of %d); in cache %d elements per array,\n"
           "out of cache %d (%.0f MB per array)\n", REPS, PASS_IN_CACHE, n, n * (double)sizeof(bp_real) / (1 << 20));
    printf("%-28s %6s %-9s | %8s %8s %6s | %8s %8s %6s\n", "pass", "bytes", "triad", "in cache", "triad", "ratio",
           "out", "triad", "ratio");
    time_passes(&p, PASS_IN_CACHE, rng, in_cache);
    time_passes(&p, n, rng, out_of_cache);
    for (k = 0; k < NPASSES; k++)
        printf("%-28s %6.1f %-9s | %8.1f %8.1f %5.2fx | %8.1f %8.1f %5.2fx\n", passes[k].name,
               passes[k].bytes * sizeof(bp_real), passes[k].in_place ? "a+=s*c" : "d=b+s*c", in_cache[k][0],
               in_cache[k][1], in_cache[k][0] / in_cache[k][1], out_of_cache[k][0], out_of_cache[k][1],
               out_of_cache[k][0] / out_of_cache[k][1]);
    printf("(bytes: per element; the triad moves 3 elements.  A ratio below 1 in cache is computation: the\n"
           " triad does one multiply-add per element.  The softmax on rows of 10 classes, this network's, and\n"
           " (1024) on rows of 1024; the bias add and column sums on rows of 128, the textbook forward's and\n"
           " the backward's; dropout with p = 0.5)\n");
    bp_tensor_free(&p.a);
    bp_tensor_free(&p.b);
    bp_tensor_free(&p.c);
    bp_tensor_free(&p.d);
    free(p.labels);
}

/* ---- part 6: the network of examples/fashion_mnist.c, against PyTorch ---------------------------------
   784 -> 256 -> ReLU -> 128 -> ReLU -> 10, softmax cross-entropy, Adam (lr 1e-3), batch 128, one thread:
   the training steps of one epoch (469) of examples/fashion_mnist.c, on synthetic data of Fashion-MNIST's
   shape: 8192 images whose 2-pixel border is 0 in every image (as Fashion-MNIST's corners are: their
   weights get exactly-0 gradients, and Adam's state for them decays towards 0), other pixels uniform in
   [0, 1), random labels.  Each step gathers a shuffled batch (as the example does), runs forward,
   backward and the Adam step on all six parameters.  tests/bench_torch.py times the same steps in PyTorch
   (nn.Sequential, F.cross_entropy, torch.optim.Adam; make bench runs it just before this program) and the
   ratio is PyTorch's time over backprop.h's.  Evaluation is not timed, on either side.  Both count CPU time
   (see part 5). */

#define FM_IN 784
#define FM_H1 256
#define FM_H2 128
#define FM_OUT 10
#define FM_BATCH 128
#define FM_IMAGES 8192
#define FM_EPOCH_STEPS 469 /* ceil(60000 / 128) */
#define FM_WARMUP 100      /* steps before the timings, on both sides */
#define FM_STEPS 200       /* steps per timing: 100 + 7 x 200 = 1500 steps, past where Adam's m decays */

typedef struct {
    bp_tensor data, x, p[6], g[6], m[6], v[6]; /* W1 b1 W2 b2 W3 b3 */
    bp_tensor z1, a1, z2, a2, logits, probs, d1, d2;
    int labels[FM_IMAGES], batch_labels[FM_BATCH], order[FM_IMAGES], t, next;
} fm_net;

static void fm_new(fm_net *n, bp_rng *rng)
{
    static const int shape[6][2] = {{FM_IN, FM_H1}, {1, FM_H1}, {FM_H1, FM_H2}, {1, FM_H2}, {FM_H2, FM_OUT}, {1, FM_OUT}};
    int k, i, j;
    for (k = 0; k < 6; k++) {
        n->p[k] = bp_tensor_new(shape[k][0], shape[k][1]);
        n->g[k] = bp_tensor_new(shape[k][0], shape[k][1]);
        n->m[k] = bp_tensor_new(shape[k][0], shape[k][1]);
        n->v[k] = bp_tensor_new(shape[k][0], shape[k][1]);
        if (k % 2 == 0) bp_init_he(&n->p[k], rng);
    }
    n->data = bp_tensor_new(FM_IMAGES, FM_IN);
    for (i = 0; i < FM_IMAGES; i++) {
        for (j = 0; j < FM_IN; j++) {
            int r = j / 28, c = j % 28, border = r < 2 || r >= 26 || c < 2 || c >= 26;
            n->data.data[i * FM_IN + j] = border ? 0 : (bp_real)bp_rng_uniform(rng);
        }
        n->labels[i] = (int)(bp_rng_next_u64(rng) % FM_OUT);
        n->order[i] = i;
    }
    n->x = bp_tensor_new(FM_BATCH, FM_IN);
    n->z1 = bp_tensor_new(FM_BATCH, FM_H1), n->a1 = bp_tensor_new(FM_BATCH, FM_H1), n->d1 = bp_tensor_new(FM_BATCH, FM_H1);
    n->z2 = bp_tensor_new(FM_BATCH, FM_H2), n->a2 = bp_tensor_new(FM_BATCH, FM_H2), n->d2 = bp_tensor_new(FM_BATCH, FM_H2);
    n->logits = bp_tensor_new(FM_BATCH, FM_OUT), n->probs = bp_tensor_new(FM_BATCH, FM_OUT);
    n->t = 0;
    n->next = FM_IMAGES;
}

static void fm_free(fm_net *n)
{
    bp_tensor *t[] = {&n->data, &n->x, &n->z1, &n->a1, &n->d1, &n->z2, &n->a2, &n->d2, &n->logits, &n->probs};
    int k;
    for (k = 0; k < 6; k++) {
        bp_tensor_free(&n->p[k]);
        bp_tensor_free(&n->g[k]);
        bp_tensor_free(&n->m[k]);
        bp_tensor_free(&n->v[k]);
    }
    for (k = 0; k < (int)(sizeof t / sizeof t[0]); k++) bp_tensor_free(t[k]);
}

/* One training step of examples/fashion_mnist.c: gather, forward, backward, Adam; returns the loss */
static bp_real fm_step(fm_net *n, bp_rng *rng)
{
    bp_real loss;
    int r, k;
    if (n->next + FM_BATCH > FM_IMAGES) { /* a new epoch of the synthetic set: shuffle (Fisher-Yates) */
        for (r = FM_IMAGES - 1; r > 0; r--) {
            int j = (int)(bp_rng_uniform(rng) * (r + 1)), tmp = n->order[r];
            n->order[r] = n->order[j];
            n->order[j] = tmp;
        }
        n->next = 0;
    }
    for (r = 0; r < FM_BATCH; r++) {
        int i = n->order[n->next + r];
        memcpy(n->x.data + r * FM_IN, n->data.data + (size_t)i * FM_IN, FM_IN * sizeof(bp_real));
        n->batch_labels[r] = n->labels[i];
    }
    n->next += FM_BATCH;
    bp_linear_forward(&n->x, &n->p[0], &n->p[1], &n->z1);
    bp_relu_forward(&n->z1, &n->a1);
    bp_linear_forward(&n->a1, &n->p[2], &n->p[3], &n->z2);
    bp_relu_forward(&n->z2, &n->a2);
    bp_linear_forward(&n->a2, &n->p[4], &n->p[5], &n->logits);
    loss = bp_softmax_xent_forward(&n->logits, n->batch_labels, &n->probs);
    bp_softmax_xent_backward(&n->probs, n->batch_labels, &n->probs);
    bp_linear_backward(&n->a2, &n->p[4], &n->probs, &n->d2, &n->g[4], &n->g[5]);
    bp_relu_backward(&n->z2, &n->d2, &n->d2);
    bp_linear_backward(&n->a1, &n->p[2], &n->d2, &n->d1, &n->g[2], &n->g[3]);
    bp_relu_backward(&n->z1, &n->d1, &n->d1);
    bp_linear_backward(&n->x, &n->p[0], &n->d1, NULL, &n->g[0], &n->g[1]);
    n->t++;
    for (k = 0; k < 6; k++)
        bp_adam_step(&n->p[k], &n->g[k], &n->m[k], &n->v[k], n->t, (bp_real)1e-3, (bp_real)0.9, (bp_real)0.999,
                     (bp_real)1e-8);
    return loss;
}

/* PyTorch's figure for the same steps from the file tests/bench_torch.py wrote ("torch fashion <us>"), 0 if
   absent */
static double torch_fashion_us(const char *path)
{
    char line[128];
    double us = 0, v;
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "torch fashion %lf", &v) == 1) us = v;
    fclose(f);
    return us;
}

static void fashion_table(bp_rng *rng, const char *torch_file)
{
    fm_net n;
    double secs[REPS], us, torch = torch_fashion_us(torch_file);
    bp_real first = 0, last = 0;
    int r, s;
    fm_new(&n, rng);
    for (s = 0; s < FM_WARMUP; s++) last = fm_step(&n, rng), first = s == 0 ? last : first;
    for (r = 0; r < REPS; r++) {
        double t = cpu_now();
        for (s = 0; s < FM_STEPS; s++) last = fm_step(&n, rng);
        secs[r] = (cpu_now() - t) / FM_STEPS;
    }
    us = median(secs, REPS) * 1e6;
    printf("\nthe network of examples/fashion_mnist.c (784-256-128-10, ReLU, softmax cross-entropy, Adam, batch %d,\n"
           "one thread), synthetic data; %d + %d x %d steps, median of %d; CPU seconds per epoch of %d steps:\n",
           FM_BATCH, FM_WARMUP, REPS, FM_STEPS, REPS, FM_EPOCH_STEPS);
    printf("  backprop.h %.3f s/epoch (%.0f us/step; loss %.3f -> %.3f)", us * 1e-6 * FM_EPOCH_STEPS, us,
           (double)first, (double)last);
    if (torch > 0) printf("   PyTorch %.3f s/epoch (%.0f us/step)   PyTorch/bp %.2fx\n", torch * 1e-6 * FM_EPOCH_STEPS, torch,
                          torch / us);
    else printf("   PyTorch: not run\n");
    fm_free(&n);
}

/* ---- header and main ------------------------------------------------------------------------------- */

static void print_header(void)
{
    char line[256], cpu[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0) {
                char *v = strchr(line, ':');
                if (v) {
                    v += 1 + (v[1] == ' ');
                    v[strcspn(v, "\n")] = 0;
                    strcpy(cpu, v);
                }
                break;
            }
        fclose(f);
    }
    printf("backprop.h %d.%d.%d bench\n", BACKPROP_VERSION_MAJOR, BACKPROP_VERSION_MINOR, BACKPROP_VERSION_PATCH);
    printf("cpu: %s\n", cpu);
#if defined(__clang__)
    printf("compiler: %s\n", __VERSION__); /* "Debian Clang 14.0.6" */
#elif defined(__GNUC__)
    printf("compiler: gcc %s\n", __VERSION__); /* __VERSION__ is "12.2.0" */
#endif
    printf("bp_real: %s (%d bytes)", sizeof(bp_real) == 8 ? "double" : "float", (int)sizeof(bp_real));
#if defined(BP__MR) && defined(BP__NR)
    printf(", bp_matmul register tile %dx%d", BP__MR, BP__NR);
#endif
#if defined(__AVX512F__)
    printf(", compiled for AVX-512");
#elif defined(__AVX2__)
    printf(", compiled for AVX2");
#elif defined(__AVX__)
    printf(", compiled for AVX");
#endif
    printf("\n");
#ifdef BENCH_OPENBLAS
    openblas_set_num_threads(1); /* a single-threaded comparison, like bp_matmul */
    printf("OpenBLAS:%score %s, %d thread(s)%s\n", OPENBLAS_VERSION, openblas_get_corename(),
           openblas_get_num_threads(),
           getenv("OPENBLAS_CORETYPE") ? " (pinned with OPENBLAS_CORETYPE: the fastest kernel measured here)" : "");
#else
    printf("OpenBLAS: not built in (-DBENCH_OPENBLAS)\n");
#endif
}

/* Peak memory (maximum resident set size) of this process so far, in MB; 0 where unknown. */
#if defined(__linux__)
#include <sys/resource.h>
static double peak_memory_mb(void)
{
    struct rusage u;
    return getrusage(RUSAGE_SELF, &u) == 0 ? u.ru_maxrss / 1024.0 : 0; /* ru_maxrss is in KB on Linux */
}
#else
static double peak_memory_mb(void) { return 0; }
#endif

#ifdef BENCH_OPENBLAS
/* bench --openblas-probe: GFLOP/s of OpenBLAS's 512^3 product (best of 5, one thread) and the name of the
   kernel it runs, on one line, for tests/openblas_core.sh to choose OPENBLAS_CORETYPE. */
static int openblas_probe(void)
{
    bp_tensor A = bp_tensor_new(512, 512), B = bp_tensor_new(512, 512), C = bp_tensor_new(512, 512);
    double best = 1e30;
    int i;
    for (i = 0; i < 512 * 512; i++) A.data[i] = B.data[i] = (bp_real)(i % 7) - 3;
    openblas_set_num_threads(1);
    for (i = 0; i < 5; i++) {
        double t = time_calls(openblas_gemm, &C, &A, &B, 0, 1);
        if (t < best) best = t;
    }
    printf("%.1f %s\n", 2.0 * 512 * 512 * 512 / best * 1e-9, openblas_get_corename());
    bp_tensor_free(&A);
    bp_tensor_free(&B);
    bp_tensor_free(&C);
    return 0;
}
#endif

/* bench                    the matmul table, then the training table
   bench --torch FILE       ... with PyTorch's figures from FILE (written by tests/bench_torch.py)
   bench --matmul-only      only the matmul table (part 1)
   bench --train-only       only the training table (bp only), then this process's peak memory: what a
                            training program of this size needs
   bench --threads-only     (built with -fopenmp) only the 1-thread vs 2-thread table
   bench --cnn-only         only the CNN training step (with --torch FILE: against PyTorch's)
   bench --mlp-only         only the table of the network object against the explicit calls
   bench --passes-only      only the elementwise passes against the triad loop (part 5)
   bench --fashion-only     only the Fashion-MNIST network (part 6; with --torch FILE, against PyTorch)
   bench --tiny-only        only the tiny network against genann's loops (part 7; --tiny-passes N: N passes)
   bench --openblas-probe   (built with OpenBLAS) one quick OpenBLAS rate and its kernel's name */
int main(int argc, char **argv)
{
    double start = now(), ratio512 = 0;
    const char *torch_file = NULL;
    int train_only = 0, threads_only = 0, cnn_only = 0, mlp_only = 0, passes_only = 0, fashion_only = 0;
    int tiny_only = 0, matmul_only = 0, i;
    bp_rng rng;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--torch") == 0 && i + 1 < argc) torch_file = argv[++i];
        else if (strcmp(argv[i], "--matmul-only") == 0) matmul_only = 1;
        else if (strcmp(argv[i], "--train-only") == 0) train_only = 1;
        else if (strcmp(argv[i], "--threads-only") == 0) threads_only = 1;
        else if (strcmp(argv[i], "--cnn-only") == 0) cnn_only = 1;
        else if (strcmp(argv[i], "--mlp-only") == 0) mlp_only = 1;
        else if (strcmp(argv[i], "--passes-only") == 0) passes_only = 1;
        else if (strcmp(argv[i], "--fashion-only") == 0) fashion_only = 1;
        else if (strcmp(argv[i], "--tiny-only") == 0) tiny_only = 5000;
        else if (strcmp(argv[i], "--tiny-passes") == 0 && i + 1 < argc) tiny_only = atoi(argv[++i]);
#ifdef BENCH_OPENBLAS
        else if (strcmp(argv[i], "--openblas-probe") == 0) return openblas_probe();
#endif
        else {
            fprintf(stderr, "usage: %s [--torch FILE] [--matmul-only] [--train-only] [--threads-only] [--cnn-only] [--mlp-only]"
                    " [--passes-only] [--fashion-only] [--tiny-only] [--tiny-passes N] [--openblas-probe]\n", argv[0]);
            return 2;
        }
    }
    bp_rng_seed(&rng, 12345);
    if (cnn_only) {
        cnn_table(&rng, torch_file);
        return 0;
    }
    if (passes_only || fashion_only) {
        print_header();
        if (passes_only) passes_table(&rng);
        if (fashion_only) fashion_table(&rng, torch_file);
        return 0;
    }
    if (train_only) {
        training_table(&rng, 1, NULL);
        printf("peak memory of this training-only run (3 networks, max RSS): %.1f MB\n", peak_memory_mb());
        return 0;
    }
    if (tiny_only) {
        tiny_table(&rng, tiny_only);
        return 0;
    }
    if (mlp_only) {
        print_header();
        object_table(&rng);
        return 0;
    }
    if (threads_only) {
#ifdef _OPENMP
        print_header();
        threads_table(&rng);
        return 0;
#else
        fprintf(stderr, "%s: --threads-only needs a build with -fopenmp\n", argv[0]);
        return 2;
#endif
    }
    print_header();
    fflush(stdout);
    ratio512 = matmul_table(&rng);
    if (matmul_only) return 0;
    training_table(&rng, 0, torch_file);
    cnn_table(&rng, torch_file);
    object_table(&rng);
#ifndef BACKPROP_DOUBLE
    passes_table(&rng);
    fashion_table(&rng, torch_file);
#endif
    tiny_table(&rng, 1000);
#ifdef _OPENMP
    threads_table(&rng);
#endif
    printf("\ntotal runtime %.1f s\n", now() - start);
    printf("bench: 512^3 bp_matmul is %.1fx the naive i-j-k loop\n", ratio512);
    return 0;
}
