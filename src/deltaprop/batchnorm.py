"""BatchNorm: z normalised over the batch, then γ ẑ + β — between z^l and σ, forward and back.

Batch normalization (Ioffe & Szegedy, 2015) sits between a hidden layer's weighted input z
and its activation σ. For neuron k of layer l, over the m samples (rows) of a mini-batch:

    μ_k = (1/m) Σ_x z_k                       the batch mean
    σ²_k = (1/m) Σ_x (z_k − μ_k)²             the batch variance (biased: 1/m)
    ẑ_k = (z_k − μ_k) / √(σ²_k + ε)           normalised
    z̃_k = γ_k ẑ_k + β_k                        scaled and shifted (γ, β learned)
    a_k = σ(z̃_k)                               eq. (2) reads z̃ instead of z

(The issue writes z̃ as y; here y is the target.) At inference the batch statistics are
replaced by running estimates, updated once per training step:

    μ_run ← (1 − 0.1) μ_run + 0.1 μ            σ²_run ← (1 − 0.1) σ²_run + 0.1 σ² m/(m − 1)

PyTorch's ``BatchNorm1d`` conventions throughout: momentum 0.1, ε = 1e-5, the biased variance
in the normalization and the unbiased one in the running estimate; γ starts at 1, β at 0,
μ_run at 0 and σ²_run at 1.

The backward pass. With g = ∂C/∂z̃ (what eq. (8) gives up to σ'), every sample's ẑ depends on
the whole batch through μ and σ², so δ = ∂C/∂z collects three terms:

    ∂C/∂β_k = Σ_x g_k                        ∂C/∂γ_k = Σ_x g_k ẑ_k
    δ_k = γ_k / √(σ²_k + ε) · (g_k − (1/m) Σ_x' g_k − ẑ_k (1/m) Σ_x' g_k ẑ_k)      (BN)

The two means are the paths through μ and through σ²; without them δ would be the
elementwise γ g / √(σ² + ε). Seed 002's "per-sample gradients, summed" no longer holds
inside such a layer: sample x's δ depends on every other sample of the batch
(docs/backprop.md).

Gradients are written like the rest of the engine: the rows of g are ∂(Σ_x C_x)/∂z̃ and the
batch gradient takes r (1/m for the mean, 1 for the sum) once, ∂C/∂γ = r Σ_x g ẑ.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

#: PyTorch's BatchNorm1d defaults: the running estimates' momentum and the ε under the root.
MOMENTUM = 0.1
EPS = 1e-5


class BatchNorm:
    """γ, β and the running statistics of one layer's batch normalization (n neurons).

    Parameters
    ----------
    n : int
        Neurons of the layer.
    dtype : numpy dtype
        The network's: γ, β and the running statistics share it.

    Attributes
    ----------
    gamma, beta : ndarray of shape (n,)
        The learned scale and shift (1 and 0 at first).
    running_mean, running_var : ndarray of shape (n,)
        The estimates used at inference (0 and 1 at first).
    num_batches_tracked : int
        Training steps whose statistics went into the running estimates (as torch counts).
    """

    momentum = MOMENTUM
    eps = EPS

    def __init__(self, n: int, dtype: np.dtype) -> None:
        self.gamma = np.ones(n, dtype=dtype)
        self.beta = np.zeros(n, dtype=dtype)
        self.running_mean = np.zeros(n, dtype=dtype)
        self.running_var = np.ones(n, dtype=dtype)
        self.num_batches_tracked = 0

    @property
    def n(self) -> int:
        return self.gamma.shape[0]

    def copy(self, dtype: np.dtype) -> BatchNorm:
        """An independent copy in ``dtype``."""
        other = BatchNorm(self.n, dtype)
        for name in ("gamma", "beta", "running_mean", "running_var"):
            getattr(other, name)[...] = getattr(self, name)
        other.num_batches_tracked = self.num_batches_tracked
        return other

    def normalize_batch(
        self, Z: Array, ones: Array, mu: Array, var: Array, inv_std: Array, Z_hat: Array,
        Z_tilde: Array,
    ) -> None:
        """Training mode: the batch's μ, σ², 1/√(σ² + ε), ẑ and z̃ = γ ẑ + β, into the buffers.

        Notes
        -----
        Equations (BN): μ = (1/m) 1ᵀZ;  σ² = (1/m) 1ᵀ(Z − μ)²;  Ẑ = (Z − μ) / √(σ² + ε);
        Z̃ = γ ⊙ Ẑ + β, with the row vectors broadcast over the m rows. ``Z_tilde`` holds
        (Z − μ)² on the way. Sums over rows are 1ᵀZ, one BLAS call (as eq. (14)).
        """
        m = Z.shape[0]
        np.matmul(ones, Z, out=mu)
        mu *= 1.0 / m  # μ = (1/m) Σ_x z
        np.subtract(Z, mu, out=Z_hat)  # z − μ
        np.multiply(Z_hat, Z_hat, out=Z_tilde)
        np.matmul(ones, Z_tilde, out=var)
        var *= 1.0 / m  # σ² = (1/m) Σ_x (z − μ)², biased
        self._inverse_std(var, out=inv_std)  # 1/√(σ² + ε)
        Z_hat *= inv_std  # ẑ = (z − μ)/√(σ² + ε)
        np.multiply(Z_hat, self.gamma, out=Z_tilde)
        Z_tilde += self.beta  # z̃ = γ ẑ + β

    def normalize_running(self, Z: Array, inv_std: Array, Z_tilde: Array) -> None:
        """Inference: z̃ = γ (z − μ_run)/√(σ²_run + ε) + β, into ``Z_tilde``.

        Notes
        -----
        Equation (BN, eval): Z̃ = γ ⊙ (Z − μ_run) ⊙ 1/√(σ²_run + ε) + β.
        """
        self._inverse_std(self.running_var, out=inv_std)
        np.subtract(Z, self.running_mean, out=Z_tilde)
        Z_tilde *= inv_std
        Z_tilde *= self.gamma
        Z_tilde += self.beta

    def _inverse_std(self, var: Array, out: Array) -> None:
        """1/√(σ² + ε), into ``out``."""
        np.add(var, self.eps, out=out)
        np.sqrt(out, out=out)
        np.divide(1.0, out, out=out)

    def backward(
        self, G: Array, Z_hat: Array, inv_std: Array, r: float, ones: Array,
        nabla_gamma: Array, nabla_beta: Array, scratch: Array, row: Array,
    ) -> None:
        """From G = ∂C/∂z̃ to δ = ∂C/∂z, in place in ``G``; ∂C/∂γ and ∂C/∂β on the way.

        Parameters
        ----------
        G : ndarray of shape (m, n)
            In: ∂C/∂z̃ per sample (rows ∂(Σ_x C_x)/∂z̃). Out: δ = ∂C/∂z.
        Z_hat, inv_std : the forward pass's ẑ and 1/√(σ² + ε)
        r : float
            1/m for reduction "mean", 1 for "sum": applied to ∂C/∂γ and ∂C/∂β.
        ones : ndarray of shape (m,)
        nabla_gamma, nabla_beta : ndarray of shape (n,), filled
        scratch : ndarray of shape (m, n); row : ndarray of shape (n,)

        Notes
        -----
        Equations (BN backward): ∂C/∂β = r 1ᵀG;  ∂C/∂γ = r 1ᵀ(G ⊙ Ẑ);
        Δ = γ/√(σ² + ε) ⊙ (G − (1/m) 1ᵀG − Ẑ ⊙ (1/m) 1ᵀ(G ⊙ Ẑ)).
        """
        m = G.shape[0]
        np.matmul(ones, G, out=nabla_beta)  # Σ_x g
        np.multiply(G, Z_hat, out=scratch)
        np.matmul(ones, scratch, out=nabla_gamma)  # Σ_x g ẑ
        np.multiply(nabla_beta, 1.0 / m, out=row)
        G -= row  # g − (1/m) Σ_x g          (the path through μ)
        np.multiply(nabla_gamma, 1.0 / m, out=row)
        np.multiply(Z_hat, row, out=scratch)
        G -= scratch  # − ẑ (1/m) Σ_x g ẑ     (the path through σ²)
        np.multiply(self.gamma, inv_std, out=row)
        G *= row  # δ = γ/√(σ² + ε) ⊙ (…)
        if r != 1:
            nabla_beta *= r  # ∂C/∂β = r Σ_x g
            nabla_gamma *= r  # ∂C/∂γ = r Σ_x g ẑ

    def track(self, mu: Array, var: Array, m: int, row: Array) -> None:
        """Fold one training batch's μ, σ² (biased, m samples) into the running estimates.

        Notes
        -----
        Equations: μ_run ← (1 − 0.1) μ_run + 0.1 μ;  σ²_run ← (1 − 0.1) σ²_run + 0.1 σ² m/(m − 1),
        the unbiased variance, as torch's BatchNorm1d (m ≥ 2: a batch of one has no variance).
        """
        keep = 1.0 - self.momentum
        self.running_mean *= keep
        np.multiply(mu, self.momentum, out=row)
        self.running_mean += row
        self.running_var *= keep
        np.multiply(var, self.momentum * m / (m - 1), out=row)
        self.running_var += row
        self.num_batches_tracked += 1
