"""Seed 003's experiment: one architecture trained with each bias treatment, over several seeds.

The same network (sizes, initial weights for a given seed, mini-batch order, optimizer) is
trained with the bias

- ``learned``: per-neuron b, eq. (15);
- ``unit``: a bias unit (constant activation 1) with learned weights — must equal ``learned``;
- ``frozen-0`` / ``frozen-1``: b fixed at 0 or 1, never updated (seed 003's question);
- ``none``: no bias at all (z = W a);
- ``none+batch-norm``: no bias, batch normalization between z and σ in the hidden layers:
  its learned shift β plays the bias's part (a bias before it would be subtracted again with
  the batch mean — seed 003's question answered a third way);
- ``layer-sum``: seed 002's *mistaken* rule, every bias of a layer corrected by the sum of the
  layer's δs (:func:`deltaprop.gradcheck.layer_sum_bias_gradient`), applied through ``fit``'s
  ``gradient_hook``. It is a teaching variant and lives only here: training elsewhere never
  uses it.

:func:`run` returns a :class:`Study`: per mode (:class:`ModeResult`) the final train/validation
loss and accuracy over seeds (:class:`Stats`: mean, standard deviation, per-seed values), the
epochs needed to reach a target validation accuracy, the learning curves, plus the memory
biases take next to weights. ``Study.as_dict()`` is what ``deltaprop bias-study --json``
prints. Seeds vary the network's initial weights and shuffling; the data and its split stay
fixed (data seed 0).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
    "none+batch-norm": ("none", 0.0, False),
    "layer-sum": ("learned", 0.0, True),
}
#: Modes whose hidden layers normalise z over the batch.
BATCH_NORM_MODES = frozenset({"none+batch-norm"})
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


def _frozen(values: Any) -> NDArray[np.float64]:
    """A read-only float64 copy: a result is a snapshot."""
    out = np.array(values, dtype=np.float64)
    out.setflags(write=False)
    return out


def _json(value: Any) -> Any:
    """A result as JSON-friendly data: a dataclass as a dict of its fields in their order,
    arrays and tuples as lists."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    return value


class _Result:
    """The result types: ``as_dict()`` gives the fields as the command's JSON, in order (the
    attribute names are the JSON keys)."""

    def as_dict(self) -> dict[str, Any]:
        """The fields as JSON-friendly data: nested results as dicts, arrays as lists."""
        out: dict[str, Any] = _json(self)
        return out


# The result types are frozen snapshots. Those holding arrays set eq=False: a field-wise ==
# on arrays has no single truth value; compare them through as_dict().
@dataclass(frozen=True, eq=False)
class Stats(_Result):
    """One final figure over the seeds.

    Attributes
    ----------
    mean, std : float
        Over the seeds (std with ddof 0, NumPy's default).
    values : ndarray of shape (seeds,)
        One value per seed, seed 0 first.
    """

    mean: float
    std: float
    values: NDArray[np.float64]

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        a = _frozen(values)
        return cls(mean=float(a.mean()), std=float(a.std()), values=a)


@dataclass(frozen=True)
class EpochsToTarget(_Result):
    """When each seed's validation accuracy first reached the study's target.

    Attributes
    ----------
    mean : float or None
        Mean epoch over the seeds that reached it; None if none did.
    reached : int
        Seeds that reached it.
    seeds : int
        Seeds run.
    values : tuple of (int or None)
        Per seed, the 1-based epoch, or None if never reached.
    """

    mean: float | None
    reached: int
    seeds: int
    values: tuple[int | None, ...]

    @classmethod
    def of(cls, values: Sequence[int | None]) -> EpochsToTarget:
        reached = [e for e in values if e is not None]
        return cls(mean=float(np.mean(reached)) if reached else None, reached=len(reached),
                   seeds=len(values), values=tuple(values))


@dataclass(frozen=True, eq=False)
class Curves(_Result):
    """Learning curves of one mode, one row per seed, one column per epoch.

    Attributes
    ----------
    loss : ndarray of shape (seeds, epochs)
        Training loss (cross-entropy) of each epoch: the mean over its mini-batches, as
        ``fit``'s history records it.
    val_accuracy : ndarray of shape (seeds, epochs)
        Validation accuracy after each epoch.
    """

    loss: NDArray[np.float64]
    val_accuracy: NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ModeResult(_Result):
    """One bias mode of the study, over every seed.

    Attributes
    ----------
    mode : str
        A name from :data:`MODES`.
    train_loss, train_accuracy : Stats
        On the training samples, after the last epoch.
    val_loss, val_accuracy : Stats
        On the validation samples, after the last epoch.
    epochs_to_target : EpochsToTarget
    curves : Curves
    """

    mode: str
    train_loss: Stats
    train_accuracy: Stats
    val_loss: Stats
    val_accuracy: Stats
    epochs_to_target: EpochsToTarget
    curves: Curves


@dataclass(frozen=True)
class Settings(_Result):
    """What every mode of the study was trained with.

    Attributes
    ----------
    sizes : tuple of int
        [n_0, n_1, …, n_L] of every network.
    activation : str
        Hidden activation (the output is softmax with cross-entropy).
    optimizer : str
        As people read it, e.g. ``"sgd (momentum 0.9)"``.
    lr : float
    batch_size, epochs, seeds : int
    target : float
        The validation accuracy whose first epoch is reported.
    dtype : str
    n_train, n_val : int
        Training and validation samples.
    subset_note : str
        Says which training subset was used; "" when all of it was.
    """

    sizes: tuple[int, ...]
    activation: str
    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    seeds: int
    target: float
    dtype: str
    n_train: int
    n_val: int
    subset_note: str


@dataclass(frozen=True)
class Memory(_Result):
    """How many values (and bytes) the biases take next to the weights.

    Attributes
    ----------
    dtype : str
    bias_count, weight_count : int
        Σ_l n_l biases and Σ_l n_l n_{l−1} weights.
    bias_bytes, weight_bytes : int
    bias_fraction : float
        bias_count / (bias_count + weight_count).
    """

    dtype: str
    bias_count: int
    weight_count: int
    bias_bytes: int
    weight_bytes: int
    bias_fraction: float


@dataclass(frozen=True, eq=False)
class Study(_Result):
    """The whole study: its settings, one :class:`ModeResult` per mode, and what it cost.

    Attributes
    ----------
    data : str
        The data set's name.
    settings : Settings
    rows : tuple of ModeResult
        One per mode, in the order the modes were given (the printed table's rows).
    memory : Memory
        Of the study's sizes, in float32.
    unit_vs_learned : float or None
        Largest difference between any final parameter of ``learned`` and ``unit`` for
        seed 0 (the bias unit's column read as b); None unless both modes ran.
    seconds : float
        Wall-clock time of :func:`run`.
    plot : str or None
        Where the learning curves were written, set by the caller that wrote them
        (``dataclasses.replace(study, plot=path)`` after :func:`plot_curves`); else None.
    """

    data: str
    settings: Settings
    rows: tuple[ModeResult, ...]
    memory: Memory
    unit_vs_learned: float | None
    seconds: float
    plot: str | None = None

    def row(self, mode: str) -> ModeResult:
        """The result of ``mode``; KeyError if it was not run."""
        for result in self.rows:
            if result.mode == mode:
                return result
        raise KeyError(mode)

    def as_dict(self) -> dict[str, Any]:
        """Every number as JSON-friendly data: what ``deltaprop bias-study --json`` prints
        (``plot`` only when set)."""
        out = super().as_dict()
        if self.plot is None:
            del out["plot"]
        return out


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


def memory(sizes: Sequence[int], dtype: str = "float32") -> Memory:
    """How many values (and bytes) the biases take next to the weights, for ``sizes``."""
    itemsize = np.dtype(dtype).itemsize
    bias = sum(sizes[1:])
    weight = sum(a * b for a, b in itertools.pairwise(sizes))
    return Memory(
        dtype=dtype,
        bias_count=bias,
        weight_count=weight,
        bias_bytes=bias * itemsize,
        weight_bytes=weight * itemsize,
        bias_fraction=bias / (bias + weight),
    )


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
) -> Study:
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
    Study
        Per mode, final losses and accuracies (mean ± std over seeds), epochs to ``target``
        and learning curves; the settings, memory of biases vs weights, and how far
        ``unit`` ended from ``learned``. ``run(...).as_dict()`` is the command's JSON.
    """
    started = time.perf_counter()
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
        train, histories = [], []  # per seed: final training figures, fit's history
        for seed in range(seeds):
            if progress is not None:
                progress(mode, seed)
            net = Network(sizes, activation=activation, output="softmax",
                          loss="cross_entropy", bias=bias, bias_init=bias_init, dtype=dtype,
                          seed=seed, batch_norm=mode in BATCH_NORM_MODES)
            histories.append(fit(net, X_tr, y_tr, epochs=epochs, batch_size=batch_size,
                                 optimizer=optim.SGD(lr=lr, momentum=0.9),
                                 validation_data=(X_val, y_val), verbose=0,
                                 gradient_hook=layer_sum_hook if mistaken else None))
            train.append(net.evaluate(X_tr, y_tr))
            if seed == 0:
                finals[mode] = _flat_parameters(net)
        rows.append(ModeResult(
            mode=mode,
            train_loss=Stats.of([t["loss"] for t in train]),
            train_accuracy=Stats.of([t["accuracy"] for t in train]),
            val_loss=Stats.of([h.val_loss[-1] for h in histories]),
            val_accuracy=Stats.of([h.val_accuracy[-1] for h in histories]),
            epochs_to_target=EpochsToTarget.of(
                [_epochs_to(h.val_accuracy, target) for h in histories]),
            curves=Curves(loss=_frozen([h.loss for h in histories]),
                          val_accuracy=_frozen([h.val_accuracy for h in histories])),
        ))
    same = None
    if "learned" in finals and "unit" in finals:
        same = float(np.max(np.abs(finals["learned"] - finals["unit"])))
    settings = Settings(
        sizes=tuple(sizes), activation=activation, optimizer="sgd (momentum 0.9)", lr=lr,
        batch_size=batch_size, epochs=epochs, seeds=seeds, target=target, dtype=dtype,
        n_train=len(X_tr), n_val=len(X_val), subset_note=note,
    )
    return Study(data=data.name, settings=settings, rows=tuple(rows), memory=memory(sizes),
                 unit_vs_learned=same, seconds=time.perf_counter() - started)


def plot_curves(study: Study, path: str | Path) -> None:
    """Training loss and validation accuracy per epoch, one line per mode (mean ± std band)."""
    fig = figures.figure((11, 4))
    axes = fig.subplots(1, 2)
    styles = {"unit": "--"}  # unit lies exactly on learned: dashed so both show
    for row in study.rows:
        for ax, curves in zip(axes, (row.curves.loss, row.curves.val_accuracy), strict=True):
            mean, std = curves.mean(axis=0), curves.std(axis=0)
            epochs = np.arange(1, curves.shape[1] + 1)
            (line,) = ax.plot(epochs, mean, styles.get(row.mode, "-"), label=row.mode)
            ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    axes[0].set_ylabel("training loss (cross-entropy)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("validation accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[1].legend(title="bias", loc="lower right")
    s = study.settings
    fig.suptitle(f"{study.data}: sizes {list(s.sizes)}, {s.seeds} seeds (mean ± std)")
    fig.tight_layout()
    figures.save(fig, path)
