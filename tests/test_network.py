"""Tests for network.py: the backward pass against finite differences and PyTorch autograd,
bias modes, reductions, the δ^L shortcut, a hand-worked step, properties and bad input.

Error measures (b is the reference):

- ``gradcheck.check``: max |analytic − numerical| over an array divided by the largest
  gradient entry of the whole network (deltaprop.gradcheck's module docstring says why).
- ``rel_err(a, b)`` = max |a − b| / max(max |b|, 1e-300), over one array; with
  ``scale=S``, max |a − b| / S instead (float32 against torch, see TORCH_TOL).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import deltaprop as dp
from conftest import random_targets, torch_activations
from deltaprop import activations, gradcheck, losses
from deltaprop.layers import BIAS_MODES

HIDDEN = [name for name, a in activations.ACTIVATIONS.items() if not a.output_only]
# Every valid (output, loss) pair: a loss's own outputs, or any activation for mse.
PAIRS = [
    (output, name)
    for name, loss in losses.LOSSES.items()
    for output in (loss.outputs or list(activations.ACTIVATIONS))
]
CANONICAL = [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"), ("identity", "mse"),
             ("exp", "poisson")]


def rel_err(a: Any, b: Any, scale: float | None = None) -> float:
    """max |a − b| / max(max |b|, 1e-300): a's error on the scale of the reference b.

    With ``scale``, the error is divided by that instead of by max |b|.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if scale is None:
        scale = float(np.max(np.abs(b)))
    return float(np.max(np.abs(a - b)) / max(scale, 1e-300))


def test_parametrisation_covers_every_valid_combination() -> None:
    assert set(HIDDEN) == {
        "identity",
        "sigmoid",
        "tanh",
        "relu",
        "leaky_relu",
        "elu",
        "softplus",
        "gelu",
    }
    assert {o for o, loss in PAIRS if loss == "mse"} == set(activations.ACTIVATIONS)
    assert ("softmax", "cross_entropy") in PAIRS and ("sigmoid", "binary_cross_entropy") in PAIRS
    assert ("exp", "poisson") in PAIRS
    assert len(PAIRS) == 13  # CE, BCE and poisson with their own output, mse with all 10


# ------------------------------------------------------------ (a) finite differences
# Tolerance for all gradient checks: 1e-6 relative to the network's largest gradient entry.
# The central difference (ε = 1e-5, float64) is accurate to ≈ 1e-10 of that scale (≤ 6e-8
# over 4,400 random nets; gradcheck's docstring), so 1e-6 has margin, while a wrong σ', a
# missing term or a sum over the wrong axis is off by O(1) and fails.
GRAD_TOL = 1e-6


@pytest.mark.parametrize("bias", BIAS_MODES)
@pytest.mark.parametrize(("output", "loss"), PAIRS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradients_match_central_differences(problem, hidden, output, loss, bias) -> None:
    """Every dW and db (frozen ones too) agrees with central differences, both reductions.

    Depth 2–4 so the hidden activation is used (depth 1 has its own test); widths 1–5,
    m = 3–6, random parameters and data, piecewise units kept off their kinks.
    """
    net, X, Y = problem(hidden=hidden, output=output, loss=loss, bias=bias, depth=(2, 4))
    for reduction in ("mean", "sum"):
        report = gradcheck.check(net, X, Y, reduction, eps=1e-5, tol=GRAD_TOL)
        assert report.passed, f"{net!r} {reduction}\n{report}"


@pytest.mark.parametrize("bias", BIAS_MODES)
@pytest.mark.parametrize(("output", "loss"), PAIRS)
def test_single_layer_gradients_match_central_differences(problem, output, loss, bias) -> None:
    net, X, Y = problem(output=output, loss=loss, bias=bias, depth=1)
    for reduction in ("mean", "sum"):
        report = gradcheck.check(net, X, Y, reduction, eps=1e-5, tol=GRAD_TOL)
        assert report.passed, f"{net!r} {reduction}\n{report}"


@pytest.mark.parametrize("case", range(12))
@pytest.mark.parametrize(("output", "loss"), CANONICAL)
def test_mixed_layers_match_central_differences(problem, output, loss, case) -> None:
    """A different activation and bias mode in every layer (per-layer lists), depth 3–4."""
    net, X, Y = problem(hidden="random", output=output, loss=loss, bias="random", depth=(3, 4))
    for reduction in ("mean", "sum"):
        report = gradcheck.check(net, X, Y, reduction, eps=1e-5, tol=GRAD_TOL)
        assert report.passed, f"{net!r} {reduction}\n{report}"


# ------------------------------------------------------------ (b) PyTorch autograd
torch = pytest.importorskip("torch")
F = torch.nn.functional
torch.set_num_threads(1)  # tensors of a few dozen entries: threads only add contention

TORCH_SIGMA = torch_activations()


def torch_backprop(net: dp.Network, X: np.ndarray, Y: np.ndarray, reduction: str,
                   sample_weight: np.ndarray | None = None) -> Any:
    """(loss, dW, db) by autograd, from the net's parameters, in the net's dtype.

    An independent statement of the model: nn.Linear-style z = a Wᵀ + b (a bias unit's column
    is W's last), torch's activations, and the per-sample losses written with torch's
    stable primitives, reduced by mean or sum over samples — with ``sample_weight`` s, the
    weighted loss Σ s_x C_x / Σ s_x (mean) or Σ s_x C_x (sum), differentiated by autograd.
    """
    tdtype = torch.float64 if net.dtype == np.float64 else torch.float32
    Ws = [torch.tensor(layer.W, dtype=tdtype, requires_grad=True) for layer in net.layers]
    bs = [
        None if layer.b is None else torch.tensor(layer.b, dtype=tdtype, requires_grad=True)
        for layer in net.layers
    ]
    A = torch.tensor(np.asarray(X, dtype=net.dtype), dtype=tdtype)
    for layer, W, b in zip(net.layers, Ws, bs, strict=True):
        if layer.has_unit:
            Z = A @ W[:, :-1].T + W[:, -1]
        else:
            Z = A @ W.T if b is None else A @ W.T + b
        A = TORCH_SIGMA[layer.activation.name](Z)
    Y = np.asarray(Y)
    if net.loss.name == "cross_entropy" and Y.ndim == 1:
        T = F.one_hot(torch.tensor(Y, dtype=torch.int64), net.n_outputs).to(tdtype)
    else:
        T = torch.tensor(Y.reshape(len(Y), -1), dtype=tdtype)
    if net.loss.name == "cross_entropy":
        per_sample = -(T * F.log_softmax(Z, dim=1)).sum(dim=1)
    elif net.loss.name == "binary_cross_entropy":
        per_sample = F.binary_cross_entropy_with_logits(Z, T, reduction="none").sum(dim=1)
    elif net.loss.name == "poisson":  # e^z − y z, plus the constant y log y − y of the deviance
        nll = F.poisson_nll_loss(Z, T, log_input=True, full=False, reduction="none")
        per_sample = (nll + torch.xlogy(T, T) - T).sum(dim=1)
    else:  # ½ ‖a − y‖² per sample (torch's MSELoss has no ½ and averages every element)
        per_sample = 0.5 * ((A - T) ** 2).sum(dim=1)
    if sample_weight is not None:
        s = torch.tensor(np.asarray(sample_weight, dtype=net.dtype), dtype=tdtype)
        C = (s * per_sample).sum()
        C = C / s.sum() if reduction == "mean" else C
    else:
        C = per_sample.mean() if reduction == "mean" else per_sample.sum()
    C.backward()
    dW = [W.grad.numpy() for W in Ws]
    db = [None if b is None else b.grad.numpy() for b in bs]
    return C.detach().item(), dW, db


# float64: per array, relative to the array's own largest entry. Both sides differ only by
# rounding (≈ 1e-16 per operation, a few dozen operations deep, amplified by cancellation in
# the sums over samples): the worst seen over 1,760 random nets was 2e-13, so 1e-10 has
# margin and still catches any real difference.
# float32: relative to the *network's* largest gradient entry S (over all torch arrays). In
# float32 the sum over samples that forms db can cancel: a db 2000× smaller than the δs it
# sums was seen, whose own-scale error then reaches 5e-5 — in torch's float32 as much as in
# ours, measured against float64. Against S, 1e-4 is ~1000 ulps (ε_mach ≈ 1.2e-7) of
# accumulated rounding, while a wrong formula is off by O(1).
TORCH_TOL = {"float64": 1e-10, "float32": 1e-4}


def assert_matches_torch(net: dp.Network, X: np.ndarray, Y: Any, reduction: str) -> None:
    tol = TORCH_TOL[net.dtype.name]
    g = net.backprop(X, Y, reduction)
    loss, dW, db = torch_backprop(net, X, Y, reduction)
    S = None
    if net.dtype == np.float32:
        S = max(float(np.max(np.abs(d))) for d in dW + db if d is not None)
    assert rel_err(g.loss, loss) <= tol, (g.loss, loss)  # a sum of losses ≥ 0: no cancelling
    for i, layer in enumerate(net.layers):
        assert g.dW[i].dtype == net.dtype
        assert rel_err(g.dW[i], dW[i], S) <= tol, (i, "W", g.dW[i], dW[i])
        if layer.b is None:
            assert g.db[i] is None and db[i] is None
        else:
            assert g.db[i].dtype == net.dtype
            assert rel_err(g.db[i], db[i], S) <= tol, (i, "b", g.db[i], db[i])


@pytest.mark.parametrize("bias", BIAS_MODES)
@pytest.mark.parametrize(("output", "loss"), PAIRS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_backprop_matches_torch_autograd(problem, hidden, output, loss, bias) -> None:
    """Loss, every dW (a bias unit's column included) and db equal autograd's.

    Depth 1–4, random widths; float64 and float32 (the same float32-rounded parameters on
    both sides), mean and sum.
    """
    net64, X, Y = problem(hidden=hidden, output=output, loss=loss, bias=bias, depth=(1, 4))
    net32 = net64.copy("float32")
    for net in (net64, net32):
        for reduction in ("mean", "sum"):
            assert_matches_torch(net, X, Y, reduction)


@pytest.mark.parametrize("case", range(8))
def test_mixed_layers_match_torch_autograd(problem, case) -> None:
    output, loss = PAIRS[case % len(PAIRS)]
    net, X, Y = problem(hidden="random", output=output, loss=loss, bias="random", depth=(3, 4))
    for reduction in ("mean", "sum"):
        assert_matches_torch(net, X, Y, reduction)


def test_torch_oracle_detects_a_wrong_gradient(problem) -> None:
    """The comparison can fail: a gradient with one entry off by 1e-6 relative is caught."""
    net, X, Y = problem(hidden="tanh", output="softmax", loss="cross_entropy", depth=2)
    _, dW, _ = torch_backprop(net, X, Y, "mean")
    wrong = net.backprop(X, Y).dW[0].copy()
    k = np.unravel_index(np.argmax(np.abs(wrong)), wrong.shape)
    wrong[k] *= 1 + 1e-6
    assert rel_err(wrong, dW[0]) > TORCH_TOL["float64"]


# ------------------------------------------------------------ (c) unit ≡ learned
def unit_and_learned(rng, hidden: str, output: str, loss: str) -> Any:
    """Two nets, same seed: learned biases random, copied into the unit nets' last columns."""
    sizes = [int(k) for k in rng.integers(1, 6, size=int(rng.integers(2, 5)))]
    sizes[-1] = max(sizes[-1], 2)
    common = dict(activation=hidden, output=output, loss=loss, dtype="float64", seed=7)
    learned = dp.Network(sizes, bias="learned", **common)
    unit = dp.Network(sizes, bias="unit", **common)
    for a, b in zip(learned.layers, unit.layers, strict=True):
        np.testing.assert_array_equal(b.W[:, :-1], a.W)  # the constructor drew the same W
        a.b[...] = rng.normal(size=a.b.shape)
        b.W[:, -1] = a.b
    return learned, unit


@pytest.mark.parametrize(("output", "loss"), PAIRS)
@pytest.mark.parametrize("hidden", ["sigmoid", "relu", "gelu"])
def test_unit_equals_learned(rng, targets, hidden, output, loss) -> None:
    """Same loss, δ and gradients: unit's dW last column ≡ learned db.

    Equal up to rounding: the unit path adds b inside the matmul, the learned path after it,
    so sums are ordered differently. float64; 1e-12 relative is ~10⁴ ulps.
    """
    learned, unit = unit_and_learned(rng, hidden, output, loss)
    X = rng.normal(size=(5, learned.n_inputs))
    Y = targets(loss, 5, learned.n_outputs)
    for reduction in ("mean", "sum"):
        gl, gu = learned.backprop(X, Y, reduction), unit.backprop(X, Y, reduction)
        assert rel_err(gu.loss, gl.loss) <= 1e-12
        for i in range(len(learned.layers)):
            assert gu.db[i] is None
            assert rel_err(gu.delta[i], gl.delta[i]) <= 1e-12
            assert rel_err(gu.dW[i][:, :-1], gl.dW[i]) <= 1e-12
            assert rel_err(gu.dW[i][:, -1], gl.db[i]) <= 1e-12
    np.testing.assert_allclose(unit.forward(X), learned.forward(X), rtol=1e-12, atol=1e-15)


def test_unit_trains_like_learned(rng, targets) -> None:
    """Ten SGD steps (momentum, weight decay that skips biases) keep unit ≡ learned."""
    learned, unit = unit_and_learned(rng, "tanh", "softmax", "cross_entropy")
    X = rng.normal(size=(6, learned.n_inputs))
    Y = targets("cross_entropy", 6, learned.n_outputs)
    opts = [dp.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01) for _ in range(2)]
    for _ in range(10):
        opts[0].step(learned, learned.backprop(X, Y))
        opts[1].step(unit, unit.backprop(X, Y))
    for a, b in zip(learned.layers, unit.layers, strict=True):
        assert rel_err(b.W[:, :-1], a.W) <= 1e-12
        assert rel_err(b.W[:, -1], a.b) <= 1e-12


# ------------------------------------------------------------ (d) reductions, δ rows, db
@pytest.mark.parametrize("bias", ["learned", "frozen", "unit"])
def test_sum_is_m_times_mean(problem, bias) -> None:
    net, X, Y = problem(hidden="tanh", output="sigmoid", loss="binary_cross_entropy", bias=bias)
    m = X.shape[0]
    mean, total = net.backprop(X, Y, "mean"), net.backprop(X, Y, "sum")
    # r = 1/m scales one sum, so the two differ by rounding only: 1e-13 is ~500 ulps.
    assert rel_err(total.loss, m * mean.loss) <= 1e-13
    for i in range(len(net.layers)):
        np.testing.assert_array_equal(total.delta[i], mean.delta[i])  # δ has no r in it
        assert rel_err(total.dW[i], m * mean.dW[i]) <= 1e-13
        if total.db[i] is not None:
            assert rel_err(total.db[i], m * mean.db[i]) <= 1e-13


@pytest.mark.parametrize(("output", "loss"), CANONICAL)
def test_delta_rows_are_per_sample_error_signals(problem, output, loss) -> None:
    """Row x of Δ^l is δ^l for sample x alone; dW, db are the sums of per-sample gradients."""
    net, X, Y = problem(hidden="sigmoid", output=output, loss=loss, bias="learned", depth=3)
    Y = np.asarray(Y)
    g = net.backprop(X, Y, "sum")
    singles = [net.backprop(X[k : k + 1], Y[k : k + 1], "sum") for k in range(len(X))]
    for i in range(len(net.layers)):
        for k, s in enumerate(singles):
            assert rel_err(g.delta[i][k], s.delta[i][0]) <= 1e-13  # same arithmetic per row
        assert rel_err(g.dW[i], sum(s.dW[i] for s in singles)) <= 1e-12
        assert rel_err(g.db[i], sum(s.db[i] for s in singles)) <= 1e-12
        np.testing.assert_allclose(g.db[i], g.delta[i].sum(axis=0), rtol=1e-14)


def test_bias_gradient_sums_over_samples_not_neurons() -> None:
    """Seed 002: ∂C/∂b_k is neuron k's own δ (summed over samples), not the layer's Σ_j δ_j.

    A hand-built case where the two differ: one linear layer of two neurons, mse, identity,
    W = 0, b = 0, so a = 0 and δ = a − y = −y. For y = [[1, 0], [0, 3]] (sum reduction):
    own-δ rule db = Σ_samples δ = [−1, −3]; the layer-sum rule would give −4 for both.
    """
    net = dp.Network([1, 2], output="identity", loss="mse", dtype="float64")
    net.layers[0].W[...] = 0
    g = net.backprop([[5.0], [7.0]], [[1.0, 0.0], [0.0, 3.0]], "sum")
    np.testing.assert_array_equal(g.delta[0], [[-1.0, 0.0], [0.0, -3.0]])
    np.testing.assert_array_equal(g.db[0], [-1.0, -3.0])
    wrong = gradcheck.layer_sum_bias_gradient(g)[0]
    np.testing.assert_array_equal(wrong, [-4.0, -4.0])
    assert not np.allclose(g.db[0], wrong)


# ------------------------------------------------------------ (e) δ^L shortcut
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("output", "loss"), CANONICAL)
def test_shortcut_equals_general_path(problem, output, loss, dtype) -> None:
    """δ^L = a − y equals ∂C/∂a ⊙ σ'(z^L) (softmax: its Jacobian product), and so do all
    gradients. The general path divides by a (CE) or a(1 − a) (BCE) and multiplies back:
    rounding only, 1e-10 in float64 and 1e-4 in float32 (as against torch). Outputs stay
    away from 0 and 1 here, where the general path's clipping would change the result.
    """
    net, X, Y = problem(hidden="tanh", output=output, loss=loss, dtype=dtype, depth=(2, 4))
    assert net.uses_shortcut
    tol = TORCH_TOL[dtype]
    for reduction in ("mean", "sum"):
        fast = net.backprop(X, Y, reduction)
        general = net.backprop(X, Y, reduction, shortcut=False)
        assert rel_err(fast.delta[-1], general.delta[-1]) <= tol
        for i in range(len(net.layers)):
            assert rel_err(fast.dW[i], general.dW[i]) <= tol
            assert rel_err(fast.db[i], general.db[i]) <= tol


def test_shortcut_off_for_non_canonical_pairs() -> None:
    assert not dp.Network([2, 3], output="sigmoid", loss="mse").uses_shortcut
    assert not dp.Network([2, 3], output="softmax", loss="mse").uses_shortcut


# ------------------------------------------------------------ (f) hand-worked example
def test_hand_worked_backprop_and_sgd_step() -> None:
    """A 2-2-1 net, relu hidden, identity output, mse, one sample, one SGD step (α = 0.1).

    x = (1, 2), y = 1.  W¹ = [[0.1, 0.2], [−0.3, 0.4]], b¹ = (0.1, −0.1);
                        W² = [[0.5, −1]], b² = 0.2.

    Forward (2):  z¹ = (0.1·1 + 0.2·2 + 0.1, −0.3·1 + 0.4·2 − 0.1) = (0.6, 0.4)
                  a¹ = relu(z¹) = (0.6, 0.4)
                  z² = 0.5·0.6 − 1·0.4 + 0.2 = 0.1;  a² = 0.1
    Loss:         C = ½ (0.1 − 1)² = ½ · 0.81 = 0.405
    (9)  δ² = a² − y = −0.9
    (10) ∂C/∂W² = δ² a¹ = (−0.54, −0.36)     (14) ∂C/∂b² = −0.9
    (8)  δ¹ = W²ᵀ δ² ⊙ relu'(z¹) = (0.5·−0.9, −1·−0.9) ⊙ (1, 1) = (−0.45, 0.9)
    (10) ∂C/∂W¹ = δ¹ xᵀ = [[−0.45, −0.9], [0.9, 1.8]]    (14) ∂C/∂b¹ = (−0.45, 0.9)
    (11), (15) with α = 0.1:
         W² = (0.5 + 0.054, −1 + 0.036) = (0.554, −0.964);  b² = 0.2 + 0.09 = 0.29
         W¹ = [[0.145, 0.29], [−0.39, 0.22]];  b¹ = (0.145, −0.19)
    After: z¹ = (0.145 + 0.58 + 0.145, −0.39 + 0.44 − 0.19) = (0.87, −0.14), a¹ = (0.87, 0)
           a² = 0.554·0.87 + 0.29 = 0.77198;  C = ½ (0.22802)² = 0.0259965602 < 0.405
    """
    net = dp.Network([2, 2, 1], activation="relu", output="identity", loss="mse", dtype="float64")
    l1, l2 = net.layers
    l1.W[...] = [[0.1, 0.2], [-0.3, 0.4]]
    l1.b[...] = [0.1, -0.1]
    l2.W[...] = [[0.5, -1.0]]
    l2.b[...] = [0.2]
    X, Y = [[1.0, 2.0]], [[1.0]]

    g = net.backprop(X, Y)
    close = dict(rtol=0, atol=1e-15)  # the decimals above, up to float64 rounding
    np.testing.assert_allclose(g.loss, 0.405, **close)
    np.testing.assert_allclose(g.delta[1], [[-0.9]], **close)
    np.testing.assert_allclose(g.dW[1], [[-0.54, -0.36]], **close)
    np.testing.assert_allclose(g.db[1], [-0.9], **close)
    np.testing.assert_allclose(g.delta[0], [[-0.45, 0.9]], **close)
    np.testing.assert_allclose(g.dW[0], [[-0.45, -0.9], [0.9, 1.8]], **close)
    np.testing.assert_allclose(g.db[0], [-0.45, 0.9], **close)

    dp.optim.SGD(lr=0.1).step(net, g)
    np.testing.assert_allclose(l2.W, [[0.554, -0.964]], **close)
    np.testing.assert_allclose(l2.b, [0.29], **close)
    np.testing.assert_allclose(l1.W, [[0.145, 0.29], [-0.39, 0.22]], **close)
    np.testing.assert_allclose(l1.b, [0.145, -0.19], **close)
    np.testing.assert_allclose(net.forward(X), [[0.77198]], **close)
    np.testing.assert_allclose(net.backprop(X, Y).loss, 0.0259965602, **close)


# ------------------------------------------------------------ (g) properties
@pytest.mark.parametrize("bias", BIAS_MODES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_preserved(rng, dtype, bias) -> None:
    """Parameters, δ, gradients and outputs stay in the net's dtype, whatever X's dtype is."""
    net = dp.Network([4, 5, 3], activation="gelu", bias=bias, dtype=dtype)
    want = np.dtype(dtype)
    X = rng.normal(size=(6, 4))  # float64 input, cast by the net
    g = net.backprop(X, rng.integers(0, 3, 6))
    for i, layer in enumerate(net.layers):
        assert layer.W.dtype == want
        assert layer.b is None or layer.b.dtype == want
        assert g.delta[i].dtype == g.dW[i].dtype == want
        assert g.db[i] is None or g.db[i].dtype == want
    assert isinstance(g.loss, float)
    assert net.forward(X).dtype == want
    assert net.predict_proba(X.astype(np.float32)).dtype == want
    dp.optim.SGD(lr=0.1, momentum=0.9).step(net, g)
    assert all(p.dtype == want for _, p in net.parameters())


def test_same_seed_same_weights_different_seed_different() -> None:
    a, b, c = (dp.Network([5, 4, 3], seed=s) for s in (3, 3, 4))
    for la, lb, lc in zip(a.layers, b.layers, c.layers, strict=True):
        np.testing.assert_array_equal(la.W, lb.W)
        assert not np.array_equal(la.W, lc.W)


def test_seed_does_not_touch_global_random_state() -> None:
    state = np.random.get_state()[1].copy()  # noqa: NPY002 - the legacy state is the subject
    dp.Network([5, 4, 3], seed=1)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


@pytest.mark.parametrize("bias", BIAS_MODES)
def test_bias_init_is_respected(bias) -> None:
    net = dp.Network([3, 4, 2], bias=bias, bias_init=0.25)
    for layer in net.layers:
        if bias in ("learned", "frozen"):
            np.testing.assert_array_equal(layer.b, np.float32(0.25))
            assert layer.W.shape == (layer.n_out, layer.n_in)
        elif bias == "unit":
            assert layer.b is None and layer.W.shape == (layer.n_out, layer.n_in + 1)
            np.testing.assert_array_equal(layer.W[:, -1], np.float32(0.25))
        else:
            assert layer.b is None and layer.W.shape == (layer.n_out, layer.n_in)


def test_frozen_bias_gradient_reported_but_never_applied(problem) -> None:
    net, X, Y = problem(hidden="tanh", output="softmax", loss="cross_entropy", bias="frozen")
    before = [layer.b.copy() for layer in net.layers]
    g = net.backprop(X, Y)
    assert all(db is not None and np.abs(db).max() > 0 for db in g.db)
    dp.optim.SGD(lr=0.5, momentum=0.9, weight_decay=0.1, decay_bias=True).step(net, g)
    for layer, b in zip(net.layers, before, strict=True):
        np.testing.assert_array_equal(layer.b, b)


def test_backprop_changes_nothing(problem) -> None:
    net, X, Y = problem(hidden="elu", output="sigmoid", loss="binary_cross_entropy", bias="unit")
    before = [p.copy() for _, p in net.parameters()]
    net.backprop(X, Y)
    for (_, p), q in zip(net.parameters(), before, strict=True):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("bias", BIAS_MODES)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_forward_equals_the_backward_pass_forward(rng, hidden, bias) -> None:
    """``forward`` (inference path, one layer at a time) gives backprop's A^L exactly.

    This caught a bug: the inference path computed σ in place (out = Z), which is wrong for
    σ that read Z after writing out (leaky_relu, elu, softplus, gelu).
    """
    net = dp.Network(
        [3, 5, 4, 2],
        activation=hidden,
        output="identity",
        loss="mse",
        bias=bias,
        dtype="float64",
        seed=1,
    )
    X = rng.normal(size=(7, 3))
    ws = net.workspace(7)
    ws.inputs[...] = X
    ws.targets[...] = 0
    net.backprop_into(ws, 1.0)
    np.testing.assert_allclose(net.forward(X), ws.A[-1], rtol=1e-14, atol=1e-15)
    loss = 0.5 * float(np.mean(np.sum(ws.A[-1] ** 2, axis=1)))
    assert abs(net.evaluate(X, np.zeros((7, 2)))["loss"] - loss) <= 1e-14 * max(loss, 1.0)


def test_loss_finite_when_a_probability_underflows() -> None:
    """Huge logits: softmax gives a probability of exactly 0 for the true class, yet the CE
    loss (computed from z by log-sum-exp) is finite and equals the logit gap."""
    net = dp.Network([1, 2], output="softmax", loss="cross_entropy", dtype="float64")
    net.layers[0].W[...] = [[1000.0], [-1000.0]]
    g = net.backprop([[1.0]], [1])  # true class 1 has p = e^{-2000} = 0
    assert net.forward([[1.0]])[0, 1] == 0.0
    assert g.loss == pytest.approx(2000.0, rel=1e-12)
    assert np.isfinite(g.dW[0]).all()


# ------------------------------------------------------------ (h) bad input
def build(**kwargs: Any) -> Any:
    return lambda: dp.Network(**{"sizes": [3, 4, 2], **kwargs})


def backprop(X: Any = None, Y: Any = None, net: dict[str, Any] | None = None, **kw: Any) -> Any:
    def call() -> Any:
        n = dp.Network([3, 4, 2], **(net or {}))
        x = np.zeros((4, 3)) if X is None else X
        y = [0, 1, 1, 0] if Y is None else Y
        return n.backprop(x, y, **kw)

    return call


NAN_X = np.zeros((4, 3))
NAN_X[1, 2] = np.nan
HUGE_INF_X = np.full((4, 3), 3e38, dtype=np.float32)
HUGE_INF_X[2, 1] = -np.inf
INF_Y = np.zeros((4, 2))
INF_Y[0, 0] = np.inf

BAD_INPUT = [
    # (id, call, exception, message pattern)
    (
        "X wrong columns",
        backprop(X=np.zeros((4, 5))),
        ValueError,
        r"`X` must have shape \(m, 3\); got shape \(4, 5\)",
    ),
    ("X 3-D", backprop(X=np.zeros((4, 3, 1))), ValueError, r"`X` must have shape \(m, 3\)"),
    ("X empty", backprop(X=np.zeros((0, 3))), ValueError, r"`X` has no samples"),
    ("X strings", backprop(X=[["a", "b", "c"]] * 4), TypeError, r"`X` must hold numbers"),
    ("X ragged", backprop(X=[[1, 2, 3], [1, 2]]), TypeError, r"`X` must be an array of numbers"),
    ("X NaN", backprop(X=NAN_X), ValueError, r"`X` contains NaN or inf"),
    # the row sums that screen X overflow here too; the exact check then finds the inf
    ("X inf among huge", backprop(X=HUGE_INF_X), ValueError, r"`X` contains NaN or inf"),
    ("Y rows", backprop(Y=[0, 1, 1]), ValueError, r"`Y` has 3 rows; X has 4"),
    (
        "Y columns",
        backprop(Y=np.zeros((4, 3))),
        ValueError,
        r"`Y` must have shape \(4,\) or \(4, 2\); got \(4, 3\)",
    ),
    ("Y inf", backprop(Y=INF_Y), ValueError, r"`Y` contains NaN or inf"),
    ("Y NaN label", backprop(Y=[0, 1, np.nan, 0]), ValueError, r"`Y` contains NaN or inf"),
    (
        "label too big",
        backprop(Y=[0, 1, 2, 0]),
        ValueError,
        r"label 2 outside the 2 classes 0\.\.1",
    ),
    ("label negative", backprop(Y=[0, -1, 1, 0]), ValueError, r"label -1 outside the 2 classes"),
    ("label not integer", backprop(Y=[0, 0.5, 1, 0]), ValueError, r"class labels must be integers"),
    # a float label beyond int64 once went through a wrapping cast (RuntimeWarning)
    ("label huge", backprop(Y=[0, 1e20, 1, 0]), ValueError, r"label 100000000000000000000 outside"),
    (
        # once said "must have shape (4,) or (4, 2); got (4,)": (4,) is not valid here
        "BCE 1-D targets, 2 outputs",
        backprop(Y=[0, 1, 1, 0], net=dict(output="sigmoid", loss="binary_cross_entropy")),
        ValueError,
        r"`Y` must have shape \(4, 2\); got \(4,\)$",
    ),
    (
        "mse Y columns",
        backprop(Y=np.zeros((4, 3)), net=dict(output="identity", loss="mse")),
        ValueError,
        r"`Y` must have shape \(4, 2\); got \(4, 3\)$",
    ),
    ("Y strings", backprop(Y=["a", "b", "a", "b"]), TypeError, r"`Y` must hold numbers"),
    (
        "BCE target > 1",
        backprop(Y=np.full((4, 2), 2.0), net=dict(output="sigmoid", loss="binary_cross_entropy")),
        ValueError,
        r"binary_cross_entropy must lie in \[0, 1\]",
    ),
    (
        "bad reduction",
        backprop(reduction="avg"),
        ValueError,
        r"`reduction` must be one of mean, sum; got 'avg'",
    ),
    (
        "unknown activation",
        build(activation="swish"),
        ValueError,
        r"unknown activation 'swish'; choose one of: elu, exp, gelu, identity, leaky_relu, "
        r"relu, sigmoid, softmax, softplus, tanh$",
    ),
    (
        "unknown output",
        build(output="argmax"),
        ValueError,
        r"unknown activation 'argmax'; choose one of: elu",
    ),
    (
        "unknown loss",
        build(loss="hinge"),
        ValueError,
        r"unknown loss 'hinge'; choose one of: binary_cross_entropy, cross_entropy, mse, "
        r"poisson$",
    ),
    (
        "unknown bias",
        build(bias="learnt"),
        ValueError,
        r"`bias` must be one of learned, frozen, none, unit; got 'learnt'",
    ),
    (
        "unknown init",
        build(init="xavier"),
        ValueError,
        r"unknown init 'xavier'; choose one of: classic, glorot_normal, glorot_uniform, "
        r"he_normal, he_uniform, lecun_normal$",
    ),
    (
        "unknown dtype",
        build(dtype="float16"),
        ValueError,
        r"unknown dtype 'float16'; choose one of: float32, float64",
    ),
    (
        "nonsense dtype",
        build(dtype="double-ish"),
        ValueError,
        r"unknown dtype 'double-ish'; choose one of: float32, float64",
    ),
    (
        "None dtype",
        build(dtype=None),
        ValueError,
        r"unknown dtype None; choose one of: float32, float64",
    ),
    (
        "softmax hidden",
        build(activation="softmax"),
        ValueError,
        r"'softmax' is allowed only as the output \(layer 1 is hidden\)",
    ),
    (
        "exp hidden",
        build(activation="exp"),
        ValueError,
        r"'exp' is allowed only as the output \(layer 1 is hidden\)",
    ),
    (
        "poisson with identity",
        build(output="identity", loss="poisson"),
        ValueError,
        r"`output` 'identity' does not fit loss 'poisson'; use output='exp'",
    ),
    (
        "sigmoid with CE",
        build(output="sigmoid", loss="cross_entropy"),
        ValueError,
        r"`output` 'sigmoid' does not fit loss 'cross_entropy'; use output='softmax'",
    ),
    (
        "softmax with BCE",
        build(output="softmax", loss="binary_cross_entropy"),
        ValueError,
        r"`output` 'softmax' does not fit loss 'binary_cross_entropy'; use output='sigmoid'",
    ),
    ("sizes too short", build(sizes=[3]), ValueError, r"`sizes` needs at least 2 entries"),
    ("sizes empty", build(sizes=[]), ValueError, r"`sizes` needs at least 2 entries"),
    ("size zero", build(sizes=[3, 0, 2]), ValueError, r"`sizes\[1\]` must be >= 1; got 0"),
    ("size negative", build(sizes=[-3, 2]), ValueError, r"`sizes\[0\]` must be >= 1; got -3"),
    ("size float", build(sizes=[3, 2.5]), TypeError, r"`sizes\[1\]` must be an integer; got 2\.5"),
    ("size bool", build(sizes=[3, True]), TypeError, r"`sizes\[1\]` must be an integer; got True"),
    ("sizes a string", build(sizes="3,2"), TypeError, r"`sizes` must be a list of layer sizes"),
    ("sizes an int", build(sizes=3), TypeError, r"`sizes` must be a list of layer sizes"),
    (
        "bias list length",
        build(bias=["learned"]),
        ValueError,
        r"`bias` needs 2 entries, one per layer; got 1",
    ),
    (
        "activation list length",
        build(sizes=[3, 4, 4, 2], activation=["relu"]),
        ValueError,
        r"`activation` needs 2 entries, one per hidden layer; got 1",
    ),
    (
        "bias list entry",
        build(bias=["learned", "sometimes"]),
        ValueError,
        r"`bias` must be one of .*got 'sometimes'",
    ),
    (
        "bias_init text",
        build(bias_init="zero"),
        TypeError,
        r"`bias_init` must be a number; got 'zero'",
    ),
    (
        "bias_init NaN",
        build(bias_init=float("nan")),
        ValueError,
        r"`bias_init` must be finite; got nan",
    ),
    ("seed negative", build(seed=-1), ValueError, r"`seed` must be >= 0; got -1"),
    ("seed float", build(seed=1.5), TypeError, r"`seed` must be an integer; got 1\.5"),
]


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [pytest.param(c, e, m, id=i) for i, c, e, m in BAD_INPUT],
)
def test_bad_input_raises_a_clear_error(call, exc, match) -> None:
    with pytest.raises(exc, match=match):
        call()


def test_activation_list_may_name_every_layer_with_the_output_last():
    # DESIGN.md §3: `activation` takes one entry per layer; the last one is the output's σ.
    net = dp.Network([2, 3, 4, 2], activation=["tanh", "relu", "softmax"])
    assert [layer.activation.name for layer in net.layers] == ["tanh", "relu", "softmax"]
    with pytest.raises(ValueError, match="last entry 'sigmoid' is the output layer's"):
        dp.Network([2, 3, 2], activation=["tanh", "sigmoid"])


def test_copy_is_independent_of_the_original():
    net = dp.Network([2, 3, 2], seed=0)
    other = net.copy("float64")
    other.sizes[0] = 99
    other.layers[0].W[...] = 0
    assert net.sizes == [2, 3, 2]
    assert np.abs(net.layers[0].W).sum() > 0
    assert other.layers[0].W.dtype == np.float64


@pytest.mark.parametrize("Y", [[[1.0, 1.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]],
                               [[1.5, -0.5], [0.0, 1.0]]], ids=["multi-hot", "zero", "negative"])
def test_cross_entropy_targets_must_be_distributions(Y):
    # δ^L = a − y equals ∂C/∂z only when Σ_k y_k = 1 with y ≥ 0, so anything else is refused.
    net = dp.Network([2, 2], output="softmax", loss="cross_entropy")
    with pytest.raises(ValueError, match="one-hot or probabilities summing to 1"):
        net.backprop(np.zeros((2, 2)), np.array(Y))


def test_sigmoid_keeps_relative_precision_far_below_zero():
    # float32 σ(−17) = 4.1399e-8 and σ(−20) = 2.0612e-9 (float64 reference); the tanh form
    # gave 5.96e-8 and 0. 1e-5 relative: a few float32 ulps through log and exp.
    z = np.array([-20.0, -17.0, -10.0, 10.0], dtype=np.float32)
    reference = 1 / (1 + np.exp(-z.astype(np.float64)))
    np.testing.assert_allclose(activations.get("sigmoid")(z), reference, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_huge_finite_inputs_are_accepted(dtype):
    """X near the dtype's largest value: the row sums overflow to inf, yet X is finite."""
    big = np.finfo(dtype).max / 2
    X = np.full((4, 3), big, dtype=dtype)
    net = dp.Network([3, 2], dtype=dtype, seed=0)
    with np.errstate(over="ignore"):
        assert not np.isfinite(X @ np.ones(3, dtype=dtype)).all()  # the screen would refuse
    assert net.check_X(X) is not None


def test_float64_beyond_float32_range_is_named():
    net = dp.Network([2, 2], seed=0)  # float32
    with pytest.raises(ValueError, match=r"beyond float32's range .* use float64"):
        net.check_X(np.full((3, 2), 1e300))


# ------------------------------------------------------------ (e) sample weights
def weights(rng: np.random.Generator, m: int) -> np.ndarray:
    """Random weights ≥ 0, a zero among them, never all zero."""
    s = rng.uniform(0.0, 3.0, size=m)
    s[int(rng.integers(m))] = 0.0
    s[int(rng.integers(m))] += 0.5  # at least one positive (a 0 drawn twice stays ≥ 0.5)
    return s


@pytest.mark.parametrize("bias", ["learned", "frozen", "unit"])
@pytest.mark.parametrize(("output", "loss"), PAIRS)
def test_weighted_backprop_matches_torch(problem, rng, output, loss, bias) -> None:
    """Σ s_x ∂C_x/∂w (÷ Σ s_x for the mean) equals autograd of torch's weighted loss, every
    loss and output, both reductions, float64, to TORCH_TOL (1e-10, its comment says why)."""
    net, X, Y = problem(hidden="tanh", output=output, loss=loss, bias=bias, depth=(1, 3))
    s = weights(rng, X.shape[0])
    for reduction in ("mean", "sum"):
        g = net.backprop(X, Y, reduction, sample_weight=s)
        want_loss, dW, db = torch_backprop(net, X, Y, reduction, sample_weight=s)
        assert rel_err(g.loss, want_loss) <= TORCH_TOL["float64"]
        for i in range(len(net.layers)):
            assert rel_err(g.dW[i], dW[i]) <= TORCH_TOL["float64"], (reduction, i, "W")
            if db[i] is not None:
                assert rel_err(g.db[i], db[i]) <= TORCH_TOL["float64"], (reduction, i, "b")


@pytest.mark.parametrize(("output", "loss"), CANONICAL)
def test_integer_weights_equal_repeated_samples(problem, rng, output, loss) -> None:
    """Weight k is the sample k times: same loss and gradients, mean and sum (rounding
    only: the sums run in another order, 1e-12 relative)."""
    net, X, Y = problem(hidden="sigmoid", output=output, loss=loss, bias="learned")
    s = rng.integers(0, 4, size=X.shape[0])
    s[0] = max(s[0], 1)
    repeated = np.repeat(np.arange(X.shape[0]), s)
    Y = np.asarray(Y)
    for reduction in ("mean", "sum"):
        g = net.backprop(X, Y, reduction, sample_weight=s)
        h = net.backprop(X[repeated], Y[repeated], reduction)
        assert rel_err(g.loss, h.loss) <= 1e-12
        for i in range(len(net.layers)):
            assert rel_err(g.dW[i], h.dW[i]) <= 1e-12
            assert rel_err(g.db[i], h.db[i]) <= 1e-12


def test_zero_weights_equal_dropping_samples(problem, rng) -> None:
    net, X, Y = problem(hidden="relu", output="softmax", loss="cross_entropy", m=6)
    s = np.array([1.0, 0.0, 2.0, 0.0, 0.5, 1.0])
    kept = s > 0
    Y = np.asarray(Y)
    for reduction in ("mean", "sum"):
        g = net.backprop(X, Y, reduction, sample_weight=s)
        h = net.backprop(X[kept], Y[kept], reduction, sample_weight=s[kept])
        assert rel_err(g.loss, h.loss) <= 1e-14
        for i in range(len(net.layers)):
            assert rel_err(g.dW[i], h.dW[i]) <= 1e-14
        # δ stays the per-sample error signal (eq. 6); only its use in (10), (14) is weighted
        np.testing.assert_array_equal(g.delta[-1], net.backprop(X, Y, reduction).delta[-1])


def test_unit_weights_equal_no_weights_and_zero_weights_give_zero(problem) -> None:
    net, X, Y = problem(hidden="tanh", output="identity", loss="mse")
    m = X.shape[0]
    for reduction in ("mean", "sum"):
        g = net.backprop(X, Y, reduction, sample_weight=np.ones(m))
        h = net.backprop(X, Y, reduction)
        assert rel_err(g.loss, h.loss) <= 1e-14  # a dot product instead of r · sum
        for i in range(len(net.layers)):
            np.testing.assert_array_equal(g.dW[i], h.dW[i])  # r_x = 1/m is the same r
    z = net.backprop(X, Y, "mean", sample_weight=np.zeros(m))  # 0/0: defined as 0
    assert z.loss == 0 and all(not dW.any() for dW in z.dW)


@pytest.mark.parametrize(
    ("s", "match"),
    [(np.ones(2), r"`sample_weight` must have shape \(3,\), one weight per sample; got \(2,\)"),
     (np.array([1.0, -1.0, 1.0]), r"`sample_weight` must be >= 0; got -1"),
     (np.array([1.0, np.nan, 1.0]), "`sample_weight` contains NaN or inf"),
     (np.array(["a", "b", "c"]), "`sample_weight` must hold numbers")],
)
def test_bad_sample_weight(s, match) -> None:
    net = dp.Network([2, 2], seed=0)
    with pytest.raises(ValueError, match=match):
        net.backprop(np.zeros((3, 2)), [0, 1, 0], sample_weight=s)


# ------------------------------------------------------------ (f) sparse input
sparse = pytest.importorskip("scipy.sparse")


@pytest.mark.parametrize("m", [1, 7])
@pytest.mark.parametrize(("output", "loss"), CANONICAL)
def test_sparse_input_gradients_equal_the_dense_path(rng, output, loss, m) -> None:
    """A CSR X gives the dense path's loss, δ, dW and db (m = 1: the online branch of
    eq. 10), with and without weights. Same products over the nonzeros only: 1e-13."""
    n_out = 3
    net = dp.Network([40, 6, n_out], activation="tanh", output=output, loss=loss,
                     dtype="float64", seed=int(rng.integers(1000)))
    X = sparse.random(m, 40, density=0.1, format="csr", random_state=int(rng.integers(1000)),
                      dtype=np.float64)
    Y = random_targets(rng, loss, m, n_out)
    for s in (None, rng.uniform(0.5, 2.0, m)):
        for reduction in ("mean", "sum"):
            g = net.backprop(X, Y, reduction, sample_weight=s)
            h = net.backprop(X.toarray(), Y, reduction, sample_weight=s)
            assert rel_err(g.loss, h.loss) <= 1e-13
            for i in range(2):
                assert rel_err(g.dW[i], h.dW[i]) <= 1e-13
                assert rel_err(g.db[i], h.db[i]) <= 1e-13
                assert rel_err(g.delta[i], h.delta[i]) <= 1e-13


def test_sparse_input_predicts_as_dense_and_stays_sparse(rng, monkeypatch) -> None:
    net = dp.Network([30, 5, 3], dtype="float64", seed=0)
    X = sparse.random(50, 30, density=0.2, format="csc", random_state=0)  # any format: CSR
    monkeypatch.setattr("deltaprop.network.INFERENCE_BLOCK", 16)  # several CSR blocks
    np.testing.assert_allclose(net.predict_proba(X), net.predict_proba(X.toarray()),
                               rtol=1e-13, atol=1e-15)
    checked = net.check_X(X.tocsr())
    assert checked.format == "csr" and checked.nnz == X.nnz  # never densified


def test_sparse_input_errors() -> None:
    net = dp.Network([4, 2], bias="unit", seed=0)
    with pytest.raises(ValueError, match="sparse, and layer 1 has a bias unit"):
        net.backprop(sparse.eye(3, 4, format="csr"), [0, 1, 0])
    net = dp.Network([4, 2], seed=0)
    X = sparse.csr_matrix(np.array([[np.nan, 0, 0, 1.0]]))
    with pytest.raises(ValueError, match="`X` contains NaN or inf"):
        net.forward(X)
    with pytest.raises(ValueError, match=r"must have shape \(m, 4\); got shape \(1, 3\)"):
        net.forward(sparse.csr_matrix(np.ones((1, 3))))
