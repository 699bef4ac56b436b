"""tests/bench_torch.py - the PyTorch side of `make bench`: microseconds per training step of the same network
tests/bench.c times, Linear(784->256) -> ReLU -> Linear(256->10) -> MSE with plain SGD, at batch 1, 64, 256,
on ONE thread (torch.set_num_threads(1)), forward + backward + update, as a PyTorch user writes it; then the
CNN of examples/fashion_cnn.c, one Adam step at batch 64 (line `torch_cnn 64 <us>`).

Method as in bench.c: one timing = enough back-to-back steps to last >= 20 ms; the median of 7 timings.
Prints one line per batch size, `torch <batch> <median us per step> <fastest>`, which bench.c reads (make
bench passes the file) to print the ratio next to its own figures.  Then `torch_cnn 64 <us per step>` (the
CNN of examples/fashion_cnn.c) and `torch fashion <us per step>`: the network of examples/fashion_mnist.c
with Adam (fashion_us below; bench.c's part 6 times the same steps).  Run with Debian's python3
(apt-get install -y python3-torch):
    /usr/bin/python3 tests/bench_torch.py
"""
import statistics
import sys
import time

import torch

torch.set_num_threads(1)
torch.manual_seed(0)
IN, HIDDEN, OUT, LR = 784, 256, 10, 0.01


def step_fn(batch):
    model = torch.nn.Sequential(torch.nn.Linear(IN, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, OUT))
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.MSELoss()
    x, y = torch.randn(batch, IN), torch.randn(batch, OUT)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


# ---- the CNN of examples/fashion_cnn.c (tests/bench.c part 3): one Adam step at batch 64 ------------------
# conv 3x3 (16, pad 1) -> max-pool 2 -> ReLU -> conv 3x3 (32, pad 1) -> max-pool 2 -> ReLU -> Linear(1568, 128)
# -> ReLU -> Linear(128, 10) -> cross-entropy, as a PyTorch user writes it (nn.Conv2d, F.max_pool2d, F.cross_entropy, optim.Adam).
# Prints `torch_cnn 64 <us per step>`.
CNN_BATCH, CNN_C1, CNN_C2, CNN_HIDDEN = 64, 16, 32, 128


class CNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, CNN_C1, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(CNN_C1, CNN_C2, 3, padding=1)
        self.fc1 = torch.nn.Linear(CNN_C2 * 49, CNN_HIDDEN)
        self.fc2 = torch.nn.Linear(CNN_HIDDEN, 10)

    def forward(self, x):
        x = torch.relu(torch.nn.functional.max_pool2d(self.conv1(x), 2))
        x = torch.relu(torch.nn.functional.max_pool2d(self.conv2(x), 2))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def cnn_step_fn():
    model = CNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.rand(CNN_BATCH, 1, 28, 28), torch.randint(0, 10, (CNN_BATCH,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def median_and_fastest(step):
    """Warm-up, calibrate one timing to >= 20 ms, then the median of 7 timings, per step; and the fastest
    single step of 200 more, as bench.c's "best" column compares."""
    for _ in range(20):
        step()
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            step()
        if time.perf_counter() - t >= 0.02:
            break
        n *= 2
    times = []
    for _ in range(7):
        t = time.perf_counter()
        for _ in range(n):
            step()
        times.append((time.perf_counter() - t) / n)
    fastest = min(times)
    for _ in range(200):
        t = time.perf_counter()
        step()
        fastest = min(fastest, time.perf_counter() - t)
    return statistics.median(times), fastest


def median_seconds(step):
    return median_and_fastest(step)[0]


def fashion_us():
    """The network of examples/fashion_mnist.c, as bench.c's part 6 times it: microseconds per training step
    (gather a shuffled batch, forward, backward, Adam), median of 7 timings of 200 steps after 100 steps of
    warm-up, on synthetic data of Fashion-MNIST's shape (a 2-pixel border 0 in every image)."""
    images, batch = 8192, 128
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                                torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    data = torch.rand(images, 28, 28)
    data[:, :2, :] = data[:, 26:, :] = data[:, :, :2] = data[:, :, 26:] = 0
    data = data.reshape(images, 784)
    labels = torch.randint(0, 10, (images,))
    state = {"order": torch.randperm(images), "next": 0}

    def step():
        if state["next"] + batch > images:
            state["order"], state["next"] = torch.randperm(images), 0
        idx = state["order"][state["next"]:state["next"] + batch]
        state["next"] += batch
        x, y = data[idx], labels[idx]
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(100):
        step()
    times = []
    for _ in range(7):
        t = time.process_time()  # CPU time, as bench.c's part 6 counts it
        for _ in range(200):
            step()
        times.append((time.process_time() - t) / 200)
    return statistics.median(times) * 1e6


def main():
    print(f"# PyTorch {torch.__version__}, {torch.get_num_threads()} thread, float32", file=sys.stderr)
    for batch in (1, 64, 256):
        median, fastest = median_and_fastest(step_fn(batch))
        print(f"torch {batch} {median * 1e6:.1f} {fastest * 1e6:.1f}")
        sys.stdout.flush()
    print(f"torch_cnn {CNN_BATCH} {median_seconds(cnn_step_fn()) * 1e6:.1f}")
    sys.stdout.flush()
    print(f"torch fashion {fashion_us():.1f}")


if __name__ == "__main__":
    main()
