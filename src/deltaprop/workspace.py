"""Preallocated Z, A, δ, ∇W, ∇b buffers for a given batch size and dtype.

A training run allocates one ``Workspace`` and reuses it for every mini-batch; a shorter
last batch uses row slices of the same buffers (``rows(m)``). Lists are indexed by the
0-based layer i (the seeds' l = i + 1):

- ``inputs``: the batch X, (m, n_0), plus a column of ones when layer 0 has a bias unit;
  with ``sparse=True`` no dense buffer: ``inputs`` is the batch's CSR rows, set per batch
  (``layers`` multiplies it without making it dense);
- ``Z[i]``, ``A[i]``: layer i's z and a = σ(z), (m, n_{i+1});
- ``A_in(i)``: what feeds layer i: ``inputs`` for i = 0, else layer i − 1's activations,
  with the constant-1 column of a bias unit when layer i has one;
- ``delta[i]``: layer i's per-sample error signals δ (m, n_{i+1}); ``r_delta[i]`` the
  scratch for rδ (eqs. 10, 14); ``sigma_prime[i]`` the scratch that receives σ'(Z[i]);
  ``grad_A``: ∂C/∂A^L for the general path of eq. (9);
- ``nabla_W[i]``, ``nabla_b[i]``: the reduced gradients, shaped like W and b;
- ``targets``: the batch's Y, (m, n_L); ``ones``: m ones, for sums over the batch's rows;
  ``weights``: the batch's sample weights s_x, (m, 1), and ``r_rows`` the per-row factors
  r_x = s_x / Σs or s_x that scale Δ (eqs. 10, 14) when samples are weighted;
  ``lse``, ``row``: m-vectors of scratch for the fused softmax + cross-entropy.

Batch normalization and dropout (layers whose ``plain`` is False) add, per layer i, None
where the layer has neither:

- ``Z_tilde[i]``: z̃ = γ ẑ + β, what σ reads after batch norm; ``Z_hat[i]``: ẑ;
  ``mu[i]``, ``var[i]``, ``inv_std[i]``: the batch's μ, σ² and 1/√(σ² + ε), (n_{i+1},);
  ``nabla_gamma[i]``, ``nabla_beta[i]``: ∂C/∂γ, ∂C/∂β; ``bn_row[i]``: (n_{i+1},) scratch;
- ``masks[i]``: the 0/1 dropout mask, (m, n_{i+1}); ``sigma_Z[i]``: σ(z) before the mask
  (σ' reads it: a itself is masked).

The ones columns are written once, at allocation: a bias unit's activation never changes.
A forward-only workspace (``backward=False``, for inference) holds inputs, Z and A; its
backward buffers have no rows and it has no gradients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from deltaprop.layers import Dense

Array = NDArray[np.floating]


class Workspace:
    """Every per-batch array of one forward + backward pass, for batches of ≤ ``m`` rows."""

    def __init__(
        self,
        layers: Sequence[Dense],
        m: int,
        dtype: np.dtype,
        *,
        backward: bool = True,
        sparse: bool = False,
    ) -> None:
        self.m = m
        self.backward = backward
        self.sparse = sparse
        self.dtype = np.dtype(dtype)
        n = [layers[0].n_in] + [layer.n_out for layer in layers]
        unit = [layer.has_unit for layer in layers] + [False]  # a unit feeding layer i

        def with_unit(k: int) -> Array:
            """A (m, n_k [+ 1]) buffer; its last column is the bias unit's constant 1."""
            buf = np.empty((m, n[k] + unit[k]), dtype=self.dtype)
            if unit[k]:
                buf[:, -1] = 1
            return buf

        # Sparse input: no (m, n_0) buffer (n_0 may be 10⁵ TF-IDF columns); the batch's CSR
        # rows are set as ``inputs`` per batch.
        self._inputs_full = np.empty((0, 0), dtype=self.dtype) if sparse else with_unit(0)
        self.inputs: Any = None
        self._A_full = [with_unit(i + 1) for i in range(len(layers))]
        self.Z = [np.empty((m, n[i + 1]), dtype=self.dtype) for i in range(len(layers))]
        # The backward pass's buffers; a forward-only workspace (inference) has none.
        rows = m if backward else 0
        self.delta = [np.empty((rows, Z.shape[1]), dtype=self.dtype) for Z in self.Z]
        self.r_delta = [np.empty_like(d) for d in self.delta]
        self.sigma_prime = [np.empty_like(d) for d in self.delta[:-1]]
        self.grad_A = np.empty_like(self.delta[-1])
        self.targets = np.empty_like(self.delta[-1])
        self.ones = np.ones(rows, dtype=self.dtype)  # 1ᵀΔ sums the batch's rows (eq. 14)
        self.weights = np.empty((rows, 1), dtype=self.dtype)  # s_x of the batch's samples
        self.r_rows = np.empty((rows, 1), dtype=self.dtype)  # r_x = s_x/Σs or s_x
        self.lse = np.empty(rows, dtype=self.dtype)  # softmax + cross-entropy's row scratch
        self.row = np.empty(rows, dtype=self.dtype)
        self.nabla_W = [
            np.empty_like(layer.W, dtype=self.dtype) for layer in layers if backward
        ]
        self.nabla_b = [
            None if layer.b is None else np.empty_like(layer.b, dtype=self.dtype)
            for layer in layers
            if backward
        ]
        self._n = n
        self._unit = unit
        self._short: dict[int, Workspace] = {}
        self._between(layers, m, rows)
        self._make_views()

    def _between(self, layers: Sequence[Dense], m: int, rows: int) -> None:
        """Buffers for batch norm and dropout (module docstring); None for plain layers."""
        dt = self.dtype

        def each(make: Any, wanted: Any) -> list[Any]:
            return [make(layer) if wanted(layer) else None for layer in layers]

        def norm(layer: Dense) -> bool:
            return layer.norm is not None

        def drop(layer: Dense) -> bool:
            return layer.dropout > 0

        def vector(layer: Dense) -> Array:
            return np.empty(layer.n_out, dtype=dt)

        self.Z_tilde = each(lambda la: np.empty((m, la.n_out), dtype=dt), norm)
        self.Z_hat = each(lambda la: np.empty((rows, la.n_out), dtype=dt), norm)
        self.mu, self.var, self.inv_std, self.bn_row = (each(vector, norm) for _ in range(4))
        self.nabla_gamma = each(vector, lambda la: norm(la) and self.backward)
        self.nabla_beta = each(vector, lambda la: norm(la) and self.backward)
        self.masks = each(lambda la: np.empty((rows, la.n_out), dtype=dt), drop)
        self.sigma_Z = each(lambda la: np.empty((rows, la.n_out), dtype=dt), drop)

    def _make_views(self) -> None:
        """``inputs`` and ``A``: the full buffers without their bias unit columns."""
        if not self.sparse:
            self.inputs = self._inputs_full[:, : self._n[0]]
        self.A = [A[:, : self._n[i + 1]] for i, A in enumerate(self._A_full)]

    def A_in(self, i: int) -> Array:
        """What feeds layer i: a^{l−1}, with the bias unit's column of ones if it has one
        (for i = 0 and sparse input: the batch's CSR rows)."""
        if i == 0:
            return self.inputs if self.sparse else self._inputs_full
        return self._A_full[i - 1]

    def rows(self, m: int) -> Workspace:
        """This workspace restricted to its first ``m`` rows (views, nothing copied).

        The gradient buffers are shared; the views for each ``m`` are made once.
        """
        if m == self.m:
            return self
        if not 0 < m < self.m:
            raise ValueError(f"batch of {m} rows does not fit a workspace of {self.m}")
        if m not in self._short:
            view = object.__new__(Workspace)
            view.__dict__.update(self.__dict__)
            view.m = m
            view._inputs_full = self._inputs_full[:m]
            view._A_full = [A[:m] for A in self._A_full]
            view.Z = [Z[:m] for Z in self.Z]
            view.delta = [d[:m] for d in self.delta]
            view.r_delta = [d[:m] for d in self.r_delta]
            view.sigma_prime = [s[:m] for s in self.sigma_prime]
            view.grad_A = self.grad_A[:m]
            view.targets = self.targets[:m]
            view.ones = self.ones[:m]
            view.weights = self.weights[:m]
            view.r_rows = self.r_rows[:m]
            view.lse = self.lse[:m]
            view.row = self.row[:m]
            for name in ("Z_tilde", "Z_hat", "masks", "sigma_Z"):
                setattr(view, name, [None if a is None else a[:m] for a in getattr(self, name)])
            view._short = {}
            view._make_views()
            self._short[m] = view
        return self._short[m]
