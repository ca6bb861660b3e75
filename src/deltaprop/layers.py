"""Dense: holds W, b and implements eqs. (2), (8), (10), (14) — BP2–BP4 — for one layer.

Shapes follow the seeds and ``torch.nn.Linear``: W is (n_out, n_in), b is (n_out,), and a
batch is m rows. A layer computes into buffers it is given (see ``workspace``); it allocates
nothing per batch.

Sparse input: the first layer's A^0 = X may be a ``scipy.sparse`` CSR matrix (TF-IDF
features, one-hot columns). Then eq. (2)'s Z¹ = X W¹ᵀ and eq. (10)'s ∂C/∂W¹ = (rΔ¹)ᵀ X are
sparse × dense products (:func:`is_sparse`): X is never made dense. SciPy returns each
product as a new array, which is copied into the layer's buffer — the one allocation per
batch in the engine, of Z¹'s and ∇W¹'s size, never of X's.

Bias modes (seed 003):

- ``learned``: z = W a + b and b follows eq. (15).
- ``frozen``: b stays at its first value; ∂C/∂b is still computed (and reported), never applied.
- ``none``: z = W a; ``b is None``.
- ``unit``: a bias *unit*, a constant activation 1 appended to the layer's input, whose
  outgoing weights are W's extra last column: W is (n_out, n_in + 1), ``b is None``. Then
  z = W [a; 1] = W_{:, :n_in} a + W_{:, n_in}, so the last column plays b's part exactly and
  eq. (10) for that column, δ_k · 1, is eq. (14).

A hidden layer may carry batch normalization (``norm``, a :class:`~deltaprop.batchnorm.BatchNorm`)
and dropout (``dropout`` = p) between z and a. The layer itself still computes z (eq. 2) and
its gradients (eqs. 10, 14); :class:`~deltaprop.network.Network` runs what lies between z and a
for such a layer (``plain`` is False), and :meth:`Dense.forward` / :meth:`Dense.propagate`
stay the plain equations, untouched by either.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from deltaprop.activations import Activation
from deltaprop.batchnorm import BatchNorm

Array = NDArray[np.floating]

BIAS_MODES = ("learned", "frozen", "none", "unit")


class Dense:
    """One fully connected layer l: z^l = W^l a^{l−1} + b^l, a^l = σ(z^l).

    ``Network`` stores W column-major (Fortran order; its shape is still (n_out, n_in)).
    Then Wᵀ, which the batched eq. (2) Z = A Wᵀ reads, is row-major: the operand layout
    OpenBLAS multiplies fastest at small batches (layer 1 at m = 32, 1 thread: 203 µs
    instead of 299 µs; ``python benchmarks/bench_matmul_shapes.py``). ∇W is laid out like W.

    Parameters
    ----------
    W : ndarray of shape (n_out, n_in), or (n_out, n_in + 1) for ``bias="unit"``
    b : ndarray of shape (n_out,), or None for ``bias`` in ("none", "unit")
    activation : Activation
    bias : {"learned", "frozen", "none", "unit"}
    dropout : float
        p, the probability of dropping each of the layer's neurons in training (0: never).
    norm : BatchNorm or None
        Batch normalization between z and σ (γ, β, running statistics), or None.
    """

    def __init__(self, W: Array, b: Array | None, activation: Activation, bias: str,
                 dropout: float = 0.0, norm: BatchNorm | None = None) -> None:
        self.W = W
        self.b = b
        self.activation = activation
        self.bias = bias
        self.dropout = dropout
        self.norm = norm

    @property
    def plain(self) -> bool:
        """True when nothing sits between z and a: a = σ(z), eqs. (2) and (8) as they are."""
        return self.norm is None and self.dropout == 0

    @property
    def has_unit(self) -> bool:
        """True when a bias unit (constant activation 1) feeds this layer."""
        return self.bias == "unit"

    @property
    def n_out(self) -> int:
        return self.W.shape[0]

    @property
    def n_in(self) -> int:
        """Inputs from the previous layer (the bias unit not counted)."""
        return self.W.shape[1] - self.has_unit

    @property
    def W_in(self) -> Array:
        """The weights from the previous layer's neurons: W without the bias unit's column.

        δ flows back only to neurons; the bias unit's activation is constant, it has no δ.
        """
        return self.W[:, : self.n_in] if self.has_unit else self.W

    def forward(self, A_prev: Array, Z: Array, A: Array) -> None:
        """Eqs. (1)–(2): Z = A^{l−1} Wᵀ + b, A = σ(Z), into ``Z`` and ``A``.

        ``A_prev`` is (m, n_in), or (m, n_in + 1) with a last column of ones for a bias unit.
        """
        self.weighted_input(A_prev, Z)
        self.activation.f(Z, A)  # (2) a = σ(z)

    def weighted_input(self, A_prev: Array, Z: Array) -> None:
        """Eq. (2)'s z alone: Z = A^{l−1} Wᵀ + b, into ``Z``. ``A_prev`` may be sparse (CSR)."""
        if is_sparse(A_prev):
            np.copyto(Z, A_prev @ self.W.T)  # (2) Σ_j w_kj x_j over x's nonzeros only
        else:
            np.matmul(A_prev, self.W.T, out=Z)  # (2) Σ_j w_kj a_j
        if self.b is not None:
            Z += self.b  # (2) + b_k

    def gradients(
        self,
        delta: Array,
        A_prev: Array,
        r: float | Array,
        nabla_W: Array,
        nabla_b: Array | None,
        ones: Array,
        r_delta: Array,
    ) -> None:
        """Eqs. (10) and (14), summed over the batch's rows and scaled by r.

        Notes
        -----
        Equation (10), BP4: ∂C/∂w_kj = δ_k a_j; batched ∂C/∂W = (rΔ)ᵀ A^{l−1}.
        Equation (14), BP3: ∂C/∂b_k = δ_k;       batched ∂C/∂b = Σ_rows rΔ = 1ᵀ(rΔ).
        Rows are samples: the sum runs over samples (seed 002), never over a layer's
        neurons. r = 1/m for reduction "mean", 1 for "sum". With sample weights s, r is a
        column (m, 1), one factor per row: r_x = s_x / Σs (mean) or s_x (sum), so rΔ is
        diag(s)Δ/Σs and the gradient Σ_x s_x ∂C_x/∂w / Σs (DESIGN.md §3). For a bias unit,
        the last column of (rΔ)ᵀ [A, 1] is Σ_rows rΔ — eq. (14) arrives through eq. (10).
        r scales Δ (into the scratch ``r_delta``) before the products, not ∇W after them:
        m × n_out multiplications instead of n_out × n_in (layer 1 at m = 32: 8 k, not 200 k).
        ``ones`` is a vector of m ones: the row sum as 1ᵀΔ is one BLAS call, 3.4× faster
        than ``np.sum(axis=0)`` (26 µs vs 90 µs for 1024 × 256; benchmarks/bench_kernels.py).
        """
        if isinstance(r, np.ndarray) or r != 1:
            delta = np.multiply(delta, r, out=r_delta)  # rΔ: the mean's 1/m (or s_x/Σs), once
        if is_sparse(A_prev):  # ∂C/∂W¹ᵀ = Xᵀ (rΔ): a sparse product, X is never dense
            np.copyto(nabla_W.T, A_prev.T @ delta)  # BP4 (10): Σ_samples δ_k x_j
        elif delta.shape[0] == 1:  # one sample (online learning): (10) is the outer product
            # δ aᵀ. NumPy's matmul with an inner dimension of 1 bypasses BLAS and is 3.5×
            # slower than this broadcast multiply (702 µs vs 203 µs for 256 × 784; bench_kernels).
            np.multiply(delta.T, A_prev, out=nabla_W)  # BP4 (10): δ_k a_j
        else:
            matmul_into(delta.T, A_prev, nabla_W)  # BP4 (10): Σ_samples δ_k a_j
        if nabla_b is not None:
            np.matmul(ones, delta, out=nabla_b)  # BP3 (14): Σ_samples δ_k

    def propagate(
        self,
        delta: Array,
        Z_prev: Array,
        A_prev: Array,
        sigma_prev: Activation,
        sigma_prime: Array,
        out: Array,
    ) -> None:
        """Eq. (8), BP2: the previous layer's error signal, into ``out``.

        Notes
        -----
        Equation (8): δ_k^{l−1} = (Σ_m δ_m^l w_mk^l) σ'(z_k^{l−1});
        batched Δ^{l−1} = (Δ^l W^l) ⊙ σ'(Z^{l−1}).
        ``sigma_prime`` is a scratch buffer shaped like ``out`` that receives σ'(Z^{l−1}).
        """
        np.matmul(delta, self.W_in, out=out)  # (8) Σ_m δ_m w_mk
        sigma_prev.prime(Z_prev, A_prev, out=sigma_prime)  # σ'(z_k^{l−1})
        out *= sigma_prime  # (8) ⊙


def is_sparse(A: object) -> bool:
    """True for a ``scipy.sparse`` CSR matrix or array (the engine never imports SciPy)."""
    return getattr(A, "format", None) == "csr"


def matmul_into(a: Array, b: Array, out: Array) -> None:
    """out = a b through BLAS, whatever ``out``'s layout.

    NumPy hands a product to BLAS only when ``out`` is row-major; into a column-major ``out``
    it runs its own loop, several times slower.
    The transpose outᵀ = bᵀ aᵀ of a column-major ``out`` is row-major, so it goes there.
    """
    if out.flags.c_contiguous:
        np.matmul(a, b, out=out)
    else:
        np.matmul(b.T, a.T, out=out.T)
