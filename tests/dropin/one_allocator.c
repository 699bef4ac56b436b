/* Defining BP_MALLOC without BP_FREE must not compile: the allocator pair is all or none. */
#include <stdlib.h>
#define BP_MALLOC(n) malloc(n)
#define BACKPROP_IMPLEMENTATION
#include "../../backprop.h"
int main(void) { return 0; }
