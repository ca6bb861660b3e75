"""Where a training step's time goes, against its matrix products (issue 17's floor).

    PYTHONPATH=src python benchmarks/bench_step_parts.py [--steps 300]

For the benchmark MLP (784-256-128-10, SGD momentum 0.9, Fashion-MNIST float32) and each
batch size, ``fit``'s own :class:`~deltaprop.training.TrainStep` runs ``--steps`` steps
over the epoch's shuffled order; each part is timed on its own, per step (median of the
steps, µs):

- ``gather``: a⁰ ← X[rows] and the target rows (``feed.gather``, ``np.take``);
- ``forward+loss``: :meth:`Network.loss_into` — eqs. (1)-(2), the loss and δ^L;
- ``backward+update``: the fused step, eqs. (10), (14), (8), (11), (15) layer by layer;
- ``products``: the step's eight same-shape matrix products alone (3 forward, 3 for
  ∂C/∂W, 2 for δ), into preallocated buffers: ``bench_mlp.floor_products``, the floor.

What is left after the products is the step's non-matmul time: the gather, σ and σ', the
softmax and loss, the bias sums and the update sweeps over θ.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from bench_mlp import MOMENTUM, SIZES, floor_products, load_data, lr_for, machine_info, machine_line

import deltaprop as dp
from deltaprop.streaming import BatchFeed
from deltaprop.training import TrainStep


def time_parts(X: np.ndarray, y: np.ndarray, m: int, steps: int) -> dict[str, float]:
    net = dp.Network(SIZES, activation="relu", output="softmax", loss="cross_entropy", seed=0)
    opt = dp.optim.SGD(lr=lr_for(m), momentum=MOMENTUM)
    Y = net.targets(y, len(y))
    feed = BatchFeed(X, m, net.dtype)
    feed.draw(net.rng)
    step = TrainStep(net, feed, Y, m, opt, "mean")
    assert step.fused is not None
    products = floor_products(m, X)
    parts: dict[str, list[float]] = {k: [] for k in
                                     ("gather", "forward+loss", "backward+update", "products")}
    clock = time.perf_counter
    for k in range(steps + 1):
        start = (k * m) % (X.shape[0] - m)
        w = step.ws
        t0 = clock()
        feed.gather(start, start + m, w.inputs)
        np.take(Y, feed.index[start : start + m], axis=0, out=w.targets, mode="clip")
        t1 = clock()
        step.net.loss_into(w, 1.0 / m)
        t2 = clock()
        step.fused.backward_update(w, 1.0 / m)
        t3 = clock()
        products(m)
        t4 = clock()
        if k:  # the first step warms up
            for key, t in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                parts[key].append(t * 1e6)
    return {k: statistics.median(v) for k, v in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch-sizes", default="32,128,1024")
    args = ap.parse_args()
    X, y, _, _ = load_data()
    print(machine_line(machine_info()))
    print(f"{'batch':>5} {'gather':>8} {'fwd+loss':>9} {'bwd+upd':>9} {'step':>8} "
          f"{'products':>9} {'rest':>8}  (µs per step, median of {args.steps})")
    for m in map(int, args.batch_sizes.split(",")):
        p = time_parts(X, y, m, args.steps)
        total = p["gather"] + p["forward+loss"] + p["backward+update"]
        print(f"{m:>5} {p['gather']:>8.0f} {p['forward+loss']:>9.0f} "
              f"{p['backward+update']:>9.0f} {total:>8.0f} {p['products']:>9.0f} "
              f"{total - p['products']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
