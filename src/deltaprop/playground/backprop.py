"""One backprop step of the playground's network, as the page shows it: every z, a, δ and
gradient of the inspected rows (:func:`view`), a selected parameter's per-sample terms
(:func:`breakdown`) and its gradient check (:func:`check`) — computed by the engine, never
by the page.

The numbers are :func:`deltaprop.explain.trace`'s: :meth:`Network.backprop` on a float64
copy of the current parameters (for a float64 network, the very numbers of its step; a
float32 network steps in float32, within about 1e-7 relative of these). What the step
subtracts, ``dW_update`` and ``db_update``, is taken from a real step of a copy of the
network and the optimizer (its state included) with the playground's gradient hooks and in
the network's dtype: parameters before minus after, so it is the next step's change exactly,
whatever the optimizer, L1/L2 or bias rule (a ``frozen`` b: 0). Nothing in the session moves.

Layers are listed l = 1 … L; matrices have one row per sample (W: per neuron k), and W and
∂C/∂W include a bias unit's column (the last) as the engine's do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deltaprop import explain, gradcheck
from deltaprop.errors import ConfigError
from deltaprop.network import Gradients
from deltaprop.playground import selection
from deltaprop.playground.session import Snapshot, make_hook
from deltaprop.streaming import BatchFeed
from deltaprop.training import TrainStep


def _list(a: Any) -> Any:
    """An array as nested lists; NaN and inf as None (JSON has neither)."""
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    if np.isfinite(a).all():
        return a.tolist()
    return np.where(np.isfinite(a), a, None).tolist()


def _scalar(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _rows(snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
    """The probe's training rows: inputs (after the feature transform) and targets."""
    trainer, rows = snap.run.trainer, snap.probe.rows  # type: ignore[union-attr]
    return trainer.X[rows], trainer.Y[rows]


def trace(snap: Snapshot) -> explain.Trace:
    """:func:`explain.trace` of the snapshot's network on the probe's rows."""
    X, Y = _rows(snap)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return explain.trace(snap.net, X, Y, lr=snap.config["lr"],
                             reduction=snap.config["reduction"], force=True)


Update = tuple[np.ndarray, np.ndarray | None, np.ndarray, np.ndarray | None]


def next_update(snap: Snapshot) -> list[Update]:
    """Per layer (W before − after, b before − after, W after, b after) of one step on the
    probe's rows, in float64, taken on copies of the network and optimizer with the
    playground's hooks: ``fit``'s :class:`TrainStep` in the trainer's workspace size, so for
    the next mini-batch it is that step's change to the last bit. None where a layer has no
    b."""
    probe = snap.probe
    assert probe is not None
    twin = snap.net.copy()
    trainer = snap.run.trainer
    m = probe.m if probe.source == "batch" else probe.rows.size
    feed = BatchFeed(trainer.X, m, twin.dtype)  # its order starts with the probe's rows
    feed.index[: probe.rows.size] = probe.rows
    step = TrainStep(twin, feed, trainer.Y, m, probe.optimizer, snap.config["reduction"],
                     gradient_hook=make_hook(twin, snap.config))
    with np.errstate(over="ignore", invalid="ignore"):
        step(0, probe.rows.size)
        step.update()
    out = []
    for before, after in zip(snap.net.layers, twin.layers, strict=True):
        W, W_after = before.W.astype(np.float64), after.W.astype(np.float64)
        if before.b is None:
            out.append((W - W_after, None, W_after, None))
        else:
            b, b_after = before.b.astype(np.float64), after.b.astype(np.float64)
            out.append((W - W_after, b - b_after, W_after, b_after))
    return out


def _full_dW(layer: explain.LayerTrace) -> np.ndarray:
    """∂C/∂W with a bias unit's column last, as :meth:`Network.backprop` gives it."""
    if layer.unit is None:
        return layer.dW
    return np.column_stack([layer.dW, layer.unit.gradient])


def view(snap: Snapshot, focus: list[int] | None = None,
         max_rows: int | None = None) -> dict[str, Any]:
    """The JSON of ``GET /api/backprop``: the step on the probe's rows, layer by layer.

    ``max_rows`` limits the per-sample rows sent (frames send a few; sums and means are
    over every row). ``focus`` adds its :func:`breakdown`.

    Raises
    ------
    ConfigError
        A ``focus`` that names no neuron or weight of the network.
    """
    probe = snap.probe
    assert probe is not None
    problem = selection.focus_problem(focus or [], snap.net)
    if problem is not None:
        raise ConfigError(problem)
    t = trace(snap)
    updates = next_update(snap)
    config = snap.config
    wrong = None
    if config["bias_rule"] == "layer-sum":  # what seed 002's mistaken rule uses as ∂C/∂b
        grads = Gradients([layer.delta for layer in t.layers], [], [], t.loss, t.reduction)
        wrong = gradcheck.layer_sum_bias_gradient(grads)
    shown = slice(None, max_rows)
    layers = []
    for i, layer in enumerate(t.layers):
        net_layer = snap.net.layers[i]
        if i + 1 < len(t.layers):  # ∂C/∂a^l = Σ_m δ_m^{l+1} w_mk^{l+1}: (8) before σ'
            dC_da = t.layers[i + 1].delta @ t.layers[i + 1].W
        else:
            dC_da = layer.dC_da
        dW_update, db_update, W_new, b_new = updates[i]
        layers.append({
            "l": layer.l, "activation": layer.activation, "bias": layer.bias_mode,
            "bias_applied": layer.bias_applied, "has_unit": net_layer.has_unit,
            "W": _list(net_layer.W), "b": _list(net_layer.b),
            "z": _list(layer.z[shown]), "a": _list(layer.a[shown]),
            "sigma_prime": _list(None if layer.sigma_prime is None else layer.sigma_prime[shown]),
            "dC_da": _list(None if dC_da is None else dC_da[shown]),
            "delta": _list(layer.delta[shown]), "delta_equation": layer.delta_equation,
            "delta_sum": _list(layer.delta_sum), "delta_mean": _list(layer.delta_mean),
            "dW": _list(_full_dW(layer)), "db": _list(layer.db),
            "db_rule": None if wrong is None else _list(wrong[i]),
            "dW_update": _list(dW_update), "db_update": _list(db_update),
            "W_new": _list(W_new), "b_new": _list(b_new),
        })
    m = int(probe.rows.size)
    out: dict[str, Any] = {
        "step": snap.step, "version": snap.version, "source": probe.source,
        "rows": probe.rows[shown].tolist(), "m": m, "shown": min(m, max_rows or m),
        "points": _list(snap.data.X_train[probe.rows[shown]]),
        "inputs": _list(t.X[shown]), "targets": _list(t.Y[shown]),
        "reduction": t.reduction, "r": t.r, "lr": t.lr, "optimizer": config["optimizer"],
        "plain_sgd": plain_sgd(config), "bias_rule": config["bias_rule"],
        "loss": _scalar(t.loss), "shortcut": t.shortcut, "loss_name": snap.net.loss.name,
        "stages": selection.stages(len(t.layers)), "layers": layers,
    }
    if focus:
        out["breakdown"] = breakdown(t, focus, probe.rows, max_rows)
    return out


def plain_sgd(config: dict[str, Any]) -> bool:
    """Whether the step is eqs. (11) and (15) as written: Δw = α ∂C/∂w (SGD, no momentum,
    no L1 or L2)."""
    return (config["optimizer"] == "sgd" and not config["momentum"] and not config["l1"]
            and not config["weight_decay"])


def breakdown(t: explain.Trace, focus: list[int], rows: np.ndarray,
              max_rows: int | None = None) -> dict[str, Any]:
    """Each sample's term of the selected parameter's gradient, their sum and mean, and the
    one the step uses (seed 002: the batch gradient sums over samples, never over a layer's
    neurons).

    A weight ``[l, k, j]``: terms δ_k^l(x) a_j^{l−1}(x), eq. (10) per sample (a_j = 1 for
    the bias unit); a neuron ``[l, k]``: its bias's terms δ_k^l(x), eq. (14).
    ``gradient`` is backprop's reduced ∂C/∂w or ∂C/∂b (None where the neuron has no bias).
    """
    l, k = focus[0], focus[1]
    layer = t.layers[l - 1]
    delta = layer.delta[:, k - 1]
    n_in = layer.a_prev.shape[1]
    if len(focus) == 3:
        j = focus[2]
        unit = j == n_in + 1
        a = np.ones_like(delta) if unit else layer.a_prev[:, j - 1]
        kind = "unit" if unit else "w"
        gradient: float | None = float(_full_dW(layer)[k - 1, j - 1])
    else:
        a, kind = None, "b"
        if layer.db is not None:
            gradient = float(layer.db[k - 1])
        elif layer.unit is not None:
            gradient = float(layer.unit.gradient[k - 1])
        else:
            gradient = None
    terms = delta if a is None else delta * a
    shown = slice(None, max_rows)
    return {
        "focus": list(focus), "kind": kind, "bias": layer.bias_mode,
        "rows": rows[shown].tolist(), "delta": _list(delta[shown]),
        "a": None if a is None else _list(a[shown]), "terms": _list(terms[shown]),
        "sum": _scalar(terms.sum()), "mean": _scalar(terms.mean()), "m": int(terms.size),
        "r": t.r, "used": t.reduction, "gradient": None if gradient is None else _scalar(gradient),
    }


def check(snap: Snapshot, focus: list[int]) -> dict[str, Any]:
    """The library's gradient check (:func:`deltaprop.gradcheck.check`, central differences
    in float64) on the probe's rows, reported for the selected weight, or the selected
    neuron's bias (the bias unit's weight for ``unit``), with the bias rule in use.

    Raises
    ------
    ConfigError
        No focus, a focus that names nothing, or a neuron without a bias.
    """
    if not focus:
        raise ConfigError("select a weight or a neuron to check its gradient (`focus`)")
    problem = selection.focus_problem(focus, snap.net)
    if problem is not None:
        raise ConfigError(problem)
    l, k = focus[0], focus[1]
    i, layer = l - 1, snap.net.layers[l - 1]
    if len(focus) == 3:
        name, where = "W", (i, k - 1, focus[2] - 1)
    elif layer.b is not None:
        name, where = "b", (i, k - 1)
    elif layer.has_unit:
        name, where = "W", (i, k - 1, layer.n_in)
    else:
        raise ConfigError(f"neuron {k} of layer {l} has no bias (bias mode none): select "
                          "one of its weights")
    X, Y = _rows(snap)
    report = gradcheck.check(snap.net, X, Y, snap.config["reduction"],
                             bias_rule=snap.config["bias_rule"])
    part = 0 if name == "W" else 1
    analytic = float(report.analytic[part][i][where[1:]])
    numerical = float(report.numerical[part][i][where[1:]])
    error = abs(analytic - numerical)
    return {
        "focus": list(focus), "name": name, "index": list(where[1:]), "layer": i,
        "bias": len(focus) == 2,
        "analytic": _scalar(analytic), "numerical": _scalar(numerical),
        "abs_error": _scalar(error), "rel_error": _scalar(error / report.scale),
        "scale": _scalar(report.scale), "tol": report.tol, "eps": report.eps,
        "passed": bool(error / report.scale <= report.tol), "max_rel": _scalar(report.max_rel),
        "passed_all": report.passed, "bias_rule": report.bias_rule, "m": int(X.shape[0]),
        "reduction": report.reduction,
    }
