"""Tests for deltaprop.schedules: each schedule's learning rates against torch's schedulers.

torch is the oracle: a dummy torch optimizer is stepped through 30 epochs and the learning
rate each epoch trains at (``param_groups[0]["lr"]`` before ``scheduler.step()``) is
compared with deltaprop's, both through the closed form ``lr(epoch, base_lr)`` and through
the training loop's interface ``start`` / ``at_epoch_end`` on a real optimizer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tl

import deltaprop as dp
from deltaprop import optim, schedules
from deltaprop.schedules import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearWarmup,
    ReduceLROnPlateau,
    StepLR,
)

EPOCHS = 30
BASE = 0.5


def torch_lrs(make: Callable, metrics: list[float] | None = None, base: float = BASE) -> list:
    """The lr torch's scheduler gives each epoch, on a one-parameter SGD."""
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base)
    scheduler = make(opt)
    out = []
    for e in range(EPOCHS if metrics is None else len(metrics)):
        out.append(opt.param_groups[0]["lr"])
        opt.step()  # no gradient: nothing moves, but torch wants the order step, then schedule
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[e])
    return out


def our_lrs(schedule: schedules.Schedule, metrics: list[float] | None = None,
            base: float = BASE) -> list[float]:
    """The lr deltaprop's schedule gives each epoch, through the training-loop interface."""
    opt = optim.SGD(lr=base)
    schedule.start(opt)
    out = []
    for e in range(EPOCHS if metrics is None else len(metrics)):
        out.append(opt.lr)
        schedule.at_epoch_end(e, {"loss": np.nan if metrics is None else metrics[e]}, opt)
    return out


def assert_same(ours: list[float], theirs: list[float]) -> None:
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12 * BASE)


# id -> (deltaprop schedule factory, torch scheduler factory)
EPOCH_CASES: dict[str, tuple[Callable, Callable]] = {
    "step": (lambda: StepLR(4, gamma=0.5), lambda o: tl.StepLR(o, 4, gamma=0.5)),
    "step-default-gamma": (lambda: StepLR(7), lambda o: tl.StepLR(o, 7)),
    "exponential": (lambda: ExponentialLR(0.9), lambda o: tl.ExponentialLR(o, 0.9)),
    "cosine": (lambda: CosineAnnealingLR(10), lambda o: tl.CosineAnnealingLR(o, 10)),
    "cosine-eta-min": (
        lambda: CosineAnnealingLR(7, eta_min=0.01),
        lambda o: tl.CosineAnnealingLR(o, 7, eta_min=0.01),
    ),
    "warmup": (
        lambda: LinearWarmup(5, 0.1),
        lambda o: tl.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5),
    ),
    "warmup-defaults": (LinearWarmup, tl.LinearLR),  # torch's defaults: 1/3 over 5 epochs
    "warmup-then-cosine": (
        lambda: LinearWarmup(3, 0.25, after=CosineAnnealingLR(10, eta_min=0.001)),
        lambda o: tl.SequentialLR(
            o,
            [tl.LinearLR(o, start_factor=0.25, total_iters=3),
             tl.CosineAnnealingLR(o, 10, eta_min=0.001)],
            milestones=[3],
        ),
    ),
    "warmup-then-step": (
        lambda: LinearWarmup(4, 0.5, after=StepLR(3, gamma=0.5)),
        lambda o: tl.SequentialLR(
            o, [tl.LinearLR(o, start_factor=0.5, total_iters=4), tl.StepLR(o, 3, gamma=0.5)],
            milestones=[4],
        ),
    ),
}


@pytest.mark.parametrize("case", EPOCH_CASES)
def test_epoch_schedule_matches_torch(case: str) -> None:
    ours, theirs = EPOCH_CASES[case]
    expected = torch_lrs(theirs)
    schedule = ours()
    assert_same([schedule.lr(e, BASE) for e in range(EPOCHS)], expected)  # closed form
    assert_same(our_lrs(ours()), expected)  # the training loop's interface
    assert len(set(expected)) > 3  # the schedule did change the rate


# metrics: falling, then flat, noisy, rising — every branch of the plateau logic
LOSSES = [1.0, 0.8, 0.7, 0.7, 0.69995, 0.71, 0.72, 0.6, 0.6, 0.61, 0.62, 0.63, 0.64, 0.5,
          0.5, 0.5, 0.5, 0.5, 0.5, 0.49, 0.49, 0.48, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5,
          0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
PLATEAU_CASES: dict[str, tuple[dict, list[float]]] = {
    "defaults": ({"patience": 2}, LOSSES),
    "rel-threshold": ({"factor": 0.5, "patience": 1, "threshold": 0.05}, LOSSES),
    "abs-cooldown": (
        {"factor": 0.5, "patience": 1, "threshold": 0.005, "threshold_mode": "abs",
         "cooldown": 2}, LOSSES,
    ),
    "min-lr": ({"factor": 0.2, "patience": 0, "min_lr": 0.01}, LOSSES),
    "max": ({"mode": "max", "factor": 0.5, "patience": 1}, [-x for x in LOSSES]),
    "max-abs": (
        {"mode": "max", "factor": 0.5, "patience": 2, "threshold": 0.01,
         "threshold_mode": "abs"}, [1 - x for x in LOSSES],
    ),
    "eps": ({"factor": 0.5, "patience": 0, "eps": 0.1}, LOSSES),  # drops below 0.1: skipped
}


@pytest.mark.parametrize("case", PLATEAU_CASES)
def test_plateau_matches_torch(case: str) -> None:
    kwargs, metrics = PLATEAU_CASES[case]
    expected = torch_lrs(lambda o: tl.ReduceLROnPlateau(o, **kwargs), metrics)
    assert_same(our_lrs(ReduceLROnPlateau(**kwargs), metrics), expected)
    assert len(set(expected)) > 1


def test_plateau_monitors_val_loss_when_present() -> None:
    opt = optim.SGD(lr=1.0)
    schedule = ReduceLROnPlateau(patience=0, factor=0.5)
    schedule.start(opt)
    schedule.at_epoch_end(0, {"loss": 1.0, "val_loss": 1.0}, opt)
    schedule.at_epoch_end(1, {"loss": 0.5, "val_loss": 2.0}, opt)  # val_loss got worse
    assert opt.lr == 0.5
    acc = ReduceLROnPlateau(patience=0, factor=0.5, mode="max", monitor="accuracy")
    acc.start(opt)
    acc.at_epoch_end(0, {"loss": 9.0, "accuracy": 0.5}, opt)
    acc.at_epoch_end(1, {"loss": 0.1, "accuracy": 0.6}, opt)  # accuracy improved
    assert opt.lr == 0.5
    with pytest.raises(ValueError, match=r"`monitor` 'val_accuracy' is not among .*\(loss\)"):
        ReduceLROnPlateau(monitor="val_accuracy").at_epoch_end(0, {"loss": 1.0}, opt)


def test_plateau_respects_a_rate_changed_from_outside() -> None:
    opt = optim.SGD(lr=1.0)
    schedule = ReduceLROnPlateau(patience=0, factor=0.5)
    schedule.start(opt)
    schedule.at_epoch_end(0, {"loss": 1.0}, opt)
    opt.lr = 0.1
    schedule.at_epoch_end(1, {"loss": 1.0}, opt)
    assert opt.lr == pytest.approx(0.05)


def test_plateau_state_round_trip() -> None:
    kwargs = {"factor": 0.5, "patience": 1, "cooldown": 1}
    whole = our_lrs(ReduceLROnPlateau(**kwargs), LOSSES)
    first = ReduceLROnPlateau(**kwargs)
    opt = optim.SGD(lr=BASE)
    first.start(opt)
    for e in range(15):
        first.at_epoch_end(e, {"loss": LOSSES[e]}, opt)
    resumed = ReduceLROnPlateau(**kwargs)
    resumed.load_state_dict(first.state_dict())
    opt = optim.SGD(lr=opt.lr)
    resumed.start(opt, 15)
    rest = []
    for e in range(15, len(LOSSES)):
        rest.append(opt.lr)
        resumed.at_epoch_end(e, {"loss": LOSSES[e]}, opt)
    assert rest == whole[15:]


def test_epoch_schedule_resumes_from_its_state() -> None:
    schedule = LinearWarmup(3, 0.1, after=ExponentialLR(0.8))
    opt = optim.SGD(lr=BASE)
    schedule.start(opt)
    for e in range(7):
        schedule.at_epoch_end(e, {}, opt)
    resumed = LinearWarmup(3, 0.1, after=ExponentialLR(0.8))
    resumed.load_state_dict(schedule.state_dict())
    opt2 = optim.SGD(lr=opt.lr)  # a restored optimizer holds the scheduled rate, not the base
    resumed.start(opt2, 7)
    assert opt2.lr == opt.lr == pytest.approx(BASE * 0.8**4, rel=1e-15)
    assert resumed.base_lr == BASE


def test_without_start_the_first_rate_is_the_base() -> None:
    opt = optim.Adam(lr=0.2)
    schedule = StepLR(2, gamma=0.5)
    for e in range(4):
        schedule.at_epoch_end(e, {}, opt)
    assert schedule.base_lr == 0.2 and opt.lr == schedule.lr(4, 0.2) == 0.05


def test_fit_records_the_scheduled_rates(rng: np.random.Generator) -> None:
    X, y = rng.normal(size=(40, 4)), rng.integers(0, 3, size=40)
    net = dp.Network([4, 6, 3], dtype="float64", seed=0)
    schedule = StepLR(2, gamma=0.5)
    history = net.fit(X, y, epochs=6, batch_size=10, optimizer=optim.SGD(lr=0.4),
                      schedule=schedule, verbose=0)
    assert history.lr == [schedule.lr(e, 0.4) for e in range(6)]


# ----------------------------------------------------------------- registry and arguments
def test_registry() -> None:
    assert set(schedules.SCHEDULES) == {"step", "exponential", "cosine", "warmup", "plateau",
                                        "invscaling"}
    s = schedules.get("cosine", T_max=5, eta_min=0.1)
    assert isinstance(s, CosineAnnealingLR) and s.T_max == 5
    assert repr(s) == "CosineAnnealingLR(T_max=5, eta_min=0.1)"
    with pytest.raises(ValueError, match="unknown schedule 'cosin'; choose one of: cosine, "
                                         "exponential, invscaling, plateau, step, warmup"):
        schedules.get("cosin")
    with pytest.raises(TypeError, match="step_sze"):
        schedules.get("step", step_sze=3)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: StepLR(0), ValueError, "`step_size` must be >= 1; got 0"),
        (lambda: StepLR(2.5), TypeError, "`step_size` must be an integer; got 2.5"),
        (lambda: StepLR(3, gamma=-0.1), ValueError, "`gamma` must be > 0; got -0.1"),
        (lambda: ExponentialLR(0), ValueError, "`gamma` must be > 0; got 0"),
        (lambda: CosineAnnealingLR(0), ValueError, "`T_max` must be >= 1; got 0"),
        (lambda: CosineAnnealingLR(5, eta_min=-1), ValueError, "`eta_min` must be >= 0"),
        (lambda: LinearWarmup(0), ValueError, "`warmup_epochs` must be >= 1; got 0"),
        (lambda: LinearWarmup(5, 0), ValueError, "`start_factor` must be > 0; got 0"),
        (lambda: LinearWarmup(5, 1.5), ValueError, r"`start_factor` must be in \(0, 1\]"),
        (lambda: LinearWarmup(5, after=ReduceLROnPlateau()), TypeError,
         "`after` must be a schedule indexed by epoch"),
        (lambda: ReduceLROnPlateau(factor=1.0), ValueError, r"`factor` must be in \(0, 1\)"),
        (lambda: ReduceLROnPlateau(factor=-0.5), ValueError, "`factor` must be > 0"),
        (lambda: ReduceLROnPlateau(patience=-1), ValueError, "`patience` must be >= 0"),
        (lambda: ReduceLROnPlateau(mode="avg"), ValueError,
         "`mode` must be one of min, max; got 'avg'"),
        (lambda: ReduceLROnPlateau(threshold_mode="pct"), ValueError, "`threshold_mode`"),
        (lambda: ReduceLROnPlateau(threshold=-1e-4), ValueError, "`threshold` must be >= 0"),
        (lambda: ReduceLROnPlateau(min_lr=-1), ValueError, "`min_lr` must be >= 0"),
        (lambda: ReduceLROnPlateau(cooldown=-1), ValueError, "`cooldown` must be >= 0"),
        (lambda: StepLR(2).lr(-1, 0.1), ValueError, "`epoch` must be >= 0; got -1"),
        (lambda: StepLR(2).start(optim.SGD(lr=0.1), 1.5), TypeError, "`epoch`"),
        (lambda: ReduceLROnPlateau().step(1.0), RuntimeError, r"call start\(optimizer\)"),
        (lambda: StepLR(2).load_state_dict({"name": "plateau"}), ValueError,
         "state is for schedule 'plateau', not 'step'"),
        (lambda: schedules.InverseScalingLR(-0.5), ValueError, "`power_t` must be >= 0"),
        (lambda: schedules.InverseScalingLR().at_epoch_end(0, {"loss": 1.0}, optim.SGD(lr=1)),
         ValueError, r"needs the epoch's sample count, metrics\['samples'\]"),
    ],
)
def test_bad_arguments(make: Callable, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


# ----------------------------------------------------------------- scikit-learn's invscaling
def test_inverse_scaling_is_scikit_learns_formula() -> None:
    """η = η0 / (t + 1)^p with t the samples seen, set at each epoch's end; t resumes."""
    s = schedules.InverseScalingLR(power_t=0.5)
    opt = optim.SGD(lr=0.1)
    s.start(opt)
    assert opt.lr == 0.1  # t = 0: η0 / 1
    s.at_epoch_end(0, {"loss": 1.0, "samples": 8}, opt)
    assert opt.lr == pytest.approx(0.1 / 3.0)  # (8 + 1)^0.5 = 3
    s.at_epoch_end(1, {"loss": 1.0, "samples": 16}, opt)
    assert opt.lr == pytest.approx(0.1 / 5.0)  # (24 + 1)^0.5 = 5
    resumed = schedules.InverseScalingLR(power_t=0.5)
    resumed.load_state_dict(s.state_dict())
    opt2 = optim.SGD(lr=0.7)  # the base rate comes from the state, the time step too
    resumed.start(opt2)
    assert opt2.lr == pytest.approx(0.1 / 5.0) and resumed.t == 24
    assert s.lr(0, 0.1) == 0.1 and schedules.InverseScalingLR(0.0).lr(99, 0.1) == 0.1
