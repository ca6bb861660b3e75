"""Side-by-side MLP training benchmark: deltaprop vs PyTorch, scikit-learn and plain NumPy.

One command, one process (plus one child process for the memory figure)::

    PYTHONPATH=src python benchmarks/bench_mlp.py --out benchmarks/results.json

The work (issue 6): Fashion-MNIST's 60000 training images (float32, scaled to [0, 1]),
an MLP 784-256-128-10 with ReLU hidden layers, softmax + cross-entropy, SGD with momentum
0.9 (learning rate inside nothing: θ ← θ − η b, torch's form), one epoch, at batch sizes
1 (on a 6000-sample slice), 32, 128 and 1024. Systems:

- ``deltaprop``: ``Network.fit(..., verbose=0)``;
- ``pytorch``: ``nn.Sequential`` + ``torch.optim.SGD`` on the CPU, ``torch.set_num_threads``
  = all cores, the same shuffled order as deltaprop (its rng's permutation is replayed);
- ``sklearn``: ``MLPClassifier(solver="sgd", momentum=0.9, nesterovs_momentum=False,
  max_iter=1)`` on float32 input (it shuffles with its own rng);
- ``numpy``: the vectorised loop a NumPy user would write (:func:`numpy_epoch`), BLAS at
  its default thread count;
- ``textbook``: the per-sample loop of the textbooks (column vectors, one backprop per
  sample, the batch's gradients summed), timed on a slice and extrapolated to the epoch.

- ``floor``: the machine's matrix-multiply floor for the same step (issue 17): the eight
  matrix products of each training step alone — 3 forward (eq. 2), 3 for ∂C/∂W (eq. 10),
  2 for δ (eq. 8) — in the shapes and memory layouts deltaprop's step uses, into
  preallocated buffers, over the epoch's batches; nothing else (no gather, no σ, no
  optimizer). For m = 1, eq. (10) is the broadcast outer product deltaprop uses (NumPy's
  matmul with an inner dimension of 1 bypasses BLAS).

Figures per (system, batch size): epoch seconds (median, min, max over ``--runs``),
samples/s, ratio to PyTorch's median, ratio to the floor's median (``× floor``), GFLOP/s
counted as 6 · Σ_l n_{l−1} n_l flops per sample (2 flops per multiply-add × one forward and
two backward matrix products), and that rate as a fraction of a large float32 ``np.matmul``
(2048², median) measured in the same case. Within a batch size the systems run
round-robin — the floor's epoch, then one epoch of each system, ``--runs`` times, with the
matmul rate measured at the start of every round — so a machine whose speed drifts during
the case (shared hosts do) weighs on every system and the floor alike. Every table is
printed with the CPU model, the BLAS library and its kernel, and the load average.

Also: deltaprop's peak memory in a child process, and two time-to-88 %-test-accuracy rows
(training seconds, evaluation excluded): the benchmark's recipe (SGD momentum 0.9,
η = 0.05, batch 128) run by every system, and deltaprop's own best recipe
(:data:`BEST_RECIPE`) against PyTorch running the same recipe (same optimizer, schedule,
batch size and initial weights).

``--n-train`` shortens the timed epochs on a busy machine (the epoch seconds are then
extrapolated to 60000 samples and the JSON says so); the default is the full epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

SIZES = [784, 256, 128, 10]
LR = 0.05
MOMENTUM = 0.9
N_FULL = 60000


def lr_for(m: int) -> float:
    """η per batch size: at m = 1 with μ = 0.9, η = 0.05 kills every ReLU unit within the
    epoch (a dead net is cheaper to train and says nothing), so online learning uses 0.005."""
    return 0.005 if m == 1 else LR


def flops_per_sample(sizes: list[int] = SIZES) -> int:
    """2 flops per multiply-add × (forward + 2 backward matrix products) × weights."""
    return 6 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


# --------------------------------------------------------------------------- data
def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from deltaprop import datasets

    d = datasets.load("fashion-mnist")
    scale = np.float32(1 / 255)
    X = np.ascontiguousarray(d.X_train, dtype=np.float32) * scale
    Xt = np.ascontiguousarray(d.X_test, dtype=np.float32) * scale
    return X, d.y_train.astype(np.int64), Xt, d.y_test.astype(np.int64)


# --------------------------------------------------------------------------- systems
def new_network(seed: int) -> Any:
    import deltaprop as dp

    return dp.Network(SIZES, activation="relu", output="softmax", loss="cross_entropy",
                      seed=seed)


def epoch_order(net: Any, n: int) -> np.ndarray:
    """The permutation ``fit`` will draw for its first epoch (``net.rng.permutation(n)``)."""
    rng = np.random.default_rng()
    rng.bit_generator.state = net.rng.bit_generator.state
    return rng.permutation(n)


def run_deltaprop(X: np.ndarray, y: np.ndarray, m: int, seed: int) -> float:
    import deltaprop as dp

    net = new_network(seed)
    opt = dp.optim.SGD(lr=lr_for(m), momentum=MOMENTUM)
    t = time.perf_counter()
    net.fit(X, y, epochs=1, batch_size=m, optimizer=opt, verbose=0)
    return time.perf_counter() - t


def torch_model(net: Any) -> Any:
    """nn.Sequential with deltaprop's initial weights (so both start from the same point)."""
    import torch

    layers: list[Any] = []
    for i, layer in enumerate(net.layers):
        lin = torch.nn.Linear(layer.n_in, layer.n_out)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(layer.W))
            lin.bias.copy_(torch.from_numpy(layer.b))
        layers.append(lin)
        if i < len(net.layers) - 1:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def torch_epoch(model: Any, opt: Any, Xt: Any, yt: Any, order: Any, m: int) -> None:
    import torch

    loss_fn = torch.nn.CrossEntropyLoss()
    for start in range(0, len(order), m):
        rows = order[start : start + m]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(Xt[rows]), yt[rows])
        loss.backward()
        opt.step()


def run_pytorch(X: np.ndarray, y: np.ndarray, m: int, seed: int) -> float:
    import torch

    net = new_network(seed)
    order = torch.from_numpy(epoch_order(net, X.shape[0]))
    model = torch_model(net)
    opt = torch.optim.SGD(model.parameters(), lr=lr_for(m), momentum=MOMENTUM)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    t = time.perf_counter()
    torch_epoch(model, opt, Xt, yt, order, m)
    return time.perf_counter() - t


def run_sklearn(X: np.ndarray, y: np.ndarray, m: int, seed: int) -> float:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=tuple(SIZES[1:-1]), activation="relu",
                        solver="sgd", learning_rate_init=lr_for(m), momentum=MOMENTUM,
                        nesterovs_momentum=False, alpha=0.0, batch_size=m, max_iter=1,
                        shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=1 is the point
        t = time.perf_counter()
        clf.fit(X, y)
        return time.perf_counter() - t


def numpy_epoch(params: list[np.ndarray], velocity: list[np.ndarray], X: np.ndarray,
                y: np.ndarray, order: np.ndarray, m: int) -> None:
    """The plain vectorised loop: fresh arrays every batch, BLAS for the products."""
    W1, b1, W2, b2, W3, b3 = params
    lr = np.float32(lr_for(m))
    for start in range(0, len(order), m):
        rows = order[start : start + m]
        x, t = X[rows], y[rows]
        mb = x.shape[0]
        z1 = x @ W1.T + b1
        a1 = np.maximum(z1, 0)
        z2 = a1 @ W2.T + b2
        a2 = np.maximum(z2, 0)
        z3 = a2 @ W3.T + b3
        e = np.exp(z3 - z3.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        d3 = p
        d3[np.arange(mb), t] -= 1
        d3 /= mb
        d2 = (d3 @ W3) * (z2 > 0)
        d1 = (d2 @ W2) * (z1 > 0)
        grads = [d1.T @ x, d1.sum(0), d2.T @ a1, d2.sum(0), d3.T @ a2, d3.sum(0)]
        for p_, v, g in zip(params, velocity, grads):
            v *= MOMENTUM
            v += g
            p_ -= lr * v


def run_numpy(X: np.ndarray, y: np.ndarray, m: int, seed: int) -> float:
    net = new_network(seed)
    order = epoch_order(net, X.shape[0])
    params = [a.copy() for _, a in net.parameters()]
    velocity = [np.zeros_like(a) for a in params]
    t = time.perf_counter()
    numpy_epoch(params, velocity, X, y, order, m)
    return time.perf_counter() - t


def textbook_epoch(params: list[np.ndarray], X: np.ndarray, y: np.ndarray,
                   order: np.ndarray, m: int) -> None:
    """The per-sample loop (Nielsen's network.py style): column vectors, one backprop each."""
    W = params[0::2]
    b = [p.reshape(-1, 1) for p in params[1::2]]
    vel = [np.zeros_like(p) for p in W + b]
    for start in range(0, len(order), m):
        gW = [np.zeros_like(w) for w in W]
        gb = [np.zeros_like(bb) for bb in b]
        rows = order[start : start + m]
        for r in rows:  # one sample at a time: the loop the library replaces
            a = [X[r].reshape(-1, 1)]
            zs = []
            for l in range(3):
                z = W[l] @ a[-1] + b[l]
                zs.append(z)
                if l < 2:
                    a.append(np.maximum(z, 0))
                else:
                    e = np.exp(z - z.max())
                    a.append(e / e.sum())
            delta = a[-1].copy()
            delta[y[r]] -= 1
            for l in (2, 1, 0):
                gW[l] += delta @ a[l].T
                gb[l] += delta
                if l > 0:
                    delta = (W[l].T @ delta) * (zs[l - 1] > 0)
        for p, v, g in zip(W + b, vel, gW + gb):
            v *= MOMENTUM
            v += g / len(rows)
            p -= np.float32(lr_for(m)) * v


def run_textbook(X: np.ndarray, y: np.ndarray, m: int, seed: int, n_slice: int) -> float:
    """Seconds for ``n_slice`` samples, extrapolated to ``X``'s length."""
    net = new_network(seed)
    order = epoch_order(net, X.shape[0])[:n_slice]
    params = [a.copy() for _, a in net.parameters()]
    t = time.perf_counter()
    textbook_epoch(params, X, y, order, m)
    return (time.perf_counter() - t) * X.shape[0] / n_slice


# --------------------------------------------------------------------------- the floor
def floor_products(m: int, X: np.ndarray, seed: int = 0) -> Any:
    """The eight matrix products of a training step of ``m`` rows, into preallocated
    buffers, as deltaprop's step lays them out: W column-major (Z = A Wᵀ reads a row-major
    Wᵀ), ∂C/∂W laid out like W and written as its transpose. Returns ``products(mb)``,
    which runs them on the first ``mb`` rows."""
    rng = np.random.default_rng(seed)
    W = [np.asfortranarray(rng.normal(0, np.sqrt(2 / n_in), (n_out, n_in)), dtype=np.float32)
         for n_in, n_out in zip(SIZES[:-1], SIZES[1:])]
    A = [np.ascontiguousarray(X[:m])] + [np.empty((m, n), np.float32) for n in SIZES[1:]]
    D = [rng.normal(0, 0.01, (m, n)).astype(np.float32) for n in SIZES[1:]]
    nabla_W = [np.empty_like(w) for w in W]  # column-major, like W
    L = len(W)

    def products(mb: int) -> None:
        for i in range(L):
            np.matmul(A[i][:mb], W[i].T, out=A[i + 1][:mb])  # (2) Z = A Wᵀ
        for i in range(L):
            if mb == 1:  # (10) for one sample: the broadcast outer product δ aᵀ
                np.multiply(D[i][:1].T, A[i][:1], out=nabla_W[i])
            else:  # (10) ∂C/∂Wᵀ = Aᵀ Δ into the row-major transpose of ∇W
                np.matmul(A[i][:mb].T, D[i][:mb], out=nabla_W[i].T)
        for i in range(L - 1, 0, -1):
            np.matmul(D[i][:mb], W[i], out=D[i - 1][:mb])  # (8) Δ W

    return products


def run_floor(X: np.ndarray, y: np.ndarray, m: int, seed: int) -> float:
    """Seconds for one epoch of the step's products alone (the machine's floor)."""
    n = X.shape[0]
    products = floor_products(m, X, seed)
    products(m)  # warm up
    t = time.perf_counter()
    for start in range(0, n, m):
        products(min(m, n - start))
    return time.perf_counter() - t


# --------------------------------------------------------------------------- machine
def matmul_rate(n: int = 2048, repeats: int = 5) -> dict[str, float]:
    """float32 GFLOP/s of a large np.matmul: median (and max) of ``repeats``."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    c = np.empty_like(a)
    np.matmul(a, b, out=c)  # warm up
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        np.matmul(a, b, out=c)
        rates.append(2 * n**3 / (time.perf_counter() - t) / 1e9)
    return {"median": statistics.median(rates), "max": max(rates), "min": min(rates)}


def machine_info() -> dict[str, Any]:
    from threadpoolctl import threadpool_info

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = [
        {k: p.get(k) for k in ("internal_api", "version", "num_threads", "architecture",
                                "threading_layer")}
        for p in threadpool_info()
    ]
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "blas": blas,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                               "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
    }


def machine_line(info: dict[str, Any]) -> str:
    """The CPU, its cores, the BLAS (library, version, kernel, threads) and the load now:
    printed above every table, since these machines differ from one session to the next."""
    blas = "; ".join(
        f"{b['internal_api']} {b['version'] or ''} kernel {b['architecture'] or '?'} "
        f"{b['threading_layer'] or ''} {b['num_threads']} threads".replace("  ", " ")
        for b in info["blas"] if b["internal_api"] != "openmp"
    )
    load = os.getloadavg()
    return (f"# {info['cpu']}, {info['cores']} cores; BLAS {blas}; numpy {info['numpy']}, "
            f"torch {info['torch']} ({info['torch_threads']} threads); load average "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


# --------------------------------------------------------------------------- memory
def memory_child(path: str, m: int) -> None:
    """In a fresh process: RSS before loading X, after, and the peak over one fit."""
    import tracemalloc

    import deltaprop as dp

    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    base = rss()
    data = np.load(path)
    X, y = data["X"], data["y"]
    X.sum()  # touch every page
    loaded = rss()
    net = new_network(0)
    opt = dp.optim.SGD(lr=LR, momentum=MOMENTUM)
    try:  # reset the high-water mark so loading X's own transient copies do not count
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    tracemalloc.start()
    net.fit(X, y, epochs=1, batch_size=m, optimizer=opt, verbose=0)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    if reset:
        with open("/proc/self/status") as f:
            peak = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM"))
    print(json.dumps({"rss_base": base, "rss_loaded": loaded, "rss_peak": peak,
                      "traced_peak_in_fit": traced_peak}))


def measure_memory(X: np.ndarray, y: np.ndarray, m: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, X=X, y=y)  # uncompressed: np.load reads X in one copy
        out = subprocess.run([sys.executable, __file__, "--memory-child", path, str(m)],
                             capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    n_out = SIZES[-1]
    data = X.nbytes + X.shape[0] * n_out * 4  # X and the one-hot targets fit builds
    params = 4 * sum(a * b + b for a, b in zip(SIZES[:-1], SIZES[1:]))
    activations = 4 * m * (SIZES[0] + 2 * sum(SIZES[1:]) + n_out)  # X batch, Z and A, Y
    budget = data + params + activations
    used = r["rss_peak"] - r["rss_base"]
    return {**r, "batch_size": m, "data_bytes": data, "param_bytes": params,
            "activation_bytes": activations, "budget_bytes": budget,
            "peak_over_interpreter": used, "ratio_to_budget": used / budget}


# --------------------------------------------------------------------------- accuracy
@dataclass(frozen=True)
class Recipe:
    """How a time-to-accuracy run trains: optimizer, η, batch size, schedule.

    ``cosine``: the learning rate follows η_e = ½ η (1 + cos(π e / cosine)) per epoch
    (torch's CosineAnnealingLR, deltaprop's ``schedules.CosineAnnealingLR``), else constant.
    """

    name: str
    optimizer: str  # "sgd" (momentum 0.9, torch's form) or "adam" (torch's defaults)
    lr: float
    batch_size: int
    cosine: int | None = None
    max_epochs: int = 12

    def describe(self) -> str:
        opt = f"SGD momentum {MOMENTUM}" if self.optimizer == "sgd" else "Adam"
        sched = f", cosine over {self.cosine} epochs" if self.cosine else ""
        return f"{opt}, lr {self.lr:g}, batch {self.batch_size}{sched}"


#: The benchmark's own training settings (as the epoch table), run by every system.
SAME_RECIPE = Recipe("same", "sgd", LR, 128)
#: deltaprop's best recipe for time to 88 % found (the candidates tried were not recorded);
#: PyTorch runs the same recipe.
BEST_RECIPE = Recipe("best", "adam", 2e-3, 256, cosine=6)


class _DeltapropTrainer:
    def __init__(self, net: Any, recipe: Recipe) -> None:
        import deltaprop as dp
        from deltaprop import schedules

        self.net, self.recipe = net, recipe
        self.opt = (dp.optim.SGD(lr=recipe.lr, momentum=MOMENTUM) if recipe.optimizer == "sgd"
                    else dp.optim.Adam(lr=recipe.lr))
        self.schedule = (schedules.CosineAnnealingLR(T_max=recipe.cosine) if recipe.cosine
                         else None)

    def epoch(self, X: np.ndarray, y: np.ndarray, e: int) -> None:
        self.net.fit(X, y, epochs=e + 1, initial_epoch=e, batch_size=self.recipe.batch_size,
                     optimizer=self.opt, schedule=self.schedule, verbose=0)

    def accuracy(self, Xt: np.ndarray, yt: np.ndarray) -> float:
        return float(np.mean(self.net.predict(Xt) == yt))


class _TorchTrainer:
    def __init__(self, net: Any, recipe: Recipe) -> None:
        import torch

        self.model, self.recipe = torch_model(net), recipe  # deltaprop's initial weights
        params = self.model.parameters()
        self.opt = (torch.optim.SGD(params, lr=recipe.lr, momentum=MOMENTUM)
                    if recipe.optimizer == "sgd" else torch.optim.Adam(params, lr=recipe.lr))
        self.schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, recipe.cosine)
                         if recipe.cosine else None)
        self.rng = np.random.default_rng(0)

    def epoch(self, X: np.ndarray, y: np.ndarray, e: int) -> None:
        import torch

        order = torch.from_numpy(self.rng.permutation(X.shape[0]))
        torch_epoch(self.model, self.opt, torch.from_numpy(X), torch.from_numpy(y), order,
                    self.recipe.batch_size)
        if self.schedule is not None:
            self.schedule.step()

    def accuracy(self, Xt: np.ndarray, yt: np.ndarray) -> float:
        import torch

        with torch.no_grad():
            return float((self.model(torch.from_numpy(Xt)).argmax(1).numpy() == yt).mean())


class _NumpyTrainer:
    def __init__(self, net: Any, recipe: Recipe) -> None:
        if recipe.optimizer != "sgd" or recipe.cosine:
            raise ValueError("the NumPy loop runs SGD with momentum at a constant rate only")
        self.params = [a.copy() for _, a in net.parameters()]
        self.velocity = [np.zeros_like(a) for a in self.params]
        self.m, self.rng = recipe.batch_size, np.random.default_rng(0)

    def epoch(self, X: np.ndarray, y: np.ndarray, e: int) -> None:
        numpy_epoch(self.params, self.velocity, X, y, self.rng.permutation(X.shape[0]), self.m)

    def accuracy(self, Xt: np.ndarray, yt: np.ndarray) -> float:
        W1, b1, W2, b2, W3, b3 = self.params
        z = np.maximum(np.maximum(Xt @ W1.T + b1, 0) @ W2.T + b2, 0) @ W3.T + b3
        return float(np.mean(z.argmax(1) == yt))


class _SklearnTrainer:
    def __init__(self, net: Any, recipe: Recipe) -> None:
        from sklearn.neural_network import MLPClassifier

        if recipe.cosine:
            raise ValueError("scikit-learn's MLP has no cosine schedule")
        self.clf = MLPClassifier(
            hidden_layer_sizes=tuple(SIZES[1:-1]), activation="relu", solver=recipe.optimizer,
            learning_rate_init=recipe.lr, momentum=MOMENTUM, nesterovs_momentum=False,
            alpha=0.0, batch_size=recipe.batch_size, max_iter=1, shuffle=True, random_state=0)

    def epoch(self, X: np.ndarray, y: np.ndarray, e: int) -> None:
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.clf.partial_fit(X, y, classes=np.arange(SIZES[-1]))  # one epoch, state kept

    def accuracy(self, Xt: np.ndarray, yt: np.ndarray) -> float:
        return float(np.mean(self.clf.predict(Xt) == yt))


TRAINERS = {"deltaprop": _DeltapropTrainer, "pytorch": _TorchTrainer, "numpy": _NumpyTrainer,
            "sklearn": _SklearnTrainer}


def time_to_accuracy(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray,
                     recipe: Recipe, systems: list[str], target: float = 0.88
                     ) -> dict[str, Any]:
    """Training seconds (evaluation excluded) until test accuracy ≥ ``target``, per system,
    each with ``recipe`` from deltaprop's initial weights (scikit-learn from its own)."""
    result: dict[str, Any] = {"recipe": {**recipe.__dict__, "text": recipe.describe()},
                              "target": target}
    for system in systems:
        trainer = TRAINERS[system](new_network(0), recipe)
        spent, curve = 0.0, []
        for e in range(recipe.max_epochs):
            t = time.perf_counter()
            trainer.epoch(X, y, e)
            spent += time.perf_counter() - t
            curve.append(trainer.accuracy(Xt, yt))
            if curve[-1] >= target:
                break
        result[system] = {"seconds": spent if curve[-1] >= target else None,
                          "epochs": len(curve), "accuracy": curve}
    base = result.get("pytorch", {}).get("seconds")
    for system in systems:
        s = result[system]["seconds"]
        result[system]["ratio_to_pytorch"] = s / base if s and base else None
    return result


def print_tta(tta: dict[str, Any], systems: list[str]) -> None:
    print(f"# time to {100 * tta['target']:.0f} % test accuracy, recipe "
          f"'{tta['recipe']['name']}': {tta['recipe']['text']}", flush=True)
    print(f"{'system':<10} {'seconds':>8} {'epochs':>6} {'×torch':>7}  accuracy by epoch")
    for s in systems:
        r = tta[s]
        secs = f"{r['seconds']:.1f}" if r["seconds"] is not None else "not met"
        ratio = f"{r['ratio_to_pytorch']:.2f}" if r["ratio_to_pytorch"] else "-"
        curve = " ".join(f"{a:.3f}" for a in r["accuracy"])
        print(f"{s:<10} {secs:>8} {r['epochs']:>6} {ratio:>7}  {curve}", flush=True)


# --------------------------------------------------------------------------- main
def summary(times: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "runs": times}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="benchmarks/results.json")
    ap.add_argument("--runs", type=int, default=3, help="timed epochs per case (median)")
    ap.add_argument("--batch-sizes", default="1,32,128,1024")
    ap.add_argument("--systems", default="deltaprop,pytorch,numpy,sklearn,textbook")
    ap.add_argument("--n-train", type=int, default=N_FULL,
                    help="samples per timed epoch (extrapolated to 60000 if fewer)")
    ap.add_argument("--n-online", type=int, default=6000, help="slice for batch size 1")
    ap.add_argument("--n-textbook", type=int, default=1024,
                    help="samples the per-sample loop runs before extrapolating")
    ap.add_argument("--tta-systems", default="deltaprop,pytorch,numpy,sklearn",
                    help="systems of the same-recipe time-to-accuracy row")
    ap.add_argument("--no-tta", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return 0

    import torch

    torch.set_num_threads(os.cpu_count() or 1)  # "all cores"
    started = time.perf_counter()
    X, y, Xt, yt = load_data()
    info = machine_info()
    rate = matmul_rate()
    print(f"# float32 matmul 2048²: {rate['median']:.1f} GFLOP/s (median)", flush=True)
    systems = ["floor", *args.systems.split(",")]
    runners = {"floor": run_floor, "deltaprop": run_deltaprop, "pytorch": run_pytorch,
               "numpy": run_numpy, "sklearn": run_sklearn}
    rows: list[dict[str, Any]] = []
    loads: list[dict[str, Any]] = []
    header = (f"{'batch':>5} {'system':<10} {'epoch s':>8} {'min':>7} {'max':>7} "
              f"{'samples/s':>10} {'×torch':>7} {'×floor':>7} {'GFLOP/s':>8} {'%matmul':>8}")
    print(machine_line(info), flush=True)
    print(header, flush=True)
    for m in [int(b) for b in args.batch_sizes.split(",")]:
        n = min(args.n_online if m == 1 else args.n_train, X.shape[0])
        n_epoch = args.n_online if m == 1 else N_FULL  # what the figures are for
        Xs, ys = X[:n], y[:n]
        scale = n_epoch / n
        # Round-robin: run r of the floor and of every system, then run r + 1, so a machine
        # that speeds up or slows down during the case weighs on every system alike.
        k = min(max(args.n_textbook, 2 * m), n)
        calls = {s: (lambda: run_textbook(Xs, ys, m, 0, k)) if s == "textbook"
                 else (lambda s=s: runners[s](Xs, ys, m, 0)) for s in systems}
        repeats = {s: 1 if s == "textbook" and m > 1 else args.runs for s in systems}
        times: dict[str, list[float]] = {s: [] for s in systems}
        rates: list[float] = []  # the machine's matmul rate, measured in each round too
        load_before = os.getloadavg()
        for r in range(args.runs):
            rates.append(matmul_rate(repeats=3)["median"])
            for s in systems:
                if r < repeats[s]:
                    times[s].append(calls[s]() * scale)
        loads.append({"batch_size": m, "before": load_before, "after": os.getloadavg()})
        case: dict[str, dict[str, Any]] = {}
        for s in systems:
            case[s] = summary(times[s])
            if s == "textbook":
                case[s]["extrapolated_from"] = k
        torch_s = case.get("pytorch", {}).get("median")
        floor_s = case["floor"]["median"]
        case_rate = statistics.median(rates)
        for s, t in case.items():
            sps = n_epoch / t["median"]
            gflops = flops_per_sample() * sps / 1e9
            row = {"batch_size": m, "system": s, "epoch_samples": n_epoch,
                   "timed_samples": n, "seconds": t, "samples_per_s": sps,
                   "ratio_to_pytorch": t["median"] / torch_s if torch_s else None,
                   "ratio_to_floor": t["median"] / floor_s,
                   "gflops": gflops, "matmul_gflops": case_rate,
                   "fraction_of_matmul": gflops / case_rate}
            rows.append(row)
            ratio = f"{row['ratio_to_pytorch']:.2f}" if torch_s else "-"
            print(f"{m:>5} {s:<10} {t['median']:>8.2f} {t['min']:>7.2f} {t['max']:>7.2f} "
                  f"{sps:>10.0f} {ratio:>7} {row['ratio_to_floor']:>7.2f} {gflops:>8.1f} "
                  f"{100 * row['fraction_of_matmul']:>7.0f}%", flush=True)
        print(f"# load average {load_before[0]:.2f} before batch {m}, "
              f"{loads[-1]['after'][0]:.2f} after", flush=True)
    memory = None
    if not args.no_memory:
        memory = measure_memory(X, y, 1024)
        print(f"# deltaprop peak RSS over the interpreter at batch 1024: "
              f"{memory['peak_over_interpreter'] / 2**20:.0f} MiB = "
              f"{memory['ratio_to_budget']:.2f} × (data + params + batch activations "
              f"{memory['budget_bytes'] / 2**20:.0f} MiB); tracemalloc peak inside fit "
              f"{memory['traced_peak_in_fit'] / 2**20:.1f} MiB", flush=True)
    tta: list[dict[str, Any]] = []
    if not args.no_tta:
        print(machine_line(info), flush=True)
        for recipe, names in ((SAME_RECIPE, args.tta_systems.split(",")),
                              (BEST_RECIPE, ["deltaprop", "pytorch"])):
            tta.append(time_to_accuracy(X, y, Xt, yt, recipe, names))
            print_tta(tta[-1], names)
    total = time.perf_counter() - started
    info["load_average_end"] = os.getloadavg()
    result = {"command": " ".join([os.path.basename(sys.executable), *sys.argv]),
              "machine": info, "matmul_gflops": rate, "flops_per_sample": flops_per_sample(),
              "rows": rows, "loads": loads, "memory": memory, "time_to_accuracy": tta,
              "total_seconds": total, "n_train": args.n_train}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"# {total:.0f} s in all; load average {info['load_average_end'][0]:.2f} at the end; "
          f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
