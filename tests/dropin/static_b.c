#define BACKPROP_STATIC
#define BACKPROP_IMPLEMENTATION
#include "../../backprop.h"

int static_b_mse(void)
{
    bp_real a_data[2] = {1, 2}, b_data[2] = {1, 4};
    bp_tensor a = {1, 2, a_data}, b = {1, 2, b_data};
    return bp_mse_forward(&a, &b) == 2 ? 0 : 1; /* (0 + 4) / 2 */
}
