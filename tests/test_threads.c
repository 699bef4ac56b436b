/* Tests of backprop.h in threaded programs (POSIX threads; not built with BP_TEST_NO_THREADS, on Windows or
   without pthreads):
     - failure_reason_threads: 4 threads each load their own bad .npy file 2000 times at once; each must
       read only its own bp_failure_reason() every time (thread-local storage), and the main thread's reason
       is untouched by theirs.  Skipped where BP_FAILURE_REASON_PER_THREAD is 0 (tcc: one shared buffer).
     - layers_threads: 4 threads run the same training step (matmul with the blocked kernel, Linear, ReLU,
       sigmoid, tanh, MSE, softmax + cross-entropy, Adam) on their own tensors at once, 20 times: the
       results are bit-identical to the same step run alone.
   The threads allocate nothing (the counting allocator is not thread-safe): tensors are made before they
   start, and the bad files fail before the loader allocates.  make tsan runs these under ThreadSanitizer.
   Part of the suite: tests/test_backprop.c includes this file (see there how to run one test). */

#include "harness.h"

#if (defined(__unix__) || defined(__APPLE__)) && !defined(BP_TEST_NO_THREADS)
#define BP_TEST_THREADS 1
#include <pthread.h>

#define THREADS 4

#ifndef BACKPROP_NO_STDIO
typedef struct reason_job {
    char path[64];
    char expected[320]; /* the reason, as the main thread read it */
    int mismatches, loads;
} reason_job;

static void *reason_thread(void *arg)
{
    reason_job *job = (reason_job *)arg;
    int i;
    for (i = 0; i < 2000; i++) {
        bp_tensor t = {0, 0, NULL};
        if (bp_tensor_load_npy(&t, job->path) != -1 || strcmp(bp_failure_reason(), job->expected) != 0)
            job->mismatches++;
        job->loads++;
    }
    return NULL;
}

static void test_failure_reason_threads(void)
{
    /* four ways to fail before the loader allocates anything: each thread's own file, its own reason */
    static const char *const contents[THREADS] = {"\x93NUMPY\x04\x00\x10\x00", "\x93NUMPX\x01\x00\x10\x00",
                                                  "\x93NUMPY\x01\x00\xff\xff", "GIF89a"};
    reason_job jobs[THREADS];
    pthread_t threads[THREADS];
    char mine[320];
    int k, started = 0, mismatches = 0, loads = 0;
    if (!BP_FAILURE_REASON_PER_THREAD) {
        skip_reason = "this compiler has no thread-local storage (tcc): bp_failure_reason is one shared buffer";
        return;
    }
    for (k = 0; k < THREADS; k++) {
        FILE *f;
        bp_tensor t = {0, 0, NULL};
        snprintf(jobs[k].path, sizeof jobs[k].path, SCRATCH "/thread%d.npy", k);
        f = fopen(jobs[k].path, "wb");
        if (f) {
            fwrite(contents[k], 1, strlen(contents[k]), f);
            fclose(f);
        }
        CHECK(bp_tensor_load_npy(&t, jobs[k].path) == -1);
        strcpy(jobs[k].expected, bp_failure_reason());
        jobs[k].mismatches = jobs[k].loads = 0;
    }
    /* the main thread's own reason, which the threads must not touch */
    CHECK(bp_tensor_load_npy(NULL, NULL) == -1);
    EXPECT_ERROR("bp_tensor_load_npy", "t is NULL");
    {
        bp_tensor t = {0, 0, NULL};
        CHECK(bp_tensor_load_npy(&t, SCRATCH "/no_such_file_for_main.npy") == -1);
    }
    strcpy(mine, bp_failure_reason());
    for (k = 0; k < THREADS; k++)
        if (pthread_create(&threads[k], NULL, reason_thread, &jobs[k]) == 0) started++;
        else break;
    CHECK(started == THREADS);
    for (k = 0; k < started; k++) pthread_join(threads[k], NULL);
    for (k = 0; k < started; k++) {
        mismatches += jobs[k].mismatches;
        loads += jobs[k].loads;
        CHECK(strstr(jobs[k].expected, jobs[k].path) != NULL); /* four different reasons */
        remove(jobs[k].path);
    }
    printf("  %d threads, %d failing loads at once, %d reasons not the thread's own\n", started, loads, mismatches);
    CHECK(mismatches == 0 && loads == THREADS * 2000);
    CHECK(strcmp(bp_failure_reason(), mine) == 0);
}
#endif

/* One training step on its own tensors: z = xW + b (matmul big enough for the blocked kernel), then each
   layer forward and backward, the losses, Adam. */
typedef struct step_job {
    bp_tensor x, W, b, z, a, s, h, d, dx, dW, db, m, v, probs;
    int labels[70];
    double loss;
} step_job;

static void step_make(step_job *j)
{
    bp_rng rng;
    int i;
    bp_rng_seed(&rng, 99);
    j->x = bp_tensor_new(70, 130);
    j->W = bp_tensor_new(130, 150);
    j->b = bp_tensor_new(1, 150);
    j->z = bp_tensor_new(70, 150);
    j->a = bp_tensor_new(70, 150);
    j->s = bp_tensor_new(70, 150);
    j->h = bp_tensor_new(70, 150);
    j->d = bp_tensor_new(70, 150);
    j->dx = bp_tensor_new(70, 130);
    j->dW = bp_tensor_new(130, 150);
    j->db = bp_tensor_new(1, 150);
    j->m = bp_tensor_new(130, 150);
    j->v = bp_tensor_new(130, 150);
    j->probs = bp_tensor_new(70, 150);
    bp_tensor_randn(&j->x, &rng, 1);
    bp_init_he(&j->W, &rng);
    bp_tensor_randn(&j->b, &rng, (bp_real)0.1);
    for (i = 0; i < 70; i++) j->labels[i] = (i * 37) % 150;
}

static void step_free(step_job *j)
{
    bp_tensor *all[14];
    int k;
    all[0] = &j->x, all[1] = &j->W, all[2] = &j->b, all[3] = &j->z, all[4] = &j->a, all[5] = &j->s, all[6] = &j->h;
    all[7] = &j->d, all[8] = &j->dx, all[9] = &j->dW, all[10] = &j->db, all[11] = &j->m, all[12] = &j->v;
    all[13] = &j->probs;
    for (k = 0; k < 14; k++) bp_tensor_free(all[k]);
}

static void step_run(step_job *j, int steps)
{
    int t;
    for (t = 1; t <= steps; t++) {
        bp_linear_forward(&j->x, &j->W, &j->b, &j->z);
        bp_relu_forward(&j->z, &j->a);
        bp_sigmoid_forward(&j->z, &j->s);
        bp_tanh_forward(&j->z, &j->h);
        j->loss = (double)bp_mse_forward(&j->a, &j->s) + (double)bp_softmax_xent_forward(&j->h, j->labels, &j->probs);
        bp_softmax_xent_backward(&j->probs, j->labels, &j->d);
        bp_tanh_backward(&j->h, &j->d, &j->d);
        bp_sigmoid_backward(&j->s, &j->d, &j->d);
        bp_relu_backward(&j->z, &j->d, &j->d);
        bp_linear_backward(&j->x, &j->W, &j->d, &j->dx, &j->dW, &j->db);
        bp_adam_step(&j->W, &j->dW, &j->m, &j->v, t, (bp_real)1e-3, (bp_real)0.9, (bp_real)0.999, (bp_real)1e-8);
    }
}

static void *step_thread(void *arg)
{
    step_run((step_job *)arg, 20);
    return NULL;
}

static void test_layers_threads(void)
{
    step_job alone, jobs[THREADS];
    pthread_t threads[THREADS];
    int k, started = 0, same = 0;
    step_make(&alone);
    step_run(&alone, 20);
    for (k = 0; k < THREADS; k++) step_make(&jobs[k]);
    for (k = 0; k < THREADS; k++)
        if (pthread_create(&threads[k], NULL, step_thread, &jobs[k]) == 0) started++;
        else break;
    CHECK(started == THREADS);
    for (k = 0; k < started; k++) pthread_join(threads[k], NULL);
    for (k = 0; k < started; k++) {
        int ok = same_bits(&jobs[k].W, &alone.W) && same_bits(&jobs[k].dx, &alone.dx) &&
                 same_bits(&jobs[k].db, &alone.db) && same_bits(&jobs[k].v, &alone.v) &&
                 same_bits(&jobs[k].probs, &alone.probs) && jobs[k].loss == alone.loss;
        same += ok;
        CHECK(ok);
    }
    printf("  %d threads x 20 steps (a 70x130 by 130x150 matmul and every layer each): %d bit-identical to one "
           "thread alone\n", started, same);
    EXPECT_NO_ERROR();
    step_free(&alone);
    for (k = 0; k < THREADS; k++) step_free(&jobs[k]);
}
#endif
