/* train_xor.c - a two-layer network learns XOR with plain gradient descent.

       x (4x2) -> Linear(2->8) -> ReLU -> Linear(8->1) -> yhat (4x1),   loss = MSE(yhat, y)

   XOR is the classic problem one linear layer cannot solve: no straight line separates {01, 10} from
   {00, 11}.  A hidden ReLU layer bends the space so the second layer can.  Every step is the loop every
   network trains with:
       forward  (cache what backward needs: x, z1, a1)
       loss
       backward (the chain rule, from the loss back to every weight)
       update   (w -= lr * dw)

   Build and run:  make && ./build/train_xor [LEARNING_RATE]   (default 0.1; exits non-zero if it failed
   to learn XOR).  Try ./build/train_xor 50: each step overshoots further, the loss grows to
   infinity, and the program stops at that step and says so instead of printing garbage. */

#define BACKPROP_IMPLEMENTATION
#include "../backprop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define HIDDEN 8

int main(int argc, char **argv)
{
    /* the four XOR cases, one per row */
    bp_real x_data[4 * 2] = {0, 0, 0, 1, 1, 0, 1, 1};
    bp_real y_data[4 * 1] = {0, 1, 1, 0};
    bp_tensor x = {4, 2, x_data}, y = {4, 1, y_data}; /* our own buffers: never bp_tensor_free these */

    /* parameters and their gradients */
    bp_tensor W1 = bp_tensor_new(2, HIDDEN), b1 = bp_tensor_new(1, HIDDEN);
    bp_tensor W2 = bp_tensor_new(HIDDEN, 1), b2 = bp_tensor_new(1, 1);
    bp_tensor dW1 = bp_tensor_new(2, HIDDEN), db1 = bp_tensor_new(1, HIDDEN);
    bp_tensor dW2 = bp_tensor_new(HIDDEN, 1), db2 = bp_tensor_new(1, 1);
    /* activations (the forward's cache) and the gradients flowing back through them */
    bp_tensor z1 = bp_tensor_new(4, HIDDEN), a1 = bp_tensor_new(4, HIDDEN), yhat = bp_tensor_new(4, 1);
    bp_tensor dyhat = bp_tensor_new(4, 1), da1 = bp_tensor_new(4, HIDDEN);

    const bp_real lr = argc > 1 ? (bp_real)atof(argv[1]) : 0.1f;
    const int steps = 300;
    bp_rng rng;
    bp_real loss = 0;
    int step, i, correct = 0;

    if (!(lr > 0)) {
        fprintf(stderr, "usage: %s [LEARNING_RATE > 0]\n", argv[0]);
        return 2;
    }

    /* He initialisation for ReLU layers: std = sqrt(2 / fan_in) keeps the activations' scale steady */
    bp_rng_seed(&rng, 1);
    bp_tensor_randn(&W1, &rng, (bp_real)sqrt(2.0 / 2));
    bp_tensor_randn(&W2, &rng, (bp_real)sqrt(2.0 / HIDDEN));
    for (i = 0; i < HIDDEN; i++) b1.data[i] = 0.1f; /* a small positive bias: no unit starts dead */

    for (step = 0; step <= steps; step++) {
        /* forward */
        bp_linear_forward(&x, &W1, &b1, &z1);  /* z1 = x W1 + b1       (4x8) */
        bp_relu_forward(&z1, &a1);             /* a1 = max(0, z1)      (4x8) */
        bp_linear_forward(&a1, &W2, &b2, &yhat); /* yhat = a1 W2 + b2  (4x1) */
        loss = bp_mse_forward(&yhat, &y);

        /* A NaN or infinity spreads to every weight within a step or two, and from then on the numbers
           mean nothing: stop, and say where and the likely cause. */
        if (!isfinite(loss) || !bp_tensor_all_finite(&W1) || !bp_tensor_all_finite(&W2)) {
            fprintf(stderr, "train_xor: %s at step %d: learning rate %g too high?\n",
                    isnan(loss) ? "loss became NaN" : isinf(loss) ? "loss became infinite" : "a weight became NaN or infinite",
                    step, (double)lr);
            break;
        }

        /* backward: each call turns dL/d(its output) into dL/d(its inputs) */
        bp_mse_backward(&yhat, &y, &dyhat);                  /* dL/dyhat = 2/N (yhat - y)          */
        bp_linear_backward(&a1, &W2, &dyhat, &da1, &dW2, &db2); /* dW2 = a1^T dyhat, da1 = dyhat W2^T */
        bp_relu_backward(&z1, &da1, &da1);                   /* dz1 = da1 * 1[z1 > 0], in place    */
        bp_linear_backward(&x, &W1, &da1, NULL, &dW1, &db1); /* dW1 = x^T dz1 (dx: not needed)     */

        /* update */
        bp_sgd_step(&W1, &dW1, lr);
        bp_sgd_step(&b1, &db1, lr);
        bp_sgd_step(&W2, &dW2, lr);
        bp_sgd_step(&b2, &db2, lr);

        if (step < 3 || (step <= 100 && step % 10 == 0) || step % 50 == 0)
            printf("step %3d  loss %.3e\n", step, (double)loss); /* the loss before this step's update */
    }

    if (step <= steps) goto done; /* stopped early */
    printf("\n x1 x2 | target | prediction\n");
    for (i = 0; i < 4; i++) {
        int predicted = yhat.data[i] > 0.5f;
        correct += predicted == (int)y.data[i];
        printf("  %d  %d |   %d    | %.4f -> %d\n", (int)x.data[2 * i], (int)x.data[2 * i + 1], (int)y.data[i],
               (double)yhat.data[i], predicted);
    }
    printf("%d of 4 correct, final loss %.3e\n", correct, (double)loss);

done:
    bp_tensor_free(&W1);
    bp_tensor_free(&b1);
    bp_tensor_free(&W2);
    bp_tensor_free(&b2);
    bp_tensor_free(&dW1);
    bp_tensor_free(&db1);
    bp_tensor_free(&dW2);
    bp_tensor_free(&db2);
    bp_tensor_free(&z1);
    bp_tensor_free(&a1);
    bp_tensor_free(&yhat);
    bp_tensor_free(&dyhat);
    bp_tensor_free(&da1);
    return correct == 4 && loss < 0.001 ? 0 : 1;
}
