"""Tests for gradcheck.py: the finite-difference tool itself, and seed 002's bias question.

Tolerance: ``check``'s default, 1e-6 relative to the network's largest gradient entry, with
ε = 1e-5 in float64 (gradcheck's module docstring: the central difference is accurate to
≈ 1e-10 of that scale; the worst seen over 4,400 random nets was 6e-8).
"""

from __future__ import annotations

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import activations, gradcheck
from deltaprop.layers import BIAS_MODES


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("bias", [*BIAS_MODES, "random"])
def test_check_passes_for_every_bias_mode(problem, bias, reduction) -> None:
    net, X, Y = problem(hidden="tanh", output="softmax", loss="cross_entropy", bias=bias)
    report = gradcheck.check(net, X, Y, reduction)
    assert report.passed, str(report)
    assert report.max_rel <= report.tol == 1e-6
    assert report.bias_rule == "delta" and report.reduction == reduction


@pytest.mark.parametrize("bias", ["learned", "frozen", "unit"])
def test_check_fails_for_the_layer_sum_bias_rule(problem, bias) -> None:
    """Seed 002's mistaken rule — every bias corrected by the sum of the layer's δs — fails.

    Every layer has ≥ 2 neurons, so Σ_j δ_j differs from a neuron's own δ_k. The failing
    rows are the biases (the unit's W holds them in its last column); the weights pass.
    """
    net, X, Y = problem(
        hidden="sigmoid", output="softmax", loss="cross_entropy", bias=bias, sizes=[3, 4, 3]
    )
    assert gradcheck.check(net, X, Y).passed  # the correct rule passes on this very net
    report = gradcheck.check(net, X, Y, bias_rule="layer-sum")
    assert not report.passed
    assert report.max_rel > 1e-3  # not a near miss: the rule is wrong by O(1)
    failing = {(l, name) for l, name, _, _, ok in report.rows() if not ok}
    param = "W" if bias == "unit" else "b"
    assert failing == {(1, param), (2, param)}
    assert "FAIL" in str(report) and "FAILED" in str(report)


def test_layer_sum_rule_is_right_only_for_single_neuron_layers(problem) -> None:
    """With one neuron per layer Σ_j δ_j = δ_1, so the mistaken rule cannot be told apart;
    with no bias at all there is nothing to get wrong. The check passes in both cases."""
    net, X, Y = problem(
        hidden="tanh", output="sigmoid", loss="binary_cross_entropy", sizes=[3, 1, 1]
    )
    assert gradcheck.check(net, X, Y, bias_rule="layer-sum").passed
    net, X, Y = problem(
        hidden="tanh", output="softmax", loss="cross_entropy", bias="none", sizes=[3, 4, 3]
    )
    assert gradcheck.check(net, X, Y, bias_rule="layer-sum").passed


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_layer_sum_bias_gradient_values(problem, reduction) -> None:
    net, X, Y = problem(hidden="relu", output="identity", loss="mse", bias="none", sizes=[2, 3, 4])
    g = net.backprop(X, Y, reduction)
    r = 1 / len(X) if reduction == "mean" else 1.0
    wrong = gradcheck.layer_sum_bias_gradient(g)
    assert len(wrong) == 2  # one per layer, whatever the bias mode
    for delta, w in zip(g.delta, wrong, strict=True):
        assert w.shape == (delta.shape[1],) and w.dtype == delta.dtype
        np.testing.assert_allclose(w, np.full(delta.shape[1], r * delta.sum()), rtol=1e-14)
        right = r * delta.sum(axis=0)  # eq. (14): each neuron's own δ, summed over samples
        assert not np.allclose(w, right)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("bias", BIAS_MODES)
def test_numerical_gradients_of_a_linear_model_are_exact(rng, bias, reduction) -> None:
    """Closed form for one identity layer with mse: ∂C/∂W = r (Z − Y)ᵀ X, ∂C/∂b = r Σ (Z − Y).

    C is quadratic in θ, so the central difference has no truncation error; what remains is
    rounding, ≈ ε_mach |C| / ε ≈ 1e-10 · |C| — 1e-8 relative to the largest entry has margin.
    """
    net = dp.Network([3, 2], output="identity", loss="mse", bias=bias, dtype="float64")
    layer = net.layers[0]
    if layer.b is not None:
        layer.b[...] = [0.3, -0.7]
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    r = 1 / 5 if reduction == "mean" else 1.0
    Xu = np.hstack([X, np.ones((5, 1))]) if layer.has_unit else X  # the bias unit's input 1
    Z = Xu @ layer.W.T + (0 if layer.b is None else layer.b)
    dW, db = gradcheck.numerical_gradients(net, X, Y, reduction)
    scale = np.abs(r * (Z - Y).T @ Xu).max()
    np.testing.assert_allclose(dW[0], r * (Z - Y).T @ Xu, rtol=0, atol=1e-8 * scale)
    if layer.b is None:
        assert db == [None]
    else:
        np.testing.assert_allclose(db[0], r * (Z - Y).sum(axis=0), rtol=0, atol=1e-8 * scale)


def test_numerical_gradients_shapes_dtype_and_net_untouched(rng) -> None:
    net = dp.Network([3, 4, 2], activation="tanh", bias=["unit", "frozen"], dtype="float32")
    before = [p.copy() for _, p in net.parameters()]
    X, Y = rng.normal(size=(4, 3)), rng.integers(0, 2, 4)
    dW, db = gradcheck.numerical_gradients(net, X, Y)
    assert [w.shape for w in dW] == [(4, 4), (2, 4)]  # unit layer: W has the bias column
    assert db[0] is None and db[1].shape == (2,)  # frozen: C still depends on b
    assert all(w.dtype == np.float64 for w in dW) and db[1].dtype == np.float64
    for (_, p), q in zip(net.parameters(), before, strict=True):
        assert p.dtype == np.float32
        np.testing.assert_array_equal(p, q)


def test_check_works_on_a_float32_net(problem) -> None:
    """The check casts to float64 (STYLE §3); a float32 net is not held to float32 noise."""
    net, X, Y = problem(
        hidden="gelu", output="sigmoid", loss="binary_cross_entropy", dtype="float32"
    )
    assert net.dtype == np.float32
    assert gradcheck.check(net, X, Y).passed


def test_check_catches_a_wrong_derivative(problem, monkeypatch) -> None:
    """A backprop with a wrong σ' (tanh' = 1 − a instead of 1 − a²) fails the check."""
    net, X, Y = problem(hidden="tanh", output="identity", loss="mse", sizes=[3, 4, 4, 2])
    assert gradcheck.check(net, X, Y).passed

    def wrong_prime(self, Z, A, out):
        return np.subtract(1, A, out=out)

    monkeypatch.setattr(activations.Tanh, "prime", wrong_prime)
    report = gradcheck.check(net, X, Y)
    assert not report.passed
    failing = {(l, name) for l, name, _, _, ok in report.rows() if not ok}
    assert (1, "W") in failing and (3, "W") not in failing  # the last layer has no tanh'


def test_report_rows_and_text(problem) -> None:
    net, X, Y = problem(
        hidden="relu",
        output="softmax",
        loss="cross_entropy",
        bias=["learned", "none"],
        sizes=[2, 3, 2],
    )
    report = gradcheck.check(net, X, Y)
    rows = report.rows()
    assert [(l, name) for l, name, *_ in rows] == [(1, "W"), (1, "b"), (2, "W")]
    for _, _, abs_err, rel_err, ok in rows:
        assert abs_err >= 0 and rel_err == pytest.approx(abs_err / report.scale) and ok
    assert report.layers[1].b_abs is None and report.layers[1].b_rel is None
    text = str(report)
    assert "max rel err" in text and "passed" in text and "FAIL" not in text
    dW, db = report.analytic
    np.testing.assert_allclose(dW[0], net.backprop(X, Y).dW[0], rtol=1e-14)
    assert db[1] is None and report.numerical[1][1] is None


def test_random_direction_check_on_a_larger_net(rng) -> None:
    """Directional derivatives along 3 random unit vectors, for a net of ~2,000 parameters
    (a full check would take ~4,000 forward passes). Same 1e-6 tolerance, relative to ‖∇C‖."""
    net = dp.Network(
        [20, 32, 32, 10],
        activation="gelu",
        bias=["learned", "frozen", "unit"],
        dtype="float32",
        seed=3,
    )
    X, y = rng.normal(size=(16, 20)), rng.integers(0, 10, 16)
    report = gradcheck.random_direction_check(net, X, y, rng, n_directions=3)
    assert report.passed, report
    assert report.numerical.shape == report.analytic.shape == report.rel.shape == (3,)
    assert np.all(report.rel <= 1e-6) and report.tol == 1e-6
    assert np.all(np.abs(report.analytic) > 0)


def test_random_direction_check_catches_a_wrong_derivative(rng, monkeypatch) -> None:
    net = dp.Network([10, 16, 16, 3], activation="sigmoid", dtype="float64", seed=5)
    X, y = rng.normal(size=(8, 10)), rng.integers(0, 3, 8)

    def wrong_prime(self, Z, A, out):  # σ' = a instead of a(1 − a)
        np.copyto(out, A)
        return out

    monkeypatch.setattr(activations.Sigmoid, "prime", wrong_prime)
    report = gradcheck.random_direction_check(net, X, y, rng, n_directions=3)
    assert not report.passed


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"bias_rule": "sum"}, ValueError, r"`bias_rule` must be one of delta, layer-sum"),
        ({"reduction": "total"}, ValueError, r"`reduction` must be one of mean, sum"),
        ({"eps": 0}, ValueError, r"`eps` must be > 0; got 0"),
        ({"tol": -1e-6}, ValueError, r"`tol` must be > 0; got -1e-06"),
        ({"eps": "small"}, TypeError, r"`eps` must be a number"),
    ],
)
def test_check_bad_arguments(tiny_net, kwargs, exc, match) -> None:
    with pytest.raises(exc, match=match):
        gradcheck.check(tiny_net, np.zeros((2, 3)), [0, 1], **kwargs)


def test_random_direction_check_bad_arguments(tiny_net, rng) -> None:
    with pytest.raises(ValueError, match=r"`n_directions` must be >= 1; got 0"):
        gradcheck.random_direction_check(tiny_net, np.zeros((2, 3)), [0, 1], rng, 0)
    with pytest.raises(ValueError, match=r"`X` must have shape \(m, 3\)"):
        gradcheck.numerical_gradients(tiny_net, np.zeros((2, 4)), [0, 1])
