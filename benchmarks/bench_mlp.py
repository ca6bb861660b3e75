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

Figures per (system, batch size): epoch seconds (median, min, max over ``--runs``),
samples/s, ratio to PyTorch's median, GFLOP/s counted as 6 · Σ_l n_{l−1} n_l flops per
sample (2 flops per multiply-add × one forward and two backward matrix products), and that
rate as a fraction of a large float32 ``np.matmul`` (2048², median) measured in the same
case. Within a batch size the systems run round-robin — one epoch of each, ``--runs``
times, with the matmul rate measured at the start of every round — so a machine whose
speed drifts during the case (shared hosts do) weighs on every system alike. Also:
deltaprop's peak memory in a child process, and the seconds of training until the test
accuracy reaches 88 % (deltaprop vs PyTorch from the same initial weights).

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
def time_to_accuracy(X: np.ndarray, y: np.ndarray, Xt: np.ndarray, yt: np.ndarray,
                     m: int, target: float, max_epochs: int) -> dict[str, Any]:
    """Training seconds (evaluation excluded) until test accuracy ≥ ``target``."""
    import torch

    import deltaprop as dp

    result: dict[str, Any] = {"batch_size": m, "target": target, "lr": LR}
    net = new_network(0)
    model = torch_model(net)  # same starting weights
    opt = dp.optim.SGD(lr=LR, momentum=MOMENTUM)
    spent, curve = 0.0, []
    for epoch in range(max_epochs):
        t = time.perf_counter()
        net.fit(X, y, epochs=1, batch_size=m, optimizer=opt, verbose=0)
        spent += time.perf_counter() - t
        acc = float(np.mean(net.predict(Xt) == yt))
        curve.append(acc)
        if acc >= target:
            break
    result["deltaprop"] = {"seconds": spent if curve[-1] >= target else None,
                           "epochs": len(curve), "accuracy": curve}
    topt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    X_t, y_t, Xt_t = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(Xt)
    rng = np.random.default_rng(0)
    spent, curve = 0.0, []
    for epoch in range(max_epochs):
        order = torch.from_numpy(rng.permutation(X.shape[0]))
        t = time.perf_counter()
        torch_epoch(model, topt, X_t, y_t, order, m)
        spent += time.perf_counter() - t
        with torch.no_grad():
            acc = float((model(Xt_t).argmax(1).numpy() == yt).mean())
        curve.append(acc)
        if acc >= target:
            break
    result["pytorch"] = {"seconds": spent if curve[-1] >= target else None,
                         "epochs": len(curve), "accuracy": curve}
    d, p = result["deltaprop"]["seconds"], result["pytorch"]["seconds"]
    result["ratio"] = d / p if d and p else None
    return result


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
    ap.add_argument("--tta-batch", type=int, default=128)
    ap.add_argument("--tta-max-epochs", type=int, default=12)
    ap.add_argument("--no-tta", action="store_true")
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
    print(f"# {info['cpu']}, {info['cores']} cores, load {info['load_average'][0]:.1f}; "
          f"BLAS {info['blas']}", flush=True)
    rate = matmul_rate()
    print(f"# float32 matmul 2048²: {rate['median']:.1f} GFLOP/s (median)", flush=True)
    systems = args.systems.split(",")
    runners = {"deltaprop": run_deltaprop, "pytorch": run_pytorch, "numpy": run_numpy,
               "sklearn": run_sklearn}
    rows: list[dict[str, Any]] = []
    header = (f"{'batch':>5} {'system':<10} {'epoch s':>8} {'min':>7} {'max':>7} "
              f"{'samples/s':>10} {'×torch':>7} {'GFLOP/s':>8} {'%matmul':>8}")
    print(header, flush=True)
    for m in [int(b) for b in args.batch_sizes.split(",")]:
        n = min(args.n_online if m == 1 else args.n_train, X.shape[0])
        n_epoch = args.n_online if m == 1 else N_FULL  # what the figures are for
        Xs, ys = X[:n], y[:n]
        scale = n_epoch / n
        # Round-robin: run r of every system, then run r + 1, so a machine that speeds up
        # or slows down during the case weighs on every system alike.
        k = min(max(args.n_textbook, 2 * m), n)
        calls = {s: (lambda: run_textbook(Xs, ys, m, 0, k)) if s == "textbook"
                 else (lambda s=s: runners[s](Xs, ys, m, 0)) for s in systems}
        repeats = {s: 1 if s == "textbook" and m > 1 else args.runs for s in systems}
        times: dict[str, list[float]] = {s: [] for s in systems}
        rates: list[float] = []  # the machine's matmul rate, measured in each round too
        for r in range(args.runs):
            rates.append(matmul_rate(repeats=3)["median"])
            for s in systems:
                if r < repeats[s]:
                    times[s].append(calls[s]() * scale)
        case: dict[str, dict[str, Any]] = {}
        for s in systems:
            case[s] = summary(times[s])
            if s == "textbook":
                case[s]["extrapolated_from"] = k
        torch_s = case.get("pytorch", {}).get("median")
        case_rate = statistics.median(rates)
        for s, t in case.items():
            sps = n_epoch / t["median"]
            gflops = flops_per_sample() * sps / 1e9
            row = {"batch_size": m, "system": s, "epoch_samples": n_epoch,
                   "timed_samples": n, "seconds": t, "samples_per_s": sps,
                   "ratio_to_pytorch": t["median"] / torch_s if torch_s else None,
                   "gflops": gflops, "matmul_gflops": case_rate,
                   "fraction_of_matmul": gflops / case_rate}
            rows.append(row)
            ratio = f"{row['ratio_to_pytorch']:.2f}" if torch_s else "-"
            print(f"{m:>5} {s:<10} {t['median']:>8.2f} {t['min']:>7.2f} {t['max']:>7.2f} "
                  f"{sps:>10.0f} {ratio:>7} {gflops:>8.1f} "
                  f"{100 * row['fraction_of_matmul']:>7.0f}%", flush=True)
    memory = measure_memory(X, y, 1024)
    print(f"# deltaprop peak RSS over the interpreter at batch 1024: "
          f"{memory['peak_over_interpreter'] / 2**20:.0f} MiB = "
          f"{memory['ratio_to_budget']:.2f} × (data + params + batch activations "
          f"{memory['budget_bytes'] / 2**20:.0f} MiB); tracemalloc peak inside fit "
          f"{memory['traced_peak_in_fit'] / 2**20:.1f} MiB", flush=True)
    tta = None
    if not args.no_tta:
        tta = time_to_accuracy(X, y, Xt, yt, args.tta_batch, 0.88, args.tta_max_epochs)
        print(f"# time to 88% test accuracy (batch {args.tta_batch}, lr {LR}): "
              f"deltaprop {tta['deltaprop']['seconds']} s in {tta['deltaprop']['epochs']} "
              f"epochs, pytorch {tta['pytorch']['seconds']} s in {tta['pytorch']['epochs']} "
              f"epochs, ratio {tta['ratio']}", flush=True)
    total = time.perf_counter() - started
    info["load_average_end"] = os.getloadavg()
    result = {"command": " ".join([os.path.basename(sys.executable), *sys.argv]),
              "machine": info, "matmul_gflops": rate, "flops_per_sample": flops_per_sample(),
              "rows": rows, "memory": memory, "time_to_accuracy": tta,
              "total_seconds": total, "n_train": args.n_train}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"# {total:.0f} s in all; wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
