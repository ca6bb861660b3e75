"""Accuracy and friends; pure functions of (y_true, y_pred)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def accuracy(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
    """The fraction of samples whose predicted class equals the true class.

    With ``sample_weight`` s: Σ_x s_x [right] / Σ_x s_x.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"shapes differ: y_true {y_true.shape}, y_pred {y_pred.shape}")
    if not y_true.size:
        return float("nan")
    return _mean(y_true == y_pred, sample_weight)


def _mean(values: np.ndarray, sample_weight: ArrayLike | None) -> float:
    """The mean over samples (axis 0), weighted by ``sample_weight`` if given."""
    if sample_weight is None:
        return float(np.mean(values))
    return float(np.average(values, axis=0, weights=sample_weight).mean())


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> np.ndarray:
    """counts[i, j]: samples of true class i predicted as class j, shape (n_classes, n_classes)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    counts = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def multilabel_accuracy(
    Y_true: ArrayLike, Y_pred: ArrayLike, sample_weight: ArrayLike | None = None
) -> dict[str, float]:
    """Accuracy of (m, k) 0/1 label matrices, reported per label and per sample.

    ``label_accuracy``: the fraction of the m × k labels predicted right (1 − Hamming loss);
    ``subset_accuracy``: the fraction of samples with all k labels right (scikit-learn's
    ``accuracy_score`` for multilabel targets). Weighted by ``sample_weight`` if given.
    """
    Y_true, Y_pred = np.asarray(Y_true), np.asarray(Y_pred)
    if Y_true.shape != Y_pred.shape or Y_true.ndim != 2:
        raise ValueError(f"need equal (m, k) shapes: y_true {Y_true.shape}, y_pred {Y_pred.shape}")
    right = Y_true == Y_pred
    return {"label_accuracy": _mean(right, sample_weight),
            "subset_accuracy": _mean(right.all(axis=1), sample_weight)}
