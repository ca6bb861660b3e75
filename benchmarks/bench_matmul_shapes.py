"""The matrix products of one training step of 784-256-128-10, timed alone.

They bound how fast any NumPy/BLAS implementation can train this MLP (docs/performance.md):

    python benchmarks/bench_matmul_shapes.py

For each batch size: µs for the eight products of a step (3 forward, 3 for ∂C/∂W, 2 for δ)
with one and with two BLAS threads, for W stored row-major (as torch and a plain NumPy loop
keep it) and column-major (as deltaprop keeps it; ∇W is then written as its transpose),
timed alternately; layer 1's forward product alone at m = 32; and the GFLOP/s of the
largest products at m = 1024.
"""

from __future__ import annotations

import time

import numpy as np
from threadpoolctl import threadpool_limits

SIZES = [784, 256, 128, 10]


def _median_seconds(f, repeats: int) -> float:
    f()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            f()
        times.append((time.perf_counter() - start) / repeats)
    return float(np.median(times))


def step_products(m: int, rng: np.random.Generator, order: str = "C"):
    W = [np.asarray(rng.normal(size=(o, i)), dtype=np.float32, order=order)
         for i, o in zip(SIZES, SIZES[1:])]
    A = [rng.random((m, n), dtype=np.float32) for n in SIZES]
    D = [rng.random((m, n), dtype=np.float32) for n in SIZES[1:]]
    nW = [np.empty_like(w) for w in W]

    def products() -> None:
        for i, w in enumerate(W):
            np.matmul(A[i], w.T, out=A[i + 1])  # (2)
        for i in range(len(W)):
            if order == "C":
                np.matmul(D[i].T, A[i], out=nW[i])  # (10)
            else:
                np.matmul(A[i].T, D[i], out=nW[i].T)  # (10), transposed
        for i in (2, 1):
            np.matmul(D[i], W[i], out=D[i - 1])  # (8)

    return products, W, A, D, nW


def alternately(fs: dict[str, object], repeats: int, rounds: int = 7) -> dict[str, float]:
    """Median seconds of each callable, the callables timed in turn ``rounds`` times."""
    times: dict[str, list[float]] = {k: [] for k in fs}
    for f in fs.values():
        f()
    for _ in range(rounds):
        for k, f in fs.items():
            start = time.perf_counter()
            for _ in range(repeats):
                f()
            times[k].append((time.perf_counter() - start) / repeats)
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    rng = np.random.default_rng(0)
    print("µs per step's products     W row-major   W column-major")
    for m in (32, 128, 1024):
        fs = {order: step_products(m, rng, order)[0] for order in "CF"}
        repeats = 100 if m < 1024 else 10
        for threads in (1, 2):
            with threadpool_limits(threads, user_api="blas"):
                t = alternately(fs, repeats)
            print(f"m = {m:<5d} {threads} thread{'s' if threads > 1 else ' '}     "
                  f"{t['C'] * 1e6:11.0f}   {t['F'] * 1e6:14.0f}")
    A0 = rng.random((32, SIZES[0]), dtype=np.float32)
    Z1 = np.empty((32, SIZES[1]), dtype=np.float32)
    W1 = {order: np.asarray(rng.normal(size=SIZES[1::-1]), dtype=np.float32, order=order)
          for order in "CF"}
    with threadpool_limits(1, user_api="blas"):
        t = alternately({k: (lambda w=w: np.matmul(A0, w.T, out=Z1)) for k, w in W1.items()},
                        200)
    print(f"layer 1 forward, m = 32, 1 thread: W row-major {t['C'] * 1e6:.0f} µs, "
          f"column-major {t['F'] * 1e6:.0f} µs")
    _, W, A, D, nW = step_products(1024, rng)
    flop = 2 * 1024 * 784 * 256
    forward = _median_seconds(lambda: np.matmul(A[0], W[0].T, out=A[1]), 20)
    gradient = _median_seconds(lambda: np.matmul(D[0].T, A[0], out=nW[0]), 20)
    big = rng.random((2048, 2048), dtype=np.float32)
    square = _median_seconds(lambda: big @ big, 3)
    print(f"m = 1024, layer 1: forward {flop / forward / 1e9:.0f} GFLOP/s, "
          f"∂C/∂W {flop / gradient / 1e9:.0f} GFLOP/s; 2048² matmul "
          f"{2 * 2048**3 / square / 1e9:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
