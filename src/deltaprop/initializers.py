"""How W^l and b^l get their first values; INITIALIZERS registry.

An initializer draws W of shape (n_out, n_in) from a ``numpy.random.Generator``; biases
start at the network's ``bias_init`` constant. Fan-in is n_in and fan-out n_out, as in
PyTorch's ``nn.Linear`` (a bias unit's column is not counted: it is a bias, not an input).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from deltaprop._validation import lookup

Initializer = Callable[[np.random.Generator, int, int], NDArray[np.float64]]


def glorot_uniform(rng: np.random.Generator, n_out: int, n_in: int) -> NDArray[np.float64]:
    """U(−s, s), s = √(6 / (n_in + n_out)) (Glorot & Bengio, 2010)."""
    s = math.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-s, s, size=(n_out, n_in))


def glorot_normal(rng: np.random.Generator, n_out: int, n_in: int) -> NDArray[np.float64]:
    """N(0, 2 / (n_in + n_out)) (Glorot & Bengio, 2010)."""
    return rng.normal(0.0, math.sqrt(2.0 / (n_in + n_out)), size=(n_out, n_in))


def he_uniform(rng: np.random.Generator, n_out: int, n_in: int) -> NDArray[np.float64]:
    """U(−s, s), s = √(6 / n_in) (He et al., 2015), for ReLU layers."""
    s = math.sqrt(6.0 / n_in)
    return rng.uniform(-s, s, size=(n_out, n_in))


def he_normal(rng: np.random.Generator, n_out: int, n_in: int) -> NDArray[np.float64]:
    """N(0, 2 / n_in) (He et al., 2015), for ReLU layers."""
    return rng.normal(0.0, math.sqrt(2.0 / n_in), size=(n_out, n_in))


def lecun_normal(rng: np.random.Generator, n_out: int, n_in: int) -> NDArray[np.float64]:
    """Normal truncated at ±2 standard deviations, variance 1 / n_in (LeCun et al., 1998).

    As Keras: the truncation shrinks the variance, so the standard deviation is divided by
    0.87962566103423978, the standard deviation of N(0, 1) truncated to [−2, 2].
    """
    std = math.sqrt(1.0 / n_in) / 0.87962566103423978
    W = rng.normal(0.0, std, size=(n_out, n_in))
    outside = np.abs(W) > 2 * std
    while outside.any():  # redraw the rejected entries until all lie within ±2 std
        W[outside] = rng.normal(0.0, std, size=int(outside.sum()))
        outside = np.abs(W) > 2 * std
    return W


def classic(rng: np.random.Generator, n_out: int, n_in: int) -> NDArray[np.float64]:
    """N(0, 1 / n_in): the textbook scaled Gaussian (Nielsen, ch. 3, network2.py)."""
    return rng.normal(0.0, 1.0, size=(n_out, n_in)) / math.sqrt(n_in)


INITIALIZERS: dict[str, Initializer] = {
    f.__name__: f
    for f in (glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_normal, classic)
}


def get(name: str) -> Initializer:
    """The init called ``name``; a ValueError listing the valid names otherwise."""
    return lookup(INITIALIZERS, name, "init")
