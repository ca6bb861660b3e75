"""Tests for initializers.py: every initializer's spread matches its formula, randomness
comes only from the given Generator, and ``Network(init=...)`` uses it.

Sampling error: from N = 400 × 500 = 200,000 draws the sample standard deviation has a
relative standard error √((κ − 1) / 4N), κ the kurtosis — 1.6e-3 for a normal (κ = 3),
1.0e-3 for a uniform (κ = 1.8), less for the truncated normal. A 1 % tolerance is ≥ 6
standard errors (a false failure about once in 10⁹ runs), while the nearest wrong formula
(fan_in + fan_out for fan_in, or a missing 0.8796 truncation factor) is off by ≥ 12 %.
The mean has standard error std / √N; 6 of those is the tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import initializers

N_OUT, N_IN = 400, 500
N = N_OUT * N_IN

# The standard deviation each initializer's formula gives for (n_out, n_in).
EXPECTED_STD = {
    "glorot_uniform": math.sqrt(6 / (N_IN + N_OUT)) / math.sqrt(3),  # U(−s, s): std = s / √3
    "glorot_normal": math.sqrt(2 / (N_IN + N_OUT)),
    "he_uniform": math.sqrt(6 / N_IN) / math.sqrt(3),
    "he_normal": math.sqrt(2 / N_IN),
    "lecun_normal": math.sqrt(1 / N_IN),  # after the truncation correction
    "classic": math.sqrt(1 / N_IN),
}


def test_registry_is_complete() -> None:
    assert set(initializers.INITIALIZERS) == set(EXPECTED_STD)
    for name, f in initializers.INITIALIZERS.items():
        assert initializers.get(name) is f


def test_unknown_init_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown init 'xavier'; choose one of: classic, "):
        initializers.get("xavier")


@pytest.mark.parametrize("name", list(EXPECTED_STD))
def test_empirical_std_matches_the_formula(rng, name) -> None:
    W = initializers.get(name)(rng, N_OUT, N_IN)
    assert W.shape == (N_OUT, N_IN) and W.dtype == np.float64
    std = EXPECTED_STD[name]
    assert abs(W.std() / std - 1) < 0.01
    assert abs(W.mean()) < 6 * std / math.sqrt(N)


@pytest.mark.parametrize("name", ["glorot_uniform", "he_uniform"])
def test_uniform_initializers_fill_their_interval(rng, name) -> None:
    W = initializers.get(name)(rng, N_OUT, N_IN)
    s = EXPECTED_STD[name] * math.sqrt(3)
    assert np.abs(W).max() <= s
    assert np.abs(W).max() > 0.999 * s  # 200,000 draws reach the edge: P(miss) = 0.999^N ≈ 0


def test_lecun_normal_is_truncated_at_two_raw_stds(rng) -> None:
    W = initializers.get("lecun_normal")(rng, N_OUT, N_IN)
    raw_std = math.sqrt(1 / N_IN) / 0.87962566103423978
    assert np.abs(W).max() <= 2 * raw_std
    assert np.abs(W).max() > 1.99 * raw_std


@pytest.mark.parametrize("name", list(EXPECTED_STD))
def test_only_the_given_generator_is_used(name) -> None:
    """Same seed, same draws; the legacy global state is never touched (STYLE §4)."""
    state = np.random.get_state()[1].copy()  # noqa: NPY002 - the legacy state is the subject
    f = initializers.get(name)
    a = f(np.random.default_rng(5), 7, 3)
    b = f(np.random.default_rng(5), 7, 3)
    c = f(np.random.default_rng(6), 7, 3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # noqa: NPY002


@pytest.mark.parametrize("name", list(EXPECTED_STD))
def test_network_uses_the_named_init(name) -> None:
    """``Network(init=name)`` draws W with that formula (fan-in n_in, fan-out n_out)."""
    net = dp.Network([N_IN, N_OUT], output="identity", loss="mse", init=name, dtype="float64")
    W = net.layers[0].W
    assert W.shape == (N_OUT, N_IN)
    assert abs(W.std() / EXPECTED_STD[name] - 1) < 0.01
    np.testing.assert_array_equal(W, initializers.get(name)(np.random.default_rng(0), N_OUT, N_IN))


def test_network_casts_the_draw_to_its_dtype() -> None:
    net = dp.Network([30, 20, 10], init="glorot_uniform", dtype="float32", seed=2)
    want = initializers.glorot_uniform(np.random.default_rng(2), 20, 30).astype(np.float32)
    assert net.layers[0].W.dtype == np.float32
    np.testing.assert_array_equal(net.layers[0].W, want)
