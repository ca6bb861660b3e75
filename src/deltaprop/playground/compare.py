"""Seed 003's question on the page's own data: the same first weights trained with each bias
mode, side by side.

:func:`run` builds, for every entry of :data:`MODES`, the playground's network with that
bias mode in every layer — the same seed, so the same first weights: a network's weights are
drawn the same way whatever its bias mode, and a bias unit's column and every bias start at
``bias_init`` — and trains it with the playground's trainer for the same steps, on the same
mini-batches, with the same optimizer settings. ``"wrong rule"`` is ``learned`` trained with
seed 002's mistaken bias rule. Each result has the loss curves, the final losses (and
accuracies) and the output over the plane as small maps (frames' encoding, base64), for the
page's small multiples. It is :mod:`deltaprop.bias_study` on the playground's data and
settings, in seconds rather than over seeds.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from deltaprop.errors import TrainingDiverged
from deltaprop.network import Network
from deltaprop.playground import features, frames
from deltaprop.playground.session import (
    RequestError,
    Snapshot,
    make_hook,
    make_network,
    make_optimizer,
)
from deltaprop.playground.trainer import Trainer

#: (name, bias mode of every layer, bias rule)
MODES = (
    ("learned", "learned", "delta"),
    ("unit", "unit", "delta"),
    ("frozen", "frozen", "delta"),
    ("none", "none", "delta"),
    ("wrong rule", "learned", "layer-sum"),
)
STEPS = 2000  # the default: circles at the default settings is learned by then (tested)
MAX_STEPS = 20_000
POINTS = 40  # points of each loss curve
SIZE = 48  # each output map is SIZE × SIZE


def check_steps(steps: Any) -> int:
    """``steps`` as an int in 1..MAX_STEPS, or a RequestError naming it."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise RequestError(f"`steps` must be an integer in 1..{MAX_STEPS}; got {steps!r}")
    return steps


def _map(snap: Snapshot, net: Any) -> list[dict[str, Any]]:
    """The output over the plane on a SIZE × SIZE grid, as base64 maps."""
    points = frames.grid(snap.data.domain, SIZE)
    with np.errstate(over="ignore", invalid="ignore"):
        A_L = net.predict_proba(features.transform(points, snap.config["features"]))
    maps = frames.MapWriter()
    frames.add_output(maps, net, A_L, SIZE)
    data = b"".join(maps.chunks)
    return [{**entry, "data": base64.b64encode(
        data[entry["offset"] : entry["offset"] + SIZE * SIZE]).decode()}
        for entry in maps.entries]


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _config(snap: Snapshot, bias: str, rule: str) -> dict[str, Any]:
    return {**snap.config, "bias": [bias] * len(snap.config["bias"]), "bias_rule": rule}


def train_mode(snap: Snapshot, net: Network, config: dict[str, Any],
               steps: int) -> dict[str, Any]:
    """Train ``net`` (fresh, built from ``config``) ``steps`` steps; its curves, final
    losses and output maps."""
    run = snap.run
    trainer = Trainer(net, make_optimizer(config), run.trainer.X, run.trainer.Y,
                      config["batch_size"], config["reduction"], make_hook(net, config))
    every = max(1, steps // POINTS)
    curve: dict[str, list[Any]] = {"step": [], "train": [], "test": []}
    message = None

    def record() -> dict[str, dict[str, float]]:
        metrics = run.losses(net)
        curve["step"].append(trainer.steps)
        for key in ("train", "test"):
            curve[key].append(_finite(metrics[key]["loss"]))
        return metrics

    metrics = record()
    try:
        while trainer.steps < steps:
            trainer.step()
            if trainer.steps % every == 0 or trainer.steps == steps:
                metrics = record()
    except TrainingDiverged as e:
        message = str(e)
    metrics = record() if curve["step"][-1] != trainer.steps else metrics
    return {
        "bias": config["bias"][0], "bias_rule": config["bias_rule"], "steps": trainer.steps,
        "message": message,
        "loss": {k: _finite(v["loss"]) for k, v in metrics.items()},
        "accuracy": ({k: v["accuracy"] for k, v in metrics.items()}
                     if net.is_classifier else None),
        "curve": curve, "maps": _map(snap, net),
    }


def run(snap: Snapshot, steps: int = STEPS) -> dict[str, Any]:
    """Every mode of :data:`MODES` on the snapshot's data and settings (``POST /api/compare``)."""
    configs = [_config(snap, bias, rule) for _, bias, rule in MODES]
    nets = [make_network(config, snap.data) for config in configs]
    first = [layer.W_in for layer in nets[0].layers]
    same_start = all(np.array_equal(a, layer.W_in)
                     for net in nets for a, layer in zip(first, net.layers, strict=True))
    results = [{"mode": name, **train_mode(snap, net, config, steps)}
               for (name, _, _), net, config in zip(MODES, nets, configs, strict=True)]
    return {"steps": steps, "task": snap.data.task, "size": SIZE,
            "domain": list(snap.data.domain), "bias_init": snap.config["bias_init"],
            "same_start": same_start, "modes": results}
