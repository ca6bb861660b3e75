"""One network learning one data set a step at a time — the same steps as ``training.fit``.

:class:`Trainer` is ``fit``'s inner loop cut into single steps so that the playground can
pause, step and change settings between any two: at each epoch's start it draws
``net.rng.permutation(n)``, gathers the next mini-batch into a preallocated workspace,
computes the batch gradient with :meth:`Network.backprop_into` — the mean or sum over samples
of per-sample gradients, eqs. (2), (9), (8), (10), (14) — and hands it to the optimizer,
eqs. (11), (15). After ``k`` steps from a fresh network its parameters are those of
``net.fit(X, y, batch_size=m, optimizer=opt)`` stopped after ``k`` batches (tested).

:func:`l1_penalty` adds L1 to the gradient through ``fit``'s ``gradient_hook``; the engine
has L2 (``weight_decay``) but no L1 yet (DESIGN.md: ``--l1`` arrives with its issue).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from deltaprop.network import Gradients, Network
from deltaprop.optim import Optimizer
from deltaprop.training import TrainingDiverged

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
    hooks : list of callable(grads, m)
        Called after each backward pass, before the step (``fit``'s ``gradient_hook``).
    """

    def __init__(self, net: Network, optimizer: Optimizer, X: np.ndarray, Y: np.ndarray,
                 batch_size: int, reduction: str, hooks: Sequence[Hook] = ()) -> None:
        self.net = net
        self.optimizer = optimizer
        self.X, self.Y = X, Y
        self.n = X.shape[0]
        self.index = np.arange(self.n)
        self.cursor: int | None = None  # position in this epoch's order; None: not drawn yet
        self.steps = 0
        self.epoch = 0  # epochs completed (an epoch ended early by a change counts)
        self.hooks = list(hooks)
        self.params = [p for _, p in net.parameters()]  # the arrays, updated in place
        self.last_finite = [p.copy() for p in self.params]
        self.m = 0
        self.set_batching(batch_size, reduction)

    def set_batching(self, batch_size: int, reduction: str) -> None:
        """Use ``batch_size`` and ``reduction`` from the next step on."""
        m = min(batch_size, self.n)
        if m != self.m:
            self.m = m
            self.ws = self.net.workspace(m)
        self.reduction = reduction

    def end_epoch(self) -> None:
        """Finish the current epoch early: the next step starts a fresh order.

        The playground does this whenever a training setting changes, so that a run is a
        sequence of ``fit`` calls (see ``export.snippet``).
        """
        if self.cursor:
            self.cursor = None
            self.epoch += 1

    def next_rows(self) -> np.ndarray:
        """The rows of the mini-batch the next step uses (drawing the epoch's order if due)."""
        if self.cursor is None:  # as fit: a fresh permutation from the network's generator
            self.index[:] = self.net.rng.permutation(self.n)
            self.cursor = 0
        return self.index[self.cursor : self.cursor + self.m]

    def step(self) -> float:
        """One step: backprop on the next mini-batch, then the optimizer. Returns its loss.

        Raises
        ------
        TrainingDiverged
            When the loss or the new parameters are not finite; the network is left with
            the last parameters whose loss was finite.
        """
        rows = self.next_rows()
        w = self.ws.rows(rows.size)
        np.take(self.X, rows, axis=0, out=w.inputs, mode="clip")
        np.take(self.Y, rows, axis=0, out=w.targets, mode="clip")
        r = 1.0 / rows.size if self.reduction == "mean" else 1.0
        params = self.params
        with np.errstate(over="ignore", invalid="ignore"):
            loss = self.net.backprop_into(w, r)
            if not math.isfinite(loss):
                self._diverged(f"the loss became {loss}")
            for saved, p in zip(self.last_finite, params, strict=True):
                np.copyto(saved, p)  # these parameters gave a finite loss
            grads = Gradients(w.delta, w.nabla_W, w.nabla_b, loss, self.reduction)
            for hook in self.hooks:
                hook(grads, rows.size)
            self.optimizer.step(self.net, grads)
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
