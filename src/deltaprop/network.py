"""Network: ordered layers, forward pass, backward pass, predict.

``net.layers[i]`` is the seeds' layer l = i + 1 (a^0 = x is the input). The backward pass,
:meth:`Network.backprop`, is eqs. (1)–(2) forward, then (9) for the output layer, then for
l = L … 1: (10) and (14) for the layer's gradients and (8) for the layer below. Batches are
rows; Δ^l's rows are the per-sample error signals δ^l, and the batch gradient is their sum
(``reduction="sum"``) or mean (``"mean"``) over samples — seed 002's answer. With sample
weights s it is Σ_x s_x ∂C_x/∂w, divided by Σ_x s_x for the mean (DESIGN.md §3).
X may be a ``scipy.sparse`` matrix: it stays sparse, the first layer multiplies it as it is.

A hidden layer may normalise z over the batch (batch norm) and drop neurons (dropout)
between z and a (``batchnorm``, ``dropout``); with either, its forward step and the (8) that
reaches it run :meth:`Network._forward_between` and :meth:`Network._propagate_between`, where
each equation is written out. Plain layers never enter them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from deltaprop import activations, initializers, losses, metrics
from deltaprop import dropout as dropout_module
from deltaprop._validation import (
    as_matrix,
    check_choice,
    check_fraction,
    check_int,
    is_scipy_sparse,
    lookup,
    numeric_array,
)
from deltaprop.batchnorm import BatchNorm
from deltaprop.errors import ConfigError, ConfigTypeError
from deltaprop.layers import BIAS_MODES, Dense, is_sparse
from deltaprop.workspace import Workspace

Array = NDArray[np.floating]

DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
#: Rows per block of the forward pass at inference (``predict``, ``evaluate``): big enough
#: for full-speed matrix products, small enough that activations stay in a few MB.
INFERENCE_BLOCK = 4096
REDUCTIONS = ("mean", "sum")


@dataclass
class Gradients:
    """What one backward pass computed; nothing in the network has changed.

    Attributes
    ----------
    delta : list of ndarray of shape (m, n_l)
        Per-sample error signals δ^l = ∂C_x/∂z^l, one row per sample (eq. 6).
    dW : list of ndarray shaped like each layer's W
        ∂C/∂W^l reduced over the batch (eq. 10).
    db : list of (ndarray of shape (n_l,) or None)
        ∂C/∂b^l reduced over the batch (eq. 14); None where the layer has no b.
        For a ``frozen`` bias this is the gradient that is *not* applied.
    loss : float
        The batch loss, mean or sum of the per-sample losses.
    reduction : {"mean", "sum"}
    Z, A : list of ndarray of shape (m, n_l), or None
        The forward pass the gradients came from: each layer's weighted input z and
        activation a = σ(z) (eq. 2), per sample (filled by :meth:`Network.backprop`).
    masks : list of (ndarray of shape (m, n_l) or None), or None
        The 0/1 dropout mask each layer's activations were multiplied by; None where no
        dropout was applied (always for the output layer, and for every layer unless
        ``backprop(..., dropout=True)``).
    dgamma, dbeta : list of (ndarray of shape (n_l,) or None), or None
        ∂C/∂γ^l and ∂C/∂β^l of a batch-normalised layer, reduced over the batch; None
        elsewhere.
    """

    delta: list[Array]
    dW: list[Array]
    db: list[Array | None]
    loss: float
    reduction: str
    Z: list[Array] | None = None
    A: list[Array] | None = None
    masks: list[Array | None] | None = None
    dgamma: list[Array | None] | None = None
    dbeta: list[Array | None] | None = None


@dataclass(frozen=True)
class Slot:
    """One trainable parameter array and its gradient, as an optimizer sees it.

    ``weights`` indexes the part of ``value`` that is weights, not bias (weight decay
    applies there by default): ``...`` for a whole W, W's columns but the last for a bias
    unit's W, None for a b. Frozen biases have no slot: no optimizer can move them.
    """

    name: str
    value: Array
    grad: Array
    weights: Any


def row_factors(weights: Array, reduction: str, out: Array) -> Array:
    """The per-row r of eqs. (10), (14) for sample weights s: r_x = s_x / Σs or s_x.

    ``weights`` and ``out`` are (m, 1) columns (``Workspace.weights``, ``.r_rows``). For the
    mean, a batch whose weights are all 0 gets r = 0: its gradient and loss are 0 (the
    ratio 0/0 has no better value). Returns ``out``.
    """
    if reduction == "sum":
        np.copyto(out, weights)
        return out
    total = float(weights.sum())
    return np.multiply(weights, 1.0 / total if total > 0 else 0.0, out=out)


def gradients_of(ws: Workspace, loss: float, reduction: str, dropout: bool) -> Gradients:
    """The :class:`Gradients` view of a workspace after :meth:`Network.backprop_into`."""
    masks = ws.masks if dropout else [None] * len(ws.masks)
    return Gradients(ws.delta, ws.nabla_W, ws.nabla_b, loss, reduction, ws.Z, ws.A,
                     masks=list(masks), dgamma=ws.nabla_gamma, dbeta=ws.nabla_beta)


def _per_layer(name: str, value: Any, n_layers: int, per: str = "layer") -> list[Any]:
    """One entry per layer from a single value or a list of ``n_layers`` values."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_layers:
            raise ConfigError(f"`{name}` needs {n_layers} entries, one per {per}; got {len(value)}")
        return list(value)
    return [value] * n_layers


class Network:
    """A multilayer perceptron trained by backpropagation (DESIGN.md §3).

    Parameters
    ----------
    sizes : sequence of int
        [n_0, n_1, ..., n_L]: inputs, then each layer's neuron count.
    activation : str or list of str
        σ of the hidden layers: one name, one per hidden layer, or one per layer whose last
        entry repeats ``output``.
    output : str
        σ of the output layer.
    loss : {"cross_entropy", "binary_cross_entropy", "mse", "poisson"}
    bias : str or list of str, optional
        ``learned``, ``frozen``, ``none`` or ``unit``, for all layers or one per layer.
        Default: ``learned``, but ``none`` for a layer with batch norm (whose β shifts z
        instead: a bias before the normalization would be subtracted again with μ).
    bias_init : float
        The first value of every bias (and of a bias unit's weights).
    init : str
        Weight initializer name (see ``initializers``).
    dtype : {"float32", "float64"}
    seed : int
        Seeds the ``numpy.random.Generator`` used for the weights and, in ``fit``,
        shuffling and dropout masks.
    dropout : float or list of float
        p in [0, 1): the probability of dropping a hidden neuron during training (inverted
        dropout, ``deltaprop.dropout``), for every hidden layer or one per hidden layer.
        The output layer is never dropped; inference never drops.
    batch_norm : bool or list of bool
        Batch normalization between z and σ (``deltaprop.batchnorm``) in every hidden
        layer, or per hidden layer.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str | Sequence[str] = "relu",
        output: str = "softmax",
        loss: str = "cross_entropy",
        bias: str | Sequence[str] | None = None,
        bias_init: float = 0.0,
        init: str = "he_normal",
        dtype: str = "float32",
        seed: int = 0,
        dropout: float | Sequence[float] = 0.0,
        batch_norm: bool | Sequence[bool] = False,
    ) -> None:
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
            raise ConfigTypeError(f"`sizes` must be a list of layer sizes; got {sizes!r}")
        if len(sizes) < 2:
            raise ConfigError(f"`sizes` needs at least 2 entries [n_0, n_L]; got {list(sizes)}")
        self.sizes = [check_int(f"sizes[{k}]", n) for k, n in enumerate(sizes)]
        n_layers = len(self.sizes) - 1
        try:
            # np.dtype(None) is float64: None must not pass for a dtype name
            dtype_name = np.dtype(dtype).name if dtype is not None else dtype
        except TypeError:
            dtype_name = str(dtype)
        self.dtype = lookup(DTYPES, dtype_name, "dtype")
        self.loss = losses.get(loss)
        self.output = activations.get(output)
        if isinstance(activation, (list, tuple)) and len(activation) == n_layers:
            # One entry per layer (DESIGN.md §3): the last one is the output's σ.
            if activation[-1] != self.output.name:
                raise ConfigError(
                    f"`activation`'s last entry {activation[-1]!r} is the output layer's; "
                    f"it must equal `output` {self.output.name!r} (or give one per hidden layer)"
                )
            activation = list(activation[:-1])
        hidden_names = _per_layer("activation", activation, n_layers - 1, "hidden layer")
        hidden = [activations.get(a) for a in hidden_names]
        for k, a in enumerate(hidden):
            if a.output_only:
                raise ConfigError(
                    f"`activation` {a.name!r} is allowed only as the output "
                    f"(layer {k + 1} is hidden)"
                )
        if self.loss.outputs is not None and self.output.name not in self.loss.outputs:
            raise ConfigError(
                f"`output` {self.output.name!r} does not fit loss {self.loss.name!r}; "
                f"use output={self.loss.outputs[0]!r}"
            )
        rates = [check_fraction(f"dropout[{k}]" if isinstance(dropout, (list, tuple))
                                else "dropout", p)
                 for k, p in enumerate(_per_layer("dropout", dropout, n_layers - 1,
                                                  "hidden layer"))]
        normed = _per_layer("batch_norm", batch_norm, n_layers - 1, "hidden layer")
        for k, flag in enumerate(normed):
            if not isinstance(flag, (bool, np.bool_)):
                raise ConfigTypeError(f"`batch_norm` must be True/False (or one per hidden "
                                      f"layer); got {flag!r} for layer {k + 1}")
        normed = [bool(flag) for flag in normed] + [False]  # never the output layer
        rates.append(0.0)
        if bias is None:  # a bias right before batch norm is subtracted again with μ
            bias = ["none" if flag else "learned" for flag in normed]
        modes = [check_choice("bias", b, BIAS_MODES) for b in _per_layer("bias", bias, n_layers)]
        try:
            self.bias_init = float(bias_init)
        except (TypeError, ValueError):
            raise ConfigTypeError(f"`bias_init` must be a number; got {bias_init!r}") from None
        if not np.isfinite(self.bias_init):
            raise ConfigError(f"`bias_init` must be finite; got {bias_init!r}")
        init_W = initializers.get(init)
        self.init = init
        self.seed = check_int("seed", seed, minimum=0)
        self.rng = np.random.default_rng(self.seed)

        self.layers: list[Dense] = []
        for i, mode in enumerate(modes):
            n_in, n_out = self.sizes[i], self.sizes[i + 1]
            W = init_W(self.rng, n_out, n_in)
            if mode == "unit":  # the bias unit's weights start where a bias would
                W = np.hstack([W, np.full((n_out, 1), self.bias_init)])
            b = np.full(n_out, self.bias_init) if mode in ("learned", "frozen") else None
            sigma = self.output if i == n_layers - 1 else hidden[i]
            self.layers.append(
                Dense(
                    np.asfortranarray(W, dtype=self.dtype),  # column-major: see layers.Dense
                    None if b is None else b.astype(self.dtype),
                    sigma,
                    mode,
                    dropout=rates[i],
                    norm=BatchNorm(n_out, self.dtype) if normed[i] else None,
                )
            )

    # ----------------------------------------------------------------- description
    @property
    def n_inputs(self) -> int:
        return self.sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.sizes[-1]

    @property
    def is_classifier(self) -> bool:
        """Softmax/sigmoid output with a cross-entropy loss: outputs are class probabilities."""
        return self.loss.name in ("cross_entropy", "binary_cross_entropy")

    @property
    def n_classes(self) -> int:
        """Classes a classifier tells apart (a single sigmoid output separates two)."""
        return 2 if self.is_classifier and self.n_outputs == 1 else self.n_outputs

    @property
    def task(self) -> str:
        """What the outputs mean, from output and loss alone (never from the data):

        ``"classification"``: softmax + cross-entropy, or one sigmoid output with binary
        cross-entropy (two classes); ``"multilabel"``: k ≥ 2 sigmoid outputs with binary
        cross-entropy, one independent 0/1 label each; ``"regression"``: anything else.
        """
        if self.loss.name == "binary_cross_entropy" and self.n_outputs > 1:
            return "multilabel"
        return "classification" if self.is_classifier else "regression"

    @property
    def uses_shortcut(self) -> bool:
        """True when output and loss are a canonical pair, so δ^L = a − y."""
        return self.output.name == self.loss.canonical_output

    @property
    def has_dropout(self) -> bool:
        """True when some hidden layer drops neurons in training (p > 0)."""
        return any(layer.dropout > 0 for layer in self.layers)

    @property
    def has_batch_norm(self) -> bool:
        """True when some hidden layer normalises z over the batch."""
        return any(layer.norm is not None for layer in self.layers)

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, as JSON-friendly values.

        ``dropout`` and ``batch_norm`` (one entry per hidden layer) appear only when some
        layer uses them, so a plain network's configuration reads as it always has.
        """
        config = {
            "sizes": list(self.sizes),
            "activation": [layer.activation.name for layer in self.layers[:-1]],
            "output": self.output.name,
            "loss": self.loss.name,
            "bias": [layer.bias for layer in self.layers],
            "bias_init": self.bias_init,
            "init": self.init,
            "dtype": self.dtype.name,
            "seed": self.seed,
        }
        if self.has_dropout:
            config["dropout"] = [layer.dropout for layer in self.layers[:-1]]
        if self.has_batch_norm:
            config["batch_norm"] = [layer.norm is not None for layer in self.layers[:-1]]
        return config

    def parameters(self) -> list[tuple[str, Array]]:
        """Every parameter array, in the fixed order W^1, b^1, (γ^1, β^1,) W^2, …; biases as
        they exist, batch norm's γ and β where a layer has it."""
        out: list[tuple[str, Array]] = []
        for i, layer in enumerate(self.layers):
            out.append((f"layers.{i}.W", layer.W))
            if layer.b is not None:
                out.append((f"layers.{i}.b", layer.b))
            if layer.norm is not None:
                out.append((f"layers.{i}.gamma", layer.norm.gamma))
                out.append((f"layers.{i}.beta", layer.norm.beta))
        return out

    def buffers(self) -> list[tuple[str, Array]]:
        """Arrays training changes that are not parameters: batch norm's running μ and σ²."""
        out: list[tuple[str, Array]] = []
        for i, layer in enumerate(self.layers):
            if layer.norm is not None:
                out.append((f"layers.{i}.running_mean", layer.norm.running_mean))
                out.append((f"layers.{i}.running_var", layer.norm.running_var))
        return out

    def state_arrays(self) -> list[Array]:
        """:meth:`parameters` then :meth:`buffers`: everything a snapshot must keep to give
        back the same network (early stopping, the last finite weights)."""
        return [a for _, a in (*self.parameters(), *self.buffers())]

    def n_parameters(self) -> int:
        return sum(p.size for _, p in self.parameters())

    def trainable_names(self) -> list[str]:
        """Names of the arrays an optimizer moves, in slot order (frozen biases are not)."""
        return [slot.name for slot in self.slots(None)]

    def slots(self, grads: Gradients | None) -> list[Slot]:
        """The trainable parameters with their gradients, in a fixed order (for optimizers)."""
        out: list[Slot] = []
        for i, layer in enumerate(self.layers):
            weights = (slice(None), slice(0, layer.n_in)) if layer.has_unit else ...
            dW = None if grads is None else grads.dW[i]
            out.append(Slot(f"layers.{i}.W", layer.W, dW, weights))
            if layer.bias == "learned":  # frozen biases are never handed to an optimizer
                db = None if grads is None else grads.db[i]
                out.append(Slot(f"layers.{i}.b", layer.b, db, None))
            if layer.norm is not None:  # γ and β: like biases, no weight decay by default
                dgamma = None if grads is None else grads.dgamma[i]
                dbeta = None if grads is None else grads.dbeta[i]
                out.append(Slot(f"layers.{i}.gamma", layer.norm.gamma, dgamma, None))
                out.append(Slot(f"layers.{i}.beta", layer.norm.beta, dbeta, None))
        return out

    def copy(self, dtype: str | None = None) -> Network:
        """An independent copy (in ``dtype`` if given): same parameters, same rng state."""
        other = object.__new__(Network)
        shared = ("layers", "rng", "loss", "output")  # rebuilt below, or stateless registry objects
        other.__dict__.update(self.__dict__)
        other.__dict__.update(copy.deepcopy({k: v for k, v in self.__dict__.items()
                                             if k not in shared}))
        other.dtype = lookup(DTYPES, dtype, "dtype") if dtype is not None else self.dtype
        other.rng = np.random.default_rng()
        other.rng.bit_generator.state = self.rng.bit_generator.state
        other.layers = [
            Dense(
                layer.W.astype(other.dtype, copy=True),
                None if layer.b is None else layer.b.astype(other.dtype, copy=True),
                layer.activation,
                layer.bias,
                dropout=layer.dropout,
                norm=None if layer.norm is None else layer.norm.copy(other.dtype),
            )
            for layer in self.layers
        ]
        return other

    def __repr__(self) -> str:
        modes = sorted({layer.bias for layer in self.layers})
        return (
            f"Network({self.sizes}, output={self.output.name!r}, loss={self.loss.name!r}, "
            f"bias={modes[0] if len(modes) == 1 else [la.bias for la in self.layers]!r}, "
            f"dtype={self.dtype.name!r}"
            + (f", dropout={[la.dropout for la in self.layers[:-1]]}" if self.has_dropout else "")
            + (", batch_norm=True" if self.has_batch_norm else "")
            + ")"
        )

    # ----------------------------------------------------------------- inputs
    def check_X(self, X: Any, name: str = "X") -> Array:
        """X as a finite (m, n_0) array of the network's dtype, or a clear error.

        A ``scipy.sparse`` X comes back as a CSR matrix of the network's dtype (never dense).
        """
        if is_scipy_sparse(X) and self.layers[0].has_unit:
            raise ConfigError(
                f"`{name}` is sparse, and layer 1 has a bias unit (bias='unit'), whose column "
                "of ones a sparse X does not carry; use bias='learned' for layer 1"
            )
        return as_matrix(name, X, self.n_inputs, self.dtype)

    def check_sample_weight(self, sample_weight: Any, m: int, name: str = "sample_weight"
                            ) -> Array | None:
        """Sample weights as a (m,) array of the network's dtype (finite, ≥ 0), or None."""
        if sample_weight is None:
            return None
        s = numeric_array(name, sample_weight)
        if s.shape != (m,):
            raise ConfigError(f"`{name}` must have shape ({m},), one weight per sample; "
                              f"got {s.shape}")
        if not np.isfinite(s).all():
            raise ConfigError(f"`{name}` contains NaN or inf")
        if (s < 0).any():
            raise ConfigError(f"`{name}` must be >= 0; got {float(s[s < 0][0]):g}")
        return np.ascontiguousarray(s, dtype=self.dtype)

    def targets(self, Y: Any, m: int, name: str = "Y") -> Array:
        """Y as an (m, n_L) target matrix: one-hot rows from integer class indices.

        Accepts class indices of shape (m,) for classifiers (0/1 for one sigmoid output),
        or an (m, n_L) matrix (one-hot or probabilities; regression targets). For a single
        output, shape (m,) is taken as one column.
        """
        try:
            Y = np.asarray(Y)
        except (TypeError, ValueError) as e:
            raise ConfigTypeError(f"`{name}` must be an array of numbers; {e}") from None
        if Y.dtype.kind not in "biuf":
            hint = (
                "; a Network trains on class indices 0..n_L−1 (deltaprop.Model fits your own "
                "labels)" if self.is_classifier else ""
            )
            raise ConfigTypeError(f"`{name}` must hold numbers; got dtype {Y.dtype}{hint}")
        if Y.shape[:1] != (m,):
            raise ConfigError(f"`{name}` has {Y.shape[0] if Y.ndim else 0} rows; X has {m}")
        if not np.isfinite(Y).all():
            raise ConfigError(f"`{name}` contains NaN or inf")
        n_L = self.n_outputs
        if Y.ndim == 1 and self.loss.name == "cross_entropy":
            if Y.dtype.kind == "f" and not np.array_equal(Y, np.round(Y)):
                raise ConfigError(f"`{name}` class labels must be integers 0..{n_L - 1}")
            bad = Y[(Y < 0) | (Y >= n_L)]  # before the cast, which would wrap a huge label
            if bad.size:
                raise ConfigError(
                    f"`{name}` has label {bad[0]:.0f} outside the {n_L} classes 0..{n_L - 1}"
                )
            labels = Y.astype(np.int64)
            onehot = np.zeros((m, n_L), dtype=self.dtype)
            onehot[np.arange(m), labels] = 1
            return onehot
        if Y.ndim == 1 and n_L == 1:
            Y = Y[:, None]
        if Y.shape != (m, n_L):
            one_d = f"({m},) or " if self.loss.name == "cross_entropy" or n_L == 1 else ""
            raise ConfigError(f"`{name}` must have shape {one_d}({m}, {n_L}); got {Y.shape}")
        if self.loss.name == "poisson" and (Y < 0).any():
            raise ConfigError(f"`{name}` targets for poisson are counts or rates, >= 0; "
                              f"got {Y[Y < 0][0]:g}")
        if self.loss.name == "binary_cross_entropy" and ((Y < 0) | (Y > 1)).any():
            raise ConfigError(f"`{name}` targets for binary_cross_entropy must lie in [0, 1]")
        if self.loss.name == "cross_entropy" and (
            (Y < 0).any() or not np.allclose(Y.sum(axis=1), 1, atol=1e-6)
        ):
            # δ^L = a − y is ∂C/∂z only when each target row is a distribution (Σ y = 1).
            raise ConfigError(
                f"`{name}` rows for cross_entropy must be one-hot or probabilities summing to 1"
            )
        return np.ascontiguousarray(Y, dtype=self.dtype)

    # ----------------------------------------------------------------- the equations
    def workspace(self, m: int, *, backward: bool = True, sparse: bool = False) -> Workspace:
        """Buffers for batches of up to ``m`` samples in this network's dtype.

        ``backward=False``: only the forward pass's inputs, Z and A (for inference).
        ``sparse=True``: the batches' X are CSR matrices, set as ``ws.inputs`` (no dense buffer).
        """
        return Workspace(self.layers, m, self.dtype, backward=backward, sparse=sparse)

    def forward_into(
        self, ws: Workspace, *, output_activation: bool = True, training: bool = False,
        dropout: bool = False,
    ) -> None:
        """Eqs. (1)–(2) for every layer, over the batch in ``ws.inputs``, into ``ws.Z``, ``ws.A``.

        The one forward pass: training (:meth:`backprop_into`), inference (:meth:`forward`)
        and ``explain`` all run it. ``output_activation=False`` leaves a^L to the caller (the
        fused softmax + cross-entropy computes it with the loss). ``training``: batch norm
        uses the batch's statistics (needs a backward workspace), else the running ones;
        ``dropout``: draw masks and drop (training only).
        """
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i == last and not output_activation:
                layer.weighted_input(ws.A_in(i), ws.Z[i])  # (2) z^L alone
            elif layer.plain:
                layer.forward(ws.A_in(i), ws.Z[i], ws.A[i])  # (2) z = W a + b, a = σ(z)
            else:
                self._forward_between(ws, i, training, dropout)

    def _forward_between(self, ws: Workspace, i: int, training: bool, dropout: bool) -> None:
        """Eq. (2) for a layer with batch norm and/or dropout between z and a.

        Notes
        -----
        Equations: (2) z = W a^{l−1} + b;  (BN) ẑ = (z − μ)/√(σ² + ε), z̃ = γ ẑ + β — the
        batch's μ, σ² in training, the running ones otherwise; (2) a = σ(z̃);  (dropout)
        a = σ(z̃) ⊙ m/(1 − p), a fresh mask m from the network's generator.
        """
        layer = self.layers[i]
        Z = ws.Z[i]
        layer.weighted_input(ws.A_in(i), Z)  # (2) z = W a + b
        pre = Z  # what σ reads: z, or z̃ after batch norm
        if layer.norm is not None:
            pre = ws.Z_tilde[i]
            if training:  # (BN) ẑ = (z − μ_B)/√(σ²_B + ε), z̃ = γ ẑ + β
                layer.norm.normalize_batch(Z, ws.ones, ws.mu[i], ws.var[i], ws.inv_std[i],
                                           ws.Z_hat[i], pre)
            else:  # (BN) with the running μ and σ²
                layer.norm.normalize_running(Z, ws.inv_std[i], pre)
        if dropout and layer.dropout > 0:
            p, mask = layer.dropout, ws.masks[i]
            layer.activation.f(pre, ws.sigma_Z[i])  # (2) σ(z̃)
            dropout_module.draw_mask(self.rng, p, mask)  # m: 1 with probability 1 − p
            dropout_module.apply(ws.sigma_Z[i], mask, p, ws.A[i])  # a = σ(z̃) ⊙ m/(1 − p)
        else:
            layer.activation.f(pre, ws.A[i])  # (2) a = σ(z̃)

    def _propagate_between(self, ws: Workspace, i: int, r: float | Array,
                           dropout: bool) -> float | Array:
        """Eq. (8) into layer i (0-based) when it has batch norm and/or dropout; returns the r
        of the layers below.

        Notes
        -----
        Equations: g = Δ^{l+1} W^{l+1} (∂C/∂a^l);  (dropout) g ⊙ m/(1 − p);
        (8) g ⊙ σ'(z̃) = ∂C/∂z̃;  (BN) ∂C/∂β = r Σ_x g, ∂C/∂γ = r Σ_x g ẑ,
        δ = γ/√(σ² + ε) ⊙ (g − mean_x g − ẑ ⊙ mean_x(g ẑ)). Without batch norm z̃ is z and
        the last step is absent; without dropout the mask step is.

        With sample weights r is a column, one factor r_x per row, which cannot wait until
        eq. (10) below batch norm: δ mixes the rows there. So g's rows are weighted first
        (g ← r g, the gradient of Σ_x r_x C_x), batch norm takes r = 1, and so do the layers
        below, whose δ now carries the weights (the returned r is 1).
        """
        layer, above = self.layers[i], self.layers[i + 1]
        G = ws.delta[i]
        np.matmul(ws.delta[i + 1], above.W_in, out=G)  # (8) Σ_m δ_m w_mk = ∂C/∂a
        sigma = ws.A[i]  # σ(z̃), which σ' may read
        if dropout and layer.dropout > 0:
            mask = ws.masks[i]
            G *= mask  # (8) ⊙ m
            G *= 1.0 / (1.0 - layer.dropout)  # (8) / (1 − p)
            sigma = ws.sigma_Z[i]
        pre = ws.Z[i] if layer.norm is None else ws.Z_tilde[i]
        layer.activation.prime(pre, sigma, out=ws.sigma_prime[i])  # σ'(z̃)
        G *= ws.sigma_prime[i]  # (8) ⊙ σ'(z̃): ∂C/∂z̃ (δ itself without batch norm)
        if layer.norm is None:
            return r
        if isinstance(r, np.ndarray):  # sample weights: weight the rows before they mix
            G *= r
            r = 1.0
        # (BN) δ = ∂C/∂z through the batch's μ and σ²
        layer.norm.backward(G, ws.Z_hat[i], ws.inv_std[i], r, ws.ones, ws.nabla_gamma[i],
                            ws.nabla_beta[i], ws.sigma_prime[i], ws.bn_row[i])
        return r

    def track_batch_statistics(self, ws: Workspace) -> None:
        """Fold the last training batch's μ, σ² (in ``ws``) into batch norm's running ones."""
        for i, layer in enumerate(self.layers):
            if layer.norm is not None:
                layer.norm.track(ws.mu[i], ws.var[i], ws.m, ws.bn_row[i])

    def backprop_into(
        self, ws: Workspace, r: float | Array, shortcut: bool = True, *, dropout: bool = False
    ) -> float:
        """Forward and backward pass over the batch in ``ws.inputs`` / ``ws.targets``.

        Fills ``ws.Z``, ``ws.A``, ``ws.delta``, ``ws.nabla_W``, ``ws.nabla_b`` (and batch
        norm's ∂C/∂γ, ∂C/∂β, dropout's masks) and returns the batch loss; allocates no
        per-batch arrays but the loss's own few. ``r`` is 1/m for the mean, 1 for the sum
        over samples, or with sample weights the column ``ws.r_rows`` of per-row factors
        r_x = s_x/Σs or s_x (:func:`row_factors`). ``shortcut=False`` takes eq. (9)'s
        general path even for a canonical output/loss pair. Batch norm uses the batch's
        statistics (training mode); the running ones are left alone
        (:meth:`track_batch_statistics` folds them in). ``dropout``: draw masks and drop, as
        training does. It is :meth:`loss_into` and then :meth:`backward_into`.
        """
        loss = self.loss_into(ws, r, shortcut, dropout=dropout)  # (1)–(2), C, (9)
        self.backward_into(ws, r, dropout=dropout)  # (10), (14), (8) for l = L … 1
        return loss

    def loss_into(
        self, ws: Workspace, r: float | Array, shortcut: bool = True, *, dropout: bool = False
    ) -> float:
        """The forward pass, the batch loss and δ^L: all of a step that comes before the
        first gradient (eqs. 1–2 and 9). Returns the loss; fills ``ws.Z``, ``ws.A`` and
        ``ws.delta[-1]``. ``r``, ``shortcut`` and ``dropout`` as for :meth:`backprop_into`."""
        if ws.m < 2 and self.has_batch_norm:
            raise ConfigError("batch normalization needs a batch of at least 2 samples "
                              "(one sample has no variance); got 1")
        # softmax + cross-entropy share the row max and exponentials (losses module)
        fused = shortcut and self.output.name == "softmax" and self.loss.name == "cross_entropy"
        self.forward_into(ws, output_activation=not fused, training=True,
                          dropout=dropout)  # (1)–(2), keeping Z and A
        Z_L, A_L, Y = ws.Z[-1], ws.A[-1], ws.targets
        if fused:
            C = losses.softmax_cross_entropy(Z_L, Y, A_L, ws.lse, ws.row)  # a^L, C per sample
        else:
            C = self.loss.per_sample(Z_L, A_L, Y)
        loss = losses.batch_loss(C, r)  # r Σ_x C_x, or Σ_x r_x C_x
        if shortcut and self.uses_shortcut:
            losses.delta_shortcut(A_L, Y, out=ws.delta[-1])  # (9) δ^L = a − y
        else:  # (9) δ^L = ∂C/∂a ⊙ σ'(z^L)
            self.loss.gradient(A_L, Y, out=ws.grad_A)
            self.output.vjp(Z_L, A_L, ws.grad_A, out=ws.delta[-1])
        return loss

    def backward_into(self, ws: Workspace, r: float | Array, *, dropout: bool = False) -> None:
        """Eqs. (10), (14) and (8) for l = L … 1, from δ^L in ``ws.delta[-1]`` (after
        :meth:`loss_into`), into ``ws.nabla_W``, ``ws.nabla_b`` and ``ws.delta`` (and batch
        norm's ∂C/∂γ, ∂C/∂β); ``dropout`` as the forward pass had it."""
        layers = self.layers
        for i in reversed(range(len(layers))):  # l = L … 1
            layers[i].gradients(  # (10) ∂C/∂W = δ aᵀ, (14) ∂C/∂b = δ
                ws.delta[i], ws.A_in(i), r, ws.nabla_W[i], ws.nabla_b[i], ws.ones,
                ws.r_delta[i],
            )
            if i > 0 and not layers[i - 1].plain:  # (8) with batch norm / dropout
                r = self._propagate_between(ws, i - 1, r, dropout)
            elif i > 0:  # (8) δ^{l−1} = (W^l)ᵀ δ^l ⊙ σ'(z^{l−1})
                layers[i].propagate(
                    ws.delta[i],
                    ws.Z[i - 1],
                    ws.A[i - 1],
                    layers[i - 1].activation,
                    ws.sigma_prime[i - 1],
                    out=ws.delta[i - 1],
                )

    def backprop(
        self,
        X: Any,
        Y: Any,
        reduction: str = "mean",
        *,
        sample_weight: Any = None,
        shortcut: bool = True,
        dropout: bool = False,
    ) -> Gradients:
        """Forward + backward pass on one batch; nothing is updated.

        Parameters
        ----------
        X : array-like or scipy.sparse matrix of shape (m, n_0)
        Y : array-like of shape (m,) (class indices) or (m, n_L)
        reduction : {"mean", "sum"}
            The batch gradient is the mean (r = 1/m) or sum (r = 1) of per-sample gradients.
        sample_weight : array-like of shape (m,), optional
            Weights s_x ≥ 0: the gradient is Σ_x s_x ∂C_x/∂w, divided by Σ_x s_x for the
            mean (all-zero weights give a zero gradient); the loss likewise.
        shortcut : bool
            Use δ^L = a − y for a canonical output/loss pair (default); False takes the
            general path ∂C/∂a ⊙ σ'(z^L) of eq. (9).
        dropout : bool
            Drop neurons as training does, with fresh masks from the network's generator
            (returned in ``Gradients.masks``); False (default) runs the network whole.
            Batch norm always uses the batch's statistics here (training mode); its running
            statistics are not changed.

        Returns
        -------
        Gradients
            Freshly allocated arrays, owned by the caller.

        Notes
        -----
        Equations: (2) Z^l = A^{l−1}(W^l)ᵀ + b^l, A^l = σ(Z^l); (9) Δ^L = ∇_A C ⊙ σ'(Z^L);
        (8) Δ^l = (Δ^{l+1} W^{l+1}) ⊙ σ'(Z^l); (10) ∂C/∂W^l = r (Δ^l)ᵀ A^{l−1};
        (14) ∂C/∂b^l = r Σ_rows Δ^l. With weights, rΔ = diag(s)Δ / Σs (mean) or diag(s)Δ.
        """
        check_choice("reduction", reduction, REDUCTIONS)
        X = self.check_X(X)
        m = X.shape[0]
        s = self.check_sample_weight(sample_weight, m)
        ws = self.workspace(m, sparse=is_sparse(X))
        if ws.sparse:
            ws.inputs = X
        else:
            ws.inputs[...] = X
        ws.targets[...] = self.targets(Y, m)
        r: float | Array = 1.0 / m if reduction == "mean" else 1.0
        if s is not None:
            ws.weights[:, 0] = s
            r = row_factors(ws.weights, reduction, out=ws.r_rows)
        loss = self.backprop_into(ws, r, shortcut, dropout=dropout)
        return gradients_of(ws, loss, reduction, dropout)

    # ----------------------------------------------------------------- inference
    def forward(self, X: Any) -> Array:
        """A^L for the batch X: eqs. (1)–(2), :meth:`forward_into` block by block."""
        return self._output(self.check_X(X))[1]

    def _output(self, X: Array) -> tuple[Array, Array]:
        """(Z^L, A^L) for a checked X; the loss's stable log-sum-exp form reads z^L.

        Rows go through one forward-only workspace in blocks of :data:`INFERENCE_BLOCK`, so
        predicting on a large X holds the blocks' activations, not every layer's for all X.
        """
        m = X.shape[0]
        ws = self.workspace(min(m, INFERENCE_BLOCK), backward=False, sparse=is_sparse(X))
        Z_L = np.empty((m, self.n_outputs), dtype=self.dtype)
        A_L = np.empty_like(Z_L)
        for start in range(0, m, ws.m):
            block = ws.rows(min(ws.m, m - start))
            if block.sparse:
                block.inputs = X[start : start + block.m]  # CSR rows: a slice, not dense
            else:
                block.inputs[...] = X[start : start + block.m]
            self.forward_into(block)
            Z_L[start : start + block.m] = block.Z[-1]
            A_L[start : start + block.m] = block.A[-1]
        return Z_L, A_L

    def predict_proba(self, X: Any) -> Array:
        """The output activations A^L (class or label probabilities for a classifier)."""
        return self.forward(X)

    def predict(self, X: Any) -> np.ndarray:
        """By :attr:`task`: class indices (m,); 0/1 label rows (m, k); or A^L for regression.

        A Network knows class indices only; :class:`deltaprop.Model` maps them to the user's
        labels.
        """
        return self.decide(self.forward(X))

    def decide(self, A: Array) -> np.ndarray:
        """Predictions from output activations: argmax (threshold ½ for one sigmoid output)
        for classification, each output thresholded at ½ for multilabel, A itself otherwise."""
        if self.task == "multilabel":
            return (A > 0.5).astype(np.int64)
        return self.index_of(A) if self.task == "classification" else A

    def evaluate(self, X: Any, y: Any, sample_weight: Any = None) -> dict[str, float]:
        """Mean loss on (X, y), and accuracy for a classifier (per label for multilabel).

        ``y`` is what :meth:`backprop` takes: class indices or an (m, n_L) target matrix.
        With ``sample_weight`` s every figure is a weighted mean, Σ_x s_x (·) / Σ_x s_x.
        """
        X = self.check_X(X)
        s = self.check_sample_weight(sample_weight, X.shape[0])
        return self.evaluate_targets(X, self.targets(y, X.shape[0], "y"), s)

    def evaluate_targets(self, X: Array, Y: Array, sample_weight: Array | None = None,
                         task: str | None = None) -> dict[str, float]:
        """Mean loss and the task's metrics for a checked X and an (m, n_L) target matrix Y.

        Classification: ``accuracy``. Multilabel: ``label_accuracy`` (the fraction of the
        m × k labels predicted right) and ``subset_accuracy`` (rows with every label right).
        ``sample_weight`` (checked, (m,)) weights every mean by s_x / Σs. ``task`` overrides
        :attr:`task`: k sigmoid outputs may stand for k single classes (one-vs-rest), which
        a Model's labels tell.
        """
        task = self.task if task is None else task
        Z, A = self._output(X)
        C = self.loss.per_sample(Z, A, Y)
        s = sample_weight
        if s is None:
            result = {"loss": float(C.mean())}
        else:
            total = float(s.sum())
            result = {"loss": float(np.dot(C, s)) / total if total > 0 else float("nan")}
        if task == "classification":
            result["accuracy"] = metrics.accuracy(self.index_of(Y), self.index_of(A), s)
        elif task == "multilabel":
            result.update(metrics.multilabel_accuracy(Y > 0.5, A > 0.5, s))
        return result

    def index_of(self, Y: Array) -> np.ndarray:
        """Class indices from target or output rows (argmax; threshold ½ for one output)."""
        return (Y[:, 0] > 0.5).astype(np.int64) if Y.shape[1] == 1 else Y.argmax(axis=1)

    # ----------------------------------------------------------------- training
    def fit(self, X: Any, y: Any, **kwargs: Any) -> Any:
        """Train with mini-batch gradient descent; see :func:`deltaprop.training.fit`."""
        from deltaprop import training

        return training.fit(self, X, y, **kwargs)

    def save(self, path: Any, **kwargs: Any) -> None:
        """Write a ``.safetensors`` model file; see :func:`deltaprop.io.save`."""
        from deltaprop import io

        io.save(self, path, **kwargs)

    def to_onnx(self, path: Any, **kwargs: Any) -> None:
        """Write an ONNX file (needs ``deltaprop[onnx]``); see :func:`onnx_export.export`."""
        from deltaprop import onnx_export

        onnx_export.export(self, path, **kwargs)
