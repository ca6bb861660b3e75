"""Finite-difference checks, public (like click.testing) and used by tests.

:func:`check` compares the gradients of :meth:`Network.backprop` — eqs. (10) and (14) — with
central differences of the batch loss C on a float64 copy of the network:

    ∂C/∂θ ≈ (C(θ + ε) − C(θ − ε)) / 2ε        for every entry θ of every W^l and b^l
                                               (and batch norm's γ^l and β^l).

With batch norm, C is computed with the batch's own statistics, as ``backprop`` does, so the
check covers δ's paths through μ and σ² too.

Error measure
-------------
With analytic gradient a and numerical gradient n, the error of a parameter array P (a
layer's W, or its b) is reported as

    abs(P) = max_{k ∈ P} |a_k − n_k|,      rel(P) = abs(P) / S,
    S = max(‖a‖_∞, ‖n‖_∞, 1e-30) over *every* parameter of the network,

i.e. each entry's error relative to the network's largest gradient entry. The finite-difference
error is absolute — about ε_mach · |C| / ε, whatever the size of the entry — so a per-entry or
per-layer denominator would report rounding noise divided by a small gradient as a "relative
error": in a deep sigmoid net whose first-layer gradients were 3e-5 (loss 0.8), correct code
showed 1e-10 / 3e-5 ≈ 3e-6 at ε = 1e-6. Against S the noise stays near 1e-10 / S, while a
wrong entry is still flagged whenever its error exceeds tol · S.

Why ``tol = 1e-6`` with ``eps = 1e-5`` (float64): the central difference has truncation
error ≈ ε²/6 · |∂³C/∂θ³| ≈ 2e-11 · |∂³C/∂θ³| and rounding error ≈ ε_mach · |C| / ε
≈ 2e-11 · |C|; ε ≈ ∛ε_mach is the step that balances the two. Relative to S both are
≈ 1e-10 when S is of the order of |C|, and still ≈ 1e-8 where the gradient is small next to
the loss (S ≈ 1e-3 |C|). Over 4,400 random nets (depth 1–4, every activation, loss and bias
mode, kinks avoided) the largest error was 6e-8 at ε = 1e-5 (6e-7 at ε = 1e-6). Any mistake
in the equations — a wrong σ', a missing term, a sum over the wrong axis — moves some
gradient by far more. A finite difference that straddles a kink (relu, leaky_relu; elu's σ''
at 0) measures no derivative at all: keep such z away from 0 by much more than ε.

Seed 002's mistaken bias rule — every bias of a layer corrected by the sum of all the layer's
δs — lives here, for teaching only (``bias_rule="layer-sum"``, :func:`layer_sum_bias_gradient`);
training never uses it. With that rule the check fails on any layer that has a bias and ≥ 2
neurons whose δ sums differ (on generic data, always).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from deltaprop._validation import check_choice, check_int, check_positive
from deltaprop.network import REDUCTIONS, Gradients, Network

Array = NDArray[np.floating]

BIAS_RULES = ("delta", "layer-sum")
_TINY = 1e-30  # the denominator's floor: only a gradient that is exactly 0 everywhere meets it


def _loss_function(net: Network, X: Any, Y: Any, reduction: str) -> Any:
    """C(θ) of ``net``'s current parameters on the batch (X, Y): forward pass only.

    The batch loss exactly as :meth:`Network.backprop` reports it: r Σ_samples C_x with
    r = 1/m for ``"mean"``, 1 for ``"sum"``. With batch norm the forward pass normalises
    with the batch's own statistics, as ``backprop`` does (training mode, no dropout).
    """
    check_choice("reduction", reduction, REDUCTIONS)
    X = net.check_X(X)
    m = X.shape[0]
    Y = net.targets(Y, m)
    r = 1.0 / m if reduction == "mean" else 1.0
    ws = net.workspace(m) if net.has_batch_norm else None

    def loss() -> float:
        if ws is None:
            Z, A = net._output(X)
        else:
            ws.inputs[...] = X
            net.forward_into(ws, training=True)
            Z, A = ws.Z[-1], ws.A[-1]
        return r * float(net.loss.per_sample(Z, A, Y).sum())

    return loss


def _central_differences(P: Array, loss: Any, eps: float) -> Array:
    """(C(θ + ε) − C(θ − ε)) / 2ε for every entry θ of ``P``, perturbing ``P`` in place.

    The step actually taken, (θ + ε) − (θ − ε) in floating point, is the divisor, so the
    rounding of θ ± ε adds no error of its own.
    """
    grad = np.empty_like(P)
    for k in np.ndindex(P.shape):  # any memory layout (W is column-major)
        theta = P[k]
        P[k] = theta + eps
        plus, up = loss(), P[k]
        P[k] = theta - eps
        minus, down = loss(), P[k]
        P[k] = theta
        grad[k] = (plus - minus) / (up - down)
    return grad


def numerical_gradients(
    net: Network, X: Any, Y: Any, reduction: str = "mean", eps: float = 1e-5
) -> tuple[list[Array], list[Array | None]]:
    """Central-difference gradients of the batch loss for every parameter entry.

    Parameters
    ----------
    net : Network
        Left untouched: the differences are taken on ``net.copy("float64")``.
    X : array-like of shape (m, n_0)
    Y : array-like of shape (m,) or (m, n_L)
    reduction : {"mean", "sum"}
    eps : float
        The step ε.

    Returns
    -------
    dW : list of ndarray, float64, shaped like each layer's W (a bias unit's column included)
    db : list of (ndarray of shape (n_l,), float64, or None where ``layer.b is None``)
        Frozen biases get a gradient too: C depends on them even though training does not
        move them.

    Notes
    -----
    Equation: ∂C/∂θ ≈ (C(θ + ε) − C(θ − ε)) / 2ε, error O(ε²) + O(ε_mach / ε).
    """
    eps = check_positive("eps", eps)
    net64 = net.copy("float64")
    loss = _loss_function(net64, X, Y, reduction)
    dW = [_central_differences(layer.W, loss, eps) for layer in net64.layers]
    db = [
        None if layer.b is None else _central_differences(layer.b, loss, eps)
        for layer in net64.layers
    ]
    return dW, db


def numerical_norm_gradients(
    net: Network, X: Any, Y: Any, reduction: str = "mean", eps: float = 1e-5
) -> tuple[list[Array | None], list[Array | None]]:
    """Central-difference ∂C/∂γ and ∂C/∂β of every batch-normalised layer (None elsewhere),
    on a float64 copy, as :func:`numerical_gradients` does for W and b."""
    eps = check_positive("eps", eps)
    net64 = net.copy("float64")
    loss = _loss_function(net64, X, Y, reduction)
    norms = [layer.norm for layer in net64.layers]
    dgamma = [None if n is None else _central_differences(n.gamma, loss, eps) for n in norms]
    dbeta = [None if n is None else _central_differences(n.beta, loss, eps) for n in norms]
    return dgamma, dbeta


def layer_sum_bias_gradient(grads: Gradients) -> list[Array]:
    """Seed 002's *mistaken* bias gradient: each bias gets the sum of all its layer's δs.

    For layer l, every k: "∂C/∂b_k^l" = r Σ_samples Σ_j δ_j^l, the same value for every
    neuron of the layer. The correct rule, eq. (14), is r Σ_samples δ_k^l — the neuron's own
    δ. The two agree only for a layer of one neuron. For teaching and the bias study only;
    never used in training.

    Parameters
    ----------
    grads : Gradients
        From :meth:`Network.backprop`; ``grads.delta`` and ``grads.reduction`` are read.

    Returns
    -------
    list of ndarray of shape (n_l,)
        One array per layer, whatever the layer's bias mode: it stands for ``db[i]`` of a
        ``learned``/``frozen`` layer and for the last column of ``dW[i]`` of a ``unit`` layer.
    """
    out = []
    for delta in grads.delta:
        m, n_l = delta.shape
        r = 1.0 / m if grads.reduction == "mean" else 1.0
        out.append(np.full(n_l, r * delta.sum(), dtype=delta.dtype))
    return out


def _max_abs(arrays: list[Array | None]) -> float:
    """The largest |entry| over a list of arrays (None entries skipped)."""
    return max(
        (float(np.max(np.abs(a), initial=0.0)) for a in arrays if a is not None), default=0.0
    )


@dataclass
class LayerErrors:
    """The gradient errors of layer l = ``index`` + 1 (b_* are None where there is no b)."""

    index: int
    W_abs: float
    W_rel: float
    b_abs: float | None
    b_rel: float | None
    gamma_abs: float | None = None  # batch norm's γ and β (None: no batch norm)
    gamma_rel: float | None = None
    beta_abs: float | None = None
    beta_rel: float | None = None

    def relative(self) -> list[float]:
        """Every relative error of the layer (W, and b, γ, β where it has them)."""
        return [e for e in (self.W_rel, self.b_rel, self.gamma_rel, self.beta_rel)
                if e is not None]


@dataclass
class GradcheckReport:
    """Result of :func:`check`: per-layer errors, the tolerance and the verdict.

    Relative errors are absolute errors divided by ``scale``, S = the largest gradient entry
    of the whole network (module docstring). ``passed`` is True when every relative error
    (W and b of every layer) is ≤ ``tol``. ``analytic`` and ``numerical`` hold the compared
    gradients as (dW, db) lists.
    """

    layers: list[LayerErrors]
    scale: float
    tol: float
    eps: float
    reduction: str
    bias_rule: str
    passed: bool
    analytic: tuple[list[Array], list[Array | None]] = field(repr=False)
    numerical: tuple[list[Array], list[Array | None]] = field(repr=False)

    @property
    def max_rel(self) -> float:
        """The largest relative error over all parameter arrays."""
        return max(max(e.relative()) for e in self.layers)

    def rows(self) -> list[tuple[int, str, float, float, bool]]:
        """One row per parameter array: (l, "W", "b", "γ" or "β", max abs err, max rel err,
        ok).

        ``l`` is the seeds' 1-based layer number.
        """
        out = []
        for e in self.layers:
            for name, abs_err, rel_err in (("W", e.W_abs, e.W_rel), ("b", e.b_abs, e.b_rel),
                                           ("γ", e.gamma_abs, e.gamma_rel),
                                           ("β", e.beta_abs, e.beta_rel)):
                if abs_err is not None and rel_err is not None:
                    out.append((e.index + 1, name, abs_err, rel_err, rel_err <= self.tol))
        return out

    def __str__(self) -> str:
        lines = [f"{'layer':>5}  {'param':5}  {'max abs err':>11}  {'max rel err':>11}"]
        for l, name, abs_err, rel_err, ok in self.rows():
            flag = "" if ok else "  FAIL"
            lines.append(f"{l:>5}  {name:5}  {abs_err:11.3e}  {rel_err:11.3e}{flag}")
        verdict = "passed" if self.passed else "FAILED"
        lines.append(f"{verdict} (tol {self.tol:g}, eps {self.eps:g}, bias rule {self.bias_rule})")
        return "\n".join(lines)


def check(
    net: Network,
    X: Any,
    Y: Any,
    reduction: str = "mean",
    eps: float = 1e-5,
    tol: float = 1e-6,
    bias_rule: str = "delta",
) -> GradcheckReport:
    """Compare backprop's gradients with central differences, in float64.

    Parameters
    ----------
    net : Network
        Not modified; both gradients are computed on ``net.copy("float64")``.
    X, Y : the batch, as for :meth:`Network.backprop`
    reduction : {"mean", "sum"}
    eps : float
        Finite-difference step.
    tol : float
        Largest accepted relative error (see the module docstring for the measure and why
        1e-6 suits float64 with ε = 1e-5).
    bias_rule : {"delta", "layer-sum"}
        ``"delta"``: the analytic bias gradient is eq. (14), the neuron's own δ (correct).
        ``"layer-sum"``: it is replaced by seed 002's mistaken sum of the layer's δs
        (:func:`layer_sum_bias_gradient`) — in ``db`` and in a bias unit's column of ``dW``
        — so the check fails wherever a layer with a bias has ≥ 2 neurons.

    Returns
    -------
    GradcheckReport

    Raises
    ------
    ValueError
        Bad ``reduction``, ``bias_rule``, ``eps`` or ``tol``, or a bad batch.
    """
    check_choice("bias_rule", bias_rule, BIAS_RULES)
    check_choice("reduction", reduction, REDUCTIONS)
    eps = check_positive("eps", eps)
    tol = check_positive("tol", tol)
    net64 = net.copy("float64")
    grads = net64.backprop(X, Y, reduction)
    dW = [g.copy() for g in grads.dW]
    db = [None if g is None else g.copy() for g in grads.db]
    if bias_rule == "layer-sum":
        wrong = layer_sum_bias_gradient(grads)
        for i, layer in enumerate(net64.layers):
            if layer.b is not None:
                db[i] = wrong[i]
            elif layer.has_unit:
                dW[i][:, -1] = wrong[i]
    num_dW, num_db = numerical_gradients(net64, X, Y, reduction, eps)
    norm = ([None if g is None else g.copy() for g in grads.dgamma],
            [None if g is None else g.copy() for g in grads.dbeta])
    num_norm = numerical_norm_gradients(net64, X, Y, reduction, eps)

    S = max(_max_abs(dW), _max_abs(db), _max_abs(num_dW), _max_abs(num_db),
            *(_max_abs(g) for g in (*norm, *num_norm)), _TINY)

    def error(a: Array | None, n: Array | None) -> tuple[float | None, float | None]:
        if a is None or n is None:
            return None, None
        e = _max_abs([a - n])
        return e, e / S

    errors = []
    for i in range(len(net64.layers)):
        W_abs = _max_abs([dW[i] - num_dW[i]])
        b_abs, b_rel = error(db[i], num_db[i])
        errors.append(LayerErrors(i, W_abs, W_abs / S, b_abs, b_rel,
                                  *error(norm[0][i], num_norm[0][i]),
                                  *error(norm[1][i], num_norm[1][i])))
    passed = all(e <= tol for layer in errors for e in layer.relative())
    return GradcheckReport(
        errors, S, tol, eps, reduction, bias_rule, passed, (dW, db), (num_dW, num_db)
    )


@dataclass
class DirectionalReport:
    """Result of :func:`random_direction_check`, one entry per direction v.

    ``rel[d] = |numerical[d] − analytic[d]| / max(‖∇C‖, 1e-30)``: for a unit vector v,
    |⟨∇C, v⟩| ≤ ‖∇C‖ (Cauchy–Schwarz), so ‖∇C‖ is the scale of a directional derivative.
    """

    numerical: Array
    analytic: Array
    rel: Array
    tol: float
    passed: bool


def random_direction_check(
    net: Network,
    X: Any,
    Y: Any,
    rng: np.random.Generator,
    n_directions: int = 3,
    reduction: str = "mean",
    eps: float = 1e-5,
    tol: float = 1e-6,
) -> DirectionalReport:
    """Directional derivatives along random unit vectors v, for nets too big for :func:`check`.

    Compares (C(θ + εv) − C(θ − εv)) / 2ε with ⟨∇C, v⟩, where θ packs every parameter array
    (W^1, b^1, W^2, …, frozen biases included) and ∇C is backprop's gradient. Costs two
    forward passes per direction instead of two per parameter. Computed on a float64 copy.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the directions (standard normal, scaled to unit length).
    n_directions : int

    Notes
    -----
    Equation: D_v C(θ) = ⟨∇C(θ), v⟩ ≈ (C(θ + εv) − C(θ − εv)) / 2ε.
    """
    n_directions = check_int("n_directions", n_directions)
    check_choice("reduction", reduction, REDUCTIONS)
    eps = check_positive("eps", eps)
    tol = check_positive("tol", tol)
    net64 = net.copy("float64")
    grads = net64.backprop(X, Y, reduction)
    params, gradients = [], []
    for i, layer in enumerate(net64.layers):
        params.append(layer.W)
        gradients.append(grads.dW[i].copy())
        if layer.b is not None:
            params.append(layer.b)
            gradients.append(grads.db[i].copy())
        if layer.norm is not None:
            params += [layer.norm.gamma, layer.norm.beta]
            gradients += [grads.dgamma[i].copy(), grads.dbeta[i].copy()]
    g_norm = float(np.sqrt(sum(float(np.sum(g * g)) for g in gradients)))
    loss = _loss_function(net64, X, Y, reduction)
    originals = [p.copy() for p in params]

    numerical = np.empty(n_directions)
    analytic = np.empty(n_directions)
    for d in range(n_directions):
        v = [rng.standard_normal(p.shape) for p in params]
        norm = np.sqrt(sum(float(np.sum(x * x)) for x in v))
        v = [x / norm for x in v]
        for p, p0, x in zip(params, originals, v, strict=True):
            np.add(p0, eps * x, out=p)
        plus = loss()
        for p, p0, x in zip(params, originals, v, strict=True):
            np.subtract(p0, eps * x, out=p)
        minus = loss()
        for p, p0 in zip(params, originals, strict=True):
            np.copyto(p, p0)
        numerical[d] = (plus - minus) / (2 * eps)
        analytic[d] = sum(float(np.sum(g * x)) for g, x in zip(gradients, v, strict=True))
    rel = np.abs(numerical - analytic) / max(g_norm, _TINY)
    return DirectionalReport(numerical, analytic, rel, tol, bool(np.all(rel <= tol)))
