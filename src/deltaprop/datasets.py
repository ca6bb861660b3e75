"""The data sets under their first home's name: a re-export of :mod:`deltaprop.data`.

Loading moved to the subpackage ``deltaprop.data`` (one module per source, issue 16); every
name this module had still works, e.g. ``deltaprop.datasets.load("fashion-mnist")``.
"""

from __future__ import annotations

from deltaprop.data import (
    AUTO_MAX_CLASSES,
    DATASETS,
    DEFAULT_SCALING,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    IDX_DTYPES,
    DataError,
    Dataset,
    default_scaler,
    get,
    load,
    load_breast_cancer,
    load_circles,
    load_csv,
    load_diabetes,
    load_digits,
    load_fashion_mnist,
    load_features,
    load_iris,
    load_mnist,
    load_moons,
    load_npz,
    load_spirals,
    load_wine,
    load_xor,
    read_idx,
    write_idx,
)
from deltaprop.preprocessing import Scaler, one_hot, train_val_split

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
