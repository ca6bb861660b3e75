"""The best MLP on Fashion-MNIST: deltaprop's recipe, 3 seeds, against PyTorch running it too.

One command (issue 18)::

    PYTHONPATH=src python benchmarks/bench_fashion_mlp.py --out benchmarks/fashion_mlp.json

For each seed it runs the documented ``deltaprop train`` command (:data:`RECIPE`, printed
with the table) in a subprocess and reads its ``--json`` summary: the test accuracy on the
10000 test images, and the command's wall time (data loading, training, test, save). Then
PyTorch runs the same recipe in a subprocess of its own (this script with ``--worker``): the
same data, split and input scaling (deltaprop's loaders), the same initial weights (copied
from the deltaprop network built with the same seed), ``nn.Linear`` (no bias where batch
norm follows, as deltaprop's default), ``nn.BatchNorm1d``, ReLU, ``nn.Dropout``,
``torch.optim.Adam`` with ``CosineAnnealingLR`` stepped per epoch, the same batch size and
epochs, its own shuffling and masks. Its wall time is the subprocess's too (import, data,
training, test). Both use ``--threads`` threads (default 2, the machine's cores): the BLAS
pool through ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``, torch through
``torch.set_num_threads``. On a machine other jobs keep busy, two spinning BLAS or OpenMP
threads per process can lose most of their time waiting for each other (docs/performance.md),
so ``--threads 1`` gives steadier figures there; the JSON records the setting.

The table gives per system: test accuracy mean ± std over the seeds (and each value), wall
seconds mean [min, max], and beside them the best scikit-learn MLP of the Fashion-MNIST
paper (Xiao, Rasul & Vollgraf 2017, Table 3: MLPClassifier, activation relu, hidden
(100, 10): 0.871 mean accuracy; a published figure, not run here). The machine (CPU model,
cores, BLAS and its threads, the load average before and after every run) is printed with it.

``--seeds``, ``--systems`` and ``--epochs`` shorten a check run (the JSON says so).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: The recipe: what ``deltaprop train`` is given (besides --seed, --out and --json).
RECIPE: dict[str, Any] = {
    "hidden": [1024, 1024],
    "batch_norm": True,
    "dropout": 0.4,
    "optimizer": "adam",
    "lr": 1e-3,
    "schedule": "cosine",
    "batch_size": 128,
    "epochs": 20,
    "val_split": 0.0,
}
PAPER_SKLEARN_MLP = 0.871  # Xiao, Rasul & Vollgraf 2017, Table 3, best MLPClassifier


def command(recipe: dict[str, Any], seed: int, out: str) -> list[str]:
    """The ``deltaprop train`` command line of the recipe."""
    args = ["train", "--data", "fashion-mnist",
            "--hidden", ",".join(map(str, recipe["hidden"])),
            "--optimizer", recipe["optimizer"], "--lr", str(recipe["lr"]),
            "--schedule", recipe["schedule"], "--batch-size", str(recipe["batch_size"]),
            "--epochs", str(recipe["epochs"]), "--val-split", str(recipe["val_split"])]
    if recipe["batch_norm"]:
        args.append("--batch-norm")
    if recipe["dropout"]:
        args += ["--dropout", str(recipe["dropout"])]
    return [*args, "--seed", str(seed), "--out", out]


def machine_info() -> dict[str, Any]:
    from threadpoolctl import threadpool_info

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    import torch

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "blas": [{k: p.get(k) for k in ("internal_api", "version", "num_threads",
                                        "architecture", "threading_layer")}
                 for p in threadpool_info()],
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")},
    }


# --------------------------------------------------------------------------- the runs
def child_env(threads: int) -> dict[str, str]:
    """The environment of a run: this source tree, ``threads`` BLAS / OpenMP threads."""
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OPENBLAS_NUM_THREADS": str(threads),
            "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def run_deltaprop(recipe: dict[str, Any], seed: int, scratch: Path,
                  threads: int) -> dict[str, Any]:
    env = child_env(threads)
    argv = [sys.executable, "-m", "deltaprop", *command(recipe, seed,
                                                        str(scratch / f"m{seed}.safetensors")),
            "--json"]
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    summary = json.loads(proc.stdout)
    return {"accuracy": summary["test"]["accuracy"], "wall": wall,
            "train_seconds": sum(summary["history"]["seconds"])}


def run_pytorch(recipe: dict[str, Any], seed: int, scratch: Path,
                threads: int) -> dict[str, Any]:
    job = {"recipe": recipe, "seed": seed, "threads": threads}
    argv = [sys.executable, __file__, "--worker", json.dumps(job)]
    env = child_env(threads)
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "wall": wall}


def torch_worker(recipe: dict[str, Any], seed: int, threads: int) -> dict[str, Any]:
    """PyTorch on the recipe; prints {"accuracy", "train_seconds"}."""
    import torch

    import deltaprop as dp
    from deltaprop import datasets

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    data = datasets.load("fashion-mnist", seed=seed, dtype="float32")
    X, y = data.X_train, data.y_train
    if recipe["val_split"] > 0:  # the command's split: Generator([seed, 1])
        rng = np.random.default_rng([seed, 1])
        X, y, _, _ = datasets.train_val_split(X, y, recipe["val_split"], rng)
    scaler = datasets.default_scaler("fashion-mnist").fit(X)
    Xt = torch.tensor(scaler.transform(X, "float32"))
    yt = torch.tensor(y, dtype=torch.int64)
    X_test = torch.tensor(scaler.transform(data.X_test, "float32"))
    # the command's network for this seed: its initial weights become torch's
    net = dp.Network([784, *recipe["hidden"], 10], seed=seed, dropout=recipe["dropout"],
                     batch_norm=recipe["batch_norm"])
    modules: list[Any] = []
    for i, layer in enumerate(net.layers):
        linear = torch.nn.Linear(layer.n_in, layer.n_out, bias=layer.b is not None)
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(layer.W))
            if layer.b is not None:
                linear.bias.copy_(torch.tensor(layer.b))
        modules.append(linear)
        if i < len(net.layers) - 1:
            if layer.norm is not None:
                modules.append(torch.nn.BatchNorm1d(layer.n_out))
            modules.append(torch.nn.ReLU())
            if layer.dropout:
                modules.append(torch.nn.Dropout(layer.dropout))
    model = torch.nn.Sequential(*modules)
    opt = torch.optim.Adam(model.parameters(), lr=recipe["lr"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe["epochs"])
    loss_fn = torch.nn.CrossEntropyLoss()
    m, n = recipe["batch_size"], len(Xt)
    started = time.perf_counter()
    for _ in range(recipe["epochs"]):
        model.train()
        order = torch.randperm(n)
        for start in range(0, n, m):
            rows = order[start:start + m]
            if len(rows) < 2 and recipe["batch_norm"]:
                continue  # as deltaprop: batch norm needs two samples
            opt.zero_grad()
            loss_fn(model(Xt[rows]), yt[rows]).backward()
            opt.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(X_test).argmax(dim=1).numpy() == data.y_test).mean()
    return {"accuracy": float(accuracy), "train_seconds": time.perf_counter() - started}


# --------------------------------------------------------------------------- the table
def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    acc = [r["accuracy"] for r in runs]
    wall = [r["wall"] for r in runs]
    return {
        "accuracy_mean": statistics.mean(acc),
        "accuracy_std": statistics.stdev(acc) if len(acc) > 1 else 0.0,
        "accuracies": acc,
        "wall_mean": statistics.mean(wall), "wall_min": min(wall), "wall_max": max(wall),
        "runs": runs,
    }


def table(result: dict[str, Any]) -> str:
    lines = ["| system | test accuracy, mean ± std (per seed) | wall s per run, mean [min, max] |",
             "|---|---|---|"]
    for name, s in result["systems"].items():
        per_seed = ", ".join(f"{a:.4f}" for a in s["accuracies"])
        lines.append(f"| {name} | {s['accuracy_mean']:.4f} ± {s['accuracy_std']:.4f} "
                     f"({per_seed}) | {s['wall_mean']:.0f} [{s['wall_min']:.0f}, "
                     f"{s['wall_max']:.0f}] |")
    lines.append(f"| scikit-learn MLPClassifier (Fashion-MNIST paper, Table 3) | "
                 f"{PAPER_SKLEARN_MLP:.3f} | — |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--systems", default="deltaprop,pytorch")
    parser.add_argument("--epochs", type=int, default=None, help="Override (a check run).")
    parser.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP/torch threads.")
    parser.add_argument("--out", default=None, help="Write the results as JSON here.")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        job = json.loads(args.worker)
        print(json.dumps(torch_worker(job["recipe"], job["seed"], job["threads"])))
        return
    recipe = dict(RECIPE)
    if args.epochs is not None:
        recipe["epochs"] = args.epochs
    import tempfile

    shown = "deltaprop " + " ".join(command(recipe, 0, "m.safetensors"))
    result: dict[str, Any] = {"recipe": recipe, "machine": machine_info(), "systems": {},
                              "command": shown, "full_recipe": args.epochs is None,
                              "threads": args.threads}
    runners = {"deltaprop": run_deltaprop, "pytorch": run_pytorch}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.systems.split(","):
            runs = []
            for seed in range(args.seeds):
                load_before = os.getloadavg()[0]
                run = runners[name](recipe, seed, Path(scratch), args.threads)
                run.update(seed=seed, load_before=load_before, load_after=os.getloadavg()[0])
                print(f"{name} seed {seed}: accuracy {run['accuracy']:.4f}, wall "
                      f"{run['wall']:.0f} s (load {load_before:.1f} → {run['load_after']:.1f})",
                      file=sys.stderr, flush=True)
                runs.append(run)
            result["systems"][name] = summarise(runs)
    m = result["machine"]
    print(f"command: {result['command']}  (seeds 0..{args.seeds - 1})")
    print(f"machine: {m['cpu']}, {m['cores']} cores; BLAS {m['blas']}; torch {m['torch']}; "
          f"{args.threads} thread(s) per run")
    print(table(result))
    for name, summary in result["systems"].items():
        loads = ", ".join(f"{r['load_before']:.1f}→{r['load_after']:.1f}" for r in summary["runs"])
        print(f"load average (1 min) before→after each {name} run: {loads}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
