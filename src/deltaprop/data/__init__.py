"""Data loading, one module per source, behind one ``load``; the registry of named data sets.

Every loader returns a :class:`Dataset`: ``X`` with samples as rows (float32 unless
``dtype="float64"``, or a memory map of a ``.npy``/``.npz`` file in its own dtype), ``y``
as int64 class indices for classification or floats for regression, a train/test split,
and the feature names where the source has them. :func:`load` is the one entry point: it
resolves a name through the plain-dict registry :data:`DATASETS` (via :func:`get`), takes
a pandas DataFrame, or treats its argument as a path and picks the reader by suffix.

========================  =====================================================
``dataset``               the ``Dataset``; target encoding; the train/test splits
``bundled``               scikit-learn's offline copies: digits, iris, wine, …
``synthetic``             xor, moons, circles, spirals from a seeded generator
``mnist``                 directories of MNIST-style IDX files (fashion-mnist, mnist)
``idx``                   the IDX file format, read and written strictly
``delimited``             CSV and TSV through NumPy's C parser
``npy``                   ``.npz``/``.npy`` files, memory-mapped when stored uncompressed
``parquet``               Parquet through pyarrow (``deltaprop[parquet]``)
``frame``                 pandas DataFrames and Series
========================  =====================================================

For predicting, :func:`read_features` reads a file's (or a frame's) features and their
column names, choosing columns by name when it is given a model's feature names.
Anything wrong with a file or its contents raises :class:`~deltaprop.errors.DataError`
with a one-line message naming the file and the problem (line and column, or row).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from deltaprop.data.bundled import (
    load_breast_cancer,
    load_diabetes,
    load_digits,
    load_iris,
    load_wine,
)
from deltaprop.data.dataset import AUTO_MAX_CLASSES, Dataset, check_task
from deltaprop.data.delimited import DELIMITERS, load_csv, read_csv_features
from deltaprop.data.frame import features_from_frame, is_frame, load_frame
from deltaprop.data.idx import IDX_DTYPES, read_idx, write_idx
from deltaprop.data.mnist import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    load_fashion_mnist,
    load_idx_dir,
    load_mnist,
)
from deltaprop.data.npy import feature_matrix, load_npy, load_npz, read_npy_features
from deltaprop.data.parquet import ParquetUnavailableError, load_parquet, read_parquet_features
from deltaprop.data.synthetic import load_circles, load_moons, load_spirals, load_xor
from deltaprop.errors import DataError
from deltaprop.preprocessing import Scaler, float_dtype

__all__ = [
    "AUTO_MAX_CLASSES",
    "DATASETS",
    "DEFAULT_SCALING",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "IDX_DTYPES",
    "PARQUET_SUFFIXES",
    "DataError",
    "Dataset",
    "ParquetUnavailableError",
    "default_scaler",
    "features_from_frame",
    "get",
    "load",
    "load_breast_cancer",
    "load_circles",
    "load_csv",
    "load_diabetes",
    "load_digits",
    "load_fashion_mnist",
    "load_features",
    "load_frame",
    "load_idx_dir",
    "load_iris",
    "load_mnist",
    "load_moons",
    "load_npy",
    "load_npz",
    "load_parquet",
    "load_spirals",
    "load_wine",
    "load_xor",
    "read_features",
    "read_idx",
    "write_idx",
]

#: File suffixes read as Parquet.
PARQUET_SUFFIXES = (".parquet", ".pq")

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

_FILES = "a .csv/.tsv file, a .parquet file, an .npz file with X and y, a .npy file of features"


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


def _file_loader(name: str) -> Callable[..., Dataset]:
    suffix = os.path.splitext(name)[1].lower()
    if os.path.isdir(name):
        return load_idx_dir
    if suffix in DELIMITERS:
        return load_csv
    if suffix == ".npz":
        return load_npz
    if suffix == ".npy":
        return load_npy
    if suffix in PARQUET_SUFFIXES:
        return load_parquet
    if os.path.exists(name):
        raise DataError(
            f"{name}: cannot train on this file; use {_FILES} (with --target LABELS.npy), or "
            "a directory of MNIST-style IDX files"
        )
    raise DataError(
        f"unknown data set {name!r}; valid names are {', '.join(sorted(DATASETS))}, or the "
        f"path of {_FILES}, or a directory of IDX files"
    )


def load(
    name_or_path: Any,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    dtype: Any = "float32",
    test_size: float = 0.25,
    target: str | int | None = None,
    task: str = "auto",
    n_samples: int | None = None,
    noise: float | None = None,
    header: bool | str | None = None,
) -> Dataset:
    """Load a data set by registry name, path or DataFrame; the one entry point.

    A name in :data:`DATASETS` wins; a pandas DataFrame goes to :func:`load_frame`;
    anything else is a path, read by its suffix: ``.csv``/``.tsv`` (:func:`load_csv`),
    ``.parquet`` (:func:`load_parquet`), ``.npz`` (:func:`load_npz`), ``.npy``
    (:func:`load_npy`, with ``target`` the labels file), or a directory holding the four
    MNIST-style IDX files (classes are the label values).

    Parameters
    ----------
    name_or_path : str, path-like or pandas.DataFrame
    data_dir : str or path-like, optional
        Directory of ``fashion-mnist`` / ``mnist`` (see :func:`load_fashion_mnist`).
    seed : int, default 0
        Seeds synthetic data and every random split.
    dtype : {"float32", "float64"}, default "float32"
    test_size : float, default 0.25
        Fraction held out for testing. Not used by sets with an official test split
        (``fashion-mnist``, ``mnist``, IDX directories, ``.npz`` files with ``X_test``).
    target : str or int, optional
        The target column of a CSV/TSV/Parquet file or DataFrame (name, or position from
        0), or the labels file of a ``.npy`` file.
    task : {"auto", "classification", "regression"}
        For files and frames; see :func:`load_csv`.
    n_samples, noise
        For the synthetic sets; None keeps each set's default.
    header : "auto", True or False, optional
        For CSV/TSV files; see :func:`load_csv`.

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
        "task": None if task == "auto" else check_task(task),
        "n_samples": n_samples,
        "noise": noise,
        "header": header,
    }
    path: list[Any] = []  # the loader's positional argument, for files and frames
    if is_frame(name_or_path):
        loader: Callable[..., Dataset] = load_frame
        name = "DataFrame"
        path = [name_or_path]
    else:
        name = os.fspath(name_or_path)
        if _canonical(name) in DATASETS:
            loader = DATASETS[_canonical(name)]
        else:
            loader = _file_loader(name)
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


def read_features(
    source: Any,
    *,
    dtype: Any = "float32",
    target: str | int | None = None,
    feature_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str] | None]:
    """Read the features of a file or DataFrame to predict on, and their column names.

    - CSV/TSV with a header, Parquet, DataFrame: with ``feature_names`` (a model's), exactly
      those columns in that order, wherever they are; the others (a target column, ids)
      are ignored, and a missing one is a DataError. Without ``feature_names``, every
      column but ``target`` (if the source has it).
    - CSV/TSV without a header: every column but ``target`` (a position), by position.
    - ``.npz`` (array ``X``), ``.npy``, or an IDX file (raw or gzipped): the array, one
      row per sample (images flattened).

    Parameters
    ----------
    source : str, path-like, or pandas.DataFrame / Series
    dtype : {"float32", "float64"}, default "float32"
    target : str or int, optional
    feature_names : list of str, optional

    Returns
    -------
    X : ndarray of shape (n, n_features), in memory
    names : list of str or None
        Column names of ``X``, or None where the source has none.

    Raises
    ------
    DataError
        Unreadable or malformed source, missing columns, non-numeric or non-finite values.
    """
    if is_frame(source):
        return features_from_frame(
            source, feature_names=feature_names, target=None if target is None else str(target),
            dtype=dtype,
        )  # fmt: skip
    name = os.fspath(source)
    suffix = os.path.splitext(name)[1].lower()
    if suffix in DELIMITERS:
        return read_csv_features(name, dtype=dtype, target=target, feature_names=feature_names)
    if suffix in PARQUET_SUFFIXES:
        return read_parquet_features(
            name, dtype=dtype, target=target, feature_names=feature_names
        )
    if suffix in (".npz", ".npy"):
        return read_npy_features(name, dtype), None
    return feature_matrix(read_idx(name), name, float_dtype(dtype)), None


def load_features(
    path: Any,
    *,
    dtype: Any = "float32",
    target: str | int | None = None,
    feature_names: Sequence[str] | None = None,
) -> np.ndarray:
    """The features of a file to predict on: :func:`read_features` without the names.

    Arrays with more than 2 dimensions (images) are flattened to one row per sample.

    Returns
    -------
    ndarray of shape (n, n_features)
    """
    return read_features(path, dtype=dtype, target=target, feature_names=feature_names)[0]


#: Data set name → (kind, divisor) of its default scaling; others get "standard".
DEFAULT_SCALING: dict[str, tuple[str, float | None]] = {
    "digits": ("divide", 16.0),  # pixel values 0..16
    "fashion-mnist": ("divide", 255.0),  # 8-bit grey levels
    "mnist": ("divide", 255.0),
}


def default_scaler(dataset_name: str) -> Scaler:
    """An unfitted :class:`~deltaprop.preprocessing.Scaler` suited to the data set.

    ``digits`` → divide by 16; ``fashion-mnist`` and ``mnist`` → divide by 255; every other
    set (and user files) → ``"standard"``.
    """
    kind, divisor = DEFAULT_SCALING.get(_canonical(dataset_name), ("standard", None))
    return Scaler(kind, divisor)
