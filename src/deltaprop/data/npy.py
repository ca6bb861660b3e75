"""NumPy files: ``.npz`` archives of ``X`` and ``y``, and ``.npy`` arrays, memory-mapped if stored.

Features are opened as read-only memory maps, never read whole, wherever the file stores
them uncompressed: a ``.npy`` file always (``np.load(mmap_mode="r")``), an ``.npz`` member
written by ``np.savez`` (the zip entry is *stored*, so the member's ``.npy`` bytes sit at a
fixed offset inside the archive and are mapped there). Members of ``np.savez_compressed``
archives are read into memory and converted to float, as small files always were.

A memory-mapped data set keeps the file's own numeric dtype (e.g. uint8 pixels, 4× smaller
than float32): training converts each mini-batch (``training.fit``'s ``input_transform``),
and its test set is the file's last rows (:func:`~deltaprop.data.dataset.tail_split`) or
the archive's ``X_test``/``y_test``. Float features are checked for NaN, ±inf and values
too large for ``dtype`` in one streaming pass, which releases the pages it has read
(:func:`deltaprop.streaming.row_blocks`). Labels are always read into memory.

Everything is loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib
from typing import Any

import numpy as np

from deltaprop._validation import open_error
from deltaprop.data.dataset import (
    Dataset,
    Described,
    check_finite,
    check_task,
    encode_target,
    random_split,
    tail_split,
    to_float,
)
from deltaprop.errors import DataError
from deltaprop.preprocessing import check_split_fraction, float_dtype
from deltaprop.streaming import row_blocks

__all__ = ["feature_matrix", "load_npy", "load_npz", "read_npy_features"]

_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError)
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, …, file name length, extra length


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


def _map_member(name: str, key: str) -> np.memmap | None:
    """A read-only memory map of the stored (uncompressed) member ``key`` of an .npz file.

    None when the member is compressed, encrypted, Fortran-ordered, empty, of an object
    dtype, or its header is not one this reader knows: the caller then reads it whole.
    """
    try:
        with zipfile.ZipFile(name) as archive:
            info = archive.getinfo(key + ".npy")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            return None
        with open(name, "rb") as f:
            f.seek(info.header_offset)
            signature, name_length, extra_length = _LOCAL_HEADER.unpack(
                f.read(_LOCAL_HEADER.size)
            )
            if signature != b"PK\x03\x04":
                return None
            start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
            f.seek(start)
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return None
            offset = f.tell()
    except (OSError, ValueError, KeyError, EOFError, struct.error, zipfile.BadZipFile):
        return None
    size = math.prod(shape) * dtype.itemsize
    if dtype.hasobject or (fortran and len(shape) > 1) or size == 0:
        return None
    if offset - start + size != info.file_size:  # the member is not what its header says
        return None
    return np.memmap(name, dtype=dtype, mode="r", offset=offset, shape=shape, order="C")


def _map_npy(name: str) -> np.ndarray:
    """A ``.npy`` file as a read-only memory map (in memory if it cannot be mapped)."""
    try:
        array = np.load(name, mmap_mode="r", allow_pickle=False)
        if isinstance(array, np.memmap) and array.ndim > 1 and not array.flags.c_contiguous:
            # Fortran order: a row is scattered over the whole file; read it in.
            array = np.ascontiguousarray(array)
    except OSError as error:
        if isinstance(error, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise open_error(name, error) from None
        raise DataError(f"{name}: not a valid .npy file ({error})") from None
    except (ValueError, EOFError) as error:
        try:  # an empty array cannot be mapped; anything else reports its own problem
            array = np.load(name, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            raise DataError(f"{name}: not a valid .npy file ({error})") from None
    if not isinstance(array, np.ndarray):
        raise DataError(f"{name}: is an .npz archive, not a .npy array")
    return array


def _samples_first(X: np.ndarray, where: str) -> np.ndarray:
    if X.dtype.kind not in "biuf":
        raise DataError(f"{where}: features must be numeric; got dtype {X.dtype}")
    if X.ndim < 2:
        raise DataError(
            f"{where}: features need 2 or more dimensions (samples first); got shape {X.shape}"
        )
    return X.reshape(len(X), -1)


def feature_matrix(X: np.ndarray, where: str, dtype: np.dtype) -> np.ndarray:
    """(n, *feature_shape) numeric → (n, n_features) in ``dtype``, finite."""
    return to_float(_samples_first(X, where), dtype, where)


def _mapped_features(X: np.ndarray, where: str, dtype: np.dtype) -> np.ndarray:
    """(n, *feature_shape) memory map → (n, n_features) map, checked in one streaming pass.

    NaN, ±inf, or a value too large for ``dtype`` (what training will convert to) is a
    DataError naming the sample and feature; the map itself is not converted.
    """
    X = _samples_first(X, where)
    if X.dtype.kind == "f":
        narrower = dtype.itemsize < X.dtype.itemsize
        for start, block in row_blocks(X):
            with np.errstate(over="ignore", invalid="ignore"):
                converted = block.astype(dtype) if narrower else block
            check_finite(block, converted, where, first_row=start)
    return X


def _checked_labels(labels: np.ndarray, where: str) -> np.ndarray:
    """Labels of a supported dtype, finite; bytes decoded to str."""
    if labels.dtype.kind not in "biufUS":
        raise DataError(f"{where} has unsupported dtype {labels.dtype}")
    if labels.dtype.kind == "f" and not np.isfinite(labels).all():
        raise DataError(f"{where} contains NaN or infinity")
    return labels.astype(str) if labels.dtype.kind == "S" else labels


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
    :func:`~deltaprop.data.delimited.load_csv`. If the file also holds ``X_test`` and
    ``y_test`` they are the test set and ``test_size`` is not used.

    ``X`` (and ``X_test``) stored uncompressed (``np.savez``) are memory-mapped: they keep
    the file's dtype, are never read whole, and without ``X_test`` the test set is the last
    ``ceil(test_size * n)`` rows. Compressed members (``np.savez_compressed``) are read
    into memory as ``dtype`` and split at random (stratified for classification).

    A sparse matrix written by ``scipy.sparse.save_npz`` (TF-IDF features) is read by
    :func:`_sparse_npz` and stays sparse (CSR); its labels come from ``target``, a ``.npy``
    file.

    Raises
    ------
    DataError
        Missing or invalid file, missing ``X`` or ``y``, non-numeric or non-finite
        features, mismatched lengths, a class found only in the last rows of a mapped file.
    """
    name = os.fspath(path)
    dtype = float_dtype(dtype)
    test_size = check_split_fraction("test_size", test_size)
    check_task(task)
    contents = _open_npz(name)
    if isinstance(contents, np.ndarray):
        raise DataError(f"{name}: holds a single .npy array; training needs an .npz with X and y")
    if {"format", "indptr", "shape"} <= set(contents.files):  # scipy.sparse.save_npz's layout
        contents.close()
        X, labels = _sparse_npz(name, target, dtype)
        y, task_, class_names = encode_target(labels, task, dtype, os.fspath(target))
        about = Described(os.path.basename(name), task_, class_names, (X.shape[1],),
                          source=name)
        return random_split(about, X, y, test_size, np.random.default_rng(seed))
    if target is not None:
        contents.close()
        raise DataError(f"{name}: option target={os.fspath(target)!r} applies to a sparse "
                        "matrix saved by scipy.sparse.save_npz; this archive holds X and y")
    with contents:
        keys = ["X", "y"]
        if "X_test" in contents.files or "y_test" in contents.files:
            keys += ["X_test", "y_test"]
        arrays: dict[str, np.ndarray] = {}
        for key in keys:
            mapped = _map_member(name, key) if key.startswith("X") else None
            arrays[key] = mapped if mapped is not None else _npz_array(contents, key, name)
    for x_key, y_key in zip(keys[::2], keys[1::2], strict=True):
        features, labels = arrays[x_key], arrays[y_key]
        if labels.ndim == 0 or features.ndim == 0 or len(features) != len(labels):
            raise DataError(
                f"{name}: '{x_key}' has shape {features.shape} but '{y_key}' has shape "
                f"{labels.shape}; they need the same number of samples"
            )
        arrays[y_key] = _checked_labels(labels, f"{name}: '{y_key}'")
    feature_shape = tuple(arrays["X"].shape[1:])
    mapped = isinstance(arrays["X"], np.memmap)

    def features(key: str) -> np.ndarray:
        where = f"{name}: '{key}'"
        if isinstance(arrays[key], np.memmap):
            return _mapped_features(arrays[key], where, dtype)
        if mapped:  # keep one dtype for train and test: the file's
            return _mapped_features(_samples_first(arrays[key], where), where, dtype)
        return feature_matrix(arrays[key], where, dtype)

    X = features("X")
    where = f"{name}: 'y'"
    basename = os.path.basename(name)
    if "X_test" not in arrays:
        y, task_, class_names = encode_target(arrays["y"], task, dtype, where)
        about = Described(basename, task_, class_names, feature_shape, source=name)
        if mapped:
            return tail_split(about, X, y, test_size)
        return random_split(about, X, y, test_size, np.random.default_rng(seed))
    if arrays["X_test"].shape[1:] != feature_shape:
        raise DataError(
            f"{name}: 'X_test' samples have shape {arrays['X_test'].shape[1:]}; "
            f"'X' samples have shape {feature_shape}"
        )
    X_test = features("X_test")
    y, y_test = arrays["y"], arrays["y_test"]
    if (y.dtype.kind == "U") != (y_test.dtype.kind == "U") or y.shape[1:] != y_test.shape[1:]:
        raise DataError(f"{name}: 'y' and 'y_test' hold different kinds of targets")
    both, task_, class_names = encode_target(np.concatenate([y, y_test]), task, dtype, where)
    return Dataset(
        X, both[: len(y)], X_test, both[len(y) :], task_, class_names, basename, feature_shape
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


def _label_column(target: Any) -> int | None:
    """``target`` as a column position, or None if it names a labels file."""
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return int(target)
    if isinstance(target, str):
        try:
            return int(target.strip())
        except ValueError:
            return None
    return None


def load_npy(
    path: str | os.PathLike[str],
    *,
    target: str | int | os.PathLike[str] | None = None,
    task: str = "auto",
    seed: int = 0,
    dtype: Any = "float32",
    test_size: float = 0.25,
) -> Dataset:
    """Features in a ``.npy`` file, memory-mapped, with their labels into a train/test split.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` array of shape (n, *feature_shape), samples first.
    target : str, int or path-like
        The labels: the path of a ``.npy`` file holding one label (or target row) per
        sample; or, for a 2-D array, the position (0 or -1) of the column that holds them.
    task, seed, dtype, test_size
        As in :func:`load_npz`; ``dtype`` is what training converts to (the check for
        values that do not fit uses it), the map keeps the file's dtype.

    Returns
    -------
    Dataset
        Memory-mapped ``X_train`` and ``X_test`` (the last ``ceil(test_size * n)`` rows).

    Raises
    ------
    DataError
        No labels given, labels whose number does not match the rows, invalid files,
        non-numeric or non-finite features, a label column in the middle of the array.
    """
    name = os.fspath(path)
    dtype = float_dtype(dtype)
    test_size = check_split_fraction("test_size", test_size)
    check_task(task)
    if target is None:
        raise DataError(
            f"{name}: cannot train on this file alone: a .npy file holds only features; give "
            "its labels as target=LABELS.npy (--target LABELS.npy) or the position of a label "
            "column (0 or -1)"
        )
    X = _map_npy(name)
    column = _label_column(target)
    feature_shape = tuple(X.shape[1:])
    if column is not None:
        if X.ndim != 2 or X.dtype.kind not in "biuf":
            raise DataError(
                f"{name}: a label column needs a 2-D numeric array; got {X.dtype} {X.shape}"
            )
        width = X.shape[1]
        if column not in (0, -1, width - 1) or width < 2:
            raise DataError(
                f"{name}: the label column must be the first (0) or the last (-1) of "
                f"{width} columns; got {target!r}"
            )
        first = column == 0
        labels = np.empty(len(X), dtype=X.dtype)
        for start, block in row_blocks(X):
            labels[start : start + len(block)] = block[:, 0 if first else -1]
        X = X[:, 1:] if first else X[:, :-1]
        feature_shape = (X.shape[1],)
        source = f"{name}: column {0 if first else width - 1}"
        labels = _checked_labels(labels, source)
    else:
        labels_name = os.fspath(target)
        labels = _map_npy(labels_name)
        labels = np.array(labels)  # labels are small: read them whole
        source = labels_name
        if labels.ndim == 0 or X.ndim == 0 or len(labels) != len(X):
            raise DataError(
                f"{name}: holds {len(X) if X.ndim else 0} rows (shape {X.shape}) but "
                f"{labels_name} holds {len(labels) if labels.ndim else 0} labels "
                f"(shape {labels.shape}); they need one label per row"
            )
        labels = _checked_labels(labels, f"{labels_name}: the labels")
    y, task_, class_names = encode_target(labels, task, dtype, source)
    basename = os.path.basename(name)
    about = Described(basename, task_, class_names, feature_shape, source=name)
    if isinstance(X, np.memmap):
        return tail_split(about, _mapped_features(X, name, dtype), y, test_size)
    X = feature_matrix(X, name, dtype)
    return random_split(about, X, y, test_size, np.random.default_rng(seed))


def read_npy_features(path: str | os.PathLike[str], dtype: Any = "float32") -> np.ndarray:
    """The features of an ``.npz`` (array ``X``) or ``.npy`` file, in memory as ``dtype``."""
    name = os.fspath(path)
    dtype = float_dtype(dtype)
    contents = _open_npz(name)
    if isinstance(contents, np.ndarray):
        X = contents
    else:
        with contents:
            X = _npz_array(contents, "X", name)
    return feature_matrix(X, name, dtype)
