/* With no handler installed, a bad call prints its one-line message to stderr and aborts. */
#define BACKPROP_IMPLEMENTATION
#include "../../backprop.h"

int main(void)
{
    bp_tensor x = bp_tensor_new(8, 4), W = bp_tensor_new(3, 2), z = bp_tensor_new(8, 2);
    bp_linear_forward(&x, &W, 0, &z);
    return 0; /* not reached */
}
