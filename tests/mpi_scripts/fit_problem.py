"""Training problems run by tests/test_distributed.py, on one process or under mpirun.

Run as a script under ``mpirun -n N``: trains every problem with ``distributed.fit`` and, on
rank 0, writes each problem's parameters, History losses and a ranks-in-sync check to the
``.npz`` file named on the command line, with every rank's network namespace (the inode of
``/proc/self/ns/net``: it tells on which simulated host a rank ran, test_multihost.py).
Imported by the tests, ``run(problem, fit)`` gives the single-process reference with
``training.fit``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

import deltaprop as dp

# (name, network kwargs, data kwargs, fit kwargs). Batch sizes chosen so that the global
# batch does not divide among 2 or 3 ranks, the last batch is short, and (batch 2 on 3
# ranks) some rank gets no rows at all.
PROBLEMS: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    ("sgd_classifier",
     {"sizes": [6, 9, 7, 3], "activation": "tanh", "output": "softmax",
      "loss": "cross_entropy"},
     {"n": 53, "classes": 3},
     {"epochs": 3, "batch_size": 10, "validation_split": 0.1,
      "optimizer": ("SGD", {"lr": 0.1, "momentum": 0.9})}),
    ("adam_regressor_sum",
     {"sizes": [4, 5, 2], "activation": "relu", "output": "identity", "loss": "mse",
      "bias": "unit"},
     {"n": 21, "classes": 0},
     {"epochs": 2, "batch_size": 2, "reduction": "sum",
      "optimizer": ("Adam", {"lr": 0.01})}),
]


def data(n: int, n_in: int, n_out: int, classes: int, seed: int = 7) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    y = rng.integers(0, classes, size=n) if classes else rng.normal(size=(n, n_out))
    return X, y


def run(problem: tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]], fit: Any,
        **extra: Any) -> tuple[dp.Network, Any]:
    """Build the problem's network (float64, seed 3) and data, and train with ``fit``."""
    _, net_kw, data_kw, fit_kw = problem
    net_kw = dict(net_kw)
    sizes = net_kw.pop("sizes")
    net = dp.Network(sizes, dtype="float64", seed=3, **net_kw)
    X, y = data(data_kw["n"], sizes[0], sizes[-1], data_kw["classes"])
    fit_kw = dict(fit_kw)
    name, hyper = fit_kw.pop("optimizer")
    history = fit(net, X, y, optimizer=getattr(dp.optim, name)(**hyper), verbose=0,
                  **fit_kw, **extra)
    return net, history


def _netns_inode() -> int:
    """This process's network namespace (0 where /proc has none, e.g. macOS)."""
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return 0


def main(out: str) -> None:
    from mpi4py import MPI

    from deltaprop import distributed

    comm = MPI.COMM_WORLD
    results: dict[str, np.ndarray] = {}
    for problem in PROBLEMS:
        net, history = run(problem, distributed.fit, comm=comm)
        in_sync = distributed.ranks_in_sync(net, comm)
        # Every rank's digest, gathered to rank 0 with a buffer Gather (no pickling).
        mine = np.frombuffer(distributed.parameters_digest(net), dtype=np.uint8)
        digests = np.empty((comm.Get_size(), mine.size), dtype=np.uint8) if comm.rank == 0 \
            else None
        comm.Gather(mine, digests, root=0)
        if comm.rank == 0:
            name = problem[0]
            for key, p in net.parameters():
                results[f"{name}/{key}"] = p
            results[f"{name}/loss"] = np.array(history.loss)
            results[f"{name}/accuracy"] = np.array(history.accuracy)
            results[f"{name}/digests"] = digests
            results[f"{name}/in_sync"] = np.array(in_sync)
    netns = np.array([_netns_inode()], dtype=np.uint64)
    where = np.empty(comm.Get_size(), dtype=np.uint64) if comm.rank == 0 else None
    comm.Gather(netns, where, root=0)
    if comm.rank == 0:
        results["size"] = np.array(comm.Get_size())
        results["netns"] = where
        np.savez(out, **results)


if __name__ == "__main__":
    main(sys.argv[1])
