"""Epoch loop: shuffle indices, slice mini-batches, call backward + step, history.

One epoch visits the training samples in an order drawn from the network's own
``numpy.random.Generator``, in mini-batches of ``batch_size`` rows (1: online learning, the
seeds' per-example form; None: the full batch). Each batch is gathered into the
preallocated workspace with ``np.take(..., out=)``; :meth:`Network.backprop_into` computes the
batch gradient — the mean or sum over samples of per-sample gradients (seed 002) — and the
optimizer applies it. Nothing is allocated per batch but the loss's few numbers (and, for a
``scipy.sparse`` X, the batch's CSR rows and the first layer's sparse products).

With ``sample_weight`` s each batch's gradient is Σ_x s_x ∂C_x/∂w over its samples, divided
by their Σ s_x for the mean; the epoch's loss and accuracy, the validation figures and so
early stopping are weighted means too (DESIGN.md §3).

Training is where dropout drops (masks from the same generator, so a seed fixes them too) and
where batch norm normalises with each batch's own statistics, folding them into the running
ones after each step; validation and ``evaluate`` use the whole network and the running
statistics. Batch norm needs ≥ 2 samples a batch: a last batch of one sample is left out of
the epoch (a different one each epoch, as the order is reshuffled).

Reporting goes through callbacks (``callbacks``): a rich progress bar on a terminal, one
line per epoch otherwise, nothing with ``verbose=0``. No prints.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from deltaprop import fused as fused_module
from deltaprop import optim as optim_module
from deltaprop import streaming
from deltaprop._validation import check_choice, check_fraction, check_int, check_rows
from deltaprop.errors import ConfigError, ConfigTypeError, TrainingDiverged
from deltaprop.layers import is_sparse
from deltaprop.network import REDUCTIONS, Gradients, Network, gradients_of, row_factors
from deltaprop.preprocessing import split_indices
from deltaprop.workspace import Workspace


@dataclass
class History:
    """Per-epoch record of a ``fit`` (lists indexed by epoch, 0-based).

    ``accuracy`` is a classifier's; a multilabel network records ``label_accuracy`` (the
    fraction of labels right) and, on validation data, ``val_subset_accuracy`` too.
    """

    epoch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    label_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    val_label_accuracy: list[float] = field(default_factory=list)
    val_subset_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def last(self) -> dict[str, float]:
        """The last epoch's figures (only those recorded)."""
        return {k: getattr(self, k)[-1] for k in METRICS if getattr(self, k)}


#: What ``fit`` records per epoch, in the order lines and tables show it.
METRICS = ("loss", "accuracy", "label_accuracy", "val_loss", "val_accuracy",
           "val_label_accuracy", "val_subset_accuracy", "lr", "seconds")


class Callback:
    """Hooks called by ``fit``. Returning True from an ``on_*_end`` hook stops training."""

    def on_train_begin(self, net: Network, epochs: int, n_batches: int) -> None: ...

    def on_epoch_begin(self, epoch: int) -> None: ...

    def on_batch_end(self, epoch: int, batch: int, loss: float) -> bool | None: ...

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool | None: ...

    def on_train_end(self, history: History) -> None: ...


class LambdaCallback(Callback):
    """A callback from plain functions: ``on_epoch_end(epoch, logs)``, ``on_batch_end(...)``."""

    def __init__(
        self,
        on_epoch_end: Callable[[int, dict[str, float]], bool | None] | None = None,
        on_batch_end: Callable[[int, int, float], bool | None] | None = None,
    ) -> None:
        self._epoch_end = on_epoch_end
        self._batch_end = on_batch_end

    def on_batch_end(self, epoch: int, batch: int, loss: float) -> bool | None:
        return self._batch_end(epoch, batch, loss) if self._batch_end else None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool | None:
        return self._epoch_end(epoch, logs) if self._epoch_end else None


def format_logs(epoch: int, epochs: int, logs: dict[str, float]) -> str:
    """One line for an epoch: 'epoch 3/20  loss 0.1234  accuracy 0.9650 …'."""
    parts = [f"epoch {epoch + 1}/{epochs}"]
    for key in METRICS[:-2]:  # all but lr and seconds
        if key in logs:
            parts.append(f"{key} {logs[key]:.4f}")
    if "seconds" in logs:
        parts.append(f"{logs['seconds']:.2f}s")
    return "  ".join(parts)


class EpochLines(Callback):
    """One line per epoch on a stream (standard error by default): for logs and pipes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.epochs = 0

    def on_train_begin(self, net: Network, epochs: int, n_batches: int) -> None:
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        stream = self.stream or sys.stderr
        stream.write(format_logs(epoch, self.epochs, logs) + "\n")
        stream.flush()


class ProgressBar(Callback):
    """A rich progress bar per epoch, on a terminal (standard error)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            console=self.console,
            transient=True,
        )
        self.task: Any = None
        self.epochs = 0
        self.n_batches = 0

    def on_train_begin(self, net: Network, epochs: int, n_batches: int) -> None:
        self.epochs, self.n_batches = epochs, n_batches
        self.progress.start()

    def on_epoch_begin(self, epoch: int) -> None:
        self.task = self.progress.add_task(
            f"epoch {epoch + 1}/{self.epochs}", total=self.n_batches, loss=float("nan")
        )

    def on_batch_end(self, epoch: int, batch: int, loss: float) -> None:
        self.progress.update(self.task, advance=1, loss=loss)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.progress.remove_task(self.task)
        self.console.print(format_logs(epoch, self.epochs, logs), highlight=False)

    def on_train_end(self, history: History) -> None:
        self.progress.stop()


def default_reporter(verbose: int) -> list[Callback]:
    """verbose 0: nothing; otherwise a progress bar on a terminal, else a line per epoch."""
    if verbose <= 0:
        return []
    return [ProgressBar()] if sys.stderr.isatty() else [EpochLines()]


class EarlyStopping:
    """Stop when the monitored loss has not improved by ``min_delta`` for ``patience`` epochs;
    remember the best parameters so they can be restored."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.best = math.inf
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_params: list[np.ndarray] = []

    def state(self) -> dict[str, Any]:
        """JSON-friendly counters (the best parameters are kept apart, as arrays)."""
        return {"patience": self.patience, "min_delta": self.min_delta, "best": self.best,
                "best_epoch": self.best_epoch, "wait": self.wait}

    @classmethod
    def from_state(cls, state: dict[str, Any], best_params: list[np.ndarray]) -> EarlyStopping:
        stopper = cls(int(state["patience"]), float(state["min_delta"]))
        stopper.best = float(state["best"])
        stopper.best_epoch = state["best_epoch"]
        stopper.wait = int(state["wait"])
        stopper.best_params = [np.array(p, copy=True) for p in best_params]
        return stopper

    def update(self, epoch: int, value: float, net: Network) -> bool:
        """Record epoch ``epoch``'s loss; True when training should stop."""
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if not self.best_params:
                self.best_params = [p.copy() for p in net.state_arrays()]
            else:
                for saved, p in zip(self.best_params, net.state_arrays(), strict=True):
                    np.copyto(saved, p)
            return False
        self.wait += 1
        return self.wait >= self.patience

    def restore(self, net: Network) -> None:
        for saved, p in zip(self.best_params, net.state_arrays(), strict=True):
            np.copyto(p, saved)


class TrainStep:
    """One mini-batch step of gradient descent; owns the workspace it computes in.

    ``step(start, stop)`` gathers the rows at positions ``start:stop`` of the epoch's order
    (``feed.index``) into the workspace and runs the forward and backward pass — eqs. (2),
    (9), (8), (10), (14) — returning the batch loss; then ``step.update()`` hands the
    gradients to the gradient hook and the clipping and lets the optimizer apply them
    (eqs. (11), (15) and their variants), and folds the batch's statistics into batch norm's
    running ones. The two halves are apart so
    ``fit`` can check the loss before any parameter moves. After a step, ``gradients`` and
    the workspace (``ws``: Z, A, δ per sample) describe the batch just taken. Training
    drops neurons where the network has dropout (masks in ``gradients.masks``).

    Where nothing needs the whole gradient before the update (no hook, no clipping, no
    custom ``backprop``) and :func:`deltaprop.fused.unsupported` has no objection (SGD),
    the step is *fused*: ``step(...)`` runs the forward pass, the loss and δ^L only
    (:meth:`Network.loss_into`), and ``update()`` the backward pass with the optimizer
    folded into its products, layer by layer (:class:`deltaprop.fused.FusedSGD`). Then
    ``gradients`` is None: the gradients went straight into the optimizer's buffers.
    ``optimizer``, ``gradient_hook`` and the clipping are attributes a caller may change
    between steps (the playground does), so each step decides anew (:attr:`fused`).

    Parameters
    ----------
    net : Network
    feed : streaming.BatchFeed
        The training inputs X (checked; in memory, a memory map read window by window, or
        a CSR matrix) with the epoch's row order and each batch's input transform.
    Y : ndarray of shape (n, n_L)
        The target rows.
    m : int
        The largest batch; shorter batches use row slices of the same buffers.
    optimizer : Optimizer
    reduction : {"mean", "sum"}
        r = 1/m (the mean over the batch's samples) or 1 (their sum), seed 002.
    weights : ndarray of shape (n,), optional
        Sample weights s (checked): each batch gathers its s_x and r becomes the per-row
        r_x = s_x / Σ_batch s (mean) or s_x (sum).
    backprop : callable(ws, r) -> loss, optional
        Stands in for ``net.backprop_into`` (``distributed`` sums across processes).
    gradient_hook, clip_norm, clip_value, fused
        As :func:`fit` describes them.
    """

    def __init__(
        self,
        net: Network,
        feed: streaming.BatchFeed,
        Y: np.ndarray,
        m: int,
        optimizer: optim_module.Optimizer,
        reduction: str,
        *,
        weights: np.ndarray | None = None,
        backprop: Callable[[Workspace, float], float] | None = None,
        gradient_hook: Callable[[Gradients, int], None] | None = None,
        clip_norm: float | None = None,
        clip_value: float | None = None,
        fused: bool = True,
    ) -> None:
        self.net, self.feed, self.Y, self.optimizer = net, feed, Y, optimizer
        self.reduction = reduction
        self.weights = None if weights is None else weights.reshape(-1, 1)  # like ws.weights
        self.ws = net.workspace(m, sparse=is_sparse(feed.X))
        self.backprop = backprop if backprop is not None else self._backprop
        self.batch_norm = net.has_batch_norm
        self.gradient_hook = gradient_hook
        self.clip_norm, self.clip_value = clip_norm, clip_value
        self.batch: Workspace = self.ws  # the rows of the last batch
        self.rows = feed.index[:0]  # their positions in X
        self.gradients: Gradients | None = None
        self.r: float | np.ndarray = 1.0  # the last batch's r (eqs. 10, 14)
        self.may_fuse = fused and backprop is None
        self._fused_for: Any = None  # the optimizer _fused was made for
        self._fused: fused_module.FusedSGD | None = None
        self._step_fused: fused_module.FusedSGD | None = None  # the last batch's choice

    @property
    def fused(self) -> fused_module.FusedSGD | None:
        """The fused step for the current optimizer, or None: the plain path (a hook or
        clipping set, a custom ``backprop``, ``fused=False``, or what ``fused.unsupported``
        names)."""
        if not self.may_fuse or self.gradient_hook is not None or (
                self.clip_norm is not None or self.clip_value is not None):
            return None
        if self._fused_for is not self.optimizer:
            self._fused_for = self.optimizer
            self._fused = None if fused_module.unsupported(
                self.net, self.optimizer, self.ws.sparse) else fused_module.FusedSGD(
                self.net, self.optimizer, self.ws)
        return self._fused

    def __call__(self, start: int, stop: int) -> float:
        """Gather the rows at positions ``start:stop`` of the epoch's order and run the
        forward and backward pass; returns the batch loss."""
        rows = self.feed.index[start:stop]
        mb = rows.size
        w = self.ws.rows(mb)
        if w.sparse:
            w.inputs = self.feed.X[rows]  # the batch's CSR rows (their nonzeros only)
        else:
            self.feed.gather(start, stop, w.inputs)  # a^0 ← X[rows], read and transformed
        # mode="clip": the rows are a permutation, so no index can be out of range, and
        # NumPy's default "raise" mode gathers through a buffer, 3× slower.
        np.take(self.Y, rows, axis=0, out=w.targets, mode="clip")
        r: float | np.ndarray = 1.0 / mb if self.reduction == "mean" else 1.0  # seed 002
        if self.weights is not None:  # r_x = s_x / Σ_batch s (mean) or s_x (sum)
            np.take(self.weights, rows, axis=0, out=w.weights, mode="clip")
            r = row_factors(w.weights, self.reduction, out=w.r_rows)
        self.batch, self.rows, self.r = w, rows, r
        self._step_fused = self.fused
        if self._step_fused is not None:  # the backward pass waits for update()
            self.gradients = None
            return self.net.loss_into(w, r)
        loss = self.backprop(w, r)
        self.gradients = gradients_of(w, loss, self.reduction, dropout=True)
        return loss

    def _backprop(self, ws: Workspace, r: float) -> float:
        """The network's own forward and backward pass, dropping neurons as training does."""
        return self.net.backprop_into(ws, r, dropout=True)

    def update(self) -> None:
        """Hook, clip, and apply the last batch's gradients: eqs. (11), (15) and variants."""
        if self._step_fused is not None:  # eqs. (10), (14), (8), (11), (15) layer by layer
            self._step_fused.backward_update(self.batch, self.r)
            return
        grads = self.gradients
        if self.gradient_hook is not None:
            self.gradient_hook(grads, self.batch.m)
        if self.clip_norm is not None:
            optim_module.clip_grad_norm(_grad_arrays(grads), self.clip_norm)
        if self.clip_value is not None:
            optim_module.clip_grad_value(_grad_arrays(grads), self.clip_value)
        self.optimizer.step(self.net, grads)
        if self.batch_norm:
            self.net.track_batch_statistics(self.batch)


class EpochTally:
    """An epoch's running loss and accuracy over the batches stepped so far.

    The loss of a batch comes back as its mean or sum (r); the tally adds the per-sample
    sum, so the epoch's figure is a mean over samples whatever the reduction. A classifier
    counts argmax a^L against each row's class, gathered per batch from labels computed
    once; a multilabel network counts each of its k labels, thresholded at ½. With sample
    weights each sample counts s_x times: the figures are Σ s_x (·) / Σ s_x.
    """

    def __init__(self, net: Network, Y: np.ndarray, m: int, weighted: bool = False) -> None:
        self.task, self.k = net.task, net.n_outputs
        self.index_of = net.index_of
        self.weighted = weighted
        self.labels = self.index_of(Y) if self.task == "classification" else None
        self.batch_labels = None if self.labels is None else np.empty(m, self.labels.dtype)
        self.reset()

    def reset(self) -> None:
        self.loss_sum, self.seen, self.correct = 0.0, 0.0, 0.0
        self.samples = 0  # rows trained on, whatever their weights

    def add(self, step: TrainStep, rows: np.ndarray, loss: float) -> None:
        w = step.batch
        weight = float(w.weights.sum()) if self.weighted else rows.size  # Σ_batch s_x, or m
        self.loss_sum += loss * weight if step.reduction == "mean" else loss
        self.seen += weight
        self.samples += rows.size
        right = None
        if self.labels is not None:
            truth = np.take(self.labels, rows, out=self.batch_labels[: rows.size], mode="clip")
            right = self.index_of(w.A[-1]) == truth
        elif self.task == "multilabel":  # each of the k labels, thresholded at ½
            right = (w.A[-1] > 0.5) == (w.targets > 0.5)
        if right is not None:
            if self.weighted:
                self.correct += float(np.dot(w.weights[:, 0], right.reshape(rows.size, -1)).sum())
            else:
                self.correct += int(np.count_nonzero(right))

    def logs(self) -> dict[str, float]:
        """The epoch's mean loss, and accuracy (per label for multilabel)."""
        if not self.seen:  # the epoch's samples all had weight 0 (a callback stopped it)
            return {"loss": float("nan")}
        logs = {"loss": self.loss_sum / self.seen}
        if self.labels is not None:
            logs["accuracy"] = self.correct / self.seen
        elif self.task == "multilabel":
            logs["label_accuracy"] = self.correct / (self.seen * self.k)
        return logs


def fit(
    net: Network,
    X: Any,
    y: Any,
    *,
    epochs: int = 10,
    batch_size: int | None = 32,
    optimizer: optim_module.Optimizer | None = None,
    reduction: str = "mean",
    sample_weight: Any = None,
    validation_data: tuple[Any, ...] | None = None,
    validation_split: float = 0.0,
    shuffle: bool = True,
    patience: int | None = None,
    min_delta: float = 0.0,
    restore_best: bool = True,
    schedule: Any = None,
    clip_norm: float | None = None,
    clip_value: float | None = None,
    callbacks: Sequence[Callback] = (),
    verbose: int = 1,
    initial_epoch: int = 0,
    history: History | None = None,
    early_stopping: EarlyStopping | None = None,
    gradient_hook: Callable[[Gradients, int], None] | None = None,
    backprop: Callable[[Workspace, float], float] | None = None,
    blas_threads: int | None = None,
    input_transform: streaming.InputTransform | None = None,
    fused: bool = True,
) -> History:
    """Train ``net`` in place by mini-batch gradient descent and return its ``History``.

    Parameters
    ----------
    X : array-like or scipy.sparse matrix of shape (n, n_0)
        A sparse X (TF-IDF features) stays sparse: the first layer multiplies it as it is.
        A NumPy memory map (``np.load(path, mmap_mode="r")``, a memory-mapped ``Dataset``)
        is never read whole: with ``shuffle="chunks"`` (or False) the file is read one
        window at a time into one buffer, and each mini-batch is gathered from it
        (``deltaprop.streaming.BatchFeed``).
    y : array-like of shape (n,) (class indices) or (n, n_L)
        What :meth:`Network.backprop` takes; :class:`deltaprop.Model` fits the user's labels.
    epochs : int
        Total epochs; with ``initial_epoch`` > 0 training resumes at that epoch.
    batch_size : int or None
        Samples per gradient step; 1 is online learning, None the full batch.
    optimizer : Optimizer, default ``optim.Adam(lr=1e-3)``
    reduction : {"mean", "sum"}
        The batch gradient is the mean (r = 1/m) or the sum (r = 1) of per-sample gradients.
    sample_weight : array-like of shape (n,), optional
        Weights s_x ≥ 0 (not all 0): each batch's gradient is Σ_x s_x ∂C_x/∂w over its
        samples, divided by their Σ s_x for the mean; the recorded loss and accuracy are
        weighted means.
    validation_data, validation_split
        Held-out data (X_val, y_val) or (X_val, y_val, sample_weight_val), or the fraction
        of (X, y) to hold out (drawn with the network's rng; its weights go with it) — not
        with a memory-mapped ``X`` or an ``input_transform``, whose validation data is
        given, and goes through the transform once.
    shuffle : bool, "chunks" or streaming.ChunkShuffle, default True
        True: a fresh permutation of all rows each epoch. False: the stored order.
        "chunks" (or a ``ChunkShuffle(chunk_bytes, window_bytes)``): chunks of consecutive
        rows in random order, rows shuffled within each window of chunks — for a
        memory-mapped ``X``, one window (32 MiB by default) is held at a time.
    patience : int or None
        Early stopping: stop after this many epochs without improvement of the validation
        loss (the training loss if there is no validation data); with ``restore_best``
        the network ends with the best epoch's weights.
    schedule : a ``schedules`` object, or None
        Called once per epoch end to set the optimizer's learning rate.
    clip_norm, clip_value : float or None
        Clip the batch gradient by global L2 norm, or each entry to [−v, v].
    callbacks : list of Callback
    verbose : int
        0 silent; 1 a progress bar on a terminal, else one line per epoch on stderr.
    gradient_hook : callable(grads, m) or None
        Called after each backward pass, before clipping and the step; it may change the
        gradients in place (``bias_study`` uses it for seed 002's mistaken layer-sum rule).
    backprop : callable(ws, r) -> loss, or None
        Stands in for ``net.backprop_into(ws, r)`` on each gathered batch: it must leave the
        batch's ∇W, ∇b and output activations in ``ws`` and return the batch loss, as
        ``backprop_into`` does (``distributed`` computes them across processes).
    blas_threads : int or None
        None (default) leaves the BLAS thread pool as it is. An int limits it for the
        duration of ``fit`` — a process-wide setting (threadpoolctl), so use it only where
        one fit runs at a time (the ``deltaprop`` command does, below
        :data:`ONE_BLAS_THREAD_BELOW` rows). One and two threads round differently, so a
        run is bit-for-bit repeatable only with the same setting.
    input_transform : callable(raw, out) or None
        The per-batch input transform, e.g. a fitted ``Scaler.transform_into``: called with
        the batch's raw rows of ``X`` (its own dtype, e.g. the uint8 pixels of a memory
        map; a buffer reused for every batch, not to be kept) and ``out``, the workspace's
        input buffer (m, n_0) in the network's dtype, possibly a strided view; it must
        write every entry of ``out`` in place. With it, ``X`` is used as it is (any
        numeric dtype, not checked for NaN: that is the transform's input).
    fused : bool, default True
        Let SGD steps run fused: each layer's gradient is added into the optimizer's
        momentum buffer (or its parameters) by the matrix product itself, right after it is
        computed (``deltaprop.fused``; equal to the plain path to float rounding). False
        takes the plain path — backprop, then ``optimizer.step`` — the reference. Hooks,
        clipping, a custom ``backprop`` and the optimizers and layers ``fused.unsupported``
        names always take the plain path.

    Raises
    ------
    TrainingDiverged
        When the loss becomes NaN or infinite; the message names the epoch and batch.
    """
    check_choice("reduction", reduction, REDUCTIONS)
    epochs = check_int("epochs", epochs)
    initial_epoch = check_int("initial_epoch", initial_epoch, minimum=0)
    verbose = int(verbose)
    optimizer = optimizer if optimizer is not None else optim_module.Adam(lr=1e-3)
    if not isinstance(optimizer, optim_module.Optimizer):
        raise ConfigTypeError(f"`optimizer` must be a deltaprop.optim optimizer; got {optimizer!r}")

    shuffle = streaming.check_shuffle(shuffle)
    # A memory map, or rows that a transform turns into inputs batch by batch, are used as
    # they are: never converted (or read) whole.
    raw = input_transform is not None or streaming.is_memory_mapped(X)
    X = check_rows("X", X, net.n_inputs) if raw else net.check_X(X)
    Y = net.targets(y, X.shape[0], "y")
    s = net.check_sample_weight(sample_weight, X.shape[0])
    if s is not None and not s.any():
        raise ConfigError("`sample_weight` is all zero: at least one sample needs a weight > 0")
    if s is not None and backprop is not None:
        raise ConfigError("`sample_weight` does not combine with a custom `backprop` "
                          "(distributed training sums unweighted gradients)")
    if is_sparse(X) and backprop is not None:
        raise ConfigError("a sparse `X` does not combine with a custom `backprop` "
                          "(distributed training copies dense rows)")
    X_val = Y_val = s_val = None
    if validation_data is not None:
        X_val, Y_val, s_val = _validation_set(net, validation_data, raw, input_transform)
    elif check_fraction("validation_split", validation_split) > 0:
        if raw:
            raise ConfigError(
                "`validation_split` would copy a memory-mapped X (or one read through "
                "`input_transform`); pass validation_data instead"
            )
        train, val = split_indices(Y, validation_split, net.rng, False)
        X, Y, X_val, Y_val = X[train], Y[train], X[val], Y[val]
        if s is not None:
            s, s_val = s[train], s[val]

    n = X.shape[0]
    m = n if batch_size is None else check_int("batch_size", batch_size)
    m = min(m, n)
    end = n  # where an epoch's batches stop
    if net.has_batch_norm:
        if m < 2:
            raise ConfigError(f"batch normalization needs batches of at least 2 samples; "
                              f"got batch_size={m}")
        if n % m == 1:  # a last batch of one sample has no variance: leave it out
            end = n - 1
    n_batches = math.ceil(end / m)
    # the epoch's row order, and each batch's rows of X (read from its file if memory-mapped)
    feed = streaming.BatchFeed(X, m, net.dtype, shuffle, input_transform)
    step = TrainStep(net, feed, Y, m, optimizer, reduction, weights=s, backprop=backprop,
                     gradient_hook=gradient_hook, clip_norm=clip_norm, clip_value=clip_value,
                     fused=fused)
    tally = EpochTally(net, Y, m, weighted=s is not None)
    history = history if history is not None else History()
    stopper = early_stopping
    if stopper is None and patience is not None:
        stopper = EarlyStopping(check_int("patience", patience), min_delta)
    reporters = [*default_reporter(verbose), *callbacks]

    if schedule is not None:
        schedule.start(optimizer, initial_epoch)
    for cb in reporters:
        cb.on_train_begin(net, epochs, n_batches)
    settings = contextlib.ExitStack()
    # Overflow shows up as a non-finite loss, which the divergence guard below reports with
    # the epoch and batch; NumPy's own warnings would only repeat it without that context.
    settings.enter_context(np.errstate(over="ignore", invalid="ignore"))
    if blas_threads is not None:
        settings.enter_context(_blas_threads(check_int("blas_threads", blas_threads)))
    try:
        for epoch in range(initial_epoch, epochs):
            started = time.perf_counter()
            for cb in reporters:
                cb.on_epoch_begin(epoch)
            # The order depends on the generator alone, so a checkpoint's rng state resumes it.
            feed.draw(net.rng)
            snapshot = [p.copy() for p in net.state_arrays()]  # last finite weights
            tally.reset()
            stop = False
            for batch, start in enumerate(range(0, end, m)):
                loss = step(start, min(start + m, n))
                if not math.isfinite(loss):
                    _diverged(net, snapshot, f"loss became {loss}", epoch, batch, optimizer)
                step.update()
                tally.add(step, step.rows, loss)
                for cb in reporters:
                    stop = bool(cb.on_batch_end(epoch, batch, loss)) or stop
                if stop:
                    break

            # The loss is checked before each step; the last step's weights, here, once an
            # epoch (a sweep over the parameters is too dear to make every batch).
            if not all(np.isfinite(p).all() for p in net.state_arrays()):
                _diverged(net, snapshot, "the weights became non-finite", epoch, batch, optimizer)
            logs = tally.logs()  # over the samples seen: fewer than n if a callback stopped
            logs["samples"] = tally.samples  # rows trained on (InverseScalingLR counts them)
            if X_val is not None:
                val = net.evaluate_targets(X_val, Y_val, s_val)
                logs.update({f"val_{k}": v for k, v in val.items()})
            logs["lr"] = optimizer.lr
            logs["seconds"] = time.perf_counter() - started
            _record(history, epoch, logs)
            if schedule is not None:
                schedule.at_epoch_end(epoch, logs, optimizer)
            if stopper is not None:
                monitored = logs.get("val_loss", logs["loss"])
                if stopper.update(epoch, monitored, net):
                    history.stopped_early = True
                    stop = True
                history.best_epoch = stopper.best_epoch
            for cb in reporters:  # last, so a checkpoint sees the whole epoch's state
                stop = bool(cb.on_epoch_end(epoch, logs)) or stop
            if stop:
                break
        if stopper is not None and restore_best and stopper.best_params:
            stopper.restore(net)
    finally:
        settings.close()
        feed.close()
        for cb in reporters:
            cb.on_train_end(history)
    return history


#: Batches with fewer rows than this are faster with one BLAS thread: their matrix products
#: are too small for a second thread to pay for its hand-off (idle 2 cores, µs per step, 1 vs
#: 2 threads: m = 1 870 vs 890, m = 4 688 vs 714, m = 8 834 vs 915; from 16 rows two win:
#: m = 16 1106 vs 988, m = 32 1450 vs 1236; benchmarks/bench_kernels.py). On a machine whose
#: cores are all busy a second BLAS thread waits for a core, up to 37× slower at m = 32
#: (``bench_kernels.py --busy 2``). ``fit(blas_threads=1)`` opts in; the command does below
#: this size. The library never changes the process's thread pool on its own.
ONE_BLAS_THREAD_BELOW = 16


def _blas_threads(n: int) -> Any:
    """A context in which the BLAS libraries (not OpenMP) use ``n`` threads."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")


def _validation_set(net: Network, data: tuple[Any, ...], raw: bool = False,
                    transform: streaming.InputTransform | None = None
                    ) -> tuple[Any, np.ndarray, Any]:
    """(X_val, Y_val, s_val or None), checked, from (X, y) or (X, y, sample_weight).

    ``raw``: X_val is as the training X, read (and transformed) once, block by block.
    """
    if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
        raise ConfigError("`validation_data` must be (X_val, y_val) or "
                          "(X_val, y_val, sample_weight_val)")
    X_val = data[0]
    if raw:
        X_val = streaming.transformed(check_rows("validation X", X_val, net.n_inputs),
                                      net.dtype, transform)
    X_val = net.check_X(X_val, "validation X")
    Y_val = net.targets(data[1], X_val.shape[0], "validation y")
    s_val = None
    if len(data) == 3:
        s_val = net.check_sample_weight(data[2], X_val.shape[0], "validation sample_weight")
    return X_val, Y_val, s_val


def _grad_arrays(grads: Gradients) -> list[np.ndarray]:
    """Every gradient array of a backward pass (frozen biases' included: never applied;
    batch norm's ∂C/∂γ and ∂C/∂β where there are some)."""
    norm = [*(grads.dgamma or ()), *(grads.dbeta or ())]
    return [*grads.dW, *(g for g in (*grads.db, *norm) if g is not None)]


def _diverged(net: Network, snapshot: list[np.ndarray], what: str, epoch: int, batch: int,
              optimizer: optim_module.Optimizer) -> None:
    """Keep finite weights and raise TrainingDiverged naming the epoch and batch."""
    _keep_finite(net, snapshot)
    raise TrainingDiverged(
        f"{what} at epoch {epoch + 1}, batch {batch + 1}: training diverged; try a lower "
        f"learning rate (lr={optimizer.lr:g}). The network keeps its last finite weights."
    )


def _keep_finite(net: Network, snapshot: list[np.ndarray]) -> None:
    """Leave ``net`` with finite weights: its own if they are, else the epoch's start."""
    params = net.state_arrays()
    if not all(np.isfinite(p).all() for p in params):
        for p, saved in zip(params, snapshot, strict=True):
            np.copyto(p, saved)


def _record(history: History, epoch: int, logs: dict[str, float]) -> None:
    history.epoch.append(epoch)
    for key in METRICS:
        if key in logs:
            getattr(history, key).append(logs[key])
