"""Dropout: eqs. (2) and (8) with the mask m/(1 − p), against torch with the same masks.

The oracle is torch autograd on the same parameters with each hidden activation multiplied
by the mask deltaprop drew (``Gradients.masks``) and divided by 1 − p (conftest.TorchTwin).
float64 throughout; agreement to 1e-10 relative per array, the bound test_network.py
justifies for the plain network (rounding only, a few dozen operations deep).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import deltaprop as dp
from conftest import HIDDEN, TorchTwin, make_problem
from deltaprop import optim, streaming, training
from deltaprop.layers import BIAS_MODES

TOL = 1e-10


def rel_err(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0.0), 1e-300))


def with_dropout(net: dp.Network, rates: list[float]) -> dp.Network:
    """The same network (same parameters and generator) with dropout rates on its hidden layers."""
    other = net.copy()
    for layer, p in zip(other.layers[:-1], rates, strict=True):
        layer.dropout = p
    return other


def dropout_problem(rng: np.random.Generator, hidden: str, bias: str, m: int = 12) -> Any:
    net, X, Y = make_problem(rng, hidden=hidden, bias=bias, depth=3, m=m,
                             sizes=[4, 6, 5, 3])
    return with_dropout(net, [0.5, 0.25]), X, Y


@pytest.mark.parametrize("bias", BIAS_MODES)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_dropout_matches_torch_with_the_same_masks(rng, hidden: str, bias: str) -> None:
    """Loss and every gradient equal autograd's through a ⊙ m/(1 − p), for mean and sum."""
    net, X, Y = dropout_problem(rng, hidden, bias)
    twin = TorchTwin(net)
    for reduction in ("mean", "sum"):
        g = net.backprop(X, Y, reduction, dropout=True)
        assert g.masks[-1] is None and all(mk is not None for mk in g.masks[:-1])
        twin.zero_grad()
        C = twin.loss(X, Y, reduction, masks=g.masks)
        C.backward()
        assert rel_err(g.loss, C.item()) <= TOL
        for i, theirs in enumerate(twin.gradients()):
            assert rel_err(g.dW[i], theirs["W"]) <= TOL, (i, "W")
            if theirs["b"] is not None:
                assert rel_err(g.db[i], theirs["b"]) <= TOL, (i, "b")


def test_a_dropped_neuron_gets_no_error_signal(rng) -> None:
    """Where m = 0, a = 0 forward and δ = 0 back: eq. (8)'s ⊙ m/(1 − p)."""
    net, X, Y = dropout_problem(rng, "tanh", "learned", m=20)
    g = net.backprop(X, Y, dropout=True)
    for i in range(len(net.layers) - 1):
        dropped = g.masks[i] == 0
        assert dropped.any() and (~dropped).any()
        assert np.all(g.A[i][dropped] == 0)
        assert np.all(g.delta[i][dropped] == 0)


def test_the_torch_oracle_can_fail(rng) -> None:
    """Another mask (the same one, one entry flipped) changes the gradients beyond TOL."""
    net, X, Y = dropout_problem(rng, "tanh", "learned")
    g = net.backprop(X, Y, dropout=True)
    masks = [None if mk is None else mk.copy() for mk in g.masks]
    masks[0][0, int(np.argmax(masks[0][0]))] = 0  # drop one neuron that was kept
    twin = TorchTwin(net)
    C = twin.loss(X, Y, "mean", masks=masks)
    C.backward()
    assert rel_err(g.dW[0], twin.gradients()[0]["W"]) > TOL


def test_masks_are_zeros_and_ones_kept_with_probability_one_minus_p() -> None:
    """Over 64 × 500 draws the kept fraction is 1 − p within 5 standard errors."""
    net = dp.Network([3, 500, 2], dtype="float64", seed=1, dropout=0.3)
    X = np.random.default_rng(0).normal(size=(64, 3))
    mask = net.backprop(X, np.zeros(64, dtype=int), dropout=True).masks[0]
    assert mask.shape == (64, 500)
    assert set(np.unique(mask)) == {0.0, 1.0}
    n = mask.size
    assert abs(mask.mean() - 0.7) <= 5 * np.sqrt(0.7 * 0.3 / n)


def test_masks_follow_the_seed() -> None:
    """The same seed draws the same masks; another seed, others."""
    X = np.random.default_rng(0).normal(size=(8, 3))
    y = np.zeros(8, dtype=int)

    def masks(seed: int) -> np.ndarray:
        net = dp.Network([3, 10, 2], seed=seed, dropout=0.5)
        return net.backprop(X, y, dropout=True).masks[0].copy()

    np.testing.assert_array_equal(masks(3), masks(3))
    assert not np.array_equal(masks(3), masks(4))


def test_per_layer_rates_and_float32_masks() -> None:
    net = dp.Network([3, 40, 40, 2], seed=0, dropout=[0.0, 0.5])
    g = net.backprop(np.ones((16, 3), dtype=np.float32), np.zeros(16, dtype=int), dropout=True)
    assert g.masks[0] is None and g.masks[1].dtype == np.float32
    assert net.layers[0].plain and not net.layers[1].plain


def test_dropout_zero_is_bit_identical_to_no_dropout(rng) -> None:
    """p = 0 takes the plain path: the same gradients, weights and generator, bit for bit."""
    X = rng.normal(size=(50, 5)).astype(np.float32)
    y = rng.integers(0, 3, 50)
    plain = dp.Network([5, 8, 6, 3], seed=2)
    zero = dp.Network([5, 8, 6, 3], seed=2, dropout=0.0)
    a, b = plain.backprop(X, y), zero.backprop(X, y, dropout=True)
    for u, v in zip(a.dW + a.db, b.dW + b.db, strict=True):
        np.testing.assert_array_equal(u, v)
    for net in (plain, zero):
        net.fit(X, y, epochs=3, batch_size=8, optimizer=optim.SGD(lr=0.1, momentum=0.9),
                verbose=0)
    for (_, u), (_, v) in zip(plain.parameters(), zero.parameters(), strict=True):
        np.testing.assert_array_equal(u, v)
    assert plain.rng.bit_generator.state == zero.rng.bit_generator.state
    assert zero.config() == plain.config()  # nothing to say about dropout


def test_inference_and_backprop_without_the_flag_never_drop(rng) -> None:
    """predict, evaluate and backprop(dropout=False) are the network without masks."""
    net, X, Y = dropout_problem(rng, "relu", "learned", m=30)
    whole = with_dropout(net, [0.0, 0.0])
    np.testing.assert_array_equal(net.predict_proba(X), whole.predict_proba(X))
    assert net.evaluate(X, Y) == whole.evaluate(X, Y)
    g, h = net.backprop(X, Y), whole.backprop(X, Y)
    assert g.masks == [None, None, None]
    for u, v in zip(g.dW, h.dW, strict=True):
        np.testing.assert_array_equal(u, v)
    state = net.rng.bit_generator.state
    net.predict(X)
    assert net.rng.bit_generator.state == state  # inference draws nothing


def test_training_drops_and_reports_the_masks(rng) -> None:
    """fit's steps draw masks (TrainStep's gradients carry them); the epoch differs from a
    run without dropout."""
    X = rng.normal(size=(40, 4))
    y = rng.integers(0, 3, 40)
    net = dp.Network([4, 16, 3], dtype="float64", seed=0, dropout=0.5)
    seen = []
    net.fit(X, y, epochs=1, batch_size=10, verbose=0,
            gradient_hook=lambda g, m: seen.append(g.masks[0].copy()))
    assert len(seen) == 4 and all(mk.shape == (10, 16) for mk in seen)
    assert not np.array_equal(seen[0], seen[1])


def _step_peak(**between: Any) -> int:
    """Bytes traced at the peak of 5 training steps, after a first one made the state."""
    import tracemalloc

    rng = np.random.default_rng(0)
    net = dp.Network([30, 64, 64, 3], seed=0, **between)
    X = rng.normal(size=(256, 30)).astype(np.float32)
    Y = net.targets(rng.integers(0, 3, 256), 256)
    feed = streaming.BatchFeed(X, 64, net.dtype)
    step = training.TrainStep(net, feed, Y, 64, optim.SGD(lr=0.01, momentum=0.9), "mean")
    step(0, 64)
    step.update()  # the optimizer's state exists now
    tracemalloc.start()
    try:
        for _ in range(5):
            step(0, 64)
            step.update()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_training_step_allocates_no_more_than_a_plain_one() -> None:
    """Masks are drawn into the workspace and batch norm computes in it: a step traces no
    more than the plain network's (the loss's few numbers), far below one (64, 64) float32
    buffer (16 KB) a fresh array per batch would add."""
    plain = _step_peak()
    assert _step_peak(dropout=0.5, batch_norm=True) <= plain + 2048, plain


@pytest.mark.parametrize(("rates", "message"), [
    (1.0, r"`dropout` must be in \[0, 1\)"),
    (-0.1, r"`dropout` must be in \[0, 1\)"),
    (float("nan"), r"`dropout` must be in \[0, 1\)"),
    ("half", "`dropout` must be a number"),
    ([0.1, 0.2, 0.3], "`dropout` needs 2 entries, one per hidden layer"),
    ([0.1, 1.5], r"`dropout\[1\]` must be in \[0, 1\)"),
])
def test_bad_rates_are_refused(rates: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dp.Network([3, 4, 4, 2], dropout=rates)
