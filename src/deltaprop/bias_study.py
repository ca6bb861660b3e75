"""Seed 003's experiment: one architecture trained with each bias treatment, over several seeds.

The same network (sizes, initial weights for a given seed, mini-batch order, optimizer) is
trained with the bias

- ``learned``: per-neuron b, eq. (15);
- ``unit``: a bias unit (constant activation 1) with learned weights — must equal ``learned``;
- ``frozen-0`` / ``frozen-1``: b fixed at 0 or 1, never updated (seed 003's question);
- ``none``: no bias at all (z = W a);
- ``layer-sum``: seed 002's *mistaken* rule, every bias of a layer corrected by the sum of the
  layer's δs (:func:`deltaprop.gradcheck.layer_sum_bias_gradient`), applied through ``fit``'s
  ``gradient_hook``. It is a teaching variant and lives only here: training elsewhere never
  uses it.

:func:`run` returns plain data: per mode the final train/validation loss and accuracy (mean
and standard deviation over seeds), the epochs needed to reach a target validation accuracy,
the learning curves, plus the memory biases take next to weights. Seeds vary the network's
initial weights and shuffling; the data and its split stay fixed (data seed 0).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deltaprop import datasets, figures, gradcheck, optim
from deltaprop._validation import check_int, check_positive
from deltaprop.errors import ConfigError
from deltaprop.network import Gradients, Network
from deltaprop.training import fit

#: mode name → (Network bias mode, bias_init, use the layer-sum hook)
MODES: dict[str, tuple[str, float, bool]] = {
    "learned": ("learned", 0.0, False),
    "unit": ("unit", 0.0, False),
    "frozen-0": ("frozen", 0.0, False),
    "frozen-1": ("frozen", 1.0, False),
    "none": ("none", 0.0, False),
    "layer-sum": ("learned", 0.0, True),
}
VALIDATION_FRACTION = 0.2
DATA_SEED = 0


@dataclass(frozen=True)
class Preset:
    """Defaults for one data set: small enough to run in about a minute on 2 cores."""

    hidden: tuple[int, ...]
    epochs: int
    batch_size: int
    lr: float
    target: float
    subset: int | None = None  # training samples used (None: all)


PRESETS: dict[str, Preset] = {
    "circles": Preset((8,), 60, 16, 0.05, 0.95),
    "xor": Preset((8,), 60, 16, 0.05, 0.95),
    "moons": Preset((8,), 60, 16, 0.05, 0.95),
    "spirals": Preset((32, 32), 100, 16, 0.05, 0.9),
    "digits": Preset((32,), 30, 32, 0.05, 0.95),
    "fashion-mnist": Preset((128,), 8, 64, 0.05, 0.8, subset=12000),
    "mnist": Preset((128,), 8, 64, 0.05, 0.9, subset=12000),
}
DEFAULT_PRESET = Preset((32,), 30, 32, 0.05, 0.9)


def preset(name: str) -> Preset:
    """The preset for a data set name (the generic default for other sets and files)."""
    return PRESETS.get(name.strip().lower().replace("_", "-"), DEFAULT_PRESET)


def layer_sum_hook(grads: Gradients, m: int) -> None:
    """``fit``'s gradient hook for the mistaken rule: db^l ← r Σ_samples Σ_k δ_k^l for all k.

    Every bias of a layer then gets the same correction (seed 002's wrong answer).
    """
    wrong = gradcheck.layer_sum_bias_gradient(grads)
    for db, w in zip(grads.db, wrong, strict=True):
        if db is not None:
            db[...] = w


def _stats(values: Sequence[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std()), "values": a.tolist()}


def prepare(
    name: str, *, data_dir: str | None = None, subset: int | None = None, dtype: str = "float64"
) -> tuple[datasets.Dataset, np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """Scaled (X_train, y_train, X_val, y_val) for the study, and a note on any subset.

    Raises
    ------
    ValueError
        A data set the study cannot use (regression targets, fewer than 2 classes).
    """
    data = datasets.load(name, data_dir=data_dir, seed=DATA_SEED, dtype=dtype)
    if data.task != "classification" or data.n_classes is None or data.n_classes < 2:
        raise ConfigError(
            f"bias-study needs a classification data set; {data.name} is {data.task}"
        )
    rng = np.random.default_rng([DATA_SEED, 1])
    X, y = data.X_train, data.y_train
    note = ""
    if subset is not None and subset < len(X):
        keep = rng.permutation(len(X))[:subset]
        X, y = X[keep], y[keep]
        note = f"a random subset of {subset} of the {len(data.X_train)} training samples"
    scaler = datasets.default_scaler(data.name).fit(X)
    X = scaler.transform(X, dtype)
    X_tr, y_tr, X_val, y_val = datasets.train_val_split(X, y, VALIDATION_FRACTION, rng)
    return data, X_tr, y_tr, X_val, y_val, note


def memory(sizes: Sequence[int], dtype: str = "float32") -> dict[str, Any]:
    """How many values (and bytes) the biases take next to the weights, for ``sizes``."""
    itemsize = np.dtype(dtype).itemsize
    bias = sum(sizes[1:])
    weight = sum(a * b for a, b in itertools.pairwise(sizes))
    return {
        "dtype": dtype,
        "bias_count": bias,
        "weight_count": weight,
        "bias_bytes": bias * itemsize,
        "weight_bytes": weight * itemsize,
        "bias_fraction": bias / (bias + weight),
    }


def _epochs_to(curve: Sequence[float], target: float) -> int | None:
    """1-based epoch at which ``curve`` first reaches ``target``, or None."""
    for epoch, value in enumerate(curve):
        if value >= target:
            return epoch + 1
    return None


def _flat_parameters(net: Network) -> np.ndarray:
    """Every weight and bias, the bias unit's column read as b (to compare learned with unit)."""
    parts = []
    for layer in net.layers:
        parts.append(layer.W_in.ravel())
        if layer.has_unit:
            parts.append(layer.W[:, -1])
        elif layer.b is not None:
            parts.append(layer.b)
    return np.concatenate(parts)


def run(
    name: str = "circles",
    *,
    seeds: int = 3,
    epochs: int | None = None,
    hidden: Sequence[int] | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    activation: str = "relu",
    target: float | None = None,
    subset: int | None = None,
    modes: Sequence[str] = tuple(MODES),
    data_dir: str | None = None,
    dtype: str = "float64",
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Train the same architecture with every bias mode for ``seeds`` seeds.

    Parameters
    ----------
    name : data set name or path (classification only)
    seeds : int
        Network seeds 0 … seeds − 1 (initial weights and shuffling).
    epochs, hidden, batch_size, lr, target, subset
        None takes the data set's :class:`Preset`.
    activation : str
        Hidden activation; output is softmax with cross-entropy.
    modes : names from :data:`MODES`
    dtype : {"float32", "float64"}
    progress : callable(mode, seed), optional
        Called before each run (the CLI draws a progress bar with it).

    Returns
    -------
    dict
        ``data``, ``settings``, ``rows`` (one per mode: ``mode``, ``train_loss``,
        ``train_accuracy``, ``val_loss``, ``val_accuracy`` as {mean, std, values},
        ``epochs_to_target`` {mean, reached, seeds}, ``curves`` {loss, val_accuracy: one
        list per seed}), ``memory`` and ``unit_vs_learned`` (largest difference between
        the final parameters of ``learned`` and ``unit`` for seed 0, or None).
    """
    p = preset(name)
    seeds = check_int("seeds", seeds)
    epochs = check_int("epochs", p.epochs if epochs is None else epochs)
    batch_size = check_int("batch_size", p.batch_size if batch_size is None else batch_size)
    lr = check_positive("lr", p.lr if lr is None else lr)
    target = p.target if target is None else float(target)
    hidden = list(p.hidden if hidden is None else hidden)
    subset = p.subset if subset is None else check_int("subset", subset)
    unknown = [mo for mo in modes if mo not in MODES]
    if unknown:
        raise ConfigError(f"unknown bias mode {unknown[0]!r}; choose from {', '.join(MODES)}")

    data, X_tr, y_tr, X_val, y_val, note = prepare(
        name, data_dir=data_dir, subset=subset, dtype=dtype
    )
    sizes = [data.n_features, *hidden, data.n_classes]
    rows = []
    finals: dict[str, np.ndarray] = {}
    for mode in modes:
        bias, bias_init, mistaken = MODES[mode]
        per_seed: dict[str, list[Any]] = {k: [] for k in (
            "train_loss", "train_accuracy", "val_loss", "val_accuracy", "epochs", "loss_curve",
            "val_curve")}
        for seed in range(seeds):
            if progress is not None:
                progress(mode, seed)
            net = Network(sizes, activation=activation, output="softmax",
                          loss="cross_entropy", bias=bias, bias_init=bias_init, dtype=dtype,
                          seed=seed)
            history = fit(net, X_tr, y_tr, epochs=epochs, batch_size=batch_size,
                          optimizer=optim.SGD(lr=lr, momentum=0.9),
                          validation_data=(X_val, y_val), verbose=0,
                          gradient_hook=layer_sum_hook if mistaken else None)
            train = net.evaluate(X_tr, y_tr)
            per_seed["train_loss"].append(train["loss"])
            per_seed["train_accuracy"].append(train["accuracy"])
            per_seed["val_loss"].append(history.val_loss[-1])
            per_seed["val_accuracy"].append(history.val_accuracy[-1])
            per_seed["epochs"].append(_epochs_to(history.val_accuracy, target))
            per_seed["loss_curve"].append(list(history.loss))
            per_seed["val_curve"].append(list(history.val_accuracy))
            if seed == 0:
                finals[mode] = _flat_parameters(net)
        reached = [e for e in per_seed["epochs"] if e is not None]
        rows.append({
            "mode": mode,
            "train_loss": _stats(per_seed["train_loss"]),
            "train_accuracy": _stats(per_seed["train_accuracy"]),
            "val_loss": _stats(per_seed["val_loss"]),
            "val_accuracy": _stats(per_seed["val_accuracy"]),
            "epochs_to_target": {
                "mean": float(np.mean(reached)) if reached else None,
                "reached": len(reached),
                "seeds": seeds,
                "values": per_seed["epochs"],
            },
            "curves": {"loss": per_seed["loss_curve"], "val_accuracy": per_seed["val_curve"]},
        })
    same = None
    if "learned" in finals and "unit" in finals:
        same = float(np.max(np.abs(finals["learned"] - finals["unit"])))
    return {
        "data": data.name,
        "settings": {
            "sizes": sizes, "activation": activation, "optimizer": "sgd (momentum 0.9)",
            "lr": lr, "batch_size": batch_size, "epochs": epochs, "seeds": seeds,
            "target": target, "dtype": dtype, "n_train": len(X_tr),
            "n_val": len(X_val), "subset_note": note,
        },
        "rows": rows,
        "memory": memory(sizes),
        "unit_vs_learned": same,
    }


def plot_curves(study: dict[str, Any], path: str | Path) -> None:
    """Training loss and validation accuracy per epoch, one line per mode (mean ± std band)."""
    fig = figures.figure((11, 4))
    axes = fig.subplots(1, 2)
    styles = {"unit": "--"}  # unit lies exactly on learned: dashed so both show
    for row in study["rows"]:
        for ax, key in zip(axes, ("loss", "val_accuracy"), strict=True):
            curves = np.asarray(row["curves"][key], dtype=np.float64)
            mean, std = curves.mean(axis=0), curves.std(axis=0)
            epochs = np.arange(1, curves.shape[1] + 1)
            (line,) = ax.plot(epochs, mean, styles.get(row["mode"], "-"), label=row["mode"])
            ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    axes[0].set_ylabel("training loss (cross-entropy)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("validation accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[1].legend(title="bias", loc="lower right")
    s = study["settings"]
    fig.suptitle(f"{study['data']}: sizes {s['sizes']}, {s['seeds']} seeds (mean ± std)")
    fig.tight_layout()
    figures.save(fig, path)
