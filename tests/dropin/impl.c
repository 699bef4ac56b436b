/* The drop-in test, part 1: the one file of a project that compiles the implementation. */
#define BACKPROP_IMPLEMENTATION
#include "../../backprop.h"
