"""Directories of MNIST-style IDX files: Fashion-MNIST, MNIST, or any folder of the four files.

A directory holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``, or with
``.idx`` for ``-idx``); the official train/test split is kept.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from deltaprop.data.dataset import Dataset, to_float
from deltaprop.data.idx import read_idx
from deltaprop.errors import DataError
from deltaprop.preprocessing import float_dtype

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "load_fashion_mnist",
    "load_idx_dir",
    "load_mnist",
]

#: Where Debian's ``dataset-fashion-mnist`` package installs the four gzipped IDX files.
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

#: Fashion-MNIST's label names, index = label (Xiao, Rasul & Vollgraf 2017, README).
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

_FASHION_HINT = (
    "install Debian's dataset-fashion-mnist package (apt-get install dataset-fashion-mnist) "
    "or pass --data-dir DIR"
)
_MNIST_HINT = (
    "put the four MNIST IDX files (train-images-idx3-ubyte[.gz], ...) in a directory and "
    "pass --data-dir DIR or set DELTAPROP_MNIST"
)


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


def _load_idx_files(
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
        X = to_float(images.reshape(len(images), -1), dtype, images_file)
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
    return _load_idx_files(
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
    return _load_idx_files(
        directory,
        name="mnist",
        class_names=[str(k) for k in range(10)],
        image_shape=(28, 28),
        dtype=dtype,
        hint=_MNIST_HINT,
    )


def load_idx_dir(path: str | os.PathLike[str], *, dtype: Any = "float32") -> Dataset:
    """Any directory of the four MNIST-style IDX files; the classes are the label values.

    Returns
    -------
    Dataset
        ``name`` is the directory's name, ``class_names`` "0" … str(max label).
    """
    directory = os.path.normpath(os.fspath(path))
    return _load_idx_files(
        directory,
        name=os.path.basename(directory),
        class_names=None,
        image_shape=None,
        dtype=dtype,
        hint="a directory of IDX files needs all four MNIST-style files",
    )
