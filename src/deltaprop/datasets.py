"""load/generate data as (X, y) arrays (bundled, synthetic, IDX folders, CSV, NPZ); splits.

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
- User files: CSV with a header, ``.npz`` with arrays ``X`` and ``y``, a sparse matrix
  written by ``scipy.sparse.save_npz`` (labels from ``target``, a ``.npy`` file), or a
  directory of the four MNIST-style IDX files.

Anything wrong with a file or its contents raises :class:`DataError` (a ``ValueError``)
with a one-line message naming the file and the problem. The IDX reader and writer live in
``idx`` and preprocessing (:class:`Scaler`, :func:`one_hot`, :func:`train_val_split`) in
``preprocessing``; both are re-exported here. Randomness
comes from an explicit ``seed`` or ``rng``, never NumPy's global state. scikit-learn is
imported only inside the functions that need it.
"""

from __future__ import annotations

import csv
import inspect
import math
import os
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from deltaprop._validation import DataError, open_error
from deltaprop.errors import ConfigError
from deltaprop.idx import IDX_DTYPES, read_idx, write_idx
from deltaprop.preprocessing import (
    Scaler,
    check_split_fraction,
    float_dtype,
    one_hot,
    split_indices,
    train_val_split,
)

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


def _check_task(task: str) -> str:
    if task not in ("auto", "classification", "regression"):
        raise ConfigError(f"`task` must be 'auto', 'classification' or 'regression'; got {task!r}")
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
        train, test = split_indices(y, test_size, rng, stratify=task == "classification")
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

    dtype = float_dtype(dtype)
    test_size = check_split_fraction("test_size", test_size)
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
    dtype = float_dtype(dtype)
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
        raise open_error(name, error) from None
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
    dtype = float_dtype(dtype)
    test_size = check_split_fraction("test_size", test_size)
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
            raise open_error(name, error) from None
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
    target: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Read ``X`` and ``y`` from a NumPy ``.npz`` file into a train/test split.

    ``X`` has samples first; extra dimensions (e.g. images) are flattened and kept in
    ``feature_shape``. ``y`` holds class labels (integers, booleans or strings) or
    regression targets (1-D, or 2-D for several outputs); ``task`` as in
    :func:`load_csv`. If the file also holds ``X_test`` and ``y_test`` they are the test
    set and ``test_size`` is not used. Loaded with ``allow_pickle=False``.

    A sparse matrix written by ``scipy.sparse.save_npz`` (TF-IDF features) is read by
    :func:`_sparse_npz` and stays sparse (CSR); its labels come from ``target``.

    Raises
    ------
    DataError
        Missing or invalid file, missing ``X`` or ``y``, non-numeric or non-finite
        features, mismatched lengths.
    """
    name = os.fspath(path)
    dtype = float_dtype(dtype)
    test_size = check_split_fraction("test_size", test_size)
    _check_task(task)
    contents = _open_npz(name)
    if isinstance(contents, np.ndarray):
        raise DataError(f"{name}: holds a single .npy array; training needs an .npz with X and y")
    if {"format", "indptr", "shape"} <= set(contents.files):  # scipy.sparse.save_npz's layout
        contents.close()
        X, labels = _sparse_npz(name, target, dtype)
        y, task_, class_names = _encode_target(labels, task, dtype, f"{target}")
        return _make_split(os.path.basename(name), X, y, task=task_, class_names=class_names,
                           feature_shape=(X.shape[1],), test_size=test_size,
                           rng=np.random.default_rng(seed), source=name)
    if target is not None:
        raise DataError(f"{name}: option target={os.fspath(target)!r} applies to a sparse "
                        "matrix saved by scipy.sparse.save_npz; this archive holds X and y")
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


def _sparse_npz(name: str, target: str | os.PathLike[str] | None, dtype: np.dtype
                ) -> tuple[Any, np.ndarray]:
    """A ``scipy.sparse.save_npz`` file as a CSR matrix of ``dtype`` (never made dense),
    and its labels: one per row from ``target``, a ``.npy`` file (``np.save(path, y)``)."""
    import scipy.sparse

    if target is None:
        raise DataError(f"{name}: holds a sparse matrix (scipy.sparse.save_npz) and no labels; "
                        "pass the labels as a .npy file: --target LABELS.npy")
    try:
        X = scipy.sparse.load_npz(name).tocsr().astype(dtype)
    except (*_NPZ_ERRORS, NotImplementedError) as error:
        raise DataError(f"{name}: not a readable scipy.sparse matrix ({error})") from None
    if X.dtype.kind != "f" or not np.isfinite(X.data).all():
        raise DataError(f"{name}: the sparse matrix holds NaN, infinity or non-numbers")
    labels = _open_npz(os.fspath(target))
    if not isinstance(labels, np.ndarray):
        labels.close()
        raise DataError(f"{os.fspath(target)}: the labels must be one .npy array (np.save)")
    if labels.ndim == 0 or len(labels) != X.shape[0]:
        raise DataError(f"{os.fspath(target)}: {labels.shape} labels for the {X.shape[0]} rows "
                        f"of {name}; they need one per row")
    if labels.dtype.kind not in "biufUS":
        raise DataError(f"{os.fspath(target)}: unsupported label dtype {labels.dtype}")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise DataError(f"{os.fspath(target)}: the labels contain NaN or infinity")
    return X, labels.astype(str) if labels.dtype.kind == "S" else labels


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
    dtype = float_dtype(dtype)
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
