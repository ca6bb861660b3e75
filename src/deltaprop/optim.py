"""SGD, Adam, ...: opt.step(net, grads) updates in place; OPTIMIZERS registry.

Every optimizer follows ``torch.optim``'s update formula and hyperparameter names for the
same settings, so settings carry across. ``step`` walks ``net.slots(grads)`` — each trainable
array with its gradient, in a fixed order — and applies the optimizer's ``update`` to each.
State (momentum buffers, moments) is created on the first step, kept by the slot's
parameter name (``"layers.0.W"``; never as references to the network's arrays), and exported
by ``state_dict`` under ``"<parameter>.<state>"``, e.g. ``"layers.0.W.momentum_buffer"``. Per-slot
scratch buffers (keys starting with ``_``) live beside it but are never exported: every
update overwrites them before reading.

Weight decay λ (``weight_decay``) skips biases unless ``decay_bias=True``; a bias unit's
column of W counts as a bias. For SGD, Adagrad, RMSprop, Adam and NAdam it is L2: λθ added to
the gradient; AdamW decays decoupled, θ ← θ(1 − ηλ). Frozen biases are never handed to an
optimizer. Each ``update`` works in place with per-slot scratch buffers: after the first
step, a step allocates no arrays.

L1 (``l1`` = λ₁) adds the subgradient λ₁ sign(θ) to the gradient (sign(0) = 0, as
``torch.sign``) for every optimizer, on the same part as weight decay (weights; biases only
with ``decay_bias=True``). Max-norm (``max_norm`` = c) acts after each update: every
neuron's incoming weight vector w_k (row k of W; with ``decay_bias=True`` its bias unit's
weight and its learned b_k too) is rescaled to norm ≤ c, w_k ← w_k · min(1, c/‖w_k‖)
(Srivastava et al., 2014, with dropout). Batch norm's γ and β count as biases.

Gradient clipping (:func:`clip_grad_norm`, :func:`clip_grad_value`) acts on gradients before
``step`` and follows ``torch.nn.utils``.

:class:`LBFGS` is the one full-batch method: not a per-step rule but a minimizer, used as
``LBFGS(max_iter=200).minimize(net, X, y)``. Each of its function evaluations is the loss and
gradient of the whole training set from the engine's backprop (eqs. 2, 9, 8, 10, 14); SciPy's
L-BFGS-B chooses the steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from deltaprop import blas
from deltaprop._validation import check_choice, check_fraction, check_int, check_positive, lookup
from deltaprop.errors import ConfigError, TrainingDiverged
from deltaprop.layers import is_sparse
from deltaprop.network import INFERENCE_BLOCK, REDUCTIONS, row_factors

Array = NDArray[np.floating]
State = dict[str, Array]


def flush_subnormals(a: Array) -> None:
    """Set a's tiny entries (|a| < 2^-124, float32's subnormals among them) to 0, in place.

    Why: x86 CPUs take a microcode assist for every subnormal operand, so an optimizer
    state full of them makes each later sweep 50-100× slower (measured: ``b *= μ`` on a
    (256, 784) float32 momentum buffer 0.03 ms normal, 1.6-1.9 ms subnormal; after one
    epoch at batch 1 on Fashion-MNIST, 65 % of layer 1's buffer was subnormal). They
    appear when a coordinate's gradient stays 0 (a pixel that is always 0, a dead ReLU)
    and μ^t or β^t decays its state, or when g² of a small g underflows.

    Notes
    -----
    Adding and subtracting c = 2^-100 rounds every |a| < 2^-124 to 0 (a + c is exactly c)
    and leaves every |a| ≥ 2^-75 bit-for-bit unchanged (c is at most a quarter of its ulp); between
    them the change is at most 2^-123 ≈ 1e-37. Two cheap sweeps instead of a masked copy, which
    would allocate a boolean array every step.
    """
    c = _FLUSH[a.dtype.char] if a.dtype.char in _FLUSH else None
    if c is not None:
        a += c
        a -= c


# float32 only: float64 subnormals start below 2.2e-308, which these updates do not reach.
_FLUSH = {"f": np.float32(2.0**-100)}


def _check_betas(betas: Any) -> tuple[float, float]:
    """(β1, β2), each in [0, 1), or a ValueError naming the bad one."""
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise ConfigError(f"`betas` must be a pair (beta1, beta2); got {betas!r}") from None
    return check_fraction("betas[0]", beta1), check_fraction("betas[1]", beta2)


class Optimizer:
    """Base: the shared step loop, L2 weight decay and state export."""

    name = ""

    def __init__(self, lr: float, weight_decay: float = 0.0, decay_bias: bool = False,
                 l1: float = 0.0, max_norm: float | None = None) -> None:
        self.lr = check_positive("lr", lr)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.decay_bias = bool(decay_bias)
        self.l1 = check_positive("l1", l1, allow_zero=True)
        self.max_norm = None if max_norm is None else check_positive("max_norm", max_norm)
        self.t = 0  # steps taken
        self.state: dict[str, State] = {}  # parameter name (Slot.name) → its state arrays
        self._checked = False  # the state's names were matched against the network's slots

    # -- the hyperparameters, for state_dict / repr
    def hyperparameters(self) -> dict[str, Any]:
        hyper = {"lr": self.lr, "weight_decay": self.weight_decay, "decay_bias": self.decay_bias}
        if self.l1:  # only when used: a plain optimizer's state reads as it always has
            hyper["l1"] = self.l1
        if self.max_norm is not None:
            hyper["max_norm"] = self.max_norm
        return hyper

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"

    def step(self, net: Any, grads: Any) -> None:
        """Update every trainable parameter of ``net`` in place from ``grads``."""
        slots = net.slots(grads)
        if not self._checked or len(self.state) > len(slots):
            self._check_names([slot.name for slot in slots])
        self.t += 1
        for slot in slots:
            state = self.state.get(slot.name)
            if state is None:
                state = self.state[slot.name] = {}
            if self.coupled_decay:
                g = self._l2_gradient(slot, state)
            else:
                self._decoupled_decay(slot, state)
                g = slot.grad
            if self.l1:
                g = self._l1_gradient(slot, state, g)
            self.update(slot.value, g, state)
        if self.max_norm is not None:
            self._apply_max_norm(net)

    coupled_decay = True

    def _l1_gradient(self, slot: Any, state: State, g: Array) -> Array:
        """g + λ₁ sign(θ) on the regularized part (the L1 subgradient), in a per-slot buffer.

        Notes
        -----
        Equation: ∂(λ₁ Σ|θ|)/∂θ = λ₁ sign(θ), with sign(0) = 0 (the subgradient torch's
        autograd of ``abs`` gives).
        """
        mask = self._regularized_part(slot, state)
        if mask is None:
            return g
        out = self._buffer(state, "_l1_grad", slot.value)
        np.sign(slot.value, out=out)
        if mask is not ...:
            out *= mask  # 0 on a bias unit's column
        out *= self.l1  # λ₁ sign(θ)
        out += g
        return out

    def _apply_max_norm(self, net: Any) -> None:
        """Rescale each neuron's incoming weights to norm ≤ c, after the update.

        Notes
        -----
        Equation: w_k ← w_k · c / max(‖w_k‖, c) = w_k · min(1, c/‖w_k‖), for every row k of
        every W^l (its bias unit's column and b_k only with ``decay_bias``: "unless asked",
        as weight decay). Frozen biases never move.
        """
        c = self.max_norm
        for i, layer in enumerate(net.layers):
            state = self.state.setdefault(f"layers.{i}.W", {})
            W = layer.W if self.decay_bias else layer.W_in
            b = layer.b if self.decay_bias and layer.bias == "learned" else None
            norm = self._buffer(state, "_row_norm", layer.W[:, 0])
            np.einsum("kj,kj->k", W, W, out=norm)  # ‖w_k‖², one value per neuron
            if b is not None:
                bb = self._buffer(state, "_bias_square", b)
                np.multiply(b, b, out=bb)
                norm += bb
            np.sqrt(norm, out=norm)
            np.maximum(norm, c, out=norm)
            np.divide(c, norm, out=norm)  # c / max(‖w_k‖, c): 1 inside the ball
            W *= norm[:, None]
            if b is not None:
                b *= norm

    def _decay_mask(self, slot: Any, state: State) -> Any:
        """Where weight decay applies to ``slot.value``: None (nowhere), ``...`` (all of it),
        or a 0/1 array, 1 on the weights (a W with a bias unit, ``decay_bias=False``).

        The mask, built on the first step, keeps every later step to whole-array ufuncs:
        on a strided view such as ``W[:, :-1]`` NumPy allocates ufunc buffers.
        """
        if not self.weight_decay:
            return None
        return self._regularized_part(slot, state)

    def _regularized_part(self, slot: Any, state: State) -> Any:
        """Where weight decay and L1 act on ``slot.value`` (see :meth:`_decay_mask`)."""
        if self.decay_bias or slot.weights is ...:
            return ...
        if slot.weights is None:  # a bias
            return None
        if "_decay_mask" not in state:
            mask = np.zeros_like(slot.value)
            mask[slot.weights] = 1
            state["_decay_mask"] = mask
        return state["_decay_mask"]

    def _l2_gradient(self, slot: Any, state: State) -> Array:
        """g + λθ on the decayed part (L2 in the gradient), in a per-slot buffer."""
        mask = self._decay_mask(slot, state)
        if mask is None:
            return slot.grad
        g = self._buffer(state, "_l2_grad", slot.value)
        if mask is ...:
            np.multiply(slot.value, self.weight_decay, out=g)  # λθ
        else:
            np.multiply(slot.value, mask, out=g)
            g *= self.weight_decay  # λθ on the weights, 0 on the bias column
        g += slot.grad
        return g

    def _decoupled_decay(self, slot: Any, state: State) -> None:
        """θ ← θ (1 − ηλ) on the decayed part (AdamW)."""
        mask = self._decay_mask(slot, state)
        if mask is None:
            return
        theta = slot.value
        if mask is ...:
            theta *= 1 - self.lr * self.weight_decay
        else:
            factor = self._buffer(state, "_decay_factor", theta)
            np.multiply(mask, -self.lr * self.weight_decay, out=factor)
            factor += 1  # 1 − ηλ on the weights, 1 on the bias column
            theta *= factor

    def _add_scaled(self, y: Array, a: float, x: Array, state: State) -> None:
        """y ← y + a·x in place: one BLAS sweep, or two through the slot's scratch."""
        blas.axpy(a, x, y, self._buffer(state, "_axpy", y))

    @staticmethod
    def _buffer(state: State, key: str, like: Array, fill: float | None = None) -> Array:
        """``state[key]``, created on first use shaped and typed like ``like``."""
        if key not in state:
            state[key] = np.empty_like(like) if fill is None else np.full_like(like, fill)
        return state[key]

    def update(self, theta: Array, g: Array, state: State) -> None:
        """The optimizer's rule for one array θ with gradient g, in place."""
        raise NotImplementedError

    def _check_names(self, names: list[str]) -> None:
        """Every parameter the state is kept for must be one the network trains."""
        foreign = sorted(set(self.state) - set(names))
        if foreign:
            raise ConfigError(
                f"optimizer state is for parameter {foreign[0]!r}, which this network does not "
                f"train (it trains {', '.join(names)})"
            )
        self._checked = True

    # -- state
    def state_dict(self) -> dict[str, Any]:
        """A snapshot: hyperparameters, step count and every state array.

        Arrays are copies keyed "<parameter>.<state>", e.g. "layers.0.W.momentum_buffer"
        (scratch buffers are left out), so later steps do not change a saved state.
        """
        arrays = {
            f"{param}.{name}": a.copy()
            for param, s in self.state.items()
            for name, a in s.items()
            if not name.startswith("_")
        }
        return {"name": self.name, "t": self.t, "hyper": self.hyperparameters(), "state": arrays}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` gave (arrays are copied).

        Raises
        ------
        ValueError
            If ``d`` is for another optimizer or names a hyperparameter this one lacks.
        """
        if d.get("name") != self.name:
            raise ConfigError(f"state is for optimizer {d.get('name')!r}, not {self.name!r}")
        # l1 and max_norm are listed by hyperparameters() only when set; every optimizer has them
        known = {"l1": 0.0, "max_norm": 0.0} | self.hyperparameters()
        for key, value in d.get("hyper", {}).items():
            if key not in known:
                raise ConfigError(
                    f"state names hyperparameter {key!r}, which {type(self).__name__} lacks"
                )
            # back to plain Python scalars: a NumPy float64 read from a file would
            # upcast float32 work (STYLE.md §3)
            if value is None and key == "max_norm":
                pass
            elif isinstance(known[key], bool):
                value = bool(value)
            elif isinstance(known[key], list):
                value = tuple(float(v) for v in value)
            else:
                value = float(value)
            setattr(self, key, value)
        self.t = int(d["t"])
        self.state = {}
        for key, a in d["state"].items():
            param, dot, name = key.rpartition(".")
            if not dot or not param:
                raise ConfigError(f"state key {key!r} is not '<parameter>.<state>'")
            self.state.setdefault(param, {})[name] = np.array(a, copy=True)
        self._checked = False  # matched against the network's slots on the next step


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (torch.optim.SGD).

    Plain (momentum = 0), this is eqs. (11) and (15): θ ← θ − η g. With momentum μ,
    dampening τ, the buffer holds past gradients and the learning rate stays outside it:

        b_1 = g_1;   b_t = μ b_{t−1} + (1 − τ) g_t
        θ ← θ − η b_t            (or θ − η (g_t + μ b_t) with ``nesterov=True``)

    With weight_decay λ, g = ∇θ C + λθ (L2).
    """

    name = "sgd"

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        decay_bias: bool = False,
        l1: float = 0.0,
        max_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, decay_bias, l1, max_norm)
        self.momentum = check_positive("momentum", momentum, allow_zero=True)
        self.dampening = check_positive("dampening", dampening, allow_zero=True)
        self.nesterov = bool(nesterov)
        if self.nesterov and (self.momentum == 0 or self.dampening != 0):
            raise ConfigError(
                "`nesterov` needs momentum > 0 and dampening = 0; "
                f"got momentum={momentum!r}, dampening={dampening!r}"
            )

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "momentum": self.momentum,
                "dampening": self.dampening, "nesterov": self.nesterov}

    def update(self, theta: Array, g: Array, state: State) -> None:
        # Each line is one fused sweep (blas.axpy / axpby); ``step`` is the scratch the
        # ufunc form of a fused sweep needs where BLAS is not used.
        step = self._buffer(state, "_step", theta)
        if self.momentum == 0:
            blas.axpy(-self.lr, g, theta, step)  # (11), (15): θ ← θ − α ∂C/∂θ
            return
        first = "momentum_buffer" not in state  # torch.optim.SGD's name for b
        b = self._buffer(state, "momentum_buffer", theta)
        if first:
            np.copyto(b, g)  # b_1 = g_1
        else:
            # b_t = μ b_{t−1} + (1 − τ) g_t
            blas.axpby(1 - self.dampening, g, self.momentum, b, step)
            if self.t % 16 == 0:  # a b whose g stays 0 needs ~800 steps of μ^t to get
                flush_subnormals(b)  # subnormal; every 16th step costs 2/16 sweep a step
        if self.nesterov:  # θ ← θ − η (g_t + μ b_t)
            blas.axpy(-self.lr, g, theta, step)
            blas.axpy(-self.lr * self.momentum, b, theta, step)
        else:
            blas.axpy(-self.lr, b, theta, step)  # θ ← θ − η b_t


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), as torch.optim.Adagrad.

        η_t = η / (1 + (t − 1) · lr_decay);   s_t = s_{t−1} + g_t²
        θ ← θ − η_t g_t / (√s_t + ε)
    """

    name = "adagrad"

    def __init__(
        self,
        lr: float = 0.01,
        lr_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        weight_decay: float = 0.0,
        decay_bias: bool = False,
        l1: float = 0.0,
        max_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, decay_bias, l1, max_norm)
        self.lr_decay = check_positive("lr_decay", lr_decay, allow_zero=True)
        self.initial_accumulator_value = check_positive(
            "initial_accumulator_value", initial_accumulator_value, allow_zero=True
        )
        self.eps = check_positive("eps", eps)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "lr_decay": self.lr_decay,
                "initial_accumulator_value": self.initial_accumulator_value, "eps": self.eps}

    def update(self, theta: Array, g: Array, state: State) -> None:
        s = self._buffer(state, "sum", theta, fill=self.initial_accumulator_value)
        work = self._buffer(state, "_work", theta)
        eta_t = self.lr / (1 + (self.t - 1) * self.lr_decay)
        np.multiply(g, g, out=work)
        s += work  # s_t = s_{t−1} + g²
        np.sqrt(s, out=work)
        work += self.eps  # √s_t + ε
        np.divide(g, work, out=work)
        work *= eta_t
        theta -= work


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012), as torch.optim.RMSprop.

        v_t = α v_{t−1} + (1 − α) g²;   (centered: ḡ_t = α ḡ_{t−1} + (1 − α) g, v_t − ḡ_t²)
        d_t = √v_t + ε
        θ ← θ − η g / d_t;   with momentum μ: b_t = μ b_{t−1} + g / d_t, θ ← θ − η b_t
    """

    name = "rmsprop"

    def __init__(
        self,
        lr: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
        weight_decay: float = 0.0,
        decay_bias: bool = False,
        l1: float = 0.0,
        max_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, decay_bias, l1, max_norm)
        self.alpha = check_positive("alpha", alpha, allow_zero=True)
        if self.alpha > 1:  # v_t would turn negative and √v_t NaN
            raise ConfigError(f"`alpha` must be in [0, 1]; got {alpha!r}")
        self.eps = check_positive("eps", eps)
        self.momentum = check_positive("momentum", momentum, allow_zero=True)
        self.centered = bool(centered)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "alpha": self.alpha, "eps": self.eps,
                "momentum": self.momentum, "centered": self.centered}

    def update(self, theta: Array, g: Array, state: State) -> None:
        v = self._buffer(state, "square_avg", theta, fill=0.0)
        d = self._buffer(state, "_work", theta)
        v *= self.alpha
        np.multiply(g, g, out=d)
        d *= 1 - self.alpha
        v += d  # v_t = α v + (1 − α) g²
        if self.centered:
            g_bar = self._buffer(state, "grad_avg", theta, fill=0.0)
            g_bar *= self.alpha
            self._add_scaled(g_bar, 1 - self.alpha, g, state)
            np.multiply(g_bar, g_bar, out=d)
            np.subtract(v, d, out=d)  # v_t − ḡ_t²
            np.sqrt(d, out=d)
        else:
            np.sqrt(v, out=d)
        d += self.eps  # d_t = √(·) + ε
        np.divide(g, d, out=d)  # g / d_t
        if self.momentum > 0:
            b = self._buffer(state, "momentum_buffer", theta, fill=0.0)
            b *= self.momentum
            b += d
            self._add_scaled(theta, -self.lr, b, state)
        else:
            d *= self.lr
            theta -= d


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1), as torch.optim.Adam: ε is added to √v̂.

        m_t = β1 m + (1 − β1) g;   v_t = β2 v + (1 − β2) g²
        m̂ = m_t / (1 − β1^t);   v̂ = v_t / (1 − β2^t)   (amsgrad: v̂ from max_{s≤t} v_s)
        θ ← θ − η m̂ / (√v̂ + ε)

    With weight_decay λ this is L2 (g + λθ); AdamW is the decoupled variant.
    """

    name = "adam"
    default_weight_decay = 0.0

    def __init__(
        self,
        lr: float = 0.001,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | None = None,
        amsgrad: bool = False,
        decay_bias: bool = False,
        l1: float = 0.0,
        max_norm: float | None = None,
    ) -> None:
        wd = self.default_weight_decay if weight_decay is None else weight_decay
        super().__init__(lr, wd, decay_bias, l1, max_norm)
        self.betas = _check_betas(betas)
        self.eps = check_positive("eps", eps)
        self.amsgrad = bool(amsgrad)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "betas": list(self.betas), "eps": self.eps,
                "amsgrad": self.amsgrad}

    def update(self, theta: Array, g: Array, state: State) -> None:
        beta1, beta2 = self.betas
        m = self._buffer(state, "exp_avg", theta, fill=0.0)
        v = self._buffer(state, "exp_avg_sq", theta, fill=0.0)
        work = self._buffer(state, "_work", theta)
        m *= beta1
        self._add_scaled(m, 1 - beta1, g, state)  # m_t
        v *= beta2
        np.multiply(g, g, out=work)
        work *= 1 - beta2
        v += work  # v_t
        flush_subnormals(m)  # g² of a small g, and β^t decay, reach float32's subnormals
        flush_subnormals(v)
        if self.amsgrad:
            v_max = self._buffer(state, "max_exp_avg_sq", theta, fill=0.0)
            np.maximum(v_max, v, out=v_max)
            v = v_max
        bias_correction1 = 1 - beta1**self.t
        bias_correction2 = 1 - beta2**self.t
        np.sqrt(v, out=work)
        work /= math.sqrt(bias_correction2)
        work += self.eps  # √v̂ + ε
        np.divide(m, work, out=work)
        work *= self.lr / bias_correction1  # η m̂ / (√v̂ + ε)
        theta -= work


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter, 2019), as torch.optim.AdamW: decoupled weight decay

        θ ← θ (1 − ηλ), then the Adam step on the plain gradient; λ defaults to 0.01.
    """

    name = "adamw"
    default_weight_decay = 0.01
    coupled_decay = False


class NAdam(Optimizer):
    """NAdam (Dozat, 2016) with torch.optim.NAdam's momentum schedule.

        μ_t = β1 (1 − ½ · 0.96^{t ψ}),  ψ = momentum_decay;  Π_t = Π_{t−1} μ_t
        m_t, v_t as Adam;  d = √(v_t / (1 − β2^t)) + ε
        θ ← θ − η (1 − μ_t)/(1 − Π_t) · g/d − η μ_{t+1}/(1 − Π_t μ_{t+1}) · m_t/d
    """

    name = "nadam"

    def __init__(
        self,
        lr: float = 0.002,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decay_bias: bool = False,
        l1: float = 0.0,
        max_norm: float | None = None,
    ) -> None:
        super().__init__(lr, weight_decay, decay_bias, l1, max_norm)
        self.betas = _check_betas(betas)
        self.eps = check_positive("eps", eps)
        self.momentum_decay = check_positive("momentum_decay", momentum_decay, allow_zero=True)

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "betas": list(self.betas), "eps": self.eps,
                "momentum_decay": self.momentum_decay}

    def _mu(self, t: int) -> float:
        return self.betas[0] * (1 - 0.5 * 0.96 ** (t * self.momentum_decay))

    def update(self, theta: Array, g: Array, state: State) -> None:
        beta1, beta2 = self.betas
        m = self._buffer(state, "exp_avg", theta, fill=0.0)
        v = self._buffer(state, "exp_avg_sq", theta, fill=0.0)
        work = self._buffer(state, "_work", theta)
        # Π_t lives in the state as a 1-element array so it is saved with the rest.
        if "mu_product" not in state:
            state["mu_product"] = np.ones(1, dtype=theta.dtype)
        mu_product = state["mu_product"]
        mu, mu_next = self._mu(self.t), self._mu(self.t + 1)
        mu_product *= mu
        pi = float(mu_product[0])
        m *= beta1
        self._add_scaled(m, 1 - beta1, g, state)
        v *= beta2
        np.multiply(g, g, out=work)
        work *= 1 - beta2
        v += work
        np.divide(v, 1 - beta2**self.t, out=work)
        np.sqrt(work, out=work)
        work += self.eps  # d
        step = self._buffer(state, "_step", theta)
        np.divide(g, work, out=step)
        self._add_scaled(theta, -self.lr * (1 - mu) / (1 - pi), step, state)  # g term
        np.divide(m, work, out=step)
        self._add_scaled(theta, -self.lr * mu_next / (1 - pi * mu_next), step, state)  # m term


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Adagrad, RMSprop, Adam, AdamW, NAdam)
}


def get(name: str) -> type[Optimizer]:
    """The optimizer class called ``name``; a ValueError listing the valid names otherwise."""
    return lookup(OPTIMIZERS, name, "optimizer")


# ----------------------------------------------------------------- full batch: L-BFGS
@dataclass
class LBFGSResult:
    """What :meth:`LBFGS.minimize` did.

    Attributes
    ----------
    loss : float
        The objective at the final parameters: the data loss plus the L2 term.
    n_iter : int
        L-BFGS iterations taken (each one line search, so possibly several evaluations).
    n_fun : int
        Loss-and-gradient evaluations (full passes over the data).
    converged : bool
        True when SciPy stopped on its tolerance; False when ``max_iter`` or ``max_fun``
        ran out or the line search could not progress (``message`` says which).
    message : str
        SciPy's reason for stopping, e.g. "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL".
    """

    loss: float
    n_iter: int
    n_fun: int
    converged: bool
    message: str


class LBFGS:
    """Full-batch L-BFGS through SciPy's L-BFGS-B (Byrd, Lu, Nocedal & Zhu, 1995).

    The objective is the network's batch loss over all of (X, y) — the mean (or sum) of the
    per-sample losses, weighted by ``sample_weight`` if given — plus (λ/2) Σ‖W‖² over the
    decayed parameters, and its gradient is the engine's backprop plus λW (L2, as the other
    optimizers' ``weight_decay``). SciPy keeps the last ``history_size`` steps and gradient
    changes to approximate the inverse Hessian and chooses each step by a line search.
    It is the method scikit-learn recommends for small data sets (``solver="lbfgs"``).

    Usage::

        result = dp.optim.LBFGS(max_iter=200).minimize(net, X, y)   # trains net in place
        result.loss, result.n_iter, result.converged

    Parameters
    ----------
    max_iter : int
        Most L-BFGS iterations (SciPy's ``maxiter``).
    max_fun : int
        Most loss-and-gradient evaluations (``maxfun``); each is one pass over the data.
    tol : float
        Stop when the largest gradient entry is ≤ ``tol`` (``gtol``), as scikit-learn's
        ``tol`` for lbfgs.
    history_size : int
        Correction pairs kept (``maxcor``; torch.optim.LBFGS's name).
    weight_decay : float
        λ of the L2 term; biases (and a bias unit's column) are not decayed unless
        ``decay_bias``.
    decay_bias : bool

    Notes
    -----
    SciPy works in float64: the parameters travel as one float64 vector and are cast to
    the network's dtype for each evaluation (a float32 network then has float32-accurate
    gradients, which can end the line search early). The data pass runs in blocks of
    :data:`~deltaprop.network.INFERENCE_BLOCK` rows through one workspace, so memory stays
    that of one block; r is 1/n for the whole set (or s_x/Σs), so the blocks' gradients add
    up to the full batch's.
    """

    name = "lbfgs"

    def __init__(
        self,
        max_iter: int = 200,
        max_fun: int = 15000,
        tol: float = 1e-4,
        history_size: int = 10,
        weight_decay: float = 0.0,
        decay_bias: bool = False,
    ) -> None:
        self.max_iter = check_int("max_iter", max_iter)
        self.max_fun = check_int("max_fun", max_fun)
        self.tol = check_positive("tol", tol, allow_zero=True)
        self.history_size = check_int("history_size", history_size)
        self.weight_decay = check_positive("weight_decay", weight_decay, allow_zero=True)
        self.decay_bias = bool(decay_bias)

    def hyperparameters(self) -> dict[str, Any]:
        return {"max_iter": self.max_iter, "max_fun": self.max_fun, "tol": self.tol,
                "history_size": self.history_size, "weight_decay": self.weight_decay,
                "decay_bias": self.decay_bias}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"LBFGS({args})"

    def minimize(
        self,
        net: Any,
        X: Any,
        y: Any,
        *,
        reduction: str = "mean",
        sample_weight: Any = None,
        callback: Callable[[int, float], None] | None = None,
    ) -> LBFGSResult:
        """Train ``net`` in place: minimize its full-batch loss on (X, y) from its current
        parameters.

        Parameters
        ----------
        net : Network
        X : array-like or scipy.sparse matrix of shape (n, n_0)
        y : array-like of shape (n,) (class indices) or (n, n_L)
        reduction : {"mean", "sum"}
        sample_weight : array-like of shape (n,), optional
            s_x ≥ 0, not all 0: the loss is Σ s_x C_x / Σ s_x (mean) or Σ s_x C_x (sum).
        callback : callable(iteration, loss), optional
            Called after each iteration with its number (from 1) and the objective there.

        Returns
        -------
        LBFGSResult

        Raises
        ------
        TrainingDiverged
            If the final parameters are not finite; the network keeps its starting ones.
        """
        from scipy.optimize import minimize  # SciPy comes with scikit-learn

        check_choice("reduction", reduction, REDUCTIONS)
        objective = _FullBatch(net, X, y, reduction, sample_weight, self)
        theta0 = objective.theta()
        iterations = 0

        def report(theta: np.ndarray) -> None:
            nonlocal iterations
            iterations += 1
            if callback is not None:
                callback(iterations, objective.value_at(theta))

        with np.errstate(over="ignore", invalid="ignore"):  # non-finite: SciPy backtracks
            result = minimize(
                objective, theta0, method="L-BFGS-B", jac=True, callback=report,
                options={"maxiter": self.max_iter, "maxfun": self.max_fun, "gtol": self.tol,
                         "maxcor": self.history_size},
            )
        if not (np.isfinite(result.x).all() and np.isfinite(result.fun)):
            objective.set_theta(theta0)
            raise TrainingDiverged(
                "L-BFGS: the loss or the parameters became non-finite; the network keeps its "
                "starting weights (scale the inputs, or raise weight_decay)"
            )
        objective.set_theta(result.x)
        message = result.message
        return LBFGSResult(
            loss=float(result.fun), n_iter=int(result.nit), n_fun=int(result.nfev),
            converged=int(result.status) == 0,
            message=message.decode() if isinstance(message, bytes) else str(message),
        )


def _fortran(a: Array) -> bool:
    """Column-major and not also row-major (a vector is both)."""
    return a.flags.f_contiguous and not a.flags.c_contiguous


def _flat(a: Array) -> Array:
    """A 1-D view of a contiguous array in its memory order (W and ∇W are column-major)."""
    return a.T.reshape(-1) if _fortran(a) else a.reshape(-1)


class _FullBatch:
    """L-BFGS's objective: θ ↦ (C(θ), ∇C(θ)) over the whole data set, as SciPy calls it.

    θ packs the trainable slots (``net.slots``: W^1, b^1, W^2, …; frozen biases are not in
    it), each in its memory order. A call writes θ into the network, runs backprop over the
    data block by block with the whole set's r, and adds each block's ∇W, ∇b into one
    float64 gradient vector; then the L2 term (λ/2)‖θ ⊙ d‖² with d the 0/1 decay mask.
    """

    def __init__(self, net: Any, X: Any, y: Any, reduction: str, sample_weight: Any,
                 opt: LBFGS) -> None:
        if net.has_batch_norm or net.has_dropout:  # blocks would each have their own μ, σ²
            raise ConfigError("L-BFGS minimises the whole data set's loss in blocks; it does "
                              "not train batch normalization or dropout (use a mini-batch "
                              "optimizer such as adam)")
        self.net = net
        self.X = net.check_X(X)
        n = self.X.shape[0]
        self.Y = net.targets(y, n, "y")
        s = net.check_sample_weight(sample_weight, n)
        if s is not None and not s.any():
            raise ConfigError("`sample_weight` is all zero: at least one sample needs a "
                              "weight > 0")
        self.r: float | np.ndarray = 1.0 / n if reduction == "mean" else 1.0  # the whole set's
        if s is not None:  # r_x = s_x / Σ_all s (mean) or s_x, sliced per block
            s = s.reshape(-1, 1)
            self.r = row_factors(s, reduction, out=np.empty_like(s))
        self.ws = net.workspace(min(n, INFERENCE_BLOCK), sparse=is_sparse(self.X))
        # Per trainable slot: its place in θ, a flat view of the parameter, and one of the
        # gradient buffer it has in the workspace (shared by the workspace's row views).
        grads = {f"layers.{i}.W": g for i, g in enumerate(self.ws.nabla_W)}
        grads |= {f"layers.{i}.b": g for i, g in enumerate(self.ws.nabla_b) if g is not None}
        self.slots: list[tuple[slice, Array, Array]] = []
        decay: list[Array] = []
        start = 0
        for slot in net.slots(None):
            seg = slice(start, start + slot.value.size)
            start = seg.stop
            self.slots.append((seg, _flat(slot.value), _flat(grads[slot.name])))
            # d: 1 where λ applies (as the optimizers' _decay_mask), laid out like the slot
            mask = np.zeros(slot.value.shape, order="F" if _fortran(slot.value) else "C")
            if opt.decay_bias or slot.weights is ...:
                mask[...] = 1
            elif slot.weights is not None:
                mask[slot.weights] = 1
            decay.append(_flat(mask))
        self.decay = np.concatenate(decay)
        self.lam = opt.weight_decay
        self.grad = np.empty(start, dtype=np.float64)
        self.last: tuple[np.ndarray, float] | None = None

    def theta(self) -> np.ndarray:
        """The current parameters as one float64 vector."""
        theta = np.empty(self.grad.size, dtype=np.float64)
        for seg, value, _ in self.slots:
            theta[seg] = value
        return theta

    def set_theta(self, theta: np.ndarray) -> None:
        for seg, value, _ in self.slots:
            value[...] = theta[seg]  # cast to the network's dtype

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        self.set_theta(theta)
        net, ws, n = self.net, self.ws, self.X.shape[0]
        loss = 0.0
        for start in range(0, n, ws.m):
            w = ws.rows(min(ws.m, n - start))
            rows = slice(start, start + w.m)
            if w.sparse:
                w.inputs = self.X[rows]
            else:
                w.inputs[...] = self.X[rows]
            w.targets[...] = self.Y[rows]
            r = self.r
            if isinstance(r, np.ndarray):  # this block's rows of r_x
                np.copyto(w.r_rows, r[rows])
                r = w.r_rows
            loss += net.backprop_into(w, r)  # (2), (9), (8), (10), (14) on this block
            for seg, _, grad in self.slots:
                if start == 0:
                    self.grad[seg] = grad
                else:
                    self.grad[seg] += grad
        if self.lam:  # L2: (λ/2) ‖θ ⊙ d‖², gradient λ θ ⊙ d
            decayed = theta * self.decay
            loss += 0.5 * self.lam * float(np.dot(decayed, decayed))
            self.grad += self.lam * decayed
        self.last = (theta.copy(), loss)
        return loss, self.grad.copy()

    def value_at(self, theta: np.ndarray) -> float:
        """The objective at θ: the last evaluation's if it was there, else a fresh one."""
        if self.last is not None and np.array_equal(self.last[0], theta):
            return self.last[1]
        return self(theta)[0]


# ----------------------------------------------------------------- gradient clipping
def _sum_of_squares(g: Array) -> float:
    """Σ_k g_k², in g's dtype, or in float64 where that overflows (not for NaN: it stays)."""
    total = float(np.vdot(g, g))
    if math.isinf(total) and g.dtype != np.float64:
        flat = g.ravel(order="K")  # a view of a C- or Fortran-ordered array
        total = float(np.einsum("i,i->", flat, flat, dtype=np.float64))  # buffered casts
    return total


def clip_grad_norm(grads: Iterable[Array | None], max_norm: float) -> float:
    """Scale gradients in place so their global L2 norm is at most ``max_norm``.

    Parameters
    ----------
    grads : iterable of (ndarray or None)
        The gradient arrays, e.g. ``g.dW + g.db``; None entries (layers without b) are
        skipped. Every array is scaled by the same factor, so the direction is kept.
    max_norm : float
        > 0.

    Returns
    -------
    float
        The total norm before clipping. A non-finite norm scales the gradients by 0 (inf)
        or NaN (NaN), as torch does, so the problem stays visible rather than hidden.

    Notes
    -----
    Equation (``torch.nn.utils.clip_grad_norm_``): ‖g‖ = √(Σ_arrays Σ_k g_k²),
    g ← g · min(1, max_norm / (‖g‖ + 10⁻⁶)); the 10⁻⁶ is torch's guard against ‖g‖ = 0.
    The arrays' sums are added in float64. Each array's Σ g² is one BLAS dot product in its
    own dtype; where that overflows (float32 gradients near 1e20: g² > 3.4e38) it is
    summed again in float64, chunk by chunk, so the norm stays right and finite (an
    exact float64 sum every step would cost 1.5 ms instead of 0.07 ms for 256 × 784).
    """
    max_norm = check_positive("max_norm", max_norm)
    arrays = [g for g in grads if g is not None]
    total = math.sqrt(sum(_sum_of_squares(g) for g in arrays))
    coef = max_norm / (total + 1e-6)
    if not coef >= 1:  # also true for a NaN norm: NaN gradients stay visible
        for g in arrays:
            g *= coef
    return total


def clip_grad_value(grads: Iterable[Array | None], clip_value: float) -> None:
    """Clip every gradient element to [−clip_value, clip_value], in place.

    Parameters
    ----------
    grads : iterable of (ndarray or None)
        None entries are skipped.
    clip_value : float
        > 0.

    Notes
    -----
    Equation (``torch.nn.utils.clip_grad_value_``): g_k ← min(max(g_k, −c), c).
    """
    c = check_positive("clip_value", clip_value)
    for g in grads:
        if g is not None:
            np.clip(g, -c, c, out=g)
