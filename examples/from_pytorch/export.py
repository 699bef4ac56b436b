"""Train a small PyTorch MLP and a small CNN and export them for backprop.h: the path "train in PyTorch, run in C".

    /usr/bin/python3 examples/from_pytorch/export.py            writes mlp.npz, mlp_io.npz, cnn.npz and cnn_io.npz
                                                                 beside this file (export.py mlp or export.py cnn:
                                                                 only that model's two files)
    /usr/bin/python3 examples/from_pytorch/export.py --check F  loads F (written by bp_mlp_save) into the same
                                                                 nn.Sequential with load_state_dict(strict=True)
                                                                 and checks it equals mlp.npz exactly

mlp.npz      the model's state_dict, as np.savez writes it: "0.weight" 16x4 (nn.Linear keeps out x in),
             "0.bias" (16,), "2.weight", "2.bias", ... (the numbers count every module of the nn.Sequential)
mlp_io.npz   "x": 30 inputs the model never saw, and "logits": what the model returns for them (float32)

cnn.npz      a small CNN on 1x12x12 images (cnn_model() below), 100 Adam steps on 300 images; its state_dict, with each
             conv weight (F, C, K, K) reshaped to (F, C*K*K), the 2-D layout bp_conv2d_forward takes (a .npz
             member for backprop.h is 1-D or 2-D): "0.weight" 4x9, "0.bias" (4,), "3.weight" 8x36, ...
             ("7.weight", "9.weight": nn.Linear's out x in, as for the MLP)
cnn_io.npz   "x": 20 images it never saw, each flattened to one row of 144 (NCHW reshaped to (N, -1)), and
             "logits": what the model returns for them (float32)

examples/from_pytorch/run_mlp.c (run_cnn.c) loads mlp*.npz (cnn*.npz) with backprop.h and checks that its
outputs are PyTorch's.  The .npz files are committed, so the C side (and the test suite) needs no Python.
The MLP's data: 4 features and 3 classes drawn like the Iris data set (each class a Gaussian with Iris's
per-class means and standard deviations), 150 to train on and 30 to compare.  The CNN's: 12x12 images of
a horizontal bar, a vertical bar or a diagonal at a random place, plus Gaussian noise (bars() below).
"""
import os
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))


def model():
    # backprop.h: widths {4, 16, 12, 8, 3}, activations {BP_ACT_RELU, BP_ACT_TANH, BP_ACT_SIGMOID, BP_ACT_NONE}
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 12), nn.Tanh(), nn.Linear(12, 8), nn.Sigmoid(),
                         nn.Linear(8, 3))


def iris_like(rng, per_class):
    means = [[5.01, 3.43, 1.46, 0.25], [5.94, 2.77, 4.26, 1.33], [6.59, 2.97, 5.55, 2.03]]
    stds = [[0.35, 0.38, 0.17, 0.11], [0.52, 0.31, 0.47, 0.20], [0.64, 0.32, 0.55, 0.27]]
    x = np.concatenate([rng.normal(means[c], stds[c], size=(per_class, 4)) for c in range(3)])
    y = np.repeat(np.arange(3), per_class)
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


def export():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x, y = iris_like(rng, 50)
    x_test, _ = iris_like(rng, 10)
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits = net(torch.from_numpy(x_test)).numpy()
    np.savez(os.path.join(HERE, "mlp.npz"), **{k: v.numpy() for k, v in net.state_dict().items()})
    np.savez(os.path.join(HERE, "mlp_io.npz"), x=x_test, logits=logits)
    print(f"trained: loss {loss.item():.4f}; wrote mlp.npz ({', '.join(net.state_dict())}) and mlp_io.npz")


def cnn_model():
    # 1x12x12 -> 4x12x12 -> 4x6x6 -> 8x6x6 -> 8x3x3 = 72 -> 16 -> 3
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 3 * 3, 16), nn.ReLU(), nn.Linear(16, 3))


def bars(rng, n):
    # 3 classes of 12x12 images: a horizontal bar, a vertical bar, a diagonal, each at a random place, + noise
    x = rng.normal(0, 0.3, size=(n, 1, 12, 12))
    y = rng.integers(0, 3, size=n)
    for i in range(n):
        p = rng.integers(2, 10)
        if y[i] == 0:
            x[i, 0, p, :] += 1
        elif y[i] == 1:
            x[i, 0, :, p] += 1
        else:
            x[i, 0] += np.eye(12, k=p - 6)
    return x.astype(np.float32), y


def export_cnn():
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    x, y = bars(rng, 300)
    x_test, _ = bars(rng, 20)
    net = cnn_model()
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(100):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
        loss.backward()
        opt.step()
    with torch.no_grad():
        logits = net(torch.from_numpy(x_test)).numpy()
    # conv weights (F, C, K, K) -> (F, C*K*K); biases and Linear weights as they are
    state = {k: v.numpy().reshape(v.shape[0], -1) if v.dim() == 4 else v.numpy() for k, v in net.state_dict().items()}
    np.savez(os.path.join(HERE, "cnn.npz"), **state)
    np.savez(os.path.join(HERE, "cnn_io.npz"), x=x_test.reshape(len(x_test), -1), logits=logits)
    print(f"trained: loss {loss.item():.4f}; wrote cnn.npz ({', '.join(state)}) and cnn_io.npz")


def check(path):
    net = model()
    net.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(path).items()}, strict=True)
    ref = np.load(os.path.join(HERE, "mlp.npz"))
    for k, v in net.state_dict().items():
        assert v.shape == ref[k].shape and np.array_equal(v.numpy(), ref[k]), k
    print(f"{path}: loads into nn.Sequential (strict), every tensor equal to mlp.npz")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        if len(sys.argv) < 2 or sys.argv[1] == "mlp":
            export()
        if len(sys.argv) < 2 or sys.argv[1] == "cnn":
            export_cnn()
