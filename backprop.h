/* backprop.h - v0.3.0 - backpropagation by hand, in one C header.  Public domain (see end of file).

   A dense tensor, a matrix multiply (the textbook loops, and a cache-blocked kernel as fast as OpenBLAS),
   hand-written forward and backward passes for a Linear layer, ReLU, sigmoid and tanh, the mean squared
   error and a fused softmax + cross-entropy; SGD, momentum and Adam, gradient clipping; He and Xavier
   initialisation; a finite-difference gradient checker; .npy and .npz (numpy's files) save/load and an
   IDX (MNIST) reader.
   No dependencies beyond libc and libm.

   HOW TO READ IT.  Top to bottom, as the lesson goes: tensors, matrix multiply (the reference loops first,
   then the fast kernel), layers (each forward directly above its backward), losses, optimizers, starting
   weights, the gradient check; then the guards (argument checks and error reporting) and, last, the file
   formats.  Every layer, loss and optimizer comes in two parts, on purpose:
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
     - The caller owns every buffer.  Only bp_tensor_new and the file functions allocate; no forward,
       backward, loss, optimizer or matmul function touches the heap.
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
   error handler. */
BPDEF void bp_adam_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *m, bp_tensor *v, int t, bp_real lr,
                        bp_real beta1, bp_real beta2, bp_real eps);

/* Gradient clipping for exploding gradients, as PyTorch's clip_grad_norm_: if the norm of all count
   gradients taken together, sqrt(sum of every element squared), exceeds max_norm, scales them all by
   max_norm / (norm + 1e-6).  Returns the norm before clipping.  The gradients must not share memory. */
BPDEF bp_real bp_clip_grad_norm(bp_tensor *const *grads, int count, bp_real max_norm);

/* ---------------------------------------------------------------------------------------------------
   6. Starting weights: random numbers and initialisation
   --------------------------------------------------------------------------------------------------- */

/* The random generator: splitmix64 on a 64-bit state.  The caller owns it (no global state), and a seed
   gives the same numbers on every platform. */
typedef struct bp_rng {
    uint64_t state;
} bp_rng;

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
    if (bp__bad_tensor("bp_tensor_all_finite", "t", t)) return 0;
    n = bp__count(t);
    /* x - x is exactly 0 for every finite x, and NaN for NaN and +-infinity.  (Not isfinite(): mingw-w64's
       macro converts a double to float.  Like isfinite, this cannot work under -ffast-math.) */
    for (i = 0; i < n; i++)
        if (t->data[i] - t->data[i] != 0) return 0;
    return 1;
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
   Two shapes take other roads (bp__gemm below picks): a C with fewer rows than a tile (batch 1), or an
   outer product (K = 1), skips packing, which could not pay for itself; a narrow C (10 classes) is
   computed as its transpose.
   Each C element is summed in the same order (p = 0..K-1) on every road, with any number of threads.
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

/* Packs op(B)[k0 .. k0+kc, n0 .. n0+nc] into Bp as ceil(nc/NR) panels, each kc rows of NR, zero-padded.
   op(B)(k, n) is B[k][n], or B[n][k] when transposed.  Every loop has a constant count (the padding is
   a select, not a shorter loop) so the compiler copies in registers instead of calling memcpy/memset
   for a few elements at a time. */
static void bp__pack_b(bp_real *BP__RESTRICT Bp, const bp_tensor *B, int trans, int k0, int kc, int n0, int nc)
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
static void bp__pack_a(bp_real *BP__RESTRICT Ap, const bp_tensor *A, int trans, int m0, int mc, int k0, int kc)
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
static void bp__kernel(int kc, const bp_real *BP__RESTRICT Ap, const bp_real *BP__RESTRICT Bp,
                       bp_real *BP__RESTRICT C, size_t rs, size_t cs, int mr, int nr, int add)
{
    bp_real acc[BP__MR][BP__NR];
    int i, j, p;
    for (i = 0; i < BP__MR; i++)
        for (j = 0; j < BP__NR; j++) acc[i][j] = 0;
    for (p = 0; p < kc; p++) {
        const bp_real *a = Ap + (size_t)p * BP__MR, *b = Bp + (size_t)p * BP__NR;
        BP__TILE_ROWS_HINT
        for (i = 0; i < BP__MR; i++)
            for (j = 0; j < BP__NR; j++) acc[i][j] += a[i] * b[j];
    }
    if (cs == 1 && nr == BP__NR) { /* the common case: whole rows, constant counts, vector stores */
        for (i = 0; i < mr; i++) {
            bp_real *c = C + (size_t)i * rs;
            if (add)
                for (j = 0; j < BP__NR; j++) c[j] += acc[i][j];
            else
                for (j = 0; j < BP__NR; j++) c[j] = acc[i][j];
        }
        return;
    }
    for (i = 0; i < mr; i++)
        for (j = 0; j < nr; j++) {
            bp_real *c = C + (size_t)i * rs + (size_t)j * cs;
            /* if/else, not ?: -- where float sums are done in double (FLT_EVAL_METHOD 1, s390x), gcc's
               -Wdouble-promotion flags the conversion of the ?:'s other arm */
            if (add) *c += acc[i][j];
            else *c = acc[i][j];
        }
}

/* The blocked loops.  C is M x N, its element (i,j) at C[i*rs + j*cs]; op(A) is M x K, op(B) is K x N. */
static void bp__gemm_blocked(bp_real *C, size_t rs, size_t cs, const bp_tensor *A, int trans_a,
                             const bp_tensor *B, int trans_b, int accumulate, int M, int N, int K)
{
    bp_real Bp[BP_MATMUL_KC * BP__NC_PAD]; /* KC x NC slice of op(B), in NR-wide panels */
    int jc, pc, ic;
    BP_ASSERT(M > 0 && N > 0 && K > 0);
    BP_ASSERT(BP_MATMUL_KC > 0 && BP_MATMUL_NC > 0 && BP_MATMUL_MC > 0);
    for (jc = 0; jc < N; jc += BP_MATMUL_NC) {
        int nc = N - jc < BP_MATMUL_NC ? N - jc : BP_MATMUL_NC;
        for (pc = 0; pc < K; pc += BP_MATMUL_KC) {
            int kc = K - pc < BP_MATMUL_KC ? K - pc : BP_MATMUL_KC;
            int add = pc > 0 || accumulate; /* the first slice overwrites, unless accumulating */
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
                int jr, ir;
                bp__pack_a(Ap, A, trans_a, ic, mc, pc, kc);
                for (jr = 0; jr < nc; jr += BP__NR) {
                    int nr = nc - jr < BP__NR ? nc - jr : BP__NR;
                    for (ir = 0; ir < mc; ir += BP__MR) {
                        int mr = mc - ir < BP__MR ? mc - ir : BP__MR;
                        bp__kernel(kc, Ap + (size_t)ir * (size_t)kc, Bp + (size_t)jr * (size_t)kc,
                                   C + (size_t)(ic + ir) * rs + (size_t)(jc + jr) * cs, rs, cs, mr, nr, add);
                    }
                }
            }
        }
    }
}

/* Few rows in C (batch 1, say), or an outer product (K = 1): packing would cost more than it saves, since
   each element of B would be used only M times, or each element of C is a single product.  So no packing:
   row i of C is the sum over k of op(A)[i][k] times row k of B.  k runs outside i, so each row of B comes
   from memory once for all M rows of C; the first k writes C (unless accumulating), so C is not cleared
   in a pass of its own; and the j loop vectorises.  (B must not be transposed: its rows are contiguous.) */
static void bp__gemm_unpacked(bp_tensor *C, const bp_tensor *A, int trans_a, const bp_tensor *B, int accumulate,
                              int M, int N, int K)
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
        }
    }
}

/* n rounded up to whole tiles */
static double bp__padded(int n, int tile) { return (double)((n + tile - 1) / tile) * tile; }

/* Picks the way to compute C = op(A).op(B) (no argument checks: bp__matmul's callers have done them). */
static void bp__gemm(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags, int M, int N, int K)
{
    int trans_a = (flags & BP_TRANS_A) != 0, trans_b = (flags & BP_TRANS_B) != 0;
    int accumulate = (flags & BP_ACCUMULATE) != 0;
    if ((M < BP__MR || K == 1) && !trans_b)
        bp__gemm_unpacked(C, A, trans_a, B, accumulate, M, N, K);
    else if (bp__padded(N, BP__MR) * bp__padded(M, BP__NR) < bp__padded(M, BP__MR) * bp__padded(N, BP__NR))
        /* A narrow C (N = 10 classes, say) would use few of each tile's NR columns.  C^T = op(B)^T.op(A)^T
           holds the same numbers, summed in the same order, with the long side along the vectors; so
           compute that, storing element (j,i) of C^T at C(i,j).  op(B)^T is B read with the opposite
           transpose flag, and op(A)^T likewise. */
        bp__gemm_blocked(C->data, 1, (size_t)N, B, !trans_b, A, !trans_a, accumulate, N, M, K);
    else
        bp__gemm_blocked(C->data, (size_t)N, 1, A, trans_a, B, trans_b, accumulate, M, N, K);
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
    bp__gemm(C, A, B, flags, C->rows, C->cols, K);
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

/* ---- Linear ----------------------------------------------------------------------------------------
   Forward:  z = x.W + b,  z[r][j] = sum_k x[r][k] W[k][j] + b[j]   (one example per row r) */
static void bp__linear_forward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *b, bp_tensor *z)
{
    int r, j;
    bp__matmul(z, x, W, 0); /* z = x.W */
    if (b)                  /* z += b, on every row */
        for (r = 0; r < z->rows; r++)
            for (j = 0; j < z->cols; j++) z->data[r * z->cols + j] += b->data[j];
}

BPDEF void bp_linear_forward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *b, bp_tensor *z)
{
    const char *fn = "bp_linear_forward";
    const bp_tensor *args[4] = {x, W, b, z};
    if (bp__bad_tensors(fn, 4, args, "x W b? >z") || bp__bad_linear(fn, x, W, b, z, NULL, NULL) ||
        bp__bad_overlaps(fn, 4, args, "x W b? >z", 0))
        return;
    bp__linear_forward(x, W, b, z);
}

/* Backward.  L depends on W, b and x only through z, so by the chain rule
       dL/dW[k][j] = sum_r dz[r][j] x[r][k]    ->  dW = x^T.dz
       dL/db[j]    = sum_r dz[r][j]            ->  db = column sums of dz  (b was added to every row)
       dL/dx[r][k] = sum_j dz[r][j] W[k][j]    ->  dx = dz.W^T             (what the layer below receives)
   The forward cached x (for dW); W is the layer's own.  dx and db may be NULL: not computed. */
static void bp__linear_backward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *dz, bp_tensor *dx,
                                bp_tensor *dW, bp_tensor *db)
{
    int r, j;
    bp__matmul(dW, x, dz, BP_TRANS_A); /* dW = x^T.dz */
    if (db) {
        for (j = 0; j < db->cols; j++) db->data[j] = 0;
        for (r = 0; r < dz->rows; r++)
            for (j = 0; j < dz->cols; j++) db->data[j] += dz->data[r * dz->cols + j];
    }
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
    for (i = 0; i < n; i++) dz->data[i] = z->data[i] > 0 ? da->data[i] : 0;
}

BPDEF void bp_relu_backward(const bp_tensor *z, const bp_tensor *da, bp_tensor *dz)
{
    const bp_tensor *args[3] = {z, da, dz};
    if (bp__bad_args("bp_relu_backward", 3, args, "z da >dz", BP__SAME_SHAPE | BP__IN_PLACE)) return;
    bp__relu_backward(z, da, dz);
}

/* ---- sigmoid ---------------------------------------------------------------------------------------
   Forward:  a = 1 / (1 + e^-z).  For z < 0 the same value is computed as e^z / (1 + e^z), so e^-z never
   overflows; both forms give a in [0, 1]. */
static void bp__sigmoid_forward(const bp_tensor *z, bp_tensor *a)
{
    int i, n = z->rows * z->cols;
    for (i = 0; i < n; i++) {
        double e = exp(-fabs((double)z->data[i])); /* in (0, 1]: cannot overflow */
        a->data[i] = (bp_real)(z->data[i] >= 0 ? 1 / (1 + e) : e / (1 + e));
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
   Forward:  a = tanh(z) = (e^z - e^-z) / (e^z + e^-z), in (-1, 1). */
static void bp__tanh_forward(const bp_tensor *z, bp_tensor *a)
{
    int i, n = z->rows * z->cols;
    for (i = 0; i < n; i++) a->data[i] = (bp_real)tanh((double)z->data[i]);
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

/* ===================================================================================================
   4. Losses
   =================================================================================================== */

/* ---- mean squared error ----------------------------------------------------------------------------
   Forward:  L = (1/N) sum_i (yhat_i - y_i)^2  over all N = rows*cols elements, summed in double (float
   would lose digits over large batches).  The mean of nothing is taken as 0. */
static bp_real bp__mse_forward(const bp_tensor *yhat, const bp_tensor *y)
{
    double sum = 0;
    int i, n = y->rows * y->cols;
    for (i = 0; i < n; i++) {
        double d = (double)yhat->data[i] - (double)y->data[i];
        sum += d * d;
    }
    return n > 0 ? (bp_real)(sum / n) : 0;
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

/* ---- softmax + cross-entropy -----------------------------------------------------------------------
   Forward, for each row r of logits l with label y:  p_j = e^(l_j - m) / S,  S = sum_j e^(l_j - m),
   m = max_j l_j (subtracting m changes nothing but keeps every e^ <= 1);  loss_r = -log p_y, computed as
   log S - (l_y - m), never as log of a rounded p_y (which could be 0).  Returns the mean over the batch. */
static bp_real bp__softmax_xent_forward(const bp_tensor *logits, const int *labels, bp_tensor *probs)
{
    double total = 0;
    int r, j, C = logits->cols;
    for (r = 0; r < logits->rows; r++) {
        const bp_real *l = logits->data + r * C;
        double m = (double)l[0], sum = 0;
        for (j = 1; j < C; j++) m = (double)l[j] > m ? (double)l[j] : m;
        for (j = 0; j < C; j++) sum += exp((double)l[j] - m);
        total += log(sum) - ((double)l[labels[r]] - m); /* before probs overwrites l (in place) */
        for (j = 0; j < C; j++) probs->data[r * C + j] = (bp_real)(exp((double)l[j] - m) / sum);
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
   The forward cached probs; the logits themselves are not needed. */
static void bp__softmax_xent_backward(const bp_tensor *probs, const int *labels, bp_tensor *dlogits)
{
    int r, j, C = probs->cols;
    for (r = 0; r < probs->rows; r++) {
        double scale = 1.0 / probs->rows;
        for (j = 0; j < C; j++)
            dlogits->data[r * C + j] = (bp_real)(((double)probs->data[r * C + j] - (j == labels[r])) * scale);
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

/* Adam:  m = b1*m + (1-b1)*dw;  v = b2*v + (1-b2)*dw^2;  w -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps).
   m and v are running means of the gradient and of its square; both start at 0, so early on they are too
   small by the factor (1 - b^t), and dividing by it removes that bias.  The step m/sqrt(v) has about the
   same size for every parameter, whatever the scale of its gradient.  The corrections are folded as
   PyTorch does:  lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). */
static void bp__adam_step(bp_tensor *w, const bp_tensor *dw, bp_tensor *m, bp_tensor *v, int t, bp_real lr,
                          bp_real beta1, bp_real beta2, bp_real eps)
{
    double step_size = (double)lr / (1 - pow((double)beta1, t)), bias2_sqrt = sqrt(1 - pow((double)beta2, t));
    int i, n = w->rows * w->cols;
    for (i = 0; i < n; i++) {
        bp_real g = dw->data[i];
        m->data[i] = beta1 * m->data[i] + (1 - beta1) * g;
        v->data[i] = beta2 * v->data[i] + (1 - beta2) * g * g;
        w->data[i] -= (bp_real)(step_size * (double)m->data[i] / (sqrt((double)v->data[i]) / bias2_sqrt + (double)eps));
    }
}

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

/* Gradient clipping:  norm = sqrt(sum of every gradient element squared), all gradients taken together as
   one vector (summed in double); if norm > max_norm, every gradient is scaled by max_norm/(norm + 1e-6).
   The direction of the step is kept, and only its length capped. */
static bp_real bp__clip_grad_norm(bp_tensor *const *grads, int count, bp_real max_norm)
{
    double sum = 0, norm;
    int g, i;
    for (g = 0; g < count; g++)
        for (i = 0; i < grads[g]->rows * grads[g]->cols; i++)
            sum += (double)grads[g]->data[i] * (double)grads[g]->data[i];
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
    return t && t->rows >= 0 && t->cols >= 0 && (int64_t)t->rows * t->cols <= INT_MAX &&
           (t->data || t->rows == 0 || t->cols == 0);
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
    const char *w = bp__word(names, i);
    size_t len = strcspn(w, " ");
    return len > 0 && w[len - 1] == '?';
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
    int i, j;
    BP_ASSERT(n <= 8);
    for (i = 0; i < n; i++) { /* args[i] spans [start, end); absent or empty: an extent nothing overlaps */
        size_t bytes = args[i] ? bp__count(args[i]) * sizeof(bp_real) : 0;
        start[i] = bytes ? (uintptr_t)args[i]->data : UINTPTR_MAX;
        end[i] = bytes ? start[i] + bytes : 0;
    }
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
   padded with spaces to a multiple of 64 bytes and ending in '\n'.  Returns the bytes written. */
static size_t bp__npy_start(const bp_tensor *t, unsigned char *out)
{
    char *dict = (char *)out + 10;
    int len, padded;
    bp__format(dict, 118, "{'descr': '<f%d', 'fortran_order': False, 'shape': (%d, %d), }", (int)sizeof(bp_real),
               t->rows, t->cols);
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
static double bp__npy_size(const bp_tensor *t)
{
    unsigned char header[128];
    return (double)bp__npy_start(t, header) + (double)bp__count(t) * sizeof(bp_real);
}

/* Writes t as a .npy file to f; with f NULL writes nothing.  If crc is not NULL, *crc becomes the CRC-32
   of the bytes.  1 if every byte was written. */
static int bp__npy_write(FILE *f, const bp_tensor *t, uint32_t *crc)
{
    unsigned char chunk[4096];
    size_t i = 0, n = bp__count(t), used = bp__npy_start(t, chunk);
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
    return bp__close_part(fn, path, part, f, bp__npy_write(f, t, NULL));
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

BPDEF int bp_npz_save(const char *path, int count, const char *const *names, const bp_tensor *const *tensors)
{
    const char *fn = "bp_npz_save";
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
        offset += 30 + (double)strlen(names[i]) + 4 + bp__npy_size(tensors[i]);
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
        bp__npy_write(NULL, tensors[i], &crc);
        ok = bp__zip_header(f, 0, names[i], crc, bp__npy_size(tensors[i]), 0) && bp__npy_write(f, tensors[i], NULL);
    }
    /* the central directory (each CRC computed once more, rather than kept: no allocation), the end record */
    for (i = 0, offset = 0; ok && i < count; i++) {
        bp__npy_write(NULL, tensors[i], &crc);
        ok = bp__zip_header(f, 1, names[i], crc, bp__npy_size(tensors[i]), offset);
        offset += 30 + (double)strlen(names[i]) + 4 + bp__npy_size(tensors[i]);
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
