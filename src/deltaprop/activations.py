"""σ and σ' pairs plus the ACTIVATIONS registry.

Every elementwise activation writes into a caller's buffer: ``f(Z, out)`` computes
A = σ(Z) and ``prime(Z, A, out)`` computes σ'(Z). Each ``prime`` docstring says whether σ'
is computed from z or from a = σ(z); Z and A are separate buffers, so σ'(z^l) stays literal.

Softmax couples the neurons of a layer, so it has no elementwise σ'. Its backward step is the
Jacobian-vector product ``vjp(Z, A, G, out)`` = A ⊙ (G − rowsum(G ⊙ A)); it is allowed only as
an output activation (``output_only``), as is ``exp``, the Poisson rate, which stacked in hidden
layers would compound to e^{e^z} and overflow. Every activation offers ``vjp``, so the output
layer's eq. (9) is one call whatever σ is.

Parameters follow PyTorch's defaults: leaky_relu slope 0.01, elu α = 1, softplus β = 1,
gelu in its tanh approximation.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from deltaprop._validation import lookup

Array = NDArray[np.floating]


class Activation:
    """An elementwise activation σ with its derivative σ'.

    Subclasses implement ``f`` and ``prime``. ``elementwise`` is False only for softmax;
    ``output_only`` is True for the activations a hidden layer may not use (softmax, exp).
    """

    name: str = ""
    elementwise: bool = True
    output_only: bool = False

    def f(self, Z: Array, out: Array) -> Array:
        """A = σ(Z), written into ``out``; ``out`` must not be ``Z`` (some σ read Z late)."""
        raise NotImplementedError

    def prime(self, Z: Array, A: Array, out: Array) -> Array:
        """σ'(Z), written into ``out``; ``A`` is σ(Z), already computed."""
        raise NotImplementedError

    def vjp(self, Z: Array, A: Array, G: Array, out: Array) -> Array:
        """∂C/∂Z from G = ∂C/∂A: ``out = G ⊙ σ'(Z)`` (eq. 9 for an elementwise σ).

        ``out`` must not be ``G``: σ'(Z) is written into it first.
        """
        self.prime(Z, A, out)
        out *= G
        return out

    def __call__(self, Z: Array) -> Array:
        """σ(Z) in a new array (for inference and tests)."""
        return self.f(Z, np.empty_like(Z))

    def __repr__(self) -> str:
        return f"<activation {self.name}>"


class Identity(Activation):
    """σ(z) = z, σ'(z) = 1."""

    name = "identity"

    def f(self, Z: Array, out: Array) -> Array:
        np.copyto(out, Z)
        return out

    def prime(self, Z: Array, A: Array, out: Array) -> Array:
        """σ'(z) = 1 (from neither)."""
        out.fill(1)
        return out


class Sigmoid(Activation):
    """σ(z) = 1 / (1 + e^{−z}), computed as exp(−log(1 + e^{−z})) with NumPy's logaddexp.

    Neither form overflows; this one also keeps its relative precision for z ≪ 0, where
    ½(1 + tanh(z/2)) cancels (float32: σ(−17) came out 5.96e-8 instead of 4.14e-8 and
    σ(−20) as 0, which zeroes σ' = a(1 − a) and with it the layer's δ).
    """

    name = "sigmoid"

    def f(self, Z: Array, out: Array) -> Array:
        np.negative(Z, out=out)
        np.logaddexp(0, out, out=out)  # log(1 + e^{−z}), computed without overflow
        np.negative(out, out=out)
        return np.exp(out, out=out)

    def prime(self, Z: Array, A: Array, out: Array) -> Array:
        """σ'(z) = a(1 − a), from a."""
        np.subtract(1, A, out=out)
        out *= A
        return out


class Tanh(Activation):
    """σ(z) = tanh z."""

    name = "tanh"

    def f(self, Z: Array, out: Array) -> Array:
        return np.tanh(Z, out=out)

    def prime(self, Z: Array, A: Array, out: Array) -> Array:
        """σ'(z) = 1 − a², from a."""
        np.multiply(A, A, out=out)
        np.subtract(1, out, out=out)
        return out


class ReLU(Activation):
    """σ(z) = max(z, 0)."""

    name = "relu"

    def f(self, Z: Array, out: Array) -> Array:
        return np.maximum(Z, 0, out=out)

    def prime(self, Z: Array, A: Array, out: Array) -> Array:
        """σ'(z) = 1 for z > 0, else 0 (0 at the kink, as PyTorch), from z."""
        return np.greater(Z, 0, out=out)  # writes 1.0 / 0.0 into the float buffer


class LeakyReLU(Activation):
    """σ(z) = z for z > 0, else 0.01 z (PyTorch's default slope)."""

    name = "leaky_relu"

    def __init__(self, slope: float = 0.01) -> None:
        self.slope = float(slope)  # an instance's own value: the ONNX export reads it here

    def f(self, Z: Array, out: Array) -> Array:
        np.multiply(Z, self.slope, out=out)
        return np.maximum(Z, out, out=out)  # max(z, 0.01 z) is z for z > 0, 0.01 z else

    def prime(self, Z: Array, A: Array, out: Array) -> Array:
        """σ'(z) = 1 for z > 0, else 0.01, from z."""
        np.greater(Z, 0, out=out)
        out *= 1 - self.slope
        out += self.slope
        return out


class ELU(Activation):
    """σ(z) = z for z > 0, else α(e^z − 1), α = 1."""

    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = float(alpha)  # an instance's own value: the ONNX export reads it here

    def f(self, Z: Array, out: Array) -> Array:
        np.minimum(Z, 0, out=out)  # e^z only where it cannot overflow
        np.expm1(out, out=out)
        out *= self.alpha
        np.copyto(out, Z, where=Z > 0)
        return out

    def prime(self, Z: Array, A: Array, out: Array) -> Array:
        """σ'(z) = 1 for z > 0, else a + α, from z and a."""
        np.add(A, self.alpha, out=out)
        np.copyto(out, 1, where=Z > 0)
        return out


class Softplus(Activation):
    """σ(z) = log(1 + e^z), β = 1, computed as max(z, 0) + log1p(e^{−|z|})."""

    name = "softplus"

    def f(self, Z: Array, out: Array) -> Array:
        np.abs(Z, out=out)
        np.negative(out, out=out)
        np.exp(out, out=out)
        np.log1p(out, out=out)
        out += np.maximum(Z, 0)
        return out

    def prime(self, Z: Array, A: Array, out: Array) -> Array:
        """σ'(z) = 1 / (1 + e^{−z}), the logistic sigmoid of z, from z."""
        return _SIGMOID.f(Z, out)


class GELU(Activation):
    """σ(z) = ½ z (1 + tanh(u)), u = √(2/π) (z + 0.044715 z³) — PyTorch's approximate="tanh"."""

    name = "gelu"
    c = math.sqrt(2.0 / math.pi)
    k = 0.044715

    def _tanh_u(self, Z: Array, out: Array) -> Array:
        np.multiply(Z, Z, out=out)
        out *= self.k
        out += 1
        out *= Z
        out *= self.c
        return np.tanh(out, out=out)

    def f(self, Z: Array, out: Array) -> Array:
        self._tanh_u(Z, out)
        out += 1
        out *= Z
        out *= 0.5
        return out

    def prime(self, Z: Array, A: Array, out: Array) -> Array:
        """σ'(z) = ½(1 + t) + ½ z (1 − t²) √(2/π)(1 + 3·0.044715 z²), t = tanh u; from z."""
        t = self._tanh_u(Z, np.empty_like(Z))
        np.multiply(Z, Z, out=out)
        out *= 3 * self.k
        out += 1
        out *= self.c
        out *= Z
        out *= 1 - t * t
        out += 1 + t
        out *= 0.5
        return out


class Exp(Activation):
    """σ(z) = e^z: a positive output, the mean of a Poisson count (``poisson`` loss).

    scikit-learn's MLPRegressor(loss="poisson") calls it ``exp``. e^z overflows to inf for
    z above log(max) (88.7 in float32, 709.8 in float64); training then stops with a
    ``TrainingDiverged`` naming the epoch, as for any non-finite loss.
    """

    name = "exp"
    output_only = True

    def f(self, Z: Array, out: Array) -> Array:
        return np.exp(Z, out=out)

    def prime(self, Z: Array, A: Array, out: Array) -> Array:
        """σ'(z) = e^z = a, from a."""
        np.copyto(out, A)
        return out


class Softmax(Activation):
    """a_k = e^{z_k} / Σ_j e^{z_j} over each row; output layer only.

    The row max is subtracted first, so e^z never overflows.
    """

    name = "softmax"
    elementwise = False
    output_only = True

    def f(self, Z: Array, out: Array) -> Array:
        np.subtract(Z, Z.max(axis=1, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= out.sum(axis=1, keepdims=True)
        return out

    def prime(self, Z: Array, A: Array, out: Array) -> Array:
        raise ValueError("softmax has no elementwise derivative; use vjp (its Jacobian product)")

    def vjp(self, Z: Array, A: Array, G: Array, out: Array) -> Array:
        """∂C/∂z = J_softmax G = A ⊙ (G − rowsum(G ⊙ A)).

        Notes
        -----
        Equation: ∂C/∂z_k = Σ_j ∂C/∂a_j · a_j(1[j = k] − a_k) = a_k (g_k − Σ_j g_j a_j).
        """
        s = np.einsum("ij,ij->i", G, A)[:, None]  # rowsum(G ⊙ A), one value a sample
        np.subtract(G, s, out=out)
        out *= A
        return out


_SIGMOID = Sigmoid()

ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Identity(),
        _SIGMOID,
        Tanh(),
        ReLU(),
        LeakyReLU(),
        ELU(),
        Softplus(),
        GELU(),
        Exp(),
        Softmax(),
    )
}


def get(name: str) -> Activation:
    """The activation called ``name``; a ValueError listing the valid names otherwise."""
    return lookup(ACTIVATIONS, name, "activation")
