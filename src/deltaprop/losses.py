"""C(a, y), ∂C/∂a, and the canonical δ^L = a − y shortcuts; LOSSES registry.

Every loss is defined per sample; the batch loss is the mean or the sum of the per-sample
losses (``reduction``), and so is the batch gradient (seed 002): r Σ_x C_x with r = 1/m or 1,
or with sample weights s_x the weighted Σ_x r_x C_x, r_x = s_x/Σs or s_x (:func:`batch_loss`).
Targets ``Y`` are matrices of shape (m, n_L): one-hot rows for classifiers (``network``
converts integer labels).

Each loss names the output activation it is canonical with. For those pairs eq. (9),
δ^L = ∂C/∂a ⊙ σ'(z^L), collapses to δ^L = a − y (:func:`delta_shortcut`); the general path
stays available and the tests check that the two agree.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from deltaprop._validation import lookup

Array = NDArray[np.floating]


def delta_shortcut(A: Array, Y: Array, out: Array) -> Array:
    """The canonical output error δ^L = A − Y.

    Notes
    -----
    Equation (9) for a canonical pair: identity + ``mse`` (σ' = 1), softmax +
    ``cross_entropy`` (the softmax Jacobian times −y/a), sigmoid + ``binary_cross_entropy``
    (a(1 − a) times (a − y)/(a(1 − a))), exp + ``poisson`` (e^z times 1 − y/a).
    Batched: Δ^L = A^L − Y.
    """
    return np.subtract(A, Y, out=out)


def batch_loss(C: Array, r: float | Array) -> float:
    """The batch loss from the per-sample losses C (m,): r Σ_x C_x, or Σ_x r_x C_x.

    ``r`` is the reduction's factor (1/m for the mean, 1 for the sum) or, with sample
    weights s, a column (m, 1) of per-row factors r_x = s_x / Σs (mean) or s_x (sum) —
    the same r that scales Δ in eqs. (10), (14).
    """
    if isinstance(r, np.ndarray):
        return float(np.dot(C, r[:, 0]))
    return r * float(C.sum())


def softmax_cross_entropy(Z: Array, Y: Array, A: Array, lse: Array, row: Array) -> Array:
    """A = softmax(Z), and each sample's cross-entropy (into ``lse``), from one pass over Z.

    Softmax needs each row's max and Σ_k e^{z_k − max}; the loss needs
    lse = max + log Σ_k e^{z_k − max}. Computed once for both, with the scratch vectors
    ``lse`` and ``row`` (m values each), nothing is allocated.

    Notes
    -----
    C = −Σ_k y_k log a_k = −Σ_k y_k (z_k − lse) = lse − y·z, as ``Y``'s rows sum to 1
    (``Network.targets`` checks it). Finite even where some a_k underflows to 0. Returns
    ``lse``, which then holds C per sample (:func:`batch_loss` reduces it).
    """
    np.max(Z, axis=1, out=lse)
    np.subtract(Z, lse[:, None], out=A)
    np.exp(A, out=A)  # e^{z_k − max}
    np.sum(A, axis=1, out=row)
    A /= row[:, None]  # a_k = e^{z_k − max} / Σ_j e^{z_j − max}
    np.log(row, out=row)
    lse += row  # lse = max + log Σ_j e^{z_j − max}
    np.einsum("ij,ij->i", Y, Z, out=row)  # y·z
    lse -= row  # C per sample
    return lse


def _clip(A: Array) -> Array:
    """A kept inside [eps, 1 − eps] so log and division stay finite (eps of A's dtype)."""
    eps = np.finfo(A.dtype).eps
    return np.clip(A, eps, 1 - eps)


class Loss:
    """A per-sample loss C(a, y) and its gradient ∂C/∂a.

    ``outputs`` lists the output activations the loss accepts (None: any);
    ``canonical_output`` is the one for which δ^L = a − y.
    """

    name: str = ""
    outputs: tuple[str, ...] | None = None
    canonical_output: str = ""

    def per_sample(self, Z: Array, A: Array, Y: Array) -> Array:
        """C for each sample, shape (m,); Z = z^L and A = σ(z^L)."""
        raise NotImplementedError

    def gradient(self, A: Array, Y: Array, out: Array) -> Array:
        """∂C/∂a for each sample (the general path of eq. 9), written into ``out``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<loss {self.name}>"


class MeanSquaredError(Loss):
    """C = ½ ‖a − y‖² per sample; ∂C/∂a = a − y.

    The ½ makes δ^L = (a − y) ⊙ σ'(z^L) with no factor 2 (seed 000's convention).
    PyTorch's ``MSELoss`` has no ½ and averages over every element; tests account for that.
    """

    name = "mse"
    canonical_output = "identity"

    def per_sample(self, Z: Array, A: Array, Y: Array) -> Array:
        diff = A - Y
        return 0.5 * np.einsum("ij,ij->i", diff, diff)

    def gradient(self, A: Array, Y: Array, out: Array) -> Array:
        return np.subtract(A, Y, out=out)


class CrossEntropy(Loss):
    """C = −Σ_k y_k log a_k with a = softmax(z).

    The value is computed from z with the log-sum-exp trick, −Σ_k y_k (z_k − lse(z)), so it
    is finite even where a_k underflows to 0.
    """

    name = "cross_entropy"
    outputs = ("softmax",)
    canonical_output = "softmax"

    def per_sample(self, Z: Array, A: Array, Y: Array) -> Array:
        z_max = Z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(Z - z_max).sum(axis=1)) + z_max[:, 0]
        return lse * Y.sum(axis=1) - np.einsum("ij,ij->i", Y, Z)

    def gradient(self, A: Array, Y: Array, out: Array) -> Array:
        """∂C/∂a_k = −y_k / a_k (a clipped to [eps, 1 − eps])."""
        np.divide(Y, _clip(A), out=out)
        return np.negative(out, out=out)


class BinaryCrossEntropy(Loss):
    """C = −Σ_k [y_k log a_k + (1 − y_k) log(1 − a_k)] with a = sigmoid(z).

    The value is computed from z as Σ_k [max(z_k, 0) − y_k z_k + log(1 + e^{−|z_k|})],
    which never takes the log of 0.
    """

    name = "binary_cross_entropy"
    outputs = ("sigmoid",)
    canonical_output = "sigmoid"

    def per_sample(self, Z: Array, A: Array, Y: Array) -> Array:
        C = np.maximum(Z, 0) - Y * Z + np.log1p(np.exp(-np.abs(Z)))
        return C.sum(axis=1)

    def gradient(self, A: Array, Y: Array, out: Array) -> Array:
        """∂C/∂a_k = (a_k − y_k) / (a_k (1 − a_k)) (a clipped to [eps, 1 − eps])."""
        Ac = _clip(A)
        np.subtract(Ac, Y, out=out)
        out /= Ac * (1 - Ac)
        return out


class Poisson(Loss):
    """Half the Poisson deviance, C = Σ_k [y_k log(y_k / a_k) − y_k + a_k], with a = e^z.

    For counts y ≥ 0 and a positive rate a; as scikit-learn's MLPRegressor(loss="poisson"),
    it is 0 where a = y. The value is computed from z = log a as
    Σ_k [a_k − y_k z_k + y_k log y_k − y_k] (0 log 0 = 0). torch's
    ``PoissonNLLLoss(log_input=True)``, e^z − y z, is the same up to the constant
    y log y − y, so the gradient is the same: ∂C/∂a = 1 − y/a, and with σ'(z) = a the
    canonical δ^L = a − y.
    """

    name = "poisson"
    outputs = ("exp",)
    canonical_output = "exp"

    def per_sample(self, Z: Array, A: Array, Y: Array) -> Array:
        tiny = np.finfo(Y.dtype).tiny  # y log y with 0 log 0 = 0: log(tiny) times 0 is 0
        C = A - Y * Z + Y * np.log(np.maximum(Y, tiny)) - Y
        return C.sum(axis=1)

    def gradient(self, A: Array, Y: Array, out: Array) -> Array:
        """∂C/∂a_k = 1 − y_k / a_k (a floored at the dtype's smallest normal number)."""
        np.divide(Y, np.maximum(A, np.finfo(A.dtype).tiny), out=out)
        return np.subtract(1, out, out=out)


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (MeanSquaredError(), CrossEntropy(), BinaryCrossEntropy(), Poisson())
}


def get(name: str) -> Loss:
    """The loss called ``name``; a ValueError listing the valid names otherwise."""
    return lookup(LOSSES, name, "loss")
