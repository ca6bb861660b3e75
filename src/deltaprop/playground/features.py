"""The input features computed from a point (x1, x2): x1, x2, x1², x2², x1·x2, sin x1, sin x2.

The input layer of a playground network is fed these columns, in the order of
:data:`FEATURES`, for the features switched on. Exported models and snippets apply the same
:func:`transform` to raw points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from deltaprop.errors import ConfigError

Feature = Callable[[np.ndarray, np.ndarray], np.ndarray]

# name → (label for people, the column computed from x1 and x2)
FEATURES: dict[str, tuple[str, Feature]] = {
    "x1": ("x₁", lambda x1, x2: x1),
    "x2": ("x₂", lambda x1, x2: x2),
    "x1sq": ("x₁²", lambda x1, x2: x1 * x1),
    "x2sq": ("x₂²", lambda x1, x2: x2 * x2),
    "x1x2": ("x₁x₂", lambda x1, x2: x1 * x2),
    "sinx1": ("sin x₁", lambda x1, x2: np.sin(x1)),
    "sinx2": ("sin x₂", lambda x1, x2: np.sin(x2)),
}


def transform(points: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The (m, len(names)) feature matrix of raw points of shape (m, 2).

    Raises
    ------
    ValueError
        For a name not in :data:`FEATURES` or points that are not (m, 2).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ConfigError(f"points must have shape (m, 2); got {points.shape}")
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ConfigError(f"unknown feature {unknown[0]!r}; choose from {', '.join(FEATURES)}")
    x1, x2 = points[:, 0], points[:, 1]
    return np.column_stack([FEATURES[n][1](x1, x2) for n in names])
