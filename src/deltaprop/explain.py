"""One traced step of backprop, as data, for the explain command.

:func:`trace` runs one forward pass, one backward pass (:meth:`Network.backprop`) and one
plain SGD step (:class:`deltaprop.optim.SGD`, momentum 0: eqs. (11) and (15)) on a float64
copy of a network, and returns every intermediate quantity as a :class:`Trace`, layer by
layer (:class:`LayerTrace`), tagged with seed 000's equation numbers:

    (2)  z^l = W^l a^{l−1} + b^l,  a^l = σ(z^l)
    (9)  δ^L = ∂C/∂a^L ⊙ σ'(z^L)         (or δ^L = a − y for a canonical output/loss pair)
    (8)  δ^l = (W^{l+1})ᵀ δ^{l+1} ⊙ σ'(z^l)
    (10) ∂C/∂w_kj^l = δ_k^l a_j^{l−1}     (14) ∂C/∂b_k^l = δ_k^l
    (11) w_kj^l ← w_kj^l − α ∂C/∂w_kj^l  (15) b_k^l ← b_k^l − α ∂C/∂b_k^l

z and a are the forward pass that :meth:`Network.backprop` ran (``Gradients.Z``/``A``): the
one forward pass of training and inference, not a second one written for display.

Per-sample δ rows come first, then their batch sum and mean (seed 002: a batch gradient sums
or averages over *samples*, never over a layer's neurons). A ``frozen`` bias's gradient is
reported with ``bias_applied=False``; a ``unit`` layer's bias unit (constant activation 1)
and its weights — W's last column — are reported as :class:`BiasUnitTrace`.

With dropout (p > 0) the step drops neurons as training does: the layer's
:class:`DropoutTrace` holds p, the mask m, σ(z) before it, and ∂C/∂a before and after
⊙ m/(1 − p) — eq. (8) with dropout; a dropped neuron's δ is 0. With batch norm its
:class:`BatchNormTrace` holds the batch's μ and σ², ẑ, γ, β, z̃ = γ ẑ + β (what σ reads),
∂C/∂z̃, ∂C/∂γ, ∂C/∂β and their new values, and ``delta`` is δ = ∂C/∂z, through the batch
statistics (docs/backprop.md). ẑ, z̃ and σ(z̃) are recomputed from backprop's z with the
batch's statistics; a is the (masked) activation backprop ran.

Layers are numbered as in the seeds (``LayerTrace.l``: 1 … L). Matrices are read-only
float64 NumPy arrays, one row per sample (or per neuron, for W): a trace is a snapshot that
Python code (a notebook, the playground's step view) can compute with, and
:meth:`Trace.as_dict` gives the nested lists that ``deltaprop explain --format json`` prints.
Sizes are limited (:data:`MAX_NEURONS`, :data:`MAX_SAMPLES`) so the output stays readable;
``force=True`` lifts the limit.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from deltaprop import optim
from deltaprop._validation import check_int, check_positive
from deltaprop.errors import ConfigError
from deltaprop.network import Network

Array = NDArray[np.float64]

#: Largest layer (inputs included) and batch that :func:`trace` prints without ``force``.
MAX_NEURONS = 8
MAX_SAMPLES = 4
#: Decimals of the demo problem's weights, inputs and biases: short enough to check by hand.
DEMO_DECIMALS = 2


def check_size(sizes: Sequence[int], m: int, force: bool) -> None:
    """Refuse a network or batch too large to print sensibly, unless ``force``.

    Raises
    ------
    ValueError
        A layer of more than :data:`MAX_NEURONS` neurons or more than :data:`MAX_SAMPLES`
        samples, without ``force``.
    """
    if force:
        return
    big = [n for n in sizes if n > MAX_NEURONS]
    if big:
        raise ConfigError(
            f"a layer of {big[0]} neurons is too large to print (limit {MAX_NEURONS}); "
            "use --force to print it anyway"
        )
    if m > MAX_SAMPLES:
        raise ConfigError(
            f"a batch of {m} samples is too large to print (limit {MAX_SAMPLES}); "
            "use --force to print it anyway"
        )


def demo_problem(
    sizes: Sequence[int] = (2, 3, 2),
    *,
    activation: str = "sigmoid",
    output: str = "sigmoid",
    loss: str = "mse",
    bias: str | None = None,
    bias_init: float | None = None,
    m: int = 2,
    seed: int = 0,
    dropout: float = 0.0,
    batch_norm: bool = False,
) -> tuple[Network, np.ndarray, np.ndarray]:
    """A small float64 network and batch whose numbers can be checked by hand.

    Weights and inputs are drawn from ``numpy.random.default_rng(seed)`` and rounded to
    :data:`DEMO_DECIMALS` decimals. Biases (and a bias unit's weights) are ``bias_init`` if
    given, else drawn and rounded too, so that no bias is a trivial 0. Targets are class
    labels for a cross-entropy loss, one-hot rows of random classes otherwise.

    ``bias``, ``dropout`` and ``batch_norm`` are ``Network``'s: the bias defaults to
    ``learned``, but ``none`` in batch-normalised layers.

    Returns
    -------
    net : Network (float64)
    X : ndarray of shape (m, n_0)
    Y : ndarray of shape (m,) (class indices) or (m, n_L)
    """
    m = check_int("batch", m)
    net = Network(
        list(sizes), activation=activation, output=output, loss=loss, bias=bias,
        bias_init=0.0 if bias_init is None else bias_init, init="glorot_uniform",
        dtype="float64", seed=seed, dropout=dropout, batch_norm=batch_norm,
    )
    rng = np.random.default_rng([seed, 1])  # apart from the network's own generator
    for layer in net.layers:
        np.round(layer.W, DEMO_DECIMALS, out=layer.W)
        if bias_init is None:
            drawn = np.round(rng.uniform(-0.5, 0.5, layer.n_out), DEMO_DECIMALS)
            if layer.b is not None:
                layer.b[...] = drawn
            elif layer.has_unit:
                layer.W[:, -1] = drawn
    X = np.round(rng.uniform(-1.0, 1.0, (m, net.n_inputs)), DEMO_DECIMALS)
    labels = rng.integers(0, net.n_classes, m)
    if net.loss.name == "cross_entropy":
        return net, X, labels
    if net.n_outputs == 1:
        return net, X, labels.astype(np.float64)[:, None]
    return net, X, np.eye(net.n_outputs)[labels]



def _frozen(a: Any) -> Array:
    """A read-only float64 copy: a trace is a snapshot, never a view of a buffer."""
    out = np.array(a, dtype=np.float64)
    out.setflags(write=False)
    return out


def _frozen_or_none(a: Any) -> Array | None:
    return None if a is None else _frozen(a)


def _list(a: Array | None) -> Any:
    """An array as nested lists of Python floats (None stays None): the JSON form."""
    return None if a is None else a.tolist()


# The trace types are frozen snapshots. eq=False: a field-wise == on arrays has no single
# truth value; compare traces through as_dict() or numpy.testing.
@dataclass(frozen=True, eq=False)
class BiasUnitTrace:
    """A ``unit`` layer's bias unit: constant activation 1 feeding the layer through the last
    column of its W, which plays b's part (DESIGN.md §2).

    Attributes
    ----------
    activation : float
        The unit's activation, always 1.0.
    weights : ndarray of shape (n_l,)
        w_k, W's last column, before the step.
    gradient : ndarray of shape (n_l,)
        ∂C/∂w_k = r Σ_samples δ_k · 1: eq. (10) with a_j = 1, which is eq. (14).
    new_weights : ndarray of shape (n_l,)
        After the step: eq. (11) on this column, which is eq. (15).
    """

    activation: float
    weights: Array
    gradient: Array
    new_weights: Array

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly: the same keys, arrays as nested lists."""
        return {
            "activation": self.activation,
            "weights": _list(self.weights),
            "gradient": _list(self.gradient),
            "new_weights": _list(self.new_weights),
        }


@dataclass(frozen=True, eq=False)
class DropoutTrace:
    """Dropout in one hidden layer: the mask and eqs. (2) and (8) with it.

    Attributes
    ----------
    p : float
        The probability of dropping each neuron.
    mask : ndarray of shape (m, n_l)
        m^l: 1 where the neuron was kept for that sample, 0 where it was dropped.
    sigma : ndarray of shape (m, n_l)
        σ(z̃) before the mask; the layer's ``a`` is σ ⊙ m/(1 − p).
    dC_da : ndarray of shape (m, n_l)
        (8) ∂C/∂a^l = (W^{l+1})ᵀ δ^{l+1} per sample.
    dC_da_masked : ndarray of shape (m, n_l)
        (8) ⊙ m/(1 − p): what σ' multiplies; 0 for a dropped neuron.
    """

    p: float
    mask: Array
    sigma: Array
    dC_da: Array
    dC_da_masked: Array

    def as_dict(self) -> dict[str, Any]:
        return {"p": self.p, "mask": _list(self.mask), "sigma": _list(self.sigma),
                "dC_da": _list(self.dC_da), "dC_da_masked": _list(self.dC_da_masked)}


@dataclass(frozen=True, eq=False)
class BatchNormTrace:
    """Batch normalization in one hidden layer: forward, backward and the step.

    Attributes
    ----------
    eps : float
        ε under the root (1e-5).
    mu, var : ndarray of shape (n_l,)
        The batch's μ = (1/m) Σ_x z and σ² = (1/m) Σ_x (z − μ)².
    z_hat : ndarray of shape (m, n_l)
        ẑ = (z − μ)/√(σ² + ε).
    gamma, beta : ndarray of shape (n_l,)
        γ and β before the step.
    z_tilde : ndarray of shape (m, n_l)
        z̃ = γ ẑ + β, what σ reads.
    dC_da : ndarray of shape (m, n_l) or None
        (8) ∂C/∂a^l = (W^{l+1})ᵀ δ^{l+1}; None with dropout (then in :class:`DropoutTrace`).
    dC_dz_tilde : ndarray of shape (m, n_l)
        ∂C/∂z̃ = ∂C/∂a ⊙ σ'(z̃) (after the mask, with dropout).
    dgamma, dbeta : ndarray of shape (n_l,)
        ∂C/∂γ = r Σ_x ∂C/∂z̃ ẑ and ∂C/∂β = r Σ_x ∂C/∂z̃.
    gamma_new, beta_new : ndarray of shape (n_l,)
        After the SGD step.
    """

    eps: float
    mu: Array
    var: Array
    z_hat: Array
    gamma: Array
    beta: Array
    z_tilde: Array
    dC_da: Array | None
    dC_dz_tilde: Array
    dgamma: Array
    dbeta: Array
    gamma_new: Array
    beta_new: Array

    def as_dict(self) -> dict[str, Any]:
        out = {"eps": self.eps, "mu": _list(self.mu), "var": _list(self.var),
               "z_hat": _list(self.z_hat), "gamma": _list(self.gamma),
               "beta": _list(self.beta), "z_tilde": _list(self.z_tilde)}
        if self.dC_da is not None:
            out["dC_da"] = _list(self.dC_da)
        return out | {"dC_dz_tilde": _list(self.dC_dz_tilde), "dgamma": _list(self.dgamma),
                      "dbeta": _list(self.dbeta), "gamma_new": _list(self.gamma_new),
                      "beta_new": _list(self.beta_new)}


@dataclass(frozen=True, eq=False)
class LayerTrace:
    """Every number of one layer l in the traced step.

    Attribute names are the keys of ``deltaprop explain --format json``. Arrays are float64
    and read-only; rows are samples (m of them), or neurons k for W and its gradient.

    Attributes
    ----------
    l : int
        The layer, numbered 1 … L as in the seeds.
    activation : str
        σ's name.
    W : ndarray of shape (n_l, n_{l−1})
        w_kj before the step, without a bias unit's column (that is in ``unit``).
    b : ndarray of shape (n_l,) or None
        b_k before the step; None for bias ``none`` and ``unit``.
    a_prev : ndarray of shape (m, n_{l−1})
        a^{l−1}, the layer's input (x for l = 1).
    z : ndarray of shape (m, n_l)
        (2) z^l = W^l a^{l−1} + b^l.
    a : ndarray of shape (m, n_l)
        (2) a^l = σ(z^l).
    sigma_prime : ndarray of shape (m, n_l) or None
        σ'(z^l); None for softmax, whose derivative is a Jacobian, not elementwise.
    delta : ndarray of shape (m, n_l)
        Per-sample error signals δ^l, by ``delta_equation``.
    delta_equation : {"(9)", "(8)"}
        (9) for the output layer, (8) for the others.
    delta_sum, delta_mean : ndarray of shape (n_l,)
        δ^l summed and averaged over the batch's samples (seed 002).
    dW : ndarray of shape (n_l, n_{l−1})
        (10) ∂C/∂w_kj = r Σ_samples δ_k a_j, without a bias unit's column.
    db : ndarray of shape (n_l,) or None
        (14) ∂C/∂b_k = r Σ_samples δ_k; None where the layer has no b.
    bias_mode : {"learned", "frozen", "none", "unit"}
    bias_applied : bool
        Whether the step moves the bias (learned, unit); a frozen bias's ``db`` is reported
        but not applied.
    unit : BiasUnitTrace or None
        The bias unit of a ``unit`` layer, else None.
    dC_da : ndarray of shape (m, n_L) or None
        ∂C/∂a^L per sample (the general path of eq. (9)); output layer only, else None.
    W_new : ndarray of shape (n_l, n_{l−1})
        (11) w_kj − α ∂C/∂w_kj.
    b_new : ndarray of shape (n_l,) or None
        (15) b_k − α ∂C/∂b_k; equal to ``b`` when frozen.
    dropout : DropoutTrace or None
        The mask and its effect, where the layer dropped neurons.
    batch_norm : BatchNormTrace or None
        Batch normalization's numbers, where the layer has it (``sigma_prime`` is then
        σ'(z̃), ``delta`` δ = ∂C/∂z through the batch statistics).
    """

    l: int
    activation: str
    W: Array
    b: Array | None
    a_prev: Array
    z: Array
    a: Array
    sigma_prime: Array | None
    delta: Array
    delta_equation: str
    delta_sum: Array
    delta_mean: Array
    dW: Array
    db: Array | None
    bias_mode: str
    bias_applied: bool
    unit: BiasUnitTrace | None
    dC_da: Array | None
    W_new: Array
    b_new: Array | None
    dropout: DropoutTrace | None = None
    batch_norm: BatchNormTrace | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: ``bias`` as {mode, applied}; ``unit`` and ``dC_da`` only where set."""
        out: dict[str, Any] = {
            "l": self.l,
            "activation": self.activation,
            "W": _list(self.W),
            "b": _list(self.b),
            "a_prev": _list(self.a_prev),
            "z": _list(self.z),
            "a": _list(self.a),
            "sigma_prime": _list(self.sigma_prime),
            "delta": _list(self.delta),
            "delta_equation": self.delta_equation,
            "delta_sum": _list(self.delta_sum),
            "delta_mean": _list(self.delta_mean),
            "dW": _list(self.dW),
            "db": _list(self.db),
            "bias": {"mode": self.bias_mode, "applied": self.bias_applied},
        }
        if self.unit is not None:
            out["unit"] = self.unit.as_dict()
        if self.dC_da is not None:
            out["dC_da"] = _list(self.dC_da)
        out["W_new"] = _list(self.W_new)
        out["b_new"] = _list(self.b_new)
        if self.dropout is not None:
            out["dropout"] = self.dropout.as_dict()
        if self.batch_norm is not None:
            out["batch_norm"] = self.batch_norm.as_dict()
        return out


@dataclass(frozen=True, eq=False)
class Trace:
    """One forward pass, backward pass and SGD step on one batch, every number recorded.

    Attribute names are the keys of ``deltaprop explain --format json``, which is
    :meth:`as_dict`. Arrays are float64 NumPy arrays, read-only: shapes say what they are
    and NumPy does arithmetic on them; :meth:`as_dict` turns them into nested lists.

    Attributes
    ----------
    config : dict
        :meth:`Network.config` of the traced network (float64).
    lr : float
        α of eqs. (11) and (15).
    reduction : {"mean", "sum"}
    r : float
        1/m for the mean, 1 for the sum over samples.
    m : int
        Samples in the batch.
    X : ndarray of shape (m, n_0)
        The inputs a^0 = x.
    Y : ndarray of shape (m, n_L)
        The targets as rows (class indices one-hot).
    loss : float
        The batch loss C before the step.
    loss_after : float
        C on the same batch after the step.
    shortcut : bool
        Whether δ^L = a − y (a canonical output/loss pair) was used for eq. (9).
    layers : tuple of LayerTrace
        Layers l = 1 … L (``layers[i].l == i + 1``).
    """

    config: dict[str, Any]
    lr: float
    reduction: str
    r: float
    m: int
    X: Array
    Y: Array
    loss: float
    loss_after: float
    shortcut: bool
    layers: tuple[LayerTrace, ...]

    def as_dict(self) -> dict[str, Any]:
        """Every number as JSON-friendly data: what ``deltaprop explain --format json`` prints."""
        return {
            "config": copy.deepcopy(self.config),
            "lr": self.lr,
            "reduction": self.reduction,
            "r": self.r,
            "m": self.m,
            "X": _list(self.X),
            "Y": _list(self.Y),
            "loss": self.loss,
            "loss_after": self.loss_after,
            "shortcut": self.shortcut,
            "layers": [layer.as_dict() for layer in self.layers],
        }


def trace(
    net: Network,
    X: Any,
    Y: Any,
    *,
    lr: float = 0.5,
    reduction: str = "mean",
    force: bool = False,
) -> Trace:
    """One forward pass, backward pass and SGD step, every number recorded.

    Parameters
    ----------
    net : Network
        Not modified: the step is taken on ``net.copy("float64")``.
    X : array-like of shape (m, n_0)
    Y : array-like of shape (m,) (class indices) or (m, n_L)
    lr : float
        α of eqs. (11) and (15); a plain SGD step (no momentum, no weight decay).
    reduction : {"mean", "sum"}
        The batch gradient is the mean (r = 1/m) or sum (r = 1) of per-sample gradients.
    force : bool
        Trace networks and batches beyond :data:`MAX_NEURONS` / :data:`MAX_SAMPLES`.

    Returns
    -------
    Trace
        The step, layer by layer; ``trace(...).as_dict()`` is the explain command's JSON.

    Notes
    -----
    Equations (2), (8)–(11), (14), (15); batched forms in the module docstring. z and a are
    the forward pass :meth:`Network.backprop` ran (``Gradients.Z``, ``Gradients.A``), so the
    numbers shown are the ones δ was computed from.
    """
    lr = check_positive("lr", lr)
    net64 = net.copy("float64")
    X = net64.check_X(X)
    m = X.shape[0]
    check_size(net64.sizes, m, force)
    Y = net64.targets(Y, m)

    masks_state = net64.rng.bit_generator.state  # the same masks again for loss_after
    grads = net64.backprop(X, Y, reduction, dropout=True)
    stepped = net64.copy()
    optim.SGD(lr=lr).step(stepped, grads)  # (11) and (15); frozen biases have no slot
    A_prev = X
    L = len(net64.layers)
    layers = []
    for i, (layer, new) in enumerate(zip(net64.layers, stepped.layers, strict=True)):
        Z, A = grads.Z[i], grads.A[i]  # (2): the forward pass backprop ran
        pre, sigma = Z, A  # what σ read, and σ of it (before a dropout mask)
        if not layer.plain:
            pre = Z if layer.norm is None else _batch_norm_forward(layer.norm, Z)
            sigma = layer.activation(pre)
        sigma_prime = dC_da = None
        if layer.activation.elementwise:
            sigma_prime = layer.activation.prime(pre, sigma, np.empty_like(pre))
        if i == L - 1:
            dC_da = net64.loss.gradient(A, Y, out=np.empty_like(A))
        delta = grads.delta[i]
        unit = None
        if layer.has_unit:
            unit = BiasUnitTrace(
                activation=1.0,
                weights=_frozen(layer.W[:, -1]),
                gradient=_frozen(grads.dW[i][:, -1]),
                new_weights=_frozen(new.W[:, -1]),
            )
        layers.append(LayerTrace(
            l=i + 1,
            activation=layer.activation.name,
            W=_frozen(layer.W_in),
            b=_frozen_or_none(layer.b),
            a_prev=_frozen(A_prev),
            z=_frozen(Z),
            a=_frozen(A),
            sigma_prime=_frozen_or_none(sigma_prime),
            delta=_frozen(delta),
            delta_equation="(9)" if i == L - 1 else "(8)",
            delta_sum=_frozen(delta.sum(axis=0)),
            delta_mean=_frozen(delta.mean(axis=0)),
            dW=_frozen(grads.dW[i][:, : layer.n_in]),
            db=_frozen_or_none(grads.db[i]),
            bias_mode=layer.bias,
            bias_applied=layer.bias in ("learned", "unit"),
            unit=unit,
            dC_da=_frozen_or_none(dC_da),
            W_new=_frozen(new.W_in),
            b_new=_frozen_or_none(new.b),
            **_between(layer, new, grads, i, Z, pre, sigma, sigma_prime, net64),
        ))
        A_prev = A
    return Trace(
        config=net64.config(),
        lr=lr,
        reduction=reduction,
        r=1.0 / m if reduction == "mean" else 1.0,
        m=m,
        X=_frozen(X),
        Y=_frozen(Y),
        loss=float(grads.loss),
        loss_after=_loss_after(stepped, X, Y, reduction, masks_state),
        shortcut=net64.uses_shortcut,
        layers=tuple(layers),
    )


def _loss_after(net: Network, X: Array, Y: Array, reduction: str, masks_state: Any) -> float:
    """C on the same batch after the step, with the same dropout masks (the generator is set
    back to where it was before the traced step drew them)."""
    net.rng.bit_generator.state = masks_state
    return float(net.backprop(X, Y, reduction, dropout=True).loss)


def _batch_norm_forward(norm: Any, Z: Array) -> Array:
    """z̃ = γ (z − μ)/√(σ² + ε) + β with the batch's own μ and σ² (recomputed to be shown)."""
    Z_hat = (Z - Z.mean(axis=0)) / np.sqrt(Z.var(axis=0) + norm.eps)
    return norm.gamma * Z_hat + norm.beta


def _between(layer: Any, new: Any, grads: Any, i: int, Z: Array, pre: Array, sigma: Array,
             sigma_prime: Array | None, net: Network) -> dict[str, Any]:
    """``dropout`` and ``batch_norm`` of a layer's trace (empty for a plain layer).

    ∂C/∂a^l = (W^{l+1})ᵀ δ^{l+1} comes from the layer above's δ, as eq. (8) computes it.
    """
    if layer.plain:
        return {}
    out: dict[str, Any] = {}
    dC_da = grads.delta[i + 1] @ net.layers[i + 1].W_in
    g = dC_da
    mask = grads.masks[i]
    if mask is not None:  # (8) ⊙ m/(1 − p); + 0.0 shows a dropped −0.0 as 0.0
        g = dC_da * mask / (1 - layer.dropout) + 0.0
        out["dropout"] = DropoutTrace(p=layer.dropout, mask=_frozen(mask), sigma=_frozen(sigma),
                                      dC_da=_frozen(dC_da), dC_da_masked=_frozen(g))
    if layer.norm is not None:
        norm = layer.norm
        mu, var = Z.mean(axis=0), Z.var(axis=0)  # σ² with 1/m, as the normalization uses
        out["batch_norm"] = BatchNormTrace(
            eps=norm.eps, mu=_frozen(mu), var=_frozen(var),
            z_hat=_frozen((Z - mu) / np.sqrt(var + norm.eps)), gamma=_frozen(norm.gamma),
            beta=_frozen(norm.beta), z_tilde=_frozen(pre),
            dC_da=None if mask is not None else _frozen(dC_da),
            dC_dz_tilde=_frozen(g * sigma_prime), dgamma=_frozen(grads.dgamma[i]),
            dbeta=_frozen(grads.dbeta[i]), gamma_new=_frozen(new.norm.gamma),
            beta_new=_frozen(new.norm.beta))
    return out


def model_problem(
    model: str, data: str, *, m: int = 2, data_dir: str | None = None
) -> tuple[Network, np.ndarray, np.ndarray]:
    """A saved model's network and its first ``m`` training samples of ``data``, as the
    network sees them: scaled by the model's preprocessing, labels as class indices,
    regression targets standardised as in training.

    Raises
    ------
    DeltapropError
        A model file that does not load, or data whose features do not fit the model.
    """
    from deltaprop import datasets, io

    m = check_int("batch", m)
    loaded = io.load(model)
    dataset = datasets.load(data, data_dir=data_dir, seed=loaded.data_seed, dtype="float64")
    if dataset.n_features != loaded.n_inputs:
        raise ConfigError(
            f"{dataset.name} has {dataset.n_features} features; the model takes "
            f"{loaded.n_inputs}"
        )
    X = loaded.scaler.transform(dataset.X_train[:m], "float64")
    y = dataset.y_train[:m]
    if dataset.class_names is not None and loaded.labels is not None:
        y = np.asarray(dataset.class_names)[y]
    return loaded.network, X, loaded.encode_targets(y)
