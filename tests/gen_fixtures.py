"""Generates the committed test fixtures for backprop.h.

What it writes (all under tests/fixtures/, all committed to the repository):

  walkthrough.txt           the textbook numpy Linear -> ReLU -> MSE walkthrough (inputs below): the arrays
                            x y W b z a loss dW db dx, every number written with repr(float), so C's strtod
                            reads back the exact double.
  walkthrough_expected.txt  the lines examples/walkthrough.c prints for loss, dW, db and dx, formatted here
                            from the numpy values with the same printf formats; every line must appear
                            verbatim in that program's output.
  rng.txt                   golden values for backprop.h's random generator (bp_rng_next_u64, bp_rng_uniform,
                            bp_rng_normal) from an independent Python re-implementation of the algorithm
                            documented in backprop.h, bit for bit.

  windows.txt               PyTorch's F.conv2d and F.max_pool2d in float64 autograd over 8 + 8 geometries: inputs,
                            outputs, gradients and max-pooling's argmax (section f) below says the format).

It also prints to stdout the C array literals of x, y and W (17 significant digits, exact) that are pasted
into examples/walkthrough.c.

Rerun from the repository root with Debian's python, which has numpy (the python3 first on PATH may not):

    /usr/bin/python3 tests/gen_fixtures.py

The C tests only read the committed files; they need no Python.  Rerunning should reproduce the files
exactly (numpy's default_rng(0) normal stream has been stable across versions, but that is not promised).

File formats:
  walkthrough.txt   lines starting with '#' are comments.  Then one block per array, in the order
                    x y W b z a loss dW db dx.  A block is a line `name rows cols`, then `rows` lines of
                    `cols` space-separated numbers.  b and db are 1x2, loss is 1x1.
  rng.txt           lines starting with '#' are comments.  Then lines
                        u64 SEED INDEX HEX        (HEX: 16 lowercase hex digits, no 0x)
                        uniform SEED INDEX VALUE
                        normal SEED INDEX VALUE   (VALUE: float.hex(v), e.g. 0x1.8p+0, read exactly by C99 strtod)
                    SEED is decimal, INDEX counts from 0 in the order the values come out of a freshly
                    seeded generator (each kind from its own fresh generator).
  optim.txt         PyTorch's own optimizers run in float64 (torch.optim.SGD(momentum=mu) and torch.optim.Adam),
                    or, if torch cannot be imported, numpy with the textbook formulas (the header line says
                    which).  Whitespace-separated tokens; '#' starts a comment that runs to the end of the line.
                        momentum NAME ROWS COLS STEPS LR MU
                        adam NAME ROWS COLS STEPS LR BETA1 BETA2 EPS
                    then `w` and ROWS*COLS numbers (the start), then for each step t = 1..STEPS:
                        step T   grad <n numbers>   w <n numbers>   vel <n numbers>          (momentum)
                        step T   grad <n numbers>   w <n numbers>   m <n numbers>   v <n>     (adam)
                    the state after that step.  Then `end`.  Numbers are %.17g (exact doubles).
  norms.txt         layer norm, batch norm (training, running statistics over several batches, evaluation),
                    dropout and RMSprop, from PyTorch in float64 (section h below; the format is in the
                    file's header).
  npy/              .npy files written by numpy (np.save, or np.lib.format.write_array for the 2.0 header),
                    good ones and malformed ones (see write_npy below), and npy/expected.txt: for each good
                    file a line `FILE ROWS COLS` and then ROWS lines of COLS numbers, the values np.load
                    reads from it (repr of the double: exact), a 1-D array as 1 x n.
  npz/              .npz archives: written by np.savez itself (the clock fixed at 1980-01-01 so that reruns
                    give the same bytes), by np.savez_compressed, by Python's zipfile in the exact layout
                    bp_npz_save writes (ours_f4.npz, ours_f8.npz: the C test saves the same tensors and
                    compares the bytes; np.load is checked here to read them), and malformed ones (see
                    write_npz below).  npz/expected.txt: for each loadable member of model.npz a line
                    `MEMBER ROWS COLS` then its values as in npy/expected.txt; and a line `list FILE N` then
                    N lines `NAME ROWS COLS` (-1 -1: not loadable), what bp_npz_list must report.
"""

import io
import math
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")

# printf formats shared with examples/walkthrough.c (glibc printf and Python '%' give the same text for the
# same double).
FMT_LOSS = "loss = %.10f"
FMT_ELEM = " % .10f"  # one element; a row line is "name[r] =" or "name =" followed by these


# ---- a) the textbook walkthrough ----------------------------------------------------------------------

def walkthrough():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4))
    y = rng.normal(size=(8, 2))
    W = rng.normal(size=(4, 2)) * 0.1
    b = np.zeros(2)

    # forward
    z = x @ W + b
    a = np.maximum(0, z)
    loss = np.mean((a - y) ** 2)

    # backward
    da = 2 * (a - y) / a.size
    dz = da * (z > 0)
    dW = x.T @ dz
    db = dz.sum(0)
    dx = dz @ W.T

    return dict(x=x, y=y, W=W, b=b, z=z, a=a, loss=loss, dW=dW, db=db, dx=dx)


def as_2d(v):
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 0:
        return v.reshape(1, 1)
    if v.ndim == 1:
        return v.reshape(1, -1)
    return v


def write_walkthrough(arrays):
    path = os.path.join(FIXTURES, "walkthrough.txt")
    with open(path, "w") as f:
        f.write("# generated by tests/gen_fixtures.py with numpy %s -- do not edit, rerun it\n" % np.__version__)
        f.write("# Linear -> ReLU -> MSE, batch 8, in 4, out 2; rng = np.random.default_rng(0)\n")
        f.write("# blocks: `name rows cols`, then rows lines of cols numbers (repr of the double)\n")
        for name in ("x", "y", "W", "b", "z", "a", "loss", "dW", "db", "dx"):
            m = as_2d(arrays[name])
            f.write("%s %d %d\n" % (name, m.shape[0], m.shape[1]))
            for row in m:
                f.write(" ".join(repr(float(v)) for v in row) + "\n")
    return path


def format_rows(name, m):
    """The lines walkthrough.c's print_tensor prints: "name[r] = ..." per row, or "name = ..." for one row."""
    m = as_2d(m)
    lines = []
    for r, row in enumerate(m):
        head = name if m.shape[0] == 1 else "%s[%d]" % (name, r)
        lines.append(head + " =" + "".join(FMT_ELEM % float(v) for v in row))
    return lines


def write_expected(arrays):
    path = os.path.join(FIXTURES, "walkthrough_expected.txt")
    lines = [FMT_LOSS % float(arrays["loss"])]
    for name in ("dW", "db", "dx"):
        lines += format_rows(name, arrays[name])
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def print_c_literals(arrays):
    print("/* pasted from the output of tests/gen_fixtures.py (17 significant digits: exact doubles) */")
    for name in ("x", "y", "W"):
        m = as_2d(arrays[name])
        print("static bp_real %s_data[%d * %d] = {" % (name, m.shape[0], m.shape[1]))
        for row in m:
            print("    " + ", ".join("%.17g" % float(v) for v in row) + ",")
        print("};")


# ---- c) backprop.h's random generator, re-implemented ---------------------------------------------------

MASK64 = (1 << 64) - 1


class SplitMix64:
    """bp_rng: splitmix64 on a 64-bit state (bp_rng_seed, bp_rng_next_u64)."""

    def __init__(self, seed):
        self.state = seed & MASK64

    def next_u64(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self):
        # top 53 bits / 2^53; the int is < 2^53, so float() is exact, as C's (double) cast is
        return float(self.next_u64() >> 11) * (1.0 / 9007199254740992.0)

    def normal(self):
        # Marsaglia polar, u and v with 26 bits: (bits >> 38) - 2^25, over 2^25, in [-1, 1)
        while True:
            u = float((self.next_u64() >> 38) - 33554432) / 33554432.0
            v = float((self.next_u64() >> 38) - 33554432) / 33554432.0
            s = u * u + v * v
            if not (s >= 1 or s == 0):
                break
        return u * math.sqrt(-2.0 * bp_log(s) / s)


def bp_log(x):
    """bp__log from backprop.h, same operations in the same order (Python floats are IEEE doubles)."""
    m, e = math.frexp(x)
    if m < 0.70710678118654752440:
        m *= 2
        e -= 1
    s = (m - 1) / (m + 1)
    s2 = s * s
    term = s
    acc = 0.0
    for k in range(1, 40, 2):  # k = 1, 3, ..., 39: 20 odd terms
        acc += term / float(k)
        term *= s2
    return 2.0 * acc + float(e) * 0.69314718055994530942


def write_rng():
    # independent anchors: the splitmix64 reference outputs for seed 0 (Vigna's splitmix64.c)
    g = SplitMix64(0)
    assert [g.next_u64() for _ in range(3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert abs(bp_log(10.0) - math.log(10.0)) < 1e-15 and abs(bp_log(0.3) - math.log(0.3)) < 1e-15

    path = os.path.join(FIXTURES, "rng.txt")
    with open(path, "w") as f:
        f.write("# generated by tests/gen_fixtures.py (a Python re-implementation of backprop.h's bp_rng)"
                " -- do not edit, rerun it\n")
        f.write("# u64 SEED INDEX HEX | uniform SEED INDEX VALUE | normal SEED INDEX VALUE\n")
        f.write("# SEED decimal; INDEX from 0 on a freshly seeded generator; HEX 16 lowercase digits;"
                " VALUE float.hex (C99 strtod reads it exactly)\n")
        for seed in (0, 42, 0xFFFFFFFFFFFFFFFF):
            g = SplitMix64(seed)
            for i in range(8):
                f.write("u64 %d %d %016x\n" % (seed, i, g.next_u64()))
        g = SplitMix64(42)
        for i in range(8):
            f.write("uniform %d %d %s\n" % (42, i, float.hex(g.uniform())))
        for seed in (42, 7):
            g = SplitMix64(seed)
            for i in range(64):
                f.write("normal %d %d %s\n" % (seed, i, float.hex(g.normal())))
    return path


# ---- d) the optimizers: PyTorch's SGD(momentum) and Adam, step by step ---------------------------------------

# Each case: name, shape, steps, hyperparameters.  The "exact" cases use hyperparameters that are exact in
# binary (a float build of the C code then starts from the same numbers as float64 PyTorch); the "usual"
# ones use the common values (0.9, 0.999, 1e-3, 1e-8), which float rounds.
MOMENTUM_CASES = [
    ("usual", (2, 3), 4, dict(lr=0.1, mu=0.9)),
    ("exact", (1, 4), 3, dict(lr=0.25, mu=0.5)),
]
ADAM_CASES = [
    ("usual", (2, 3), 5, dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8)),
    ("exact", (3, 2), 5, dict(lr=0.0625, beta1=0.875, beta2=1 - 2.0 ** -10, eps=2.0 ** -20)),
]


def optim_inputs(shape, steps, seed):
    """Start weights away from 0 (|w| >= 0.5, so a relative comparison is meaningful), and one gradient per
    step; element 1 gets a zero gradient at step 1 (Adam's 0 / (0 + eps) case)."""
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=shape)
    w0 = np.sign(w0) * (np.abs(w0) + 0.5)
    grads = [rng.normal(size=shape) for _ in range(steps)]
    grads[0].flat[1] = 0.0
    return w0, grads


def run_torch(kind, w0, grads, hp):
    import torch
    p = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    if kind == "momentum":
        opt = torch.optim.SGD([p], lr=hp["lr"], momentum=hp["mu"])
    else:
        opt = torch.optim.Adam([p], lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])
    out = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        st = opt.state[p]
        if kind == "momentum":
            states = [st["momentum_buffer"]]
        else:
            states = [st["exp_avg"], st["exp_avg_sq"]]
        out.append((p.detach().numpy().copy(), [s.detach().numpy().copy() for s in states]))
    return out


def run_numpy(kind, w0, grads, hp):
    """The textbook formulas, as PyTorch documents them (the fallback when torch is missing)."""
    w = w0.copy()
    out = []
    if kind == "momentum":
        vel = np.zeros_like(w)
        for g in grads:
            vel = hp["mu"] * vel + g
            w = w - hp["lr"] * vel
            out.append((w.copy(), [vel.copy()]))
    else:
        m = np.zeros_like(w)
        v = np.zeros_like(w)
        for t, g in enumerate(grads, start=1):
            m = hp["beta1"] * m + (1 - hp["beta1"]) * g
            v = hp["beta2"] * v + (1 - hp["beta2"]) * g * g
            step_size = hp["lr"] / (1 - hp["beta1"] ** t)
            denom = np.sqrt(v) / math.sqrt(1 - hp["beta2"] ** t) + hp["eps"]
            w = w - step_size * m / denom
            out.append((w.copy(), [m.copy(), v.copy()]))
    return out


def write_optim():
    try:
        import torch
        source = "PyTorch %s (torch.optim.SGD(momentum=mu), torch.optim.Adam), float64" % torch.__version__
        run = run_torch
    except ImportError:
        source = ("numpy %s, textbook formulas (torch could not be imported: NOT checked against PyTorch)"
                  % np.__version__)
        run = run_numpy

    def fmt(a):
        return " ".join("%.17g" % float(x) for x in np.asarray(a).ravel())

    path = os.path.join(FIXTURES, "optim.txt")
    with open(path, "w") as f:
        f.write("# generated by tests/gen_fixtures.py -- do not edit, rerun it\n")
        f.write("# expected values from %s\n" % source)
        f.write("# momentum NAME ROWS COLS STEPS LR MU | adam NAME ROWS COLS STEPS LR BETA1 BETA2 EPS\n")
        f.write("# then: w <start>; per step: step T grad <..> w <..> and vel <..> (momentum) or m <..> v <..>"
                " (adam): the state after the step\n")
        seed = 100
        for kind, cases in (("momentum", MOMENTUM_CASES), ("adam", ADAM_CASES)):
            for name, shape, steps, hp in cases:
                seed += 1
                w0, grads = optim_inputs(shape, steps, seed)
                keys = ("lr", "mu") if kind == "momentum" else ("lr", "beta1", "beta2", "eps")
                f.write("%s %s %d %d %d %s\n" % (kind, name, shape[0], shape[1], steps,
                                                 " ".join("%.17g" % hp[k] for k in keys)))
                f.write("w %s\n" % fmt(w0))
                names = ("vel",) if kind == "momentum" else ("m", "v")
                for t, (g, (w, states)) in enumerate(zip(grads, run(kind, w0, grads, hp)), start=1):
                    f.write("step %d\n" % t)
                    f.write("grad %s\n" % fmt(g))
                    f.write("w %s\n" % fmt(w))
                    for sname, sval in zip(names, states):
                        f.write("%s %s\n" % (sname, fmt(sval)))
                f.write("end\n")
    return path


# ---- e) .npy files, good and malformed ----------------------------------------------------------------------

NPY = os.path.join(FIXTURES, "npy")


def npy_bytes(arr, version=None):
    buf = io.BytesIO()
    if version is None:
        np.save(buf, arr)
    else:
        np.lib.format.write_array(buf, arr, version=version)
    return buf.getvalue()


def raw_npy(header_text, data=b"", version=1):
    """A .npy file whose header is written by hand (for the malformed ones), padded as numpy pads."""
    prefix = 10 if version == 1 else 12
    text = header_text + " " * ((64 - (prefix + len(header_text) + 1) % 64) % 64) + "\n"
    size = len(text).to_bytes(2 if version == 1 else 4, "little")
    return b"\x93NUMPY" + bytes([version, 0]) + size + text.encode("latin1") + data


def write_npy():
    """Good files (npy/expected.txt holds their values) and malformed ones.  The C test keeps its own table
    of the malformed ones and the word its failure reason must contain."""
    os.makedirs(NPY, exist_ok=True)
    rng = np.random.default_rng(2024)
    good = {
        # C order, little-endian: also the files bp_tensor_save_npy must reproduce byte for byte
        "f4_c.npy": npy_bytes(rng.normal(size=(2, 3)).astype("<f4")),
        "f8_c.npy": npy_bytes(rng.normal(size=(3, 4)).astype("<f8")),
        "f8_fortran.npy": npy_bytes(np.asfortranarray(rng.normal(size=(3, 2)))),
        "f4_fortran.npy": npy_bytes(np.asfortranarray(rng.normal(size=(2, 5)).astype("<f4"))),
        "f8_big.npy": npy_bytes(rng.normal(size=(2, 3)).astype(">f8")),
        "f4_big.npy": npy_bytes(rng.normal(size=(3, 2)).astype(">f4")),
        "f8_1d.npy": npy_bytes(rng.normal(size=5)),
        "f8_v2.npy": npy_bytes(rng.normal(size=(2, 2)), version=(2, 0)),
        "f4_empty.npy": npy_bytes(np.zeros((0, 3), dtype="<f4")),
        # values a float cannot hold: a float build gets (float) of each (inf, 0, -0)
        "f8_extremes.npy": npy_bytes(np.array([[1e300, -1e-300, 0.1], [-0.0, 5e-324, 1 / 3]])),
    }
    f8 = good["f8_c.npy"]
    data_start = 10 + (f8[8] | f8[9] << 8)
    body = f8[data_start:]  # the 3x4 float64 elements
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }"
    assert f8[10:data_start].decode("latin1").startswith(header)
    assert raw_npy(header, body) == f8  # raw_npy pads exactly as np.save does
    assert good["f8_v2.npy"][6] == 2
    assert np.load(io.BytesIO(good["f8_fortran.npy"])).flags.f_contiguous
    bad = {
        "empty.npy": b"",
        "truncated_data.npy": f8[:-4],
        "truncated_header.npy": f8[:40],
        "bad_magic.npy": b"\x93NUMPX" + f8[6:],
        "not_npy.npy": b"x,y\n1,2\n3,4\n",
        "int64.npy": npy_bytes(np.arange(6, dtype="<i8").reshape(2, 3)),
        "f2.npy": npy_bytes(np.zeros((2, 2), dtype="<f2")),
        "3d.npy": npy_bytes(np.zeros((2, 2, 2))),
        "0d.npy": npy_bytes(np.float64(3.0)),
        "huge_shape.npy": raw_npy(header.replace("(3, 4)", "(100000, 100000)"), body),
        # within INT_MAX elements (1.6e9) but the 12.8 GB of data are not there: refused before allocating
        "big_shape_no_data.npy": raw_npy(header.replace("(3, 4)", "(40000, 40000)"), body),
        "trailing.npy": f8 + b"\0" * 8,
        "bad_dict.npy": raw_npy(header.replace("'<f8',", "'<f8'"), body),
        "not_dict.npy": raw_npy("descr=<f8 shape=3x4", body),
        "bad_version.npy": f8[:6] + b"\x04\x00" + f8[8:],
        "missing_shape.npy": raw_npy("{'descr': '<f8', 'fortran_order': False, }", body),
        "bad_fortran.npy": raw_npy(header.replace("False", "0"), body),
        "negative_shape.npy": raw_npy(header.replace("(3, 4)", "(-3, 4)"), body),
        "extra_key.npy": raw_npy(header.replace("}", "'zzz': 1, }"), body),
    }
    written = []
    for name, data in sorted(good.items()) + sorted(bad.items()):
        path = os.path.join(NPY, name)
        with open(path, "wb") as f:
            f.write(data)
        written.append(path)
    path = os.path.join(NPY, "expected.txt")
    with open(path, "w") as f:
        f.write("# generated by tests/gen_fixtures.py with numpy %s -- do not edit, rerun it\n" % np.__version__)
        f.write("# FILE ROWS COLS, then ROWS lines of COLS values: what np.load reads (repr: exact doubles);"
                " a 1-D array as 1 x n\n")
        for name in sorted(good):
            a = np.load(os.path.join(NPY, name)).astype(np.float64)
            if a.ndim == 1:
                a = a.reshape(1, -1)
            f.write("%s %d %d\n" % (name, a.shape[0], a.shape[1]))
            for row in a:
                f.write(" ".join(repr(float(v)) for v in row) + "\n")
    written.append(path)
    return written


# ---- f) convolution and max-pooling: PyTorch's F.conv2d and F.max_pool2d, float64 autograd -------------------
#
# windows.txt, read by tests/test_layers.c (conv2d_vs_pytorch, maxpool2d_vs_pytorch).  The same block format as
# walkthrough.txt (`name rows cols`, then the numbers, repr of the double: exact); '#' lines are comments.
#   conv  1 9   B C H W F K S P HAS_BIAS, then blocks x (B x CHW), W (F x CKK), b (1 x F, zeros if no bias),
#               dy (B x F*OH*OW, the upstream gradient), y, dx, dW, db: torch's y = F.conv2d(x, W, b, S, P) and
#               the gradients of sum(y * dy), all reshaped to backprop.h's 2-D layouts.
#   pool  1 8   B C H W K S P NANS, then nan (1 x NANS: flat indices into x that hold NaN; x is written with 0
#               there, so the C side needs no "nan" in strtod), x, dy, y (0 where torch's y is NaN), argmax
#               (torch's return_indices, h*W + w within the plane), dx.
#   end 1 1     then 0.
# The geometries catch the usual bugs: kernel 1/3/5 (and the whole image), stride 1/2/3 with sizes not
# divisible by it, pad 0/1/2, non-square images, several channels and filters, no bias; for pooling ties
# (small integers, overlapping windows), all-negative inputs with padding (padding is -inf, not 0), and NaNs.

CONV_CASES = [  # B C H W F K S P bias
    (2, 1, 5, 5, 1, 1, 1, 0, 1),
    (2, 3, 7, 5, 4, 3, 1, 1, 1),
    (3, 2, 8, 7, 3, 3, 2, 0, 1),
    (2, 2, 9, 11, 5, 5, 3, 2, 1),
    (1, 4, 6, 6, 2, 5, 1, 2, 0),
    (2, 1, 4, 4, 2, 4, 1, 0, 1),
    (2, 3, 10, 6, 6, 3, 2, 1, 1),
    (1, 2, 5, 4, 3, 3, 1, 2, 1),
]
POOL_CASES = [  # B C H W K S P kind
    (2, 3, 6, 6, 2, 2, 0, "random"),
    (2, 2, 7, 5, 3, 2, 1, "random"),
    (1, 2, 9, 8, 3, 3, 0, "random"),
    (2, 1, 5, 7, 5, 1, 2, "random"),
    (2, 2, 6, 5, 3, 1, 1, "ties"),
    (1, 1, 5, 4, 1, 2, 0, "random"),
    (1, 2, 6, 6, 2, 2, 0, "nan"),
    (2, 2, 7, 6, 3, 2, 1, "negative"),
]


def write_windows():
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("/* torch cannot be imported: tests/fixtures/windows.txt NOT rewritten */")
        return []
    rng = np.random.default_rng(13)
    path = os.path.join(FIXTURES, "windows.txt")

    def block(f, name, a):
        m = np.asarray(a, dtype=np.float64).reshape(np.asarray(a).shape[0] if np.ndim(a) > 1 else 1, -1)
        f.write("%s %d %d\n" % (name, m.shape[0], m.shape[1]))
        for row in m:
            f.write(" ".join(repr(float(v)) for v in row) + "\n")

    with open(path, "w") as f:
        f.write("# generated by tests/gen_fixtures.py with PyTorch %s (float64 autograd) -- do not edit, rerun it\n"
                % torch.__version__)
        f.write("# conv: B C H W F K S P HAS_BIAS, x W b dy y dx dW db;  pool: B C H W K S P NANS, nan x dy y argmax dx\n")
        for B, C, H, W, Fn, K, S, P, bias in CONV_CASES:
            x = torch.tensor(rng.normal(size=(B, C, H, W)), requires_grad=True)
            w = torch.tensor(rng.normal(size=(Fn, C, K, K)) / K, requires_grad=True)
            b = torch.tensor(rng.normal(size=Fn) if bias else np.zeros(Fn), requires_grad=True)
            y = F.conv2d(x, w, b if bias else None, stride=S, padding=P)
            dy = torch.tensor(rng.normal(size=tuple(y.shape)))
            (y * dy).sum().backward()
            f.write("# conv2d %dx%dx%dx%d, %d filters, kernel %d, stride %d, pad %d%s\n"
                    % (B, C, H, W, Fn, K, S, P, "" if bias else ", no bias"))
            block(f, "conv", [[B, C, H, W, Fn, K, S, P, bias]])
            block(f, "x", x.detach().reshape(B, -1))
            block(f, "W", w.detach().reshape(Fn, -1))
            block(f, "b", b.detach().reshape(1, -1))
            block(f, "dy", dy.reshape(B, -1))
            block(f, "y", y.detach().reshape(B, -1))
            block(f, "dx", x.grad.reshape(B, -1))
            block(f, "dW", w.grad.reshape(Fn, -1))
            block(f, "db", (b.grad if bias else torch.zeros(Fn)).reshape(1, -1))
        for B, C, H, W, K, S, P, kind in POOL_CASES:
            if kind == "ties":
                xn = rng.integers(0, 3, size=(B, C, H, W)).astype(np.float64)
            elif kind == "negative":
                xn = -np.abs(rng.normal(size=(B, C, H, W))) - 1
            else:
                xn = rng.normal(size=(B, C, H, W))
            nans = []
            if kind == "nan":  # windows with one NaN, two NaNs, a NaN and a tie, and no NaN
                xn = rng.integers(0, 3, size=(B, C, H, W)).astype(np.float64)
                nans = [1, 6, 7, 14, 20, 21, 36 + 3, 36 + 9, 36 + 10]
                xn.reshape(-1)[nans] = np.nan
            x = torch.tensor(xn, requires_grad=True)
            y, idx = F.max_pool2d(x, K, S, P, return_indices=True)
            dy = torch.tensor(rng.normal(size=tuple(y.shape)))
            (y * dy).sum().backward()
            f.write("# max_pool2d %dx%dx%dx%d, kernel %d, stride %d, pad %d, %s\n" % (B, C, H, W, K, S, P, kind))
            block(f, "pool", [[B, C, H, W, K, S, P, len(nans)]])
            block(f, "nan", [nans] if nans else np.zeros((1, 0)))
            block(f, "x", np.nan_to_num(xn, nan=0.0).reshape(B, -1))
            block(f, "dy", dy.reshape(B, -1))
            block(f, "y", np.nan_to_num(y.detach().numpy(), nan=0.0).reshape(B, -1))
            block(f, "argmax", idx.reshape(B, -1).numpy())
            block(f, "dx", x.grad.reshape(B, -1))
        block(f, "end", [[0]])
    return [path]

# ---- g) .npz archives, good and malformed -------------------------------------------------------------------

NPZ = os.path.join(FIXTURES, "npz")
EPOCH_1980 = 315532800  # 1980-01-01 00:00:00 UTC, the earliest time a ZIP header can hold


def savez_bytes(compressed=False, **arrays):
    """What np.savez (or np.savez_compressed) writes, with the clock fixed at 1980-01-01 00:00 so that the
    member time stamps, and so the bytes, are the same on every run."""
    import time
    import zipfile
    real_time, real_tz = time.time, os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    time.time = lambda: float(EPOCH_1980)
    try:
        buf = io.BytesIO()
        (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    finally:
        time.time = real_time
        if real_tz is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = real_tz
        time.tzset()
    assert zipfile.ZipFile(io.BytesIO(buf.getvalue())).testzip() is None
    return buf.getvalue()


def zip_like_bp(members, comment=b""):
    """The archive bp_npz_save writes, made by Python's zipfile (an independent writer): stored members in
    the order given, version 2.0 made on Unix, no extra fields, every time stamp 1980-01-01 00:00, each
    member a regular file rw-r--r--."""
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED, allowZip64=False) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.create_system = 3  # Unix
            info.create_version = 20
            info.extract_version = 20
            info.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
            z.writestr(info, data)
        z.comment = comment
    return buf.getvalue()


def streamed_zip(members):
    """A ZIP written to a stream that cannot seek: zipfile then puts data descriptors after the members
    (flag bit 3), which np.savez never does."""
    import zipfile

    class NoSeek(io.RawIOBase):
        def __init__(self):
            self.data = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.data += b
            return len(b)

    out = NoSeek()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in members:
            with z.open(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), "w") as f:
                f.write(data)
    return bytes(out.data)


def zip_offsets(data):
    """(local header offsets, central entry offsets, end record offset) of a ZIP without a comment."""
    end = len(data) - 22
    assert data[end:end + 4] == b"PK\x05\x06"
    count = int.from_bytes(data[end + 10:end + 12], "little")
    pos = int.from_bytes(data[end + 16:end + 20], "little")
    central, local = [], []
    for _ in range(count):
        assert data[pos:pos + 4] == b"PK\x01\x02"
        central.append(pos)
        local.append(int.from_bytes(data[pos + 42:pos + 46], "little"))
        n, x, c = (int.from_bytes(data[pos + k:pos + k + 2], "little") for k in (28, 30, 32))
        pos += 46 + n + x + c
    return local, central, end


def patched(data, at, new):
    data = bytearray(data)
    data[at:at + len(new)] = new
    return bytes(data)


def zip64_zip(members):
    """A stored ZIP, written here field by field, whose sizes and offsets are all in ZIP64 extra fields (the
    32-bit fields 0xffffffff), in the local headers and in the directory, as writers of big archives do."""
    import struct
    import zlib
    out, directory = b"", b""
    for name, data in members:
        name = name.encode()
        crc = zlib.crc32(data)
        extra = struct.pack("<HHQQ", 1, 16, len(data), len(data))
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF, len(name),
                           len(extra)) + name + extra + data
        extra = struct.pack("<HHQQQ", 1, 24, len(data), len(data), offset)
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF,
                                 0xFFFFFFFF, len(name), len(extra), 0, 0, 0, 0, 0xFFFFFFFF) + name + extra
    return out + directory + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory),
                                         len(out), 0)


def write_npz():
    """Good and malformed archives, npz/expected.txt.  The C test keeps its own table of the malformed ones
    and the word its failure reason must contain."""
    os.makedirs(NPZ, exist_ok=True)
    rng = np.random.default_rng(14)
    # a PyTorch-like state_dict: dotted names, float32 weights (out x in) and biases (1-D), and members that
    # do not load into a tensor (an int64 counter, as BatchNorm's num_batches_tracked; a 3-D array)
    model = {
        "fc1.weight": rng.normal(size=(4, 3)).astype("<f4"),
        "fc1.bias": rng.normal(size=4).astype("<f4"),
        "fc2.weight": np.asfortranarray(rng.normal(size=(2, 4))),
        "fc2.bias": rng.normal(size=2).astype(">f8"),
        "empty": np.zeros((0, 3), dtype="<f4"),
        "steps": np.array(7, dtype="<i8"),
        "cube": np.zeros((2, 2, 2), dtype="<f4"),
    }
    model_npz = savez_bytes(**model)
    # np.savez forces ZIP64 extra fields into its local headers: the reader must take them
    local, central, end = zip_offsets(model_npz)
    x = local[0] + 30 + len("fc1.weight.npy")
    assert model_npz[local[0] + 28] == 20 and model_npz[x:x + 4] == b"\x01\x00\x10\x00"
    # the tensors bp_npz_save must write byte for byte: the same in zipfile's hands, float32 and float64
    ours = {}
    for kind in ("f4", "f8"):
        a = rng.normal(size=(2, 3)).astype("<" + kind)
        b = rng.normal(size=(1, 4)).astype("<" + kind)
        e = np.zeros((0, 2), dtype="<" + kind)
        ours[kind] = zip_like_bp([("W1.npy", npy_bytes(a)), ("layer.bias.npy", npy_bytes(b)), ("e.npy", npy_bytes(e)),
                                  ("gr\u00f6\u00dfe.npy", npy_bytes(b))])  # UTF-8 (zipfile sets flag 11)
        back = np.load(io.BytesIO(ours[kind]))
        assert back.files == ["W1", "layer.bias", "e", "gr\u00f6\u00dfe"]
        assert np.array_equal(back["W1"], a) and np.array_equal(back["layer.bias"], b) and back["e"].shape == (0, 2)
    f8 = npy_bytes(rng.normal(size=(3, 4)))
    two = zip_like_bp([("a.npy", f8), ("b.npy", f8)])
    (la, lb), (ca, cb), two_end = zip_offsets(two)
    data_a = la + 30 + 5  # where a.npy's bytes start
    good = {
        "model.npz": model_npz,
        "empty.npz": savez_bytes(),
        "comment.npz": zip_like_bp([("a.npy", f8)], comment=b"a ZIP comment at the end"),
        "ours_f4.npz": ours["f4"],
        "ours_f8.npz": ours["f8"],
        "two.npz": two,
        "zip64_fields.npz": zip64_zip([("a.npy", f8), ("b.npy", npy_bytes(np.arange(4.0)))]),
    }
    zip64_end = (b"PK\x06\x06" + (44).to_bytes(8, "little") + bytes(4) + bytes(8) + (2).to_bytes(8, "little") * 2
                 + (cb - ca + 46 + 5).to_bytes(8, "little") + ca.to_bytes(8, "little")
                 + b"PK\x06\x07" + bytes(4) + two_end.to_bytes(8, "little") + (1).to_bytes(4, "little"))
    bad = {
        "compressed.npz": savez_bytes(compressed=True, a=np.ones(3)),
        "truncated.npz": model_npz[:-30],
        "trailing_bytes.npz": two + b"\0" * 5,
        "npy_not_npz.npz": f8,
        "zero_bytes.npz": b"",
        "not_npy_member.npz": zip_like_bp([("a.npy", f8), ("notes.txt", b"hello")]),
        "bad_member_bytes.npz": zip_like_bp([("a.npy", b"x,y\n1,2\n")]),
        "duplicate.npz": zip_like_bp([("a.npy", f8), ("a.npy", f8)]),
        "data_descriptor.npz": streamed_zip([("a.npy", f8)]),
        "zip64_end.npz": two[:two_end] + zip64_end + two[two_end:],
        "bad_crc.npz": patched(two, data_a + len(f8) - 1, bytes([two[data_a + len(f8) - 1] ^ 1])),
        "multi_part.npz": patched(two, two_end + 4, b"\x01\x00"),
        "entries_on_disk.npz": patched(two, two_end + 8, b"\x01\x00"),  # 1 of the 2 entries "on this disk"
        "empty_name.npz": zip_like_bp([(".npy", f8)]),  # what np.savez(**{"": a}) writes: no name to load by
        "count_lies.npz": patched(two, two_end + 8, b"\x03\x00\x03\x00"),
        "dir_offset_lies.npz": patched(two, two_end + 16, (ca + 1).to_bytes(4, "little")),
        "local_offset_lies.npz": patched(two, cb + 42, (lb + 4).to_bytes(4, "little")),
        "size_lies.npz": patched(patched(two, cb + 20, (len(f8) + 1).to_bytes(4, "little")), cb + 24,
                                 (len(f8) + 1).to_bytes(4, "little")),
        "sizes_differ.npz": patched(two, cb + 20, (len(f8) - 1).to_bytes(4, "little")),
        "local_name_differs.npz": patched(two, lb + 30, b"c"),
        "encrypted.npz": patched(two, ca + 8, b"\x01\x00"),
        "past_directory.npz": patched(patched(two, cb + 20, (len(f8) + 200).to_bytes(4, "little") * 2), lb + 18,
                                      (len(f8) + 200).to_bytes(4, "little") * 2),
        "bzip2.npz": patched(two, ca + 10, b"\x0c\x00"),
        "local_flags.npz": patched(two, la + 6, b"\x08\x00"),
        "local_method.npz": patched(two, la + 8, b"\x08\x00"),
        "local_crc.npz": patched(two, la + 14, bytes([two[la + 14] ^ 1])),
        "zip64_value_missing.npz": patched(two, ca + 24, b"\xff\xff\xff\xff"),
        "disk_start.npz": patched(two, ca + 34, b"\x01\x00"),
        "offset_past_directory.npz": patched(two, cb + 42, ca.to_bytes(4, "little")),
        "nul_in_name.npz": patched(two, cb + 46, b"\x00"),
        "entry_misplaced.npz": patched(two, cb, b"PK\x01\x03"),
        "entry_past_directory.npz": patched(two, cb + 32, (200).to_bytes(2, "little")),
        "directory_extra_bytes.npz": patched(two, two_end + 8, b"\x01\x00\x01\x00"),
        "local_name_too_long.npz": patched(two, lb + 26, b"\xff\xff"),
        "bad_zip64_extra.npz": patched(model_npz, local[0] + 30 + len("fc1.weight.npy") + 2, b"\x20\x00"),
    }
    for name in ("comment.npz", "zip64_fields.npz", "two.npz"):
        assert zipfile_reads(good[name]) and len(np.load(io.BytesIO(good[name])).files) > 0
    assert zipfile_reads(bad["data_descriptor.npz"])
    assert bad["data_descriptor.npz"][6] & 8
    written = []
    for name, data in sorted(good.items()) + sorted(bad.items()):
        path = os.path.join(NPZ, name)
        with open(path, "wb") as f:
            f.write(data)
        written.append(path)
    path = os.path.join(NPZ, "expected.txt")
    with open(path, "w") as f:
        f.write("# generated by tests/gen_fixtures.py with numpy %s -- do not edit, rerun it\n" % np.__version__)
        f.write("# MEMBER ROWS COLS + ROWS lines of values: model.npz's loadable members as np.load reads them;"
                " `list FILE N` + N lines NAME ROWS COLS: the members bp_npz_list reports (-1 -1: refused)\n")
        with np.load(os.path.join(NPZ, "model.npz")) as z:
            for name in z.files:
                a = z[name]
                if a.dtype.kind != "f" or a.ndim not in (1, 2):
                    continue
                a = a.astype(np.float64).reshape(1, -1) if a.ndim == 1 else a.astype(np.float64)
                f.write("%s %d %d\n" % (name, a.shape[0], a.shape[1]))
                for row in a:
                    f.write(" ".join(repr(float(v)) for v in row) + "\n")
        for file in ("model.npz", "empty.npz", "ours_f4.npz", "comment.npz", "zip64_fields.npz"):
            with np.load(os.path.join(NPZ, file)) as z:
                f.write("list %s %d\n" % (file, len(z.files)))
                for name in z.files:
                    a = z[name]
                    ok = a.dtype.kind == "f" and a.dtype.itemsize in (4, 8) and a.ndim in (1, 2)
                    shape = ((1,) + a.shape if a.ndim == 1 else a.shape) if ok else (-1, -1)
                    f.write("%s %d %d\n" % (name, shape[0], shape[1]))
    written.append(path)
    return written


def zipfile_reads(data):
    import zipfile
    return zipfile.ZipFile(io.BytesIO(data)).testzip() is None

# ---- h) normalisation, dropout and RMSprop: PyTorch float64 autograd ---------------------------------------
# Everything in this section writes tests/fixtures/norms.txt; the convolution and pooling fixtures live in
# their own section.  Inputs are rounded to float32 values first (as float64 numbers), so a float build of
# the C code starts from exactly the same inputs as PyTorch.

def f32(a):
    """a rounded to float32 values, kept as float64"""
    return np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)


# layernorm/batchnorm NAME B C MEAN_SHIFT: the shift (1000) makes a large mean next to a spread of ~1
NORM_CASES = [
    ("layernorm", "small", 4, 6, 0.0),
    ("layernorm", "mean1000", 3, 8, 1000.0),
    ("layernorm", "one_feature", 2, 1, 0.0),
    ("batchnorm", "small", 8, 5, 0.0),
    ("batchnorm", "mean1000", 16, 3, 1000.0),
    ("batchnorm", "batch2", 2, 4, 0.0),
]
NORM_EPS = 1e-5
RUNNING = dict(batches=3, B=6, C=4, momentum=0.1, eps=1e-5)
DROPOUT_P = [0.25, 0.5]
RMSPROP_CASES = [
    ("usual", (2, 3), 5, dict(lr=1e-2, alpha=0.99, eps=1e-8)),
    ("exact", (3, 2), 5, dict(lr=0.0625, alpha=0.875, eps=2.0 ** -20)),
]


def norm_case(torch, kind, B, C, shift, rng):
    x = f32(rng.normal(size=(B, C)) + shift)
    gamma = f32(rng.normal(size=(1, C)))
    beta = f32(rng.normal(size=(1, C)))
    dy = f32(rng.normal(size=(B, C)))
    xt = torch.tensor(x, requires_grad=True)
    if kind == "layernorm":
        m = torch.nn.LayerNorm(C, eps=NORM_EPS, dtype=torch.float64)
        dim = 1
    else:
        m = torch.nn.BatchNorm1d(C, eps=NORM_EPS, dtype=torch.float64)
        m.train()
        dim = 0
    with torch.no_grad():
        m.weight.copy_(torch.tensor(gamma[0]))
        m.bias.copy_(torch.tensor(beta[0]))
    if kind == "batchnorm" and B == 1:
        raise ValueError("torch refuses batch norm on one example")
    y = m(xt)
    y.backward(torch.tensor(dy))
    var, mean = torch.var_mean(xt.detach(), dim=dim, unbiased=False, keepdim=True)
    rstd = torch.rsqrt(var + NORM_EPS)
    return dict(x=x, gamma=gamma, beta=beta, dy=dy, y=y.detach().numpy(), mean=mean.numpy(), rstd=rstd.numpy(),
                dx=xt.grad.numpy(), dgamma=m.weight.grad.numpy().reshape(1, C),
                dbeta=m.bias.grad.numpy().reshape(1, C))


def write_norm_block(f, name, a):
    a = as_2d(a)
    f.write("%s %d %d\n" % (name, a.shape[0], a.shape[1]))
    for row in a:
        f.write(" ".join(repr(float(v)) for v in row) + "\n")


def write_norms():
    import torch
    torch.set_default_dtype(torch.float64)
    rng = np.random.default_rng(1300)
    path = os.path.join(FIXTURES, "norms.txt")
    with open(path, "w") as f:
        f.write("# generated by tests/gen_fixtures.py with PyTorch %s, float64 -- do not edit, rerun it\n"
                % torch.__version__)
        f.write("# a case line, then blocks `name rows cols` + rows lines of cols numbers (repr: exact doubles):\n")
        f.write("#   layernorm|batchnorm NAME EPS: x gamma beta dy y mean rstd dx dgamma dbeta"
                " (torch.nn.LayerNorm / BatchNorm1d in train(), autograd)\n")
        f.write("#   running NAME EPS MOMENTUM BATCHES: per batch x running_mean running_var (BatchNorm1d's"
                " buffers after that batch), then x gamma beta y (eval())\n")
        f.write("#   dropout NAME P: x y dy dx (torch.nn.functional.dropout, training; its own random mask)\n")
        f.write("#   rmsprop NAME LR ALPHA EPS STEPS: w, then per step grad w v (torch.optim.RMSprop; v is"
                " its square_avg)\n")
        f.write("# every input is a float32 value\n")
        for kind, name, B, C, shift in NORM_CASES:
            a = norm_case(torch, kind, B, C, shift, rng)
            f.write("%s %s %r\n" % (kind, name, NORM_EPS))
            for k in ("x", "gamma", "beta", "dy", "y", "mean", "rstd", "dx", "dgamma", "dbeta"):
                write_norm_block(f, k, a[k])

        # running statistics over several batches, then evaluation mode
        B, C, mom = RUNNING["B"], RUNNING["C"], RUNNING["momentum"]
        m = torch.nn.BatchNorm1d(C, eps=RUNNING["eps"], momentum=mom, dtype=torch.float64)
        m.train()
        f.write("running default %r %r %d\n" % (RUNNING["eps"], mom, RUNNING["batches"]))
        for k in range(RUNNING["batches"]):
            x = f32(rng.normal(size=(B, C)) * (k + 1) + 3 * k + (1000 if k == 2 else 0))
            with torch.no_grad():
                m(torch.tensor(x))
            write_norm_block(f, "x", x)
            write_norm_block(f, "running_mean", m.running_mean.numpy().reshape(1, C))
            write_norm_block(f, "running_var", m.running_var.numpy().reshape(1, C))
        gamma, beta = f32(rng.normal(size=(1, C))), f32(rng.normal(size=(1, C)))
        with torch.no_grad():
            m.weight.copy_(torch.tensor(gamma[0]))
            m.bias.copy_(torch.tensor(beta[0]))
        m.eval()
        x = f32(rng.normal(size=(5, C)) * 3 + 300)
        with torch.no_grad():
            y = m(torch.tensor(x)).numpy()
        for k, v in (("x", x), ("gamma", gamma), ("beta", beta), ("y", y)):
            write_norm_block(f, k, v)

        # dropout: torch's own mask (its generator is not ours); the C test takes the mask from y
        torch.manual_seed(13)
        for p in DROPOUT_P:
            x = f32(rng.normal(size=(6, 7)))
            x[x == 0] = 1.0  # a kept element must be told from a dropped one by y != 0
            dy = f32(rng.normal(size=(6, 7)))
            xt = torch.tensor(x, requires_grad=True)
            y = torch.nn.functional.dropout(xt, p=p, training=True)
            y.backward(torch.tensor(dy))
            f.write("dropout p%g %r\n" % (p, p))
            for k, v in (("x", x), ("y", y.detach().numpy()), ("dy", dy), ("dx", xt.grad.numpy())):
                write_norm_block(f, k, v)

        # RMSprop, step by step
        for name, shape, steps, hp in RMSPROP_CASES:
            w0 = f32(rng.normal(size=shape))
            w0 = np.sign(w0) * (np.abs(w0) + 0.5)
            grads = [f32(rng.normal(size=shape)) for _ in range(steps)]
            grads[0].flat[1] = 0.0  # 0 / (sqrt(0) + eps)
            p_ = torch.tensor(w0, requires_grad=True)
            opt = torch.optim.RMSprop([p_], lr=hp["lr"], alpha=hp["alpha"], eps=hp["eps"])
            f.write("rmsprop %s %r %r %r %d\n" % (name, hp["lr"], hp["alpha"], hp["eps"], steps))
            write_norm_block(f, "w", w0)
            for g in grads:
                p_.grad = torch.tensor(g)
                opt.step()
                write_norm_block(f, "grad", g)
                write_norm_block(f, "w", p_.detach().numpy())
                write_norm_block(f, "v", opt.state[p_]["square_avg"].numpy())
        f.write("end\n")
    return path


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    arrays = walkthrough()
    written = [write_walkthrough(arrays), write_expected(arrays), write_rng(), write_optim()] + write_npy()
    written += write_windows()  # f) convolution and max-pooling
    written += write_npz()  # g) .npz archives
    written.append(write_norms())  # h) normalisation, dropout, RMSprop
    print_c_literals(arrays)
    for p in written:
        print("/* wrote %s */" % os.path.relpath(p))


if __name__ == "__main__":
    main()
