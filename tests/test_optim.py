"""Tests for deltaprop.optim: every optimizer against torch.optim and by hand; the contract.

torch is the independent oracle. Both sides see the very same gradient sequence: each step
deltaprop's ``net.backprop`` computes g on a random batch, g is copied into the torch
parameters' ``.grad``, and then torch's ``step()`` and deltaprop's ``opt.step(net, g)`` run.

Weight decay in torch is per parameter group: weights go into a group with
``weight_decay=λ``, biases into a group with 0 (or λ when ``decay_bias=True``). A bias
unit's column of W is a bias (DESIGN.md §2), so the torch twin holds that W as two
parameters — its neuron columns and its bias-unit column — each in its own group. Every
optimizer here acts elementwise, so splitting one array into two changes nothing else;
the comparison stays torch-against-deltaprop, with no hand formula for that column.
Frozen biases are never given to torch's optimizer and must not move in deltaprop.
"""

from __future__ import annotations

import contextlib
import math
import tracemalloc
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

import deltaprop as dp
from deltaprop import blas, optim
from deltaprop.errors import TrainingDiverged
from deltaprop.network import Gradients

SIZES = [4, 5, 3]
BATCH = 8
STEPS = 50

TORCH = {
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "nadam": torch.optim.NAdam,
}

# id -> (optimizer name, hyperparameters other than weight decay); names are torch's
CONFIGS: dict[str, tuple[str, dict]] = {
    "sgd": ("sgd", {"lr": 0.1}),
    "sgd-momentum": ("sgd", {"lr": 0.1, "momentum": 0.9}),
    "sgd-dampening": ("sgd", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3}),
    "sgd-nesterov": ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    "adagrad": ("adagrad", {"lr": 0.1}),
    "adagrad-decay-init": (
        "adagrad", {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.1}
    ),
    "rmsprop": ("rmsprop", {"lr": 0.01}),
    "rmsprop-momentum": ("rmsprop", {"lr": 0.01, "momentum": 0.9, "alpha": 0.9}),
    "rmsprop-centered": ("rmsprop", {"lr": 0.01, "centered": True}),
    "rmsprop-centered-momentum": (
        "rmsprop", {"lr": 0.01, "momentum": 0.5, "centered": True, "alpha": 0.95}
    ),
    "adam": ("adam", {"lr": 0.01}),
    "adam-amsgrad": ("adam", {"lr": 0.01, "betas": (0.8, 0.99), "amsgrad": True}),
    "adamw": ("adamw", {"lr": 0.01}),
    "adamw-amsgrad": ("adamw", {"lr": 0.01, "amsgrad": True, "eps": 1e-6}),
    "nadam": ("nadam", {"lr": 0.01}),
    "nadam-momentum-decay": ("nadam", {"lr": 0.01, "momentum_decay": 0.01, "betas": (0.8, 0.9)}),
}
DECAYS = {"no-decay": (0.0, False), "decay": (0.05, False), "decay-bias": (0.05, True)}
BIASES = {"learned+unit": ["learned", "unit"], "frozen+learned": ["frozen", "learned"]}


@contextlib.contextmanager
def torch_default_dtype(dtype: str) -> Iterator[None]:
    """torch's scalar state in the parameters' dtype too.

    torch keeps NAdam's running product Π_t as a tensor of the *default* dtype (float32
    unless changed), while deltaprop keeps it in the parameters' dtype. A float32 Π_t beside
    float64 parameters alone would cost agreement beyond ~1e-9; in float64 throughout, the
    two agree to ~1e-12.
    """
    old = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        yield
    finally:
        torch.set_default_dtype(old)


@pytest.fixture(params=["blas", "ufuncs"])
def fused_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every array through BLAS's fused axpy/axpby (not only the large ones), or none."""
    if request.param == "blas":
        if not blas.available():
            pytest.skip("NumPy's BLAS exports no axpy/axpby")  # tests/test_blas.py says if it must
        monkeypatch.setattr(blas, "MIN_SIZE", 0)
    else:
        monkeypatch.setattr(blas, "_FUNCTIONS", {})
    return request.param


def make_net(bias: list[str] | str = "learned", dtype: str = "float64", seed: int = 0,
             sizes: list[int] = SIZES) -> dp.Network:
    # bias_init ≠ 0 so that decaying (or not decaying) a bias shows in the result
    return dp.Network(sizes, activation="tanh", bias=bias, bias_init=0.1, dtype=dtype,
                      seed=seed)


def batches(rng: np.random.Generator, n: int, sizes: list[int] = SIZES) -> Iterator[tuple]:
    for _ in range(n):
        yield rng.normal(size=(BATCH, sizes[0])), rng.integers(0, sizes[-1], size=BATCH)


def make_optimizer(config: str, lam: float, decay_bias: bool) -> optim.Optimizer:
    name, hyper = CONFIGS[config]
    return optim.get(name)(**hyper, weight_decay=lam, decay_bias=decay_bias)


class TorchTwin:
    """torch parameters mirroring a network's trainable arrays, and torch's optimizer.

    Each entry is (torch parameter, "W" or "b", layer index, index into that array).
    """

    def __init__(self, net: dp.Network, config: str, lam: float, decay_bias: bool) -> None:
        self.entries: list[tuple[torch.Tensor, str, int, object]] = []
        decayed: list[torch.Tensor] = []
        plain: list[torch.Tensor] = []
        for i, layer in enumerate(net.layers):
            if layer.has_unit:
                n = layer.n_in
                self._add(layer.W, "W", i, np.s_[:, :n], decayed)
                self._add(layer.W, "W", i, np.s_[:, n:], decayed if decay_bias else plain)
            else:
                self._add(layer.W, "W", i, ..., decayed)
            if layer.bias == "learned":
                self._add(layer.b, "b", i, ..., decayed if decay_bias else plain)
        groups = [{"params": decayed, "weight_decay": lam}]
        if plain:
            groups.append({"params": plain, "weight_decay": 0.0})
        name, hyper = CONFIGS[config]
        self.opt = TORCH[name](groups, foreach=False, **hyper)

    def _add(self, array: np.ndarray, kind: str, i: int, index: object, group: list) -> None:
        p = torch.tensor(array[index], requires_grad=True)
        self.entries.append((p, kind, i, index))
        group.append(p)

    def step(self, g: Gradients) -> None:
        for p, kind, i, index in self.entries:
            grad = (g.dW if kind == "W" else g.db)[i][index]
            p.grad = torch.tensor(grad)
        self.opt.step()

    def assert_matches(self, net: dp.Network, rtol: float) -> None:
        for p, kind, i, index in self.entries:
            ours = getattr(net.layers[i], kind)[index]
            theirs = p.detach().numpy()
            np.testing.assert_allclose(
                ours, theirs, rtol=rtol, atol=rtol * np.abs(theirs).max(),
                err_msg=f"layers.{i}.{kind}[{index}]",
            )


# ----------------------------------------------------------------- torch as the oracle
#: Agreement after STEPS steps of the same gradients: float64 1e-8; float32 one ε (1.2e-7)
#: of rounding in another order per step, 50 ε = 6e-6 (no feedback: both sides are given
#: the same gradients). Measured: every case within 2e-6, 79 of 228 beyond 2e-7.
TORCH_RTOL = {"float64": 1e-8, "float32": STEPS * float(np.finfo(np.float32).eps)}


def against_torch(config: str, decay: str, bias: str, dtype: str, rng: np.random.Generator,
                  make_step) -> tuple[dp.Network, list[tuple[str, np.ndarray]]]:
    """STEPS steps of deltaprop beside torch.optim, asserting that they agree (TORCH_RTOL)
    and that frozen biases never moved, whatever the decay.

    Each step deltaprop's plain ``backprop`` gives torch the gradient g at the current
    parameters; ``make_step(net, opt)`` returns deltaprop's step, called as ``step(X, y, g)``.
    Returns the network and its starting parameters.
    """
    lam, decay_bias = DECAYS[decay]
    net = make_net(BIASES[bias], dtype=dtype)
    start = [(k, p.copy()) for k, p in net.parameters()]
    frozen = {i: layer.b.copy() for i, layer in enumerate(net.layers) if layer.bias == "frozen"}
    with torch_default_dtype(dtype):
        twin = TorchTwin(net, config, lam, decay_bias)
        opt = make_optimizer(config, lam, decay_bias)
        step = make_step(net, opt)
        for X, y in batches(rng, STEPS):
            g = net.backprop(X, y)
            twin.step(g)
            step(X, y, g)
    twin.assert_matches(net, rtol=TORCH_RTOL[dtype])
    for i, b0 in frozen.items():
        np.testing.assert_array_equal(net.layers[i].b, b0)
    return net, start


def plain_step(net: dp.Network, opt: optim.Optimizer):
    """``optimizer.step`` given the gradient: the path of every optimizer but fused SGD."""
    return lambda X, y, g: opt.step(net, g)


def fused_step(net: dp.Network, opt: optim.Optimizer):
    """The fused step (fused.FusedSGD: eq. 10 inside the momentum update, through gemm's
    β): it computes its own gradient and updates in place. In float32 its product is added
    unrounded, while the gradient torch sees was rounded to float32 first."""
    from deltaprop.fused import FusedSGD, unsupported

    assert unsupported(net, opt, sparse=False) is None
    ws = net.workspace(BATCH)
    fused = FusedSGD(net, opt, ws)

    def step(X: np.ndarray, y: np.ndarray, g: Gradients) -> None:
        ws.inputs[...] = X
        ws.targets[...] = net.targets(y, BATCH)
        net.loss_into(ws, 1.0 / BATCH)
        fused.backward_update(ws, 1.0 / BATCH)
    return step


#: Every optimizer configuration on the plain path; SGD's, but Nesterov's, fused as well.
STEP_CASES = [(config, "plain") for config in CONFIGS] + [
    (config, "fused") for config, (name, hyper) in CONFIGS.items()
    if name == "sgd" and not hyper.get("nesterov")]


@pytest.mark.usefixtures("fused_path")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", BIASES)
@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize(("config", "step"), STEP_CASES)
def test_matches_torch(config: str, step: str, decay: str, bias: str, dtype: str,
                       rng: np.random.Generator) -> None:
    """Each optimizer's step, and the fused SGD step, against torch.optim in float64 and
    float32 (TORCH_RTOL)."""
    make_step = plain_step if step == "plain" else fused_step
    net, start = against_torch(config, decay, bias, dtype, rng, make_step)
    trainable = set(net.trainable_names())
    for (name, p0), (_, p) in zip(start, net.parameters(), strict=True):
        assert p.dtype == np.dtype(dtype), name
        assert name not in trainable or not np.allclose(p0, p), f"{name} did not move"
    for layer in net.layers:
        assert layer.W.flags.f_contiguous


# ----------------------------------------------------------------- the rules, restated
def hand_step(config: str, lam: float, theta: np.ndarray, g: np.ndarray, decays: bool,
              s: dict, t: int) -> np.ndarray:
    """One step of each optimizer's rule, written from its docstring, not in place."""
    name, hp = CONFIGS[config]
    eta = hp["lr"]
    if name != "adamw" and decays:
        g = g + lam * theta  # L2: λθ added to the gradient
    if name == "sgd":
        mu, tau = hp.get("momentum", 0.0), hp.get("dampening", 0.0)
        if mu == 0:
            return theta - eta * g  # eqs. (11), (15)
        s["b"] = g if t == 1 else mu * s["b"] + (1 - tau) * g
        return theta - eta * (g + mu * s["b"] if hp.get("nesterov") else s["b"])
    if name == "adagrad":
        s["sum"] = s.get("sum", hp.get("initial_accumulator_value", 0.0)) + g**2
        eta_t = eta / (1 + (t - 1) * hp.get("lr_decay", 0.0))
        return theta - eta_t * g / (np.sqrt(s["sum"]) + 1e-10)
    if name == "rmsprop":
        alpha, mu = hp.get("alpha", 0.99), hp.get("momentum", 0.0)
        s["v"] = alpha * s.get("v", 0.0) + (1 - alpha) * g**2
        if hp.get("centered"):
            s["g_bar"] = alpha * s.get("g_bar", 0.0) + (1 - alpha) * g
            d = np.sqrt(s["v"] - s["g_bar"] ** 2) + 1e-8
        else:
            d = np.sqrt(s["v"]) + 1e-8
        if mu == 0:
            return theta - eta * g / d
        s["b"] = mu * s.get("b", 0.0) + g / d
        return theta - eta * s["b"]
    beta1, beta2 = hp.get("betas", (0.9, 0.999))
    eps = hp.get("eps", 1e-8)
    s["m"] = beta1 * s.get("m", 0.0) + (1 - beta1) * g
    s["v"] = beta2 * s.get("v", 0.0) + (1 - beta2) * g**2
    if name in ("adam", "adamw"):
        if name == "adamw" and decays:
            theta = theta * (1 - eta * lam)  # decoupled: θ ← θ(1 − ηλ) first
        v = s["v"]
        if hp.get("amsgrad"):
            s["v_max"] = v = np.maximum(s.get("v_max", 0.0), v)
        m_hat, v_hat = s["m"] / (1 - beta1**t), v / (1 - beta2**t)
        return theta - eta * m_hat / (np.sqrt(v_hat) + eps)
    psi = hp.get("momentum_decay", 4e-3)  # NAdam
    mu_t = beta1 * (1 - 0.5 * 0.96 ** (t * psi))
    mu_next = beta1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
    s["pi"] = s.get("pi", 1.0) * mu_t
    d = np.sqrt(s["v"] / (1 - beta2**t)) + eps
    return (theta - eta * (1 - mu_t) / (1 - s["pi"]) * g / d
            - eta * mu_next / (1 - s["pi"] * mu_next) * s["m"] / d)


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("config", CONFIGS)
def test_rule_restated_by_hand(config: str, decay: str, rng: np.random.Generator) -> None:
    lam, decay_bias = DECAYS[decay]
    net = make_net("learned", sizes=[3, 2])
    opt = make_optimizer(config, lam, decay_bias)
    W, b = net.layers[0].W.copy(), net.layers[0].b.copy()
    state_W: dict = {}
    state_b: dict = {}
    for t in (1, 2, 3):  # t = 1 is the plain first step; 2 and 3 read the state
        gW, gb = rng.normal(size=W.shape), rng.normal(size=b.shape)
        opt.step(net, Gradients([], [gW], [gb], 0.0, "mean"))
        W = hand_step(config, lam, W, gW, lam > 0, state_W, t)
        b = hand_step(config, lam, b, gb, lam > 0 and decay_bias, state_b, t)
        np.testing.assert_allclose(net.layers[0].W, W, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(net.layers[0].b, b, rtol=1e-12, atol=1e-14)


def test_sgd_one_step_worked_by_hand() -> None:
    net = make_net("learned", sizes=[2, 1])
    net.layers[0].W[...] = [[1.0, 2.0]]
    net.layers[0].b[...] = [0.5]
    g = Gradients([], [np.array([[0.1, -0.2]])], [np.array([0.3])], 0.0, "mean")
    optim.SGD(lr=0.5).step(net, g)
    # (11) w ← w − α ∂C/∂w: 1 − 0.5·0.1 = 0.95, 2 − 0.5·(−0.2) = 2.1
    np.testing.assert_allclose(net.layers[0].W, [[0.95, 2.1]], rtol=1e-15)
    # (15) b ← b − α ∂C/∂b: 0.5 − 0.5·0.3 = 0.35
    np.testing.assert_allclose(net.layers[0].b, [0.35], rtol=1e-15)


def test_unit_column_decays_only_with_decay_bias() -> None:
    """The bias unit's column of W is a bias for weight decay; the other columns are not."""
    for decay_bias in (False, True):
        net = make_net("unit", sizes=[2, 2])
        W0 = net.layers[0].W.copy()
        zero = Gradients([], [np.zeros_like(W0)], [None], 0.0, "mean")
        optim.SGD(lr=0.5, weight_decay=0.1, decay_bias=decay_bias).step(net, zero)
        np.testing.assert_allclose(net.layers[0].W[:, :2], W0[:, :2] * (1 - 0.5 * 0.1))
        unit = W0[:, 2] * (1 - 0.5 * 0.1) if decay_bias else W0[:, 2]
        np.testing.assert_allclose(net.layers[0].W[:, 2], unit)


# ----------------------------------------------------------------- reduction
def test_sgd_sum_with_lr_over_m_is_mean_with_lr(rng: np.random.Generator) -> None:
    """Issue point: reduction="sum" at α/m follows the same trajectory as "mean" at α."""
    alpha = 0.3
    net_sum, net_mean = make_net(["learned", "unit"]), make_net(["learned", "unit"])
    opt_sum, opt_mean = optim.SGD(lr=alpha / BATCH), optim.SGD(lr=alpha)
    for X, y in batches(rng, 20):
        opt_sum.step(net_sum, net_sum.backprop(X, y, reduction="sum"))
        opt_mean.step(net_mean, net_mean.backprop(X, y, reduction="mean"))
    for (_, p_sum), (_, p_mean) in zip(net_sum.parameters(), net_mean.parameters(), strict=True):
        np.testing.assert_allclose(p_sum, p_mean, rtol=1e-12, atol=1e-12 * np.abs(p_mean).max())
    assert not np.allclose(net_mean.layers[0].W, make_net(["learned", "unit"]).layers[0].W)


# ----------------------------------------------------------------- float32
@pytest.mark.parametrize("config", CONFIGS)
def test_float32_stays_float32_and_agrees_with_float64(
    config: str, rng: np.random.Generator
) -> None:
    net32 = make_net(["learned", "unit"], dtype="float32")
    net64 = net32.copy(dtype="float64")
    opt32, opt64 = make_optimizer(config, 0.05, True), make_optimizer(config, 0.05, True)
    for X, y in batches(rng, 20):
        # the same float64 gradients for both, so only the optimizer's precision differs
        g64 = net64.backprop(X, y)
        g32 = Gradients([], [a.astype(np.float32) for a in g64.dW],
                        [None if a is None else a.astype(np.float32) for a in g64.db],
                        g64.loss, "mean")
        opt32.step(net32, g32)
        opt64.step(net64, g64)
    for (_, p32), (_, p64) in zip(net32.parameters(), net64.parameters(), strict=True):
        assert p32.dtype == np.float32
        np.testing.assert_allclose(p32, p64, rtol=1e-5, atol=1e-5 * np.abs(p64).max())
    for state in opt32.state.values():
        for key, a in state.items():
            assert a.dtype == np.float32, key


# ----------------------------------------------------------------- state
@pytest.mark.parametrize("config", CONFIGS)
def test_state_dict_round_trip_is_bitwise(config: str, rng: np.random.Generator) -> None:
    net = make_net(["unit", "learned"])
    opt = make_optimizer(config, 0.05, True)
    data = list(batches(rng, 15))
    for X, y in data[:5]:
        opt.step(net, net.backprop(X, y))
    saved = opt.state_dict()
    restored_net = net.copy()
    name = CONFIGS[config][0]
    restored = optim.get(name)()  # default hyperparameters: load_state_dict must set them
    restored.load_state_dict(saved)
    assert restored.hyperparameters() == opt.hyperparameters()
    assert restored.t == opt.t == 5
    for X, y in data[5:]:  # keeps stepping `opt` in place: `saved` must be a snapshot
        opt.step(net, net.backprop(X, y))
        restored.step(restored_net, restored_net.backprop(X, y))
    for (_, p), (_, q) in zip(net.parameters(), restored_net.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_state_dict_leaves_out_scratch_buffers(rng: np.random.Generator) -> None:
    net = make_net("learned")
    opt = optim.Adam(weight_decay=0.1)
    opt.step(net, net.backprop(*next(batches(rng, 1))))
    names = {key.rpartition(".")[2] for key in opt.state_dict()["state"]}
    assert names == {"exp_avg", "exp_avg_sq"}


def test_state_is_keyed_by_parameter_name(rng: np.random.Generator) -> None:
    """State arrays are named after the parameter they belong to, not its position."""
    net = make_net(["unit", "learned"])
    opt = optim.SGD(lr=0.1, momentum=0.9)
    opt.step(net, net.backprop(*next(batches(rng, 1))))
    keys = set(opt.state_dict()["state"])
    trainable = {name for name, _ in net.parameters()}
    assert keys == {f"{name}.momentum_buffer" for name in trainable}
    for key, a in opt.state_dict()["state"].items():
        assert a.shape == dict(net.parameters())[key.rpartition(".")[0]].shape


def test_plain_sgd_state_round_trip(rng: np.random.Generator) -> None:
    """Plain SGD has no state arrays: the round trip keeps its step count and lr."""
    net = make_net("learned")
    opt = optim.SGD(lr=0.1)
    opt.step(net, net.backprop(*next(batches(rng, 1))))
    assert opt.state_dict()["state"] == {}
    restored = optim.SGD()
    restored.load_state_dict(opt.state_dict())
    assert restored.t == opt.t == 1
    assert restored.lr == 0.1


def test_loaded_numpy_scalars_become_python_scalars(rng: np.random.Generator) -> None:
    """Hyperparameters read back from a file as NumPy float64 must not upcast float32."""
    net = make_net("learned", dtype="float32")
    opt = optim.Adam(lr=0.01)
    opt.step(net, net.backprop(*next(batches(rng, 1))))
    d = opt.state_dict()
    d["hyper"] = {k: np.asarray(v)[()] if not isinstance(v, list) else np.asarray(v)
                  for k, v in d["hyper"].items()}
    restored = optim.Adam()
    restored.load_state_dict(d)
    assert type(restored.lr) is float and restored.betas == opt.betas
    restored.step(net, net.backprop(*next(batches(rng, 1))))
    assert all(a.dtype == np.float32 for s in restored.state.values() for a in s.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"name": "sgd"}, "state is for optimizer 'sgd', not 'adam'"),
        ({"hyper": {"lr": 0.1, "rho": 0.9}}, "'rho'"),
    ],
)
def test_load_state_dict_rejects_foreign_state(change: dict, message: str) -> None:
    d = optim.Adam().state_dict() | change
    with pytest.raises(ValueError, match=message):
        optim.Adam().load_state_dict(d)


def test_state_for_another_network_is_refused(rng: np.random.Generator) -> None:
    opt = optim.Adam()
    net = make_net("learned")
    opt.step(net, net.backprop(*next(batches(rng, 1))))
    other = make_net("none")
    with pytest.raises(ValueError, match=r"optimizer state is for parameter 'layers\.0\.b', "
                       "which this network does not train"):
        opt.step(other, other.backprop(*next(batches(rng, 1))))


# ----------------------------------------------------------------- memory
@pytest.mark.parametrize("config", CONFIGS)
def test_step_is_in_place_and_allocates_nothing_after_the_first(
    config: str, rng: np.random.Generator
) -> None:
    sizes = [64, 128, 10]
    net = make_net(["unit", "learned"], sizes=sizes)
    opt = make_optimizer(config, 0.05, False)
    grads = [net.backprop(X, y) for X, y in batches(rng, 6, sizes=sizes)]
    opt.step(net, grads[0])
    params = [p for _, p in net.parameters()]
    buffers = [(key, a) for s in opt.state.values() for key, a in s.items()]
    before = [p.copy() for p in params]

    tracemalloc.start()
    try:
        for g in grads[1:]:
            opt.step(net, g)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # the smallest W here is 10 × 129 float64 = 10 kB; a step's own objects are far smaller
    assert peak < 4096, f"{peak} bytes allocated during a step"
    assert [p for _, p in net.parameters()] == params  # the same array objects ...
    assert all(a is b for a, b in zip(params, [p for _, p in net.parameters()], strict=True))
    assert all(not np.array_equal(p, q) for p, q in zip(params, before, strict=True))  # moved
    after = [(key, a) for s in opt.state.values() for key, a in s.items()]
    assert [k for k, _ in after] == [k for k, _ in buffers]
    assert all(a is b for (_, a), (_, b) in zip(after, buffers, strict=True))
    assert not any(np.shares_memory(a, p) for _, a in after for p in params)


# ----------------------------------------------------------------- arguments
@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_negative_lr_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"`lr` must be > 0; got -0\.1"):
        optim.get(name)(lr=-0.1)


@pytest.mark.parametrize(
    ("name", "hyper", "message"),
    [
        ("sgd", {"lr": float("nan")}, "`lr` must be > 0; got nan"),
        ("sgd", {"momentum": -0.5}, "`momentum` must be >= 0; got -0.5"),
        ("sgd", {"dampening": -1}, "`dampening` must be >= 0"),
        ("sgd", {"nesterov": True}, "`nesterov` needs momentum > 0"),
        ("sgd", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "`nesterov`.*dampening"),
        ("sgd", {"weight_decay": -1e-4}, "`weight_decay` must be >= 0; got -0.0001"),
        ("adagrad", {"lr_decay": -1}, "`lr_decay` must be >= 0"),
        ("adagrad", {"initial_accumulator_value": -1}, "`initial_accumulator_value`"),
        ("adagrad", {"eps": -1e-10}, "`eps` must be > 0"),
        ("rmsprop", {"alpha": 1.5}, r"`alpha` must be in \[0, 1\]; got 1.5"),
        ("rmsprop", {"alpha": -0.1}, "`alpha` must be >= 0"),
        ("rmsprop", {"momentum": -0.9}, "`momentum`"),
        ("adam", {"betas": (1.0, 0.999)}, r"`betas\[0\]` must be in \[0, 1\); got 1.0"),
        ("adam", {"betas": (0.9, -0.1)}, r"`betas\[1\]` must be in \[0, 1\); got -0.1"),
        ("adamw", {"betas": (0.9, 1.5)}, r"`betas\[1\]`"),
        ("adamw", {"betas": (0.9,)}, "`betas` must be a pair"),
        ("adam", {"eps": -1.0}, "`eps`"),
        ("nadam", {"betas": (0.9, 1.0)}, r"`betas\[1\]` must be in \[0, 1\)"),
        ("nadam", {"momentum_decay": -1}, "`momentum_decay`"),
    ],
)
def test_bad_hyperparameters_are_refused(name: str, hyper: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        optim.get(name)(**hyper)


def test_non_number_lr_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="`lr` must be a number; got 'fast'"):
        optim.SGD(lr="fast")


def test_unknown_optimizer_lists_the_names() -> None:
    with pytest.raises(ValueError, match="unknown optimizer 'adm'") as info:
        optim.get("adm")
    for name in ("adagrad", "adam", "adamw", "nadam", "rmsprop", "sgd"):
        assert name in str(info.value)


def test_registry_and_repr() -> None:
    assert optim.get("adamw") is optim.AdamW
    assert optim.AdamW().weight_decay == 0.01  # torch's default
    assert repr(optim.SGD(lr=0.5)).startswith("SGD(lr=0.5, weight_decay=0.0")


# ----------------------------------------------------------------- gradient clipping
def gradient_list(rng: np.random.Generator, scale: float) -> list[np.ndarray | None]:
    return [scale * rng.normal(size=(5, 4)), None, scale * rng.normal(size=5),
            scale * rng.normal(size=(3, 6))]


@pytest.mark.parametrize("max_norm", [0.5, 3.0, 1e3])
def test_clip_grad_norm_matches_torch(max_norm: float, rng: np.random.Generator) -> None:
    grads = gradient_list(rng, 0.7)
    objects = list(grads)
    params = []
    for g in grads:
        if g is not None:
            p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
            p.grad = torch.tensor(g)
            params.append(p)
    expected_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=False))
    total = optim.clip_grad_norm(grads, max_norm)
    assert total == pytest.approx(expected_norm, rel=1e-13)
    assert all(a is b for a, b in zip(grads, objects, strict=True))  # in place
    for g, p in zip([g for g in grads if g is not None], params, strict=True):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-13)
    clipped = np.sqrt(sum(float(np.sum(g**2)) for g in grads if g is not None))
    assert clipped == pytest.approx(min(total, max_norm), rel=1e-5)


def test_clip_grad_norm_keeps_float32(rng: np.random.Generator) -> None:
    grads = [a.astype(np.float32) for a in gradient_list(rng, 2.0)
             if a is not None]
    optim.clip_grad_norm(grads, 1.0)
    assert all(g.dtype == np.float32 for g in grads)
    assert np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads)) < 1.0


@pytest.mark.parametrize("clip_value", [0.1, 0.5, 10.0])
def test_clip_grad_value_matches_torch(clip_value: float, rng: np.random.Generator) -> None:
    grads = gradient_list(rng, 0.7)
    params = []
    for g in grads:
        if g is not None:
            p = torch.zeros(g.shape, dtype=torch.float64, requires_grad=True)
            p.grad = torch.tensor(g)
            params.append(p)
    torch.nn.utils.clip_grad_value_(params, clip_value, foreach=False)
    optim.clip_grad_value(grads, clip_value)
    for g, p in zip([g for g in grads if g is not None], params, strict=True):
        np.testing.assert_array_equal(g, p.grad.numpy())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda g: optim.clip_grad_norm(g, 0.0), "`max_norm` must be > 0; got 0.0"),
        (lambda g: optim.clip_grad_norm(g, -1), "`max_norm` must be > 0; got -1"),
        (lambda g: optim.clip_grad_value(g, -0.5), "`clip_value` must be > 0; got -0.5"),
    ],
)
def test_clip_bad_arguments(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call([np.ones(3)])


def test_clip_grad_norm_of_float32_gradients_near_1e20_is_finite_and_right() -> None:
    """Σ g² of float32 entries near 1e20 overflows float32 (> 3.4e38): the norm is summed in
    float64 there, so clipping scales to max_norm instead of zeroing the step."""
    g1 = np.asfortranarray(np.full((64, 32), 1e20, dtype=np.float32))  # laid out like ∇W
    g2 = np.full(32, -2e20, dtype=np.float32)
    expected = math.sqrt(64 * 32 * 1e40 + 32 * 4e40)  # exact in float64: 4.61e21
    total = optim.clip_grad_norm([g1, None, g2], 1.0)
    assert math.isfinite(total)
    assert total == pytest.approx(expected, rel=1e-6)  # float32 inputs: 1e20 is 1.00000002e20
    clipped = math.sqrt(float(np.sum(g1.astype(np.float64) ** 2))
                        + float(np.sum(g2.astype(np.float64) ** 2)))
    assert clipped == pytest.approx(1.0, rel=1e-5)  # float32 rounding of the scaled entries
    assert g1.dtype == g2.dtype == np.float32 and np.all(g1 > 0) and np.all(g2 < 0)


# ----------------------------------------------------------------- L-BFGS (full batch)
def _ridge_problem(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    X = rng.normal(size=(40, 3))
    Y = X @ rng.normal(size=(3, 2)) + 0.5 + 0.1 * rng.normal(size=(40, 2))
    return X, Y


def test_lbfgs_finds_the_ridge_solution(rng) -> None:
    """One linear layer with mse and L2 is ridge regression, whose minimiser solves
    (AᵀA/n + λD) θ = AᵀY/n, A = [X, 1], D = diag(1, …, 1, 0) (the bias is not decayed).

    L-BFGS-B also stops once an iteration lowers the loss by less than SciPy's default
    ftol ≈ 2.2e-9 relative (scikit-learn keeps that default too): the loss then lies within
    a few 1e-9 of the optimum, so 1e-8 relative, and θ — the loss is quadratic in θ — within
    about √1e-9 ≈ 3e-5 relative; 1e-4."""
    X, Y = _ridge_problem(rng)
    n, lam = len(X), 0.3
    net = dp.Network([3, 2], output="identity", loss="mse", dtype="float64", seed=0)
    result = optim.LBFGS(tol=1e-10, weight_decay=lam).minimize(net, X, Y)
    A = np.hstack([X, np.ones((n, 1))])
    D = np.diag([1.0, 1.0, 1.0, 0.0])
    theta = np.linalg.solve(A.T @ A / n + lam * D, A.T @ Y / n)
    np.testing.assert_allclose(net.layers[0].W, theta[:3].T, rtol=1e-4)
    np.testing.assert_allclose(net.layers[0].b, theta[3], rtol=1e-4)
    assert result.converged and result.n_iter <= result.n_fun
    residual = A @ theta - Y
    best = 0.5 * np.mean(np.sum(residual**2, axis=1)) + 0.5 * lam * np.sum(theta[:3] ** 2)
    assert best <= result.loss <= best * (1 + 1e-8)


@pytest.mark.parametrize("bias", ["learned", "frozen", "unit", "none"])
def test_lbfgs_objective_gradient_is_the_finite_difference(rng, bias) -> None:
    """The packed gradient SciPy receives (data loss + (λ/2)‖θ ⊙ d‖², weights and blocks)
    equals central differences of the packed loss: 1e-7 of the largest entry."""
    from deltaprop.optim import _FullBatch

    X = rng.normal(size=(9, 3))
    y = rng.integers(0, 3, 9)
    net = dp.Network([3, 4, 3], activation="tanh", bias=bias, dtype="float64", seed=1)
    for decay_bias in (False, True):
        f = _FullBatch(net, X, y, "mean", rng.uniform(0, 2, 9),
                       optim.LBFGS(weight_decay=0.7, decay_bias=decay_bias))
        theta = f.theta() + rng.normal(scale=0.1, size=f.theta().size)
        _, grad = f(theta)
        eps, numeric = 1e-6, np.empty_like(theta)
        for k in range(theta.size):
            step = np.zeros_like(theta)
            step[k] = eps
            numeric[k] = (f(theta + step)[0] - f(theta - step)[0]) / (2 * eps)
        assert np.max(np.abs(grad - numeric)) <= 1e-7 * np.max(np.abs(numeric))


def test_lbfgs_blocks_weights_and_sparse_rows_give_the_same_fit(rng, monkeypatch) -> None:
    """Blocks of 7 rows = one block; integer weights = repeated rows; CSR = dense.
    The same L-BFGS path up to rounding: 1e-8 after 15 iterations."""
    sparse = pytest.importorskip("scipy.sparse")
    X = np.where(rng.random((30, 5)) < 0.5, rng.normal(size=(30, 5)), 0.0)
    y = rng.integers(0, 3, 30)
    s = rng.integers(1, 4, 30)

    def fit(X, y, **kwargs):
        net = dp.Network([5, 6, 3], activation="tanh", dtype="float64", seed=2)
        optim.LBFGS(max_iter=15, weight_decay=1e-3).minimize(net, X, y, **kwargs)
        return np.concatenate([p.ravel() for _, p in net.parameters()])

    one_block = fit(X, y, sample_weight=s)
    np.testing.assert_allclose(fit(sparse.csr_matrix(X), y, sample_weight=s), one_block,
                               rtol=1e-8, atol=1e-10)
    rows = np.repeat(np.arange(30), s)
    np.testing.assert_allclose(fit(X[rows], y[rows]), one_block, rtol=1e-8, atol=1e-10)
    monkeypatch.setattr("deltaprop.optim.INFERENCE_BLOCK", 7)
    np.testing.assert_allclose(fit(X, y, sample_weight=s), one_block, rtol=1e-8, atol=1e-10)


def test_lbfgs_limits_callback_and_frozen_biases(rng) -> None:
    X = rng.normal(size=(50, 4))
    y = rng.integers(0, 2, 50)
    net = dp.Network([4, 8, 1], output="sigmoid", loss="binary_cross_entropy",
                     bias=["frozen", "learned"], bias_init=0.25, dtype="float64", seed=0)
    seen: list[tuple[int, float]] = []
    result = optim.LBFGS(max_iter=5, tol=0.0).minimize(
        net, X, y, callback=lambda i, loss: seen.append((i, loss)))
    assert not result.converged and result.n_iter == 5 and "ITERATIONS" in result.message
    assert [i for i, _ in seen] == [1, 2, 3, 4, 5]
    assert all(b >= a for (_, a), (_, b) in zip(seen[1:], seen, strict=False))  # descends
    assert seen[-1][1] == pytest.approx(result.loss)
    np.testing.assert_array_equal(net.layers[0].b, 0.25)  # frozen: never in θ
    result = optim.LBFGS(max_fun=3, tol=0.0).minimize(net, X, y)
    assert not result.converged and result.n_fun <= 4 and "EVALUATIONS" in result.message


def test_lbfgs_non_finite_loss_keeps_the_starting_weights() -> None:
    net = dp.Network([2, 1], output="identity", loss="mse", dtype="float64", seed=0)
    start = [p.copy() for _, p in net.parameters()]
    with pytest.raises(TrainingDiverged, match="L-BFGS: the loss or the parameters"):
        optim.LBFGS().minimize(net, np.full((4, 2), 1e200), np.zeros(4))
    for (_, p), q in zip(net.parameters(), start, strict=True):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda: optim.LBFGS(max_iter=0), "`max_iter` must be >= 1"),
     (lambda: optim.LBFGS(max_fun=0), "`max_fun` must be >= 1"),
     (lambda: optim.LBFGS(tol=-1), "`tol` must be >= 0"),
     (lambda: optim.LBFGS(weight_decay=-1), "`weight_decay` must be >= 0"),
     (lambda: optim.LBFGS().minimize(dp.Network([2, 2]), np.zeros((2, 2)), [0, 1],
                                     sample_weight=[0, 0]), "`sample_weight` is all zero"),
     (lambda: optim.LBFGS().minimize(dp.Network([2, 2]), np.zeros((2, 2)), [0, 1],
                                     reduction="avg"), "`reduction` must be one of")],
)
def test_lbfgs_bad_arguments(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()


# ----------------------------------------------------------------- L1 and max-norm
class RegularizedTwin(TorchTwin):
    """The torch twin with L1 and max-norm written out in torch, around torch's own step.

    L1: λ₁·sign(θ) added to ``.grad`` of the regularized group (weights; biases with
    ``decay_bias``) before ``step()`` — the subgradient autograd gives for λ₁Σ|θ|. Max-norm
    after ``step()``: per layer, the rows of the regularized parts of W (and b) together are
    scaled by min(1, c/‖row‖), the rule of Srivastava et al. (2014).
    """

    def __init__(self, net: dp.Network, config: str, lam: float, decay_bias: bool,
                 l1: float, c: float) -> None:
        super().__init__(net, config, lam, decay_bias)
        self.l1, self.c = l1, c
        self.regularized = {id(p) for p in self.opt.param_groups[0]["params"]}

    def step(self, g: Gradients) -> None:
        for p, kind, i, index in self.entries:
            grad = torch.tensor((g.dW if kind == "W" else g.db)[i][index])
            if id(p) in self.regularized:
                grad = grad + self.l1 * torch.sign(p.detach())
            p.grad = grad
        self.opt.step()
        with torch.no_grad():
            layers = sorted({i for _, _, i, _ in self.entries})
            for i in layers:
                parts = [p if p.ndim == 2 else p[:, None] for p, _, j, _ in self.entries
                         if j == i and id(p) in self.regularized]
                norm = torch.sqrt(sum((q * q).sum(dim=1) for q in parts))
                scale = torch.clamp(self.c / norm, max=1.0)
                for p, _, j, _ in self.entries:
                    if j == i and id(p) in self.regularized:
                        p.mul_(scale if p.ndim == 1 else scale[:, None])


@pytest.mark.parametrize("bias", BIASES)
@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("config", ["sgd", "sgd-momentum", "adagrad", "rmsprop-momentum",
                                    "adam", "adamw", "nadam"])
def test_l1_and_max_norm_match_torch_over_20_steps(config: str, decay: str, bias: str,
                                                   rng: np.random.Generator) -> None:
    """L1 with and without L2, max-norm tight enough to bind: 20 steps agree to 1e-10.

    float64 on both sides; only the order of a few additions differs (≈ 1e-16 a step).
    """
    lam, decay_bias = DECAYS[decay]
    net = make_net(BIASES[bias])
    frozen = {i: layer.b.copy() for i, layer in enumerate(net.layers) if layer.bias == "frozen"}
    c = 0.8  # rows of 4-5 weights start near norm 1: the constraint binds from step 1
    with torch_default_dtype("float64"):
        twin = RegularizedTwin(net, config, lam, decay_bias, l1=0.02, c=c)
        name, hyper = CONFIGS[config]
        opt = optim.get(name)(**hyper, weight_decay=lam, decay_bias=decay_bias, l1=0.02, max_norm=c)
        clipped = 0
        for X, y in batches(rng, 20):
            g = net.backprop(X, y)
            twin.step(g)
            opt.step(net, g)
            norms = np.concatenate([row_norms(layer, decay_bias) for layer in net.layers])
            assert np.all(norms <= c * (1 + 1e-12))
            clipped += int(np.isclose(norms, c, rtol=1e-12, atol=0).sum())
    twin.assert_matches(net, rtol=1e-10)
    assert clipped > 0  # the constraint did act
    for i, b0 in frozen.items():
        np.testing.assert_array_equal(net.layers[i].b, b0)


def row_norms(layer: Any, with_bias: bool) -> np.ndarray:
    """‖w_k‖ per neuron: W's row without the bias unit column, or with it and b_k."""
    rows = layer.W if with_bias else layer.W_in
    square = (rows**2).sum(axis=1)
    if with_bias and layer.bias == "learned":
        square = square + layer.b**2
    return np.sqrt(square)


def test_l1_zero_and_no_max_norm_are_bit_identical(rng: np.random.Generator) -> None:
    a, b = make_net(["learned", "unit"]), make_net(["learned", "unit"])
    opt_a = optim.Adam(lr=0.01, weight_decay=0.01)
    opt_b = optim.Adam(lr=0.01, weight_decay=0.01, l1=0.0, max_norm=None)
    for X, y in batches(rng, 5):
        opt_a.step(a, a.backprop(X, y))
        opt_b.step(b, b.backprop(X, y))
    for (_, u), (_, v) in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(u, v)
    assert opt_a.hyperparameters() == opt_b.hyperparameters()  # nothing new to say


def test_l1_pulls_weights_to_zero_and_skips_biases(rng: np.random.Generator) -> None:
    """With a zero data gradient, plain SGD + L1 moves each weight by η λ₁ toward 0 and
    leaves biases alone (``decay_bias=False``)."""
    net = make_net("learned")
    W0, b0 = net.layers[0].W.copy(), net.layers[0].b.copy()
    g = net.backprop(*next(batches(rng, 1)))
    for arrays in (g.dW, g.db):
        for a in arrays:
            a[...] = 0
    optim.SGD(lr=0.1, l1=0.01).step(net, g)
    np.testing.assert_allclose(net.layers[0].W, W0 - 0.1 * 0.01 * np.sign(W0), rtol=1e-15)
    np.testing.assert_array_equal(net.layers[0].b, b0)


def test_max_norm_leaves_rows_inside_the_ball_untouched() -> None:
    net = make_net("learned", sizes=[3, 2])
    W = net.layers[0].W
    W[...] = [[0.3, 0.4, 0.0], [3.0, 4.0, 0.0]]  # norms 0.5 and 5
    g = net.backprop(np.zeros((2, 3)), np.array([0, 1]))
    for a in (*g.dW, *g.db):
        a[...] = 0
    optim.SGD(lr=0.1, max_norm=1.0).step(net, g)
    np.testing.assert_array_equal(W[0], [0.3, 0.4, 0.0])
    np.testing.assert_allclose(W[1], [0.6, 0.8, 0.0], rtol=1e-15)


def test_l1_and_max_norm_survive_a_state_dict_round_trip() -> None:
    opt = optim.SGD(lr=0.1, momentum=0.9, l1=1e-4, max_norm=3.0)
    fresh = optim.SGD()
    fresh.load_state_dict(opt.state_dict())
    assert (fresh.l1, fresh.max_norm) == (1e-4, 3.0)
    assert isinstance(fresh.l1, float) and isinstance(fresh.max_norm, float)


@pytest.mark.parametrize(("hyper", "message"), [
    ({"l1": -1e-3}, "`l1` must be >= 0"),
    ({"max_norm": 0.0}, "`max_norm` must be > 0"),
    ({"max_norm": -2.0}, "`max_norm` must be > 0"),
    ({"l1": "a lot"}, "`l1` must be a number"),
])
def test_bad_l1_and_max_norm_are_refused(hyper: dict, message: str) -> None:
    with pytest.raises(ValueError if "number" not in message else TypeError, match=message):
        optim.Adam(**hyper)
