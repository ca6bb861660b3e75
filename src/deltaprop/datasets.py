"""load/generate data as (X, y) arrays (bundled, synthetic, IDX, CSV, NPZ); splits and scaling.

Every loader returns a :class:`Dataset`: ``X`` with samples as rows (float32 unless
``dtype="float64"``), ``y`` as int64 class indices for classification or floats for
regression, and a train/test split. :func:`load` is the one entry point; it resolves a name
through the plain-dict registry :data:`DATASETS` (via :func:`get`) or treats its argument as
a path.

- Bundled (scikit-learn's copies, offline): ``digits``, ``iris``, ``wine``,
  ``breast-cancer`` (classification), ``diabetes`` (regression). They have no official test
  set, so each gets its own stratified train/test split with a fixed seed.
- Synthetic 2-D sets: ``xor``, ``moons``, ``circles``, ``spirals``, drawn from a
  ``numpy.random.Generator`` seeded by ``seed``.
- IDX directories: ``fashion-mnist`` and ``mnist`` keep their official 60000/10000 split.
- User files: CSV with a header, ``.npz`` with arrays ``X`` and ``y``, or a directory of
  the four MNIST-style IDX files.

Anything wrong with a file or its contents raises :class:`DataError` (a ``ValueError``)
with a one-line message naming the file and the problem. Preprocessing (:class:`Scaler`,
:func:`one_hot`, :func:`train_val_split`) is fitted on training data only. Randomness
comes from an explicit ``seed`` or ``rng``, never NumPy's global state. scikit-learn is
imported only inside the functions that need it.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import inspect
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = [
    "AUTO_MAX_CLASSES",
    "DATASETS",
    "DEFAULT_SCALING",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "IDX_DTYPES",
    "DataError",
    "Dataset",
    "Scaler",
    "default_scaler",
    "get",
    "load",
    "load_breast_cancer",
    "load_circles",
    "load_csv",
    "load_diabetes",
    "load_digits",
    "load_fashion_mnist",
    "load_features",
    "load_iris",
    "load_mnist",
    "load_moons",
    "load_npz",
    "load_spirals",
    "load_wine",
    "load_xor",
    "one_hot",
    "read_idx",
    "train_val_split",
    "write_idx",
]

Task = Literal["classification", "regression"]

#: Where Debian's ``dataset-fashion-mnist`` package installs the four gzipped IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

#: Fashion-MNIST's label names, index = label (Xiao, Rasul & Vollgraf 2017, README).
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

#: With ``task="auto"``, an integer-valued numeric target with at most this many distinct
#: values is read as class labels; any other numeric target is a regression target.
#: Non-numeric targets are always class labels.
AUTO_MAX_CLASSES = 20

_DEFAULT_TEST_SIZE = 0.25
_FASHION_HINT = (
    "install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) "
    "or pass --data-dir DIR"
)
_MNIST_HINT = (
    "put the four MNIST IDX files (train-images-idx3-ubyte[.gz], ...) in a directory and "
    "pass --data-dir DIR or set DELTAPROP_MNIST"
)


class DataError(ValueError):
    """A data file or its contents is unusable.

    The message is one line naming the file (when there is one) and the problem, e.g.
    ``"train.csv: column 'label' not found; columns are a, b, c"``. The command line prints
    it as ``error: …`` and exits with status 1.
    """


# --------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """A train/test split of one data set.

    Attributes
    ----------
    X_train, X_test : ndarray of shape (n_train, n_features), (n_test, n_features)
        Features, one sample per row, float32 or float64. Unscaled: see
        :func:`default_scaler`.
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
    """

    X_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    task: Task
    class_names: list[str] | None
    name: str
    feature_shape: tuple[int, ...]

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


# --------------------------------------------------------------------------------------
# Argument checks and shared helpers
# --------------------------------------------------------------------------------------


def _float_dtype(dtype: Any) -> np.dtype:
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"`dtype` must be float32 or float64; got {dtype!r}")
    return resolved


def _check_fraction(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise ValueError(f"`{name}` must be a number between 0 and 1; got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"`{name}` must be > 0 and < 1; got {value!r}")
    return float(value)


def _check_task(task: str) -> str:
    if task not in ("auto", "classification", "regression"):
        raise ValueError(f"`task` must be 'auto', 'classification' or 'regression'; got {task!r}")
    return task


def _short(cell: str, limit: int = 40) -> str:
    return repr(cell if len(cell) <= limit else cell[: limit - 1] + "…")


def _to_float(X: np.ndarray, dtype: np.dtype, where: str) -> np.ndarray:
    """Cast to ``dtype``; NaN, ±inf, or a value too large for ``dtype`` is a DataError."""
    if X.dtype.kind in "biu":  # integers are finite and fit in float32's range
        return X.astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        out = X.astype(dtype)
    finite = np.isfinite(out)
    if not finite.all():
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        value = X[index]
        problem = (
            f"value {value.item()!r} does not fit in {dtype.name}"
            if np.isfinite(value)
            else f"non-finite value {value.item()!r}"
        )
        position = f"sample {index[0]}"
        if len(index) > 1:
            position += f", feature {index[1] if len(index) == 2 else index[1:]}"
        raise DataError(f"{where}: {problem} at {position}")
    return out


def _split_indices(
    y: np.ndarray, test_size: float, rng: np.random.Generator, stratify: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Random train/test row indices; with ``stratify``, each class keeps its proportion.

    The test set has ``ceil(test_size * n)`` rows (as in scikit-learn's
    ``train_test_split``); stratified, they are shared among classes by largest remainder.
    """
    n = len(y)
    n_test = math.ceil(test_size * n)
    if n_test < 1 or n_test >= n:
        raise ValueError(f"{n} samples are too few to split with a fraction of {test_size}")
    perm = rng.permutation(n)
    if not stratify:
        return perm[n_test:], perm[:n_test]
    classes_in_perm = np.unique(y[perm], return_inverse=True)[1].reshape(-1)
    counts = np.bincount(classes_in_perm)
    exact = counts * (n_test / n)
    take = np.floor(exact).astype(np.int64)
    short = n_test - int(take.sum())
    take[np.argsort(-(exact - take), kind="stable")[:short]] += 1
    # Rank of each row within its class, in permutation order.
    order = np.argsort(classes_in_perm, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    is_test = rank < take[classes_in_perm]
    return perm[~is_test], perm[is_test]


def _make_split(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    *,
    task: Task,
    class_names: list[str] | None,
    feature_shape: tuple[int, ...],
    test_size: float,
    rng: np.random.Generator,
    source: str | None = None,
) -> Dataset:
    """Split (X, y) at random into a Dataset; ``source`` (default ``name``) names errors."""
    try:
        train, test = _split_indices(y, test_size, rng, stratify=task == "classification")
    except ValueError as error:
        raise DataError(f"{source or name}: {error}") from None
    return Dataset(X[train], y[train], X[test], y[test], task, class_names, name, feature_shape)


def _encode_target(
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
        return _to_float(values, dtype, where), "regression", None
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


# --------------------------------------------------------------------------------------
# Bundled data sets (scikit-learn's copies)
# --------------------------------------------------------------------------------------


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

    dtype = _float_dtype(dtype)
    test_size = _check_fraction("test_size", test_size)
    bunch = fetch()
    X = _to_float(np.asarray(bunch.data), dtype, name)
    if task == "classification":
        y = np.asarray(bunch.target, dtype=np.int64)
        class_names: list[str] | None = [str(c) for c in bunch.target_names]
    else:
        y = _to_float(np.asarray(bunch.target), dtype, name)
        class_names = None
    X_train, X_test, y_train, y_test = train_test_split(
        X,
        y,
        test_size=test_size,
        random_state=seed,
        stratify=y if task == "classification" else None,
    )
    return Dataset(
        X_train,
        y_train,
        X_test,
        y_test,
        task,
        class_names,
        name,
        feature_shape or (X.shape[1],),
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


# --------------------------------------------------------------------------------------
# Synthetic 2-D data sets
# --------------------------------------------------------------------------------------


def _class_sizes(n_samples: int, n_classes: int) -> list[int]:
    return [n_samples // n_classes + (k < n_samples % n_classes) for k in range(n_classes)]


def _check_synthetic(n_samples: int, noise: float, n_classes: int = 2) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
        raise ValueError(f"`n_samples` must be an integer; got {n_samples!r}")
    if n_samples < 4 * n_classes:
        raise ValueError(f"`n_samples` must be >= {4 * n_classes}; got {n_samples}")
    if not (isinstance(noise, (int, float, np.floating)) and 0.0 <= noise < math.inf):
        raise ValueError(f"`noise` must be a finite number >= 0; got {noise!r}")


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
    dtype = _float_dtype(dtype)
    test_size = _check_fraction("test_size", test_size)
    X = np.concatenate(parts)
    X = X + noise * rng.standard_normal(X.shape)
    y = np.repeat(np.arange(len(parts), dtype=np.int64), [len(p) for p in parts])
    return _make_split(
        name,
        X.astype(dtype),
        y,
        task="classification",
        class_names=class_names,
        feature_shape=(2,),
        test_size=test_size,
        rng=rng,
    )


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
        raise ValueError(f"`factor` must be > 0 and < 1; got {factor!r}")
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
        raise ValueError(f"`n_classes` must be an integer; got {n_classes!r}")
    if n_classes < 2:
        raise ValueError(f"`n_classes` must be >= 2; got {n_classes}")
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


# --------------------------------------------------------------------------------------
# IDX files (LeCun's MNIST format)
# --------------------------------------------------------------------------------------

#: IDX type code (third magic byte) → big-endian dtype of the data.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.str[1:]: code for code, dt in IDX_DTYPES.items()}  # "u1", "i2", ... → code
_IDX_VALID = ", ".join(f"0x{code:02X} {dt.name}" for code, dt in IDX_DTYPES.items())
# The IDX format allows 255 dimensions; the data sets in use have 1 to 4, so more than 8
# means a corrupt header (and would let a tiny file declare a large header).
_IDX_MAX_NDIM = 8
# DEFLATE cannot expand data by more than 1032:1 (zlib technical details, "maximum
# compression factor"); a header declaring more data than that bound is rejected before
# anything is decompressed or allocated.
_DEFLATE_MAX_RATIO = 1032
_CHUNK = 1 << 22


def _open_error(name: str, error: OSError) -> DataError:
    if isinstance(error, FileNotFoundError):
        return DataError(f"{name}: no such file")
    if isinstance(error, IsADirectoryError):
        return DataError(f"{name}: is a directory, not a file")
    if isinstance(error, PermissionError):
        return DataError(f"{name}: permission denied")
    return DataError(f"{name}: cannot read ({error.strerror or error})")


def _read_idx_header(stream: Any, name: str) -> tuple[np.dtype, tuple[int, ...], int]:
    """Parse magic number and dimensions; return (dtype, dims, header bytes)."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise DataError(
            f"{name}: too short for an IDX file ({len(magic)} bytes; the magic number is 4)"
        )
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(
            f"{name}: not an IDX file (magic number {magic.hex(' ')}; IDX files start with 00 00)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX data type code 0x{code:02X}; valid: {_IDX_VALID}")
    if not 1 <= ndim <= _IDX_MAX_NDIM:
        raise DataError(
            f"{name}: IDX header declares {ndim} dimensions; expected 1 to {_IDX_MAX_NDIM}"
        )
    raw_dims = stream.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(
            f"{name}: truncated IDX header: {ndim} dimensions need {4 * ndim} bytes after "
            f"the magic number, found {len(raw_dims)}"
        )
    dims = tuple(int.from_bytes(raw_dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
    return IDX_DTYPES[code], dims, 4 + 4 * ndim


def _describe(dims: tuple[int, ...], dtype: np.dtype) -> str:
    return f"shape {dims} of {dtype.name}"


def _read_idx_gzip(stream: gzip.GzipFile, name: str, compressed_size: int) -> np.ndarray:
    dtype, dims, header_size = _read_idx_header(stream, name)
    expected = math.prod(dims) * dtype.itemsize
    if header_size + expected > _DEFLATE_MAX_RATIO * compressed_size:
        raise DataError(
            f"{name}: IDX header declares {_describe(dims, dtype)} ({expected} data bytes), "
            f"more than a {compressed_size}-byte gzip file can hold"
        )
    # Read in chunks: memory grows only with data that really exists.
    buffer = bytearray()
    while len(buffer) <= expected:
        chunk = stream.read(min(_CHUNK, expected + 1 - len(buffer)))
        if not chunk:
            break
        buffer += chunk
    if len(buffer) != expected:
        found = len(buffer)
        if found > expected:
            while chunk := stream.read(_CHUNK):
                found += len(chunk)
        raise DataError(
            f"{name}: IDX header declares {_describe(dims, dtype)}, which needs {expected} "
            f"data bytes; the decompressed file holds {found}"
        )
    return _idx_array(buffer, dtype, dims)


def _read_idx_raw(stream: Any, name: str, file_size: int) -> np.ndarray:
    dtype, dims, header_size = _read_idx_header(stream, name)
    expected = math.prod(dims) * dtype.itemsize
    found = file_size - header_size
    if found != expected:  # checked before any allocation
        raise DataError(
            f"{name}: IDX header declares {_describe(dims, dtype)}, which needs {expected} "
            f"data bytes; the file holds {found}"
        )
    data = bytearray(expected)  # bounded by the file's size, checked above
    got = stream.readinto(data)
    if got != expected:  # the file shrank while we read it
        raise DataError(f"{name}: expected {expected} data bytes, read {got}")
    return _idx_array(data, dtype, dims)


def _idx_array(buffer: bytearray, dtype: np.dtype, dims: tuple[int, ...]) -> np.ndarray:
    array = np.frombuffer(buffer, dtype=dtype)
    if not array.dtype.isnative:
        array = array.astype(dtype.newbyteorder("="))
    return array.reshape(dims)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed.

    Compression is recognised by the gzip magic bytes ``1f 8b``, not by the file name.
    The format is read strictly: magic number ``00 00 TT NN`` with a type code ``TT``
    (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64) and
    ``NN`` = 1 … 8 dimensions, then each dimension as a big-endian uint32, then exactly
    ``prod(dims) * itemsize`` bytes of big-endian data.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    ndarray of shape dims
        In native byte order, writable.

    Raises
    ------
    DataError
        Missing or unreadable file, bad magic number or type code, too few or too many
        data bytes (the message gives both counts), corrupt or truncated gzip data.
        Declared sizes are checked against the file before anything is allocated.

    References
    ----------
    Y. LeCun, C. Cortes, C. Burges, "The MNIST database", file-format section.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            file_size = os.fstat(f.fileno()).st_size
            gzipped = f.read(2) == b"\x1f\x8b"
            f.seek(0)
            if not gzipped:
                return _read_idx_raw(f, name, file_size)
            try:
                with gzip.GzipFile(fileobj=f, mode="rb") as stream:
                    return _read_idx_gzip(stream, name, file_size)
            except (OSError, EOFError, zlib.error) as error:
                raise DataError(f"{name}: corrupt or truncated gzip data ({error})") from None
    except OSError as error:
        raise _open_error(name, error) from None


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends with ``.gz``.

    The write is atomic: the data goes to a temporary file in the same directory, which
    is flushed, fsync'ed and renamed over ``path`` (``os.replace``), so readers see the
    old file or the new one, never a partial one. A new file gets mode 0644, a replaced
    one keeps its mode. Gzip output is reproducible (no name or time stamp in its header).

    Parameters
    ----------
    path : str or path-like
    array : ndarray
        dtype uint8, int8, int16, int32, float32 or float64 (any byte order; stored
        big-endian), 1 to 8 dimensions each below 2³².

    Raises
    ------
    DataError
        Unsupported dtype or shape, or the file cannot be written.
    """
    name = os.fspath(path)
    data = np.asarray(array)
    code = _IDX_CODES.get(data.dtype.str[1:])
    if code is None:
        raise DataError(
            f"{name}: IDX cannot hold dtype {data.dtype}; valid: "
            + ", ".join(dt.name for dt in IDX_DTYPES.values())
        )
    if not 1 <= data.ndim <= _IDX_MAX_NDIM:
        raise DataError(f"{name}: IDX needs 1 to {_IDX_MAX_NDIM} dimensions; got {data.ndim}")
    if max(data.shape) >= 2**32:
        raise DataError(f"{name}: IDX dimensions must be < 2**32; got shape {data.shape}")
    header = bytes([0, 0, code, data.ndim]) + b"".join(d.to_bytes(4, "big") for d in data.shape)
    payload = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder(">")).reshape(-1)
    payload = payload.view(np.uint8)
    directory = os.path.dirname(os.path.abspath(name))
    try:
        mode = os.stat(name).st_mode & 0o7777
    except OSError:
        mode = 0o644
    try:
        fd, temporary = tempfile.mkstemp(
            dir=directory, prefix=f".{os.path.basename(name)}.", suffix=".tmp"
        )
    except OSError as error:
        raise DataError(f"{name}: cannot write ({error.strerror or error})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            if name.endswith(".gz"):
                with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as stream:
                    stream.write(header)
                    stream.write(payload)
            else:
                f.write(header)
                f.write(payload)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(temporary, name)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise DataError(f"{name}: cannot write ({error.strerror or error})") from None
        raise
    # Make the rename itself durable; not every file system allows fsync on a directory.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


# --------------------------------------------------------------------------------------
# Directories of MNIST-style IDX files
# --------------------------------------------------------------------------------------

# A generic IDX directory's classes are 0..max(label); more than this means the label
# files do not hold class indices.
_IDX_MAX_CLASSES = 65536
_IDX_PARTS = {
    "train images": "train-images-idx3-ubyte",
    "train labels": "train-labels-idx1-ubyte",
    "test images": "t10k-images-idx3-ubyte",
    "test labels": "t10k-labels-idx1-ubyte",
}


def _find_idx_file(directory: str, stem: str, hint: str) -> str:
    # The MNIST site's names, optionally gzipped, or the common "t10k-images.idx3-ubyte".
    dotted = stem.replace("-idx", ".idx")
    for candidate in (stem, stem + ".gz", dotted, dotted + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    raise DataError(f"{directory}: no {stem} or {stem}.gz in this directory; {hint}")


def _load_idx_dir(
    directory: str,
    *,
    name: str,
    class_names: list[str] | None,
    image_shape: tuple[int, ...] | None,
    dtype: Any,
    hint: str,
) -> Dataset:
    dtype = _float_dtype(dtype)
    if not os.path.isdir(directory):
        raise DataError(f"{directory}: no such directory; {hint}")
    files = {part: _find_idx_file(directory, stem, hint) for part, stem in _IDX_PARTS.items()}
    arrays = {part: read_idx(path) for part, path in files.items()}
    split = {}
    for which in ("train", "test"):
        images, labels = arrays[f"{which} images"], arrays[f"{which} labels"]
        images_file, labels_file = files[f"{which} images"], files[f"{which} labels"]
        if images.ndim < 2:
            raise DataError(f"{images_file}: expected images (n, rows, cols); got {images.shape}")
        if image_shape is not None and images.shape[1:] != image_shape:
            raise DataError(
                f"{images_file}: images have shape {images.shape[1:]}; "
                f"{name} images are {image_shape}"
            )
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise DataError(
                f"{labels_file}: expected 1-D integer labels; got {labels.dtype} "
                f"of shape {labels.shape}"
            )
        if len(images) != len(labels):
            raise DataError(
                f"{images_file}: holds {len(images)} images but "
                f"{os.path.basename(labels_file)} holds {len(labels)} labels"
            )
        bad = labels < 0
        if class_names is not None:
            bad |= labels >= len(class_names)
        if bad.any():
            index = int(np.argmax(bad))
            allowed = "0 or more" if class_names is None else f"in 0..{len(class_names) - 1}"
            raise DataError(
                f"{labels_file}: label {labels[index]} at index {index}; labels must be {allowed}"
            )
        X = _to_float(images.reshape(len(images), -1), dtype, images_file)
        split[which] = (X, labels.astype(np.int64), images.shape[1:])
    if split["train"][2] != split["test"][2]:
        raise DataError(
            f"{directory}: train images are {split['train'][2]}, test images {split['test'][2]}"
        )
    if class_names is None:
        n_classes = 1 + int(max(split["train"][1].max(initial=0), split["test"][1].max(initial=0)))
        if n_classes > _IDX_MAX_CLASSES:
            raise DataError(
                f"{directory}: labels go up to {n_classes - 1}; class labels must be "
                f"0..n_classes-1 with at most {_IDX_MAX_CLASSES} classes"
            )
        class_names = [str(k) for k in range(n_classes)]
    (X_train, y_train, shape), (X_test, y_test, _) = split["train"], split["test"]
    return Dataset(
        X_train, y_train, X_test, y_test, "classification", class_names, name, tuple(shape)
    )


def _data_dir(
    data_dir: str | os.PathLike[str] | None, variable: str, default: str | None
) -> str | None:
    if data_dir is not None:
        return os.fspath(data_dir)
    return os.environ.get(variable) or default


def load_fashion_mnist(
    data_dir: str | os.PathLike[str] | None = None, *, dtype: Any = "float32"
) -> Dataset:
    """Fashion-MNIST: 70000 grey 28×28 images of clothing in 10 classes.

    Reads the four IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``) and
    keeps the official split: 60000 training and 10000 test images, 6000 and 1000 per
    class.

    Parameters
    ----------
    data_dir : str or path-like, optional
        Directory of the files. Default: the environment variable
        ``DELTAPROP_FASHION_MNIST``, else ``/usr/share/datasets/fashion-mnist`` (where
        Debian's ``dataset-fashion-mnist`` package installs them).
    dtype : {"float32", "float64"}, default "float32"

    Returns
    -------
    Dataset
        ``X`` of shape (n, 784) with raw pixel values 0..255 (scale with
        ``default_scaler("fashion-mnist")``), ``feature_shape == (28, 28)``,
        ``class_names`` :data:`FASHION_MNIST_CLASSES`.

    Raises
    ------
    DataError
        Missing directory or file (the message says how to get them), or files that do
        not hold 28×28 images with matching labels 0..9.
    """
    directory = _data_dir(data_dir, "DELTAPROP_FASHION_MNIST", FASHION_MNIST_DIR)
    return _load_idx_dir(
        directory,
        name="fashion-mnist",
        class_names=list(FASHION_MNIST_CLASSES),
        image_shape=(28, 28),
        dtype=dtype,
        hint=_FASHION_HINT,
    )


def load_mnist(
    data_dir: str | os.PathLike[str] | None = None, *, dtype: Any = "float32"
) -> Dataset:
    """MNIST handwritten digits from a directory of its four IDX files (no default location).

    Parameters
    ----------
    data_dir : str or path-like, optional
        Directory of the files; default: the environment variable ``DELTAPROP_MNIST``.
    dtype : {"float32", "float64"}, default "float32"

    Returns
    -------
    Dataset
        As :func:`load_fashion_mnist`, with ``class_names`` "0" … "9".
    """
    directory = _data_dir(data_dir, "DELTAPROP_MNIST", None)
    if directory is None:
        raise DataError(f"mnist: no data directory given; {_MNIST_HINT}")
    return _load_idx_dir(
        directory,
        name="mnist",
        class_names=[str(k) for k in range(10)],
        image_shape=(28, 28),
        dtype=dtype,
        hint=_MNIST_HINT,
    )


# --------------------------------------------------------------------------------------
# CSV and NPZ files
# --------------------------------------------------------------------------------------


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_csv(name: str) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows (all as wide as the header) and each row's line number."""
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        with open(name, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            try:
                header = next(row for row in reader if row)
            except StopIteration:
                raise DataError(f"{name}: empty file; expected a header row") from None
            header = [cell.strip() for cell in header]
            for row in reader:
                if not row:  # blank line
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"{name}: line {reader.line_num}: {len(row)} fields; "
                        f"the header has {len(header)}"
                    )
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as error:
        raise DataError(f"{name}: line {reader.line_num}: {error}") from None
    except UnicodeDecodeError:
        raise DataError(f"{name}: not a UTF-8 text file") from None
    except OSError as error:
        raise _open_error(name, error) from None
    for j, column in enumerate(header):
        if not column:
            raise DataError(f"{name}: column {j + 1} has an empty name in the header")
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise DataError(f"{name}: duplicate column names: {', '.join(duplicates)}")
    if all(_is_number(cell) for cell in header):
        raise DataError(
            f"{name}: line 1 looks like data, not a header; the first row must name the columns"
        )
    return header, rows, lines


def _csv_numbers(
    name: str, rows: list[list[str]], lines: list[int], header: list[str], columns: list[int]
) -> np.ndarray:
    """The given columns as float64; an empty, non-numeric or non-finite cell is a DataError."""
    cells = rows if len(columns) == len(header) else [[r[j] for j in columns] for r in rows]
    try:
        values = np.array(cells, dtype=np.float64).reshape(len(rows), len(columns))
    except ValueError:
        values = None
    if values is not None and np.isfinite(values).all():
        return values
    # Slow path, only to name the first bad cell.
    values = np.empty((len(rows), len(columns)))
    for i, row in enumerate(cells):
        for k, cell in enumerate(row):
            values[i, k] = _csv_number(name, cell, lines[i], header[columns[k]])
    return values


def _csv_number(name: str, cell: str, line: int, column: str) -> float:
    where = f"{name}: line {line}, column '{column}'"
    if not cell.strip():
        raise DataError(f"{where}: empty cell")
    try:
        value = float(cell)
    except ValueError:
        raise DataError(f"{where}: {_short(cell.strip())} is not a number") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: {_short(cell.strip())} is not a finite number")
    return value


def _csv_target(
    name: str, cells: list[str], lines: list[int], column: str, task: str
) -> np.ndarray:
    """The target column as finite float64 if every cell is a number, else as strings."""
    cells = [cell.strip() for cell in cells]
    for cell, line in zip(cells, lines, strict=True):
        if not cell:
            raise DataError(f"{name}: line {line}, column '{column}': empty target cell")
    if task == "regression" or all(_is_number(cell) for cell in cells):
        return np.array(
            [_csv_number(name, c, n, column) for c, n in zip(cells, lines, strict=True)]
        )
    return np.array(cells, dtype=str)


def load_csv(
    path: str | os.PathLike[str],
    *,
    target: str | None = None,
    task: str = "auto",
    seed: int = 0,
    dtype: Any = "float32",
    test_size: float = 0.25,
) -> Dataset:
    """Read a CSV file with a header row into a train/test split.

    Every column but the target is a numeric feature. Blank lines are skipped; the file
    must be UTF-8 (a byte-order mark is allowed).

    Parameters
    ----------
    path : str or path-like
    target : str, optional
        Name of the target column; default: the last column.
    task : {"auto", "classification", "regression"}, default "auto"
        "auto": a non-numeric target, or an integer-valued one with at most
        :data:`AUTO_MAX_CLASSES` distinct values, holds class labels; any other numeric
        target is a regression target. Class labels (strings or integers) become indices
        into the sorted ``class_names`` (integers sorted numerically).
    seed : int, default 0
        Seeds the random split (stratified for classification).
    dtype : {"float32", "float64"}, default "float32"
    test_size : float, default 0.25
        Fraction of rows held out for testing (rounded up).

    Returns
    -------
    Dataset
        ``name`` is the file's base name.

    Raises
    ------
    DataError
        Missing or unreadable file, empty file, no header, missing target column, a row
        with the wrong number of fields, an empty, non-numeric or non-finite feature
        cell (the message gives line and column), too few rows to split.
    """
    name = os.fspath(path)
    dtype = _float_dtype(dtype)
    test_size = _check_fraction("test_size", test_size)
    _check_task(task)
    header, rows, lines = _read_csv(name)
    if target is None:
        t = len(header) - 1
    elif target in header:
        t = header.index(target)
    else:
        raise DataError(f"{name}: column '{target}' not found; columns are {', '.join(header)}")
    if len(header) < 2:
        raise DataError(f"{name}: no feature columns besides the target '{header[t]}'")
    if not rows:
        raise DataError(f"{name}: no data rows after the header")
    features = [j for j in range(len(header)) if j != t]
    X = _csv_numbers(name, rows, lines, header, features)
    values = _csv_target(name, [row[t] for row in rows], lines, header[t], task)
    y, task_, class_names = _encode_target(values, task, dtype, f"{name}: column '{header[t]}'")
    return _make_split(
        os.path.basename(name),
        _to_float(X, dtype, name),
        y,
        task=task_,
        class_names=class_names,
        feature_shape=(len(features),),
        test_size=test_size,
        rng=np.random.default_rng(seed),
        source=name,
    )


_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError)


def _open_npz(name: str) -> Any:
    try:
        contents = np.load(name, allow_pickle=False)
    except OSError as error:
        if isinstance(error, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise _open_error(name, error) from None
        raise DataError(f"{name}: not a valid .npz or .npy file ({error})") from None
    except (ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataError(f"{name}: not a valid .npz or .npy file ({error})") from None
    return contents


def _npz_array(contents: Any, key: str, name: str) -> np.ndarray:
    if key not in contents.files:
        raise DataError(
            f"{name}: no array '{key}'; arrays are {', '.join(contents.files) or '(none)'}"
        )
    try:
        array = contents[key]
    except _NPZ_ERRORS as error:
        raise DataError(f"{name}: cannot read array '{key}' ({error})") from None
    return array


def _feature_matrix(X: np.ndarray, where: str, dtype: np.dtype) -> np.ndarray:
    """(n, *feature_shape) numeric → (n, n_features) in ``dtype``, finite."""
    if X.dtype.kind not in "biuf":
        raise DataError(f"{where}: features must be numeric; got dtype {X.dtype}")
    if X.ndim < 2:
        raise DataError(
            f"{where}: features need 2 or more dimensions (samples first); got shape {X.shape}"
        )
    return _to_float(X.reshape(len(X), -1), dtype, where)


def load_npz(
    path: str | os.PathLike[str],
    *,
    task: str = "auto",
    seed: int = 0,
    dtype: Any = "float32",
    test_size: float = 0.25,
) -> Dataset:
    """Read ``X`` and ``y`` from a NumPy ``.npz`` file into a train/test split.

    ``X`` has samples first; extra dimensions (e.g. images) are flattened and kept in
    ``feature_shape``. ``y`` holds class labels (integers, booleans or strings) or
    regression targets (1-D, or 2-D for several outputs); ``task`` as in
    :func:`load_csv`. If the file also holds ``X_test`` and ``y_test`` they are the test
    set and ``test_size`` is not used. Loaded with ``allow_pickle=False``.

    Raises
    ------
    DataError
        Missing or invalid file, missing ``X`` or ``y``, non-numeric or non-finite
        features, mismatched lengths.
    """
    name = os.fspath(path)
    dtype = _float_dtype(dtype)
    test_size = _check_fraction("test_size", test_size)
    _check_task(task)
    contents = _open_npz(name)
    if isinstance(contents, np.ndarray):
        raise DataError(f"{name}: holds a single .npy array; training needs an .npz with X and y")
    with contents:
        keys = ["X", "y"]
        if "X_test" in contents.files or "y_test" in contents.files:
            keys += ["X_test", "y_test"]
        arrays = {key: _npz_array(contents, key, name) for key in keys}
    for x_key, y_key in zip(keys[::2], keys[1::2], strict=True):
        features, labels = arrays[x_key], arrays[y_key]
        if labels.ndim == 0 or features.ndim == 0 or len(features) != len(labels):
            raise DataError(
                f"{name}: '{x_key}' has shape {features.shape} but '{y_key}' has shape "
                f"{labels.shape}; they need the same number of samples"
            )
        if labels.dtype.kind not in "biufUS":
            raise DataError(f"{name}: '{y_key}' has unsupported dtype {labels.dtype}")
        if labels.dtype.kind == "f" and not np.isfinite(labels).all():
            raise DataError(f"{name}: '{y_key}' contains NaN or infinity")
        if labels.dtype.kind == "S":
            arrays[y_key] = labels.astype(str)
    feature_shape = tuple(arrays["X"].shape[1:])
    X = _feature_matrix(arrays["X"], f"{name}: 'X'", dtype)
    where = f"{name}: 'y'"
    if "X_test" not in arrays:
        y, task_, class_names = _encode_target(arrays["y"], task, dtype, where)
        return _make_split(
            os.path.basename(name),
            X,
            y,
            task=task_,
            class_names=class_names,
            feature_shape=feature_shape,
            test_size=test_size,
            rng=np.random.default_rng(seed),
            source=name,
        )
    if arrays["X_test"].shape[1:] != feature_shape:
        raise DataError(
            f"{name}: 'X_test' samples have shape {arrays['X_test'].shape[1:]}; "
            f"'X' samples have shape {feature_shape}"
        )
    X_test = _feature_matrix(arrays["X_test"], f"{name}: 'X_test'", dtype)
    y, y_test = arrays["y"], arrays["y_test"]
    if (y.dtype.kind == "U") != (y_test.dtype.kind == "U") or y.shape[1:] != y_test.shape[1:]:
        raise DataError(f"{name}: 'y' and 'y_test' hold different kinds of targets")
    both, task_, class_names = _encode_target(np.concatenate([y, y_test]), task, dtype, where)
    return Dataset(
        X,
        both[: len(y)],
        X_test,
        both[len(y) :],
        task_,
        class_names,
        os.path.basename(name),
        feature_shape,
    )


def load_features(
    path: str | os.PathLike[str], *, dtype: Any = "float32", target: str | None = None
) -> np.ndarray:
    """Read the features of a file to predict on.

    - ``.csv``: a header row, then numeric columns, all of them features (the ``target``
      column, if named and present, is dropped, so a labelled file works too);
    - ``.npz``: the array ``X``; ``.npy``: the array itself;
    - any other file: IDX, raw or gzipped (e.g. ``t10k-images-idx3-ubyte.gz``).

    Arrays with more than 2 dimensions (images) are flattened to one row per sample.

    Parameters
    ----------
    path : str or path-like
    dtype : {"float32", "float64"}, default "float32"
    target : str, optional
        CSV column to leave out if the file has it.

    Returns
    -------
    ndarray of shape (n, n_features)

    Raises
    ------
    DataError
        Unreadable or malformed file, non-numeric or non-finite values.
    """
    name = os.fspath(path)
    dtype = _float_dtype(dtype)
    suffix = os.path.splitext(name)[1].lower()
    if suffix == ".csv":
        header, rows, lines = _read_csv(name)
        columns = [j for j, column in enumerate(header) if column != target]
        if not columns:
            raise DataError(f"{name}: no feature columns besides '{target}'")
        if not rows:
            raise DataError(f"{name}: no data rows after the header")
        return _to_float(_csv_numbers(name, rows, lines, header, columns), dtype, name)
    if suffix in (".npz", ".npy"):
        contents = _open_npz(name)
        if isinstance(contents, np.ndarray):
            X = contents
        else:
            with contents:
                X = _npz_array(contents, "X", name)
        return _feature_matrix(X, name, dtype)
    return _feature_matrix(read_idx(name), name, dtype)


# --------------------------------------------------------------------------------------
# Registry and the one entry point
# --------------------------------------------------------------------------------------

#: Data set name → loader. Look names up with :func:`get` (or :func:`load`).
DATASETS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "iris": load_iris,
    "wine": load_wine,
    "breast-cancer": load_breast_cancer,
    "diabetes": load_diabetes,
    "xor": load_xor,
    "moons": load_moons,
    "circles": load_circles,
    "spirals": load_spirals,
    "fashion-mnist": load_fashion_mnist,
    "mnist": load_mnist,
}


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def get(name: str) -> Callable[..., Dataset]:
    """The loader registered under ``name`` (case and ``_``/``-`` do not matter).

    Raises
    ------
    DataError
        Unknown name; the message lists the valid names.
    """
    loader = DATASETS.get(_canonical(name))
    if loader is None:
        raise DataError(f"unknown data set {name!r}; valid names are {', '.join(sorted(DATASETS))}")
    return loader


def load(
    name_or_path: str | os.PathLike[str],
    *,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    dtype: Any = "float32",
    test_size: float = 0.25,
    target: str | None = None,
    task: str = "auto",
    n_samples: int | None = None,
    noise: float | None = None,
) -> Dataset:
    """Load a data set by registry name or path; the one entry point.

    A name in :data:`DATASETS` wins; anything else is a path: a ``.csv`` file
    (:func:`load_csv`), an ``.npz`` file (:func:`load_npz`) or a directory holding the
    four MNIST-style IDX files (classes are the label values).

    Parameters
    ----------
    name_or_path : str or path-like
    data_dir : str or path-like, optional
        Directory of ``fashion-mnist`` / ``mnist`` (see :func:`load_fashion_mnist`).
    seed : int, default 0
        Seeds synthetic data and every random split.
    dtype : {"float32", "float64"}, default "float32"
    test_size : float, default 0.25
        Fraction held out for testing. Not used by sets with an official test split
        (``fashion-mnist``, ``mnist``, IDX directories).
    target, task
        For CSV files (``task`` also for ``.npz``); see :func:`load_csv`.
    n_samples, noise
        For the synthetic sets; None keeps each set's default.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        Unknown name (the message lists the valid ones), an option that does not apply to
        the chosen set, or any problem with the data.
    """
    options: dict[str, Any] = {
        "data_dir": data_dir,
        "target": target,
        "task": None if task == "auto" else _check_task(task),
        "n_samples": n_samples,
        "noise": noise,
    }
    name = os.fspath(name_or_path)
    path: list[str] = []  # the loader's positional argument, for files
    if _canonical(name) in DATASETS:
        loader = DATASETS[_canonical(name)]
    else:
        suffix = os.path.splitext(name)[1].lower()
        if os.path.isdir(name):
            loader = _load_idx_path
        elif suffix == ".csv":
            loader = load_csv
        elif suffix == ".npz":
            loader = load_npz
        elif os.path.exists(name):
            raise DataError(
                f"{name}: cannot train on this file; use a .csv file, an .npz file with "
                "arrays X and y, or a directory of MNIST-style IDX files"
            )
        else:
            raise DataError(
                f"unknown data set {name!r}; valid names are {', '.join(sorted(DATASETS))}, "
                "or the path of a .csv file, an .npz file or a directory of IDX files"
            )
        path = [name]
    # Pass each loader only what it takes; an option set for a loader without it is an
    # error rather than silently ignored. seed and test_size have defaults, so a set with
    # a fixed split (fashion-mnist) simply has no use for them.
    parameters = inspect.signature(loader).parameters
    arguments: dict[str, Any] = {"dtype": dtype}
    if "seed" in parameters:
        arguments["seed"] = seed
    if "test_size" in parameters:
        arguments["test_size"] = test_size
    for option, value in options.items():
        if value is None:
            continue
        if option not in parameters:
            raise DataError(f"{name}: option {option}={value!r} does not apply to this data set")
        arguments[option] = value
    return loader(*path, **arguments)


def _load_idx_path(path: str, *, dtype: Any = "float32") -> Dataset:
    directory = os.path.normpath(path)
    return _load_idx_dir(
        directory,
        name=os.path.basename(directory),
        class_names=None,
        image_shape=None,
        dtype=dtype,
        hint="a directory of IDX files needs all four MNIST-style files",
    )


# --------------------------------------------------------------------------------------
# Preprocessing (fitted on training data only)
# --------------------------------------------------------------------------------------

_SCALER_KINDS = ("none", "minmax", "standard", "divide")


class Scaler:
    """Per-feature affine scaling x ↦ (x − offset) / scale, fitted on training data only.

    Kinds:

    - ``"none"``: x unchanged (only cast to the output dtype);
    - ``"minmax"``: offset = min, scale = max − min of each training feature, so training
      data lands in [0, 1] (test data may fall outside);
    - ``"standard"``: offset = mean, scale = standard deviation (population, ddof = 0);
    - ``"divide"``: offset = 0, scale = ``divisor`` for every feature (255 for 8-bit
      images, 16 for digits); needs no fit.

    A feature that is constant in the training data gets scale 1, so it maps to 0 rather
    than dividing by zero. Statistics are computed and stored in float64.

    Parameters
    ----------
    kind : {"none", "minmax", "standard", "divide"}, default "standard"
    divisor : float, optional
        Required for (and only for) ``kind="divide"``; must be finite and > 0.
    """

    def __init__(self, kind: str = "standard", divisor: float | None = None) -> None:
        if kind not in _SCALER_KINDS:
            raise ValueError(f"`kind` must be one of {', '.join(_SCALER_KINDS)}; got {kind!r}")
        if kind == "divide":
            try:
                valid = divisor is not None and 0.0 < float(divisor) < math.inf
            except (TypeError, ValueError):
                valid = False
            if not valid:
                raise ValueError(f"`divisor` must be finite and > 0; got {divisor!r}")
            divisor = float(divisor)
        elif divisor is not None:
            raise ValueError(f"`divisor` applies only to kind='divide'; got kind={kind!r}")
        self.kind = kind
        self.divisor = divisor
        self.offset: np.ndarray | None = None
        self.scale: np.ndarray | None = None
        self.n_features: int | None = None

    def __repr__(self) -> str:
        extra = f", divisor={self.divisor!r}" if self.kind == "divide" else ""
        return f"Scaler({self.kind!r}{extra})"

    def fit(self, X: np.ndarray) -> Scaler:
        """Learn offset and scale from training features ``X`` of shape (n, n_features).

        Returns
        -------
        Scaler
            ``self``.
        """
        X = np.asarray(X)
        if X.ndim != 2 or len(X) == 0:
            raise ValueError(f"`X` must have shape (n, n_features) with n >= 1; got {X.shape}")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"`X` must be numeric; got dtype {X.dtype}")
        if X.dtype.kind == "f" and not np.isfinite(X).all():
            raise ValueError("`X` contains NaN or infinity")
        self.n_features = X.shape[1]
        if self.kind == "minmax":
            low = X.min(axis=0).astype(np.float64)
            high = X.max(axis=0).astype(np.float64)
            span = high - low
            self.offset, self.scale = low, np.where(span > 0, span, 1.0)
        elif self.kind == "standard":
            X64 = X.astype(np.float64)
            constant = X.max(axis=0) == X.min(axis=0)  # exact, unlike a rounded std
            std = X64.std(axis=0)
            self.offset = X64.mean(axis=0)
            self.scale = np.where(constant | (std == 0), 1.0, std)
        else:
            self.offset, self.scale = None, None
        return self

    def transform(self, X: np.ndarray, dtype: Any = None) -> np.ndarray:
        """Scaled copy of ``X``: (X − offset) / scale.

        Parameters
        ----------
        X : ndarray of shape (n, n_features)
        dtype : {"float32", "float64"}, optional
            Output dtype; default: ``X``'s dtype if it is float32 or float64, else float32.

        Returns
        -------
        ndarray of shape (n, n_features)
        """
        X = np.asarray(X)
        if dtype is None:
            dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float32
        dtype = _float_dtype(dtype)
        if X.ndim != 2:
            raise ValueError(f"`X` must have shape (n, n_features); got {X.shape}")
        if self.kind in ("minmax", "standard") and self.offset is None:
            raise ValueError(f"{self!r} is not fitted; call fit(X_train) first")
        if self.n_features is not None and X.shape[1] != self.n_features:
            raise ValueError(
                f"`X` has {X.shape[1]} features; this scaler was fitted on {self.n_features}"
            )
        out = np.array(X, dtype=dtype, copy=True)
        if self.kind == "divide":
            out /= dtype.type(self.divisor)
        elif self.offset is not None and self.scale is not None:
            out -= self.offset.astype(dtype)
            out /= self.scale.astype(dtype)
        return out

    def fit_transform(self, X: np.ndarray, dtype: Any = None) -> np.ndarray:
        """``fit(X)`` then ``transform(X, dtype)``."""
        return self.fit(X).transform(X, dtype)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: kind, divisor, n_features, offset and scale lists."""
        return {
            "kind": self.kind,
            "divisor": self.divisor,
            "n_features": self.n_features,
            "offset": None if self.offset is None else self.offset.tolist(),
            "scale": None if self.scale is None else self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        """Rebuild a scaler from :meth:`to_dict` output (e.g. read from a model file).

        Raises
        ------
        DataError
            Missing keys, unknown kind, or offset/scale of the wrong length.
        """
        if not isinstance(d, dict) or "kind" not in d:
            raise DataError(f"scaler: expected a dict with a 'kind'; got {d!r}")
        try:
            scaler = cls(d["kind"], d.get("divisor"))
        except (ValueError, TypeError) as error:
            raise DataError(f"scaler: {error}") from None
        n_features = d.get("n_features")
        if n_features is not None and (
            isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1
        ):
            raise DataError(f"scaler: 'n_features' must be a positive integer; got {n_features!r}")
        scaler.n_features = n_features
        if scaler.kind in ("minmax", "standard") and n_features is not None:
            arrays = []
            for key in ("offset", "scale"):
                try:
                    array = np.asarray(d.get(key), dtype=np.float64)
                except (TypeError, ValueError):
                    array = None
                if array is None or array.shape != (n_features,) or not np.isfinite(array).all():
                    raise DataError(f"scaler: '{key}' must be {n_features} finite numbers")
                arrays.append(array)
            scaler.offset, scaler.scale = arrays
            if (scaler.scale <= 0).any():
                raise DataError("scaler: 'scale' values must be > 0")
        return scaler


#: Data set name → (kind, divisor) of its default scaling; others get "standard".
DEFAULT_SCALING: dict[str, tuple[str, float | None]] = {
    "digits": ("divide", 16.0),  # pixel values 0..16
    "fashion-mnist": ("divide", 255.0),  # 8-bit grey levels
    "mnist": ("divide", 255.0),
}


def default_scaler(dataset_name: str) -> Scaler:
    """An unfitted :class:`Scaler` suited to the data set.

    ``digits`` → divide by 16; ``fashion-mnist`` and ``mnist`` → divide by 255; every other
    set (and user files) → ``"standard"``.
    """
    kind, divisor = DEFAULT_SCALING.get(_canonical(dataset_name), ("standard", None))
    return Scaler(kind, divisor)


def one_hot(y: np.ndarray, n_classes: int, dtype: Any = "float32") -> np.ndarray:
    """One-hot rows: ``Y[i, y[i]] = 1``, every other entry 0.

    Parameters
    ----------
    y : ndarray of shape (m,)
        Integer class indices in 0 … n_classes − 1.
    n_classes : int
    dtype : {"float32", "float64"}, default "float32"

    Returns
    -------
    ndarray of shape (m, n_classes)
    """
    y = np.asarray(y)
    dtype = _float_dtype(dtype)
    if y.ndim != 1 or (y.dtype.kind not in "iu" and len(y)):
        raise ValueError(f"`y` must be 1-D integer class indices; got {y.dtype} {y.shape}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)):
        raise ValueError(f"`n_classes` must be an integer; got {n_classes!r}")
    if n_classes < 1:
        raise ValueError(f"`n_classes` must be >= 1; got {n_classes}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"`y` values must be in 0..{n_classes - 1}; got {y.min()}..{y.max()}")
    Y = np.zeros((len(y), n_classes), dtype=dtype)
    Y[np.arange(len(y)), y.astype(np.intp)] = 1
    return Y


def train_val_split(
    X: np.ndarray,
    y: np.ndarray,
    val_fraction: float,
    rng: np.random.Generator,
    *,
    stratify: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out a random validation set from training data.

    Parameters
    ----------
    X : ndarray of shape (n, n_features)
    y : ndarray of shape (n,) or (n, n_outputs)
    val_fraction : float
        In (0, 1); the validation set has ``ceil(val_fraction * n)`` samples.
    rng : numpy.random.Generator
    stratify : bool, default False
        Keep each class's proportion (``y`` must be class labels).

    Returns
    -------
    X_train, y_train, X_val, y_val : ndarray
        In the order of :class:`Dataset`'s fields (not scikit-learn's).
    """
    val_fraction = _check_fraction("val_fraction", val_fraction)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"`rng` must be a numpy.random.Generator; got {type(rng).__name__}")
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
        raise ValueError(f"`X` and `y` need the same number of samples; got {X.shape}, {y.shape}")
    train, val = _split_indices(y, val_fraction, rng, stratify)
    return X[train], y[train], X[val], y[val]
