"""tests/bench_torch.py - the PyTorch side of `make bench`: microseconds per training step of the same network
tests/bench.c times, Linear(784->256) -> ReLU -> Linear(256->10) -> MSE with plain SGD, at batch 1, 64, 256,
on ONE thread (torch.set_num_threads(1)), forward + backward + update, as a PyTorch user writes it.

Method as in bench.c: one timing = enough back-to-back steps to last >= 20 ms; the median of 7 timings.
Prints one line per batch size, `torch <batch> <median us per step> <fastest>`, which bench.c reads (make bench passes the
file) to print the ratio next to its own figures.  Run with Debian's python3 (apt-get install -y python3-torch):
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


def main():
    print(f"# PyTorch {torch.__version__}, {torch.get_num_threads()} thread, float32", file=sys.stderr)
    for batch in (1, 64, 256):
        step = step_fn(batch)
        for _ in range(20):  # warm-up
            step()
        n = 1
        while True:  # calibrate: one timing >= 20 ms
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
        for _ in range(200):  # and the fastest single step, as bench.c's "best" column compares
            t = time.perf_counter()
            step()
            fastest = min(fastest, time.perf_counter() - t)
        print(f"torch {batch} {statistics.median(times) * 1e6:.1f} {fastest * 1e6:.1f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
