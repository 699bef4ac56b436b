/* backprop.h - v0.3.0 - backpropagation by hand, in one C header.  Public domain (see end of file).

   A dense tensor, a matrix multiply (the textbook loops, and a cache-blocked kernel as fast as OpenBLAS),
   hand-written forward and backward passes for a Linear layer, ReLU, sigmoid and tanh, layer norm, batch
   norm and dropout, 2-D convolution (im2col + matmul) and max-pooling, the mean squared error and a
   fused softmax + cross-entropy; SGD, momentum, RMSprop and Adam, gradient clipping; He and Xavier
   initialisation; a finite-difference gradient checker; .npy and .npz (numpy's files) save/load and an
   IDX (MNIST) reader; a network in one object.
   No dependencies beyond libc and libm.

   HOW TO READ IT.  Top to bottom, as the lesson goes: tensors, matrix multiply (the reference loops first,
   then the fast kernel), layers (each forward directly above its backward), losses, optimizers, starting
   weights, the gradient check; then the guards (argument checks and error reporting), the file formats
   and, last, the layers put together: a network in one object (bp_mlp_*), the short road for programs
   that just want a small network.  Every layer, loss and optimizer comes in two parts, on purpose:
       bp__NAME   the math: the derivation in a comment, then plain loops over bp_tensor fields (and
                  bp__matmul for products).  No checks, no macros.  This is the block to read and to copy.
       bp_NAME    the public function: a short guard that checks the arguments, then a call to bp__NAME.
   README.md, "Copying into coursework", says which lines to copy; `make coursework` copies them out of
   this file, compiles them alone and compares them with the library.

   DO THIS in exactly one C or C++ file, before the #include:

       #define BACKPROP_IMPLEMENTATION
       #include "backprop.h"

   Every other file includes "backprop.h" without the define.  Link with -lm.
   Never put BACKPROP_IMPLEMENTATION in a header or on a command line.

   Build with optimisation: the matmul kernel is written so the compiler can vectorise it, and only does
   at -O2/-O3.  Fastest: -O3 -march=native -ffp-contract=fast (the last lets the compiler fuse a*b+c into
   one instruction, which -std=c99 otherwise forbids in gcc; -std=gnu99 allows it too).  See README.md.

   CONFIGURATION (define before every #include of this file, the same in every file):
       BACKPROP_DOUBLE     bp_real is double instead of float.
       BACKPROP_STATIC     every function is static: a private copy per file, no exported symbols.
       BACKPROP_NO_STDIO   no files, for programs without a file system (embedded, WebAssembly): the
                           .npy, .npz and IDX functions and bp_failure_reason are left out, and <stdio.h> is
                           never included.  The default error handler then cannot print: it only calls
                           abort(), so install your own (bp_set_error_handler) to see the message.
   and before the #include that has BACKPROP_IMPLEMENTATION:
       BP_MALLOC(size), BP_FREE(ptr)   your allocator (define both or neither; default malloc/free).
       BP_ASSERT(cond)                 checks of internal invariants (default assert()).
       BP_MATMUL_KC, BP_MATMUL_NC, BP_MATMUL_MC
                                       matmul block sizes (default 256, 256 (128 for double), 64).
                                       bp_matmul's packing buffers take (KC*NC + MC*KC) * sizeof(bp_real)
                                       bytes of stack (NC and MC rounded up to whole register tiles): 320 KB
                                       for float, 384 KB for double by default, plus MC*KC per extra OpenMP
                                       thread on that thread's stack.  Threads with small stacks want
                                       smaller values: for macOS's 512 KB secondary threads e.g.
                                       -DBP_MATMUL_KC=128 -DBP_MATMUL_NC=128 -DBP_MATMUL_MC=32 (100 KB, ~9%
                                       slower); for musl's (Alpine's) 128 KB default, KC=64 NC=128 MC=32
                                       (40 KB, ~15% slower).

   OPENMP: compile with -fopenmp (and link with it) and bp_matmul shares large products among threads
   (OMP_NUM_THREADS).  The results are bit-identical for any number of threads.  Without -fopenmp there
   is no dependency and no threading at all.  On a machine busy with other work, OMP_WAIT_POLICY=passive
   stops idle threads from spinning (see tests/README.md: Performance).

   PLATFORMS (tested: make test, make cross-test): x86-64 Linux with gcc, clang, tcc and g++; aarch64
   (the NEON tile), 32-bit x86, big-endian s390x, and Windows x64 (mingw-w64, under wine).  MSVC is
   untested; the code avoids what it rejects (VLAs, unguarded __attribute__), but define
   _CRT_SECURE_NO_WARNINGS before any #include or /W3 /WX refuses fopen and strerror.

   EXAMPLE: one training step of Linear -> ReLU -> MSE on a batch of 8 (error checks left out)

       bp_rng rng;  bp_rng_seed(&rng, 42);
       bp_tensor x = bp_tensor_new(8, 4),  y  = bp_tensor_new(8, 2);    // fill x and y with data
       bp_tensor W = bp_tensor_new(4, 2),  b  = bp_tensor_new(1, 2);
       bp_tensor z = bp_tensor_new(8, 2),  a  = bp_tensor_new(8, 2);
       bp_tensor dW = bp_tensor_new(4, 2), db = bp_tensor_new(1, 2), d = bp_tensor_new(8, 2);
       bp_tensor_randn(&W, &rng, 0.5f);
       bp_linear_forward(&x, &W, &b, &z);            // z = xW + b
       bp_relu_forward(&z, &a);                      // a = max(0, z)
       bp_real loss = bp_mse_forward(&a, &y);        // mean (a - y)^2
       bp_mse_backward(&a, &y, &d);                  // d = dL/da
       bp_relu_backward(&z, &d, &d);                 // d = dL/dz, in place
       bp_linear_backward(&x, &W, &d, NULL, &dW, &db);  // dL/dW, dL/db (dL/dx not needed here)
       bp_sgd_step(&W, &dW, 0.1f);  bp_sgd_step(&b, &db, 0.1f);
       bp_tensor_free(&x);  ...                      // every tensor you made

   RULES THE WHOLE LIBRARY KEEPS
     - Tensors are row-major and contiguous: element (r,c) of t is t.data[r*t.cols + c].  A tensor is a
       plain struct; you may point one at your own buffer (bp_tensor t = {rows, cols, buf}), but then
       never pass it to bp_tensor_free.  Tensors with 0 rows or 0 columns are allowed everywhere (their
       data may be NULL) and the functions do the mathematically consistent thing with them.
     - The caller owns every buffer.  Only bp_tensor_new, bp_mlp_new and the file functions allocate; no
       forward, backward, loss, optimizer or matmul function touches the heap (nor bp_mlp_predict and
       bp_mlp_train_step).
     - Gradients OVERWRITE their outputs; they never accumulate.  To accumulate (e.g. over micro-batches),
       compute into a scratch tensor and add, or use bp_matmul with BP_ACCUMULATE.
     - Outputs must not share memory with inputs, except where a function says "may be" (in-place).
     - Every function checks its arguments.  On a bad call (NULL tensor, shapes that do not fit, overlap,
       negative or overflowing sizes, unknown flags) it calls the error handler ONCE with one line naming
       the function and the shapes, e.g.
           bp_linear_forward: x is 8x4 but W is 3x2 (x.cols must equal W.rows)
       The default handler prints that line to stderr and calls abort().  If you install a handler that
       returns, the function returns at once WITHOUT writing any output; functions that return a number
       then return NaN (losses, bp_tensor_norm, bp_clip_grad_norm), 0 (bp_tensor_all_finite), -1 (the
       file functions) or +infinity (bp_gradcheck).  (The bp__NAME math functions check nothing: they
       are the lesson, and the public bp_NAME calls them only after its checks have passed.)
     - A bad FILE is not a programming error: the file functions (.npy, .npz, IDX) return -1 and
       bp_failure_reason() says why; they never call the error handler for a file's contents, and no
       file, however made, can make them crash, leak, or allocate room for more values than it holds
       (fuzzed: tests/fuzz/).  An allocation that fails is reported the same way (bp_tensor_new: through
       the handler; the file functions: -1), with nothing leaked and the caller's tensors left valid.
     - The error handler is the only global state.  Set it once at start-up, before starting threads.
       Everything else is reentrant: the random generator is a struct the caller owns, and
       bp_failure_reason's text is per thread (thread-local; one shared buffer only with tcc, which has no
       thread-local storage).  Threads may call any function at once on their own tensors.
*/

#ifndef BACKPROP_H
#define BACKPROP_H

#include <stdint.h> /* uint64_t */

#define BACKPROP_VERSION_MAJOR 0
#define BACKPROP_VERSION_MINOR 3
#define BACKPROP_VERSION_PATCH 0

#if defined(__GNUC__) || defined(__clang__) || defined(__TINYC__)
#define BP__UNUSED __attribute__((unused)) /* static mode: no warning for functions a file does not call */
#else
#define BP__UNUSED
#endif

#ifndef BPDEF
#ifdef BACKPROP_STATIC
#define BPDEF static BP__UNUSED
#else
#define BPDEF extern
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------------
   1. Tensors
   --------------------------------------------------------------------------------------------------- */

#ifdef BACKPROP_DOUBLE
typedef double bp_real;
#else
typedef float bp_real;
#endif

/* A rows x cols matrix, row-major and contiguous: element (r,c) is data[r*cols + c]. */
typedef struct bp_tensor {
    int rows, cols;
    bp_real *data;
} bp_tensor;

/* Zero-filled, allocated with BP_MALLOC.  A size of 0 allocates nothing (data == NULL).  Negative sizes,
   more than INT_MAX elements, or a failed allocation go to the error handler and return {0, 0, NULL}. */
BPDEF bp_tensor bp_tensor_new(int rows, int cols);

/* Frees t->data (BP_FREE) and sets it to NULL; rows and cols are kept.  Safe to call twice; t may be NULL. */
BPDEF void bp_tensor_free(bp_tensor *t);

/* sqrt(sum of squares) of all elements, summed in double.  0 for an empty tensor. */
BPDEF bp_real bp_tensor_norm(const bp_tensor *t);

/* 1 if every element of t is finite, 0 if any is NaN or +-infinity (1 for an empty tensor).  A training
   loop checks its loss or gradients with it and stops with a message, instead of training on garbage. */
BPDEF int bp_tensor_all_finite(const bp_tensor *t);

/* Rows [start, start + n) of t, as a tensor that shares t's memory: no copy, no allocation.  Never
   bp_tensor_free it; it is valid as long as t's data is.  A training loop runs its last, smaller batch
   through the first n rows of tensors made for a full batch.  A bad t, or a range outside t (start < 0,
   n < 0, start + n > t->rows), goes to the error handler and returns {0, 0, NULL}. */
BPDEF bp_tensor bp_tensor_rows(const bp_tensor *t, int start, int n);

/* ---------------------------------------------------------------------------------------------------
   2. Matrix multiply:  C = op(A) . op(B)   or, with BP_ACCUMULATE,  C += op(A) . op(B)
   op(X) is X, or X transposed when its flag is set.  op(A) is M x K, op(B) is K x N, C is M x N.
   C must not share memory with A or B.
   --------------------------------------------------------------------------------------------------- */

#define BP_TRANS_A 1
#define BP_TRANS_B 2
#define BP_ACCUMULATE 4

/* The definition, as plain loops: C[i][j] = sum over k of op(A)[i][k] op(B)[k][j].  What bp_matmul
   computes (to rounding: the two may group the additions differently); copy this one.  The tests compare
   bp_matmul with it.  On large products it is about 100 times slower (make bench: the i-j-k loop). */
BPDEF void bp_matmul_reference(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags);

/* The same product, cache-blocked and vectorised: no transpose is ever materialised, and all four forms
   run through one kernel at the same speed. */
BPDEF void bp_matmul(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags);

/* ---------------------------------------------------------------------------------------------------
   3. Layers.  x is batch x in, W is in x out, b is 1 x out, z is batch x out: one example per row,
   as in the textbook code.  Each forward sits above its backward, which says what the forward cached.
   --------------------------------------------------------------------------------------------------- */

/* z = x.W + b  (b added to every row; b may be NULL for no bias) */
BPDEF void bp_linear_forward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *b, bp_tensor *z);

/* Given dz = dL/dz:  dW = x^T.dz,  db = column sums of dz,  dx = dz.W^T.
   Results OVERWRITE dW, db, dx.  dx and db may be NULL (not computed). */
BPDEF void bp_linear_backward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *dz,
                              bp_tensor *dx, bp_tensor *dW, bp_tensor *db);

/* a = max(0, z) elementwise; a may be z (in place). */
BPDEF void bp_relu_forward(const bp_tensor *z, bp_tensor *a);

/* dz = da * 1[z > 0] (the derivative at exactly 0 is taken as 0); dz may be da or z (in place). */
BPDEF void bp_relu_backward(const bp_tensor *z, const bp_tensor *da, bp_tensor *dz);

/* a = 1 / (1 + e^-z) elementwise (computed without overflow for any z); a may be z (in place). */
BPDEF void bp_sigmoid_forward(const bp_tensor *z, bp_tensor *a);

/* Takes the forward's OUTPUT a:  dz = da * a(1 - a).  dz may be da or a (in place). */
BPDEF void bp_sigmoid_backward(const bp_tensor *a, const bp_tensor *da, bp_tensor *dz);

/* a = tanh(z) elementwise; a may be z (in place). */
BPDEF void bp_tanh_forward(const bp_tensor *z, bp_tensor *a);

/* Takes the forward's OUTPUT a:  dz = da * (1 - a^2).  dz may be da or a (in place). */
BPDEF void bp_tanh_backward(const bp_tensor *a, const bp_tensor *da, bp_tensor *dz);

/* ---- images: convolution and max-pooling ---------------------------------------------------------
   A sliding window over images.  Each ROW of an image tensor is one image, channels x height x width,
   flattened in PyTorch's (C, H, W) order (an NCHW tensor reshaped to (N, -1)).  Square window; the same
   stride and zero padding on both axes.  The output is OH x OW per channel (the two functions below). */
typedef struct bp_window { int channels, height, width; int kernel, stride, pad; } bp_window;

/* (height + 2 pad - kernel) / stride + 1, and the same for the width.  A window no function accepts (NULL,
   a size, kernel or stride < 1, pad < 0, a kernel larger than the padded image) goes to the error handler
   and returns -1. */
BPDEF int bp_window_out_height(const bp_window *g);
BPDEF int bp_window_out_width(const bp_window *g);

/* torch.nn.functional.conv2d(x, W, b, stride, padding).  x: B x (C*H*W); W: F x (C*K*K), torch's
   weight (F, C, K, K) reshaped to (F, -1), so a saved PyTorch weight loads as is; b: 1 x F (may be NULL);
   y: B x (F*OH*OW) in (F, OH, OW) order.  col: the caller's workspace for one image, (C*K*K) x (OH*OW)
   (im2col); nothing is allocated.  The products go through bp_matmul's kernel. */
BPDEF void bp_conv2d_forward(const bp_window *g, const bp_tensor *x, const bp_tensor *W, const bp_tensor *b,
                             bp_tensor *y, bp_tensor *col);

/* Given dy = dL/dy (B x (F*OH*OW)):  dW = sum over images of dy_n . col_n^T,  db = sums of dy per filter,
   dx = col2im(W^T . dy_n) per image.  dW: F x (C*K*K); db: 1 x F (may be NULL); dx: B x (C*H*W) (may be
   NULL).  The forward's cache is x itself: col is rebuilt from it here, one image at a time, in the same
   workspace.  Results OVERWRITE dx, dW, db. */
BPDEF void bp_conv2d_backward(const bp_window *g, const bp_tensor *x, const bp_tensor *W, const bp_tensor *dy,
                              bp_tensor *dx, bp_tensor *dW, bp_tensor *db, bp_tensor *col);

/* torch.nn.functional.max_pool2d(x, kernel, stride, padding), per channel; padding counts as -infinity
   (pad <= kernel/2, as torch requires).  y: B x (C*OH*OW); argmax: B*C*OH*OW ints, each the index
   h*W + w within its channel's H x W plane of the element chosen: the first in row-major scan order on
   ties, and a NaN is chosen over any number (of several NaNs, the last), as torch does.  argmax is the
   forward's cache: the backward needs nothing else.  argmax may be NULL only if y is empty. */
BPDEF void bp_maxpool2d_forward(const bp_window *g, const bp_tensor *x, bp_tensor *y, int *argmax);

/* dx = 0, then dx[argmax] += dy (overlapping windows add up).  dx: B x (C*H*W); dy: B x (C*OH*OW).
   Every argmax[i] must be in 0 .. H*W-1 (checked). */
BPDEF void bp_maxpool2d_backward(const bp_window *g, const int *argmax, const bp_tensor *dy, bp_tensor *dx);

/* Layer normalisation: each ROW r of x (one example, C features) normalised over its columns,
       mean[r] = (1/C) sum_j x[r][j];   var[r] = (1/C) sum_j (x[r][j] - mean[r])^2  (biased);
       rstd[r] = 1/sqrt(var[r] + eps);   y[r][j] = gamma[j] (x[r][j] - mean[r]) rstd[r] + beta[j]
   as torch.nn.LayerNorm(C, eps).  x, y: B x C; gamma, beta: 1 x C; mean, rstd: B x 1, written for the
   backward (the forward's cache).  y may be x.  eps > 0 (usual: 1e-5). */
BPDEF void bp_layernorm_forward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *beta, bp_real eps,
                                bp_tensor *y, bp_tensor *mean, bp_tensor *rstd);

/* Given dy = dL/dy and the forward's x, mean and rstd:  dx (B x C; may be dy), dgamma = sum over rows of
   dy * xhat, dbeta = sum over rows of dy (1 x C each; either may be NULL), xhat = (x - mean) rstd. */
BPDEF void bp_layernorm_backward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *mean,
                                 const bp_tensor *rstd, const bp_tensor *dy, bp_tensor *dx, bp_tensor *dgamma,
                                 bp_tensor *dbeta);

/* Batch normalisation, training mode (torch.nn.BatchNorm1d(C, eps) in train()): each COLUMN j (one
   feature) normalised over the B rows of the batch, by the same formulas with mean, rstd: 1 x C (the
   biased batch variance).  y may be x.  eps > 0.  B = 1 is allowed (y = beta; torch refuses it). */
BPDEF void bp_batchnorm_forward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *beta, bp_real eps,
                                bp_tensor *y, bp_tensor *mean, bp_tensor *rstd);

/* The backward of bp_batchnorm_forward: dx (B x C; may be dy); dgamma, dbeta (1 x C; either may be NULL). */
BPDEF void bp_batchnorm_backward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *mean,
                                 const bp_tensor *rstd, const bp_tensor *dy, bp_tensor *dx, bp_tensor *dgamma,
                                 bp_tensor *dbeta);

/* BatchNorm1d's running statistics, updated from the same batch x (B x C, B >= 2):
       running_mean = (1 - momentum) running_mean + momentum mean_j
       running_var  = (1 - momentum) running_var  + momentum var_j B/(B-1)     (the unbiased variance)
   running_mean, running_var: 1 x C, the caller's state; torch starts them at 0 and 1.  momentum in [0, 1]
   (torch's default 0.1). */
BPDEF void bp_batchnorm_update_running(bp_tensor *running_mean, bp_tensor *running_var, const bp_tensor *x,
                                       bp_real momentum);

/* Evaluation mode:  y = gamma (x - running_mean) / sqrt(running_var + eps) + beta, column by column.
   x, y: B x C; gamma, beta, running_mean, running_var: 1 x C.  y may be x.  eps > 0. */
BPDEF void bp_batchnorm_inference(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *beta,
                                  const bp_tensor *running_mean, const bp_tensor *running_var, bp_real eps,
                                  bp_tensor *y);

/* The random generator (its functions: section 6): splitmix64 on a 64-bit state.  The caller owns it (no
   global state), and a seed gives the same numbers on every platform. */
typedef struct bp_rng {
    uint64_t state;
} bp_rng;

/* Inverted dropout (torch.nn.Dropout(p) in train()): each element kept with probability 1 - p, drawn from
   rng (one bp_rng_uniform per element, in order: the same seed gives the same mask);
   mask = 1/(1-p) where kept, 0 where dropped;  y = x * mask.  x, mask, y: the same shape; y may be x.
   0 <= p < 1 (p = 0: mask all 1, y = x).  At evaluation time skip the layer: y = x (no rescaling). */
BPDEF void bp_dropout_forward(const bp_tensor *x, bp_real p, bp_rng *rng, bp_tensor *mask, bp_tensor *y);

/* dx = dy * mask (the forward's mask).  dx may be dy. */
BPDEF void bp_dropout_backward(const bp_tensor *mask, const bp_tensor *dy, bp_tensor *dx);

/* ---------------------------------------------------------------------------------------------------
   4. Losses
   --------------------------------------------------------------------------------------------------- */

/* Mean of (yhat - y)^2 over ALL rows*cols elements (summed in double). */
BPDEF bp_real bp_mse_forward(const bp_tensor *yhat, const bp_tensor *y);

/* dyhat = 2/N (yhat - y), N = rows*cols.  dyhat may be yhat or y (in place). */
BPDEF void bp_mse_backward(const bp_tensor *yhat, const bp_tensor *y, bp_tensor *dyhat);

/* Softmax followed by cross-entropy, fused, for classification.  logits is batch x classes, labels[r] is
   the class (0 .. classes-1) of row r.  Writes probs = softmax of each row and returns the mean over the
   batch of -log probs[r][labels[r]].  Stable for any finite logits (the row maximum is subtracted first,
   and the loss is taken as log-sum-exp minus the label's logit, never as log of a rounded probability).
   probs may be logits (in place).  A label out of range, or labels NULL, goes to the error handler. */
BPDEF bp_real bp_softmax_xent_forward(const bp_tensor *logits, const int *labels, bp_tensor *probs);

/* dlogits = (probs - onehot(labels)) / batch.  dlogits may be probs (in place). */
BPDEF void bp_softmax_xent_backward(const bp_tensor *probs, const int *labels, bp_tensor *dlogits);

/* ---------------------------------------------------------------------------------------------------
   5. Optimizers
   --------------------------------------------------------------------------------------------------- */

/* Plain stochastic gradient descent: w -= lr * dw. */
BPDEF void bp_sgd_step(bp_tensor *w, const bp_tensor *dw, bp_real lr);

/* SGD with momentum, as PyTorch's SGD(momentum=mu):  vel = mu*vel + dw;  w -= lr*vel.
   vel is the caller's state, one per parameter, zero at the start (bp_tensor_new zero-fills). */
BPDEF void bp_momentum_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *vel, bp_real lr, bp_real mu);

/* Adam, as PyTorch's Adam.  t is the step number, counting from 1; m and v are the caller's state, one
   each per parameter, zero at the start:
       m = b1*m + (1-b1)*dw;   v = b2*v + (1-b2)*dw^2;   w -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)
   Usual values: lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-8.  t < 1, or a beta outside [0, 1), goes to the
   error handler.  Computed in bp_real, as PyTorch computes a float32 model.  m and v that decay below 1e-36
   (1e-300 with BACKPROP_DOUBLE) are set to 0 rather than become subnormal, which is slow on x86 whatever
   the caller's settings; for eps > 0 that changes no weight beyond rounding (the implementation says why). */
BPDEF void bp_adam_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *m, bp_tensor *v, int t, bp_real lr,
                        bp_real beta1, bp_real beta2, bp_real eps);

/* RMSprop, as PyTorch's RMSprop (no momentum, not centered):
       v = alpha*v + (1-alpha)*dw^2;   w -= lr * dw / (sqrt(v) + eps)
   v is the caller's state, one per parameter, zero at the start.  Usual values: lr 1e-2, alpha 0.99,
   eps 1e-8.  alpha outside [0, 1), or eps <= 0, goes to the error handler. */
BPDEF void bp_rmsprop_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *v, bp_real lr, bp_real alpha, bp_real eps);

/* Gradient clipping for exploding gradients, as PyTorch's clip_grad_norm_: if the norm of all count
   gradients taken together, sqrt(sum of every element squared), exceeds max_norm, scales them all by
   max_norm / (norm + 1e-6).  Returns the norm before clipping.  The gradients must not share memory. */
BPDEF bp_real bp_clip_grad_norm(bp_tensor *const *grads, int count, bp_real max_norm);

/* ---------------------------------------------------------------------------------------------------
   6. Starting weights: random numbers and initialisation
   --------------------------------------------------------------------------------------------------- */

/* bp_rng, the random generator's state, is declared in section 3, with its first user (dropout). */
BPDEF void bp_rng_seed(bp_rng *rng, uint64_t seed);
BPDEF uint64_t bp_rng_next_u64(bp_rng *rng); /* 64 uniformly random bits */
BPDEF double bp_rng_uniform(bp_rng *rng);    /* uniform in [0, 1), 53 random bits */
BPDEF double bp_rng_normal(bp_rng *rng);     /* standard normal N(0, 1) */

/* Fills t with independent N(0, std^2) samples (std >= 0).  Uses only +, -, *, / and sqrt, never
   libm's log/sin/cos, so the numbers are the same on every IEEE-754 machine and compiler -- up to the last
   bit where the compiler fuses multiply-adds (-ffp-contract=fast) or keeps x87 excess precision. */
BPDEF void bp_tensor_randn(bp_tensor *t, bp_rng *rng, bp_real std);

/* Starting weights for a layer W (fan_in x fan_out = W.rows x W.cols), drawn with bp_tensor_randn so the
   signal keeps its size from layer to layer:
     He       N(0, 2/fan_in)            for ReLU layers (ReLU zeroes half the signal, the 2 puts it back)
     Xavier   N(0, 2/(fan_in+fan_out))  (Glorot normal) for tanh and sigmoid layers  */
BPDEF void bp_init_he(bp_tensor *W, bp_rng *rng);
BPDEF void bp_init_xavier(bp_tensor *W, bp_rng *rng);

/* ---------------------------------------------------------------------------------------------------
   7. The gradient check
   --------------------------------------------------------------------------------------------------- */

/* Compares grad (your analytic gradient of loss with respect to param) against central differences
       num_i = (loss(p_i + eps) - loss(p_i - eps)) / (2 eps)
   (dividing by the step actually taken, p_i + eps and p_i - eps being rounded to bp_real)
   on EVERY element of param; each element is restored to its exact original value afterwards.  Returns
   the largest relative error  |num_i - grad_i| / max(|num_i|, |grad_i|, 1e-8)  (0 where both are 0).
   Rule of thumb: in double with eps = 1e-5 (about the cube root of machine epsilon, which balances the
   rounding error ~1e-16/eps against the truncation error ~eps^2), a correct gradient gives < 1e-7; in
   float use eps ~ 1e-2 and expect ~1e-3.  Small gradient elements show the rounding error most.  A kink
   (ReLU at 0) within eps of a parameter's value spoils that element. */
BPDEF bp_real bp_gradcheck(bp_real (*loss)(void *ctx), void *ctx, bp_tensor *param, const bp_tensor *grad,
                           bp_real eps);

/* ---------------------------------------------------------------------------------------------------
   8. Errors
   --------------------------------------------------------------------------------------------------- */

/* Receives one line such as "bp_matmul: A is 3x4 but B is 5x2 (op(A).cols must equal op(B).rows)". */
typedef void (*bp_error_fn)(const char *message);

/* Installs fn and returns the previous handler (NULL if that was the default); fn == NULL restores the
   default, which prints the message and a newline to stderr and calls abort() (with BACKPROP_NO_STDIO it
   only calls abort()). */
BPDEF bp_error_fn bp_set_error_handler(bp_error_fn fn);

/* ---------------------------------------------------------------------------------------------------
   9. Files: tensors as numpy .npy files (np.save / np.load read and write the same files), several in one
   .npz (np.savez), and data sets in the IDX format.  Left out with BACKPROP_NO_STDIO.
   A bad FILE is not a programming error: these functions never call the error handler for one.  They
   return 0 on success; on failure they return -1, leave nothing behind (no leak; t->data == NULL and
   t is 0x0 after a failed load; no partial file after a failed save, and the file that was there is
   untouched) and bp_failure_reason() says why.
   Bad ARGUMENTS (a NULL tensor or path) still go to the error handler, and return -1.
   --------------------------------------------------------------------------------------------------- */
#ifndef BACKPROP_NO_STDIO

/* Thread-local storage, for bp_failure_reason's text (see there). */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define BP__THREAD_LOCAL thread_local
#elif defined(_MSC_VER) /* (MSVC's C++ says 199711L without /Zc:__cplusplus; its C may lack _Thread_local) */
#define BP__THREAD_LOCAL __declspec(thread)
#elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__TINYC__)
#define BP__THREAD_LOCAL _Thread_local
#elif (defined(__GNUC__) || defined(__clang__)) && !defined(__TINYC__)
#define BP__THREAD_LOCAL __thread
#endif
#ifdef BP__THREAD_LOCAL
#define BP_FAILURE_REASON_PER_THREAD 1
#else
#define BP__THREAD_LOCAL /* none (tcc): one buffer shared by every thread */
#define BP_FAILURE_REASON_PER_THREAD 0
#endif

/* Writes t as a 2-D array in C order: '<f4' for float, '<f8' for double, little-endian on any machine.
   It writes path + ".part" first and renames that to path when complete (allocating the name). */
BPDEF int bp_tensor_save_npy(const bp_tensor *t, const char *path);

/* Reads a .npy file into *t, allocating t->data with BP_MALLOC (free it with bp_tensor_free); whatever
   *t held before is overwritten, not freed.  Accepts float32 or float64 in either byte order, C or
   Fortran order, 2-D (rows x cols) or 1-D (read as 1 x n), converting to bp_real.  Refuses anything
   else: other dtypes, 0-D or 3-D and higher, more than INT_MAX elements, a size that disagrees with the
   file's length.  The file must be seekable (a regular file, not a pipe): its length is checked first. */
BPDEF int bp_tensor_load_npy(bp_tensor *t, const char *path);

/* An IDX file, the format of MNIST and Fashion-MNIST: unsigned bytes in 1 to 3 dimensions, row-major.
   The images of Fashion-MNIST's training set are 60000 x 28 x 28 (ndim 3), its labels 60000 (ndim 1). */
typedef struct bp_idx {
    int ndim;            /* 1, 2 or 3 */
    int dims[3];         /* dims[0 .. ndim-1]; the rest are 1 */
    unsigned char *data; /* dims[0] * dims[1] * dims[2] bytes; NULL if that is 0 */
} bp_idx;

/* Reads the IDX file at path into *idx, allocating idx->data with BP_MALLOC (free it with bp_idx_free).
   The same rules as the .npy functions: 0 on success; on a bad file -1, *idx left {0, {0,0,0}, NULL},
   nothing leaked, and bp_failure_reason() says what was wrong.  Refused: a wrong magic number (a gzipped
   file is named as such: gunzip it first), a type other than unsigned byte (0x08), more than 3 sizes, a
   size or product of sizes above INT_MAX, a file shorter than the header says, and bytes after the data.
   The file's length is compared with the header's sizes before anything is allocated. */
BPDEF int bp_idx_load(bp_idx *idx, const char *path);

/* Frees idx->data (BP_FREE) and sets it to NULL.  Safe to call twice; idx may be NULL. */
BPDEF void bp_idx_free(bp_idx *idx);

/* Several named tensors in one numpy .npz file: what np.savez writes and np.load reads (a ZIP archive of
   .npy members, stored uncompressed).  A PyTorch state_dict goes there in one line:
       np.savez("model.npz", **{k: v.numpy() for k, v in model.state_dict().items()})

   Writes tensors[i] as member names[i] + ".npy" (a .npy exactly as bp_tensor_save_npy writes it), in the
   order given; np.load(path)[names[i]] reads it back.  0 on success; -1 and bp_failure_reason()
   otherwise.  Atomic as bp_tensor_save_npy is (path + ".part", then renamed).  The archive is a plain ZIP
   (local headers, central directory, a CRC-32 of each member), with no ZIP64 records: members and the
   whole file must stay under 4 GiB, and count at most 65534, or it refuses before writing anything.  Each
   member's time stamp is 1980-01-01 00:00, so the same tensors always give the same bytes.  A name that
   is not ASCII is written as UTF-8 and flagged so (as Python's zipfile does).  Bad arguments
   (the handler, -1): count < 0, a NULL or empty name, a name used twice, a bad tensor. */
BPDEF int bp_npz_save(const char *path, int count, const char *const *names, const bp_tensor *const *tensors);

/* Loads member `name` (without ".npy", as np.load(path)[name] names it) of the .npz at path into *t,
   allocating as bp_tensor_load_npy does, with the same rules for the member's contents (float32 or
   float64, 1-D or 2-D, ...).  Reads any archive np.savez writes (its ZIP64 extra fields included) and
   those bp_npz_save writes.  0 on success; -1 and bp_failure_reason() if there is no such member or the
   archive is bad.  Before anything is read, the whole archive's directory is checked, and a bad one is
   refused whichever member is asked for: not a ZIP file, truncated, sizes or offsets that point outside
   the file or disagree between the two copies of a member's header, a member that is not NAME.npy, a name
   used twice, ZIP64 end records (archives over 4 GiB or 65535 members), multi-part archives, encrypted
   members, data descriptors, and compressed members: np.savez_compressed's deflate is not read, use
   np.savez.  The member's CRC-32 is checked before it is decoded. */
BPDEF int bp_npz_load(bp_tensor *t, const char *path, const char *name);

/* Lists the members of the .npz at path without loading them: calls member(ctx, name, rows, cols) once
   per member, in the archive's order, with its name as bp_npz_load takes it and the shape it would load
   as (a 1-D array as 1 x n), or rows = cols = -1 for a member bp_npz_load would refuse (another dtype,
   0-D or 3-D, a bad header: load it to see why).  It reads the directory and each member's .npy header,
   not the data (so not the CRC).  Returns the number of members, or -1 and bp_failure_reason() for a bad
   archive (the same checks as bp_npz_load; member is then never called).  member may be NULL: a count. */
typedef void (*bp_npz_member_fn)(void *ctx, const char *name, int rows, int cols);
BPDEF int bp_npz_list(const char *path, bp_npz_member_fn member, void *ctx);

/* After a file function returned non-zero: one line saying what was wrong, e.g.
       bp_tensor_load_npy: w.npy: truncated: the header says 784x256 float32 (802816 bytes of data) but ...
   "" if nothing has failed.  The text is per thread (thread-local storage) where the compiler has it: C11
   _Thread_local, C++11 thread_local, gcc's and clang's __thread, MSVC's __declspec(thread); each thread
   then reads the reason of its own last file call, and the next failing call in that thread overwrites
   it.  BP_FAILURE_REASON_PER_THREAD is 1 there.  Where the compiler has none (tcc) it is 0 and the text
   is one static buffer, as strerror's: threads that load files at the same time should not rely on it. */
BPDEF const char *bp_failure_reason(void);

#endif /* BACKPROP_NO_STDIO */

/* ---------------------------------------------------------------------------------------------------
   10. The layers put together: a network in one object
   A multi-layer perceptron, Linear layers each followed by an activation, made of nothing but the public
   functions above: bp_linear_forward/backward, the activations, a loss, an optimizer, the initialisers.
   It is the short road for a program that wants to run or train a small network (a game, a tool, a
   device): one allocation, one call to predict, one call per training step, one file.  The explicit
   calls remain the lesson; bp_mlp_train_step is exactly them, in order (the tests check it bit for bit).
       int widths[] = {4, 16, 3}, acts[] = {BP_ACT_RELU, BP_ACT_NONE};      // 4 -> 16 -> ReLU -> 3
       bp_mlp_config cfg = bp_mlp_default_config();
       cfg.loss = BP_LOSS_SOFTMAX_XENT;  cfg.optimizer = BP_OPT_ADAM;  cfg.lr = 0.01f;  cfg.max_batch = 64;
       bp_mlp *net = bp_mlp_new(2, widths, acts, &cfg);
       bp_real loss = bp_mlp_train_step(net, &x, NULL, labels);   // x: n x 4, n <= 64; one class per row
       bp_tensor out = bp_mlp_predict(net, &x);                   // n x 3: the last layer's output
       bp_mlp_save(net, "net.npz");                               // PyTorch's state_dict, as np.savez writes it
       bp_mlp_free(net);
   One network is used by one thread at a time (predict writes its activations).
   --------------------------------------------------------------------------------------------------- */

/* What follows each Linear layer; later layers of the library will join this list. */
#define BP_ACT_NONE 0    /* nothing: the Linear's output as it is (the usual last layer) */
#define BP_ACT_RELU 1    /* bp_relu_forward/backward */
#define BP_ACT_SIGMOID 2 /* bp_sigmoid_forward/backward */
#define BP_ACT_TANH 3    /* bp_tanh_forward/backward */

#define BP_LOSS_MSE 0          /* bp_mse_*: the targets are y, batch x outputs */
#define BP_LOSS_SOFTMAX_XENT 1 /* bp_softmax_xent_* on the last layer's output: the targets are labels */

#define BP_OPT_SGD 0      /* bp_sgd_step */
#define BP_OPT_MOMENTUM 1 /* bp_momentum_step */
#define BP_OPT_ADAM 2     /* bp_adam_step */

typedef struct bp_mlp_config {
    int max_batch;             /* the most rows predict and train_step are given (the activations' size) */
    int loss;                  /* BP_LOSS_MSE or BP_LOSS_SOFTMAX_XENT */
    int optimizer;             /* BP_OPT_SGD, BP_OPT_MOMENTUM or BP_OPT_ADAM */
    bp_real lr;                /* the learning rate (net->config.lr may be changed between steps) */
    bp_real momentum;          /* BP_OPT_MOMENTUM's mu */
    bp_real beta1, beta2, eps; /* BP_OPT_ADAM's */
    uint64_t seed;             /* the starting weights: He for a layer followed by ReLU, Xavier otherwise;
                                  biases 0 */
} bp_mlp_config;

/* One Linear layer and its activation; every tensor lives in the network's one allocation. */
typedef struct bp_mlp_layer {
    int activation;     /* BP_ACT_* */
    bp_tensor W, b;     /* in x out and 1 x out, as bp_linear_forward takes them */
    bp_tensor dW, db;   /* their gradients, from the last training step */
    bp_tensor mW, mb;   /* the optimizer's state: momentum's velocity or Adam's m (0x0 for SGD) */
    bp_tensor vW, vb;   /* Adam's v (0x0 otherwise) */
    bp_tensor z, a, da; /* max_batch x out: the Linear's output z, the layer's a = activation(z) (for
                           BP_ACT_NONE, a is z itself), and dL/da, then dL/dz in place, in a training step */
} bp_mlp_layer;

typedef struct bp_mlp {
    int layers;           /* Linear layers */
    int inputs, outputs;  /* widths[0] and widths[layers] */
    int step;             /* training steps taken (Adam's t) */
    bp_mlp_config config; /* as given to bp_mlp_new; only lr, momentum, beta1, beta2, eps may change */
    bp_mlp_layer *layer;  /* layer[0 .. layers-1] */
    bp_tensor all;        /* 1 x count: every number of every tensor above: params, grads, m, v, then each
                             layer's z, a (unless it is z) and da */
    bp_tensor params;     /* 1 x P: every W and b, layer by layer (W1 b1 W2 b2 ...), the start of all */
    bp_tensor grads;      /* 1 x P: dW1 db1 dW2 db2 ...: the last step's gradients, in the same order */
    bp_tensor m, v;       /* 1 x P: the optimizer's state in the same order (0x0 where it keeps none) */
} bp_mlp;

/* max_batch 32, BP_LOSS_MSE, BP_OPT_SGD, lr 0.01, momentum 0.9, beta1 0.9, beta2 0.999, eps 1e-8, seed 1. */
BPDEF bp_mlp_config bp_mlp_default_config(void);

/* A network of `layers` Linear layers: layer l maps widths[l] to widths[l+1] numbers (widths has layers+1
   entries, each >= 1) and is followed by activations[l].  config NULL means bp_mlp_default_config().
   Everything (the struct, the layers, weights, biases, gradients, optimizer state and the activations of
   max_batch rows) is ONE allocation through BP_MALLOC; nothing after this allocates except save and load.
   A bad argument, or sizes past INT_MAX numbers per tensor, or a failed allocation go to the error handler
   and return NULL. */
BPDEF bp_mlp *bp_mlp_new(int layers, const int *widths, const int *activations, const bp_mlp_config *config);

/* Frees the network (BP_FREE); net may be NULL. */
BPDEF void bp_mlp_free(bp_mlp *net);

/* The forward pass on x (n x inputs, n <= max_batch): returns the last layer's output, n x outputs, a view
   into the network (never freed; valid until the next call on net).  With BP_LOSS_SOFTMAX_XENT these are
   the logits, as PyTorch's model(x) returns them: the class is the largest, the softmax gives probabilities.
   A bad call goes to the error handler and returns {0, 0, NULL}. */
BPDEF bp_tensor bp_mlp_predict(bp_mlp *net, const bp_tensor *x);

/* One training step on the batch x (n x inputs, n <= max_batch): the forward pass, the loss, the backward
   pass, and one step of the optimizer on every weight and bias.  The targets: for BP_LOSS_MSE, y (n x
   outputs) and labels NULL; for BP_LOSS_SOFTMAX_XENT, labels (n classes in 0 .. outputs-1) and y NULL.
   Returns the loss before the step (the mean over the batch).  No allocation.  A bad call goes to the
   error handler, returns NaN and changes nothing. */
BPDEF bp_real bp_mlp_train_step(bp_mlp *net, const bp_tensor *x, const bp_tensor *y, const int *labels);

#ifndef BACKPROP_NO_STDIO
/* The weights and biases as one .npz file, named and laid out as PyTorch's state_dict of the same
   network written as an nn.Sequential of nn.Linear and activation modules:
       nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
       ->  "0.weight" 16x4, "0.bias" 16, "2.weight" 3x16, "2.bias" 3
   Each module counts, so a Linear's number is its place in that list (an activation takes a number, a
   BP_ACT_NONE does not).  nn.Linear keeps its weight as out x in, the TRANSPOSE of W here (in x out):
   the file holds W^T, and bp_mlp_load transposes back.  So in Python
       model.load_state_dict({k: torch.from_numpy(v) for k, v in np.load("net.npz").items()})
   and np.savez("net.npz", **{k: v.numpy() for k, v in model.state_dict().items()}) the other way.
   Saved as bp_npz_save saves (atomically); 0 on success, -1 and bp_failure_reason() otherwise. */
BPDEF int bp_mlp_save(const bp_mlp *net, const char *path);

/* Reads the weights and biases of such a file into net, which must have the same layers: each member
   "N.weight" out x in and "N.bias" (out, or 1 x out).  On success the optimizer's state and step count
   start again from zero.  0 on success; -1 and bp_failure_reason() otherwise, with net unchanged. */
BPDEF int bp_mlp_load(bp_mlp *net, const char *path);
#endif

#ifdef __cplusplus
}
#endif

#endif /* BACKPROP_H */

/* ===================================================================================================
   IMPLEMENTATION
   =================================================================================================== */

#if defined(BACKPROP_IMPLEMENTATION) && !defined(BP__IMPLEMENTATION_DONE)
#define BP__IMPLEMENTATION_DONE

#include <math.h>   /* sqrt, exp, log, tanh, pow, fabs */
#include <stddef.h> /* size_t */
#include <limits.h> /* INT_MAX */
#include <stdarg.h> /* the error messages' formatter */
#include <stdlib.h> /* malloc, free, abort */
#include <string.h> /* memset, memcpy, strlen */
#ifndef BACKPROP_NO_STDIO
#include <errno.h>
#include <stdio.h> /* the default error handler's stderr; the files */
#endif

#if defined(BP_MALLOC) && defined(BP_FREE)
/* the user's allocator */
#elif !defined(BP_MALLOC) && !defined(BP_FREE)
#define BP_MALLOC(size) malloc(size)
#define BP_FREE(ptr) free(ptr)
#else
#error "backprop.h: define both BP_MALLOC and BP_FREE, or neither"
#endif

#ifndef BP_ASSERT
#include <assert.h>
#define BP_ASSERT(cond) assert(cond)
#endif

#if defined(__cplusplus)
#define BP__RESTRICT __restrict
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 199901L
#define BP__RESTRICT restrict
#else
#define BP__RESTRICT
#endif

/* The guards: argument checks.  Each reports through the error handler with one line naming the function
   (fn) and the arguments, and returns 1 if something is wrong.  Defined in section 8, after the lesson. */
#define BP__SAME_SHAPE 1 /* bp__bad_args: every tensor must have the shape of the first */
#define BP__IN_PLACE 2   /* bp__bad_args: an output may be exactly an input (same data, same shape) */
static int bp__bad_args(const char *fn, int n, const bp_tensor *const *args, const char *names, int rules);
static int bp__bad_tensors(const char *fn, int n, const bp_tensor *const *args, const char *names);
static int bp__bad_overlaps(const char *fn, int n, const bp_tensor *const *args, const char *names, int in_place);
static int bp__bad_tensor(const char *fn, const char *name, const bp_tensor *t);
static int bp__bad_matmul(const char *fn, const bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags);
static int bp__bad_linear(const char *fn, const bp_tensor *x, const bp_tensor *W, const bp_tensor *b,
                          const bp_tensor *z, const bp_tensor *dx, const bp_tensor *dW);
static int bp__bad_labels(const char *fn, const int *labels, const char *of_name, const bp_tensor *of);
static int bp__bad_grads(const char *fn, bp_tensor *const *grads, int count);
static int bp__bad_rng(const char *fn, const bp_rng *rng, const char *name, const bp_tensor *t);
static int bp__bad_window(const char *fn, const bp_window *g, int pooling);
static int bp__bad_conv(const char *fn, const bp_window *g, const bp_tensor *x, const bp_tensor *W,
                        const bp_tensor *b, const bp_tensor *y, const bp_tensor *col, const bp_tensor *dx,
                        const bp_tensor *dW);
static int bp__bad_pool(const char *fn, const bp_window *g, const bp_tensor *x, const bp_tensor *y,
                        uintptr_t argmax, const int *indices, int backward);
static int bp__bad_mlp_config(const char *fn, const bp_mlp_config *c);
static int bp__bad_mlp_input(const char *fn, const bp_mlp *net, const bp_tensor *x);
static int bp__bad_mlp_targets(const char *fn, const bp_mlp *net, const bp_tensor *x, const bp_tensor *y,
                               const int *labels);
static int bp__bad_overlap(const char *fn, const char *out_name, const bp_tensor *out, const char *in_name,
                           const bp_tensor *in, int in_place_ok);
static int bp__exactly(const bp_tensor *out, const bp_tensor *in);
static int bp__bad_eps(const char *fn, bp_real eps, const char *name, const bp_tensor *t);
static int bp__bad_norm_shapes(const char *fn, const bp_tensor *x, int n, const bp_tensor *const *args,
                               const char *names, const char *kinds, int by_row);
static int bp__bad_norm(const char *fn, int by_row, const bp_tensor *x, const bp_tensor *gamma,
                        const bp_tensor *beta, bp_real eps, const bp_tensor *y, const bp_tensor *mean,
                        const bp_tensor *rstd);
static int bp__bad_norm_backward(const char *fn, int by_row, const bp_tensor *x, const bp_tensor *gamma,
                                 const bp_tensor *mean, const bp_tensor *rstd, const bp_tensor *dy,
                                 const bp_tensor *dx, const bp_tensor *dgamma, const bp_tensor *dbeta);
#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
static void bp__fail(const char *format, ...);

static size_t bp__count(const bp_tensor *t) { return (size_t)t->rows * (size_t)t->cols; }

/* ===================================================================================================
   1. Tensors
   =================================================================================================== */

BPDEF bp_tensor bp_tensor_new(int rows, int cols)
{
    bp_tensor t = {0, 0, 0};
    size_t bytes;
    if (rows < 0 || cols < 0) {
        bp__fail("bp_tensor_new: asked for %dx%d (sizes must not be negative)", rows, cols);
        return t;
    }
    if (cols > 0 && rows > INT_MAX / cols) {
        bp__fail("bp_tensor_new: asked for %dx%d (more than INT_MAX elements)", rows, cols);
        return t;
    }
    if ((size_t)rows * (size_t)cols > ((size_t)-1) / sizeof(bp_real)) { /* only where size_t is 32 bits */
        bp__fail("bp_tensor_new: asked for %dx%d (more bytes than size_t can count)", rows, cols);
        return t;
    }
    bytes = (size_t)rows * (size_t)cols * sizeof(bp_real);
    if (bytes > 0) {
        t.data = (bp_real *)BP_MALLOC(bytes);
        if (!t.data) {
            bp__fail("bp_tensor_new: out of memory allocating %dx%d (%.0f bytes)", rows, cols, (double)bytes);
            return t;
        }
        memset(t.data, 0, bytes); /* all-zero bits is 0.0 in IEEE-754 */
    }
    t.rows = rows;
    t.cols = cols;
    return t;
}

BPDEF void bp_tensor_free(bp_tensor *t)
{
    if (!t) return;
    if (t->data) BP_FREE(t->data);
    t->data = 0;
}

/* sqrt(sum of squares), the sum in double: in float it would overflow past 1.8e19 and lose small terms */
BPDEF bp_real bp_tensor_norm(const bp_tensor *t)
{
    double sum = 0;
    size_t i, n;
    if (bp__bad_tensor("bp_tensor_norm", "t", t)) return (bp_real)NAN;
    n = bp__count(t);
    for (i = 0; i < n; i++) sum += (double)t->data[i] * (double)t->data[i];
    return (bp_real)sqrt(sum);
}

BPDEF int bp_tensor_all_finite(const bp_tensor *t)
{
    size_t i, n;
    int bad = 0;
    if (bp__bad_tensor("bp_tensor_all_finite", "t", t)) return 0;
    n = bp__count(t);
    /* x - x is exactly 0 for every finite x, and NaN for NaN and +-infinity.  (Not isfinite(): mingw-w64's
       macro converts a double to float.  Like isfinite, this cannot work under -ffast-math.)  No early
       return: a loop that may stop in the middle does not vectorise, and all finite is the usual answer. */
    for (i = 0; i < n; i++) bad |= t->data[i] - t->data[i] != 0;
    return !bad;
}

/* rows [start, start + n) of t, unchecked: bp_tensor_rows after its guard, and the network's views */
static bp_tensor bp__tensor_rows(const bp_tensor *t, int start, int n)
{
    bp_tensor view;
    view.rows = n;
    view.cols = t->cols;
    view.data = t->data ? t->data + (size_t)start * (size_t)t->cols : t->data; /* (an empty t may have none) */
    return view;
}

BPDEF bp_tensor bp_tensor_rows(const bp_tensor *t, int start, int n)
{
    bp_tensor none = {0, 0, 0};
    if (bp__bad_tensor("bp_tensor_rows", "t", t)) return none;
    if (start < 0 || n < 0 || start > t->rows - n) {
        bp__fail("bp_tensor_rows: start %d and n %d but t is %dx%d (rows start .. start+n-1 must exist)", start, n,
                 t->rows, t->cols);
        return none;
    }
    return bp__tensor_rows(t, start, n);
}

/* ===================================================================================================
   2. Matrix multiply
   ===================================================================================================
   Every layer's forward and backward is built on one product: z = x.W,  dW = x^T.dz,  dx = dz.W^T.  First
   its definition as plain loops; then the same product made fast, bp__matmul, which the layers call. */

/* C = op(A).op(B):  C[i][j] = sum over k of op(A)[i][k] op(B)[k][j],  where op(A)[i][k] is A[i][k], or
   A[k][i] when A is transposed (BP_TRANS_A); likewise B.  BP_ACCUMULATE adds the product to C instead. */
static void bp__matmul_reference(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags)
{
    int i, j, k, K = (flags & BP_TRANS_A) ? A->rows : A->cols;
    for (i = 0; i < C->rows; i++)
        for (j = 0; j < C->cols; j++) {
            bp_real sum = 0;
            for (k = 0; k < K; k++) {
                bp_real a = (flags & BP_TRANS_A) ? A->data[k * A->cols + i] : A->data[i * A->cols + k];
                bp_real b = (flags & BP_TRANS_B) ? B->data[j * B->cols + k] : B->data[k * B->cols + j];
                sum += a * b;
            }
            if (flags & BP_ACCUMULATE) C->data[i * C->cols + j] += sum;
            else C->data[i * C->cols + j] = sum;
        }
}

BPDEF void bp_matmul_reference(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags)
{
    if (bp__bad_matmul("bp_matmul_reference", C, A, B, flags)) return;
    bp__matmul_reference(C, A, B, flags);
}

/* ---- the fast matmul -------------------------------------------------------------------------------
   C = op(A).op(B) costs 2*M*N*K flops on M*K + K*N inputs: each input element is used M or N times.  The
   naive loops fetch it from memory each time; a blocked kernel fetches it once into a small, fast place
   and uses it many times from there:

     for each NC-column panel of C           (jc)
       for each KC-slice of the inner dim      (pc)  pack op(B)[pc.., jc..] (KC x NC) -> Bp   stays in L2
         for each MC-row block of C              (ic)  pack op(A)[ic.., pc..] (MC x KC) -> Ap   stays in L1/L2
           for each MR x NR tile of that block         kernel: MR*NR sums held in registers for all KC steps

   Packing copies a block into the exact order the kernel reads it (contiguous, zero-padded to whole
   tiles), and that is where op() happens: a transposed operand is just read in another order while
   packing, so all four forms run at the same speed.  The kernel keeps an MR x NR tile of C in local
   variables; for each of the KC steps it loads NR numbers of B and MR numbers of A and does MR*NR
   multiply-adds.  Its shape is chosen to fill the vector registers of the target.
   Other shapes take other roads (bp__gemm below picks): a tiny product (up to 512 multiply-adds: a small
   network, one sample at a time) runs the definition's loops, with nothing to set up; a C with fewer rows
   than a tile (batch 1), or an outer product (K = 1), skips packing, which could not pay for itself; a C
   at most one vector wide (10 classes) reads A unpacked, one vector per row; a C that would fill few of a
   tile's columns is computed as its transpose.  The Linear layer's bias can ride along: bp__gemm adds it
   as it writes C (bp__linear_forward_fused).
   Each C element is summed in the same order (p = 0..K-1) on every road, with any number of threads
   (under gcc the tiny road rounds each product on its own: see BP__SCALAR).
   Nothing here touches the heap: Ap and Bp live on the stack.

   Why this is fast (AVX-512, float, 8x32 tile): each step of the kernel loads 2 vectors of B and 8
   numbers of A for 16 vector multiply-adds, so the two FMA units, not memory, set the pace.  Bp (256 KB)
   fits the 1 MB L2 cache and is reused by every row block of A; one row panel of Ap (8 KB) and one
   column panel of Bp (32 KB) fit the 48 KB L1 cache while a tile is computed. */

#if defined(__AVX512F__)
#define BP__VLEN_BYTES 64 /* 32 zmm registers */
#define BP__MR 8
#elif defined(__AVX__)
#define BP__VLEN_BYTES 32 /* 16 ymm registers: 4x16 floats take 8 of them for the tile */
#if defined(__clang__) && !defined(BACKPROP_DOUBLE)
#define BP__MR 6 /* clang keeps 6x16 floats (12 registers) in registers: 119 vs 76 GFLOP/s for 4x16 */
#else
#define BP__MR 4 /* gcc spills a 6x16 float tile (56 vs 107 GFLOP/s); 6x8 doubles spill in both */
#endif
#elif defined(__ARM_NEON) || defined(__aarch64__)
#define BP__VLEN_BYTES 16 /* 32 q registers */
#define BP__MR 8
#else
#define BP__VLEN_BYTES 16 /* SSE2 and anything else: 16 registers of 16 bytes, or plain scalar code */
#define BP__MR 4
#endif
#define BP__NR (2 * BP__VLEN_BYTES / (int)sizeof(bp_real)) /* two vectors wide */

#ifndef BP_MATMUL_KC
#define BP_MATMUL_KC 256
#endif
#ifndef BP_MATMUL_NC
#ifdef BACKPROP_DOUBLE
#define BP_MATMUL_NC 128
#else
#define BP_MATMUL_NC 256
#endif
#endif
#ifndef BP_MATMUL_MC
#define BP_MATMUL_MC 64
#endif
/* whole tiles, so the packing buffers hold padded blocks exactly */
#define BP__NC_PAD (((BP_MATMUL_NC + BP__NR - 1) / BP__NR) * BP__NR)
#define BP__MC_PAD (((BP_MATMUL_MC + BP__MR - 1) / BP__MR) * BP__MR)

/* The kernels stay functions of their own (inlined into their callers, gcc has fewer registers for the
   tile and has been seen to vectorise the wrong loop: 1 GFLOP/s instead of 180); and gcc must not turn
   the kernels' and the packing's short copy and clear loops into calls to memcpy, memmove and memset (a
   call per row: 4% of a 512^3 product).  The tiny products' loops (BP__SCALAR) run 3 or 4 times each:
   gcc's vector versions of them only add set-up (a 4-4-3 network's step 7% slower).  (gcc 12 also stops
   contracting a * b + c into one multiply-add in a function with this attribute, whatever -ffp-contract
   says: a tiny product rounds each product, and agrees with the other roads to rounding, not bit for
   bit.)  Other compilers: nothing to say. */
#if defined(__GNUC__) && !defined(__clang__)
#define BP__NO_LIBC_CALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#define BP__NOINLINE __attribute__((noinline, optimize("no-tree-loop-distribute-patterns")))
#define BP__SCALAR __attribute__((noinline, optimize("no-tree-vectorize")))
#elif defined(__clang__)
#define BP__NO_LIBC_CALLS
#define BP__NOINLINE __attribute__((noinline))
#define BP__SCALAR __attribute__((noinline))
#else
#define BP__NO_LIBC_CALLS
#define BP__NOINLINE
#define BP__SCALAR
#endif

/* Packs op(B)[k0 .. k0+kc, n0 .. n0+nc] into Bp as ceil(nc/NR) panels, each kc rows of NR, zero-padded.
   op(B)(k, n) is B[k][n], or B[n][k] when transposed.  Every loop has a constant count (the padding is
   a select, not a shorter loop) so the compiler copies in registers instead of calling memcpy/memset
   for a few elements at a time. */
static BP__NO_LIBC_CALLS void bp__pack_b(bp_real *BP__RESTRICT Bp, const bp_tensor *B, int trans, int k0, int kc, int n0, int nc)
{
    size_t ldb = (size_t)B->cols;
    int j0, p, j, q;
    for (j0 = 0; j0 < nc; j0 += BP__NR) {
        int nr = nc - j0 < BP__NR ? nc - j0 : BP__NR;
        bp_real *panel = Bp + (size_t)j0 * (size_t)kc;
        p = 0;
        if (trans && nr == BP__NR) /* a transpose: 8 x NR blocks, 8 contiguous reads from each row of B */
            for (; p + 8 <= kc; p += 8) {
                const bp_real *src = B->data + (size_t)(n0 + j0) * ldb + (size_t)(k0 + p);
                for (j = 0; j < BP__NR; j++)
                    for (q = 0; q < 8; q++) panel[(size_t)(p + q) * BP__NR + (size_t)j] = src[(size_t)j * ldb + (size_t)q];
            }
        for (; p < kc; p++) {
            bp_real *dst = panel + (size_t)p * BP__NR;
            if (!trans) {
                const bp_real *src = B->data + (size_t)(k0 + p) * ldb + (size_t)(n0 + j0); /* row k of B */
                if (nr == BP__NR)
                    for (j = 0; j < BP__NR; j++) dst[j] = src[j];
                else
                    for (j = 0; j < BP__NR; j++) dst[j] = j < nr ? src[j] : 0;
            } else {
                const bp_real *src = B->data + (size_t)(n0 + j0) * ldb + (size_t)(k0 + p); /* column k */
                for (j = 0; j < BP__NR; j++) dst[j] = j < nr ? src[(size_t)j * ldb] : 0;
            }
        }
    }
}

/* Packs op(A)[m0 .. m0+mc, k0 .. k0+kc] into Ap as ceil(mc/MR) panels, each kc columns of MR, zero-padded.
   op(A)(m, k) is A[m][k], or A[k][m] when transposed.  The same loops as bp__pack_b, A's roles swapped.
   (One function for both, with the panel width as an argument, measured 2% slower under gcc and 15%
   under clang on the 10-class output layer, where packing is half the time: so they stay two.) */
static BP__NO_LIBC_CALLS void bp__pack_a(bp_real *BP__RESTRICT Ap, const bp_tensor *A, int trans, int m0, int mc, int k0, int kc)
{
    size_t lda = (size_t)A->cols;
    int i0, p, i, q;
    for (i0 = 0; i0 < mc; i0 += BP__MR) {
        int mr = mc - i0 < BP__MR ? mc - i0 : BP__MR;
        bp_real *panel = Ap + (size_t)i0 * (size_t)kc;
        p = 0;
        if (!trans && mr == BP__MR) /* a transpose: 8 x MR blocks, 8 contiguous reads from each row of A */
            for (; p + 8 <= kc; p += 8) {
                const bp_real *src = A->data + (size_t)(m0 + i0) * lda + (size_t)(k0 + p);
                for (i = 0; i < BP__MR; i++)
                    for (q = 0; q < 8; q++) panel[(size_t)(p + q) * BP__MR + (size_t)i] = src[(size_t)i * lda + (size_t)q];
            }
        for (; p < kc; p++) {
            bp_real *dst = panel + (size_t)p * BP__MR;
            if (trans) {
                const bp_real *src = A->data + (size_t)(k0 + p) * lda + (size_t)(m0 + i0); /* row k of A */
                if (mr == BP__MR)
                    for (i = 0; i < BP__MR; i++) dst[i] = src[i];
                else
                    for (i = 0; i < BP__MR; i++) dst[i] = i < mr ? src[i] : 0;
            } else {
                const bp_real *src = A->data + (size_t)(m0 + i0) * lda + (size_t)(k0 + p); /* column k */
                for (i = 0; i < BP__MR; i++) dst[i] = i < mr ? src[(size_t)i * lda] : 0;
            }
        }
    }
}

/* How to get a compiler to keep the tile in registers: unroll the i loop completely and vectorise along j
   (NR is two vectors), never across i.  Left alone, gcc and clang may vectorise the wrong loop and spill
   the tile to memory, which costs 5-20x.  These pragmas only steer that choice; other compilers ignore
   the macro, and the result is the same either way. */
#if defined(__clang__)
#define BP__TILE_ROWS_HINT _Pragma("clang loop vectorize(disable)")
#elif defined(__GNUC__) && __GNUC__ >= 8
#define BP__TILE_ROWS_HINT _Pragma("GCC unroll 16")
#else
#define BP__TILE_ROWS_HINT
#endif

/* The register tile: acc (MR x NR) = sum over p of Ap[p][:] (a column of op(A)) times Bp[p][:] (a row of
   op(B)).  Then the mr x nr part of it that exists is stored: element (i,j) goes to C[i*rs + j*cs] (rs
   and cs, the row and column strides, are swapped when bp__gemm computes C transposed), as = acc, or +=
   acc when add is set.  Edge tiles compute the whole padded tile (the padding is zeros). */
#if defined(BACKPROP_DOUBLE) && defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
/* gcc and the double tile under AVX-512.  From the loops below gcc 12 loads the 8 numbers of A of a step as
   one vector (8 doubles fill one) and spreads each over a register with a permute: 10 shuffles for 16
   multiply-adds, which share the FMA units' ports, and 2 shuffle masks spilled to the stack.  The kernel
   ran at 86 GFLOP/s with its panels in L1, against 219 for the float tile, whose 8 numbers of A fill half
   a vector and are broadcast from memory.  Every rearrangement of the loops tried in plain C (other tile
   shapes, A read through runtime strides or pointers) got the shuffles back, spilled the tile, or had gcc
   vectorise along p.  So here the tile is written with gcc's vector extension (a type, not intrinsics):
   a row of the tile is two vectors, a number of A times a vector is a broadcast from memory and a
   multiply-add; 109 GFLOP/s.  The same sums, in the same order, as the loops. */
#define BP__VEC_TILE
typedef double bp__vec __attribute__((vector_size(64))); /* 8 doubles: one zmm register */
#endif

static BP__NOINLINE void bp__kernel(int kc, const bp_real *BP__RESTRICT Ap, const bp_real *BP__RESTRICT Bp,
                                    bp_real *BP__RESTRICT C, size_t rs, size_t cs, int mr, int nr, int add)
{
    bp_real acc[BP__MR][BP__NR];
    int i, j, p;
#ifdef BP__VEC_TILE
    const bp__vec zero = {0};
    bp__vec v[BP__MR][2]; /* row i of the tile: v[i][0] (columns 0-7), v[i][1] (columns 8-15) */
    for (i = 0; i < BP__MR; i++) v[i][0] = v[i][1] = zero;
    for (p = 0; p < kc; p++) {
        const bp_real *a = Ap + (size_t)p * BP__MR, *b = Bp + (size_t)p * BP__NR;
        bp__vec b0, b1;
        memcpy(&b0, b, sizeof b0); /* (unaligned loads: the panels are bp_real arrays) */
        memcpy(&b1, b + 8, sizeof b1);
        BP__TILE_ROWS_HINT
        for (i = 0; i < BP__MR; i++) {
            v[i][0] += a[i] * b0;
            v[i][1] += a[i] * b1;
        }
    }
    if (cs == 1 && nr == BP__NR) { /* whole rows: vector stores */
        BP__TILE_ROWS_HINT
        for (i = 0; i < BP__MR; i++) {
            bp_real *c = C + (size_t)i * rs;
            bp__vec c0, c1;
            if (i >= mr) break;
            if (add) {
                memcpy(&c0, c, sizeof c0);
                memcpy(&c1, c + 8, sizeof c1);
                c0 += v[i][0];
                c1 += v[i][1];
            } else {
                c0 = v[i][0];
                c1 = v[i][1];
            }
            memcpy(c, &c0, sizeof c0);
            memcpy(c + 8, &c1, sizeof c1);
        }
        return;
    }
    BP__TILE_ROWS_HINT
    for (i = 0; i < BP__MR; i++) { /* an edge tile, or C transposed: below, from acc */
        memcpy(acc[i], &v[i][0], sizeof v[i][0]);
        memcpy(acc[i] + 8, &v[i][1], sizeof v[i][1]);
    }
#else
    for (i = 0; i < BP__MR; i++)
        for (j = 0; j < BP__NR; j++) acc[i][j] = 0;
    for (p = 0; p < kc; p++) {
        const bp_real *a = Ap + (size_t)p * BP__MR, *b = Bp + (size_t)p * BP__NR;
        BP__TILE_ROWS_HINT
        for (i = 0; i < BP__MR; i++)
            for (j = 0; j < BP__NR; j++) acc[i][j] += a[i] * b[j];
    }
    if (cs == 1 && nr == BP__NR) { /* the common case: whole rows, constant counts, vector stores */
        BP__TILE_ROWS_HINT /* (a constant count, unrolled: acc stays in registers, stored straight to C) */
        for (i = 0; i < BP__MR; i++) {
            bp_real *c = C + (size_t)i * rs;
            if (i >= mr) break;
            if (add)
                for (j = 0; j < BP__NR; j++) c[j] += acc[i][j];
            else
                for (j = 0; j < BP__NR; j++) c[j] = acc[i][j];
        }
        return;
    }
#endif
    { /* an edge tile, or C transposed: element by element, through memory (a copy with constant indices,
         so that acc itself is never indexed at run time and stays in registers) */
        bp_real t[BP__MR][BP__NR];
        BP__TILE_ROWS_HINT
        for (i = 0; i < BP__MR; i++)
            for (j = 0; j < BP__NR; j++) t[i][j] = acc[i][j];
        for (i = 0; i < mr; i++)
            for (j = 0; j < nr; j++) {
                bp_real *c = C + (size_t)i * rs + (size_t)j * cs;
                /* if/else, not ?: -- where float sums are done in double (FLT_EVAL_METHOD 1, s390x), gcc's
                   -Wdouble-promotion flags the conversion of the ?:'s other arm */
                if (add) *c += t[i][j];
                else *c = t[i][j];
            }
    }
}

/* Given a bias (the last K slice of a Linear layer's z = x.W + b): bias[j] added to element (i,j) of the
   mr x nr tile just written at C, or bias[i] when C is computed transposed (bt); b added while the tile is
   in L1, not in a pass of its own.  (Outside the kernel: compiled into it, gcc's clones of the kernel with
   and without a bias summed differently under -ffp-contract=fast, and fused z differed from x.W + b.) */
static void bp__tile_bias(bp_real *C, size_t rs, size_t cs, int mr, int nr, const bp_real *bias, int bt)
{
    int i, j;
    for (i = 0; i < mr; i++)
        for (j = 0; j < nr; j++) C[(size_t)i * rs + (size_t)j * cs] += bias[bt ? i : j];
}

/* The tiles of one packed block: Ap (mc x kc, op(A) rows ic..) times Bp (kc x nc, op(B) columns jc..) into
   C's block at (ic, jc).  last: the bias, on the last K slice (else NULL). */
static void bp__tiles(const bp_real *Ap, const bp_real *Bp, bp_real *C, size_t rs, size_t cs, int ic, int mc,
                      int jc, int nc, int kc, int add, const bp_real *last, int bt)
{
    int jr, ir;
    for (jr = 0; jr < nc; jr += BP__NR) {
        int nr = nc - jr < BP__NR ? nc - jr : BP__NR;
        for (ir = 0; ir < mc; ir += BP__MR) {
            int mr = mc - ir < BP__MR ? mc - ir : BP__MR;
            bp_real *tile = C + (size_t)(ic + ir) * rs + (size_t)(jc + jr) * cs;
            bp__kernel(kc, Ap + (size_t)ir * (size_t)kc, Bp + (size_t)jr * (size_t)kc, tile, rs, cs, mr, nr, add);
            if (last) bp__tile_bias(tile, rs, cs, mr, nr, last + (bt ? ic + ir : jc + jr), bt);
        }
    }
}

/* The blocked loops.  C is M x N, its element (i,j) at C[i*rs + j*cs]; op(A) is M x K, op(B) is K x N.
   bias (or NULL): added to each column j of C, or to each row i with bt, by the kernel's last K slice. */
static void bp__gemm_blocked(bp_real *C, size_t rs, size_t cs, const bp_tensor *A, int trans_a,
                             const bp_tensor *B, int trans_b, int accumulate, int M, int N, int K,
                             const bp_real *bias, int bt)
{
    bp_real Bp[BP_MATMUL_KC * BP__NC_PAD]; /* KC x NC slice of op(B), in NR-wide panels */
    int jc, pc, ic;
    BP_ASSERT(M > 0 && N > 0 && K > 0);
    BP_ASSERT(BP_MATMUL_KC > 0 && BP_MATMUL_NC > 0 && BP_MATMUL_MC > 0);
    if (M <= BP_MATMUL_MC) { /* one block of rows (a batch of 64, say): pack it once per K slice, not once
                                per column panel (dx = dz.W^T: 4 times fewer copies of dz) */
        bp_real Ap[BP__MC_PAD * BP_MATMUL_KC];
        for (pc = 0; pc < K; pc += BP_MATMUL_KC) {
            int kc = K - pc < BP_MATMUL_KC ? K - pc : BP_MATMUL_KC;
            int add = pc > 0 || accumulate; /* the first slice overwrites, unless accumulating */
            const bp_real *last = pc + kc == K ? bias : NULL; /* the bias goes in with the last slice */
            bp__pack_a(Ap, A, trans_a, 0, M, pc, kc);
            for (jc = 0; jc < N; jc += BP_MATMUL_NC) {
                int nc = N - jc < BP_MATMUL_NC ? N - jc : BP_MATMUL_NC;
                bp__pack_b(Bp, B, trans_b, pc, kc, jc, nc);
                bp__tiles(Ap, Bp, C, rs, cs, 0, M, jc, nc, kc, add, last, bt);
            }
        }
        return;
    }
    for (jc = 0; jc < N; jc += BP_MATMUL_NC) {
        int nc = N - jc < BP_MATMUL_NC ? N - jc : BP_MATMUL_NC;
        for (pc = 0; pc < K; pc += BP_MATMUL_KC) {
            int kc = K - pc < BP_MATMUL_KC ? K - pc : BP_MATMUL_KC;
            int add = pc > 0 || accumulate;
            const bp_real *last = pc + kc == K ? bias : NULL;
            bp__pack_b(Bp, B, trans_b, pc, kc, jc, nc);
            /* The MC-row blocks of C are independent, so with OpenMP (-fopenmp) threads share them out.
               Each C element is still summed by one thread in the same order: the results do not depend
               on the number of threads.  Small products stay on one thread: waking threads costs
               microseconds, and far more when the cores are busy with other work. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (M > BP_MATMUL_MC && (double)M * (double)nc * (double)kc >= 4e6)
#endif
            for (ic = 0; ic < M; ic += BP_MATMUL_MC) {
                bp_real Ap[BP__MC_PAD * BP_MATMUL_KC]; /* MC x KC block of op(A), in MR-tall panels */
                int mc = M - ic < BP_MATMUL_MC ? M - ic : BP_MATMUL_MC;
                bp__pack_a(Ap, A, trans_a, ic, mc, pc, kc);
                bp__tiles(Ap, Bp, C, rs, cs, ic, mc, jc, nc, kc, add, last, bt);
            }
        }
    }
}

/* A narrow C (N up to one vector: an output layer of 10 classes, say; up to two for double with AVX-512,
   bp__narrow_tile_wide below).  Each element of op(A) is used only
   N times, so packing A would cost about as much as the arithmetic: the kernel reads A where it lies
   (op(A)[i][p] = A[i*ars + p*acs]) and packs only op(B) (K x N, small).  The tile is BP__MN rows by one
   vector (BP__NV columns); a last, partial tile is copied into zero-padded rows first.  Each sum runs
   p = 0..K-1 in KC slices, as in bp__gemm_blocked. */
#define BP__NV (BP__NR / 2) /* one vector */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define BP__VECTOR_HINT _Pragma("GCC unroll 1") /* a loop of one vector: vectorise it, do not unroll it away */
#else
#define BP__VECTOR_HINT
#endif
#define BP__MN (2 * BP__MR)
static BP__NOINLINE void bp__narrow_tile(int kc, const bp_real *BP__RESTRICT a, size_t ars, size_t acs,
                                         const bp_real *BP__RESTRICT Bp, bp_real *BP__RESTRICT C, int N, int mr,
                                         int add)
{
    bp_real acc[BP__MN][BP__NV];
    int i, j, p;
    for (i = 0; i < BP__MN; i++)
        for (j = 0; j < BP__NV; j++) acc[i][j] = 0;
    for (p = 0; p < kc; p++) {
        /* rows MR.. read from a second pointer with the same offsets, so that MR offsets, not 2*MR, are
           kept in registers (16 spill on x86-64 and cost a load each) */
        const bp_real *ap = a + (size_t)p * acs, *ap2 = ap + BP__MR * ars, *b = Bp + (size_t)p * BP__NR;
        BP__TILE_ROWS_HINT
        for (i = 0; i < BP__MN; i++) {
            bp_real ai = (i < BP__MR ? ap : ap2)[(size_t)(i % BP__MR) * ars];
            BP__VECTOR_HINT
            for (j = 0; j < BP__NV; j++) acc[i][j] += ai * b[j];
        }
    }
    for (i = 0; i < mr; i++)
        for (j = 0; j < N; j++) {
            bp_real *c = C + (size_t)i * (size_t)N + (size_t)j;
            if (add) *c += acc[i][j];
            else *c = acc[i][j];
        }
}

#if defined(BACKPROP_DOUBLE) && defined(__AVX512F__)
/* With AVX-512 a vector holds 8 doubles, fewer than an output layer's 10 classes; so a C up to two vectors
   wide (N up to NR) takes this road too, with a tile MR rows by two vectors (the same 16 sums in registers),
   rather than the blocked one: there a 64x10 product packed the 64x256 activations, and its tiles used 10
   of their 16 columns.  Measured on the Zen 5 VM, best of 60 against OpenBLAS: 64x256 . 256x10 0.59x ->
   0.88x; 64x13 0.89x -> 1.31x, 512x16 (K 512) 1.15x -> 1.81x.  (Float and other targets: not measured,
   not changed.) */
#define BP__NARROW_WIDE
#define BP__NARROW_MAX BP__NR
static BP__NOINLINE void bp__narrow_tile_wide(int kc, const bp_real *BP__RESTRICT a, size_t ars, size_t acs,
                                              const bp_real *BP__RESTRICT Bp, bp_real *BP__RESTRICT C, int N, int mr,
                                              int add)
{
    bp_real acc[BP__MR][BP__NR];
    int i, j, p;
    for (i = 0; i < BP__MR; i++)
        for (j = 0; j < BP__NR; j++) acc[i][j] = 0;
    for (p = 0; p < kc; p++) {
        const bp_real *ap = a + (size_t)p * acs, *b = Bp + (size_t)p * BP__NR;
        BP__TILE_ROWS_HINT
        for (i = 0; i < BP__MR; i++) {
            bp_real ai = ap[(size_t)i * ars];
            BP__VECTOR_HINT
            for (j = 0; j < BP__NR; j++) acc[i][j] += ai * b[j];
        }
    }
    for (i = 0; i < mr; i++)
        for (j = 0; j < N; j++) {
            bp_real *c = C + (size_t)i * (size_t)N + (size_t)j;
            if (add) *c += acc[i][j];
            else *c = acc[i][j];
        }
}
#else
#define BP__NARROW_MAX BP__NV
#endif

/* One narrow tile: MN rows by one vector, or (wide: N more than one vector, BP__NARROW_WIDE) MR rows by two */
static void bp__narrow_call(int wide, int kc, const bp_real *a, size_t ars, size_t acs, const bp_real *Bp, bp_real *C,
                            int N, int mr, int add)
{
#ifdef BP__NARROW_WIDE
    if (wide) {
        bp__narrow_tile_wide(kc, a, ars, acs, Bp, C, N, mr, add);
        return;
    }
#endif
    (void)wide;
    bp__narrow_tile(kc, a, ars, acs, Bp, C, N, mr, add);
}

static BP__NOINLINE void bp__gemm_narrow(bp_tensor *C, const bp_tensor *A, int trans_a, const bp_tensor *B,
                                         int trans_b, int accumulate, int M, int N, int K, const bp_real *bias)
{
    /* (a function of its own, so that these (48 KB for float with AVX-512) are on the stack only here) */
    bp_real Bp[BP_MATMUL_KC * BP__NR], Ap[BP_MATMUL_KC * BP__MN];
    size_t ars = trans_a ? 1 : (size_t)K, acs = trans_a ? (size_t)M : 1;
#ifdef BP__NARROW_WIDE
    int wide = N > BP__NV;
#else
    int wide = 0;
#endif
    int rows = wide ? BP__MR : BP__MN; /* the tile: MN rows by one vector, or MR by two */
    int pc, i0, i, p;
    for (pc = 0; pc < K; pc += BP_MATMUL_KC) {
        int kc = K - pc < BP_MATMUL_KC ? K - pc : BP_MATMUL_KC;
        int add = pc > 0 || accumulate;
        const bp_real *last = pc + kc == K ? bias : NULL;
        bp__pack_b(Bp, B, trans_b, pc, kc, 0, N); /* one NR-wide panel, of which the kernel reads NV (or NR) */
        for (i0 = 0; i0 + rows <= M; i0 += rows) {
            bp__narrow_call(wide, kc, A->data + (size_t)i0 * ars + (size_t)pc * acs, ars, acs, Bp,
                            C->data + (size_t)i0 * (size_t)N, N, rows, add);
            if (last) bp__tile_bias(C->data + (size_t)i0 * (size_t)N, (size_t)N, 1, rows, N, last, 0);
        }
        if (i0 < M) { /* the last rows: Ap[p*rows + i] = op(A)[i0+i][pc+p], 0 past the end */
            for (p = 0; p < kc; p++)
                for (i = 0; i < rows; i++)
                    Ap[p * rows + i] = i0 + i < M ? A->data[(size_t)(i0 + i) * ars + (size_t)(pc + p) * acs] : 0;
            bp__narrow_call(wide, kc, Ap, 1, (size_t)rows, Bp, C->data + (size_t)i0 * (size_t)N, N, M - i0, add);
            if (last) bp__tile_bias(C->data + (size_t)i0 * (size_t)N, (size_t)N, 1, M - i0, N, last, 0);
        }
    }
}

/* Few rows in C (batch 1, say), or an outer product (K = 1): packing would cost more than it saves, since
   each element of B would be used only M times, or each element of C is a single product.  So no packing:
   row i of C is the sum over k of op(A)[i][k] times row k of B.  k runs outside i, so each row of B comes
   from memory once for all M rows of C; the first k writes C (unless accumulating), so C is not cleared
   in a pass of its own; and the j loop vectorises.  (B must not be transposed: its rows are contiguous.) */
static void bp__gemm_unpacked(bp_tensor *C, const bp_tensor *A, int trans_a, const bp_tensor *B, int accumulate,
                              int M, int N, int K, const bp_real *bias)
{
    int i, j, k;
    for (k = 0; k < K; k++) {
        const bp_real *BP__RESTRICT b = B->data + (size_t)k * (size_t)N; /* row k of B */
        for (i = 0; i < M; i++) {
            bp_real *BP__RESTRICT c = C->data + (size_t)i * (size_t)N;
            bp_real a = trans_a ? A->data[(size_t)k * (size_t)M + (size_t)i] : A->data[(size_t)i * (size_t)K + (size_t)k];
            if (k == 0 && !accumulate)
                for (j = 0; j < N; j++) c[j] = a * b[j];
            else
                for (j = 0; j < N; j++) c[j] += a * b[j];
            if (bias && k == K - 1) /* the last k: the sum is complete */
                for (j = 0; j < N; j++) c[j] += bias[j];
        }
    }
}

/* Tiny products (up to BP__SMALL multiply-adds: the layers of a small network, one sample at a time) cost
   what they compute: no packing, no blocking, no vector loop to set up for 3 or 4 columns.  The loops of
   the definition, with the transposes as strides (op(A)[i][p] = A[i*ars + p*acs]), in three forms that
   each read B along its memory: an outer product (K = 1: dW at batch 1; B's one row is contiguous either
   way), dot products with B's rows (B transposed: dx = dz.W^T), and with B's columns.  Each sum starts at
   0 and runs p = 0..K-1, as on the other roads; the bias is added to the complete sum.  (One loop nest
   with four strides, or the branches inside the row loop, cost a 4-4-3 network's step 10-20% more
   instructions: counted with callgrind.) */
#define BP__SMALL 512
static BP__SCALAR void bp__gemm_small(bp_tensor *C, const bp_tensor *A, int trans_a, const bp_tensor *B, int trans_b,
                                      int accumulate, int M, int N, int K, const bp_real *bias)
{
    size_t ars = trans_a ? 1 : (size_t)K, acs = trans_a ? (size_t)M : 1;
    const bp_real *a = A->data, *b = B->data;
    bp_real *c = C->data, sum;
    int i, j, p;
    if (K == 1) /* C[i][j] = op(A)[i][0] B[j] */
        for (i = 0; i < M; i++, c += N)
            for (j = 0; j < N; j++) {
                sum = a[(size_t)i * ars] * b[j];
                if (accumulate) sum += c[j];
                if (bias) sum += bias[j];
                c[j] = sum;
            }
    else if (trans_b) /* C[i][j] = row i of op(A) . row j of B */
        for (i = 0; i < M; i++, c += N)
            for (j = 0; j < N; j++) {
                for (sum = 0, p = 0; p < K; p++) sum += a[(size_t)i * ars + (size_t)p * acs] * b[(size_t)j * (size_t)K + (size_t)p];
                if (accumulate) sum += c[j];
                if (bias) sum += bias[j];
                c[j] = sum;
            }
    else /* C[i][j] = row i of op(A) . column j of B */
        for (i = 0; i < M; i++, c += N)
            for (j = 0; j < N; j++) {
                for (sum = 0, p = 0; p < K; p++) sum += a[(size_t)i * ars + (size_t)p * acs] * b[(size_t)p * (size_t)N + (size_t)j];
                if (accumulate) sum += c[j];
                if (bias) sum += bias[j];
                c[j] = sum;
            }
}

/* n rounded up to whole tiles */
static double bp__padded(int n, int tile) { return (double)((n + tile - 1) / tile) * tile; }

/* Picks the way to compute C = op(A).op(B) for products larger than tiny (bp__gemm below). */
static BP__NOINLINE void bp__gemm_large(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags, int M,
                                       int N, int K, const bp_real *bias)
{
    int trans_a = (flags & BP_TRANS_A) != 0, trans_b = (flags & BP_TRANS_B) != 0;
    int accumulate = (flags & BP_ACCUMULATE) != 0;
    if ((M < BP__MR || K == 1) && !trans_b)
        bp__gemm_unpacked(C, A, trans_a, B, accumulate, M, N, K, bias);
    else if (N <= BP__NARROW_MAX)
        bp__gemm_narrow(C, A, trans_a, B, trans_b, accumulate, M, N, K, bias);
    else if (bp__padded(N, BP__MR) * bp__padded(M, BP__NR) < 0.95 * bp__padded(M, BP__MR) * bp__padded(N, BP__NR))
        /* A narrow C (N = 20, say) would use few of each tile's NR columns.  C^T = op(B)^T.op(A)^T holds the
           same numbers, summed in the same order, with the long side along the vectors; so compute that,
           storing element (j,i) of C^T at C(i,j).  op(B)^T is B read with the opposite transpose flag, and
           op(A)^T likewise.  (Only where that saves 5% or more of the padded work: dx = dz.W^T at batch 64,
           2%, ran 0.94-0.95x OpenBLAS transposed and 0.95-0.99x as it is.) */
        bp__gemm_blocked(C->data, 1, (size_t)N, B, !trans_b, A, !trans_a, accumulate, N, M, K, bias, 1);
    else
        bp__gemm_blocked(C->data, (size_t)N, 1, A, trans_a, B, trans_b, accumulate, M, N, K, bias, 0);
}

/* Picks the way to compute C = op(A).op(B) (no argument checks: bp__matmul's callers have done them), and,
   given a bias (or NULL), adds bias[j] to column j of C as C is written, after the sum is complete.  A
   tiny product goes straight to its loops, without the larger roads' set-up. */
static void bp__gemm(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags, int M, int N, int K,
                     const bp_real *bias)
{
    if ((int64_t)M * N <= BP__SMALL && (int64_t)M * N * K <= BP__SMALL) /* (the first keeps the second in range) */
        bp__gemm_small(C, A, (flags & BP_TRANS_A) != 0, B, (flags & BP_TRANS_B) != 0, (flags & BP_ACCUMULATE) != 0,
                       M, N, K, bias);
    else
        bp__gemm_large(C, A, B, flags, M, N, K, bias);
}

/* The fast product, unchecked: bp_matmul after its guard, and what the layers below call (their own guards
   have checked the products' shapes).  It computes what bp__matmul_reference computes. */
static void bp__matmul(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags)
{
    int K = (flags & BP_TRANS_A) ? A->rows : A->cols;
    if (C->rows == 0 || C->cols == 0) return;
    if (K == 0) { /* an empty sum is 0 */
        if (!(flags & BP_ACCUMULATE)) memset(C->data, 0, bp__count(C) * sizeof(bp_real));
        return;
    }
    bp__gemm(C, A, B, flags, C->rows, C->cols, K, NULL);
}

/* z = x.W + b with b added as each tile of z is written (in registers, or while the row is in L1), not in
   a pass of its own: what bp_linear_forward runs.  The same numbers as bp__linear_forward's two steps
   (the textbook block below), which it falls back to where there is nothing to fuse. */
static void bp__linear_forward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *b, bp_tensor *z);
static void bp__linear_forward_fused(const bp_tensor *x, const bp_tensor *W, const bp_tensor *b, bp_tensor *z)
{
    if (b && x->cols > 0 && z->rows > 0 && z->cols > 0) bp__gemm(z, x, W, 0, z->rows, z->cols, x->cols, b->data);
    else bp__linear_forward(x, W, b, z);
}

BPDEF void bp_matmul(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags)
{
    if (bp__bad_matmul("bp_matmul", C, A, B, flags)) return;
    bp__matmul(C, A, B, flags);
}

/* ===================================================================================================
   3. Layers
   ===================================================================================================
   Each layer is a function y = f(x; params).  Its backward receives dL/dy (written dy) and returns dL/dx
   and dL/dparams by the chain rule, using values the forward cached.  Gradients overwrite; they never
   accumulate. */

/* ---- Linear ---------------------------------------------------------------------------------------- */

/* z += b on every row, for the forward below (bp_linear_forward adds b as the matmul writes z instead) */
static void bp__add_bias(bp_tensor *z, const bp_tensor *b)
{
    int r, j;
    for (r = 0; r < z->rows; r++)
        for (j = 0; j < z->cols; j++) z->data[r * z->cols + j] += b->data[j];
}

/* db[j] = sum_r dz[r][j], for the backward below: row 0, then each further row in order, eight rows to a
   pass over db (the same sums in the same order).  A pass per row spent a load and a store of db on each
   number of dz, and ran at half the triad loop's speed out of cache (make bench). */
static void bp__column_sums(const bp_tensor *dz, bp_tensor *db)
{
    const bp_real *d = dz->data;
    bp_real *s = db->data, sum;
    int r, j, k, C = dz->cols;
    for (j = 0; j < C; j++) s[j] = dz->rows > 0 ? d[j] : 0;
    for (r = 1; r + 8 <= dz->rows; r += 8)
        for (j = 0; j < C; j++) {
            for (sum = s[j], k = 0; k < 8; k++) sum += d[(r + k) * C + j];
            s[j] = sum;
        }
    for (; r < dz->rows; r++)
        for (j = 0; j < C; j++) s[j] += d[r * C + j];
}

/* Forward:  z = x.W + b,  z[r][j] = sum_k x[r][k] W[k][j] + b[j]   (one example per row r) */
static void bp__linear_forward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *b, bp_tensor *z)
{
    bp__matmul(z, x, W, 0);    /* z = x.W */
    if (b) bp__add_bias(z, b); /* z += b */
}

BPDEF void bp_linear_forward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *b, bp_tensor *z)
{
    const char *fn = "bp_linear_forward";
    const bp_tensor *args[4] = {x, W, b, z};
    if (bp__bad_tensors(fn, 4, args, "x W b? >z") || bp__bad_linear(fn, x, W, b, z, NULL, NULL) ||
        bp__bad_overlaps(fn, 4, args, "x W b? >z", 0))
        return;
    bp__linear_forward_fused(x, W, b, z);
}

/* Backward.  L depends on W, b and x only through z, so by the chain rule
       dL/dW[k][j] = sum_r dz[r][j] x[r][k]    ->  dW = x^T.dz
       dL/db[j]    = sum_r dz[r][j]            ->  db = column sums of dz  (b was added to every row)
       dL/dx[r][k] = sum_j dz[r][j] W[k][j]    ->  dx = dz.W^T             (what the layer below receives)
   The forward cached x (for dW); W is the layer's own.  dx and db may be NULL: not computed. */
static void bp__linear_backward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *dz, bp_tensor *dx,
                                bp_tensor *dW, bp_tensor *db)
{
    bp__matmul(dW, x, dz, BP_TRANS_A);         /* dW = x^T.dz */
    if (db) bp__column_sums(dz, db);           /* db = column sums of dz */
    if (dx) bp__matmul(dx, dz, W, BP_TRANS_B); /* dx = dz.W^T */
}

BPDEF void bp_linear_backward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *dz, bp_tensor *dx,
                              bp_tensor *dW, bp_tensor *db)
{
    const char *fn = "bp_linear_backward";
    const bp_tensor *args[6] = {x, W, dz, dx, dW, db};
    if (bp__bad_tensors(fn, 6, args, "x W dz >dx? >dW >db?") || bp__bad_linear(fn, x, W, db, dz, dx, dW) ||
        bp__bad_overlaps(fn, 6, args, "x W dz >dx? >dW >db?", 0))
        return;
    bp__linear_backward(x, W, dz, dx, dW, db);
}

/* ---- ReLU ------------------------------------------------------------------------------------------
   Forward:  a = max(0, z), elementwise. */
static void bp__relu_forward(const bp_tensor *z, bp_tensor *a)
{
    int i, n = z->rows * z->cols;
    for (i = 0; i < n; i++) a->data[i] = z->data[i] < 0 ? 0 : z->data[i]; /* (a NaN stays NaN) */
}

BPDEF void bp_relu_forward(const bp_tensor *z, bp_tensor *a)
{
    const bp_tensor *args[2] = {z, a};
    if (bp__bad_args("bp_relu_forward", 2, args, "z >a", BP__SAME_SHAPE | BP__IN_PLACE)) return;
    bp__relu_forward(z, a);
}

/* Backward:  relu has derivative 1 where z > 0 and 0 elsewhere (0 taken at z = 0), so  dz = da * 1[z > 0].
   The forward cached z (or a: a > 0 exactly where z > 0). */
static void bp__relu_backward(const bp_tensor *z, const bp_tensor *da, bp_tensor *dz)
{
    int i, n = z->rows * z->cols;
    for (i = 0; i < n; i++) {
        bp_real d = da->data[i]; /* read whatever z is: then the loop vectorises */
        dz->data[i] = z->data[i] > 0 ? d : 0;
    }
}

BPDEF void bp_relu_backward(const bp_tensor *z, const bp_tensor *da, bp_tensor *dz)
{
    const bp_tensor *args[3] = {z, da, dz};
    if (bp__bad_args("bp_relu_backward", 3, args, "z da >dz", BP__SAME_SHAPE | BP__IN_PLACE)) return;
    bp__relu_backward(z, da, dz);
}

/* e^x - minus (minus 0 or 1) for x <= 0, in bp_real, with + - * / only: libm's exp may set errno, which
   alone keeps gcc and clang from vectorising a loop that calls it.  x = k ln2 + r, k whole, |r| <= ln2/2
   (ln2 in two parts, so k ln2 is exact): e^x - minus = (2^k - minus) + 2^k (e^r - 1), which keeps its
   digits where e^x - 1 would cancel (x near 0).  (e^r - 1)/r = 1 + r/2! + r^2/3! + ... to r^6/7! in float
   (the rest is below 1e-8), r^12/13! in double (1e-17).  t = x/ln2 + 1.5*2^23 (2^52) has no fraction
   bits: k sits in the low bits of its pattern, and + 127 (1023) shifted into the exponent field makes
   2^k (the rest shifts out).  Below -87.7 (-708.7 in double; x is held at -88, -709) k + 127 (1023) is 0:
   2^k = 0 and it returns -minus, where e^x is below the smallest normal number.  NaN stays NaN.  Measured
   within 1.5 ulps of e^x and e^x - 1 (tests/test_layers.c, exp_accuracy). */
static bp_real bp__exp(bp_real x, int minus)
{
    static const double c[14] = {1, 1, 1 / 2., 1 / 6., 1 / 24., 1 / 120., 1 / 720., 1 / 5040., 1 / 40320.,
        1 / 362880., 1 / 3628800., 1 / 39916800., 1 / 479001600., 1 / 6227020800.}; /* 1/i! */
    const int f = sizeof(bp_real) == 4;
    const bp_real lo = (bp_real)(f ? -88 : -709), big = (bp_real)(f ? 12582912.0 : 6755399441055744.0);
    const bp_real xc = x < lo ? lo : x; /* (NaN stays) */
    bp_real t = (bp_real)(xc * (bp_real)1.4426950408889634 + big), k = t - big, p, scale; /* (the cast
        drops an x87's extra bits, which would keep the fraction) */
    bp_real r = (xc - k * (bp_real)0.693359375) - k * (bp_real)-2.1219444005469058e-4; /* x - k ln2 */
    uint32_t b32;
    uint64_t b64;
    int i = f ? 7 : 13;
    for (p = (bp_real)c[i]; --i >= 1;) p = p * r + (bp_real)c[i]; /* (e^r - 1)/r */
    if (f) memcpy(&b32, &t, 4), b32 = (b32 + 127) << 23, memcpy(&scale, &b32, 4);
    else memcpy(&b64, &t, 8), b64 = (b64 + 1023) << 52, memcpy(&scale, &b64, 8);
    return (scale - (bp_real)minus) + scale * r * p; /* (scale * r is exact: one rounding, in a multiply-add) */
}

/* ---- sigmoid ---------------------------------------------------------------------------------------
   Forward:  a = 1 / (1 + e^-z).  For z < 0 the same value is computed as e^z / (1 + e^z), so e^-z never
   overflows; both forms give a in [0, 1].  (The numerator, 1 for z >= 0 and e for z < 0, is written as
   the larger of e and [z >= 0], which is the same number since e <= 1: compilers make the ?: of it a
   branch on z's sign, which a small layer mispredicts often; a 4-4-3 network's step 3% faster.) */
static void bp__sigmoid_forward(const bp_tensor *z, bp_tensor *a)
{
    int i, n = z->rows * z->cols;
    for (i = 0; i < n; i++) {
        bp_real x = z->data[i], e = bp__exp(-(bp_real)fabs((double)x), 0); /* e^-|z| in [0, 1]: cannot overflow */
        bp_real positive = (bp_real)(x >= 0);                               /* 1 if z >= 0, else 0 */
        a->data[i] = (e > positive ? e : positive) / (1 + e);               /* (z >= 0 ? 1 : e) / (1 + e) */
    }
}

BPDEF void bp_sigmoid_forward(const bp_tensor *z, bp_tensor *a)
{
    const bp_tensor *args[2] = {z, a};
    if (bp__bad_args("bp_sigmoid_forward", 2, args, "z >a", BP__SAME_SHAPE | BP__IN_PLACE)) return;
    bp__sigmoid_forward(z, a);
}

/* Backward:  da/dz = e^-z / (1 + e^-z)^2 = a (1 - a), so  dz = da * a(1 - a).
   A function of the OUTPUT: the forward caches a, not z.  It is at most 1/4, so a stack of n sigmoids
   multiplies the gradient by at most 4^-n -- the vanishing gradient. */
static void bp__sigmoid_backward(const bp_tensor *a, const bp_tensor *da, bp_tensor *dz)
{
    int i, n = a->rows * a->cols;
    for (i = 0; i < n; i++) dz->data[i] = da->data[i] * a->data[i] * (1 - a->data[i]);
}

BPDEF void bp_sigmoid_backward(const bp_tensor *a, const bp_tensor *da, bp_tensor *dz)
{
    const bp_tensor *args[3] = {a, da, dz};
    if (bp__bad_args("bp_sigmoid_backward", 3, args, "a da >dz", BP__SAME_SHAPE | BP__IN_PLACE)) return;
    bp__sigmoid_backward(a, da, dz);
}

/* ---- tanh ------------------------------------------------------------------------------------------
   Forward:  a = tanh(z) = (e^z - e^-z) / (e^z + e^-z), in (-1, 1); computed as (1 - e) / (1 + e) with
   e = e^-2|z| <= 1 (no overflow), and the sign of z.  Near 0, 1 - e would cancel (e is rounded near 1),
   so bp__exp gives d = e - 1 itself, accurate to its last digits: tanh |z| = -d / (2 + d); 0 stays 0
   with its sign, and NaN stays NaN. */
static void bp__tanh_forward(const bp_tensor *z, bp_tensor *a)
{
    int i, n = z->rows * z->cols;
    for (i = 0; i < n; i++) {
        bp_real x = z->data[i], d = bp__exp(-2 * (bp_real)fabs((double)x), 1), t = d / (2 + d); /* -tanh |z| */
        a->data[i] = (bp_real)copysign((double)-t, (double)x);
    }
}

BPDEF void bp_tanh_forward(const bp_tensor *z, bp_tensor *a)
{
    const bp_tensor *args[2] = {z, a};
    if (bp__bad_args("bp_tanh_forward", 2, args, "z >a", BP__SAME_SHAPE | BP__IN_PLACE)) return;
    bp__tanh_forward(z, a);
}

/* Backward:  d tanh(z)/dz = 1 - tanh(z)^2 = 1 - a^2, so  dz = da * (1 - a^2).
   Again a function of the output: the forward caches a.  At most 1 (at z = 0), near 0 once |z| > 3. */
static void bp__tanh_backward(const bp_tensor *a, const bp_tensor *da, bp_tensor *dz)
{
    int i, n = a->rows * a->cols;
    for (i = 0; i < n; i++) dz->data[i] = da->data[i] * (1 - a->data[i] * a->data[i]);
}

BPDEF void bp_tanh_backward(const bp_tensor *a, const bp_tensor *da, bp_tensor *dz)
{
    const bp_tensor *args[3] = {a, da, dz};
    if (bp__bad_args("bp_tanh_backward", 3, args, "a da >dz", BP__SAME_SHAPE | BP__IN_PLACE)) return;
    bp__tanh_backward(a, da, dz);
}

/* ---- the window's output size ---------------------------------------------------------------------
   Positions 0, S, 2S, ... of a K-wide window over H + 2P (padded) pixels, while it fits: (H + 2P - K)/S + 1. */
BPDEF int bp_window_out_height(const bp_window *g)
{
    if (bp__bad_window("bp_window_out_height", g, 0)) return -1;
    return (g->height + 2 * g->pad - g->kernel) / g->stride + 1;
}

BPDEF int bp_window_out_width(const bp_window *g)
{
    if (bp__bad_window("bp_window_out_width", g, 0)) return -1;
    return (g->width + 2 * g->pad - g->kernel) / g->stride + 1;
}

/* ---- 2-D convolution -------------------------------------------------------------------------------
   Forward, for image n, filter f and output position (oh, ow):
       y[n][f][oh][ow] = b[f] + sum over c, i, j of W[f][c][i][j] x[n][c][oh*S - P + i][ow*S - P + j]
   (K x K kernel, stride S, zero padding P: x is 0 outside the image).  Written out, that is a matrix
   product.  im2col copies the patch under each window position into a column:
       col[(c*K + i)*K + j][oh*OW + ow] = x[n][c][oh*S - P + i][ow*S - P + j]   (0 in the padding)
   so col is (C*K*K) x (OH*OW), and with W as F x (C*K*K) the whole image is one product:
       y_n = W . col  (+ b[f] on row f)                        F x (OH*OW), image n's row of y
   The convolution becomes a Linear layer applied to each image's patches, computed by the fast matmul.
   Sizes: OH = (H + 2P - K)/S + 1, OW likewise.  col holds one image; images take turns in it. */
static void bp__im2col(const bp_window *g, const bp_real *image, bp_tensor *col)
{
    int K = g->kernel, S = g->stride, P = g->pad, H = g->height, W = g->width;
    int OW = (W + 2 * P - K) / S + 1, OH = col->cols / OW, c, i, j, oh, ow;
    bp_real *out = col->data;
    for (c = 0; c < g->channels; c++)
        for (i = 0; i < K; i++)
            for (j = 0; j < K; j++) /* row (c*K + i)*K + j of col */
                for (oh = 0; oh < OH; oh++)
                    for (ow = 0; ow < OW; ow++) {
                        int h = oh * S - P + i, w = ow * S - P + j;
                        *out++ = h >= 0 && h < H && w >= 0 && w < W ? image[(c * H + h) * W + w] : 0;
                    }
}

static void bp__conv2d_forward(const bp_window *g, const bp_tensor *x, const bp_tensor *W, const bp_tensor *b,
                               bp_tensor *y, bp_tensor *col)
{
    int n, f, p, F = W->rows, P = col->cols;
    bp_tensor yn; /* image n's output: F x (OH*OW), a view into row n of y */
    for (n = 0; n < x->rows && F > 0; n++) { /* (no filters: y is empty) */
        yn.rows = F;
        yn.cols = P;
        yn.data = y->data + n * y->cols;
        bp__im2col(g, x->data + n * x->cols, col);
        bp__matmul(&yn, W, col, 0); /* y_n = W.col */
        if (b)
            for (f = 0; f < F; f++)
                for (p = 0; p < P; p++) yn.data[f * P + p] += b->data[f];
    }
}

BPDEF void bp_conv2d_forward(const bp_window *g, const bp_tensor *x, const bp_tensor *W, const bp_tensor *b,
                             bp_tensor *y, bp_tensor *col)
{
    const char *fn = "bp_conv2d_forward";
    const bp_tensor *args[5] = {x, W, b, y, col};
    if (bp__bad_tensors(fn, 5, args, "x W b? >y >col") || bp__bad_conv(fn, g, x, W, b, y, col, NULL, NULL) ||
        bp__bad_overlaps(fn, 5, args, "x W b? >y >col", 0))
        return;
    bp__conv2d_forward(g, x, W, b, y, col);
}

/* Backward.  Per image, y_n = W.col_n + b is a Linear layer (roles transposed), so as for Linear:
       dW = sum over n of dy_n . col_n^T      db[f] = sum over n and positions of dy_n[f][.]
       dcol_n = W^T . dy_n                    (C*K*K) x (OH*OW): the gradient of each patch entry
   and each entry of col_n is a copy of one pixel of x_n (or padding), so its gradient goes back to that
   pixel; a pixel under several windows was copied several times and receives the sum.  That is col2im,
   im2col run backwards, adding:  dx_n = col2im(dcol_n).
   The forward caches only x: col_n is rebuilt from it here, in the one-image workspace (keeping B of them
   would cost B times the memory, to save one im2col per image). */
static void bp__col2im(const bp_window *g, const bp_tensor *col, bp_real *image)
{
    int K = g->kernel, S = g->stride, P = g->pad, H = g->height, W = g->width;
    int OW = (W + 2 * P - K) / S + 1, OH = col->cols / OW, c, i, j, oh, ow;
    const bp_real *in = col->data;
    for (c = 0; c < g->channels; c++)
        for (i = 0; i < K; i++)
            for (j = 0; j < K; j++)
                for (oh = 0; oh < OH; oh++)
                    for (ow = 0; ow < OW; ow++, in++) {
                        int h = oh * S - P + i, w = ow * S - P + j;
                        if (h >= 0 && h < H && w >= 0 && w < W) image[(c * H + h) * W + w] += *in;
                    }
}

static void bp__conv2d_backward(const bp_window *g, const bp_tensor *x, const bp_tensor *W, const bp_tensor *dy,
                                bp_tensor *dx, bp_tensor *dW, bp_tensor *db, bp_tensor *col)
{
    int n, f, p, F = W->rows, P = col->cols;
    bp_tensor dyn; /* image n's gradient: F x (OH*OW), a view into row n of dy */
    for (p = 0; p < dW->rows * dW->cols; p++) dW->data[p] = 0; /* the sums below start at 0 */
    for (f = 0; db && f < F; f++) db->data[f] = 0;
    for (p = 0; dx && p < dx->rows * dx->cols; p++) dx->data[p] = 0;
    for (n = 0; n < x->rows && F > 0; n++) { /* (no filters: no gradient flows) */
        dyn.rows = F;
        dyn.cols = P;
        dyn.data = dy->data + n * dy->cols;
        bp__im2col(g, x->data + n * x->cols, col);
        bp__matmul(dW, &dyn, col, BP_TRANS_B | BP_ACCUMULATE); /* dW += dy_n.col^T */
        for (f = 0; db && f < F; f++)
            for (p = 0; p < P; p++) db->data[f] += dyn.data[f * P + p];
        if (dx) {
            bp__matmul(col, W, &dyn, BP_TRANS_A); /* col = W^T.dy_n */
            bp__col2im(g, col, dx->data + n * dx->cols);
        }
    }
}

/* ---- normalisation: the mean and the variance --------------------------------------------------------
   Layer norm and batch norm both need, for a group of n numbers (a row of x, or a column), their mean and
   their biased variance (1/n) sum (v - mean)^2.  Two passes, in double: first the mean, then the squares
   of the differences from it.  The one-pass formula mean(v^2) - mean^2 subtracts two nearly equal numbers
   when the mean is large next to the spread (x + 1000 in float: every digit lost).  The i-th number of
   the group is x.data[start + i*stride]: a row has stride 1, a column stride x.cols.  (The mean of no
   numbers is taken as 0.) */
static void bp__moments(const bp_tensor *x, int start, int n, int stride, double *mean, double *var)
{
    double sum = 0, squares = 0, count = n > 0 ? n : 1;
    int i;
    for (i = 0; i < n; i++) sum += (double)x->data[start + i * stride];
    *mean = sum / count;
    for (i = 0; i < n; i++) {
        double d = (double)x->data[start + i * stride] - *mean;
        squares += d * d;
    }
    *var = squares / count;
}

/* ---- layer normalisation ---------------------------------------------------------------------------
   Forward, each row (one example) on its own, over its C features:
       mean = (1/C) sum_j x_j,   var = (1/C) sum_j (x_j - mean)^2,   rstd = 1/sqrt(var + eps)
       xhat_j = (x_j - mean) rstd   (mean 0, variance 1),   y_j = gamma_j xhat_j + beta_j
   gamma and beta, learned, give each feature back a scale and a shift of its own.
   What the forward caches: mean and rstd, one number each per row.  With x (kept by the caller anyway)
   they rebuild xhat = (x - mean) rstd in the backward without summing again, and rstd, not var, so that
   the backward needs no square root.  (Caching xhat itself would cost a whole B x C tensor.) */
static void bp__layernorm_forward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *beta, bp_real eps,
                                  bp_tensor *y, bp_tensor *mean, bp_tensor *rstd)
{
    int r, j, C = x->cols;
    for (r = 0; r < x->rows; r++) {
        double m, var, s;
        bp__moments(x, r * C, C, 1, &m, &var); /* row r */
        s = 1 / sqrt(var + (double)eps);
        mean->data[r] = (bp_real)m;
        rstd->data[r] = (bp_real)s;
        for (j = 0; j < C; j++) /* (x - m) in double: a float mean of x + 1000 is off by up to 3e-5 */
            y->data[r * C + j] = gamma->data[j] * (bp_real)(((double)x->data[r * C + j] - m) * s) + beta->data[j];
    }
}

BPDEF void bp_layernorm_forward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *beta, bp_real eps,
                                bp_tensor *y, bp_tensor *mean, bp_tensor *rstd)
{
    if (bp__bad_norm("bp_layernorm_forward", 1, x, gamma, beta, eps, y, mean, rstd)) return;
    bp__layernorm_forward(x, gamma, beta, eps, y, mean, rstd);
}

/* Backward, one row, with g_j = dL/dxhat_j = dy_j gamma_j.  Every x_i moves the mean and rstd, and with
   them every xhat_j of its row:
       d mean/dx_i = 1/C,   d var/dx_i = (2/C)(x_i - mean),   d rstd/dx_i = -rstd^3 (x_i - mean)/C
       d xhat_j/dx_i = rstd (1[i = j] - 1/C) - xhat_j xhat_i rstd / C
   so  dx_i = sum_j g_j d xhat_j/dx_i = rstd (g_i - mean_j(g_j) - xhat_i mean_j(g_j xhat_j)).
   The two means are the whole of it: dx is g with its mean taken out and its part along xhat taken out
   (shifting or scaling a row's x does not change its xhat).  The parameters, as for a bias and a weight:
       dbeta_j = sum over rows of dy_j,   dgamma_j = sum over rows of dy_j xhat_j. */
static void bp__layernorm_backward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *mean,
                                   const bp_tensor *rstd, const bp_tensor *dy, bp_tensor *dx, bp_tensor *dgamma,
                                   bp_tensor *dbeta)
{
    int r, j, C = x->cols;
    for (j = 0; j < C && dgamma; j++) dgamma->data[j] = 0;
    for (j = 0; j < C && dbeta; j++) dbeta->data[j] = 0;
    for (r = 0; r < x->rows; r++) {
        bp_real m = mean->data[r], s = rstd->data[r], mean_g, mean_gx;
        double sum_g = 0, sum_gx = 0;
        for (j = 0; j < C; j++) { /* all of row r's dy is read before its dx is written: dx may be dy */
            bp_real dyj = dy->data[r * C + j], xhat = (x->data[r * C + j] - m) * s, g = dyj * gamma->data[j];
            sum_g += (double)g;
            sum_gx += (double)(g * xhat);
            if (dgamma) dgamma->data[j] += dyj * xhat;
            if (dbeta) dbeta->data[j] += dyj;
        }
        mean_g = (bp_real)(sum_g / C);
        mean_gx = (bp_real)(sum_gx / C);
        for (j = 0; j < C; j++) {
            bp_real xhat = (x->data[r * C + j] - m) * s;
            dx->data[r * C + j] = s * (dy->data[r * C + j] * gamma->data[j] - mean_g - xhat * mean_gx);
        }
    }
}

BPDEF void bp_conv2d_backward(const bp_window *g, const bp_tensor *x, const bp_tensor *W, const bp_tensor *dy,
                              bp_tensor *dx, bp_tensor *dW, bp_tensor *db, bp_tensor *col)
{
    const char *fn = "bp_conv2d_backward";
    const bp_tensor *args[7] = {x, W, dy, dx, dW, db, col};
    if (bp__bad_tensors(fn, 7, args, "x W dy >dx? >dW >db? >col") ||
        bp__bad_conv(fn, g, x, W, db, dy, col, dx, dW) || bp__bad_overlaps(fn, 7, args, "x W dy >dx? >dW >db? >col", 0))
        return;
    bp__conv2d_backward(g, x, W, dy, dx, dW, db, col);
}

/* ---- max-pooling -----------------------------------------------------------------------------------
   Forward, per image and channel (a plane of H x W pixels):  y[oh][ow] = the largest x in the K x K
   window at (oh*S - P, ow*S - P), padding counting as -infinity.  argmax[oh][ow] = h*W + w of the pixel
   chosen: the first in row-major order on ties, a NaN over any number (as torch: `v > best || v is NaN`).
   With pad <= K/2 every window holds at least one pixel.  Planes are contiguous: plane n*C + c of x
   starts at (n*C + c)*H*W, of y and argmax at (n*C + c)*OH*OW. */
static void bp__maxpool2d_forward(const bp_window *g, const bp_tensor *x, bp_tensor *y, int *argmax)
{
    int K = g->kernel, S = g->stride, P = g->pad, H = g->height, W = g->width;
    int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1, plane, oh, ow, i, j;
    for (plane = 0; plane < x->rows * g->channels; plane++) {
        const bp_real *in = x->data + plane * H * W;
        for (oh = 0; oh < OH; oh++)
            for (ow = 0; ow < OW; ow++) {
                int h0 = oh * S - P, w0 = ow * S - P, o = (plane * OH + oh) * OW + ow;
                int best = (h0 < 0 ? 0 : h0) * W + (w0 < 0 ? 0 : w0); /* the window's first pixel */
                for (i = h0 < 0 ? 0 : h0; i < h0 + K && i < H; i++)
                    for (j = w0 < 0 ? 0 : w0; j < w0 + K && j < W; j++)
                        if (in[i * W + j] > in[best] || in[i * W + j] != in[i * W + j]) best = i * W + j;
                y->data[o] = in[best];
                argmax[o] = best;
            }
    }
}

BPDEF void bp_maxpool2d_forward(const bp_window *g, const bp_tensor *x, bp_tensor *y, int *argmax)
{
    const char *fn = "bp_maxpool2d_forward";
    const bp_tensor *args[2] = {x, y};
    if (bp__bad_tensors(fn, 2, args, "x >y") || bp__bad_pool(fn, g, x, y, (uintptr_t)argmax, NULL, 0) ||
        bp__bad_overlaps(fn, 2, args, "x >y", 0))
        return;
    bp__maxpool2d_forward(g, x, y, argmax);
}

/* Backward.  y = x[argmax] picks one pixel per window: dy/dx is 1 at that pixel and 0 at the others, so
   each dy goes to its argmax and every other pixel gets 0; a pixel chosen by several overlapping windows
   gets the sum.  The forward cached argmax (where the maxima were), not x. */
static void bp__maxpool2d_backward(const bp_window *g, const int *argmax, const bp_tensor *dy, bp_tensor *dx)
{
    int HW = g->height * g->width, OHOW = dy->cols / g->channels, plane, o;
    for (o = 0; o < dx->rows * dx->cols; o++) dx->data[o] = 0;
    for (plane = 0; plane < dy->rows * g->channels; plane++)
        for (o = plane * OHOW; o < (plane + 1) * OHOW; o++) dx->data[plane * HW + argmax[o]] += dy->data[o];
}

BPDEF void bp_maxpool2d_backward(const bp_window *g, const int *argmax, const bp_tensor *dy, bp_tensor *dx)
{
    const char *fn = "bp_maxpool2d_backward";
    const bp_tensor *args[2] = {dy, dx};
    if (bp__bad_tensors(fn, 2, args, "dy >dx") || bp__bad_pool(fn, g, dx, dy, (uintptr_t)argmax, argmax, 1) ||
        bp__bad_overlaps(fn, 2, args, "dy >dx", 0))
        return;
    bp__maxpool2d_backward(g, argmax, dy, dx);
}

BPDEF void bp_layernorm_backward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *mean,
                                 const bp_tensor *rstd, const bp_tensor *dy, bp_tensor *dx, bp_tensor *dgamma,
                                 bp_tensor *dbeta)
{
    if (bp__bad_norm_backward("bp_layernorm_backward", 1, x, gamma, mean, rstd, dy, dx, dgamma, dbeta)) return;
    bp__layernorm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
}

/* ---- batch normalisation ---------------------------------------------------------------------------
   Forward, training mode: the same formulas as layer norm, but each COLUMN (one feature) normalised over
   the B examples of the batch:  mean_j, var_j (biased, 1/B), rstd_j = 1/sqrt(var_j + eps),
   xhat = (x - mean_j) rstd_j,  y = gamma_j xhat + beta_j.  Every example's output now depends on the
   whole batch.  Cached, for the same reasons as layer norm's: mean and rstd, one number per feature. */
static void bp__batchnorm_forward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *beta, bp_real eps,
                                  bp_tensor *y, bp_tensor *mean, bp_tensor *rstd)
{
    int r, j, C = x->cols;
    for (j = 0; j < C; j++) {
        double m, var, s;
        bp__moments(x, j, x->rows, C, &m, &var); /* column j */
        s = 1 / sqrt(var + (double)eps);
        mean->data[j] = (bp_real)m;
        rstd->data[j] = (bp_real)s;
        for (r = 0; r < x->rows; r++)
            y->data[r * C + j] = gamma->data[j] * (bp_real)(((double)x->data[r * C + j] - m) * s) + beta->data[j];
    }
}

BPDEF void bp_batchnorm_forward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *beta, bp_real eps,
                                bp_tensor *y, bp_tensor *mean, bp_tensor *rstd)
{
    if (bp__bad_norm("bp_batchnorm_forward", 0, x, gamma, beta, eps, y, mean, rstd)) return;
    bp__batchnorm_forward(x, gamma, beta, eps, y, mean, rstd);
}

/* Backward: layer norm's derivation with the sums running down a column instead of along a row.  gamma_j
   is now one number for the whole column, so it comes out of the sums, and they are exactly the
   parameters' gradients:
       dbeta_j = sum_r dy_rj,   dgamma_j = sum_r dy_rj xhat_rj,
       dx_rj = gamma_j rstd_j (dy_rj - (dbeta_j + xhat_rj dgamma_j) / B)
   -- the compact form: one pass for the two sums, one for dx, no B x B Jacobian, no intermediate
   gradients of mean and var. */
static void bp__batchnorm_backward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *mean,
                                   const bp_tensor *rstd, const bp_tensor *dy, bp_tensor *dx, bp_tensor *dgamma,
                                   bp_tensor *dbeta)
{
    int r, j, B = x->rows, C = x->cols;
    for (j = 0; j < C; j++) {
        bp_real m = mean->data[j], s = rstd->data[j], mean_dy, mean_dyx;
        double sum_dy = 0, sum_dyx = 0;
        for (r = 0; r < B; r++) { /* all of column j's dy is read before its dx is written: dx may be dy */
            sum_dy += (double)dy->data[r * C + j];
            sum_dyx += (double)(dy->data[r * C + j] * (x->data[r * C + j] - m) * s);
        }
        if (dbeta) dbeta->data[j] = (bp_real)sum_dy;
        if (dgamma) dgamma->data[j] = (bp_real)sum_dyx;
        mean_dy = (bp_real)(sum_dy / B);
        mean_dyx = (bp_real)(sum_dyx / B);
        for (r = 0; r < B; r++) {
            bp_real xhat = (x->data[r * C + j] - m) * s;
            dx->data[r * C + j] = gamma->data[j] * s * (dy->data[r * C + j] - mean_dy - xhat * mean_dyx);
        }
    }
}

BPDEF void bp_batchnorm_backward(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *mean,
                                 const bp_tensor *rstd, const bp_tensor *dy, bp_tensor *dx, bp_tensor *dgamma,
                                 bp_tensor *dbeta)
{
    if (bp__bad_norm_backward("bp_batchnorm_backward", 0, x, gamma, mean, rstd, dy, dx, dgamma, dbeta)) return;
    bp__batchnorm_backward(x, gamma, mean, rstd, dy, dx, dgamma, dbeta);
}

/* Running statistics.  At evaluation time there may be one example, or the batch may not be typical, so
   batch norm then uses averages kept during training: after each training batch, an exponential moving
   average of its mean and of its UNBIASED variance (times B/(B-1)), as torch's BatchNorm1d keeps them:
       running_mean = (1 - momentum) running_mean + momentum mean_j
       running_var  = (1 - momentum) running_var  + momentum var_j B/(B-1) */
static void bp__batchnorm_update_running(bp_tensor *running_mean, bp_tensor *running_var, const bp_tensor *x,
                                         bp_real momentum)
{
    int j, B = x->rows;
    for (j = 0; j < x->cols; j++) {
        double m, var;
        bp__moments(x, j, B, x->cols, &m, &var);
        running_mean->data[j] = (1 - momentum) * running_mean->data[j] + momentum * (bp_real)m;
        running_var->data[j] = (1 - momentum) * running_var->data[j] + momentum * (bp_real)(var * B / (B - 1));
    }
}

BPDEF void bp_batchnorm_update_running(bp_tensor *running_mean, bp_tensor *running_var, const bp_tensor *x,
                                       bp_real momentum)
{
    const char *fn = "bp_batchnorm_update_running";
    const bp_tensor *args[3] = {running_mean, running_var, x};
    if (bp__bad_tensors(fn, 3, args, ">running_mean >running_var x") ||
        bp__bad_norm_shapes(fn, x, 3, args, ">running_mean >running_var x", "ffx", 0))
        return;
    if (!(momentum >= 0 && momentum <= 1) || x->rows < 2) {
        if (x->rows < 2)
            bp__fail("%s: x is %dx%d (the unbiased variance needs a batch of B >= 2 rows)", fn, x->rows, x->cols);
        else
            bp__fail("%s: momentum is %g (x is %dx%d; momentum must be in [0, 1])", fn, (double)momentum, x->rows,
                     x->cols);
        return;
    }
    if (bp__bad_overlaps(fn, 3, args, ">running_mean >running_var x", 0)) return;
    bp__batchnorm_update_running(running_mean, running_var, x, momentum);
}

/* Evaluation mode: the running statistics in place of the batch's,
       y = gamma_j (x - running_mean_j) / sqrt(running_var_j + eps) + beta_j,
   a fixed affine map of each feature: every example's output depends on that example alone. */
static void bp__batchnorm_inference(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *beta,
                                    const bp_tensor *running_mean, const bp_tensor *running_var, bp_real eps,
                                    bp_tensor *y)
{
    int r, j, C = x->cols;
    for (j = 0; j < C; j++) {
        double m = (double)running_mean->data[j], s = 1 / sqrt((double)running_var->data[j] + (double)eps);
        for (r = 0; r < x->rows; r++)
            y->data[r * C + j] = gamma->data[j] * (bp_real)(((double)x->data[r * C + j] - m) * s) + beta->data[j];
    }
}

BPDEF void bp_batchnorm_inference(const bp_tensor *x, const bp_tensor *gamma, const bp_tensor *beta,
                                  const bp_tensor *running_mean, const bp_tensor *running_var, bp_real eps,
                                  bp_tensor *y)
{
    const char *fn = "bp_batchnorm_inference";
    const bp_tensor *args[6] = {x, gamma, beta, running_mean, running_var, y};
    if (bp__bad_tensors(fn, 6, args, "x gamma beta running_mean running_var >y") ||
        bp__bad_norm_shapes(fn, x, 6, args, "x gamma beta running_mean running_var >y", "xffffx", 0) ||
        bp__bad_eps(fn, eps, "x", x))
        return;
    args[0] = bp__exactly(y, x) ? NULL : x; /* y may be x */
    if (bp__bad_overlaps(fn, 6, args, "x? gamma beta running_mean running_var >y", 0)) return;
    bp__batchnorm_inference(x, gamma, beta, running_mean, running_var, eps, y);
}

/* ---- dropout ---------------------------------------------------------------------------------------
   Forward, training only: each element kept with probability 1 - p (a fresh uniform draw u, kept if
   u >= p), else set to 0; the kept ones scaled by 1/(1-p) -- "inverted" dropout:
       mask_i = 1/(1-p) if kept, 0 if dropped;   y_i = x_i mask_i
   The scaling makes E[mask_i] = (1-p) * 1/(1-p) = 1, so E[y_i] = x_i: on average the next layer sees the
   same size of input as at evaluation time, where dropout is simply left out (y = x, nothing rescaled).
   What the forward caches: the mask.  The backward must drop the same elements, and the draws cannot be
   taken again (rng has moved on); the mask holds the scale too. */
static void bp__dropout_forward(const bp_tensor *x, bp_real p, bp_rng *rng, bp_tensor *mask, bp_tensor *y)
{
    bp_real scale = (bp_real)(1 / (1 - (double)p));
    int i, n = x->rows * x->cols;
    for (i = 0; i < n; i++) {
        mask->data[i] = bp_rng_uniform(rng) < (double)p ? 0 : scale;
        y->data[i] = x->data[i] * mask->data[i];
    }
}

BPDEF void bp_dropout_forward(const bp_tensor *x, bp_real p, bp_rng *rng, bp_tensor *mask, bp_tensor *y)
{
    const char *fn = "bp_dropout_forward";
    const bp_tensor *args[3] = {x, mask, y};
    if (bp__bad_args(fn, 3, args, "x >mask >y", BP__SAME_SHAPE | BP__IN_PLACE) ||
        bp__bad_overlap(fn, "mask", mask, "x", x, 0) || bp__bad_rng(fn, rng, "x", x))
        return;
    if (!(p >= 0 && p < 1)) {
        bp__fail("%s: p is %g (x is %dx%d; p must be in [0, 1))", fn, (double)p, x->rows, x->cols);
        return;
    }
    bp__dropout_forward(x, p, rng, mask, y);
}

/* Backward:  y_i = x_i mask_i with mask_i a constant, so  dx_i = dy_i mask_i: the gradient flows only
   through the kept elements, scaled by the same 1/(1-p). */
static void bp__dropout_backward(const bp_tensor *mask, const bp_tensor *dy, bp_tensor *dx)
{
    int i, n = mask->rows * mask->cols;
    for (i = 0; i < n; i++) dx->data[i] = dy->data[i] * mask->data[i];
}

BPDEF void bp_dropout_backward(const bp_tensor *mask, const bp_tensor *dy, bp_tensor *dx)
{
    const bp_tensor *args[3] = {mask, dy, dx};
    if (bp__bad_args("bp_dropout_backward", 3, args, "mask dy >dx", BP__SAME_SHAPE | BP__IN_PLACE)) return;
    bp__dropout_backward(mask, dy, dx);
}

/* ===================================================================================================
   4. Losses
   =================================================================================================== */

/* ---- mean squared error ----------------------------------------------------------------------------
   Forward:  L = (1/N) sum_i (yhat_i - y_i)^2  over all N = rows*cols elements, summed in double (float
   would lose digits over large batches).  The mean of nothing is taken as 0. */
static bp_real bp__mse_forward(const bp_tensor *yhat, const bp_tensor *y)
{
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum = 0; /* 8 running sums: see bp__sum_squares */
    int i, k, n = y->rows * y->cols;
    for (i = 0; i + 8 <= n; i += 8)
        for (k = 0; k < 8; k++) {
            double d = (double)yhat->data[i + k] - (double)y->data[i + k];
            lane[k] += d * d;
        }
    for (k = 0; k < 8; k++) sum += lane[k];
    for (; i < n; i++) { /* the last n % 8 straight into the sum: a sample's loss stays in a register */
        double d = (double)yhat->data[i] - (double)y->data[i];
        sum += d * d;
    }
    return n > 0 ? (bp_real)(sum * (1.0 / n)) : 0; /* (1/n: divided while the sum runs) */
}

BPDEF bp_real bp_mse_forward(const bp_tensor *yhat, const bp_tensor *y)
{
    const bp_tensor *args[2] = {yhat, y};
    if (bp__bad_args("bp_mse_forward", 2, args, "yhat y", BP__SAME_SHAPE)) return (bp_real)NAN;
    return bp__mse_forward(yhat, y);
}

/* Backward:  dL/dyhat_i = (1/N) * 2 (yhat_i - y_i).  Nothing cached beyond yhat and y themselves. */
static void bp__mse_backward(const bp_tensor *yhat, const bp_tensor *y, bp_tensor *dyhat)
{
    int i, n = y->rows * y->cols;
    for (i = 0; i < n; i++) dyhat->data[i] = (bp_real)(2.0 / n) * (yhat->data[i] - y->data[i]);
}

BPDEF void bp_mse_backward(const bp_tensor *yhat, const bp_tensor *y, bp_tensor *dyhat)
{
    const bp_tensor *args[3] = {yhat, y, dyhat};
    if (bp__bad_args("bp_mse_backward", 3, args, "yhat y >dyhat", BP__SAME_SHAPE | BP__IN_PLACE)) return;
    bp__mse_backward(yhat, y, dyhat);
}

/* ---- softmax + cross-entropy ----------------------------------------------------------------------- */

/* The largest of x[0..n-1]: a row's maximum, for the forward below.  One running maximum is a chain of n
   steps, each waiting for the one before; 8 side by side (x[i] to lane i mod 8, as bp__sum_squares sums)
   are independent and fill a vector register, and the largest of the 8 ends it: the softmax on rows of
   1024 3x faster with this and the sum below.  The maximum is the same number either way (the sum adds
   in another order: its last bit may differ).  A row under 32 takes the chain: the lanes would not fill. */
static bp_real bp__row_max(const bp_real *x, int n)
{
    bp_real lane[8], m = x[0];
    int i = 1, k;
    if (n >= 32) {
        for (k = 0; k < 8; k++) lane[k] = x[k];
        for (i = 8; i + 8 <= n; i += 8)
            for (k = 0; k < 8; k++) lane[k] = x[i + k] > lane[k] ? x[i + k] : lane[k];
        for (m = lane[0], k = 1; k < 8; k++) m = lane[k] > m ? lane[k] : m;
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

/* x[0] + ... + x[n-1] in double, in 8 lanes the same way (a row of 32 or more) */
static double bp__row_sum(const bp_real *x, int n)
{
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum = 0;
    int i = 0, k;
    if (n >= 32) {
        for (; i + 8 <= n; i += 8)
            for (k = 0; k < 8; k++) lane[k] += (double)x[i + k];
        for (k = 0; k < 8; k++) sum += lane[k];
    }
    for (; i < n; i++) sum += (double)x[i];
    return sum;
}

/* Forward, for each row r of logits l with label y:  p_j = e^(l_j - m) / S,  S = sum_j e^(l_j - m),
   m = max_j l_j (subtracting m changes nothing but keeps every e^ <= 1);  loss_r = -log p_y, computed as
   log S - (l_y - m), never as log of a rounded p_y (which could be 0).  Returns the mean over the batch.
   16 rows at a time: the e^ loop runs over all of their numbers at once (a row of 10 is too short to
   vectorise well), and one log serves them: log S_1 + ... + log S_16 = log (S_1 S_2 ... S_16), each S
   between 1 and C, so the product cannot overflow a double. */
static bp_real bp__softmax_xent_forward(const bp_tensor *logits, const int *labels, bp_tensor *probs)
{
    double total = 0, prod, sum;
    int r, r0, r1, j, C = logits->cols;
    for (r0 = 0; r0 < logits->rows; r0 = r1) {
        bp_real *p = probs->data + r0 * C, m, inv;
        r1 = r0 + 16 < logits->rows ? r0 + 16 : logits->rows;
        for (r = r0; r < r1; r++) {
            const bp_real *l = logits->data + r * C;
            m = bp__row_max(l, C);
            total -= (double)l[labels[r]] - (double)m;               /* before p overwrites l (in place) */
            for (j = 0; j < C; j++) p[(r - r0) * C + j] = l[j] - m;
        }
        for (j = 0; j < (r1 - r0) * C; j++) p[j] = bp__exp(p[j], 0); /* e^(l_j - m), then / S */
        for (prod = 1, r = 0; r < r1 - r0; r++, p += C) {
            sum = bp__row_sum(p, C);
            prod *= sum;
            inv = (bp_real)(1 / sum);
            for (j = 0; j < C; j++) p[j] *= inv; /* / S */
        }
        total += log(prod);
    }
    return logits->rows > 0 ? (bp_real)(total / logits->rows) : 0;
}

BPDEF bp_real bp_softmax_xent_forward(const bp_tensor *logits, const int *labels, bp_tensor *probs)
{
    const char *fn = "bp_softmax_xent_forward";
    const bp_tensor *args[2] = {logits, probs};
    if (bp__bad_args(fn, 2, args, "logits >probs", BP__SAME_SHAPE | BP__IN_PLACE) ||
        bp__bad_labels(fn, labels, "logits", logits))
        return (bp_real)NAN;
    return bp__softmax_xent_forward(logits, labels, probs);
}

/* Backward:  d loss_r / d l_j = p_j - 1[j = y]  (the softmax's Jacobian and the log's 1/p_y cancel to
   this), and the mean divides by the batch:  dlogits = (probs - onehot(labels)) / batch.
   The forward cached probs; the logits themselves are not needed.  16 rows at a time, as the forward: the
   scaling by 1/batch runs over all of their numbers at once, then each row's label entry is set from its
   p_y, kept aside first (in place, d overwrites p). */
static void bp__softmax_xent_backward(const bp_tensor *probs, const int *labels, bp_tensor *dlogits)
{
    int r, r0, r1, j, C = probs->cols;
    double scale = 1.0 / probs->rows;
    bp_real p_label[16];
    for (r0 = 0; r0 < probs->rows; r0 = r1) {
        const bp_real *p = probs->data + r0 * C;
        bp_real *d = dlogits->data + r0 * C;
        r1 = r0 + 16 < probs->rows ? r0 + 16 : probs->rows;
        for (r = r0; r < r1; r++) p_label[r - r0] = p[(r - r0) * C + labels[r]];
        for (j = 0; j < (r1 - r0) * C; j++) d[j] = (bp_real)((double)p[j] * scale); /* p / batch */
        for (r = r0; r < r1; r++) /* the label's entry: (p_y - 1) / batch */
            d[(r - r0) * C + labels[r]] = (bp_real)(((double)p_label[r - r0] - 1) * scale);
    }
}

BPDEF void bp_softmax_xent_backward(const bp_tensor *probs, const int *labels, bp_tensor *dlogits)
{
    const char *fn = "bp_softmax_xent_backward";
    const bp_tensor *args[2] = {probs, dlogits};
    if (bp__bad_args(fn, 2, args, "probs >dlogits", BP__SAME_SHAPE | BP__IN_PLACE) ||
        bp__bad_labels(fn, labels, "probs", probs))
        return;
    bp__softmax_xent_backward(probs, labels, dlogits);
}

/* ===================================================================================================
   5. Optimizers
   =================================================================================================== */

/* SGD: a small step against the gradient,  w -= lr * dw. */
static void bp__sgd_step(bp_tensor *w, const bp_tensor *dw, bp_real lr)
{
    int i, n = w->rows * w->cols;
    for (i = 0; i < n; i++) w->data[i] -= lr * dw->data[i];
}

BPDEF void bp_sgd_step(bp_tensor *w, const bp_tensor *dw, bp_real lr)
{
    const bp_tensor *args[2] = {w, dw};
    if (bp__bad_args("bp_sgd_step", 2, args, ">w dw", BP__SAME_SHAPE)) return;
    bp__sgd_step(w, dw, lr);
}

/* Momentum:  vel = mu*vel + dw;  w -= lr*vel.  vel is a running sum of past gradients, each older one
   weighted down by mu, so steps build up speed where the gradients agree and cancel where they oscillate. */
static void bp__momentum_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *vel, bp_real lr, bp_real mu)
{
    int i, n = w->rows * w->cols;
    for (i = 0; i < n; i++) {
        vel->data[i] = mu * vel->data[i] + dw->data[i];
        w->data[i] -= lr * vel->data[i];
    }
}

BPDEF void bp_momentum_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *vel, bp_real lr, bp_real mu)
{
    const bp_tensor *args[3] = {w, dw, vel};
    if (bp__bad_args("bp_momentum_step", 3, args, ">w dw >vel", BP__SAME_SHAPE)) return;
    bp__momentum_step(w, dw, vel, lr, mu);
}

/* A square root with + - * / only.  Adam needs sqrt in its loop over every weight, and libm's sqrt may
   set errno (for x < 0): that alone keeps gcc and clang from vectorising the loop unless the program is
   built with -fno-math-errno.  This one vectorises, and is within 3 ulps of sqrt (2 with FMA).  Newton's
   method on f(y) = 1/y^2 - x, y <- y (3 - x y^2) / 2, finds y = 1/sqrt(x) and doubles the correct
   digits at each step; it starts within 3.5% with the "fast inverse square root" of
   Quake III: x's bits read as an integer are roughly a scaled log2(x), so halving them and subtracting
   from a constant gives log2 of 1/sqrt(x).  3 steps reach float's precision, 4 double's; sqrt(x) = x y.
   For x = 0 it returns 0; x must be finite and not negative, and 0 or at least 1e-37 (not subnormal). */
static bp_real bp__sqrt(bp_real x)
{
    bp_real y;
    int k;
    if (sizeof x == 4) {
        uint32_t bits;
        memcpy(&bits, &x, sizeof bits);
        bits = 0x5f3759df - (bits >> 1);
        memcpy(&y, &bits, sizeof y);
    } else {
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits);
        bits = 0x5fe6eb50c7b537a9 - (bits >> 1);
        memcpy(&y, &bits, sizeof y);
    }
    for (k = 0; k < (sizeof x == 4 ? 3 : 4); k++) y = y * (3 - x * y * y) / 2;
    return x * y;
}

/* Adam:  m = b1*m + (1-b1)*dw;  v = b2*v + (1-b2)*dw^2;  w -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps).
   m and v are running means of the gradient and of its square; both start at 0, so early on they are too
   small by the factor (1 - b^t), and dividing by it removes that bias.  The step m/sqrt(v) has about the
   same size for every parameter, whatever the scale of its gradient.  The corrections are folded as
   PyTorch does:  lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).  A weight whose gradient stays 0 has its
   m and v decay towards 0; below `tiny` they are set to 0, before they reach the subnormal numbers, whose
   arithmetic is many times slower on x86 (why this changes no weight: see bp_adam_step). */
static void bp__adam_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *m, bp_tensor *v, int t, bp_real lr,
                          bp_real beta1, bp_real beta2, bp_real eps)
{
    bp_real step_size = (bp_real)((double)lr / (1 - pow((double)beta1, t)));
    bp_real bias2_sqrt = (bp_real)sqrt(1 - pow((double)beta2, t));
    bp_real tiny = sizeof(bp_real) == 4 ? (bp_real)1e-36 : (bp_real)1e-300;
    int i, n = w->rows * w->cols;
    for (i = 0; i < n; i++) {
        bp_real g = dw->data[i];
        bp_real mi = beta1 * m->data[i] + (1 - beta1) * g, vi = beta2 * v->data[i] + (1 - beta2) * g * g;
        m->data[i] = mi = -tiny < mi && mi < tiny ? 0 : mi;
        v->data[i] = vi = vi < tiny ? 0 : vi;
        w->data[i] -= step_size * mi / (bp__sqrt(vi) / bias2_sqrt + eps);
    }
}

/* Why setting m or v to 0 below tiny (1e-36 in float, 1e-300 in double: well above the subnormals, which
   start below 1.2e-38 and 2.2e-308) changes no weight beyond rounding, for eps > 0:
     - m: the step dropped is lr/(1-b1^t) * |m| / (sqrt(v)/sqrt(1-b2^t) + eps) < lr/(1-b1) * 1e-36 / eps,
       1e-27 lr at the usual b1 = 0.9 and eps = 1e-8: less than the rounding of any weight above 1e-20 lr.
     - v: in the step's denominator sqrt(v)/sqrt(1-b2^t) + eps, the term dropped is below
       1e-18 / sqrt(1-b2) = 3.2e-17 (b2 = 0.999) next to eps = 1e-8: the step changes by less than 3.2e-9
       of itself, where float's rounding of the step alone is 6e-8 of it.
   In double the same bounds, with 1e-300, are nil.  A gradient of exactly 0 from the start gives m = v = 0
   and no step, as in PyTorch.  Subnormal numbers can still arise from a caller's subnormal inputs, or from
   a gradient element below about 1e-19 (1e-154 in double), whose square is one; only in that step.
   tests/test_optim.c (adam_zero_gradients) runs 100,000 steps of zero gradients and checks both claims. */
BPDEF void bp_adam_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *m, bp_tensor *v, int t, bp_real lr,
                        bp_real beta1, bp_real beta2, bp_real eps)
{
    const char *fn = "bp_adam_step";
    const bp_tensor *args[4] = {w, dw, m, v};
    if (bp__bad_args(fn, 4, args, ">w dw >m >v", BP__SAME_SHAPE)) return;
    if (t < 1 || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
        if (t < 1) bp__fail("%s: t is %d (w is %dx%d; t counts steps from 1)", fn, t, w->rows, w->cols);
        else bp__fail("%s: beta1 is %g and beta2 is %g (w is %dx%d; both must be in [0, 1))", fn, (double)beta1,
                      (double)beta2, w->rows, w->cols);
        return;
    }
    bp__adam_step(w, dw, m, v, t, lr, beta1, beta2, eps);
}

/* The sum of x[0..n-1] squared, in double, as 8 running sums added at the end: one running sum must add
   its terms one after another, each waiting for the last (the compiler may not reorder them: the result
   would round differently), where 8 independent ones fill a vector register: about 10x faster. */
static double bp__sum_squares(const bp_real *x, int n)
{
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, sum = 0;
    int i, k;
    for (i = 0; i + 8 <= n; i += 8)
        for (k = 0; k < 8; k++) lane[k] += (double)x[i + k] * (double)x[i + k];
    for (; i < n; i++) lane[0] += (double)x[i] * (double)x[i];
    for (k = 0; k < 8; k++) sum += lane[k];
    return sum;
}

/* RMSprop:  v = alpha*v + (1-alpha)*dw^2;  w -= lr * dw / (sqrt(v) + eps).  v is a running mean of the
   squared gradient, so sqrt(v) is the gradient's typical size, and each parameter's step, lr * dw/sqrt(v),
   is about lr whatever the scale of its gradient: Adam without its mean of dw (m) and without the bias
   correction (so the first steps, while v is still small, are larger: 10 lr at step 1 for alpha 0.99).
   As in Adam: bp__sqrt (it vectorises), and v set to 0 below `tiny` rather than become subnormal (a
   weight whose gradient stays 0; sqrt(tiny) = 1e-18 next to eps changes no step: see bp_adam_step). */
static void bp__rmsprop_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *v, bp_real lr, bp_real alpha, bp_real eps)
{
    bp_real tiny = sizeof(bp_real) == 4 ? (bp_real)1e-36 : (bp_real)1e-300;
    int i, n = w->rows * w->cols;
    for (i = 0; i < n; i++) {
        bp_real g = dw->data[i], vi = alpha * v->data[i] + (1 - alpha) * g * g;
        v->data[i] = vi = vi < tiny ? 0 : vi;
        w->data[i] -= lr * g / (bp__sqrt(vi) + eps);
    }
}

BPDEF void bp_rmsprop_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *v, bp_real lr, bp_real alpha, bp_real eps)
{
    const char *fn = "bp_rmsprop_step";
    const bp_tensor *args[3] = {w, dw, v};
    if (bp__bad_args(fn, 3, args, ">w dw >v", BP__SAME_SHAPE) || bp__bad_eps(fn, eps, "w", w)) return;
    if (!(alpha >= 0 && alpha < 1)) {
        bp__fail("%s: alpha is %g (w is %dx%d; alpha must be in [0, 1))", fn, (double)alpha, w->rows, w->cols);
        return;
    }
    bp__rmsprop_step(w, dw, v, lr, alpha, eps);
}

/* Gradient clipping:  norm = sqrt(sum of every gradient element squared), all gradients taken together as
   one vector (summed in double); if norm > max_norm, every gradient is scaled by max_norm/(norm + 1e-6).
   The direction of the step is kept, and only its length capped. */
static bp_real bp__clip_grad_norm(bp_tensor *const *grads, int count, bp_real max_norm)
{
    double sum = 0, norm;
    int g, i;
    for (g = 0; g < count; g++) sum += bp__sum_squares(grads[g]->data, grads[g]->rows * grads[g]->cols);
    norm = sqrt(sum);
    if (norm > (double)max_norm) {
        bp_real scale = (bp_real)((double)max_norm / (norm + 1e-6));
        for (g = 0; g < count; g++)
            for (i = 0; i < grads[g]->rows * grads[g]->cols; i++) grads[g]->data[i] *= scale;
    }
    return (bp_real)norm;
}

BPDEF bp_real bp_clip_grad_norm(bp_tensor *const *grads, int count, bp_real max_norm)
{
    const char *fn = "bp_clip_grad_norm";
    if (bp__bad_grads(fn, grads, count)) return (bp_real)NAN;
    if (!(max_norm >= 0)) {
        bp__fail("%s: max_norm is %g (it must be >= 0)", fn, (double)max_norm);
        return (bp_real)NAN;
    }
    return bp__clip_grad_norm(grads, count, max_norm);
}

/* ===================================================================================================
   6. Starting weights: random numbers and initialisation
   =================================================================================================== */

BPDEF void bp_rng_seed(bp_rng *rng, uint64_t seed)
{
    if (bp__bad_rng("bp_rng_seed", rng, NULL, NULL)) return;
    rng->state = seed;
}

/* splitmix64 (Steele, Lea, Flood 2014): a Weyl sequence, then a bijective mix of its bits. */
BPDEF uint64_t bp_rng_next_u64(bp_rng *rng)
{
    uint64_t z;
    if (bp__bad_rng("bp_rng_next_u64", rng, NULL, NULL)) return 0;
    z = (rng->state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

BPDEF double bp_rng_uniform(bp_rng *rng)
{
    if (bp__bad_rng("bp_rng_uniform", rng, NULL, NULL)) return 0;
    return (double)(bp_rng_next_u64(rng) >> 11) * (1.0 / 9007199254740992.0); /* top 53 bits / 2^53 */
}

/* Natural log of x > 0 with + - * / only, so it rounds the same everywhere (libm's log may not):
   x = m * 2^e with m in [sqrt(1/2), sqrt(2)), then ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...)
   with s = (m-1)/(m+1), |s| < 0.172: 20 terms are far below double rounding. */
static double bp__log(double x)
{
    int e, k;
    double m = frexp(x, &e), s, s2, term, sum = 0;
    if (m < 0.70710678118654752440) {
        m *= 2;
        e -= 1;
    }
    s = (m - 1) / (m + 1);
    s2 = s * s;
    term = s;
    for (k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= s2;
    }
    return 2 * sum + e * 0.69314718055994530942;
}

/* Marsaglia's polar method: a point (u, v) uniform in the unit disc gives u * sqrt(-2 ln s / s), s = u^2+v^2,
   a standard normal.  u and v have 26 bits so s is exact whatever the compiler does with u*u + v*v. */
BPDEF double bp_rng_normal(bp_rng *rng)
{
    double u, v, s;
    if (bp__bad_rng("bp_rng_normal", rng, NULL, NULL)) return 0;
    do {
        u = (double)((int64_t)(bp_rng_next_u64(rng) >> 38) - 33554432) / 33554432.0; /* [-1, 1) */
        v = (double)((int64_t)(bp_rng_next_u64(rng) >> 38) - 33554432) / 33554432.0;
        s = u * u + v * v;
    } while (s >= 1 || s <= 0); /* outside the disc, or its centre */
    return u * sqrt(-2 * bp__log(s) / s);
}

BPDEF void bp_tensor_randn(bp_tensor *t, bp_rng *rng, bp_real std)
{
    const char *fn = "bp_tensor_randn";
    size_t i, n;
    if (bp__bad_tensor(fn, "t", t) || bp__bad_rng(fn, rng, "t", t)) return;
    if (!(std >= 0 && (double)std <= 1e30)) { /* also refuses NaN and infinity */
        bp__fail("%s: std is %g (t is %dx%d; std must be finite and >= 0)", fn, (double)std, t->rows, t->cols);
        return;
    }
    n = bp__count(t);
    for (i = 0; i < n; i++) t->data[i] = (bp_real)((double)std * bp_rng_normal(rng));
}

/* Both initialisers are randn with a variance chosen so that, for inputs of unit variance, the layer's
   outputs (He: after the ReLU) have unit variance too: Var(z_j) = fan_in * Var(W) * Var(x). */
BPDEF void bp_init_he(bp_tensor *W, bp_rng *rng)
{
    if (bp__bad_tensor("bp_init_he", "W", W) || bp__bad_rng("bp_init_he", rng, "W", W)) return;
    if (W->rows == 0) return; /* no inputs: nothing to draw (and no division by 0) */
    bp_tensor_randn(W, rng, (bp_real)sqrt(2.0 / (double)W->rows));
}

BPDEF void bp_init_xavier(bp_tensor *W, bp_rng *rng)
{
    if (bp__bad_tensor("bp_init_xavier", "W", W) || bp__bad_rng("bp_init_xavier", rng, "W", W)) return;
    if (W->rows + W->cols == 0) return;
    bp_tensor_randn(W, rng, (bp_real)sqrt(2.0 / ((double)W->rows + (double)W->cols)));
}

/* ===================================================================================================
   7. The gradient check
   =================================================================================================== */

/* The definition of the derivative, evaluated: nudge one parameter by +-eps, rerun the whole forward pass
   (loss), take the slope, and compare it with grad.  The central difference has error O(eps^2) (none for
   a quadratic), against the rounding error O(machine epsilon / eps) of subtracting two losses. */
static bp_real bp__gradcheck(bp_real (*loss)(void *ctx), void *ctx, bp_tensor *param, const bp_tensor *grad,
                             bp_real eps)
{
    double worst = 0;
    int i, n = param->rows * param->cols;
    for (i = 0; i < n; i++) {
        const bp_real original = param->data[i];
        double plus, minus, numeric, analytic, denom, err;
        param->data[i] = original + eps;
        plus = (double)loss(ctx);
        param->data[i] = original - eps;
        minus = (double)loss(ctx);
        param->data[i] = original; /* restored bit for bit */
        /* divide by the step actually taken: original +- eps is rounded to bp_real (0 if eps is too small) */
        numeric = (plus - minus) / ((double)(bp_real)(original + eps) - (double)(bp_real)(original - eps));
        analytic = (double)grad->data[i];
        denom = fabs(numeric) > fabs(analytic) ? fabs(numeric) : fabs(analytic);
        err = fabs(numeric - analytic) / (denom > 1e-8 ? denom : 1e-8);
        if (err > worst || err != err) worst = err; /* a NaN stays: the result is NaN, never a pass */
    }
    return (bp_real)worst;
}

BPDEF bp_real bp_gradcheck(bp_real (*loss)(void *ctx), void *ctx, bp_tensor *param, const bp_tensor *grad,
                           bp_real eps)
{
    const char *fn = "bp_gradcheck";
    const bp_tensor *args[2] = {param, grad};
    if (!loss) {
        bp__fail("%s: loss is NULL", fn);
        return (bp_real)HUGE_VAL;
    }
    if (bp__bad_args(fn, 2, args, ">param grad", BP__SAME_SHAPE)) return (bp_real)HUGE_VAL;
    if (!(eps > 0 && (double)eps <= 1e30)) {
        bp__fail("%s: eps is %g (param is %dx%d; eps must be finite and > 0)", fn, (double)eps, param->rows,
                 param->cols);
        return (bp_real)HUGE_VAL;
    }
    return bp__gradcheck(loss, ctx, param, grad, eps);
}

/* ===================================================================================================
   8. The guards: argument checks and the error handler
   ===================================================================================================
   Every public function checks its arguments before it touches anything, and reports a bad call through
   the handler with one line that names the function and the shapes.  The handler may return: then the
   function returns too, having written nothing. */

#if defined(__GNUC__) || defined(__clang__)
__attribute__((noreturn))
#endif
static void bp__default_error_handler(const char *message)
{
#ifndef BACKPROP_NO_STDIO
    fputs(message, stderr);
    fputc('\n', stderr);
#else
    (void)message; /* no stderr to print to: install a handler */
#endif
    abort();
}

static bp_error_fn bp__error_handler = bp__default_error_handler; /* the library's only mutable global */

BPDEF bp_error_fn bp_set_error_handler(bp_error_fn fn)
{
    bp_error_fn previous = bp__error_handler;
    bp__error_handler = fn ? fn : bp__default_error_handler;
    return previous == bp__default_error_handler ? (bp_error_fn)0 : previous;
}

/* ---- the messages' formatter -----------------------------------------------------------------------
   The part of vsnprintf this file uses (%s %d %lu %x %02x %p %g %.0f %%), written out so that nothing
   here needs <stdio.h> (BACKPROP_NO_STDIO).  Writes at most size - 1 characters and a terminating 0. */

typedef struct bp__text {
    char *out;
    size_t size, len;
} bp__text;

static void bp__put(bp__text *t, char c)
{
    if (t->len + 1 < t->size) t->out[t->len++] = c;
}

static void bp__put_str(bp__text *t, const char *s)
{
    while (*s) bp__put(t, *s++);
}

/* v in base 10 or 16, at least width digits (zero-padded) */
static void bp__put_uint(bp__text *t, uint64_t v, unsigned base, int width)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v > 0);
    while (width-- > n) bp__put(t, '0');
    while (n > 0) bp__put(t, digits[--n]);
}

/* v * 10^p for v > 0, in two steps where 10^p alone would overflow or underflow */
static double bp__times_pow10(double v, int p)
{
    if (p > 300) return v * 1e300 * pow(10, p - 300);
    if (p < -300) return v / 1e300 / pow(10, -p - 300);
    return p >= 0 ? v * pow(10, p) : v / pow(10, -p);
}

/* x rounded to a whole number, halfway cases to even (as printf rounds) */
static double bp__round_half_even(double x)
{
    double whole = floor(x);
    return x - whole > 0.5 || (x - whole == 0.5 && fmod(whole, 2) != 0) ? whole + 1 : whole;
}

/* %g: 6 significant digits, trailing zeros dropped; exponent form below 1e-4 and from 1e6 on.  As printf's,
   except that a value within a rounding error of a halfway case (v * 10^p is computed in double) may
   round the other way in the 6th digit. */
static void bp__put_g(bp__text *t, double v)
{
    char d[6];
    int e, i, last;
    double digits;
    if (v != v) {
        bp__put_str(t, "nan");
        return;
    }
    if (v < 0) {
        bp__put(t, '-');
        v = -v;
    }
    if (v == 0 || v - v != 0) { /* (v - v is NaN only for infinity here: no limit to compare with, which x87's
                                    excess precision would move) */
        bp__put_str(t, v == 0 ? "0" : "inf");
        return;
    }
    e = (int)floor(log10(v)); /* v = d.ddddd * 10^e: 6 digits are v * 10^(5-e), 100000 .. 999999 */
    digits = bp__round_half_even(bp__times_pow10(v, 5 - e));
    if (digits >= 1e6) digits = bp__round_half_even(bp__times_pow10(v, 5 - ++e)); /* log10 was off by one */
    else if (digits < 1e5) digits = bp__round_half_even(bp__times_pow10(v, 5 - --e));
    for (i = 5; i >= 0; i--, digits = floor(digits / 10)) d[i] = (char)('0' + (int)fmod(digits, 10));
    for (last = 5; last > 0 && d[last] == '0'; last--) continue; /* the last digit that is not a trailing 0 */
    if (e < -4 || e >= 6) { /* d.ddddde+XX */
        bp__put(t, d[0]);
        if (last > 0) bp__put(t, '.');
        for (i = 1; i <= last; i++) bp__put(t, d[i]);
        bp__put(t, 'e');
        bp__put(t, e < 0 ? '-' : '+');
        bp__put_uint(t, (uint64_t)(e < 0 ? -e : e), 10, 2);
    } else if (e >= 0) { /* ddd.ddd */
        for (i = 0; i <= e; i++) bp__put(t, d[i]);
        if (last > e) bp__put(t, '.');
        for (i = e + 1; i <= last; i++) bp__put(t, d[i]);
    } else { /* 0.000ddd */
        bp__put_str(t, "0.");
        for (i = -1; i > e; i--) bp__put(t, '0');
        for (i = 0; i <= last; i++) bp__put(t, d[i]);
    }
}

static void bp__vformat(char *out, size_t size, const char *format, va_list args)
{
    bp__text t;
    t.out = out;
    t.size = size;
    t.len = 0;
    for (; *format; format++) {
        int width = 0, is_long = 0, no_decimals = 0;
        if (*format != '%') {
            bp__put(&t, *format);
            continue;
        }
        while (*++format >= '0' && *format <= '9') width = 10 * width + (*format - '0');
        if (*format == '.' && format[1] == '0') {
            no_decimals = 1;
            format += 2;
        }
        if (*format == 'l') {
            is_long = 1;
            format++;
        }
        switch (*format) {
        case 's': bp__put_str(&t, va_arg(args, const char *)); break;
        case 'd': {
            int v = va_arg(args, int);
            if (v < 0) bp__put(&t, '-');
            bp__put_uint(&t, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 10, width);
            break;
        }
        case 'u': bp__put_uint(&t, is_long ? va_arg(args, unsigned long) : va_arg(args, unsigned), 10, width); break;
        case 'x': bp__put_uint(&t, va_arg(args, unsigned), 16, width); break;
        case 'p':
            bp__put_str(&t, "0x");
            bp__put_uint(&t, (uint64_t)(uintptr_t)va_arg(args, const void *), 16, 1);
            break;
        case 'g': bp__put_g(&t, va_arg(args, double)); break;
        case 'f': { /* only %.0f, of whole numbers below 2^64 (byte and element counts) */
            double v = va_arg(args, double);
            BP_ASSERT(no_decimals);
            if (v >= 0 && v < 1.8e19) bp__put_uint(&t, (uint64_t)(v + 0.5), 10, 1);
            else bp__put_g(&t, v);
            break;
        }
        case '%': bp__put(&t, '%'); break;
        default: BP_ASSERT(0); break; /* a conversion this formatter does not know */
        }
    }
    if (size > 0) out[t.len] = 0;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 3, 4)))
#endif
static void bp__format(char *out, size_t size, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    bp__vformat(out, size, format, args);
    va_end(args);
}

/* ---- the checks ------------------------------------------------------------------------------------ */

static void bp__fail(const char *format, ...)
{
    char message[512];
    va_list args;
    va_start(args, format);
    bp__vformat(message, sizeof message, format, args);
    va_end(args);
    bp__error_handler(message);
}

/* A usable tensor: not NULL, sizes >= 0, at most INT_MAX elements, data present unless it is empty. */
static int bp__usable(const bp_tensor *t)
{
    int64_t count;
    if (!t) return 0;
    count = (int64_t)t->rows * t->cols;
    return (t->rows | t->cols) >= 0 && count <= INT_MAX && (t->data || count == 0); /* (rows | cols) >= 0: both are */
}

/* Reports, and returns 1, unless t is usable. */
static int bp__bad_tensor(const char *fn, const char *name, const bp_tensor *t)
{
    if (bp__usable(t)) return 0;
    if (!t) bp__fail("%s: %s is NULL", fn, name);
    else if (t->rows < 0 || t->cols < 0)
        bp__fail("%s: %s is %dx%d (sizes must not be negative)", fn, name, t->rows, t->cols);
    else if ((int64_t)t->rows * t->cols > INT_MAX)
        bp__fail("%s: %s is %dx%d (more than INT_MAX elements)", fn, name, t->rows, t->cols);
    else bp__fail("%s: %s is %dx%d but its data is NULL (never allocated, or freed)", fn, name, t->rows, t->cols);
    return 1;
}

static int bp__same_shape(const bp_tensor *a, const bp_tensor *b)
{
    return a->rows == b->rows && a->cols == b->cols;
}

static int bp__bad_shapes(const char *fn, const char *a_name, const bp_tensor *a, const char *b_name,
                          const bp_tensor *b)
{
    if (bp__same_shape(a, b)) return 0;
    bp__fail("%s: %s is %dx%d but %s is %dx%d (they must have the same shape)", fn, a_name, a->rows, a->cols,
             b_name, b->rows, b->cols);
    return 1;
}

/* Do the elements of a and b share any memory? */
static int bp__overlap(const bp_tensor *a, const bp_tensor *b)
{
    uintptr_t a0 = (uintptr_t)a->data, b0 = (uintptr_t)b->data;
    uintptr_t a1 = a0 + bp__count(a) * sizeof(bp_real), b1 = b0 + bp__count(b) * sizeof(bp_real);
    return a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1;
}

/* Output `out` must not share memory with `in`; with in_place_ok it may be exactly in (same data, same
   shape): elementwise functions read each element before they write it. */
static int bp__bad_overlap(const char *fn, const char *out_name, const bp_tensor *out, const char *in_name,
                           const bp_tensor *in, int in_place_ok)
{
    if (!bp__overlap(out, in)) return 0;
    if (in_place_ok && out->data == in->data && bp__same_shape(out, in)) return 0;
    bp__fail("%s: %s (%dx%d) shares memory with %s (%dx%d)%s", fn, out_name, out->rows, out->cols, in_name,
             in->rows, in->cols,
             in_place_ok ? " (only exactly in place is allowed)" : " (an output must not overlap an input)");
    return 1;
}

/* A function's n arguments are named in one string: in order, separated by one space, with '>' before the
   name of an output (written by the function) and '?' after the name of an argument that may be NULL (not
   given: skipped by every check), e.g. "x W b? >z".  The checks read it only when they need to (a NULL, or
   two arguments that share memory), so that checking costs little on tiny tensors. */
static const char *bp__word(const char *names, int i) /* where the i-th name starts */
{
    for (; i > 0; names++)
        if (*names == ' ') i--;
    return names;
}

static int bp__is_output(const char *names, int i) { return *bp__word(names, i) == '>'; }

static int bp__is_optional(const char *names, int i)
{
    const char *w = bp__word(names, i), *end = w;
    while (*end && *end != ' ') end++;
    return end > w && end[-1] == '?';
}

static const char *bp__name(const char *names, int i, char *name) /* the i-th name, unmarked, for a message */
{
    const char *w = bp__word(names, i);
    size_t n = 0;
    for (; *w && *w != ' ' && n < 15; w++)
        if (*w != '>' && *w != '?') name[n++] = *w;
    name[n] = 0;
    return name;
}

/* Every argument usable (bp__bad_tensor), unless it is optional and NULL. */
static int bp__bad_tensors(const char *fn, int n, const bp_tensor *const *args, const char *names)
{
    char name[16];
    int i;
    for (i = 0; i < n; i++)
        if (!bp__usable(args[i]) && !(!args[i] && bp__is_optional(names, i)))
            return bp__bad_tensor(fn, bp__name(names, i, name), args[i]);
    return 0;
}

/* No output shares memory with another argument (inputs may share memory with each other); with in_place,
   an output may be exactly an input.  (bp__overlap's test, with each argument's extent found once: this
   runs on every call, and the tiny networks of games and devices call often; 8% fewer instructions for a
   4-4-3 network's whole training step than bp__overlap per pair.) */
static int bp__bad_overlaps(const char *fn, int n, const bp_tensor *const *args, const char *names, int in_place)
{
    char out_name[16], in_name[16];
    uintptr_t start[8], end[8];
    int i, j, shared = 0;
    BP_ASSERT(n <= 8);
    for (i = 0; i < n; i++) { /* args[i] spans [start, end); absent or empty: an extent nothing overlaps */
        size_t bytes = args[i] ? bp__count(args[i]) * sizeof(bp_real) : 0;
        start[i] = bytes ? (uintptr_t)args[i]->data : UINTPTR_MAX;
        end[i] = bytes ? start[i] + bytes : 0;
    }
    for (i = 0; i < n; i++) /* the usual case first, without a branch per pair: nothing shared */
        for (j = i + 1; j < n; j++) shared |= (start[i] < end[j]) & (start[j] < end[i]);
    if (!shared) return 0;
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++) {
            int out, in, one_output;
            if (start[i] >= end[j] || start[j] >= end[i]) continue; /* no overlap: the usual case */
            out = bp__is_output(names, i) ? i : j; /* the message names the output first */
            in = out == i ? j : i;
            if (!bp__is_output(names, out)) continue; /* two inputs may share memory */
            one_output = !bp__is_output(names, in);
            if (in_place && one_output && start[i] == start[j] && bp__same_shape(args[i], args[j])) continue;
            return bp__bad_overlap(fn, bp__name(names, out, out_name), args[out], bp__name(names, in, in_name),
                                   args[in], in_place && one_output);
        }
    return 0;
}

/* The whole guard of most functions: bp__bad_tensors; with BP__SAME_SHAPE, every argument the shape of the
   first; then bp__bad_overlaps (with BP__IN_PLACE, an output may be exactly an input). */
static int bp__bad_args(const char *fn, int n, const bp_tensor *const *args, const char *names, int rules)
{
    char first[16], other[16];
    int i;
    if (bp__bad_tensors(fn, n, args, names)) return 1;
    if (rules & BP__SAME_SHAPE)
        for (i = 1; i < n; i++)
            if (args[i] && !bp__same_shape(args[0], args[i]))
                return bp__bad_shapes(fn, bp__name(names, 0, first), args[0], bp__name(names, i, other), args[i]);
    return bp__bad_overlaps(fn, n, args, names, (rules & BP__IN_PLACE) != 0);
}

/* The guard of both matmuls: usable tensors, known flags, the shapes of a product, C apart from A and B. */
static int bp__bad_matmul(const char *fn, const bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags)
{
    const bp_tensor *args[3] = {C, A, B};
    int ta = (flags & BP_TRANS_A) != 0, tb = (flags & BP_TRANS_B) != 0, M, K, K2, N;
    if (bp__bad_tensors(fn, 3, args, ">C A B")) return 1;
    M = ta ? A->cols : A->rows;
    K = ta ? A->rows : A->cols;
    K2 = tb ? B->cols : B->rows;
    N = tb ? B->rows : B->cols;
    if (flags & ~(BP_TRANS_A | BP_TRANS_B | BP_ACCUMULATE)) {
        bp__fail("%s: unknown flags 0x%x (C is %dx%d, A is %dx%d, B is %dx%d; allowed: BP_TRANS_A, BP_TRANS_B, "
                 "BP_ACCUMULATE)",
                 fn, (unsigned)flags, C->rows, C->cols, A->rows, A->cols, B->rows, B->cols);
        return 1;
    }
    if (K != K2) {
        bp__fail("%s: %s is %dx%d but %s is %dx%d (op(A).cols must equal op(B).rows)", fn, ta ? "A^T" : "A", M, K,
                 tb ? "B^T" : "B", K2, N);
        return 1;
    }
    if (C->rows != M || C->cols != N) {
        bp__fail("%s: C is %dx%d but %s.%s is %dx%d (C must have the shape of the product)", fn, C->rows,
                 C->cols, ta ? "A^T" : "A", tb ? "B^T" : "B", M, N);
        return 1;
    }
    return bp__bad_overlaps(fn, 3, args, ">C A B", 0);
}

/* The Linear layer's shapes: x.W must be defined, b 1 x out and z batch x out; backward (dW given): db,
   dz the same, and dW the shape of W, dx (if given) that of x. */
static int bp__bad_linear(const char *fn, const bp_tensor *x, const bp_tensor *W, const bp_tensor *b,
                          const bp_tensor *z, const bp_tensor *dx, const bp_tensor *dW)
{
    const char *b_name = dW ? "db" : "b", *z_name = dW ? "dz" : "z";
    if (x->cols != W->rows) {
        bp__fail("%s: x is %dx%d but W is %dx%d (x.cols must equal W.rows)", fn, x->rows, x->cols, W->rows,
                 W->cols);
        return 1;
    }
    if (z->rows != x->rows || z->cols != W->cols) {
        bp__fail("%s: x is %dx%d and W is %dx%d but %s is %dx%d (%s must be %dx%d%s)", fn, x->rows, x->cols,
                 W->rows, W->cols, z_name, z->rows, z->cols, z_name, x->rows, W->cols, dW ? ", the shape of z" : "");
        return 1;
    }
    if (dW && bp__bad_shapes(fn, "W", W, "dW", dW)) return 1;
    if (dx && bp__bad_shapes(fn, "x", x, "dx", dx)) return 1;
    if (b && (b->rows != 1 || b->cols != W->cols)) {
        bp__fail("%s: W is %dx%d but %s is %dx%d (%s must be 1x%d)", fn, W->rows, W->cols, b_name, b->rows,
                 b->cols, b_name, W->cols);
        return 1;
    }
    return 0;
}

/* Every label must be a class index of `of` (batch x classes). */
static int bp__bad_labels(const char *fn, const int *labels, const char *of_name, const bp_tensor *of)
{
    int r;
    if (!labels && of->rows > 0) {
        bp__fail("%s: labels is NULL (%s is %dx%d: one label per row needed)", fn, of_name, of->rows, of->cols);
        return 1;
    }
    for (r = 0; r < of->rows; r++)
        if (labels[r] < 0 || labels[r] >= of->cols) {
            bp__fail("%s: labels[%d] is %d (%s is %dx%d: labels must be in 0..%d)", fn, r, labels[r], of_name,
                     of->rows, of->cols, of->cols - 1);
            return 1;
        }
    return 0;
}

/* count usable gradients that share no memory: shared elements would be counted, and scaled, twice */
static int bp__bad_grads(const char *fn, bp_tensor *const *grads, int count)
{
    char name[32], other[32];
    int g, h;
    if (count < 0 || (count > 0 && !grads)) {
        bp__fail("%s: %d gradients at %p (count must be >= 0, grads non-NULL)", fn, count, (const void *)grads);
        return 1;
    }
    for (g = 0; g < count; g++) {
        bp__format(name, sizeof name, "grads[%d]", g);
        if (bp__bad_tensor(fn, name, grads[g])) return 1;
        for (h = 0; h < g; h++) {
            bp__format(other, sizeof other, "grads[%d]", h);
            if (bp__bad_overlap(fn, name, grads[g], other, grads[h], 0)) return 1;
        }
    }
    return 0;
}

/* rng must not be NULL; the message shows the tensor being filled, if any */
static int bp__bad_rng(const char *fn, const bp_rng *rng, const char *name, const bp_tensor *t)
{
    if (rng) return 0;
    if (t) bp__fail("%s: rng is NULL (%s is %dx%d)", fn, name, t->rows, t->cols);
    else bp__fail("%s: rng is NULL", fn);
    return 1;
}

/* A window the functions accept: channels, height, width, kernel and stride >= 1, pad >= 0, the sizes'
   products within INT_MAX, the kernel within the padded image; for pooling also pad <= kernel/2 (every
   window then holds a pixel of the image, as torch requires).  (The products in double: no overflow.) */
static int bp__bad_window(const char *fn, const bp_window *g, int pooling)
{
    const char *why = 0;
    if (!g) {
        bp__fail("%s: the window g is NULL", fn);
        return 1;
    }
    if (g->channels < 1 || g->height < 1 || g->width < 1 || g->kernel < 1 || g->stride < 1 || g->pad < 0)
        why = "channels, height, width, kernel and stride must be >= 1, pad >= 0";
    else if ((double)g->height + 2.0 * g->pad > INT_MAX || (double)g->width + 2.0 * g->pad > INT_MAX ||
             (double)g->channels * g->height * g->width > INT_MAX ||
             (double)g->channels * g->kernel * g->kernel > INT_MAX)
        why = "more than INT_MAX elements";
    else if (g->kernel > g->height + 2 * g->pad || g->kernel > g->width + 2 * g->pad)
        why = "the kernel is larger than the padded image";
    else if (pooling && g->pad > g->kernel / 2)
        why = "pooling needs pad <= kernel/2";
    if (!why) return 0;
    bp__fail("%s: window %dx%dx%d (CxHxW), kernel %d, stride %d, pad %d (%s)", fn, g->channels, g->height,
             g->width, g->kernel, g->stride, g->pad, why);
    return 1;
}

/* t (unless NULL: not given) must be rows x cols, as the window says */
static int bp__bad_window_shape(const char *fn, const bp_window *g, const char *name, const bp_tensor *t,
                                double rows, double cols)
{
    if (!t || (t->rows == rows && t->cols == cols)) return 0;
    bp__fail("%s: %s is %dx%d but must be %.0fx%.0f (window %dx%dx%d (CxHxW), kernel %d, stride %d, pad %d)", fn,
             name, t->rows, t->cols, rows, cols, g->channels, g->height, g->width, g->kernel, g->stride, g->pad);
    return 1;
}

/* The convolution's shapes: x B x (C*H*W), W F x (C*K*K) (B = x.rows, F = W.rows), b 1 x F, y B x
   (F*OH*OW), col (C*K*K) x (OH*OW); backward (dW given): the same for db and dy, and dW, dx (if given)
   the shapes of W and x. */
static int bp__bad_conv(const char *fn, const bp_window *g, const bp_tensor *x, const bp_tensor *W,
                        const bp_tensor *b, const bp_tensor *y, const bp_tensor *col, const bp_tensor *dx,
                        const bp_tensor *dW)
{
    double B = x->rows, F = W->rows, CHW, CKK, P;
    if (bp__bad_window(fn, g, 0)) return 1;
    CHW = (double)g->channels * g->height * g->width;
    CKK = (double)g->channels * g->kernel * g->kernel;
    P = (double)((g->height + 2 * g->pad - g->kernel) / g->stride + 1) *
        (double)((g->width + 2 * g->pad - g->kernel) / g->stride + 1);
    return bp__bad_window_shape(fn, g, "x", x, B, CHW) || bp__bad_window_shape(fn, g, "W", W, F, CKK) ||
           bp__bad_window_shape(fn, g, dW ? "db" : "b", b, 1, F) ||
           bp__bad_window_shape(fn, g, dW ? "dy" : "y", y, B, F * P) ||
           bp__bad_window_shape(fn, g, "col", col, CKK, P) || bp__bad_window_shape(fn, g, "dW", dW, F, CKK) ||
           bp__bad_window_shape(fn, g, "dx", dx, B, CHW);
}

/* Max-pooling's shapes and argmax: x (backward: dx) B x (C*H*W), y (dy) B x (C*OH*OW); argmax, one int per
   element of y, not NULL (unless y is empty) and apart from the outputs; backward: every index within the
   H x W plane (they say where dx is written).  argmax comes as an address (a pointer gcc would take as
   read, and warn of the forward's uninitialised array); the backward passes it again as indices, to check. */
static int bp__bad_pool(const char *fn, const bp_window *g, const bp_tensor *x, const bp_tensor *y,
                        uintptr_t argmax, const int *indices, int backward)
{
    const char *x_name = backward ? "dx" : "x", *y_name = backward ? "dy" : "y";
    size_t i, n;
    uintptr_t a0, a1, x0 = (uintptr_t)x->data, x1 = x0 + bp__count(x) * sizeof(bp_real);
    uintptr_t y0 = (uintptr_t)y->data, y1 = y0 + bp__count(y) * sizeof(bp_real);
    if (bp__bad_window(fn, g, 1)) return 1;
    if (bp__bad_window_shape(fn, g, x_name, x, x->rows, (double)g->channels * g->height * g->width) ||
        bp__bad_window_shape(fn, g, y_name, y, x->rows,
                             (double)g->channels * ((g->height + 2 * g->pad - g->kernel) / g->stride + 1) *
                                 ((g->width + 2 * g->pad - g->kernel) / g->stride + 1)))
        return 1;
    n = bp__count(y);
    if (n == 0) return 0;
    if (!argmax) {
        bp__fail("%s: argmax is NULL (%s is %dx%d: one index per element needed)", fn, y_name, y->rows, y->cols);
        return 1;
    }
    a0 = argmax;
    a1 = a0 + n * sizeof(int);
    if ((a0 < x1 && x0 < a1 && x0 < x1) || (!backward && a0 < y1 && y0 < a1)) {
        bp__fail("%s: argmax (%.0f ints) shares memory with %s (%s is %dx%d, %s is %dx%d)", fn, (double)n,
                 a0 < x1 && x0 < a1 ? x_name : y_name, x_name, x->rows, x->cols, y_name, y->rows, y->cols);
        return 1;
    }
    for (i = 0; backward && i < n; i++) {
        int at = indices[i];
        if (at < 0 || at >= g->height * g->width) {
            bp__fail("%s: argmax[%.0f] is %d (dy is %dx%d: each index must be in 0..%d, a pixel of the %dx%d plane)",
                     fn, (double)i, at, y->rows, y->cols, g->height * g->width - 1, g->height, g->width);
            return 1;
        }
    }
    return 0;
}

/* out is exactly in: the same data and the same shape (the in-place calls a function allows) */
static int bp__exactly(const bp_tensor *out, const bp_tensor *in)
{
    return out->data == in->data && bp__same_shape(out, in);
}

/* eps must be > 0: it is added to a variance (or a root of one) that may be 0, then divided by */
static int bp__bad_eps(const char *fn, bp_real eps, const char *name, const bp_tensor *t)
{
    if (eps > 0) return 0;
    bp__fail("%s: eps is %g (%s is %dx%d; eps must be > 0)", fn, (double)eps, name, t->rows, t->cols);
    return 1;
}

/* The normalisation layers' shapes, x being B x C.  kinds has one letter per argument: 'x' the shape of
   x, 'f' one number per feature (1 x C), 's' a statistic: one per row (B x 1) if by_row (layer norm),
   else one per feature (1 x C, batch norm).  Absent (NULL, optional) arguments are skipped. */
static int bp__bad_norm_shapes(const char *fn, const bp_tensor *x, int n, const bp_tensor *const *args,
                               const char *names, const char *kinds, int by_row)
{
    char name[16];
    int i;
    for (i = 0; i < n; i++) {
        int per_row = kinds[i] == 's' && by_row, rows = kinds[i] == 'x' || per_row ? x->rows : 1;
        int cols = per_row ? 1 : x->cols;
        if (args[i] && (args[i]->rows != rows || args[i]->cols != cols)) {
            bp__fail("%s: x is %dx%d but %s is %dx%d (it must be %dx%d)", fn, x->rows, x->cols,
                     bp__name(names, i, name), args[i]->rows, args[i]->cols, rows, cols);
            return 1;
        }
    }
    return 0;
}

/* The network's config: a known loss and optimizer, a batch of at least 1, finite rates, Adam's betas in
   [0, 1).  After bp_mlp_new also the optimizer the network's state was made for. */
static int bp__bad_mlp_config(const char *fn, const bp_mlp_config *c)
{
    if (c->max_batch < 1 || (c->loss != BP_LOSS_MSE && c->loss != BP_LOSS_SOFTMAX_XENT) ||
        c->optimizer < BP_OPT_SGD || c->optimizer > BP_OPT_ADAM) {
        bp__fail("%s: config.max_batch is %d, config.loss %d, config.optimizer %d (max_batch >= 1; a BP_LOSS_ "
                 "and a BP_OPT_ value)", fn, c->max_batch, c->loss, c->optimizer);
        return 1;
    }
    if (!(c->lr >= 0 && (double)c->lr <= 1e30) || !(c->momentum >= 0 && (double)c->momentum <= 1e30) ||
        !(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1) ||
        !(c->eps >= 0 && (double)c->eps <= 1e30)) {
        bp__fail("%s: config.lr is %g, momentum %g, beta1 %g, beta2 %g, eps %g (all finite and >= 0, the betas "
                 "below 1)", fn, (double)c->lr, (double)c->momentum, (double)c->beta1, (double)c->beta2,
                 (double)c->eps);
        return 1;
    }
    return 0;
}

/* net given; x usable, n x inputs with n <= max_batch, apart from the network's memory (which is written) */
static int bp__bad_mlp_input(const char *fn, const bp_mlp *net, const bp_tensor *x)
{
    if (!net) {
        bp__fail("%s: net is NULL", fn);
        return 1;
    }
    if (bp__bad_tensor(fn, "x", x)) return 1;
    if (x->cols != net->inputs || x->rows > net->layer[0].a.rows) {
        bp__fail("%s: x is %dx%d but the network takes n x %d, n <= %d (max_batch)", fn, x->rows, x->cols,
                 net->inputs, net->layer[0].a.rows);
        return 1;
    }
    return bp__bad_overlap(fn, "the network", &net->all, "x", x, 0);
}

/* The training targets the loss takes (y, n x outputs, for MSE; labels for softmax + cross-entropy), and
   not the other; the config still valid, with the optimizer the network was made for. */
static int bp__bad_mlp_targets(const char *fn, const bp_mlp *net, const bp_tensor *x, const bp_tensor *y,
                               const int *labels)
{
    const bp_mlp_config *c = &net->config;
    const bp_mlp_layer *first = &net->layer[0];
    bp_tensor out;
    if (bp__bad_mlp_config(fn, c)) return 1;
    if ((first->mW.rows > 0) != (c->optimizer != BP_OPT_SGD) || (first->vW.rows > 0) != (c->optimizer == BP_OPT_ADAM)) {
        bp__fail("%s: config.optimizer is %d, not the one the network was made for (bp_mlp_new sizes its state)",
                 fn, c->optimizer);
        return 1;
    }
    out.rows = x->rows;
    out.cols = net->outputs;
    out.data = NULL;
    if (c->loss == BP_LOSS_SOFTMAX_XENT) {
        if (y) {
            bp__fail("%s: y given, but config.loss is BP_LOSS_SOFTMAX_XENT (its targets are labels; y NULL)", fn);
            return 1;
        }
        return bp__bad_labels(fn, labels, "the output", &out);
    }
    if (labels) {
        bp__fail("%s: labels given, but config.loss is BP_LOSS_MSE (its targets are y; labels NULL)", fn);
        return 1;
    }
    if (bp__bad_tensor(fn, "y", y)) return 1;
    if (!bp__same_shape(y, &out)) {
        bp__fail("%s: x is %dx%d but y is %dx%d (y must be %dx%d: a row of %d outputs per row of x)", fn, x->rows,
                 x->cols, y->rows, y->cols, x->rows, net->outputs, net->outputs);
        return 1;
    }
    return bp__bad_overlap(fn, "the network", &net->all, "y", y, 0);
}

/* The whole guard of both norms' forwards (by_row: layer norm).  y may be x. */
static int bp__bad_norm(const char *fn, int by_row, const bp_tensor *x, const bp_tensor *gamma,
                        const bp_tensor *beta, bp_real eps, const bp_tensor *y, const bp_tensor *mean,
                        const bp_tensor *rstd)
{
    const bp_tensor *args[6] = {x, gamma, beta, y, mean, rstd};
    if (bp__bad_tensors(fn, 6, args, "x gamma beta >y >mean >rstd") ||
        bp__bad_norm_shapes(fn, x, 6, args, "x gamma beta >y >mean >rstd", "xffxss", by_row) ||
        bp__bad_eps(fn, eps, "x", x))
        return 1;
    if (bp__exactly(y, x)) args[0] = NULL; /* in place: y is x, and must not overlap anything else */
    return bp__bad_overlaps(fn, 6, args, "x? gamma beta >y >mean >rstd", 0);
}

/* The whole guard of both norms' backwards.  dx may be dy; dgamma and dbeta may be NULL. */
static int bp__bad_norm_backward(const char *fn, int by_row, const bp_tensor *x, const bp_tensor *gamma,
                                 const bp_tensor *mean, const bp_tensor *rstd, const bp_tensor *dy,
                                 const bp_tensor *dx, const bp_tensor *dgamma, const bp_tensor *dbeta)
{
    const bp_tensor *args[8] = {x, gamma, mean, rstd, dy, dx, dgamma, dbeta};
    if (bp__bad_tensors(fn, 8, args, "x gamma mean rstd dy >dx >dgamma? >dbeta?") ||
        bp__bad_norm_shapes(fn, x, 8, args, "x gamma mean rstd dy >dx >dgamma? >dbeta?", "xfssxxff", by_row))
        return 1;
    if (bp__exactly(dx, dy)) args[4] = NULL; /* in place: dx is dy */
    return bp__bad_overlaps(fn, 8, args, "x gamma mean rstd dy? >dx >dgamma? >dbeta?", 0);
}

/* ===================================================================================================
   9. Files: .npy, .npz and IDX (left out with BACKPROP_NO_STDIO)
   =================================================================================================== */
#ifndef BACKPROP_NO_STDIO

/* ---- .npy files ------------------------------------------------------------------------------------
   The format (numpy's NEP 1): the 6 bytes "\x93NUMPY", a version byte pair (1.0, 2.0 or 3.0), the header
   length (2 bytes little-endian in 1.0, 4 bytes after), then the header: a Python dict literal such as
       {'descr': '<f4', 'fortran_order': False, 'shape': (784, 256), }
   padded with spaces to a multiple of 64 bytes and ending in '\n'; then the raw elements.  Each element
   is read and written byte by byte in the order the descr says, so this works on a machine of either
   endianness.  Nothing here calls the error handler for a bad file: it is data, not a bug. */

static BP__THREAD_LOCAL char bp__failure[320]; /* bp_failure_reason's text: per thread where the compiler can */

BPDEF const char *bp_failure_reason(void) { return bp__failure; }

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
static void bp__file_fail(const char *format, ...)
{
    char *c;
    va_list args;
    va_start(args, format);
    bp__vformat(bp__failure, sizeof bp__failure, format, args);
    va_end(args);
    /* the text quotes the file (a key, a dtype): its control characters must not break the one line */
    for (c = bp__failure; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
}

/* path opened for reading in binary mode (no newline translation on Windows); NULL after reporting: a NULL
   path to the handler (a programming error), a file that cannot be opened to the failure text. */
static FILE *bp__open_for_reading(const char *fn, const char *path)
{
    FILE *f;
    if (!path) {
        bp__fail("%s: path is NULL", fn);
        return NULL;
    }
    f = fopen(path, "rb");
    if (!f) bp__file_fail("%s: %s: cannot open: %s", fn, path, strerror(errno));
    return f;
}

/* The number of bytes from f's position to its end, the position left where it was; -1 if the stream
   cannot tell (a pipe).  A double: exact far past any file size.  On Windows long, ftell's type, is 32
   bits and ftell fails past 2 GiB, so the 64-bit calls are used there. */
static double bp__bytes_left(FILE *f)
{
#ifdef _WIN32
    long long here = _ftelli64(f), end;
    if (here < 0 || _fseeki64(f, 0, SEEK_END) != 0) return -1;
    end = _ftelli64(f);
    if (_fseeki64(f, here, SEEK_SET) != 0 || end < here) return -1;
#else
    long here = ftell(f), end;
    if (here < 0 || fseek(f, 0, SEEK_END) != 0) return -1;
    end = ftell(f);
    if (fseek(f, here, SEEK_SET) != 0 || end < here) return -1;
#endif
    return (double)(end - here);
}

/* The IEEE-754 float (size 4) or double (size 8) stored in bytes, little- or big-endian, as a double. */
static double bp__decode(const unsigned char *bytes, int size, int big_endian)
{
    uint64_t bits = 0;
    int b;
    for (b = 0; b < size; b++) bits |= (uint64_t)bytes[big_endian ? size - 1 - b : b] << (8 * b);
    if (size == 4) {
        uint32_t bits32 = (uint32_t)bits;
        float f;
        memcpy(&f, &bits32, 4);
        return (double)f;
    } else {
        double d;
        memcpy(&d, &bits, 8);
        return d;
    }
}

/* x as sizeof(bp_real) little-endian bytes. */
static void bp__encode(bp_real x, unsigned char *bytes)
{
    uint64_t bits;
    size_t b;
    if (sizeof(bp_real) == 4) {
        uint32_t bits32;
        memcpy(&bits32, &x, 4);
        bits = bits32;
    } else {
        memcpy(&bits, &x, 8);
    }
    for (b = 0; b < sizeof(bp_real); b++) bytes[b] = (unsigned char)(bits >> (8 * b));
}

/* The CRC-32 of ZIP (and of gzip and PNG): the reflected polynomial 0xedb88320, four bits at a time.
   crc is the CRC of the bytes before p (0 to start). */
static uint32_t bp__crc32(uint32_t crc, const unsigned char *p, size_t n)
{
    static const uint32_t table[16] = {0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u,
                                       0x4db26158u, 0x5005713cu, 0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu,
                                       0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ table[crc & 15];
        crc = (crc >> 4) ^ table[crc & 15];
    }
    return ~crc;
}

/* The start of t's .npy file in out (128 bytes): magic, version 1.0, the header's length, then the dict
   padded with spaces to a multiple of 64 bytes and ending in '\n'.  Returns the bytes written.  With
   vector set, a 1 x n t is written as the 1-D array (n,) (a PyTorch bias, for bp_mlp_save). */
static size_t bp__npy_start(const bp_tensor *t, int vector, unsigned char *out)
{
    char *dict = (char *)out + 10;
    int len, padded;
    if (vector)
        bp__format(dict, 118, "{'descr': '<f%d', 'fortran_order': False, 'shape': (%d,), }", (int)sizeof(bp_real),
                   t->cols);
    else
        bp__format(dict, 118, "{'descr': '<f%d', 'fortran_order': False, 'shape': (%d, %d), }",
                   (int)sizeof(bp_real), t->rows, t->cols);
    len = (int)strlen(dict);
    padded = (10 + len + 1 + 63) / 64 * 64 - 10; /* magic+version+length, dict, '\n': a multiple of 64 */
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)(padded & 0xff);
    out[9] = (unsigned char)(padded >> 8);
    memset(dict + len, ' ', (size_t)(padded - len));
    dict[padded - 1] = '\n';
    return 10 + (size_t)padded;
}

/* The length of t's .npy file, in bytes. */
static double bp__npy_size(const bp_tensor *t, int vector)
{
    unsigned char header[128];
    return (double)bp__npy_start(t, vector, header) + (double)bp__count(t) * sizeof(bp_real);
}

/* Writes t as a .npy file to f; with f NULL writes nothing.  If crc is not NULL, *crc becomes the CRC-32
   of the bytes.  1 if every byte was written. */
static int bp__npy_write(FILE *f, const bp_tensor *t, int vector, uint32_t *crc)
{
    unsigned char chunk[4096];
    size_t i = 0, n = bp__count(t), used = bp__npy_start(t, vector, chunk);
    if (crc) *crc = 0;
    for (;;) {
        if (used + sizeof(bp_real) > sizeof chunk || i == n) {
            if (crc) *crc = bp__crc32(*crc, chunk, used);
            if (f && fwrite(chunk, 1, used, f) != used) return 0;
            used = 0;
            if (i == n) return 1;
        }
        bp__encode(t->data[i++], chunk + used);
        used += sizeof(bp_real);
    }
}

/* Saving is atomic: a file is written to path.part, then renamed over path, so a failed or interrupted
   save never destroys the file that was there before (a previous checkpoint, say).  bp__open_part opens
   path.part (binary: no newline translation on Windows), *part receiving its allocated name; NULL after
   reporting.  bp__close_part closes f and, if everything was written (ok), renames; otherwise it removes
   path.part.  It frees part; 0 on success, -1 after reporting. */
static FILE *bp__open_part(const char *fn, const char *path, char **part)
{
    size_t path_len = strlen(path);
    FILE *f;
    *part = (char *)BP_MALLOC(path_len + 6);
    if (!*part) {
        bp__file_fail("%s: %s: out of memory", fn, path);
        return NULL;
    }
    memcpy(*part, path, path_len);
    memcpy(*part + path_len, ".part", 6);
    f = fopen(*part, "wb");
    if (!f) {
        bp__file_fail("%s: %s: cannot open %s for writing: %s", fn, path, *part, strerror(errno));
        BP_FREE(*part);
    }
    return f;
}

static int bp__close_part(const char *fn, const char *path, char *part, FILE *f, int ok)
{
    if (fclose(f) != 0) ok = 0;
    if (!ok) {
        bp__file_fail("%s: %s: writing failed (disk full?): %s", fn, path, strerror(errno));
        remove(part);
        BP_FREE(part);
        return -1;
    }
    if (rename(part, path) != 0) {
        int renamed = 0;
#ifdef _WIN32
        /* Windows' rename does not replace an existing file (POSIX's does, atomically) */
        if (errno == EEXIST || errno == EACCES) renamed = remove(path) == 0 && rename(part, path) == 0;
#endif
        if (!renamed) {
            bp__file_fail("%s: %s: cannot rename %s to it: %s", fn, path, part, strerror(errno));
            remove(part);
            BP_FREE(part);
            return -1;
        }
    }
    BP_FREE(part);
    bp__failure[0] = 0;
    return 0;
}

BPDEF int bp_tensor_save_npy(const bp_tensor *t, const char *path)
{
    const char *fn = "bp_tensor_save_npy";
    char *part;
    FILE *f;
    if (bp__bad_tensor(fn, "t", t)) return -1;
    if (!path) {
        bp__fail("%s: path is NULL (t is %dx%d)", fn, t->rows, t->cols);
        return -1;
    }
    f = bp__open_part(fn, path, &part);
    if (!f) return -1;
    return bp__close_part(fn, path, part, f, bp__npy_write(f, t, 0, NULL));
}

/* The header dict, parsed: a small recursive-descent reader for exactly the three keys numpy writes. */
typedef struct bp__npy_header {
    const char *where;    /* how the failure text starts: "bp_tensor_load_npy: PATH" */
    const char *at, *end; /* the unread part of the header */
    int item_size, big_endian, fortran, ndim;
    long long shape[2];
} bp__npy_header;

static void bp__npy_skip_space(bp__npy_header *h)
{
    while (h->at < h->end && (*h->at == ' ' || *h->at == '\t' || *h->at == '\n' || *h->at == '\r')) h->at++;
}

static int bp__npy_accept(bp__npy_header *h, char c)
{
    bp__npy_skip_space(h);
    if (h->at < h->end && *h->at == c) {
        h->at++;
        return 1;
    }
    return 0;
}

/* A quoted string ('...' or "...") copied into out (at most size-1 characters). */
static int bp__npy_string(bp__npy_header *h, char *out, size_t size)
{
    char quote;
    size_t n = 0;
    bp__npy_skip_space(h);
    if (h->at >= h->end || (*h->at != '\'' && *h->at != '"')) return 0;
    quote = *h->at++;
    while (h->at < h->end && *h->at != quote) {
        if (n + 1 >= size) return 0;
        out[n++] = *h->at++;
    }
    if (h->at >= h->end) return 0;
    h->at++;
    out[n] = 0;
    return 1;
}

/* The dict's value for one key.  Returns 0 and sets the failure text on anything unexpected. */
static int bp__npy_value(bp__npy_header *h, const char *key)
{
    if (strcmp(key, "descr") == 0) {
        char descr[16];
        if (!bp__npy_string(h, descr, sizeof descr)) {
            bp__file_fail("%s: the header's descr is not a short string", h->where);
            return 0;
        }
        if ((descr[0] != '<' && descr[0] != '>') || descr[1] != 'f' || (descr[2] != '4' && descr[2] != '8') ||
            descr[3]) {
            bp__file_fail("%s: dtype '%s' is not float32 or float64 ('<f4', '<f8', '>f4', '>f8')", h->where,
                          descr);
            return 0;
        }
        h->big_endian = descr[0] == '>';
        h->item_size = descr[2] - '0';
    } else if (strcmp(key, "fortran_order") == 0) {
        bp__npy_skip_space(h);
        if (h->end - h->at >= 4 && memcmp(h->at, "True", 4) == 0) {
            h->fortran = 1;
            h->at += 4;
        } else if (h->end - h->at >= 5 && memcmp(h->at, "False", 5) == 0) {
            h->fortran = 0;
            h->at += 5;
        } else {
            bp__file_fail("%s: fortran_order is neither True nor False", h->where);
            return 0;
        }
    } else if (strcmp(key, "shape") == 0) {
        h->ndim = 0;
        if (!bp__npy_accept(h, '(')) {
            bp__file_fail("%s: the header's shape is not a tuple", h->where);
            return 0;
        }
        while (!bp__npy_accept(h, ')')) {
            long long d = 0;
            int digits = 0;
            bp__npy_skip_space(h);
            while (h->at < h->end && *h->at >= '0' && *h->at <= '9') {
                if (d > INT_MAX) break; /* stop before it can overflow; refused below */
                d = d * 10 + (*h->at++ - '0');
                digits++;
            }
            if (!digits || d > INT_MAX) {
                bp__file_fail("%s: the shape holds something other than sizes from 0 to %d", h->where,
                              INT_MAX);
                return 0;
            }
            if (h->ndim >= 2) {
                bp__file_fail("%s: a 3-D or higher array (only 1-D and 2-D load into a tensor)", h->where);
                return 0;
            }
            h->shape[h->ndim++] = d;
            if (!bp__npy_accept(h, ',')) {
                if (!bp__npy_accept(h, ')')) {
                    bp__file_fail("%s: the shape tuple is malformed", h->where);
                    return 0;
                }
                break;
            }
        }
        if (h->ndim == 0) {
            bp__file_fail("%s: a 0-D array (a scalar; only 1-D and 2-D load into a tensor)", h->where);
            return 0;
        }
    } else {
        bp__file_fail("%s: unexpected key '%s' in the header", h->where, key);
        return 0;
    }
    return 1;
}

/* Parses the header text; fills h.  Returns 0 (failure text set) if it is not what numpy writes. */
static int bp__npy_parse(bp__npy_header *h)
{
    int seen = 0; /* bits: descr 1, fortran_order 2, shape 4 */
    if (!bp__npy_accept(h, '{')) {
        bp__file_fail("%s: the header is not a dict", h->where);
        return 0;
    }
    while (!bp__npy_accept(h, '}')) {
        char key[16];
        int bit;
        if (!bp__npy_string(h, key, sizeof key) || !bp__npy_accept(h, ':')) {
            bp__file_fail("%s: the header dict is malformed", h->where);
            return 0;
        }
        bit = strcmp(key, "descr") == 0 ? 1 : strcmp(key, "fortran_order") == 0 ? 2 : strcmp(key, "shape") == 0 ? 4 : 0;
        if (seen & bit) {
            bp__file_fail("%s: key '%s' appears twice in the header", h->where, key);
            return 0;
        }
        if (!bp__npy_value(h, key)) return 0;
        seen |= bit;
        if (!bp__npy_accept(h, ',')) {
            if (!bp__npy_accept(h, '}')) {
                bp__file_fail("%s: the header dict is malformed", h->where);
                return 0;
            }
            break;
        }
    }
    if (seen != 7) {
        bp__file_fail("%s: the header lacks %s", h->where,
                      !(seen & 1) ? "'descr'" : !(seen & 2) ? "'fortran_order'" : "'shape'");
        return 0;
    }
    bp__npy_skip_space(h);
    if (h->at != h->end) {
        bp__file_fail("%s: unexpected text after the header dict", h->where);
        return 0;
    }
    return 1;
}

/* Reads the start of a .npy file of `size` bytes at f's position: magic, version, header, which it parses
   into *h, and checks that size is exactly the header's plus the data's bytes.  shape receives the shape the
   tensor will have (data NULL).  Returns 1; 0 for a bad file; -1 if out of memory (the failure text set). */
static int bp__npy_head(FILE *f, double size, bp__npy_header *h, bp_tensor *shape)
{
    unsigned char start[12];
    char *text;
    size_t header_len, prelude = 10;
    double data;
    int ok;
    if (size < 10 || fread(start, 1, 10, f) != 10 || memcmp(start, "\x93NUMPY", 6) != 0) {
        bp__file_fail("%s: not a .npy file (it does not start with \\x93NUMPY)", h->where);
        return 0;
    }
    if (start[6] == 1 && start[7] == 0) {
        header_len = (size_t)start[8] | (size_t)start[9] << 8;
    } else if ((start[6] == 2 || start[6] == 3) && start[7] == 0) {
        prelude = 12;
        if (size < 12 || fread(start + 10, 1, 2, f) != 2) {
            bp__file_fail("%s: truncated in the header", h->where);
            return 0;
        }
        header_len = (size_t)start[8] | (size_t)start[9] << 8 | (size_t)start[10] << 16 | (size_t)start[11] << 24;
    } else {
        bp__file_fail("%s: unknown .npy format version %d.%d", h->where, start[6], start[7]);
        return 0;
    }
    if (header_len > 65536) { /* numpy itself refuses headers over 10000 bytes by default */
        bp__file_fail("%s: a header of %.0f bytes (more than 65536)", h->where, (double)header_len);
        return 0;
    }
    if ((double)header_len > size - (double)prelude) {
        bp__file_fail("%s: truncated in the header", h->where);
        return 0;
    }
    text = (char *)BP_MALLOC(header_len + 1);
    if (!text) {
        bp__file_fail("%s: out of memory reading the header", h->where);
        return -1;
    }
    if (fread(text, 1, header_len, f) != header_len) {
        bp__file_fail("%s: truncated in the header", h->where);
        BP_FREE(text);
        return 0;
    }
    text[header_len] = 0;
    h->at = text;
    h->end = text + header_len;
    ok = bp__npy_parse(h);
    BP_FREE(text);
    h->at = h->end = NULL;
    if (!ok) return 0;

    shape->rows = h->ndim == 1 ? 1 : (int)h->shape[0];
    shape->cols = h->ndim == 1 ? (int)h->shape[0] : (int)h->shape[1];
    if (shape->cols > 0 && shape->rows > INT_MAX / shape->cols) {
        bp__file_fail("%s: shape %dx%d has more than INT_MAX elements", h->where, shape->rows, shape->cols);
        return 0;
    }
    if (bp__count(shape) > ((size_t)-1) / sizeof(bp_real)) { /* only where size_t is 32 bits */
        bp__file_fail("%s: shape %dx%d needs more bytes than size_t can count", h->where, shape->rows, shape->cols);
        return 0;
    }
    /* before anything is allocated: does the file hold exactly as many bytes as the header claims? */
    data = (double)bp__count(shape) * h->item_size;
    size -= (double)(prelude + header_len);
    if (size < data) {
        bp__file_fail("%s: truncated: the header says %dx%d float%d (%.0f bytes of data) but %.0f follow", h->where,
                      shape->rows, shape->cols, h->item_size * 8, data, size);
        return 0;
    }
    if (size > data) {
        bp__file_fail("%s: more bytes after the %.0f elements the header announces", h->where,
                      (double)bp__count(shape));
        return 0;
    }
    return 1;
}

/* Reads the .npy file of `size` bytes at f's position into *t (allocated; t untouched on failure).
   where starts the failure text.  1 on success, 0 after setting the failure text. */
static int bp__npy_read(FILE *f, double size, bp_tensor *t, const char *where)
{
    unsigned char chunk[4096];
    bp__npy_header h;
    bp_tensor result = {0, 0, NULL};
    size_t i = 0, n, per_chunk;
    memset(&h, 0, sizeof h);
    h.where = where;
    if (bp__npy_head(f, size, &h, &result) != 1) return 0;
    n = bp__count(&result);
    if (n > 0) {
        result.data = (bp_real *)BP_MALLOC(n * sizeof(bp_real));
        if (!result.data) {
            bp__file_fail("%s: out of memory for %dx%d", where, result.rows, result.cols);
            return 0;
        }
    }
    per_chunk = sizeof chunk / (size_t)h.item_size;
    while (i < n) {
        size_t k, want = n - i < per_chunk ? n - i : per_chunk;
        if (fread(chunk, (size_t)h.item_size, want, f) != want) {
            bp__file_fail("%s: truncated: it ends after %.0f of %.0f elements", where, (double)i, (double)n);
            BP_FREE(result.data);
            return 0;
        }
        for (k = 0; k < want; k++, i++) {
            bp_real x = (bp_real)bp__decode(chunk + k * (size_t)h.item_size, h.item_size, h.big_endian);
            if (h.fortran) /* column-major: element i is (i % rows, i / rows) */
                result.data[(i % (size_t)result.rows) * (size_t)result.cols + i / (size_t)result.rows] = x;
            else
                result.data[i] = x;
        }
    }
    *t = result;
    return 1;
}

BPDEF int bp_tensor_load_npy(bp_tensor *t, const char *path)
{
    const char *fn = "bp_tensor_load_npy";
    char where[320];
    double size;
    int ok = 0;
    FILE *f;
    if (!t) {
        bp__fail("%s: t is NULL", fn);
        return -1;
    }
    t->rows = t->cols = 0;
    t->data = NULL;
    f = bp__open_for_reading(fn, path);
    if (!f) return -1;
    bp__format(where, sizeof where, "%s: %s", fn, path);
    size = bp__bytes_left(f);
    if (size < 0)
        bp__file_fail("%s: cannot seek in the file (it must be a regular file)", where);
    else
        ok = bp__npy_read(f, size, t, where);
    fclose(f);
    if (!ok) return -1;
    bp__failure[0] = 0;
    return 0;
}

/* ---- .npz files: ZIP archives of .npy members -------------------------------------------------------
   The format (PKWARE's APPNOTE.TXT), the part np.savez uses: each member is a local header (signature
   PK\3\4, then version, flags, method, time, date, CRC-32, sizes, name) and its bytes, stored as they are;
   after the last member, the central directory repeats each header (signature PK\1\2, with the offset of
   the local one), and the end record (PK\5\6) says where the directory is and how many entries it has.
   Numbers are little-endian.  np.savez puts ZIP64 extra fields in its local headers: the sizes there are
   0xffffffff, the real ones in the extra field with id 1.  The reader trusts nothing: each size and
   offset is checked against the file's length before it is used, the two copies of each header must
   agree, and nothing is allocated beyond what the file holds. */

/* bytes (at most 4) little-endian numbers, read and written */
static uint32_t bp__le(const unsigned char *p, int bytes)
{
    uint32_t v = 0;
    while (bytes--) v = v << 8 | p[bytes];
    return v;
}

static unsigned char *bp__put_le(unsigned char *p, uint32_t v, int bytes)
{
    while (bytes--) {
        *p++ = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    return p;
}

/* Moves f to offset `at`; reads n bytes there.  1 on success. */
static int bp__seek(FILE *f, double at)
{
#ifdef _WIN32
    return _fseeki64(f, (long long)at, SEEK_SET) == 0;
#else
    return at <= (double)LONG_MAX && fseek(f, (long)at, SEEK_SET) == 0;
#endif
}

static int bp__read_at(FILE *f, double at, void *out, size_t n)
{
    return bp__seek(f, at) && fread(out, 1, n, f) == n;
}

/* A local (central = 0) or central directory header (central = 1) of a stored member, as np.savez's
   zipfile writes them but without ZIP64 fields: version 2.0, no flags, the time 1980-01-01 00:00, a
   regular file readable by all (when unzipped). */
static int bp__zip_header(FILE *f, int central, const char *name, uint32_t crc, double size, double offset)
{
    unsigned char h[46], *p = h;
    size_t name_len = strlen(name), i;
    uint32_t utf8 = 0;
    for (i = 0; i < name_len; i++)
        if ((unsigned char)name[i] >= 0x80) utf8 = 0x800; /* flag 11: the name is UTF-8 (else it means CP437) */
    p = bp__put_le(p, central ? 0x02014b50u : 0x04034b50u, 4);
    if (central) p = bp__put_le(p, 0x0314, 2); /* made by: version 2.0 on Unix (the attributes' meaning) */
    p = bp__put_le(p, 20, 2);              /* needed to extract: version 2.0 */
    p = bp__put_le(p, utf8, 4);            /* flags; method 0: stored */
    p = bp__put_le(p, 0x00210000u, 4);     /* time 00:00:00, date 1980-01-01 */
    p = bp__put_le(p, crc, 4);
    p = bp__put_le(p, (uint32_t)size, 4); /* compressed size: the same */
    p = bp__put_le(p, (uint32_t)size, 4);
    p = bp__put_le(p, (uint32_t)(name_len + 4), 2);
    p = bp__put_le(p, 0, 2); /* no extra field */
    if (central) {
        p = bp__put_le(p, 0, 4); /* no comment; disk 0 */
        p = bp__put_le(p, 0, 2); /* internal attributes */
        p = bp__put_le(p, 0100644u << 16, 4); /* external attributes: a regular file, rw-r--r-- */
        p = bp__put_le(p, (uint32_t)offset, 4);
    }
    return fwrite(h, 1, (size_t)(p - h), f) == (size_t)(p - h) && fwrite(name, 1, name_len, f) == name_len &&
           fwrite(".npy", 1, 4, f) == 4;
}

/* bp_npz_save, for fn; vector[i] set (vector may be NULL) writes tensors[i], 1 x n, as a 1-D array */
static int bp__npz_save(const char *fn, const char *path, int count, const char *const *names,
                        const bp_tensor *const *tensors, const unsigned char *vector)
{
    double offset = 0, dir_size = 0;
    char *part;
    uint32_t crc;
    int i, k, ok = 1;
    FILE *f;
    if (!path || count < 0 || (count > 0 && (!names || !tensors))) {
        bp__fail("%s: %s (count is %d)", fn,
                 !path ? "path is NULL" : count < 0 ? "count is negative" : !names ? "names is NULL" : "tensors is NULL",
                 count);
        return -1;
    }
    if (count > 65534) { /* (before the names are compared: that takes count^2 / 2 comparisons) */
        bp__file_fail("%s: %s: %d tensors: more than a ZIP file without ZIP64 holds (65534)", fn, path, count);
        return -1;
    }
    for (i = 0; i < count; i++) {
        char what[32];
        bp__format(what, sizeof what, "tensors[%d]", i);
        if (bp__bad_tensor(fn, what, tensors[i])) return -1;
        if (!names[i] || !names[i][0] || strlen(names[i]) > 60000) {
            bp__fail("%s: names[%d] is %s", fn, i,
                     !names[i] ? "NULL" : !names[i][0] ? "empty" : "longer than 60000 characters");
            return -1;
        }
        for (k = 0; k < i; k++)
            if (strcmp(names[k], names[i]) == 0) {
                bp__fail("%s: names[%d] and names[%d] are both '%s'", fn, k, i, names[i]);
                return -1;
            }
    }
    /* without ZIP64 records every size and offset must fit 32 bits (0xffffffff means ZIP64) */
    for (i = 0; i < count; i++) {
        offset += 30 + (double)strlen(names[i]) + 4 + bp__npy_size(tensors[i], vector && vector[i]);
        dir_size += 46 + (double)strlen(names[i]) + 4;
    }
    if (offset + dir_size >= 4294967295.0) {
        bp__file_fail("%s: %s: %.0f bytes: more than a ZIP file without ZIP64 holds (4 GiB): save the tensors in "
                      "several files", fn, path, offset + dir_size);
        return -1;
    }
    f = bp__open_part(fn, path, &part);
    if (!f) return -1;
    /* the members, each a local header and the .npy bytes (written twice: the CRC first, then the file) */
    for (i = 0; ok && i < count; i++) {
        int v = vector && vector[i];
        bp__npy_write(NULL, tensors[i], v, &crc);
        ok = bp__zip_header(f, 0, names[i], crc, bp__npy_size(tensors[i], v), 0) &&
             bp__npy_write(f, tensors[i], v, NULL);
    }
    /* the central directory (each CRC computed once more, rather than kept: no allocation), the end record */
    for (i = 0, offset = 0; ok && i < count; i++) {
        bp__npy_write(NULL, tensors[i], vector && vector[i], &crc);
        ok = bp__zip_header(f, 1, names[i], crc, bp__npy_size(tensors[i], vector && vector[i]), offset);
        offset += 30 + (double)strlen(names[i]) + 4 + bp__npy_size(tensors[i], vector && vector[i]);
    }
    if (ok) {
        unsigned char end[22], *p = end;
        p = bp__put_le(p, 0x06054b50u, 4);
        p = bp__put_le(p, 0, 4); /* disk 0, the directory on disk 0 */
        p = bp__put_le(p, (uint32_t)count, 2);
        p = bp__put_le(p, (uint32_t)count, 2);
        p = bp__put_le(p, (uint32_t)dir_size, 4);
        p = bp__put_le(p, (uint32_t)offset, 4);
        bp__put_le(p, 0, 2); /* no comment */
        ok = fwrite(end, 1, 22, f) == 22;
    }
    return bp__close_part(fn, path, part, f, ok);
}

BPDEF int bp_npz_save(const char *path, int count, const char *const *names, const bp_tensor *const *tensors)
{
    return bp__npz_save("bp_npz_save", path, count, names, tensors, NULL);
}

/* One member of an archive being read. */
typedef struct bp__zip_member {
    const char *name; /* in the directory's buffer, ".npy" cut off */
    double at, size;  /* where its bytes (a .npy file) start in the archive, and how many */
    uint32_t crc;
    int rows, cols; /* its shape, for bp_npz_list */
} bp__zip_member;

typedef struct bp__zip {
    FILE *f;
    unsigned char *dir; /* the central directory */
    bp__zip_member *members;
    int count;
} bp__zip;

static void bp__zip_close(bp__zip *z)
{
    if (z->f) fclose(z->f);
    if (z->dir) BP_FREE(z->dir);
    if (z->members) BP_FREE(z->members);
    z->f = NULL;
    z->dir = NULL;
    z->members = NULL;
}

/* The extra fields x[0..n) of a header: for each of *usize, *csize and *offset (offset may be NULL) that is
   0xffffffff, its 8-byte value from the ZIP64 field (id 1), in that order.  0 if the fields are malformed
   or a value is missing. */
static int bp__zip64(const unsigned char *x, size_t n, double *usize, double *csize, double *offset)
{
    double *value[3];
    int k;
    value[0] = usize;
    value[1] = csize;
    value[2] = offset;
    while (n >= 4) {
        size_t id = bp__le(x, 2), len = bp__le(x + 2, 2);
        const unsigned char *v = x + 4;
        if (len > n - 4) return 0;
        for (k = 0; id == 1 && k < 3; k++) {
            if (!value[k] || *value[k] != 4294967295.0) continue;
            if (v + 8 > x + 4 + len) return 0;
            *value[k] = (double)bp__le(v, 4) + 4294967296.0 * (double)bp__le(v + 4, 4);
            v += 8;
        }
        x += 4 + len;
        n -= 4 + len;
    }
    return n == 0 && *usize != 4294967295.0 && *csize != 4294967295.0 && (!offset || *offset != 4294967295.0);
}

/* Reads n bytes at offset `at` of the archive; 0 after reporting (an I/O error: the offsets are checked). */
static int bp__zip_read(bp__zip *z, double at, void *out, size_t n, const char *fn, const char *path)
{
    if (bp__read_at(z->f, at, out, n)) return 1;
    bp__file_fail("%s: %s: cannot read: %s", fn, path, strerror(errno));
    return 0;
}

/* Opens the archive at path and checks its whole directory, and every member's local header, before
   anything is read from a member.  0 on success; -1 after setting the failure text, all freed. */
static int bp__zip_open(bp__zip *z, const char *fn, const char *path)
{
    unsigned char *tail = NULL, *e, h[30];
    char *local = NULL;
    double size, end_at, dir_at, dir_size;
    size_t tail_len, i, pos;
    int k, j;
    memset(z, 0, sizeof *z);
    z->f = bp__open_for_reading(fn, path);
    if (!z->f) return -1;
    size = bp__bytes_left(z->f);
    if (size < 0) {
        bp__file_fail("%s: %s: cannot seek in the file (it must be a regular file)", fn, path);
        goto fail;
    }
    /* the end record: 22 bytes and a comment of up to 65535 bytes, at the very end */
    tail_len = (size_t)(size < 22 + 65535 ? size : 22 + 65535);
    tail = (unsigned char *)BP_MALLOC(tail_len + 1);
    if (!tail) {
        bp__file_fail("%s: %s: out of memory", fn, path);
        goto fail;
    }
    if (!bp__zip_read(z, size - (double)tail_len, tail, tail_len, fn, path)) goto fail;
    for (i = tail_len < 22 ? 0 : tail_len - 21; i-- > 0;)
        if (bp__le(tail + i, 4) == 0x06054b50u && bp__le(tail + i + 20, 2) == tail_len - i - 22) break;
    if (i == (size_t)-1) {
        unsigned char magic[6];
        int npy = bp__read_at(z->f, 0, magic, 6) && memcmp(magic, "\x93NUMPY", 6) == 0;
        bp__file_fail("%s: %s: not a .npz file: %s", fn, path,
                      npy ? "it is a .npy file (bp_tensor_load_npy reads it)"
                          : "no ZIP end record (np.savez writes a ZIP archive; is the file truncated?)");
        goto fail;
    }
    end_at = size - (double)tail_len + (double)i;
    e = tail + i;
    z->count = (int)bp__le(e + 10, 2);
    dir_size = bp__le(e + 12, 4);
    dir_at = bp__le(e + 16, 4);
    if (end_at >= 20 && bp__read_at(z->f, end_at - 20, h, 4) && bp__le(h, 4) == 0x07064b50u) {
        bp__file_fail("%s: %s: has ZIP64 end records (an archive over 4 GiB or of 65535 members or more): not read",
                      fn, path);
        goto fail;
    }
    if (bp__le(e + 4, 4) != 0 || bp__le(e + 8, 2) != (uint32_t)z->count) {
        bp__file_fail("%s: %s: a multi-part ZIP archive: not read", fn, path);
        goto fail;
    }
    if (dir_at + dir_size != end_at || (double)z->count * 46 > dir_size) {
        bp__file_fail("%s: %s: damaged: the end record says %d members in %.0f bytes from offset %.0f, but the "
                      "directory ends at %.0f", fn, path, z->count, dir_size, dir_at, end_at);
        goto fail;
    }
    BP_FREE(tail);
    tail = NULL;

    /* the central directory: one entry per member */
    z->dir = (unsigned char *)BP_MALLOC((size_t)dir_size + 1);
    z->members = (bp__zip_member *)BP_MALLOC((size_t)z->count * sizeof *z->members + 1);
    if (!z->dir || !z->members) {
        bp__file_fail("%s: %s: out of memory for a directory of %.0f bytes", fn, path, dir_size);
        goto fail;
    }
    if (!bp__zip_read(z, dir_at, z->dir, (size_t)dir_size, fn, path)) goto fail;
    for (k = 0, pos = 0; k < z->count; k++) {
        bp__zip_member *m = &z->members[k];
        size_t name_len, extra_len, flags, method;
        double csize, offset;
        e = z->dir + pos;
        if ((size_t)dir_size - pos < 46 || bp__le(e, 4) != 0x02014b50u) {
            bp__file_fail("%s: %s: damaged: directory entry %d of %d is not where the previous one ends", fn, path,
                          k + 1, z->count);
            goto fail;
        }
        name_len = bp__le(e + 28, 2);
        extra_len = bp__le(e + 30, 2);
        if (46 + name_len + extra_len + bp__le(e + 32, 2) > (size_t)dir_size - pos) {
            bp__file_fail("%s: %s: damaged: directory entry %d runs past the directory's end", fn, path, k + 1);
            goto fail;
        }
        m->name = (const char *)e + 46;
        flags = bp__le(e + 8, 2);
        method = bp__le(e + 10, 2);
        m->crc = bp__le(e + 16, 4);
        csize = bp__le(e + 20, 4);
        m->size = bp__le(e + 24, 4);
        offset = bp__le(e + 42, 4);
        pos += 46 + name_len + extra_len + bp__le(e + 32, 2);
        if (name_len < 5 || memcmp(e + 46 + name_len - 4, ".npy", 4) != 0 || memchr(e + 46, 0, name_len)) {
            e[46 + name_len] = 0; /* (the directory is not needed any more: the name ends here for the message) */
            bp__file_fail("%s: %s: member '%s' is not a .npy file (np.savez writes only NAME.npy members)", fn, path,
                          m->name);
            goto fail;
        }
        e[46 + name_len - 4] = 0; /* the name as np.load shows it: ".npy" cut off (its extra field is read below) */
        if (flags & 1) {
            bp__file_fail("%s: %s: member '%s' is encrypted: not read", fn, path, m->name);
            goto fail;
        }
        if (method != 0) {
            bp__file_fail("%s: %s: member '%s' is compressed (%s): not read; save with np.savez, not "
                          "np.savez_compressed", fn, path, m->name, method == 8 ? "deflate" : "not deflate either");
            goto fail;
        }
        if (flags & 8) {
            bp__file_fail("%s: %s: member '%s' has a data descriptor (its sizes after its data, as streaming zip "
                          "tools write): not read; np.savez writes none", fn, path, m->name);
            goto fail;
        }
        if (!bp__zip64(e + 46 + name_len, extra_len, &m->size, &csize, &offset) || bp__le(e + 34, 2) != 0 ||
            csize != m->size || offset + 30 > dir_at) {
            bp__file_fail("%s: %s: member '%s': damaged directory entry (sizes %.0f and %.0f, offset %.0f, in a "
                          "file of %.0f bytes)", fn, path, m->name, csize, m->size, offset, size);
            goto fail;
        }
        m->at = offset; /* of its local header, for now */
    }
    if (pos != (size_t)dir_size) {
        bp__file_fail("%s: %s: damaged: %.0f bytes in the directory after its %d entries", fn, path,
                      dir_size - (double)pos, z->count);
        goto fail;
    }
    for (k = 1; k < z->count; k++)
        for (j = 0; j < k; j++)
            if (strcmp(z->members[j].name, z->members[k].name) == 0) {
                bp__file_fail("%s: %s: two members are named '%s.npy'", fn, path, z->members[k].name);
                goto fail;
            }

    /* each member's local header must agree with its directory entry */
    for (k = 0; k < z->count; k++) {
        bp__zip_member *m = &z->members[k];
        size_t name_len, extra_len, want = strlen(m->name);
        double usize, csize;
        if (!bp__read_at(z->f, m->at, h, 30) || bp__le(h, 4) != 0x04034b50u) {
            bp__file_fail("%s: %s: member '%s': no local header at offset %.0f", fn, path, m->name, m->at);
            goto fail;
        }
        name_len = bp__le(h + 26, 2);
        extra_len = bp__le(h + 28, 2);
        csize = bp__le(h + 18, 4);
        usize = bp__le(h + 22, 4);
        m->at += 30 + (double)(name_len + extra_len);
        if (m->at > dir_at) {
            bp__file_fail("%s: %s: member '%s': its local header runs into the directory", fn, path, m->name);
            goto fail;
        }
        local = (char *)BP_MALLOC(name_len + extra_len + 1);
        if (!local) {
            bp__file_fail("%s: %s: out of memory", fn, path);
            goto fail;
        }
        if (!bp__zip_read(z, m->at - (double)(name_len + extra_len), local, name_len + extra_len, fn, path)) goto fail;
        if (name_len != want + 4 || memcmp(local, m->name, want) != 0 || memcmp(local + want, ".npy", 4) != 0 ||
            (bp__le(h + 6, 2) & 9) != 0 || bp__le(h + 8, 2) != 0 || bp__le(h + 14, 4) != m->crc ||
            !bp__zip64((const unsigned char *)local + name_len, extra_len, &usize, &csize, NULL) ||
            usize != m->size || csize != m->size) {
            bp__file_fail("%s: %s: member '%s': its local header disagrees with the directory (name, flags, method, "
                          "CRC or sizes)", fn, path, m->name);
            goto fail;
        }
        BP_FREE(local);
        local = NULL;
        if (m->at + m->size > dir_at) {
            bp__file_fail("%s: %s: member '%s': its %.0f bytes run past the start of the directory", fn, path,
                          m->name, m->size);
            goto fail;
        }
    }
    return 0;

fail:
    if (tail) BP_FREE(tail);
    if (local) BP_FREE(local);
    bp__zip_close(z);
    return -1;
}

BPDEF int bp_npz_load(bp_tensor *t, const char *path, const char *name)
{
    const char *fn = "bp_npz_load";
    char where[320];
    unsigned char chunk[4096];
    bp__zip z;
    bp__zip_member *m;
    double left;
    uint32_t crc = 0;
    int k, ok = 0;
    if (!t || !name) {
        bp__fail("%s: %s is NULL", fn, !t ? "t" : "name");
        if (t) t->rows = t->cols = 0, t->data = NULL;
        return -1;
    }
    t->rows = t->cols = 0;
    t->data = NULL;
    if (bp__zip_open(&z, fn, path) != 0) return -1;
    for (k = 0; k < z.count && strcmp(z.members[k].name, name) != 0; k++) continue;
    if (k == z.count) {
        bp__file_fail("%s: %s: no member '%s' (it has %d; bp_npz_list lists them)", fn, path, name, z.count);
        bp__zip_close(&z);
        return -1;
    }
    m = &z.members[k];
    bp__format(where, sizeof where, "%s: %s: member '%s'", fn, path, name);
    /* its CRC first: a damaged member is refused before anything is allocated for it */
    ok = bp__seek(z.f, m->at);
    for (left = m->size; ok && left > 0; left -= (double)sizeof chunk) {
        size_t n = left < (double)sizeof chunk ? (size_t)left : sizeof chunk;
        ok = fread(chunk, 1, n, z.f) == n;
        crc = bp__crc32(crc, chunk, n);
    }
    if (!ok)
        bp__file_fail("%s: cannot read: %s", where, strerror(errno));
    else if (crc != m->crc)
        bp__file_fail("%s: damaged: the CRC-32 of its bytes is %08x, the archive says %08x", where, (unsigned)crc,
                      (unsigned)m->crc);
    ok = ok && crc == m->crc && bp__seek(z.f, m->at) && bp__npy_read(z.f, m->size, t, where);
    bp__zip_close(&z);
    if (!ok) return -1;
    bp__failure[0] = 0;
    return 0;
}

BPDEF int bp_npz_list(const char *path, bp_npz_member_fn member, void *ctx)
{
    const char *fn = "bp_npz_list";
    char where[320];
    bp__zip z;
    int k, head = 1;
    if (bp__zip_open(&z, fn, path) != 0) return -1;
    /* every member's shape first: member is called only for an archive that is read to the end */
    for (k = 0; k < z.count && head >= 0; k++) {
        bp__zip_member *m = &z.members[k];
        bp__npy_header h;
        bp_tensor shape = {-1, -1, NULL};
        memset(&h, 0, sizeof h);
        h.where = where;
        bp__format(where, sizeof where, "%s: %s: member '%s'", fn, path, m->name);
        head = bp__seek(z.f, m->at) ? bp__npy_head(z.f, m->size, &h, &shape) : -1;
        m->rows = head == 1 ? shape.rows : -1;
        m->cols = head == 1 ? shape.cols : -1;
    }
    if (head >= 0) {
        bp__failure[0] = 0;
        for (k = 0; member && k < z.count; k++) member(ctx, z.members[k].name, z.members[k].rows, z.members[k].cols);
    }
    k = head >= 0 ? z.count : -1;
    bp__zip_close(&z);
    return k;
}

/* ---- IDX files ---------------------------------------------------------------------------------------
   The format (LeCun's MNIST page): 2 zero bytes, a type byte (0x08: unsigned bytes), a byte N saying how
   many sizes follow, N sizes as big-endian 32-bit numbers, then the values, row-major, one byte each.
   Nothing in the file is trusted until checked: each size and their product must fit an int, and the
   file's length must match before the values are allocated. */

static unsigned long bp__big_endian_u32(const unsigned char *p)
{
    return ((unsigned long)p[0] << 24) | ((unsigned long)p[1] << 16) | ((unsigned long)p[2] << 8) | p[3];
}

BPDEF int bp_idx_load(bp_idx *idx, const char *path)
{
    const char *fn = "bp_idx_load";
    unsigned char header[4 + 4 * 3];
    bp_idx result = {0, {1, 1, 1}, NULL};
    size_t total = 1, got;
    double left;
    int i;
    FILE *f;
    if (!idx) {
        bp__fail("%s: idx is NULL", fn);
        return -1;
    }
    memset(idx, 0, sizeof *idx);
    f = bp__open_for_reading(fn, path);
    if (!f) return -1;
    got = fread(header, 1, 4, f);
    if (got >= 2 && header[0] == 0x1f && header[1] == 0x8b) {
        bp__file_fail("%s: %s: is gzip-compressed: unpack it first (gunzip -k FILE.gz)", fn, path);
        goto fail;
    }
    if (got < 4) {
        bp__file_fail("%s: %s: truncated: %d bytes, not even the 4-byte magic number of an IDX file", fn, path,
                      (int)got);
        goto fail;
    }
    if (header[0] != 0 || header[1] != 0) {
        bp__file_fail("%s: %s: not an IDX file (it starts 0x%02x%02x, not 0x0000)", fn, path, header[0], header[1]);
        goto fail;
    }
    if (header[2] != 0x08) {
        bp__file_fail("%s: %s: IDX type 0x%02x, not 0x08 (unsigned bytes, the only type read)", fn, path,
                      header[2]);
        goto fail;
    }
    result.ndim = header[3];
    if (result.ndim < 1 || result.ndim > 3) {
        bp__file_fail("%s: %s: %d sizes in the header (1 to 3 can be read)", fn, path, result.ndim);
        goto fail;
    }
    got = fread(header + 4, 1, (size_t)(4 * result.ndim), f);
    if (got < (size_t)(4 * result.ndim)) {
        bp__file_fail("%s: %s: truncated in the header (%d of its %d size bytes are missing)", fn, path,
                      4 * result.ndim - (int)got, 4 * result.ndim);
        goto fail;
    }
    /* each size, and their product, must fit an int: checked BEFORE the product is formed */
    for (i = 0; i < result.ndim; i++) {
        unsigned long size = bp__big_endian_u32(header + 4 + 4 * i);
        if (size > (unsigned long)INT_MAX || (size != 0 && total > (size_t)INT_MAX / size)) {
            bp__file_fail("%s: %s: size %d in the header is %lu: more than INT_MAX values", fn, path, i + 1, size);
            goto fail;
        }
        result.dims[i] = (int)size;
        total *= size;
    }
    left = bp__bytes_left(f); /* before allocating: exactly as many bytes as the header promises? */
    if (left < 0) {
        bp__file_fail("%s: %s: cannot seek in the file (it must be a regular file)", fn, path);
        goto fail;
    }
    if (left != (double)total) {
        bp__file_fail("%s: %s: %s: the header promises %lu bytes of data but %.0f follow", fn, path,
                      left < (double)total ? "truncated" : "more bytes than the header says", (unsigned long)total,
                      left);
        goto fail;
    }
    if (total > 0) {
        result.data = (unsigned char *)BP_MALLOC(total);
        if (!result.data) {
            bp__file_fail("%s: %s: out of memory for %lu bytes", fn, path, (unsigned long)total);
            goto fail;
        }
        if (fread(result.data, 1, total, f) != total) {
            bp__file_fail("%s: %s: read error: %s", fn, path, strerror(errno));
            goto fail;
        }
    }
    fclose(f);
    *idx = result;
    bp__failure[0] = 0;
    return 0;

fail:
    if (result.data) BP_FREE(result.data);
    fclose(f);
    return -1;
}

BPDEF void bp_idx_free(bp_idx *idx)
{
    if (!idx) return;
    if (idx->data) BP_FREE(idx->data);
    idx->data = 0;
}


#endif /* BACKPROP_NO_STDIO */

/* ===================================================================================================
   10. The layers put together: a network in one object
   ===================================================================================================
   Nothing new in the math.  The forward pass is bp_linear_forward and an activation, layer after layer;
   the backward pass is the same calls' backwards in the reverse order; the step is the optimizer on every
   weight and bias: the explicit calls of examples/fashion_mnist.c, in a loop over the layers.  What the
   object adds is bookkeeping: every tensor in one allocation, and views of the first n rows
   (bp_tensor_rows's, unchecked: n was checked once) for a batch smaller than max_batch.  The allocation
   is laid out by kind: every layer's W and b, then their gradients in the same order, then the
   optimizer's state, then the activations; so net->params, net->grads, net->m and net->v are each one
   tensor, and the optimizer's step is ONE call on them (the optimizers work number by number: the same
   bits as a call per tensor; a 4-4-3 network's four tensors of 3 to 16 numbers are one loop over 35).
   It calls each function's math (bp__linear_forward_fused, bp__sigmoid_forward, ...: what the public
   function runs after its guard) without the guard: the network made its tensors, so their shapes and
   memory are right by construction, and bp_mlp_predict and bp_mlp_train_step check what the caller hands
   in (x, y, labels, the config) once per call.  For a tiny network that is most of the cost: a 4-4-3
   network's step is 13 calls, and each guard costs more than the 4 x 4 product it guards. */

BPDEF bp_mlp_config bp_mlp_default_config(void)
{
    bp_mlp_config c;
    memset(&c, 0, sizeof c);
    c.max_batch = 32;
    c.loss = BP_LOSS_MSE;
    c.optimizer = BP_OPT_SGD;
    c.lr = (bp_real)0.01;
    c.momentum = (bp_real)0.9;
    c.beta1 = (bp_real)0.9;
    c.beta2 = (bp_real)0.999;
    c.eps = (bp_real)1e-8;
    c.seed = 1;
    return c;
}

/* The next rows x cols tensor of the network's numbers: base + *next, and *next moves past it. */
static bp_tensor bp__mlp_take(bp_real *base, size_t *next, int rows, int cols)
{
    bp_tensor t;
    t.rows = rows;
    t.cols = cols;
    t.data = base + *next;
    *next += (size_t)rows * (size_t)cols;
    return t;
}

BPDEF bp_mlp *bp_mlp_new(int layers, const int *widths, const int *activations, const bp_mlp_config *config)
{
    const char *fn = "bp_mlp_new";
    bp_mlp_config c = config ? *config : bp_mlp_default_config();
    double count = 0, header;
    size_t next = 0, bytes, params;
    int l, m, v; /* whether the optimizer keeps m (momentum's velocity, Adam's m) and v (Adam's) */
    bp_mlp *net;
    bp_real *base;
    bp_rng rng;
    if (layers < 1 || !widths || !activations) {
        bp__fail("%s: %d layers, widths %p, activations %p (at least 1 layer, and both lists)", fn, layers,
                 (const void *)widths, (const void *)activations);
        return NULL;
    }
    for (l = 0; l <= layers; l++)
        if (widths[l] < 1) {
            bp__fail("%s: widths[%d] is %d (every width must be >= 1)", fn, l, widths[l]);
            return NULL;
        }
    for (l = 0; l < layers; l++)
        if (activations[l] < BP_ACT_NONE || activations[l] > BP_ACT_TANH) {
            bp__fail("%s: activations[%d] is %d (BP_ACT_NONE, BP_ACT_RELU, BP_ACT_SIGMOID or BP_ACT_TANH)", fn, l,
                     activations[l]);
            return NULL;
        }
    if (bp__bad_mlp_config(fn, &c)) return NULL;
    m = c.optimizer != BP_OPT_SGD;
    v = c.optimizer == BP_OPT_ADAM;
    for (l = 0; l < layers; l++) {
        double in = widths[l], out = widths[l + 1];
        if (in * out > INT_MAX || (double)c.max_batch * out > INT_MAX) {
            bp__fail("%s: layer %d is %dx%d with max_batch %d (more than INT_MAX numbers in a tensor)", fn, l,
                     widths[l], widths[l + 1], c.max_batch);
            return NULL;
        }
        count += (2 + m + v) * (in * out + out); /* W, b, dW, db and the optimizer's state */
        count += (activations[l] == BP_ACT_NONE ? 2 : 3) * (double)c.max_batch * out; /* z, a, da */
    }
    header = ((double)sizeof(bp_mlp) + (double)layers * (double)sizeof(bp_mlp_layer) + 63) / 64;
    header = floor(header) * 64; /* the numbers start on a 64-byte boundary */
    if (count > INT_MAX || header + count * (double)sizeof(bp_real) > (double)((size_t)-1)) {
        bp__fail("%s: %d layers of %.0f numbers in all (more than INT_MAX, or than size_t counts)", fn, layers,
                 count);
        return NULL;
    }
    bytes = (size_t)header + (size_t)count * sizeof(bp_real);
    net = (bp_mlp *)BP_MALLOC(bytes);
    if (!net) {
        bp__fail("%s: out of memory allocating %.0f bytes for %d layers", fn, (double)bytes, layers);
        return NULL;
    }
    memset(net, 0, bytes); /* every number 0: biases, optimizer state */
    base = (bp_real *)(void *)((char *)net + (size_t)header);
    net->layers = layers;
    net->inputs = widths[0];
    net->outputs = widths[layers];
    net->config = c;
    net->layer = (bp_mlp_layer *)(void *)(net + 1);
    bp_rng_seed(&rng, c.seed);
    for (l = 0; l < layers; l++) { /* the weights and biases, then their gradients, m, v, activations */
        bp_mlp_layer *L = &net->layer[l];
        L->activation = activations[l];
        L->W = bp__mlp_take(base, &next, widths[l], widths[l + 1]);
        L->b = bp__mlp_take(base, &next, 1, widths[l + 1]);
    }
    params = next;
    for (l = 0; l < layers; l++) {
        net->layer[l].dW = bp__mlp_take(base, &next, widths[l], widths[l + 1]);
        net->layer[l].db = bp__mlp_take(base, &next, 1, widths[l + 1]);
    }
    for (l = 0; l < layers; l++) {
        net->layer[l].mW = bp__mlp_take(base, &next, m * widths[l], m * widths[l + 1]);
        net->layer[l].mb = bp__mlp_take(base, &next, m, m * widths[l + 1]);
    }
    for (l = 0; l < layers; l++) {
        net->layer[l].vW = bp__mlp_take(base, &next, v * widths[l], v * widths[l + 1]);
        net->layer[l].vb = bp__mlp_take(base, &next, v, v * widths[l + 1]);
    }
    for (l = 0; l < layers; l++) {
        bp_mlp_layer *L = &net->layer[l];
        L->z = bp__mlp_take(base, &next, c.max_batch, widths[l + 1]);
        L->a = L->activation == BP_ACT_NONE ? L->z : bp__mlp_take(base, &next, c.max_batch, widths[l + 1]);
        L->da = bp__mlp_take(base, &next, c.max_batch, widths[l + 1]);
        if (L->activation == BP_ACT_RELU) bp_init_he(&L->W, &rng);
        else bp_init_xavier(&L->W, &rng);
    }
    BP_ASSERT((double)next == count);
    next = 0;
    net->all = bp__mlp_take(base, &next, 1, (int)count); /* all of them, from the start */
    next = 0;
    net->params = bp__mlp_take(base, &next, 1, (int)params);
    net->grads = bp__mlp_take(base, &next, 1, (int)params);
    net->m = bp__mlp_take(base, &next, m, m * (int)params);
    net->v = bp__mlp_take(base, &next, v, v * (int)params);
    return net;
}

BPDEF void bp_mlp_free(bp_mlp *net)
{
    if (net) BP_FREE(net);
}

/* The forward pass on x's n rows: layer l computes  z = in W + b  and  a = activation(z)  into the first n
   rows of its z and a, where in is x for the first layer and the layer below's a for the others. */
static void bp__mlp_forward(bp_mlp *net, const bp_tensor *x)
{
    int l, n = x->rows;
    for (l = 0; l < net->layers; l++) {
        bp_mlp_layer *L = &net->layer[l];
        bp_tensor in = l == 0 ? *x : bp__tensor_rows(&net->layer[l - 1].a, 0, n);
        bp_tensor z = bp__tensor_rows(&L->z, 0, n), a = bp__tensor_rows(&L->a, 0, n);
        bp__linear_forward_fused(&in, &L->W, &L->b, &z); /* z = in W + b */
        if (L->activation == BP_ACT_RELU) bp__relu_forward(&z, &a); /* a = act(z) */
        else if (L->activation == BP_ACT_SIGMOID) bp__sigmoid_forward(&z, &a);
        else if (L->activation == BP_ACT_TANH) bp__tanh_forward(&z, &a);
    }
}

/* The backward pass, from dL/da of the last layer (in its da) down to the first: each layer turns its da
   into dL/dz in place (ReLU's backward reads z, sigmoid's and tanh's a), then bp_linear_backward gives
   dW, db and the layer below's da. */
static void bp__mlp_backward(bp_mlp *net, const bp_tensor *x)
{
    int l, n = x->rows;
    for (l = net->layers - 1; l >= 0; l--) {
        bp_mlp_layer *L = &net->layer[l];
        bp_tensor in = l == 0 ? *x : bp__tensor_rows(&net->layer[l - 1].a, 0, n);
        bp_tensor below = l == 0 ? *x : bp__tensor_rows(&net->layer[l - 1].da, 0, n);
        bp_tensor z = bp__tensor_rows(&L->z, 0, n), a = bp__tensor_rows(&L->a, 0, n);
        bp_tensor da = bp__tensor_rows(&L->da, 0, n);
        if (L->activation == BP_ACT_RELU) bp__relu_backward(&z, &da, &da); /* da becomes dz, in place */
        else if (L->activation == BP_ACT_SIGMOID) bp__sigmoid_backward(&a, &da, &da);
        else if (L->activation == BP_ACT_TANH) bp__tanh_backward(&a, &da, &da);
        bp__linear_backward(&in, &L->W, &da, l == 0 ? NULL : &below, &L->dW, &L->db);
    }
}

/* One optimizer step on every weight and bias. */
static void bp__mlp_step(bp_mlp *net)
{
    const bp_mlp_config *c = &net->config;
    net->step++;
    if (c->optimizer == BP_OPT_SGD) bp__sgd_step(&net->params, &net->grads, c->lr);
    else if (c->optimizer == BP_OPT_MOMENTUM) bp__momentum_step(&net->params, &net->grads, &net->m, c->lr, c->momentum);
    else bp__adam_step(&net->params, &net->grads, &net->m, &net->v, net->step, c->lr, c->beta1, c->beta2, c->eps);
}

BPDEF bp_tensor bp_mlp_predict(bp_mlp *net, const bp_tensor *x)
{
    bp_tensor none = {0, 0, 0};
    if (bp__bad_mlp_input("bp_mlp_predict", net, x)) return none;
    bp__mlp_forward(net, x);
    return bp__tensor_rows(&net->layer[net->layers - 1].a, 0, x->rows);
}

BPDEF bp_real bp_mlp_train_step(bp_mlp *net, const bp_tensor *x, const bp_tensor *y, const int *labels)
{
    bp_mlp_layer *last;
    bp_tensor out, dout;
    bp_real loss;
    if (bp__bad_mlp_input("bp_mlp_train_step", net, x) || bp__bad_mlp_targets("bp_mlp_train_step", net, x, y, labels))
        return (bp_real)NAN;
    last = &net->layer[net->layers - 1];
    out = bp__tensor_rows(&last->a, 0, x->rows);
    dout = bp__tensor_rows(&last->da, 0, x->rows);
    bp__mlp_forward(net, x);
    if (net->config.loss == BP_LOSS_MSE) {
        loss = bp__mse_forward(&out, y);
        bp__mse_backward(&out, y, &dout); /* dL/dout */
    } else {
        loss = bp__softmax_xent_forward(&out, labels, &dout); /* probs, into dout */
        bp__softmax_xent_backward(&dout, labels, &dout);      /* dL/dlogits, in place */
    }
    bp__mlp_backward(net, x);
    bp__mlp_step(net);
    return loss;
}

#ifndef BACKPROP_NO_STDIO
/* The number of layer l's Linear in the equivalent nn.Sequential: every module before it counts (a Linear,
   and its activation unless it is BP_ACT_NONE). */
static int bp__mlp_module(const bp_mlp *net, int l)
{
    int j, k = 0;
    for (j = 0; j < l; j++) k += net->layer[j].activation == BP_ACT_NONE ? 1 : 2;
    return k;
}

BPDEF int bp_mlp_save(const bp_mlp *net, const char *path)
{
    const char *fn = "bp_mlp_save";
    size_t weights = 0, at, bytes, i;
    int l, count, rc;
    char *block, *text;
    bp_tensor *t;
    const bp_tensor **tensors;
    const char **names;
    unsigned char *vector;
    if (!net || !path) {
        bp__fail("%s: %s is NULL", fn, !net ? "net" : "path");
        return -1;
    }
    /* one temporary block: the transposed weights, then the tensors, their names and which are 1-D */
    count = 2 * net->layers;
    for (l = 0; l < net->layers; l++) weights += bp__count(&net->layer[l].W);
    at = (weights * sizeof(bp_real) + 15) / 16 * 16;
    bytes = at + (size_t)count * (sizeof(bp_tensor) + sizeof(bp_tensor *) + sizeof(char *) + 24 + 1);
    block = (char *)BP_MALLOC(bytes);
    if (!block) {
        bp__file_fail("%s: %s: out of memory", fn, path);
        return -1;
    }
    t = (bp_tensor *)(void *)(block + at);
    tensors = (const bp_tensor **)(void *)(t + count);
    names = (const char **)(void *)(tensors + count);
    text = (char *)(names + count);
    vector = (unsigned char *)(text + 24 * (size_t)count);
    for (l = 0, weights = 0; l < net->layers; l++) {
        const bp_mlp_layer *L = &net->layer[l];
        bp_tensor *T = &t[2 * l];
        int r, c, k = bp__mlp_module(net, l);
        T->rows = L->W.cols; /* nn.Linear's weight: out x in, W transposed */
        T->cols = L->W.rows;
        T->data = (bp_real *)(void *)block + weights;
        weights += bp__count(&L->W);
        for (r = 0; r < L->W.rows; r++)
            for (c = 0; c < L->W.cols; c++) T->data[c * T->cols + r] = L->W.data[r * L->W.cols + c];
        t[2 * l + 1] = L->b;
        bp__format(text + 24 * (2 * l), 24, "%d.weight", k);
        bp__format(text + 24 * (2 * l + 1), 24, "%d.bias", k);
        vector[2 * l] = 0;
        vector[2 * l + 1] = 1; /* a bias is 1-D in PyTorch */
    }
    for (i = 0; i < (size_t)count; i++) {
        tensors[i] = &t[i];
        names[i] = text + 24 * i;
    }
    rc = bp__npz_save(fn, path, count, names, tensors, vector);
    BP_FREE(block);
    return rc;
}

BPDEF int bp_mlp_load(bp_mlp *net, const char *path)
{
    const char *fn = "bp_mlp_load";
    bp_tensor *got;
    char name[24];
    int l, i, count, members, rc = -1;
    if (!net || !path) {
        bp__fail("%s: %s is NULL", fn, !net ? "net" : "path");
        return -1;
    }
    count = 2 * net->layers;
    members = bp_npz_list(path, NULL, NULL);
    if (members < 0) return -1;
    if (members != count) {
        bp__file_fail("%s: %s: %d members, but this network's state_dict has %d (%d Linear layers, each N.weight "
                      "and N.bias)", fn, path, members, count, net->layers);
        return -1;
    }
    got = (bp_tensor *)BP_MALLOC((size_t)count * sizeof(bp_tensor));
    if (!got) {
        bp__file_fail("%s: %s: out of memory", fn, path);
        return -1;
    }
    for (i = 0; i < count; i++) got[i].rows = got[i].cols = 0, got[i].data = NULL;
    /* every member read and checked before any of the network is changed */
    for (l = 0; l < net->layers; l++) {
        const bp_mlp_layer *L = &net->layer[l];
        bp_tensor *weight = &got[2 * l], *bias = &got[2 * l + 1];
        int k = bp__mlp_module(net, l);
        bp__format(name, sizeof name, "%d.weight", k);
        if (bp_npz_load(weight, path, name) != 0) goto done;
        if (weight->rows != L->W.cols || weight->cols != L->W.rows) {
            bp__file_fail("%s: %s: %s is %dx%d, but layer %d is nn.Linear(%d, %d): its weight is %dx%d (out x in)",
                          fn, path, name, weight->rows, weight->cols, l, L->W.rows, L->W.cols, L->W.cols, L->W.rows);
            goto done;
        }
        bp__format(name, sizeof name, "%d.bias", k);
        if (bp_npz_load(bias, path, name) != 0) goto done;
        if (bias->rows != 1 || bias->cols != L->b.cols) {
            bp__file_fail("%s: %s: %s is %dx%d, but layer %d has %d outputs (a bias of %d, 1-D or 1 x %d)", fn, path,
                          name, bias->rows, bias->cols, l, L->b.cols, L->b.cols, L->b.cols);
            goto done;
        }
    }
    for (l = 0; l < net->layers; l++) {
        bp_mlp_layer *L = &net->layer[l];
        const bp_tensor *weight = &got[2 * l];
        int r, c;
        for (r = 0; r < L->W.rows; r++)
            for (c = 0; c < L->W.cols; c++) L->W.data[r * L->W.cols + c] = weight->data[c * weight->cols + r];
        memcpy(L->b.data, got[2 * l + 1].data, bp__count(&L->b) * sizeof(bp_real));
        if (L->mW.data) memset(L->mW.data, 0, bp__count(&L->mW) * sizeof(bp_real)); /* the optimizer starts again */
        if (L->mb.data) memset(L->mb.data, 0, bp__count(&L->mb) * sizeof(bp_real));
        if (L->vW.data) memset(L->vW.data, 0, bp__count(&L->vW) * sizeof(bp_real));
        if (L->vb.data) memset(L->vb.data, 0, bp__count(&L->vb) * sizeof(bp_real));
    }
    net->step = 0;
    rc = 0;
done:
    for (i = 0; i < count; i++) bp_tensor_free(&got[i]);
    BP_FREE(got);
    return rc;
}
#endif

#endif /* BACKPROP_IMPLEMENTATION */

/*
------------------------------------------------------------------------------
This software is available under the Unlicense (public domain):
This is free and unencumbered software released into the public domain.

Anyone is free to copy, modify, publish, use, compile, sell, or distribute this
software, either in source code form or as a compiled binary, for any purpose,
commercial or non-commercial, and by any means.

In jurisdictions that recognize copyright laws, the author or authors of this
software dedicate any and all copyright interest in the software to the public
domain. We make this dedication for the benefit of the public at large and to
the detriment of our heirs and successors. We intend this dedication to be an
overt act of relinquishment in perpetuity of all present and future rights to
this software under copyright law.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN
ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION
WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

For more information, please refer to <http://unlicense.org/>
------------------------------------------------------------------------------
*/
