/* genann's example 4 -- train a network on the Iris flowers by backpropagation -- written with backprop.h's
   network in one object: bp_mlp_new, bp_mlp_train_step, bp_mlp_predict, bp_mlp_save, bp_mlp_free.

       make iris     (or ./build/iris_mlp [OUT]: the network is saved as OUT/iris_mlp.npz, OUT build)

   As genann's: 4 inputs, one hidden layer of 4 sigmoid neurons, 3 sigmoid outputs (one per species)
   trained towards one-hot targets with the squared error, plain SGD, one flower per step, 5000 passes over
   150 flowers.  genann reads the data set from iris.data; this program draws 150 flowers of the same shape
   instead (each species a Gaussian with Iris's per-species means and standard deviations of its 4
   measurements), so it needs no data file.  The learning rate: genann's 0.01 steps along the gradient of
   half the summed squared error; bp_mse_* is the mean over the 3 outputs, whose gradient is 2/3 of that,
   so the same steps take 0.01 * 3/2.  The explicit layer calls this replaces are the lesson: README.md,
   "A training step"; `make bench` times the two against each other. */

#include <stdio.h>
#include <time.h>
#define BACKPROP_IMPLEMENTATION
#include "../backprop.h"

#define FLOWERS 150
#define LOOPS 5000

/* sepal length, sepal width, petal length, petal width (cm) of setosa, versicolor, virginica */
static const double mean[3][4] = {{5.01, 3.43, 1.46, 0.25}, {5.94, 2.77, 4.26, 1.33}, {6.59, 2.97, 5.55, 2.03}};
static const double sd[3][4] = {{0.35, 0.38, 0.17, 0.11}, {0.52, 0.31, 0.47, 0.20}, {0.64, 0.32, 0.55, 0.27}};

int main(int argc, char **argv)
{
    static bp_real input[FLOWERS][4], target[FLOWERS][3];
    int widths[] = {4, 4, 3}, acts[] = {BP_ACT_SIGMOID, BP_ACT_SIGMOID}, species[FLOWERS], i, j, loop, correct = 0;
    char path[512];
    bp_mlp_config cfg = bp_mlp_default_config();
    bp_mlp *net;
    bp_rng rng;
    clock_t start;
    double seconds;

    bp_rng_seed(&rng, 1);
    for (i = 0; i < FLOWERS; i++) { /* 50 of each species */
        species[i] = i % 3;
        for (j = 0; j < 4; j++) input[i][j] = (bp_real)(mean[species[i]][j] + sd[species[i]][j] * bp_rng_normal(&rng));
        target[i][species[i]] = 1;
    }

    cfg.max_batch = 1;          /* one flower per step, as genann_train */
    cfg.lr = (bp_real)0.015;    /* genann's 0.01, for the mean over 3 outputs (see the top) */
    net = bp_mlp_new(2, widths, acts, &cfg); /* 4 -> 4 sigmoid -> 3 sigmoid, SGD, squared error */
    printf("Training for %d loops over %d flowers.\n", LOOPS, FLOWERS);
    start = clock();
    for (loop = 0; loop < LOOPS; loop++)
        for (i = 0; i < FLOWERS; i++) {
            bp_tensor x = {1, 4, input[i]}, y = {1, 3, target[i]};
            bp_mlp_train_step(net, &x, &y, NULL);
        }
    seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    printf("%.2f s: %.2f us per step\n", seconds, seconds * 1e6 / ((double)LOOPS * FLOWERS));

    for (i = 0; i < FLOWERS; i++) {
        bp_tensor x = {1, 4, input[i]}, guess = bp_mlp_predict(net, &x);
        int best = guess.data[1] > guess.data[0] ? 1 : 0;
        correct += (guess.data[2] > guess.data[best] ? 2 : best) == species[i];
    }
    printf("%d/%d correct (%.1f%%).\n", correct, FLOWERS, 100.0 * correct / FLOWERS);

    snprintf(path, sizeof path, "%s/iris_mlp.npz", argc > 1 ? argv[1] : "build");
    if (bp_mlp_save(net, path) != 0) printf("%s\n", bp_failure_reason()); /* PyTorch's state_dict layout */
    bp_mlp_free(net);
    return correct >= 135 ? 0 : 1; /* at least 90% */
}
