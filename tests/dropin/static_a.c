/* BACKPROP_STATIC: each file gets a private copy; two such files link together, nothing is exported,
   and the functions a file does not call raise no warnings. */
#define BACKPROP_STATIC
#define BACKPROP_IMPLEMENTATION
#include "../../backprop.h"

int static_b_mse(void);

int main(void)
{
    bp_tensor t = bp_tensor_new(1, 3);
    int ok = t.data != 0;
    bp_tensor_free(&t);
    return ok && static_b_mse() == 0 ? 0 : 1;
}
