"""The training step's backward pass with SGD folded into the products (BLAS gemm's β).

The plain step (:meth:`Network.backprop_into`, then ``optimizer.step``) writes each layer's
∂C/∂W into the workspace, and then the optimizer sweeps over it, its momentum buffer and
the parameters (two fused sweeps each, ``blas``). Here the same equations run in another
order, layer by layer from l = L down to 1, so the gradient never exists as an array of its
own: the product of eq. (10) is added straight into the momentum buffer, or into W itself,
by BLAS ``gemm``'s C ← α A B + β C (:class:`deltaprop.blas.Gemm`)::

    b_W ← μ b_W + (1 − τ) r (Δ^l)ᵀ A^{l−1}       (10) inside torch's momentum update, β = μ
    b_b ← μ b_b + (1 − τ) r 1ᵀ Δ^l                (14), the same for the bias
    Δ^{l−1} = (Δ^l W^l) ⊙ σ'(Z^{l−1})             (8), while W^l is still the batch's W
    W^l ← W^l − η b_W;   b^l ← b^l − η b_b        (11), (15)

(the first step has b = g: β = 0, no dampening). Without momentum, eq. (11) itself is the
product: W^l ← W^l − η r (Δ^l)ᵀ A^{l−1} is one gemm with β = 1. L2 weight decay adds λθ
to the gradient as the plain path does (one more sweep over the decayed part). Each layer is
updated right after its gradient, while its buffers are still in cache — which is why a
gradient hook, clipping or a distributed sum (each needs the whole gradient before any
update) take the plain path, as does everything else :func:`unsupported` names.

The results equal the plain path's to float rounding (the product is not rounded before
it is added), and a run repeats bit for bit. ``tests/test_fast_path.py`` checks both against
the plain equations and against torch.optim.SGD.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from deltaprop import blas
from deltaprop.optim import SGD, flush_subnormals
from deltaprop.workspace import Workspace

Array = NDArray[np.floating]


def unsupported(net: Any, optimizer: Any, sparse: bool) -> str | None:
    """Why the fused step cannot train ``net`` with ``optimizer`` (None: it can).

    The fused step covers SGD (with or without momentum and dampening, with L2 weight
    decay) on dense input, for every bias mode and activation. Everything else takes the
    plain path: other optimizers (their updates need the gradient itself, e.g. Adam's g²),
    Nesterov momentum (likewise), L1 and max-norm, batch normalization and dropout, and a
    sparse first-layer input.
    """
    if type(optimizer) is not SGD:
        return f"{type(optimizer).__name__} needs the gradient itself"
    if optimizer.nesterov:
        return "Nesterov momentum needs the gradient itself"
    if getattr(optimizer, "l1", 0) or getattr(optimizer, "max_norm", None) is not None:
        return "L1 and max-norm act on the whole parameter after the gradient"
    if sparse:
        return "a sparse X multiplies through SciPy, not BLAS"
    for layer in net.layers:
        if getattr(layer, "norm", None) is not None or getattr(layer, "dropout", 0) > 0:
            return "batch normalization and dropout take the plain path"
    return None


class _Slot:
    """One trainable array θ (a W or a learned b) and its gemm, bound for one batch size."""

    def __init__(self, name: str, theta: Array, decayed: Array | None) -> None:
        self.name = name
        self.theta = theta
        self.decayed = decayed  # the part weight decay acts on (a view), or None
        self.buffer: Array | None = None  # the momentum buffer the gemm is bound to
        self.gemm: blas.Gemm | None = None


class FusedSGD:
    """The backward pass and SGD's update in one sweep over the layers (module docstring).

    Parameters
    ----------
    net : Network
    optimizer : optim.SGD
        Its state (``momentum_buffer`` per parameter, by name), step count ``t`` and
        learning rate are used and kept exactly as ``optimizer.step`` keeps them, so either
        path can continue a run the other began, and checkpoints do not change.
    ws : Workspace
        The step's workspace; shorter batches use its row views (``ws.rows(m)``).
    """

    def __init__(self, net: Any, optimizer: SGD, ws: Workspace) -> None:
        self.net, self.optimizer, self.ws = net, optimizer, ws
        self._slots: dict[int, list[tuple[_Slot, _Slot | None]]] = {}

    def _layer_slots(self, w: Workspace, r_is_scalar: bool) -> list[tuple[_Slot, _Slot | None]]:
        """Per layer, its W slot and (learned bias only) its b slot, bound to batch ``w``."""
        key = w.m if r_is_scalar else -w.m
        if key not in self._slots:
            opt = self.optimizer
            out = []
            for i, layer in enumerate(self.net.layers):
                delta = w.delta[i] if r_is_scalar else w.r_delta[i]  # Δ, or rΔ row by row
                decay = bool(opt.weight_decay)
                W_slot = _Slot(f"layers.{i}.W", layer.W,
                               (layer.W if opt.decay_bias else layer.W_in) if decay else None)
                W_slot.operands = (delta.T, w.A_in(i))  # type: ignore[attr-defined]
                b_slot = None
                if layer.bias == "learned":  # frozen biases are never moved
                    b_slot = _Slot(f"layers.{i}.b", layer.b,
                                   layer.b if decay and opt.decay_bias else None)
                    b_slot.operands = (w.ones[None, :], delta)  # type: ignore[attr-defined]
                out.append((W_slot, b_slot))
            self._slots[key] = out
        return self._slots[key]

    def _bind(self, slot: _Slot, target: Array) -> blas.Gemm:
        """The slot's gemm into ``target`` (its momentum buffer, or θ itself)."""
        if slot.gemm is None or slot.buffer is not target:
            A, B = slot.operands  # type: ignore[attr-defined]
            C = target if target.ndim == 2 else target[None, :]
            slot.gemm, slot.buffer = blas.Gemm(A, B, C), target
        return slot.gemm

    def backward_update(self, w: Workspace, r: float | Array) -> None:
        """Eqs. (10), (14), (8) for l = L … 1, each layer updated right after its gradient.

        ``w`` holds the batch after :meth:`Network.loss_into` (Z, A, δ^L); ``r`` is the
        same as there: 1/m, 1, or the column of per-row factors r_x.
        """
        opt, layers = self.optimizer, self.net.layers
        if not opt._checked:
            opt._check_names(self.net.trainable_names())
        opt.t += 1
        scalar = not isinstance(r, np.ndarray)
        slots = self._layer_slots(w, scalar)
        alpha = float(r) if scalar else 1.0  # a column r scales Δ's rows first
        for i in reversed(range(len(layers))):  # l = L … 1
            if not scalar:
                np.multiply(w.delta[i], r, out=w.r_delta[i])  # rΔ: s_x/Σs per row
            W_slot, b_slot = slots[i]
            for slot in (W_slot, b_slot):
                if slot is not None:
                    self._gradient_into_state(slot, alpha)  # (10), (14) into b (or θ)
            if i > 0:  # (8) δ^{l−1} = (W^l)ᵀ δ^l ⊙ σ'(z^{l−1}), with this batch's W^l
                layers[i].propagate(w.delta[i], w.Z[i - 1], w.A[i - 1],
                                    layers[i - 1].activation, w.sigma_prime[i - 1],
                                    out=w.delta[i - 1])
            for slot in (W_slot, b_slot):
                if slot is not None:
                    self._apply(slot, alpha)  # (11), (15)

    def _gradient_into_state(self, slot: _Slot, alpha: float) -> None:
        """b ← μ b + (1 − τ)(r Δᵀ A + λθ) (eq. 10 or 14 inside the momentum update).

        Without momentum nothing happens here: the update itself is the product
        (:meth:`_apply`), made after eq. (8) has read this batch's W.
        """
        opt = self.optimizer
        if opt.momentum == 0:
            return
        state = opt.state.setdefault(slot.name, {})
        buffer = state.get("momentum_buffer")
        first = buffer is None  # b_1 = g_1: torch.optim.SGD applies no dampening to it
        if first:
            buffer = state["momentum_buffer"] = np.empty_like(slot.theta)  # laid out like θ
        scale = 1.0 if first else 1.0 - opt.dampening
        gemm = self._bind(slot, buffer)
        gemm(scale * alpha, 0.0 if first else opt.momentum)  # b ← μ b + (1 − τ) r Δᵀ A
        if slot.decayed is not None:  # L2: + (1 − τ) λθ on the decayed part
            part = buffer[:, : slot.decayed.shape[1]] if buffer.ndim == 2 else buffer
            blas.axpy(scale * opt.weight_decay, slot.decayed, part,
                      opt._buffer(state, "_decay_step", part))
        if not first and opt.t % 16 == 0:  # as SGD.update: μ^t decays b towards subnormals
            flush_subnormals(buffer)

    def _apply(self, slot: _Slot, alpha: float) -> None:
        """θ ← θ − η b (eqs. 11, 15); without momentum θ ← θ(1 − ηλ) − η r Δᵀ A."""
        opt = self.optimizer
        theta = slot.theta
        if opt.momentum == 0:
            if slot.decayed is not None:  # L2: θ − η(g + λθ) = θ − ηλθ − η g
                slot.decayed *= 1.0 - opt.lr * opt.weight_decay
            self._bind(slot, theta)(-opt.lr * alpha, 1.0)  # (11), (15): θ ← θ − η r Δᵀ A
            return
        state = opt.state[slot.name]
        blas.axpy(-opt.lr, state["momentum_buffer"], theta, opt._buffer(state, "_step", theta))
