"""Synthetic 2-D data sets drawn from a seeded generator: xor, moons, circles, spirals.

Each set stacks one block of points per class, adds N(0, noise²) jitter and splits 75/25
(stratified); every draw comes from ``numpy.random.default_rng(seed)``, never NumPy's global
state, so a seed always gives the same points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from deltaprop.data.dataset import Dataset, Described, random_split
from deltaprop.errors import ConfigError
from deltaprop.preprocessing import check_split_fraction, float_dtype

__all__ = ["load_circles", "load_moons", "load_spirals", "load_xor"]


def _class_sizes(n_samples: int, n_classes: int) -> list[int]:
    return [n_samples // n_classes + (k < n_samples % n_classes) for k in range(n_classes)]


def _check_synthetic(n_samples: int, noise: float, n_classes: int = 2) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
        raise ConfigError(f"`n_samples` must be an integer; got {n_samples!r}")
    if n_samples < 4 * n_classes:
        raise ConfigError(f"`n_samples` must be >= {4 * n_classes}; got {n_samples}")
    if not (isinstance(noise, (int, float, np.floating)) and 0.0 <= noise < math.inf):
        raise ConfigError(f"`noise` must be a finite number >= 0; got {noise!r}")


def _synthetic(
    name: str,
    parts: Sequence[np.ndarray],
    *,
    class_names: list[str],
    noise: float,
    rng: np.random.Generator,
    dtype: Any,
    test_size: float,
) -> Dataset:
    """Stack one (n_k, 2) block per class, add N(0, noise²) jitter, split."""
    dtype = float_dtype(dtype)
    test_size = check_split_fraction("test_size", test_size)
    X = np.concatenate(parts)
    X = X + noise * rng.standard_normal(X.shape)
    y = np.repeat(np.arange(len(parts), dtype=np.int64), [len(p) for p in parts])
    about = Described(name, "classification", class_names, (2,), ["x1", "x2"])
    return random_split(about, X.astype(dtype), y, test_size, rng)


def load_xor(
    *,
    n_samples: int = 400,
    noise: float = 0.1,
    seed: int = 0,
    dtype: Any = "float32",
    test_size: float = 0.25,
) -> Dataset:
    """XOR: points uniform in the square [-1, 1]², class 1 where x₁ and x₂ differ in sign.

    Each class fills its two opposite quadrants, then every point gets Gaussian jitter.

    Parameters
    ----------
    n_samples : int, default 400
        Total number of points, split evenly between the 2 classes.
    noise : float, default 0.1
        Standard deviation of the Gaussian jitter added to each coordinate.
    seed : int, default 0
        Seeds the ``numpy.random.Generator`` that draws the points and the 75/25 split.
    dtype : {"float32", "float64"}, default "float32"
    test_size : float, default 0.25

    Returns
    -------
    Dataset
        ``X`` of shape (n, 2); classes "same sign" (0) and "opposite sign" (1).
    """
    _check_synthetic(n_samples, noise)
    rng = np.random.default_rng(seed)
    parts = []
    for k, size in enumerate(_class_sizes(n_samples, 2)):
        points = rng.uniform(0.0, 1.0, size=(size, 2))
        sign_x1 = rng.choice([-1.0, 1.0], size=size)
        sign_x2 = sign_x1 if k == 0 else -sign_x1
        parts.append(points * np.column_stack([sign_x1, sign_x2]))
    return _synthetic(
        "xor",
        parts,
        class_names=["same sign", "opposite sign"],
        noise=noise,
        rng=rng,
        dtype=dtype,
        test_size=test_size,
    )


def load_moons(
    *,
    n_samples: int = 400,
    noise: float = 0.1,
    seed: int = 0,
    dtype: Any = "float32",
    test_size: float = 0.25,
) -> Dataset:
    """Two interleaving half circles (as scikit-learn's ``make_moons``, own NumPy code).

    Class 0: (cos t, sin t); class 1: (1 − cos t, ½ − sin t); t uniform in [0, π].
    Parameters as in :func:`load_xor`.
    """
    _check_synthetic(n_samples, noise)
    rng = np.random.default_rng(seed)
    n0, n1 = _class_sizes(n_samples, 2)
    t0 = rng.uniform(0.0, np.pi, n0)
    t1 = rng.uniform(0.0, np.pi, n1)
    parts = [
        np.column_stack([np.cos(t0), np.sin(t0)]),
        np.column_stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)]),
    ]
    return _synthetic(
        "moons",
        parts,
        class_names=["upper", "lower"],
        noise=noise,
        rng=rng,
        dtype=dtype,
        test_size=test_size,
    )


def load_circles(
    *,
    n_samples: int = 400,
    noise: float = 0.05,
    factor: float = 0.5,
    seed: int = 0,
    dtype: Any = "float32",
    test_size: float = 0.25,
) -> Dataset:
    """Two concentric circles: class 0 of radius 1, class 1 of radius ``factor``.

    Angles are uniform in [0, 2π). Other parameters as in :func:`load_xor`.
    """
    _check_synthetic(n_samples, noise)
    if not 0.0 < factor < 1.0:
        raise ConfigError(f"`factor` must be > 0 and < 1; got {factor!r}")
    rng = np.random.default_rng(seed)
    parts = []
    for radius, size in zip((1.0, factor), _class_sizes(n_samples, 2), strict=True):
        angle = rng.uniform(0.0, 2.0 * np.pi, size)
        parts.append(radius * np.column_stack([np.cos(angle), np.sin(angle)]))
    return _synthetic(
        "circles",
        parts,
        class_names=["outer", "inner"],
        noise=noise,
        rng=rng,
        dtype=dtype,
        test_size=test_size,
    )


def load_spirals(
    *,
    n_samples: int = 400,
    noise: float = 0.05,
    n_classes: int = 2,
    seed: int = 0,
    dtype: Any = "float32",
    test_size: float = 0.25,
) -> Dataset:
    """Interleaved spiral arms, one class per arm.

    Arm k is r (cos θ, sin θ) with r uniform in [0.05, 1] and θ = 3π r + 2π k / n_classes,
    i.e. one and a half turns. Other parameters as in :func:`load_xor`.

    Parameters
    ----------
    n_classes : int, default 2
        Number of arms (classes), at least 2.
    """
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ConfigError(f"`n_classes` must be an integer; got {n_classes!r}")
    if n_classes < 2:
        raise ConfigError(f"`n_classes` must be >= 2; got {n_classes}")
    _check_synthetic(n_samples, noise, n_classes)
    rng = np.random.default_rng(seed)
    parts = []
    for k, size in enumerate(_class_sizes(n_samples, n_classes)):
        r = rng.uniform(0.05, 1.0, size)
        theta = 3.0 * np.pi * r + 2.0 * np.pi * k / n_classes
        parts.append(r[:, None] * np.column_stack([np.cos(theta), np.sin(theta)]))
    return _synthetic(
        "spirals",
        parts,
        class_names=[f"arm {k}" for k in range(n_classes)],
        noise=noise,
        rng=rng,
        dtype=dtype,
        test_size=test_size,
    )
