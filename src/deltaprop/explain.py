"""One traced step of backprop, as data, for the explain command.

:func:`trace` runs one forward pass, one backward pass (:meth:`Network.backprop`) and one
plain SGD step (:class:`deltaprop.optim.SGD`, momentum 0: eqs. (11) and (15)) on a float64
copy of a network, and returns every intermediate quantity as a JSON-friendly dict, layer
by layer, tagged with seed 000's equation numbers:

    (2)  z^l = W^l a^{l−1} + b^l,  a^l = σ(z^l)
    (9)  δ^L = ∂C/∂a^L ⊙ σ'(z^L)         (or δ^L = a − y for a canonical output/loss pair)
    (8)  δ^l = (W^{l+1})ᵀ δ^{l+1} ⊙ σ'(z^l)
    (10) ∂C/∂w_kj^l = δ_k^l a_j^{l−1}     (14) ∂C/∂b_k^l = δ_k^l
    (11) w_kj^l ← w_kj^l − α ∂C/∂w_kj^l  (15) b_k^l ← b_k^l − α ∂C/∂b_k^l

Per-sample δ rows come first, then their batch sum and mean (seed 002: a batch gradient sums
or averages over *samples*, never over a layer's neurons). A ``frozen`` bias's gradient is
reported with ``"applied": False``; a ``unit`` layer's bias unit (constant activation 1) and
its weights — W's last column — are reported under ``"unit"``.

Layers in the result are numbered as in the seeds (``"l"``: 1 … L); matrices are nested
lists with one row per sample (or per neuron, for W). Sizes are limited (:data:`MAX_NEURONS`,
:data:`MAX_SAMPLES`) so the output stays readable; ``force=True`` lifts the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deltaprop import optim
from deltaprop._validation import check_int, check_positive
from deltaprop.errors import ConfigError
from deltaprop.network import Network

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
    bias: str = "learned",
    bias_init: float | None = None,
    m: int = 2,
    seed: int = 0,
) -> tuple[Network, np.ndarray, np.ndarray]:
    """A small float64 network and batch whose numbers can be checked by hand.

    Weights and inputs are drawn from ``numpy.random.default_rng(seed)`` and rounded to
    :data:`DEMO_DECIMALS` decimals. Biases (and a bias unit's weights) are ``bias_init`` if
    given, else drawn and rounded too, so that no bias is a trivial 0. Targets are class
    labels for a cross-entropy loss, one-hot rows of random classes otherwise.

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
        dtype="float64", seed=seed,
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


def _list(a: np.ndarray | None) -> Any:
    return None if a is None else np.asarray(a, dtype=np.float64).tolist()


def trace(
    net: Network,
    X: Any,
    Y: Any,
    *,
    lr: float = 0.5,
    reduction: str = "mean",
    force: bool = False,
) -> dict[str, Any]:
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
    dict
        ``config``, ``lr``, ``reduction``, ``r``, ``m``, ``X``, ``Y`` (targets as rows),
        ``loss``, ``loss_after`` (same batch, after the step), ``shortcut`` (δ^L = a − y
        used) and ``layers``: per layer l, ``W``, ``b``, ``a_prev``, ``z``, ``a``,
        ``sigma_prime`` (None for softmax), ``dC_da`` (output layer, general path),
        ``delta`` (per-sample rows), ``delta_sum``, ``delta_mean``, ``dW``, ``db``,
        ``W_new``, ``b_new``, ``bias`` {mode, applied}, and ``unit`` for a bias unit.

    Notes
    -----
    Equations (2), (8)–(11), (14), (15); batched forms in the module docstring.
    """
    lr = check_positive("lr", lr)
    net64 = net.copy("float64")
    X = net64.check_X(X)
    m = X.shape[0]
    check_size(net64.sizes, m, force)
    Y = net64.targets(Y, m)

    grads = net64.backprop(X, Y, reduction)
    r = 1.0 / m if reduction == "mean" else 1.0
    A_prev = X
    layers: list[dict[str, Any]] = []
    L = len(net64.layers)
    for i, layer in enumerate(net64.layers):
        Z = A_prev @ layer.W_in.T  # (2), recomputed here only to be shown
        if layer.has_unit:
            Z = Z + layer.W[:, -1]
        elif layer.b is not None:
            Z = Z + layer.b
        A = layer.activation(Z)
        sigma_prime = None
        if layer.activation.elementwise:
            sigma_prime = layer.activation.prime(Z, A, np.empty_like(Z))
        delta = np.array(grads.delta[i])
        entry: dict[str, Any] = {
            "l": i + 1,
            "activation": layer.activation.name,
            "W": _list(layer.W_in),
            "b": _list(layer.b),
            "a_prev": _list(A_prev),
            "z": _list(Z),
            "a": _list(A),
            "sigma_prime": _list(sigma_prime),
            "delta": _list(delta),
            "delta_equation": "(9)" if i == L - 1 else "(8)",
            "delta_sum": _list(delta.sum(axis=0)),
            "delta_mean": _list(delta.mean(axis=0)),
            "dW": _list(grads.dW[i][:, : layer.n_in]),
            "db": _list(grads.db[i]),
            "bias": {"mode": layer.bias, "applied": layer.bias in ("learned", "unit")},
        }
        if layer.has_unit:
            entry["unit"] = {
                "activation": 1.0,
                "weights": _list(layer.W[:, -1]),
                "gradient": _list(grads.dW[i][:, -1]),
            }
        if i == L - 1:
            dC_da = np.empty_like(A)
            net64.loss.gradient(A, Y, out=dC_da)
            entry["dC_da"] = _list(dC_da)
        layers.append(entry)
        A_prev = A

    optim.SGD(lr=lr).step(net64, grads)  # (11) and (15); frozen biases have no slot
    for entry, layer in zip(layers, net64.layers, strict=True):
        entry["W_new"] = _list(layer.W_in)
        entry["b_new"] = _list(layer.b)
        if layer.has_unit:
            entry["unit"]["new_weights"] = _list(layer.W[:, -1])
    loss_after = net64.backprop(X, Y, reduction).loss
    return {
        "config": net64.config(),
        "lr": lr,
        "reduction": reduction,
        "r": r,
        "m": m,
        "X": _list(X),
        "Y": _list(Y),
        "loss": grads.loss,
        "loss_after": loss_after,
        "shortcut": net64.uses_shortcut,
        "layers": layers,
    }


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
