/* The drop-in test, part 2: another file of the same project, which only includes the header (it is also
   compiled as C++ against an implementation compiled as C, which is what extern "C" is for).  Returns 0
   if a tiny forward/backward gives the hand-computed answer. */
#include "../../backprop.h"
#include "../../backprop.h" /* twice is harmless */

int main(void)
{
    bp_real x_data[2] = {1, 2}, w_data[2] = {3, 4}, z_data[1];
    bp_tensor x = {1, 2, x_data}, w = {2, 1, w_data}, z = {1, 1, z_data};
    bp_tensor dW = bp_tensor_new(2, 1);
    int ok;
    bp_linear_forward(&x, &w, 0, &z);             /* 1*3 + 2*4 = 11 */
    bp_linear_backward(&x, &w, &z, 0, &dW, 0);    /* dW = x^T z = [11; 22] */
    ok = z_data[0] == 11 && dW.data[0] == 11 && dW.data[1] == 22;
    bp_tensor_free(&dW);
    return ok ? 0 : 1;
}
