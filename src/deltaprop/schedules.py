"""Learning rate as a function of step/epoch.

Every schedule follows ``torch.optim.lr_scheduler``'s formula and argument names, in the
closed form for the epoch-indexed ones: ``lr(epoch, base_lr)`` is the learning rate of epoch
``epoch`` (0-based), the value torch's scheduler holds while that epoch trains.
:class:`ReduceLROnPlateau` instead reacts to a metric, so it keeps state.

One interface serves the training loop, once per epoch, for every schedule::

    schedule.start(optimizer, first_epoch)       # before the first epoch it trains
    for epoch in range(first_epoch, epochs):
        ...                                      # train one epoch at optimizer.lr
        schedule.at_epoch_end(epoch, logs, optimizer)   # sets optimizer.lr for epoch + 1

``optimizer`` is anything with a float attribute ``lr`` (every ``deltaprop.optim``
optimizer); ``logs`` maps metric names ("loss", "val_loss", ...) to floats, and "samples" to
the number of samples the epoch trained on (``training.fit`` sets it; :class:`InverseScalingLR`
counts time in samples, as scikit-learn's ``invscaling``). A schedule's
own state — the base learning rate, the plateau counters — goes into ``state_dict()`` so a
resumed run continues exactly. The module needs no NumPy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

from deltaprop._validation import check_choice, check_int, check_positive, lookup
from deltaprop.errors import ConfigError, ConfigTypeError


class HasLR(Protocol):
    """What a schedule drives: an optimizer's learning rate ``lr``."""

    lr: float


def _check_factor(name: str, value: Any, *, allow_one: bool) -> float:
    """``value`` as a float in (0, 1] (or (0, 1)), naming ``name`` in the error."""
    v = check_positive(name, value)
    if v > 1 or (v == 1 and not allow_one):
        bound = "(0, 1]" if allow_one else "(0, 1)"
        raise ConfigError(f"`{name}` must be in {bound}; got {value!r}")
    return v


class Schedule:
    """Base: the once-per-epoch interface of every schedule (module docstring)."""

    name = ""

    def __init__(self) -> None:
        self.base_lr: float | None = None  # the optimizer's lr when the schedule started

    def config(self) -> dict[str, Any]:
        """The constructor's arguments."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    def start(self, optimizer: HasLR, epoch: int = 0) -> None:
        """Take ``optimizer.lr`` as the base learning rate and set the lr of ``epoch``.

        Call it once before the first epoch that will be trained (``epoch`` > 0 when
        resuming). A base learning rate restored by :meth:`load_state_dict` is kept.
        """
        self._base(optimizer)

    def _base(self, optimizer: HasLR) -> float:
        """The base learning rate, taken from ``optimizer.lr`` the first time."""
        if self.base_lr is None:
            self.base_lr = check_positive("optimizer.lr", optimizer.lr)
        return self.base_lr

    def at_epoch_end(self, epoch: int, metrics: Mapping[str, float], optimizer: HasLR) -> None:
        """Set ``optimizer.lr`` for epoch ``epoch + 1``, after epoch ``epoch`` (0-based).

        Without a :meth:`start`, the first call takes ``optimizer.lr`` as the base learning
        rate: right for every schedule whose lr(first epoch) is the base, but a warm-up's
        first epoch will then have run at the full rate.
        """
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state (not its arguments), as JSON-friendly values."""
        return {"name": self.name, "base_lr": self.base_lr}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` gave."""
        if d.get("name") != self.name:
            raise ConfigError(f"state is for schedule {d.get('name')!r}, not {self.name!r}")
        base_lr = d.get("base_lr")
        self.base_lr = None if base_lr is None else float(base_lr)


class EpochSchedule(Schedule):
    """A learning rate that is a function of the epoch alone: :meth:`lr`."""

    def lr(self, epoch: int, base_lr: float) -> float:
        """The learning rate of epoch ``epoch`` (0-based) for base learning rate ``base_lr``."""
        return self._lr(check_int("epoch", epoch, minimum=0), float(base_lr))

    def _lr(self, epoch: int, base_lr: float) -> float:
        raise NotImplementedError

    def start(self, optimizer: HasLR, epoch: int = 0) -> None:
        optimizer.lr = self.lr(epoch, self._base(optimizer))

    def at_epoch_end(self, epoch: int, metrics: Mapping[str, float], optimizer: HasLR) -> None:
        optimizer.lr = self.lr(epoch + 1, self._base(optimizer))


class StepLR(EpochSchedule):
    """Decay by ``gamma`` every ``step_size`` epochs (torch.optim.lr_scheduler.StepLR).

    Notes
    -----
    Equation: η_e = η_0 · γ^⌊e / step_size⌋.
    """

    name = "step"

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        super().__init__()
        self.step_size = check_int("step_size", step_size)
        self.gamma = check_positive("gamma", gamma)

    def config(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma}

    def _lr(self, epoch: int, base_lr: float) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class ExponentialLR(EpochSchedule):
    """Decay by ``gamma`` every epoch (torch.optim.lr_scheduler.ExponentialLR).

    Notes
    -----
    Equation: η_e = η_0 · γ^e.
    """

    name = "exponential"

    def __init__(self, gamma: float) -> None:
        super().__init__()
        self.gamma = check_positive("gamma", gamma)

    def config(self) -> dict[str, Any]:
        return {"gamma": self.gamma}

    def _lr(self, epoch: int, base_lr: float) -> float:
        return base_lr * self.gamma**epoch


class CosineAnnealingLR(EpochSchedule):
    """Half a cosine from the base rate down to ``eta_min`` over ``T_max`` epochs
    (torch.optim.lr_scheduler.CosineAnnealingLR, without restarts).

    Notes
    -----
    Equation: η_e = η_min + ½ (η_0 − η_min)(1 + cos(π e / T_max)). Past T_max the cosine
    goes on, climbing back to η_0 at 2 T_max, as torch's does.

    References
    ----------
    Loshchilov & Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", 2017.
    """

    name = "cosine"

    def __init__(self, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__()
        self.T_max = check_int("T_max", T_max)
        self.eta_min = check_positive("eta_min", eta_min, allow_zero=True)

    def config(self) -> dict[str, Any]:
        return {"T_max": self.T_max, "eta_min": self.eta_min}

    def _lr(self, epoch: int, base_lr: float) -> float:
        cosine = 1 + math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (base_lr - self.eta_min) * cosine / 2


class LinearWarmup(EpochSchedule):
    """Ramp linearly from ``start_factor`` · base to the base rate over ``warmup_epochs``
    epochs, then follow ``after`` (restarted at its epoch 0), or stay at the base rate.

    Alone it is torch.optim.lr_scheduler.LinearLR(start_factor, 1.0, warmup_epochs);
    with ``after`` it is SequentialLR([LinearLR, after], milestones=[warmup_epochs]).

    Notes
    -----
    Equation: η_e = η_0 (s + (1 − s) e / W) for e < W;  η_e = after(e − W) for e ≥ W
    (η_0 without ``after``), with s = ``start_factor`` and W = ``warmup_epochs``.
    """

    name = "warmup"

    def __init__(
        self,
        warmup_epochs: int = 5,
        start_factor: float = 1 / 3,
        after: EpochSchedule | None = None,
    ) -> None:
        super().__init__()
        self.warmup_epochs = check_int("warmup_epochs", warmup_epochs)
        self.start_factor = _check_factor("start_factor", start_factor, allow_one=True)
        if after is not None and not isinstance(after, EpochSchedule):
            raise ConfigTypeError(
                "`after` must be a schedule indexed by epoch (step, exponential, cosine, "
                f"warmup); got {after!r}"
            )
        self.after = after

    def config(self) -> dict[str, Any]:
        return {"warmup_epochs": self.warmup_epochs, "start_factor": self.start_factor,
                "after": self.after}

    def _lr(self, epoch: int, base_lr: float) -> float:
        W, s = self.warmup_epochs, self.start_factor
        if epoch < W:
            return base_lr * (s + (1 - s) * epoch / W)
        return base_lr if self.after is None else self.after.lr(epoch - W, base_lr)


class ReduceLROnPlateau(Schedule):
    """Multiply the learning rate by ``factor`` when a metric stops improving
    (torch.optim.lr_scheduler.ReduceLROnPlateau).

    Parameters
    ----------
    factor : float in (0, 1)
        η ← max(factor · η, min_lr).
    patience : int
        Epochs without improvement tolerated; the rate drops after ``patience + 1``.
    threshold : float
        What counts as an improvement on the best value so far: for ``mode="min"``,
        ``threshold_mode="rel"`` needs metric < best · (1 − threshold), "abs" needs
        metric < best − threshold (mirrored for "max").
    mode : {"min", "max"}
        Whether the metric should fall (a loss) or rise (an accuracy).
    min_lr : float
        The rate never drops below it.
    threshold_mode : {"rel", "abs"}
    cooldown : int
        Epochs after a drop during which bad epochs are not counted.
    eps : float
        A drop smaller than ``eps`` is skipped.
    monitor : str or None
        The ``metrics`` key :meth:`at_epoch_end` reads; None takes "val_loss" when present,
        else "loss" (as the training loop's early stopping does).
    """

    name = "plateau"

    def __init__(
        self,
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        mode: str = "min",
        min_lr: float = 0.0,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        eps: float = 1e-8,
        monitor: str | None = None,
    ) -> None:
        super().__init__()
        self.factor = _check_factor("factor", factor, allow_one=False)
        self.patience = check_int("patience", patience, minimum=0)
        self.threshold = check_positive("threshold", threshold, allow_zero=True)
        self.mode = check_choice("mode", mode, ("min", "max"))
        self.min_lr = check_positive("min_lr", min_lr, allow_zero=True)
        self.threshold_mode = check_choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown = check_int("cooldown", cooldown, minimum=0)
        self.eps = check_positive("eps", eps, allow_zero=True)
        if monitor is not None and not isinstance(monitor, str):
            raise ConfigTypeError(f"`monitor` must be a metric name; got {monitor!r}")
        self.monitor = monitor
        self.current_lr: float | None = None  # the rate for the next epoch
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def config(self) -> dict[str, Any]:
        return {"factor": self.factor, "patience": self.patience, "threshold": self.threshold,
                "mode": self.mode, "min_lr": self.min_lr, "threshold_mode": self.threshold_mode,
                "cooldown": self.cooldown, "eps": self.eps, "monitor": self.monitor}

    def start(self, optimizer: HasLR, epoch: int = 0) -> None:
        """Remember the base rate; the optimizer's current rate is left as it is."""
        self._base(optimizer)
        self.current_lr = float(optimizer.lr)

    def is_better(self, metric: float) -> bool:
        """Whether ``metric`` improves on the best value so far by more than the threshold."""
        if self.mode == "min":
            if self.threshold_mode == "rel":
                return metric < self.best * (1 - self.threshold)
            return metric < self.best - self.threshold
        if self.threshold_mode == "rel":
            return metric > self.best * (1 + self.threshold)
        return metric > self.best + self.threshold

    def step(self, metric: float) -> None:
        """Record one epoch's ``metric``; lower ``current_lr`` after a plateau."""
        if self.current_lr is None:
            raise RuntimeError("call start(optimizer) before the first step")
        metric = float(metric)
        if self.is_better(metric):
            self.best = metric
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during a cooldown do not count
        if self.num_bad_epochs > self.patience:
            new_lr = max(self.current_lr * self.factor, self.min_lr)
            if self.current_lr - new_lr > self.eps:
                self.current_lr = new_lr
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    def monitored(self, metrics: Mapping[str, float]) -> float:
        """The value of the monitored metric in ``metrics``."""
        key = self.monitor
        if key is None:
            key = "val_loss" if "val_loss" in metrics else "loss"
        if key not in metrics:
            have = ", ".join(sorted(metrics)) or "none"
            raise ConfigError(f"`monitor` {key!r} is not among the epoch's metrics ({have})")
        return float(metrics[key])

    def at_epoch_end(self, epoch: int, metrics: Mapping[str, float], optimizer: HasLR) -> None:
        if self.base_lr is None:
            self.start(optimizer, epoch)
        self.current_lr = float(optimizer.lr)  # a change made from outside is respected
        self.step(self.monitored(metrics))
        optimizer.lr = self.current_lr

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "current_lr": self.current_lr, "best": self.best,
                "num_bad_epochs": self.num_bad_epochs, "cooldown_counter": self.cooldown_counter}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        super().load_state_dict(d)
        current = d.get("current_lr")
        self.current_lr = None if current is None else float(current)
        self.best = float(d["best"])
        self.num_bad_epochs = int(d["num_bad_epochs"])
        self.cooldown_counter = int(d["cooldown_counter"])


class InverseScalingLR(Schedule):
    """scikit-learn's ``learning_rate="invscaling"``: the rate falls as a power of the time
    step t, the number of training samples seen so far.

    Notes
    -----
    Equation: η = η_0 / (t + 1)^p, p = ``power_t``, set at each epoch's end (t then counts
    every sample of the epochs so far), as sklearn.neural_network's SGD does. The first
    epoch trains at η_0. ``t`` is the schedule's state: it carries over a resumed run.

    References
    ----------
    scikit-learn, ``sklearn/neural_network/_stochastic_optimizers.py``, SGDOptimizer.
    """

    name = "invscaling"

    def __init__(self, power_t: float = 0.5) -> None:
        super().__init__()
        self.power_t = check_positive("power_t", power_t, allow_zero=True)
        self.t = 0  # training samples seen

    def config(self) -> dict[str, Any]:
        return {"power_t": self.power_t}

    def lr(self, t: int, base_lr: float) -> float:
        """The rate after ``t`` training samples: η_0 / (t + 1)^p."""
        return float(base_lr) / (check_int("t", t, minimum=0) + 1) ** self.power_t

    def start(self, optimizer: HasLR, epoch: int = 0) -> None:
        optimizer.lr = self.lr(self.t, self._base(optimizer))

    def at_epoch_end(self, epoch: int, metrics: Mapping[str, float], optimizer: HasLR) -> None:
        if "samples" not in metrics:
            raise ConfigError("InverseScalingLR needs the epoch's sample count, "
                              "metrics['samples'] (training.fit sets it)")
        self.t += int(metrics["samples"])
        optimizer.lr = self.lr(self.t, self._base(optimizer))

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "t": self.t}

    def load_state_dict(self, d: Mapping[str, Any]) -> None:
        super().load_state_dict(d)
        self.t = int(d["t"])


SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls
    for cls in (StepLR, ExponentialLR, CosineAnnealingLR, LinearWarmup, ReduceLROnPlateau,
                InverseScalingLR)
}


def get(name: str, **kwargs: Any) -> Schedule:
    """The schedule called ``name``, built with ``kwargs`` (its constructor's arguments).

    Raises
    ------
    ValueError
        For an unknown name (listing the valid ones) or a bad argument value.
    TypeError
        For an argument the schedule does not take.
    """
    return lookup(SCHEDULES, name, "schedule")(**kwargs)
