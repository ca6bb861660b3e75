"""Bundled data sets: scikit-learn's offline digits, iris, wine, breast cancer, diabetes.

None has an official test set, so each gets its own train/test split with a fixed seed
(stratified for the classification sets). scikit-learn is imported only when a set is loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from deltaprop.data.dataset import Dataset, Task, to_float
from deltaprop.preprocessing import check_split_fraction, float_dtype

__all__ = ["load_breast_cancer", "load_diabetes", "load_digits", "load_iris", "load_wine"]


def _bundled(
    name: str,
    fetch: Callable[[], Any],
    task: Task,
    *,
    seed: int,
    dtype: Any,
    test_size: float,
    feature_shape: tuple[int, ...] | None = None,
) -> Dataset:
    from sklearn.model_selection import train_test_split

    dtype = float_dtype(dtype)
    test_size = check_split_fraction("test_size", test_size)
    bunch = fetch()
    X = to_float(np.asarray(bunch.data), dtype, name)
    if task == "classification":
        y = np.asarray(bunch.target, dtype=np.int64)
        class_names: list[str] | None = [str(c) for c in bunch.target_names]
    else:
        y = to_float(np.asarray(bunch.target), dtype, name)
        class_names = None
    X_train, X_test, y_train, y_test = train_test_split(
        X,
        y,
        test_size=test_size,
        random_state=seed,
        stratify=y if task == "classification" else None,
    )
    names = getattr(bunch, "feature_names", None)
    return Dataset(
        X_train,
        y_train,
        X_test,
        y_test,
        task,
        class_names,
        name,
        feature_shape or (X.shape[1],),
        None if names is None else [str(n) for n in names],
    )


def load_digits(*, seed: int = 0, dtype: Any = "float32", test_size: float = 0.25) -> Dataset:
    """Handwritten digits: 1797 samples of 8×8 pixels with values 0..16, 10 classes.

    scikit-learn's copy of the UCI optical-digits test set; no download. It has no official
    test set, so it gets its own stratified train/test split with a fixed seed
    (``sklearn.model_selection.train_test_split(test_size=test_size,
    random_state=seed, stratify=y)``).

    Parameters
    ----------
    seed : int, default 0
        ``random_state`` of the split.
    dtype : {"float32", "float64"}, default "float32"
        dtype of ``X``.
    test_size : float, default 0.25
        Fraction of samples held out for testing.

    Returns
    -------
    Dataset
        ``X`` of shape (n, 64) with raw pixel values, ``feature_shape == (8, 8)``,
        ``class_names`` "0" … "9".
    """
    from sklearn.datasets import load_digits as fetch

    return _bundled(
        "digits",
        fetch,
        "classification",
        seed=seed,
        dtype=dtype,
        test_size=test_size,
        feature_shape=(8, 8),
    )


def load_iris(*, seed: int = 0, dtype: Any = "float32", test_size: float = 0.25) -> Dataset:
    """Fisher's iris: 150 samples, 4 features, 3 classes; see :func:`load_digits` for the split."""
    from sklearn.datasets import load_iris as fetch

    return _bundled("iris", fetch, "classification", seed=seed, dtype=dtype, test_size=test_size)


def load_wine(*, seed: int = 0, dtype: Any = "float32", test_size: float = 0.25) -> Dataset:
    """UCI wine: 178 samples, 13 features, 3 classes; see :func:`load_digits` for the split."""
    from sklearn.datasets import load_wine as fetch

    return _bundled("wine", fetch, "classification", seed=seed, dtype=dtype, test_size=test_size)


def load_breast_cancer(
    *, seed: int = 0, dtype: Any = "float32", test_size: float = 0.25
) -> Dataset:
    """Wisconsin breast cancer: 569 samples, 30 features, classes malignant/benign.

    See :func:`load_digits` for the split.
    """
    from sklearn.datasets import load_breast_cancer as fetch

    return _bundled(
        "breast-cancer",
        fetch,
        "classification",
        seed=seed,
        dtype=dtype,
        test_size=test_size,
    )


def load_diabetes(*, seed: int = 0, dtype: Any = "float32", test_size: float = 0.25) -> Dataset:
    """Diabetes progression: 442 samples, 10 (already centred and scaled) features, regression.

    ``y`` is a disease-progression score (25 … 346). The split is random with a fixed seed
    (not stratified).
    """
    from sklearn.datasets import load_diabetes as fetch

    return _bundled("diabetes", fetch, "regression", seed=seed, dtype=dtype, test_size=test_size)
