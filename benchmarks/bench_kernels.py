"""The micro-benchmarks behind each optimisation in docs/performance.md, in one run.

    PYTHONPATH=src python benchmarks/bench_kernels.py [--busy 2]

Each line times the NumPy call the library uses against the alternative it replaced
(median of 5 repeats), then whole training steps of the benchmark MLP with one and two
BLAS threads — with ``--busy N`` also while N other processes spin on the cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

import deltaprop as dp
from deltaprop import activations, blas, losses
from deltaprop.network import Gradients


def micro(f: Callable[[], object], repeats: int = 200) -> float:
    """Median µs of ``f`` over 5 batches of ``repeats`` calls."""
    f()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats):
            f()
        times.append((time.perf_counter() - start) / repeats)
    return float(np.median(times)) * 1e6


def compare(what: str, ours: Callable[[], object], other: Callable[[], object],
            repeats: int = 200) -> None:
    a, b = micro(ours, repeats), micro(other, repeats)
    print(f"{what:58s} {a:9.1f} µs vs {b:9.1f} µs  ({b / a:.1f}×)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--busy", type=int, default=0,
                    help="also time the steps with this many spinning processes")
    busy = ap.parse_args().busy
    rng = np.random.default_rng(0)
    X = rng.random((60000, 784), dtype=np.float32)
    rows = rng.permutation(60000)[:1024]
    out = np.empty((1024, 784), np.float32)
    compare("gather 1024 rows: np.take mode=clip vs mode=raise",
            lambda: np.take(X, rows, axis=0, out=out, mode="clip"),
            lambda: np.take(X, rows, axis=0, out=out))

    delta1, a1 = rng.random((1, 256), dtype=np.float32), rng.random((1, 784), dtype=np.float32)
    nW = np.empty((256, 784), np.float32)
    compare("eq. (10) for one sample: broadcast δ·aᵀ vs matmul (k = 1)",
            lambda: np.multiply(delta1.T, a1, out=nW),
            lambda: np.matmul(delta1.T, a1, out=nW))

    delta = rng.random((1024, 256), dtype=np.float32)
    ones, nb = np.ones(1024, np.float32), np.empty(256, np.float32)
    compare("eq. (14) row sum, 1024 × 256: 1ᵀΔ vs np.sum(axis=0)",
            lambda: np.matmul(ones, delta, out=nb),
            lambda: np.sum(delta, axis=0, out=nb))

    ones784 = np.ones(784, np.float32)
    compare("finiteness of X (60000 × 784): row sums X·1 vs X.sum()",
            lambda: np.isfinite(X @ ones784).all(), lambda: np.isfinite(X.sum()), repeats=3)
    compare("finiteness of X (60000 × 784): row sums X·1 vs isfinite(X).all()",
            lambda: np.isfinite(X @ ones784).all(), lambda: np.isfinite(X).all(), repeats=3)

    b = rng.random((256, 784), dtype=np.float32)
    normal = b.copy()
    subnormal = np.full_like(b, np.float32(1e-40))
    compare("b *= 1 on normal vs subnormal float32 (256 × 784)",
            lambda: np.multiply(normal, np.float32(1.0), out=normal),
            lambda: np.multiply(subnormal, np.float32(1.0), out=subnormal))

    d32, rd32 = rng.random((32, 256), dtype=np.float32), np.empty((32, 256), np.float32)
    compare("the mean's r = 1/m at m = 32, layer 1: r·Δ (32 × 256) vs r·∇W (256 × 784)",
            lambda: np.multiply(d32, np.float32(1 / 32), out=rd32),
            lambda: np.multiply(nW, np.float32(1 / 32), out=nW))

    for m_out in (32, 1024):
        Z = rng.normal(size=(m_out, 10)).astype(np.float32) * 3
        Y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, m_out)]
        A, lse, row = np.empty_like(Z), np.empty(m_out, np.float32), np.empty(m_out, np.float32)
        softmax, ce = activations.get("softmax"), losses.get("cross_entropy")
        compare(f"softmax + cross-entropy, {m_out} × 10: fused vs softmax, then the loss",
                lambda Z=Z, Y=Y, A=A, lse=lse, row=row: losses.softmax_cross_entropy(
                    Z, Y, A, lse, row),
                lambda Z=Z, Y=Y, A=A: (softmax.f(Z, A), float(ce.per_sample(Z, A, Y).sum())))

    theta, g = rng.random((256, 784), dtype=np.float32), rng.random((256, 784), dtype=np.float32)
    mom, scratch = np.zeros_like(theta), np.empty_like(theta)

    def fused() -> None:
        blas.axpby(1.0, g, 0.9, mom, scratch)  # b ← g + μ b
        blas.axpy(-1e-6, mom, theta, scratch)  # θ ← θ − η b

    def ufuncs() -> None:
        mom.__imul__(0.9)
        mom.__iadd__(g)
        np.multiply(mom, 1e-6, out=scratch)
        theta.__isub__(scratch)

    with threadpool_limits(1, user_api="blas"):
        compare("SGD momentum, 256 × 784, 1 thread: BLAS axpby+axpy vs 4 ufuncs", fused, ufuncs)
    compare("SGD momentum, 256 × 784, 2 threads: BLAS axpby+axpy vs 4 ufuncs", fused, ufuncs)
    saved, blas.MIN_SIZE = blas.MIN_SIZE, 0  # BLAS at every size, to find the crossover
    try:
        for n in (4096, 16384, 32768):
            x, y, s = (np.ones(n, np.float32) for _ in range(3))
            compare(f"y ← 0.5 x + 0.9 y, {n} entries: BLAS axpby vs 2 ufuncs",
                    lambda x=x, y=y, s=s: blas.axpby(0.5, x, 0.9, y, s),
                    lambda x=x, y=y, s=s: (y.__imul__(0.9), np.multiply(x, 0.5, out=s),
                                           y.__iadd__(s)), repeats=2000)
    finally:
        blas.MIN_SIZE = saved

    step_table(X, rng)
    if busy:
        print(f"\nthe same with {busy} processes spinning on the 2 cores:")
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    for _ in range(busy)]
        try:
            step_table(X, rng)
        finally:
            for p in spinners:
                p.kill()


def step_table(X: np.ndarray, rng: np.random.Generator) -> None:
    """µs per training step of 784-256-128-10 with one and with two BLAS threads."""
    print("\nµs per training step (backprop_into + SGD momentum), 784-256-128-10:")
    print("m      1 thread   2 threads")
    labels = rng.integers(0, 10, 60000)
    for m in (1, 4, 8, 16, 32, 128, 1024):
        net = dp.Network([784, 256, 128, 10], seed=0)
        ws = net.workspace(m)
        ws.inputs[...] = X[:m]
        ws.targets[...] = net.targets(labels[:m], m)
        opt = dp.optim.SGD(lr=0.01, momentum=0.9)
        grads = Gradients(ws.delta, ws.nabla_W, ws.nabla_b, 0.0, "mean")

        def step(net=net, ws=ws, opt=opt, grads=grads, m=m) -> None:
            net.backprop_into(ws, 1.0 / m)
            opt.step(net, grads)

        repeats = max(5, 2000 // m)
        with threadpool_limits(1, user_api="blas"):
            one = micro(step, repeats)
        with threadpool_limits(2, user_api="blas"):
            two = micro(step, repeats)
        print(f"{m:<6d} {one:8.0f}   {two:9.0f}")


if __name__ == "__main__":
    main()
