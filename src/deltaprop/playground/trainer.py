"""One network learning one data set a step at a time — the same steps as ``training.fit``.

:class:`Trainer` is ``fit``'s epoch loop cut into single steps so that the playground can
pause, step and change settings between any two: at each epoch's start its
:class:`~deltaprop.streaming.BatchFeed` draws ``net.rng.permutation(n)``, and each step is
``fit``'s own :class:`~deltaprop.training.TrainStep` — gather the mini-batch into a
preallocated workspace, the batch gradient by
:meth:`Network.backprop_into` (the mean or sum over samples of per-sample gradients, eqs. (2),
(9), (8), (10), (14)), then the gradient hook and the optimizer, eqs. (11), (15). After ``k``
steps from a fresh network its parameters are those of
``net.fit(X, y, batch_size=m, optimizer=opt)`` stopped after ``k`` batches (tested).

Gradient hooks (``fit``'s ``gradient_hook``, combined by :func:`combine`): :func:`l1_penalty`
adds L1 — the engine has L2 (``weight_decay``) but no L1 yet (DESIGN.md: ``--l1`` arrives
with its issue) — and :func:`layer_sum_rule` applies seed 002's *mistaken* bias rule, for
watching it fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from deltaprop import gradcheck
from deltaprop.network import Gradients, Network
from deltaprop.optim import Optimizer
from deltaprop.streaming import BatchFeed
from deltaprop.training import TrainingDiverged, TrainStep

Hook = Callable[[Gradients, int], None]


def l1_penalty(net: Network, lam: float, decay_bias: bool = False) -> Hook:
    """A ``gradient_hook`` adding λ₁ sign(w) to the gradient of every weight.

    Biases (and a bias unit's column of W) are left alone unless ``decay_bias``, as
    ``weight_decay`` does; frozen biases are never updated.

    Notes
    -----
    Equation: ∂/∂w (C + λ₁ Σ|w|) = ∂C/∂w + λ₁ sign(w) (0 at w = 0, the subgradient
    ``numpy.sign`` gives).
    """

    def hook(grads: Gradients, m: int) -> None:
        for slot in net.slots(grads):
            part = ... if decay_bias else slot.weights
            if part is not None:
                slot.grad[part] += lam * np.sign(slot.value[part])

    return hook


def layer_sum_rule(net: Network) -> Hook:
    """A ``gradient_hook`` for seed 002's *mistaken* bias rule: every bias of a layer gets
    the sum of all the layer's δs (:func:`deltaprop.gradcheck.layer_sum_bias_gradient`).

    It replaces ``db`` of a layer with b, and the bias unit's column of ``dW`` of a ``unit``
    layer (its weights are the biases), as ``gradcheck.check(bias_rule="layer-sum")`` does.
    For teaching only: the correct rule is eq. (14), the neuron's own δ.

    Notes
    -----
    Equation (wrong): "∂C/∂b_k^l" = r Σ_samples Σ_j δ_j^l for every k, instead of
    r Σ_samples δ_k^l.
    """

    def hook(grads: Gradients, m: int) -> None:
        wrong = gradcheck.layer_sum_bias_gradient(grads)
        for layer, dW, db, w in zip(net.layers, grads.dW, grads.db, wrong, strict=True):
            if db is not None:
                db[...] = w
            elif layer.has_unit:
                dW[:, -1] = w

    return hook


def combine(hooks: Sequence[Hook]) -> Hook | None:
    """One ``gradient_hook`` calling ``hooks`` in order (None when there are none)."""
    if not hooks:
        return None
    if len(hooks) == 1:
        return hooks[0]

    def hook(grads: Gradients, m: int) -> None:
        for h in hooks:
            h(grads, m)

    return hook


def gradient_hook(net: Network, l1: float = 0.0, decay_bias: bool = False,
                  bias_rule: str = "delta") -> Hook | None:
    """The playground's gradient hook for ``net``: L1 when ``l1`` > 0, then seed 002's
    mistaken rule when ``bias_rule`` is ``"layer-sum"`` (None: plain backprop)."""
    hooks = [l1_penalty(net, l1, decay_bias)] if l1 else []
    if bias_rule == "layer-sum":
        hooks.append(layer_sum_rule(net))
    return combine(hooks)


class Trainer:
    """Mini-batch gradient descent on (X, Y), one step per :meth:`step`.

    Parameters
    ----------
    net : Network
        Trained in place; its ``rng`` shuffles, as in ``fit``.
    optimizer : Optimizer
    X : ndarray of shape (n, n_0)
        Checked inputs (``net.check_X``).
    Y : ndarray of shape (n, n_L)
        Targets (``net.targets``).
    batch_size : int
        Samples per step; at most n are used, as in ``fit``.
    reduction : {"mean", "sum"}
    hook : callable(grads, m) or None
        Called after each backward pass, before the step (``fit``'s ``gradient_hook``).
    """

    def __init__(self, net: Network, optimizer: Optimizer, X: np.ndarray, Y: np.ndarray,
                 batch_size: int, reduction: str, hook: Hook | None = None) -> None:
        self.net = net
        self.X, self.Y = X, Y
        self.n = X.shape[0]
        self.cursor: int | None = None  # position in this epoch's order; None: not drawn yet
        self.steps = 0
        self.epoch = 0  # epochs completed (an epoch ended early by a change counts)
        self.params = [p for _, p in net.parameters()]  # the arrays, updated in place
        self.last_finite = [p.copy() for p in self.params]
        self.m = min(batch_size, self.n)
        # the epoch's order (feed.index), kept across batch sizes: one feed for the run
        self.feed = BatchFeed(X, self.m, net.dtype)
        self.train_step = TrainStep(net, self.feed, Y, self.m, optimizer, reduction,
                                    gradient_hook=hook)

    @property
    def optimizer(self) -> Optimizer:
        return self.train_step.optimizer

    @optimizer.setter
    def optimizer(self, optimizer: Optimizer) -> None:
        self.train_step.optimizer = optimizer

    @property
    def hook(self) -> Hook | None:
        return self.train_step.gradient_hook

    @hook.setter
    def hook(self, hook: Hook | None) -> None:
        self.train_step.gradient_hook = hook

    @property
    def reduction(self) -> str:
        return self.train_step.reduction

    def set_batching(self, batch_size: int, reduction: str) -> None:
        """Use ``batch_size`` and ``reduction`` from the next step on."""
        m = min(batch_size, self.n)
        if m != self.m:  # a workspace for the new batch size, as a new fit call makes
            self.m = m
            old = self.train_step
            self.train_step = TrainStep(self.net, self.feed, self.Y, m, old.optimizer, reduction,
                                        gradient_hook=old.gradient_hook)
        self.train_step.reduction = reduction

    def end_epoch(self) -> None:
        """Finish the current epoch early: the next step starts a fresh order.

        The playground does this whenever a training setting changes, so that a run is a
        sequence of ``fit`` calls (see ``export.snippet``).
        """
        if self.cursor:
            self.cursor = None
            self.epoch += 1

    def next_rows(self) -> np.ndarray:
        """The rows of the mini-batch the next step uses (drawing the epoch's order if due).

        Drawing the order early changes nothing: the next step would draw the same one from
        the same generator state, and an epoch ended before any step keeps it.
        """
        if self.cursor is None:  # as fit: a fresh permutation from the network's generator
            self.feed.draw(self.net.rng)
            self.cursor = 0
        return self.feed.index[self.cursor : self.cursor + self.m]

    def step(self) -> float:
        """One step: backprop on the next mini-batch, then the optimizer. Returns its loss.

        Raises
        ------
        TrainingDiverged
            When the loss or the new parameters are not finite; the network is left with
            the last parameters whose loss was finite.
        """
        rows = self.next_rows()
        start = self.cursor
        params = self.params
        with np.errstate(over="ignore", invalid="ignore"):
            loss = self.train_step(start, start + rows.size)  # (2), (9), (8), (10), (14)
            if not math.isfinite(loss):
                self._diverged(f"the loss became {loss}")
            for saved, p in zip(self.last_finite, params, strict=True):
                np.copyto(saved, p)  # these parameters gave a finite loss
            self.train_step.update()  # hooks, then (11), (15)
            # one sum per array: NaN or inf anywhere makes it non-finite
            if not all(math.isfinite(p.sum()) for p in params):
                self._diverged("the parameters became non-finite")
        self.steps += 1
        self.cursor += rows.size  # type: ignore[operator]
        if self.cursor >= self.n:
            self.cursor = None
            self.epoch += 1
        return loss

    def _diverged(self, what: str) -> None:
        for p, saved in zip(self.params, self.last_finite, strict=True):
            np.copyto(p, saved)
        raise TrainingDiverged(
            f"{what} at step {self.steps + 1}: training diverged and is paused; try a lower "
            f"learning rate (lr={self.optimizer.lr:g}). The network keeps its last finite "
            f"weights."
        )


class Curve:
    """Train and test loss against the step, at most ``size`` points at a time.

    A point is kept every ``every`` steps; when the curve is full, every other point is
    dropped and ``every`` doubles, so a long run keeps its whole shape in bounded memory.
    """

    def __init__(self, size: int = 400) -> None:
        self.size = size
        self.every = 1
        self.step: list[int] = []
        self.train: list[float | None] = []
        self.test: list[float | None] = []

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def add(self, step: int, train: float | None, test: float | None) -> None:
        self.step.append(step)
        self.train.append(train)
        self.test.append(test)
        if len(self.step) > self.size:
            for series in (self.step, self.train, self.test):
                del series[1::2]
            self.every *= 2

    def as_dict(self) -> dict[str, list]:
        return {"step": list(self.step), "train": list(self.train), "test": list(self.test)}
