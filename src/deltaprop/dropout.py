"""Dropout: the 0/1 masks, and eqs. (2) and (8) with them (inverted dropout).

During training each hidden neuron's activation is kept with probability 1 − p and zeroed
otherwise, independently per sample, by a mask m^l of zeros and ones (Srivastava et al.,
2014). The kept activations are divided by 1 − p ("inverted" dropout), so the expected
activation is unchanged and inference runs the plain network, without masks or rescaling:

    a^l = σ(z^l) ⊙ m^l / (1 − p)                                        (2) with dropout
    δ^l = ((W^{l+1})ᵀ δ^{l+1}) ⊙ m^l / (1 − p) ⊙ σ'(z^l)                   (8) with dropout

A dropped neuron passes nothing forward and gets δ = 0 back: its weights and bias learn
nothing from that sample. Masks come from the network's own ``numpy.random.Generator``
(never NumPy's global state), drawn into a preallocated buffer: the same seed gives the same
masks, and a resumed checkpoint continues the same sequence.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]


def draw_mask(rng: np.random.Generator, p: float, out: Array) -> Array:
    """A fresh 0/1 mask into ``out``: each entry is 1 with probability 1 − p.

    Uniform u ∈ [0, 1) from ``rng`` are drawn into ``out`` itself (no allocation), then
    replaced by [u ≥ p], which is 1 with probability 1 − p.
    """
    rng.random(out=out, dtype=out.dtype)
    return np.greater_equal(out, p, out=out)  # writes 1.0 / 0.0 into the float buffer


def apply(sigma_Z: Array, mask: Array, p: float, out: Array) -> None:
    """Eq. (2) with dropout: a = σ(z) ⊙ m / (1 − p), into ``out``."""
    np.multiply(sigma_Z, mask, out=out)  # σ(z) ⊙ m
    out *= 1.0 / (1.0 - p)  # / (1 − p)

