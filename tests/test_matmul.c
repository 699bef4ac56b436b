/* Tests of bp_matmul, C = op(A).op(B) (+ C with BP_ACCUMULATE): a small product by hand in all four
   forms with every argument check (matmul_by_hand); then every form against bp_matmul_reference, the
   textbook loops a student copies, and both against a triple loop summed in long double, at shapes around
   every register-tile (BP__MR x BP__NR) and cache-block (BP_MATMUL_MC, NC, KC) edge (matmul_vs_reference);
   and under OpenMP, 1 thread against 2, bit for bit (matmul_threads).
   Part of the suite: tests/test_backprop.c includes this file (see there how to run one test). */

#include "harness.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* The transpose of X, in a new tensor: what bp_matmul reads under BP_TRANS_A or BP_TRANS_B. */
static bp_tensor transposed(const bp_tensor *X)
{
    bp_tensor T = bp_tensor_new(X->cols, X->rows);
    int r, c;
    for (r = 0; r < X->rows; r++)
        for (c = 0; c < X->cols; c++) T.data[c * X->rows + r] = X->data[r * X->cols + c];
    return T;
}

/* ---- by hand ------------------------------------------------------------------------------------ */

static void test_matmul_by_hand(void)
{
    /* [1 2 3; 4 5 6] . [7 8; 9 10; 11 12] = [58 64; 139 154] */
    const double a_[] = {1, 2, 3, 4, 5, 6}, b_[] = {7, 8, 9, 10, 11, 12};
    const double ab[] = {58, 64, 139, 154}, ab_twice[] = {116, 128, 278, 308};
    const double ata[] = {17, 22, 27, 22, 29, 36, 27, 36, 45}; /* A^T A */
    bp_tensor A = make(2, 3, a_), B = make(3, 2, b_), C = bp_tensor_new(2, 2), G = bp_tensor_new(3, 3);
    bp_tensor At = transposed(&A), Bt = transposed(&B); /* what BP_TRANS_A and BP_TRANS_B read */
    bp_matmul(&C, &A, &B, 0);
    CHECK(close_to(&C, ab, 0));
    bp_matmul(&C, &A, &B, BP_ACCUMULATE);
    CHECK(close_to(&C, ab_twice, 0));
    bp_matmul(&C, &At, &B, BP_TRANS_A);
    CHECK(close_to(&C, ab, 0));
    bp_matmul(&C, &A, &Bt, BP_TRANS_B);
    CHECK(close_to(&C, ab, 0));
    bp_matmul(&C, &At, &Bt, BP_TRANS_A | BP_TRANS_B);
    CHECK(close_to(&C, ab, 0));
    bp_matmul(&G, &A, &A, BP_TRANS_A); /* the same tensor as both inputs is fine */
    CHECK(close_to(&G, ata, 0));
    EXPECT_NO_ERROR();

    /* empty tensors: K = 0 is a sum of nothing (0; accumulate leaves C alone), M = 0 has nothing to do */
    {
        bp_tensor E1 = bp_tensor_new(2, 0), E2 = bp_tensor_new(0, 2), Z = bp_tensor_new(0, 2);
        fill(&C, 3);
        bp_matmul(&C, &E1, &E2, BP_ACCUMULATE);
        CHECK(all_equal(&C, 3));
        bp_matmul(&C, &E1, &E2, 0);
        CHECK(all_equal(&C, 0));
        bp_matmul(&Z, &E2, &C, 0);
        EXPECT_NO_ERROR();
        bp_matmul(&Z, &E1, &E2, 0);
        EXPECT_ERROR("bp_matmul", "C is 0x2", "A.B is 2x2");
        bp_tensor_free(&E1);
        bp_tensor_free(&E2);
        bp_tensor_free(&Z);
    }

    /* argument checks: one message naming the shapes, C untouched */
    fill(&C, 42);
    bp_matmul(&C, &A, &A, 0);
    EXPECT_ERROR("bp_matmul", "A is 2x3", "B is 2x3", "op(A).cols must equal op(B).rows");
    bp_matmul(&C, &A, &B, BP_TRANS_A);
    EXPECT_ERROR("bp_matmul", "A^T is 3x2", "B is 3x2");
    bp_matmul(&C, &A, &B, BP_TRANS_B);
    EXPECT_ERROR("bp_matmul", "A is 2x3", "B^T is 2x3");
    bp_matmul(&G, &A, &B, 0);
    EXPECT_ERROR("bp_matmul", "C is 3x3", "2x2");
    bp_matmul(&C, &A, &B, 8);
    EXPECT_ERROR("bp_matmul", "unknown flags 0x8");
    bp_matmul(&C, &A, &B, -1);
    EXPECT_ERROR("bp_matmul", "unknown flags");
    bp_matmul(NULL, &A, &B, 0);
    EXPECT_ERROR("bp_matmul", "C is NULL");
    bp_matmul(&C, NULL, &B, 0);
    EXPECT_ERROR("bp_matmul", "A is NULL");
    bp_matmul(&C, &A, NULL, 0);
    EXPECT_ERROR("bp_matmul", "B is NULL");
    CHECK(all_equal(&C, 42));
    {
        bp_tensor bad = {2, 3, NULL}, neg = {-2, 3, NULL}, huge = {1 << 16, 1 << 16, NULL};
        bp_matmul(&C, &bad, &B, 0);
        EXPECT_ERROR("bp_matmul", "A is 2x3", "NULL");
        bp_matmul(&C, &neg, &B, 0);
        EXPECT_ERROR("bp_matmul", "-2x3", "negative");
        bp_matmul(&C, &huge, &B, 0);
        EXPECT_ERROR("bp_matmul", "65536x65536", "INT_MAX");
    }
    CHECK(all_equal(&C, 42));
    {
        /* outputs overlapping inputs would be silently wrong: refused */
        bp_tensor big = bp_tensor_new(4, 4), a2 = {2, 2, big.data}, c2 = {2, 2, big.data + 1}, sq = {2, 2, big.data + 8};
        fill(&big, 1);
        bp_matmul(&c2, &a2, &sq, 0);
        EXPECT_ERROR("bp_matmul", "C (2x2) shares memory with A (2x2)");
        bp_matmul(&a2, &sq, &a2, 0);
        EXPECT_ERROR("bp_matmul", "shares memory with B");
        CHECK(all_equal(&big, 1));
        bp_tensor_free(&big);
    }
    bp_tensor_free(&A);
    bp_tensor_free(&B);
    bp_tensor_free(&C);
    bp_tensor_free(&G);
    bp_tensor_free(&At);
    bp_tensor_free(&Bt);
}

/* ---- against a naive triple loop ---------------------------------------------------------------- */

/* One shape of product, set up once for all eight forms: random A (M x K) and B (K x N), their stored
   transposes (what bp_matmul reads under BP_TRANS_A / BP_TRANS_B), and the reference ref = A.B summed in
   long double with mag = sum_k |a_ik b_kj| for the error bound. */
typedef struct {
    int M, N, K;
    bp_tensor A, B, At, Bt;
    long double *ref;
    double *mag;
} matmul_problem;

static matmul_problem matmul_problem_new(bp_rng *rng, int M, int N, int K)
{
    matmul_problem pb;
    int i, j, k;
    pb.M = M, pb.N = N, pb.K = K;
    pb.A = bp_tensor_new(M, K);
    pb.B = bp_tensor_new(K, N);
    randomize(&pb.A, rng);
    randomize(&pb.B, rng);
    pb.At = transposed(&pb.A);
    pb.Bt = transposed(&pb.B);
    pb.ref = (long double *)malloc((size_t)M * (size_t)N * sizeof *pb.ref);
    pb.mag = (double *)malloc((size_t)M * (size_t)N * sizeof *pb.mag);
    if (!pb.ref || !pb.mag) {
        printf("out of memory in the matmul test\n");
        exit(1);
    }
    for (i = 0; i < M; i++)
        for (j = 0; j < N; j++) {
            long double ref = 0;
            double mag = 0;
            for (k = 0; k < K; k++) {
                double a = (double)pb.A.data[i * K + k], b = (double)pb.B.data[k * N + j];
                ref += (long double)a * (long double)b;
                mag += fabs(a * b);
            }
            pb.ref[i * N + j] = ref;
            pb.mag[i * N + j] = mag;
        }
    return pb;
}

static void matmul_problem_free(matmul_problem *pb)
{
    bp_tensor_free(&pb->A);
    bp_tensor_free(&pb->B);
    bp_tensor_free(&pb->At);
    bp_tensor_free(&pb->Bt);
    free(pb->ref);
    free(pb->mag);
}

/* Runs one form (BP_TRANS_A | BP_TRANS_B | BP_ACCUMULATE) of the problem through bp_matmul and through
   bp_matmul_reference, from the same start value C0 (overwritten, or accumulated on).  Each result must be
   within the classic bound of a dot product of length K of the exact one (the long double sum, plus C0
   when accumulating): |error| <= K u sum_k |a_ik b_kj| (u = unit roundoff), doubled for the long double
   sum's own rounding where it is no wider than bp_real; so the fast kernel and the reference differ by at
   most twice that.  The reference runs where M*N*K <= REFERENCE_MAX (the largest shapes would slow the
   sanitizer and valgrind builds down for nothing the smaller ones do not show). */
#define REFERENCE_MAX 2000000.0
static int matmul_case(const matmul_problem *pb, bp_rng *rng, int flags)
{
    int M = pb->M, N = pb->N, K = pb->K, i, ok, with_reference = (double)M * N * K <= REFERENCE_MAX;
    const bp_tensor *A = flags & BP_TRANS_A ? &pb->At : &pb->A, *B = flags & BP_TRANS_B ? &pb->Bt : &pb->B;
    bp_tensor C = bp_tensor_new(M, N), C0 = bp_tensor_new(M, N), R = bp_tensor_new(M, N);
    long mallocs;
    randomize(&C, rng); /* garbage to be overwritten, or the start value to accumulate on */
    if (element_count(&C)) memcpy(C0.data, C.data, element_count(&C) * sizeof(bp_real));
    if (element_count(&C)) memcpy(R.data, C.data, element_count(&C) * sizeof(bp_real));
    mallocs = test_mallocs;
    bp_matmul(&C, A, B, flags);
    if (with_reference) bp_matmul_reference(&R, A, B, flags);
    ok = errors_seen == 0 && test_mallocs == mallocs;
    for (i = 0; ok && i < M * N; i++) {
        int acc = (flags & BP_ACCUMULATE) != 0;
        long double exact = (acc ? (long double)C0.data[i] : 0) + pb->ref[i];
        double mag = (acc ? fabs((double)C0.data[i]) : 0) + pb->mag[i], got = (double)C.data[i];
        double ref = (double)R.data[i], tol = 2.0 * (K + 2) * (REAL_EPS / 2) * mag + DBL_MIN;
        if (!(fabs(got - (double)exact) <= tol) ||
            (with_reference && !(fabs(ref - (double)exact) <= tol && fabs(got - ref) <= 2 * tol))) {
            printf("  C(%d,%d) of %dx%dx%d flags %d: bp_matmul %.17g, bp_matmul_reference %.17g, exact %.17Lg\n",
                   i / N, i % N, M, N, K, flags, got, with_reference ? ref : NAN, exact);
            ok = 0;
        }
    }
    if (!ok) printf("  matmul %dx%dx%d flags %d failed\n", M, N, K, flags);
    bp_tensor_free(&C);
    bp_tensor_free(&C0);
    bp_tensor_free(&R);
    return ok;
}

/* All eight forms of one shape. */
static int matmul_shape(bp_rng *rng, int M, int N, int K, int *cases, int *referenced)
{
    matmul_problem pb = matmul_problem_new(rng, M, N, K);
    int form, ok = 1;
    for (form = 0; form < 8; form++, (*cases)++) ok &= matmul_case(&pb, rng, form);
    if ((double)M * N * K <= REFERENCE_MAX) *referenced += 8;
    matmul_problem_free(&pb);
    return ok;
}

static void test_matmul_vs_reference(void)
{
    /* Every dimension just below, at and above each tile (MR, NR) and block (MC, NC, KC) edge. */
    const int Ms[] = {1, BP__MR - 1, BP__MR + 1, BP_MATMUL_MC, BP_MATMUL_MC + 1, 2 * BP_MATMUL_MC + 3};
    const int Ns[] = {1, BP__NR - 1, BP__NR + 1, BP_MATMUL_NC - 1, BP_MATMUL_NC + 1};
    const int Ks[] = {1, 2, BP_MATMUL_KC - 1, BP_MATMUL_KC, 2 * BP_MATMUL_KC + 1};
    /* 1x1x1, primes, exact multiples, tall and skinny */
    const int shapes[][3] = {{1, 1, 1}, {2, 3, 4}, {13, 17, 19}, {31, 37, 41}, {BP__MR, BP__NR, 8},
                             {2 * BP__MR, 3 * BP__NR, 16}, {1000, 1, 3}, {1, 1000, 7}, {3, 2, 1000},
                             {200, 3, 1}, {64, 10, 256}, {97, 1, 89}, {1, 89, 97},
                             /* a narrow C, computed as its transpose: C's rows cross NC blocks */
                             {BP_MATMUL_NC + 1, 3, 5}, {2 * BP_MATMUL_NC + 1, BP__MR + 1, BP_MATMUL_KC + 1},
                             /* fewer rows than a tile (no packing), wide and deep */
                             {BP__MR - 1, 2 * BP_MATMUL_NC + 1, BP_MATMUL_KC + 1},
                             /* big enough for the OpenMP path (several row blocks, >= 4e6 multiply-adds) */
                             {2 * BP_MATMUL_MC + 1, 130, BP_MATMUL_KC + 1}};
    bp_rng rng;
    int a, b, c, ok = 1, cases = 0, referenced = 0;
    bp_rng_seed(&rng, 2024);
    for (a = 0; a < (int)(sizeof Ms / sizeof *Ms); a++)
        for (b = 0; b < (int)(sizeof Ns / sizeof *Ns); b++)
            for (c = 0; c < (int)(sizeof Ks / sizeof *Ks); c++)
                if (Ms[a] > 0 && Ns[b] > 0) ok &= matmul_shape(&rng, Ms[a], Ns[b], Ks[c], &cases, &referenced);
    for (a = 0; a < (int)(sizeof shapes / sizeof *shapes); a++)
        ok &= matmul_shape(&rng, shapes[a][0], shapes[a][1], shapes[a][2], &cases, &referenced);
    CHECK(ok);
    CHECK(cases > 1000);
    CHECK(referenced > cases / 2); /* the reference ran for most of them */
}

#ifdef _OPENMP
/* OpenMP shares row blocks among threads; each C element is still summed by one thread in one order:
   1 thread and 2 threads give the same bits. */
static void test_matmul_threads(void)
{
    bp_tensor A = bp_tensor_new(300, 301), B = bp_tensor_new(301, 302), C1 = bp_tensor_new(300, 302),
              C2 = bp_tensor_new(300, 302);
    bp_rng rng;
    bp_rng_seed(&rng, 2025);
    randomize(&A, &rng);
    randomize(&B, &rng);
    omp_set_num_threads(1);
    bp_matmul(&C1, &A, &B, 0);
    omp_set_num_threads(2);
    bp_matmul(&C2, &A, &B, 0);
    CHECK(memcmp(C1.data, C2.data, element_count(&C1) * sizeof(bp_real)) == 0);
    bp_tensor_free(&A);
    bp_tensor_free(&B);
    bp_tensor_free(&C1);
    bp_tensor_free(&C2);
}
#endif
