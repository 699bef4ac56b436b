/* backprop.h - v0.1.0 - backpropagation by hand, in one C header.  Public domain (see end of file).

   A dense tensor, a cache-blocked matmul, hand-written forward and backward passes for a Linear layer,
   ReLU and the mean squared error, an optimizer step and a finite-difference gradient checker.
   Every backward function carries the chain-rule step it implements in a comment above it.
   No dependencies beyond libc and libm.

   DO THIS in exactly one C or C++ file, before the #include:

       #define BACKPROP_IMPLEMENTATION
       #include "backprop.h"

   Every other file includes "backprop.h" without the define.  Link with -lm.
   Never put BACKPROP_IMPLEMENTATION in a header or on a command line.

   Build with optimisation: the matmul kernel is written so the compiler can vectorise it, and only does
   at -O2/-O3.  Fastest: -O3 -march=native -ffp-contract=fast (the last lets the compiler fuse a*b+c into
   one instruction, which -std=c99 otherwise forbids in gcc).  See README.md.

   CONFIGURATION (define before every #include of this file, the same in every file):
       BACKPROP_DOUBLE     bp_real is double instead of float.
       BACKPROP_STATIC     every function is static: a private copy per file, no exported symbols.
   and before the #include that has BACKPROP_IMPLEMENTATION:
       BP_MALLOC(size), BP_FREE(ptr)   your allocator (define both or neither; default malloc/free).
       BP_ASSERT(cond)                 checks of internal invariants (default assert()).
       BP_MATMUL_KC, BP_MATMUL_NC, BP_MATMUL_MC
                                       matmul block sizes; bp_matmul's packing buffers take about
                                       (KC*NC + MC*KC) * sizeof(bp_real) bytes of stack (NC and MC rounded up
                                       to whole register tiles): 80 KB by default for float, 160-164 KB for
                                       double.  Smaller values suit small thread stacks.

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
     - The caller owns every buffer.  Only bp_tensor_new allocates; no forward, backward, loss, optimizer
       or matmul function touches the heap.
     - Gradients OVERWRITE their outputs; they never accumulate.  To accumulate (e.g. over micro-batches),
       compute into a scratch tensor and add, or use bp_matmul with BP_ACCUMULATE.
     - Outputs must not share memory with inputs, except where a function says "may be" (in-place).
     - Every function checks its arguments.  On a bad call (NULL tensor, shapes that do not fit, overlap,
       negative or overflowing sizes, unknown flags) it calls the error handler ONCE with one line naming
       the function and the shapes, e.g.
           bp_linear_forward: x is 8x4 but W is 3x2 (x.cols must equal W.rows)
       The default handler prints that line to stderr and calls abort().  If you install a handler that
       returns, the function returns at once WITHOUT writing any output; functions that return a number
       then return NaN (losses) or +infinity (bp_gradcheck).
     - The error handler is the only global state.  Set it once at start-up, before starting threads.
       Everything else is reentrant: the random generator is a struct the caller owns.
*/

#ifndef BACKPROP_H
#define BACKPROP_H

#include <stdint.h> /* uint64_t */

#define BACKPROP_VERSION_MAJOR 0
#define BACKPROP_VERSION_MINOR 1
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
   Tensors and random numbers
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

/* ---------------------------------------------------------------------------------------------------
   Matrix multiply:  C = op(A) . op(B)   or, with BP_ACCUMULATE,  C += op(A) . op(B)
   op(X) is X, or X transposed when its flag is set.  op(A) is M x K, op(B) is K x N, C is M x N.
   No transpose is ever materialised; all four forms run through the same blocked kernel.
   C must not share memory with A or B.
   --------------------------------------------------------------------------------------------------- */

#define BP_TRANS_A 1
#define BP_TRANS_B 2
#define BP_ACCUMULATE 4

BPDEF void bp_matmul(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags);

/* ---------------------------------------------------------------------------------------------------
   Layers.  x is batch x in, W is in x out, b is 1 x out, z is batch x out: one example per row,
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

/* ---------------------------------------------------------------------------------------------------
   Losses
   --------------------------------------------------------------------------------------------------- */

/* Mean of (yhat - y)^2 over ALL rows*cols elements (summed in double). */
BPDEF bp_real bp_mse_forward(const bp_tensor *yhat, const bp_tensor *y);

/* dyhat = 2/N (yhat - y), N = rows*cols.  dyhat may be yhat or y (in place). */
BPDEF void bp_mse_backward(const bp_tensor *yhat, const bp_tensor *y, bp_tensor *dyhat);

/* ---------------------------------------------------------------------------------------------------
   Optimizers
   --------------------------------------------------------------------------------------------------- */

/* Plain stochastic gradient descent: w -= lr * dw. */
BPDEF void bp_sgd_step(bp_tensor *w, const bp_tensor *dw, bp_real lr);

/* ---------------------------------------------------------------------------------------------------
   Checks
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
   Errors
   --------------------------------------------------------------------------------------------------- */

/* Receives one line such as "bp_matmul: A is 3x4 but B is 5x2 (op(A).cols must equal op(B).rows)". */
typedef void (*bp_error_fn)(const char *message);

/* Installs fn and returns the previous handler (NULL if that was the default); fn == NULL restores the
   default, which prints the message and a newline to stderr and calls abort(). */
BPDEF bp_error_fn bp_set_error_handler(bp_error_fn fn);

#ifdef __cplusplus
}
#endif

#endif /* BACKPROP_H */

/* ===================================================================================================
   IMPLEMENTATION
   =================================================================================================== */

#if defined(BACKPROP_IMPLEMENTATION) && !defined(BP__IMPLEMENTATION_DONE)
#define BP__IMPLEMENTATION_DONE

#include <limits.h> /* INT_MAX */
#include <math.h>   /* sqrt, frexp, HUGE_VAL, fabs */
#include <stdarg.h>
#include <stdio.h>  /* vsnprintf, fputs: the default error handler */
#include <stdlib.h> /* malloc, free, abort */
#include <string.h> /* memset */

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

/* ---- errors: every check reports through here ---------------------------------------------------- */

#if defined(__GNUC__) || defined(__clang__)
__attribute__((noreturn))
#endif
static void bp__default_error_handler(const char *message)
{
    fputs(message, stderr);
    fputc('\n', stderr);
    abort();
}

static bp_error_fn bp__error_handler = bp__default_error_handler; /* the library's only mutable global */

BPDEF bp_error_fn bp_set_error_handler(bp_error_fn fn)
{
    bp_error_fn previous = bp__error_handler;
    bp__error_handler = fn ? fn : bp__default_error_handler;
    return previous == bp__default_error_handler ? (bp_error_fn)0 : previous;
}

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2)))
#endif
static void bp__fail(const char *format, ...)
{
    char message[512];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    bp__error_handler(message);
}

/* A usable tensor: not NULL, sizes >= 0, at most INT_MAX elements, data present unless it is empty.
   Returns 1 (after reporting) if t is unusable.  fn and name make the message. */
static int bp__bad_tensor(const char *fn, const char *name, const bp_tensor *t)
{
    if (!t) {
        bp__fail("%s: %s is NULL", fn, name);
        return 1;
    }
    if (t->rows < 0 || t->cols < 0) {
        bp__fail("%s: %s is %dx%d (sizes must not be negative)", fn, name, t->rows, t->cols);
        return 1;
    }
    if (t->cols > 0 && t->rows > INT_MAX / t->cols) {
        bp__fail("%s: %s is %dx%d (more than INT_MAX elements)", fn, name, t->rows, t->cols);
        return 1;
    }
    if (!t->data && t->rows > 0 && t->cols > 0) {
        bp__fail("%s: %s is %dx%d but its data is NULL (never allocated, or freed)", fn, name, t->rows,
                 t->cols);
        return 1;
    }
    return 0;
}

static int bp__same_shape(const bp_tensor *a, const bp_tensor *b)
{
    return a->rows == b->rows && a->cols == b->cols;
}

/* Reports, and returns 1, unless a and b have the same shape. */
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
    uintptr_t a1 = a0 + (size_t)a->rows * (size_t)a->cols * sizeof(bp_real);
    uintptr_t b1 = b0 + (size_t)b->rows * (size_t)b->cols * sizeof(bp_real);
    return a0 < a1 && b0 < b1 && a0 < b1 && b0 < a1;
}

/* Reports, and returns 1, if output `out` shares memory with `in`.  With in_place_ok, out may be exactly
   in (same data, same shape): elementwise functions read each element before they write it. */
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

static size_t bp__count(const bp_tensor *t) { return (size_t)t->rows * (size_t)t->cols; }

/* ---- tensors -------------------------------------------------------------------------------------- */

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

/* ---- random numbers ------------------------------------------------------------------------------- */

BPDEF void bp_rng_seed(bp_rng *rng, uint64_t seed)
{
    if (!rng) {
        bp__fail("bp_rng_seed: rng is NULL");
        return;
    }
    rng->state = seed;
}

/* splitmix64 (Steele, Lea, Flood 2014): a Weyl sequence, then a bijective mix of its bits. */
BPDEF uint64_t bp_rng_next_u64(bp_rng *rng)
{
    uint64_t z;
    if (!rng) {
        bp__fail("bp_rng_next_u64: rng is NULL");
        return 0;
    }
    z = (rng->state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

BPDEF double bp_rng_uniform(bp_rng *rng)
{
    if (!rng) {
        bp__fail("bp_rng_uniform: rng is NULL");
        return 0;
    }
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
    if (!rng) {
        bp__fail("bp_rng_normal: rng is NULL");
        return 0;
    }
    do {
        u = (double)((int64_t)(bp_rng_next_u64(rng) >> 38) - 33554432) / 33554432.0; /* [-1, 1) */
        v = (double)((int64_t)(bp_rng_next_u64(rng) >> 38) - 33554432) / 33554432.0;
        s = u * u + v * v;
    } while (s >= 1 || s <= 0); /* outside the disc, or its centre */
    return u * sqrt(-2 * bp__log(s) / s);
}

BPDEF void bp_tensor_randn(bp_tensor *t, bp_rng *rng, bp_real std)
{
    size_t i, n;
    if (bp__bad_tensor("bp_tensor_randn", "t", t)) return;
    if (!rng) {
        bp__fail("bp_tensor_randn: rng is NULL (t is %dx%d)", t->rows, t->cols);
        return;
    }
    if (!(std >= 0 && (double)std <= 1e30)) { /* also refuses NaN and infinity */
        bp__fail("bp_tensor_randn: std is %g (t is %dx%d; std must be finite and >= 0)", (double)std, t->rows,
                 t->cols);
        return;
    }
    n = bp__count(t);
    for (i = 0; i < n; i++) t->data[i] = (bp_real)((double)std * bp_rng_normal(rng));
}

/* ---- matmul ----------------------------------------------------------------------------------------
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
   Each C element is summed in the same order (p = 0..K-1) whatever the block sizes, up to rounding
   from the split into KC slices.  Nothing here touches the heap: Ap and Bp live on the stack. */

#if defined(__AVX512F__)
#define BP__VLEN_BYTES 64 /* 32 zmm registers */
#define BP__MR 8
#elif defined(__AVX__)
#define BP__VLEN_BYTES 32 /* 16 ymm registers */
#define BP__MR 6
#elif defined(__ARM_NEON) || defined(__aarch64__)
#define BP__VLEN_BYTES 16 /* 32 q registers */
#define BP__MR 8
#else
#define BP__VLEN_BYTES 16 /* SSE2 and anything else: 16 registers of 16 bytes, or plain scalar code */
#define BP__MR 4
#endif
#define BP__NR (2 * BP__VLEN_BYTES / (int)sizeof(bp_real)) /* two vectors wide */

#ifndef BP_MATMUL_KC
#define BP_MATMUL_KC 128
#endif
#ifndef BP_MATMUL_NC
#define BP_MATMUL_NC 128
#endif
#ifndef BP_MATMUL_MC
#define BP_MATMUL_MC 32
#endif
/* whole tiles, so the packing buffers hold padded blocks exactly */
#define BP__NC_PAD (((BP_MATMUL_NC + BP__NR - 1) / BP__NR) * BP__NR)
#define BP__MC_PAD (((BP_MATMUL_MC + BP__MR - 1) / BP__MR) * BP__MR)

/* Packs op(B)[k0 .. k0+kc, n0 .. n0+nc] into Bp as ceil(nc/NR) panels, each kc rows of NR, zero-padded.
   op(B)(k, n) is B[k][n], or B[n][k] when transposed. */
static void bp__pack_b(bp_real *BP__RESTRICT Bp, const bp_tensor *B, int trans, int k0, int kc, int n0, int nc)
{
    size_t ldb = (size_t)B->cols;
    int j0, p, j;
    for (j0 = 0; j0 < nc; j0 += BP__NR) {
        int nr = nc - j0 < BP__NR ? nc - j0 : BP__NR;
        for (p = 0; p < kc; p++) {
            bp_real *dst = Bp + (size_t)j0 * (size_t)kc + (size_t)p * BP__NR;
            if (!trans) {
                const bp_real *src = B->data + (size_t)(k0 + p) * ldb + (size_t)(n0 + j0);
                if (nr == BP__NR) /* a constant count: copied in registers, not by a memcpy call per row */
                    for (j = 0; j < BP__NR; j++) dst[j] = src[j];
                else
                    for (j = 0; j < nr; j++) dst[j] = src[j];
            } else {
                const bp_real *src = B->data + (size_t)(n0 + j0) * ldb + (size_t)(k0 + p);
                for (j = 0; j < nr; j++) dst[j] = src[(size_t)j * ldb];
            }
            for (; j < BP__NR; j++) dst[j] = 0;
        }
    }
}

/* Packs op(A)[m0 .. m0+mc, k0 .. k0+kc] into Ap as ceil(mc/MR) panels, each kc columns of MR, zero-padded.
   op(A)(m, k) is A[m][k], or A[k][m] when transposed. */
static void bp__pack_a(bp_real *BP__RESTRICT Ap, const bp_tensor *A, int trans, int m0, int mc, int k0, int kc)
{
    size_t lda = (size_t)A->cols;
    int i0, p, i;
    for (i0 = 0; i0 < mc; i0 += BP__MR) {
        int mr = mc - i0 < BP__MR ? mc - i0 : BP__MR;
        for (p = 0; p < kc; p++) {
            bp_real *dst = Ap + (size_t)i0 * (size_t)kc + (size_t)p * BP__MR;
            if (!trans) {
                const bp_real *src = A->data + (size_t)(m0 + i0) * lda + (size_t)(k0 + p);
                for (i = 0; i < mr; i++) dst[i] = src[(size_t)i * lda];
            } else {
                const bp_real *src = A->data + (size_t)(k0 + p) * lda + (size_t)(m0 + i0);
                if (mr == BP__MR) /* a constant count: copied in registers, not by a memcpy call per row */
                    for (i = 0; i < BP__MR; i++) dst[i] = src[i];
                else
                    for (i = 0; i < mr; i++) dst[i] = src[i];
            }
            for (; i < BP__MR; i++) dst[i] = 0;
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
   op(B)), then C[0..mr, 0..nr] = acc, or += acc when add is set.  Edge tiles compute the whole padded
   tile (the padding is zeros) and store only their mr x nr part. */
static void bp__kernel(int kc, const bp_real *BP__RESTRICT Ap, const bp_real *BP__RESTRICT Bp,
                       bp_real *BP__RESTRICT C, size_t ldc, int mr, int nr, int add)
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
    for (i = 0; i < mr; i++) {
        bp_real *c = C + (size_t)i * ldc;
        if (add)
            for (j = 0; j < nr; j++) c[j] += acc[i][j];
        else
            for (j = 0; j < nr; j++) c[j] = acc[i][j];
    }
}

/* The blocked loops (no argument checks: bp_matmul has done them). */
static void bp__gemm(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags, int M, int N, int K)
{
    bp_real Bp[BP_MATMUL_KC * BP__NC_PAD]; /* KC x NC slice of op(B), in NR-wide panels */
    bp_real Ap[BP__MC_PAD * BP_MATMUL_KC]; /* MC x KC block of op(A), in MR-tall panels */
    size_t ldc = (size_t)N;
    int jc, pc, ic, jr, ir;
    BP_ASSERT(M > 0 && N > 0 && K > 0 && C->rows == M && C->cols == N);
    BP_ASSERT(BP_MATMUL_KC > 0 && BP_MATMUL_NC > 0 && BP_MATMUL_MC > 0);
    for (jc = 0; jc < N; jc += BP_MATMUL_NC) {
        int nc = N - jc < BP_MATMUL_NC ? N - jc : BP_MATMUL_NC;
        for (pc = 0; pc < K; pc += BP_MATMUL_KC) {
            int kc = K - pc < BP_MATMUL_KC ? K - pc : BP_MATMUL_KC;
            int add = pc > 0 || (flags & BP_ACCUMULATE); /* the first slice overwrites, unless accumulating */
            bp__pack_b(Bp, B, flags & BP_TRANS_B, pc, kc, jc, nc);
            for (ic = 0; ic < M; ic += BP_MATMUL_MC) {
                int mc = M - ic < BP_MATMUL_MC ? M - ic : BP_MATMUL_MC;
                bp__pack_a(Ap, A, flags & BP_TRANS_A, ic, mc, pc, kc);
                for (jr = 0; jr < nc; jr += BP__NR) {
                    int nr = nc - jr < BP__NR ? nc - jr : BP__NR;
                    for (ir = 0; ir < mc; ir += BP__MR) {
                        int mr = mc - ir < BP__MR ? mc - ir : BP__MR;
                        bp__kernel(kc, Ap + (size_t)ir * (size_t)kc, Bp + (size_t)jr * (size_t)kc,
                                   C->data + (size_t)(ic + ir) * ldc + (size_t)(jc + jr), ldc, mr, nr, add);
                    }
                }
            }
        }
    }
}

BPDEF void bp_matmul(bp_tensor *C, const bp_tensor *A, const bp_tensor *B, int flags)
{
    const char *fn = "bp_matmul";
    int ta, tb, M, K, K2, N;
    if (bp__bad_tensor(fn, "C", C) || bp__bad_tensor(fn, "A", A) || bp__bad_tensor(fn, "B", B)) return;
    if (flags & ~(BP_TRANS_A | BP_TRANS_B | BP_ACCUMULATE)) {
        bp__fail("%s: unknown flags 0x%x (C is %dx%d, A is %dx%d, B is %dx%d; allowed: BP_TRANS_A, BP_TRANS_B, "
                 "BP_ACCUMULATE)",
                 fn, (unsigned)flags, C->rows, C->cols, A->rows, A->cols, B->rows, B->cols);
        return;
    }
    ta = (flags & BP_TRANS_A) != 0;
    tb = (flags & BP_TRANS_B) != 0;
    M = ta ? A->cols : A->rows;
    K = ta ? A->rows : A->cols;
    K2 = tb ? B->cols : B->rows;
    N = tb ? B->rows : B->cols;
    if (K != K2) {
        bp__fail("%s: %s is %dx%d but %s is %dx%d (op(A).cols must equal op(B).rows)", fn, ta ? "A^T" : "A", M, K,
                 tb ? "B^T" : "B", K2, N);
        return;
    }
    if (C->rows != M || C->cols != N) {
        bp__fail("%s: C is %dx%d but %s.%s is %dx%d (C must have the shape of the product)", fn, C->rows,
                 C->cols, ta ? "A^T" : "A", tb ? "B^T" : "B", M, N);
        return;
    }
    if (bp__bad_overlap(fn, "C", C, "A", A, 0) || bp__bad_overlap(fn, "C", C, "B", B, 0)) return;
    if (M == 0 || N == 0) return;
    if (K == 0) { /* an empty sum is 0 */
        if (!(flags & BP_ACCUMULATE)) memset(C->data, 0, bp__count(C) * sizeof(bp_real));
        return;
    }
    bp__gemm(C, A, B, flags, M, N, K);
}

/* ---- linear layer ----------------------------------------------------------------------------------
   Forward:  z[r][j] = sum_k x[r][k] W[k][j] + b[j]      (z = xW + b, one example per row r)       */

BPDEF void bp_linear_forward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *b, bp_tensor *z)
{
    const char *fn = "bp_linear_forward";
    int r, j;
    if (bp__bad_tensor(fn, "x", x) || bp__bad_tensor(fn, "W", W) || bp__bad_tensor(fn, "z", z)) return;
    if (b && bp__bad_tensor(fn, "b", b)) return;
    if (x->cols != W->rows) {
        bp__fail("%s: x is %dx%d but W is %dx%d (x.cols must equal W.rows)", fn, x->rows, x->cols, W->rows,
                 W->cols);
        return;
    }
    if (b && (b->rows != 1 || b->cols != W->cols)) {
        bp__fail("%s: W is %dx%d but b is %dx%d (b must be 1x%d)", fn, W->rows, W->cols, b->rows, b->cols,
                 W->cols);
        return;
    }
    if (z->rows != x->rows || z->cols != W->cols) {
        bp__fail("%s: x is %dx%d and W is %dx%d but z is %dx%d (z must be %dx%d)", fn, x->rows, x->cols, W->rows,
                 W->cols, z->rows, z->cols, x->rows, W->cols);
        return;
    }
    if (bp__bad_overlap(fn, "z", z, "x", x, 0) || bp__bad_overlap(fn, "z", z, "W", W, 0)) return;
    if (b && bp__bad_overlap(fn, "z", z, "b", b, 0)) return;

    bp_matmul(z, x, W, 0); /* z = x.W */
    if (b)
        for (r = 0; r < z->rows; r++) {
            bp_real *z_row = z->data + (size_t)r * (size_t)z->cols;
            for (j = 0; j < z->cols; j++) z_row[j] += b->data[j]; /* z += b, on every row */
        }
}

/* Backward.  The loss L depends on W, b and x only through z, so by the chain rule
       dL/dW[k][j] = sum_r dL/dz[r][j] * dz[r][j]/dW[k][j] = sum_r x[r][k] dz[r][j]   ->  dW = x^T.dz
       dL/db[j]    = sum_r dL/dz[r][j] * 1                                          ->  db = column sums of dz
       dL/dx[r][k] = sum_j dL/dz[r][j] * W[k][j]                                    ->  dx = dz.W^T
   The forward had to cache x (for dW); W is the layer's own.  dx is what the layer below receives. */
BPDEF void bp_linear_backward(const bp_tensor *x, const bp_tensor *W, const bp_tensor *dz, bp_tensor *dx,
                              bp_tensor *dW, bp_tensor *db)
{
    const char *fn = "bp_linear_backward";
    int r, j;
    if (bp__bad_tensor(fn, "x", x) || bp__bad_tensor(fn, "W", W) || bp__bad_tensor(fn, "dz", dz) ||
        bp__bad_tensor(fn, "dW", dW))
        return;
    if (dx && bp__bad_tensor(fn, "dx", dx)) return;
    if (db && bp__bad_tensor(fn, "db", db)) return;
    if (x->cols != W->rows) {
        bp__fail("%s: x is %dx%d but W is %dx%d (x.cols must equal W.rows)", fn, x->rows, x->cols, W->rows,
                 W->cols);
        return;
    }
    if (dz->rows != x->rows || dz->cols != W->cols) {
        bp__fail("%s: x is %dx%d and W is %dx%d but dz is %dx%d (dz must be %dx%d, the shape of z)", fn, x->rows,
                 x->cols, W->rows, W->cols, dz->rows, dz->cols, x->rows, W->cols);
        return;
    }
    if (bp__bad_shapes(fn, "W", W, "dW", dW)) return;
    if (dx && bp__bad_shapes(fn, "x", x, "dx", dx)) return;
    if (db && (db->rows != 1 || db->cols != W->cols)) {
        bp__fail("%s: W is %dx%d but db is %dx%d (db must be 1x%d)", fn, W->rows, W->cols, db->rows, db->cols,
                 W->cols);
        return;
    }
    if (bp__bad_overlap(fn, "dW", dW, "x", x, 0) || bp__bad_overlap(fn, "dW", dW, "W", W, 0) ||
        bp__bad_overlap(fn, "dW", dW, "dz", dz, 0))
        return;
    if (dx && (bp__bad_overlap(fn, "dx", dx, "x", x, 0) || bp__bad_overlap(fn, "dx", dx, "W", W, 0) ||
               bp__bad_overlap(fn, "dx", dx, "dz", dz, 0) || bp__bad_overlap(fn, "dx", dx, "dW", dW, 0)))
        return;
    if (db && (bp__bad_overlap(fn, "db", db, "x", x, 0) || bp__bad_overlap(fn, "db", db, "W", W, 0) ||
               bp__bad_overlap(fn, "db", db, "dz", dz, 0) || bp__bad_overlap(fn, "db", db, "dW", dW, 0) ||
               (dx && bp__bad_overlap(fn, "db", db, "dx", dx, 0))))
        return;

    bp_matmul(dW, x, dz, BP_TRANS_A); /* dW = x^T.dz */
    if (db) {                         /* db = sum over rows of dz: the bias was added to every row */
        for (j = 0; j < db->cols; j++) db->data[j] = 0;
        for (r = 0; r < dz->rows; r++) {
            const bp_real *dz_row = dz->data + (size_t)r * (size_t)dz->cols;
            for (j = 0; j < dz->cols; j++) db->data[j] += dz_row[j];
        }
    }
    if (dx) bp_matmul(dx, dz, W, BP_TRANS_B); /* dx = dz.W^T */
}

/* ---- ReLU ------------------------------------------------------------------------------------------
   Forward:  a = max(0, z), elementwise.                                                              */

BPDEF void bp_relu_forward(const bp_tensor *z, bp_tensor *a)
{
    const char *fn = "bp_relu_forward";
    size_t i, n;
    if (bp__bad_tensor(fn, "z", z) || bp__bad_tensor(fn, "a", a)) return;
    if (bp__bad_shapes(fn, "z", z, "a", a) || bp__bad_overlap(fn, "a", a, "z", z, 1)) return;
    n = bp__count(z);
    for (i = 0; i < n; i++) a->data[i] = z->data[i] < 0 ? 0 : z->data[i]; /* (a NaN stays NaN) */
}

/* Backward:  a = relu(z) has derivative 1 where z > 0 and 0 elsewhere, so  dz = da * 1[z > 0].
   The forward had to cache z (or a: a > 0 exactly where z > 0). */
BPDEF void bp_relu_backward(const bp_tensor *z, const bp_tensor *da, bp_tensor *dz)
{
    const char *fn = "bp_relu_backward";
    size_t i, n;
    if (bp__bad_tensor(fn, "z", z) || bp__bad_tensor(fn, "da", da) || bp__bad_tensor(fn, "dz", dz)) return;
    if (bp__bad_shapes(fn, "z", z, "da", da) || bp__bad_shapes(fn, "z", z, "dz", dz)) return;
    if (bp__bad_overlap(fn, "dz", dz, "da", da, 1) || bp__bad_overlap(fn, "dz", dz, "z", z, 1)) return;
    n = bp__count(z);
    for (i = 0; i < n; i++) dz->data[i] = z->data[i] > 0 ? da->data[i] : 0;
}

/* ---- mean squared error ----------------------------------------------------------------------------
   Forward:  L = (1/N) sum_i (yhat_i - y_i)^2  over all N = rows*cols elements.                        */

BPDEF bp_real bp_mse_forward(const bp_tensor *yhat, const bp_tensor *y)
{
    const char *fn = "bp_mse_forward";
    double sum = 0; /* a double sum: float would lose digits over large batches */
    size_t i, n;
    if (bp__bad_tensor(fn, "yhat", yhat) || bp__bad_tensor(fn, "y", y) || bp__bad_shapes(fn, "yhat", yhat, "y", y))
        return (bp_real)NAN;
    n = bp__count(y);
    if (n == 0) return 0; /* no elements, no error */
    for (i = 0; i < n; i++) {
        double d = (double)yhat->data[i] - (double)y->data[i];
        sum += d * d;
    }
    return (bp_real)(sum / (double)n);
}

/* Backward:  dL/dyhat_i = (1/N) * 2 (yhat_i - y_i).  Nothing cached beyond yhat and y themselves. */
BPDEF void bp_mse_backward(const bp_tensor *yhat, const bp_tensor *y, bp_tensor *dyhat)
{
    const char *fn = "bp_mse_backward";
    size_t i, n;
    bp_real scale;
    if (bp__bad_tensor(fn, "yhat", yhat) || bp__bad_tensor(fn, "y", y) || bp__bad_tensor(fn, "dyhat", dyhat))
        return;
    if (bp__bad_shapes(fn, "yhat", yhat, "y", y) || bp__bad_shapes(fn, "yhat", yhat, "dyhat", dyhat)) return;
    if (bp__bad_overlap(fn, "dyhat", dyhat, "yhat", yhat, 1) || bp__bad_overlap(fn, "dyhat", dyhat, "y", y, 1))
        return;
    n = bp__count(y);
    if (n == 0) return;
    scale = (bp_real)(2.0 / (double)n);
    for (i = 0; i < n; i++) dyhat->data[i] = scale * (yhat->data[i] - y->data[i]);
}

/* ---- optimizers ----------------------------------------------------------------------------------- */

BPDEF void bp_sgd_step(bp_tensor *w, const bp_tensor *dw, bp_real lr)
{
    const char *fn = "bp_sgd_step";
    size_t i, n;
    if (bp__bad_tensor(fn, "w", w) || bp__bad_tensor(fn, "dw", dw)) return;
    if (bp__bad_shapes(fn, "w", w, "dw", dw) || bp__bad_overlap(fn, "w", w, "dw", dw, 0)) return;
    n = bp__count(w);
    for (i = 0; i < n; i++) w->data[i] -= lr * dw->data[i];
}

/* ---- gradient check -------------------------------------------------------------------------------
   The definition of the derivative, evaluated: nudge one parameter by +-eps, rerun the whole forward
   pass (loss), and take the slope.  The central difference is exact for quadratics and has error
   O(eps^2) otherwise, against the rounding error O(machine epsilon / eps) of subtracting two losses. */

BPDEF bp_real bp_gradcheck(bp_real (*loss)(void *ctx), void *ctx, bp_tensor *param, const bp_tensor *grad,
                           bp_real eps)
{
    const char *fn = "bp_gradcheck";
    double worst = 0;
    size_t i, n;
    if (!loss) {
        bp__fail("%s: loss is NULL", fn);
        return (bp_real)HUGE_VAL;
    }
    if (bp__bad_tensor(fn, "param", param) || bp__bad_tensor(fn, "grad", grad) ||
        bp__bad_shapes(fn, "param", param, "grad", grad) || bp__bad_overlap(fn, "param", param, "grad", grad, 0))
        return (bp_real)HUGE_VAL;
    if (!(eps > 0 && (double)eps <= 1e30)) {
        bp__fail("%s: eps is %g (param is %dx%d; eps must be finite and > 0)", fn, (double)eps, param->rows,
                 param->cols);
        return (bp_real)HUGE_VAL;
    }
    n = bp__count(param);
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
        if (denom < 1e-8) denom = 1e-8;
        err = fabs(numeric - analytic) / denom;
        if (err > worst || isnan(err)) worst = err; /* a NaN stays: the result is NaN, never a pass */
    }
    return (bp_real)worst;
}

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
