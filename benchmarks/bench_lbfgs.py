"""L-BFGS: deltaprop.sklearn vs sklearn.neural_network at equal max_iter — loss and time.

Both estimators get ``solver="lbfgs"``, the same hyperparameters and the same standardized
inputs (all rows of digits and breast-cancer: the figure is the *training* loss, data loss
plus scikit-learn's (α/2)‖W‖²/n, i.e. ``loss_``). ``random_state`` 0, 1, 2: with deltaprop's
default ``init="sklearn"`` both start from the same weights and minimise the same objective,
so the losses should agree up to rounding; the table shows the mean loss over the seeds and
the largest relative difference of any seed. Fit time: median (min–max) over the seeds ×
``--repeats`` fits, each on one BLAS thread (``threadpool_limits(1)``), so neither side gains
or loses from other processes on a shared machine. deltaprop runs in float64 (``dtype="auto"``
on float64 input, like for like) unless ``--dtype float32``.

    PYTHONPATH=src python benchmarks/bench_lbfgs.py [--max-iter 10 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

from deltaprop.sklearn import MLPClassifier

DATA = {"digits": load_digits, "breast_cancer": load_breast_cancer}
SEEDS = (0, 1, 2)


def fit(cls, X, y, seed: int, max_iter: int, **extra):
    """(fitted estimator, seconds) for one L-BFGS fit on one BLAS thread."""
    est = cls(hidden_layer_sizes=(100,), solver="lbfgs", max_iter=max_iter, random_state=seed,
              **extra)
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter reached: expected
        started = time.perf_counter()
        est.fit(X, y)
        return est, time.perf_counter() - started


def spread(times: list[float]) -> str:
    return f"{statistics.median(times):.2f} ({min(times):.2f}–{max(times):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-iter", type=int, nargs="+", default=[10, 200])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32"])
    args = parser.parse_args()

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), "unknown")
    blas = ", ".join(f"{p['internal_api']} {p.get('version')} ({p.get('architecture')})"
                     for p in threadpool_info())
    print(f"CPU: {cpu} ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}); BLAS: {blas}")
    print(f"hidden (100,), alpha 1e-4, seeds {SEEDS}, {args.repeats} fits a seed, "
          f"1 BLAS thread; deltaprop dtype={args.dtype}\n")
    print("| data set | max_iter | scikit-learn loss | deltaprop loss | largest rel. Δ | n_iter_ "
          "(sklearn · deltaprop) | sklearn fit s | deltaprop fit s | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, loader in DATA.items():
        for max_iter in args.max_iter:
            row(name, loader, max_iter, args)


def row(name: str, loader, max_iter: int, args: argparse.Namespace) -> None:
    """One table row: both estimators on one data set at one max_iter."""
    X, y = loader(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    losses = {"sklearn": [], "deltaprop": []}
    iters = {"sklearn": [], "deltaprop": []}
    times = {"sklearn": [], "deltaprop": []}
    for seed in SEEDS:
        for label, cls, extra in (("sklearn", SkClassifier, {}),
                                  ("deltaprop", MLPClassifier, {"dtype": args.dtype})):
            for _ in range(args.repeats):
                est, seconds = fit(cls, X, y, seed, max_iter, **extra)
                times[label].append(seconds)
            losses[label].append(est.loss_)
            iters[label].append(est.n_iter_)
    rel = max(abs(d - s) / s for d, s in zip(losses["deltaprop"], losses["sklearn"],
                                              strict=True))
    sk_t, dp_t = statistics.median(times["sklearn"]), statistics.median(times["deltaprop"])
    print(f"| {name} | {max_iter} | {statistics.mean(losses['sklearn']):.6g} "
          f"| {statistics.mean(losses['deltaprop']):.6g} | {rel:.1e} "
          f"| {'/'.join(map(str, iters['sklearn']))} · {'/'.join(map(str, iters['deltaprop']))} "
          f"| {spread(times['sklearn'])} | {spread(times['deltaprop'])} "
          f"| {sk_t / dp_t:.1f}× |")


if __name__ == "__main__":
    main()
