"""The matrix products of one training step of 784-256-128-10, timed alone.

They bound how fast any NumPy/BLAS implementation can train this MLP (docs/performance.md):

    python benchmarks/bench_matmul_shapes.py

For each batch size: µs for the eight products of a step (3 forward, 3 for ∂C/∂W, 2 for δ)
with one and with two BLAS threads, and the GFLOP/s of the largest ones at m = 1024.
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


def step_products(m: int, rng: np.random.Generator):
    W = [rng.normal(size=(o, i)).astype(np.float32) for i, o in zip(SIZES, SIZES[1:])]
    A = [rng.random((m, n), dtype=np.float32) for n in SIZES]
    D = [rng.random((m, n), dtype=np.float32) for n in SIZES[1:]]
    nW = [np.empty_like(w) for w in W]

    def products() -> None:
        for i, w in enumerate(W):
            np.matmul(A[i], w.T, out=A[i + 1])  # (2)
        for i in range(len(W)):
            np.matmul(D[i].T, A[i], out=nW[i])  # (10)
        for i in (2, 1):
            np.matmul(D[i], W[i], out=D[i - 1])  # (8)

    return products, W, A, D, nW


def main() -> None:
    rng = np.random.default_rng(0)
    print("m      µs/step 1 thread   µs/step 2 threads")
    for m in (32, 128, 1024):
        products = step_products(m, rng)[0]
        with threadpool_limits(1, user_api="blas"):
            one = _median_seconds(products, 200 if m < 1024 else 20)
        two = _median_seconds(products, 200 if m < 1024 else 20)
        print(f"{m:<6d} {one * 1e6:16.0f}   {two * 1e6:17.0f}")
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
