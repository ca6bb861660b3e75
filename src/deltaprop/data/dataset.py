"""The Dataset every loader returns, and how loaders build one: targets, checks, the split.

A loader reads its source into features ``X`` (one sample per row) and a target column, then
calls :func:`encode_target` (class labels become indices into the sorted labels), says what
it knows in a :class:`Described`, and calls one of the splits: :func:`random_split` (a
stratified random train/test split, copying rows), :func:`split_in_place` (the same random
choice of rows, but made by moving rows within the one array the loader filled, so a large
file is never held twice), or :func:`tail_split` (the last rows are the test set: a memory
map is split without reading it). :func:`find_columns` picks columns by name for every
source that has names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from deltaprop.errors import ConfigError, DataError
from deltaprop.preprocessing import check_split_fraction, split_indices

__all__ = [
    "AUTO_MAX_CLASSES",
    "Dataset",
    "Described",
    "Task",
    "check_task",
    "encode_target",
    "find_columns",
    "listing",
    "random_split",
    "split_in_place",
    "tail_split",
    "to_float",
]

Task = Literal["classification", "regression"]

#: With ``task="auto"``, an integer-valued numeric target with at most this many distinct
#: values is read as class labels; any other numeric target is a regression target.
#: Non-numeric targets are always class labels.
AUTO_MAX_CLASSES = 20


@dataclass
class Dataset:
    """A train/test split of one data set.

    Attributes
    ----------
    X_train, X_test : ndarray of shape (n_train, n_features), (n_test, n_features)
        Features, one sample per row, float32 or float64, unscaled (see
        ``deltaprop.data.default_scaler``). From a ``.npy`` file or an uncompressed ``.npz``
        member they are instead read-only memory maps of the file, in the file's own numeric
        dtype (:attr:`memory_mapped` is True): nothing is read until rows are used; train on
        them with ``training.fit(..., input_transform=...)`` and scale with a streaming
        ``Scaler.fit``.
    y_train, y_test : ndarray of shape (n_train,), (n_test,)
        int64 class indices into ``class_names`` for classification; floats of ``X``'s
        dtype for regression (shape ``(n, n_outputs)`` if a file holds several targets).
    task : {"classification", "regression"}
    class_names : list of str or None
        Label of each class index; None for regression.
    name : str
        The registry name, or the file or directory name for user data.
    feature_shape : tuple of int
        Shape of one sample before flattening: ``(8, 8)`` for digits, ``(28, 28)`` for
        (fashion-)MNIST, ``(n_features,)`` otherwise.
    feature_names : list of str or None
        Name of each feature column, from a CSV header, Parquet columns, a DataFrame or a
        bundled set's documentation; None where the source has no names.
    """

    X_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    task: Task
    class_names: list[str] | None
    name: str
    feature_shape: tuple[int, ...]
    feature_names: list[str] | None = None

    @property
    def n_features(self) -> int:
        """Number of input features (columns of ``X``)."""
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int | None:
        """Number of classes, or None for regression."""
        return None if self.class_names is None else len(self.class_names)

    @property
    def n_outputs(self) -> int:
        """Output units a network needs: ``n_classes``, or the number of regression targets."""
        if self.class_names is not None:
            return len(self.class_names)
        return 1 if self.y_train.ndim == 1 else int(self.y_train.shape[1])

    @property
    def memory_mapped(self) -> bool:
        """True if ``X_train`` is a memory map of a file rather than an array in memory."""
        return isinstance(self.X_train, np.memmap)


def check_task(task: str) -> str:
    """``task`` if it is "auto", "classification" or "regression", else a ConfigError."""
    if task not in ("auto", "classification", "regression"):
        raise ConfigError(f"`task` must be 'auto', 'classification' or 'regression'; got {task!r}")
    return task


def to_float(X: np.ndarray, dtype: np.dtype, where: str) -> np.ndarray:
    """Cast to ``dtype``; NaN, ±inf, or a value too large for ``dtype`` is a DataError."""
    if X.dtype.kind in "biu":  # integers are finite and fit in float32's range
        return X.astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        out = X.astype(dtype)
    check_finite(X, out, where)
    return out


def check_finite(X: np.ndarray, converted: np.ndarray, where: str, first_row: int = 0) -> None:
    """DataError naming the first entry of ``converted`` (``X`` cast) that is not finite."""
    finite = np.isfinite(converted)
    if finite.all():
        return
    index = tuple(int(i) for i in np.argwhere(~finite)[0])
    value = X[index]
    problem = (
        f"value {value.item()!r} does not fit in {converted.dtype.name}"
        if np.isfinite(value)
        else f"non-finite value {value.item()!r}"
    )
    position = f"sample {first_row + index[0]}"
    if len(index) > 1:
        position += f", feature {index[1] if len(index) == 2 else index[1:]}"
    raise DataError(f"{where}: {problem} at {position}")


def encode_target(
    values: np.ndarray, task: str, dtype: np.dtype, where: str
) -> tuple[np.ndarray, Task, list[str] | None]:
    """Turn a target column into (y, task, class_names).

    ``values`` is numeric (finite) or strings. Class indices follow the sorted labels:
    numerically for integer labels, by code point for strings.
    """
    numeric = values.dtype.kind in "biuf"
    # Integer-valued floats up to 2⁵³ (exact in float64) count as integer labels.
    integral = numeric and (
        values.dtype.kind != "f"
        or bool(np.all((values == np.round(values)) & (np.abs(values) <= 2.0**53)))
    )
    if task == "auto":
        if not numeric or values.ndim != 1:
            task = "classification" if not numeric else "regression"
        elif integral and len(np.unique(values)) <= AUTO_MAX_CLASSES:
            task = "classification"
        else:
            task = "regression"
    if task == "regression":
        if not numeric:
            raise DataError(f"{where}: regression needs a numeric target; got {values.dtype}")
        return to_float(values, dtype, where), "regression", None
    if values.ndim != 1:
        raise DataError(
            f"{where}: class labels must be 1-D; got shape {values.shape} "
            "(one-hot targets are not accepted, pass class indices)"
        )
    if values.dtype.kind == "b":
        values = values.astype(np.int64)
    elif numeric and integral:
        values = values.astype(np.int64) if values.dtype.kind == "f" else values
    elif numeric:
        values = values.astype(str)
    labels, y = np.unique(values, return_inverse=True)
    if len(labels) < 2:
        raise DataError(
            f"{where}: classification needs at least 2 classes; every label is {str(labels[0])!r}"
        )
    return y.reshape(-1).astype(np.int64), "classification", [str(v) for v in labels]


@dataclass(frozen=True)
class Described:
    """What a loader knows about its data besides the arrays: the rest of a Dataset.

    ``source`` names the data in error messages (a file's path; default ``name``).
    """

    name: str
    task: Task
    class_names: list[str] | None
    feature_shape: tuple[int, ...]
    feature_names: list[str] | None = None
    source: str | None = None

    def dataset(
        self, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray
    ) -> Dataset:
        return Dataset(
            X_train, y_train, X_test, y_test, self.task, self.class_names, self.name,
            self.feature_shape, self.feature_names,
        )  # fmt: skip

    def split_rows(
        self, y: np.ndarray, test_size: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Random train/test row indices, stratified for classification."""
        try:
            return split_indices(y, test_size, rng, stratify=self.task == "classification")
        except ValueError as error:
            raise DataError(f"{self.source or self.name}: {error}") from None


def random_split(
    about: Described, X: np.ndarray, y: np.ndarray, test_size: float, rng: np.random.Generator
) -> Dataset:
    """Split (X, y) at random (stratified for classification) into a Dataset, copying rows.

    Both parts are in the order of ``rng``'s permutation.
    """
    train, test = about.split_rows(y, test_size, rng)
    return about.dataset(X[train], y[train], X[test], y[test])


# Rows moved per step of split_in_place: a 4 MB scratch copy for 784 float32 features.
_MOVE_ROWS = 1024


def split_in_place(
    about: Described, X: np.ndarray, y: np.ndarray, test_size: float, seed: int
) -> Dataset:
    """The random split of :func:`random_split`, made by moving rows within ``X`` itself.

    The same rows as ``random_split(..., np.random.default_rng(seed))`` go to the test set,
    but each part keeps the rows' original order (the file's order), and ``X_train`` and
    ``X_test`` are the two ends of ``X`` (views): the training rows are moved forward in
    blocks and the test rows, copied aside first, fill the end. Peak memory is ``X`` plus
    the test rows, not ``X`` twice.
    """
    train, test = about.split_rows(y, test_size, np.random.default_rng(seed))
    train.sort()
    test.sort()
    held = X[test]
    # Row train[j] moves to row j. train[j] >= j, and the blocks go forward, so a block only
    # reads rows at or after its own position, which no earlier block has overwritten;
    # within a block, X[rows] is a copy taken before the block is written.
    for start in range(0, len(train), _MOVE_ROWS):
        rows = train[start : start + _MOVE_ROWS]
        if rows[-1] != start + len(rows) - 1:  # rows == arange: already in place
            X[start : start + len(rows)] = X[rows]
    n_train = len(train)
    X[n_train : n_train + len(test)] = held
    del held
    return about.dataset(X[:n_train], y[train], X[n_train : n_train + len(test)], y[test])


def tail_split(about: Described, X: np.ndarray, y: np.ndarray, test_size: float) -> Dataset:
    """The last ``ceil(test_size * n)`` rows are the test set (views, nothing is read).

    For memory maps, which cannot be split at random without reading the file. If a class
    of the test rows never occurs in the training rows, the file is probably sorted by
    class: that is a DataError asking for shuffled rows or a separate test set.
    """
    source = about.source or about.name
    test_size = check_split_fraction("test_size", test_size)
    n = len(y)
    n_test = math.ceil(test_size * n)
    if n_test < 1 or n_test >= n:
        raise DataError(
            f"{source}: {n} samples are too few to split with a fraction of {test_size}"
        )
    n_train = n - n_test
    if about.task == "classification":
        unseen = np.setdiff1d(np.unique(y[n_train:]), np.unique(y[:n_train]))
        if len(unseen):
            label = about.class_names[int(unseen[0])] if about.class_names else str(unseen[0])
            raise DataError(
                f"{source}: class {label!r} occurs only in the last {n_test} rows, which are "
                "the test set of a memory-mapped file; shuffle the rows before saving, or "
                "save a separate test set (X_test, y_test)"
            )
    return about.dataset(X[:n_train], y[:n_train], X[n_train:], y[n_train:])


# Column names listed in a message, at most.
_LISTED = 12


def listing(names: Sequence[str]) -> str:
    """Column names for a message: all of them, or the first and the last of many."""
    if len(names) <= _LISTED:
        return ", ".join(names)
    return f"{', '.join(names[: _LISTED - 1])}, …, {names[-1]} ({len(names)} columns)"


def find_columns(where: str, names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Positions of the ``wanted`` columns among ``names``, or a DataError naming the first
    missing one (e.g. a model's feature that a file to predict on lacks)."""
    missing = [w for w in wanted if w not in names]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(
            f"{where}: no column {missing[0]!r}{more}; the features wanted are {listing(wanted)}"
        )
    return [list(names).index(w) for w in wanted]
