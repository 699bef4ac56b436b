/* Including the header again and again, before and after the implementation, is harmless. */
#include "../../backprop.h"
#define BACKPROP_IMPLEMENTATION
#include "../../backprop.h"
#include "../../backprop.h"

int main(void)
{
    bp_tensor t = bp_tensor_new(2, 2);
    int ok = t.data && t.data[3] == 0;
    bp_tensor_free(&t);
    return ok ? 0 : 1;
}
