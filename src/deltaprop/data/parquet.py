"""Parquet files, read through pyarrow (the optional extra ``deltaprop[parquet]``) by batches.

The file's metadata gives the number of rows, so the features go straight into one
preallocated array, one record batch of about 8 MB at a time: a file's features are held
once, in ``dtype``, plus a batch. Columns keep their names (``Dataset.feature_names``).

Features must be flat numeric (integer, floating point or boolean) columns; the target may
also hold strings (class labels, dictionary-encoded or not). A nested column (struct, list,
map), a text feature, or a missing value (null, NaN) is a one-line :class:`DataError`
naming the file, the column and — for values — the row, counted from 0. Index columns
written by pandas (``__index_level_0__``) are not features.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from deltaprop._validation import open_error
from deltaprop.data.dataset import (
    Dataset,
    Described,
    check_task,
    encode_target,
    find_columns,
    listing,
    split_in_place,
)
from deltaprop.errors import DataError, DeltapropError
from deltaprop.preprocessing import check_split_fraction, float_dtype

__all__ = ["ParquetUnavailableError", "load_parquet", "read_parquet_features"]

# Bytes of float64 values per record batch.
_BATCH_BYTES = 8 << 20


class ParquetUnavailableError(DeltapropError, ImportError):
    """pyarrow is not installed: ``pip install 'deltaprop[parquet]'``."""


def _pyarrow(name: str) -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ParquetUnavailableError(
            f"{name}: reading Parquet needs pyarrow; install it with: "
            "pip install 'deltaprop[parquet]'"
        ) from None
    return pa, pq


def _index_columns(schema: Any) -> set[str]:
    """Columns pandas wrote for its index (not data)."""
    metadata = schema.metadata or {}
    try:
        pandas = json.loads(metadata.get(b"pandas", b"{}"))
    except (ValueError, UnicodeDecodeError):
        return set()
    return {c for c in pandas.get("index_columns", []) if isinstance(c, str)}


def _open(name: str) -> Any:
    pa, pq = _pyarrow(name)
    try:
        return pq.ParquetFile(name)
    except OSError as error:
        if isinstance(error, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise open_error(name, error) from None
        raise DataError(f"{name}: not a valid Parquet file ({error})") from None
    except (pa.ArrowException, ValueError) as error:
        raise DataError(f"{name}: not a valid Parquet file ({error})") from None


def _column_kind(pa: Any, field: Any, name: str, target: bool) -> str:
    """"number" or "label" for a column deltaprop can read; a DataError otherwise."""
    kind = field.type
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_nested(kind):
        raise DataError(
            f"{name}: column '{field.name}' is nested ({field.type}); deltaprop reads flat "
            "columns of numbers (and a column of labels)"
        )
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        return "number"
    if target and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return "label"
    what = "the target" if target else "a feature"
    raise DataError(
        f"{name}: column '{field.name}' holds {field.type}; {what} must be "
        + ("numbers or text labels" if target else "numbers")
    )


def _resolve(names: list[str], column: Any, name: str) -> int | None:
    if isinstance(column, str) and column in names:
        return names.index(column)
    try:
        position = int(column) if not isinstance(column, bool) else None
    except (TypeError, ValueError):
        return None
    if position is None or not -len(names) <= position < len(names):
        raise DataError(f"{name}: column {column!r} not found; the file has {len(names)} columns")
    return position % len(names)


def _read(
    name: str,
    *,
    dtype: np.dtype,
    target: Any,
    labelled: bool,
    feature_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray | None, list[str], str | None]:
    """(X, target values or None, feature names, target name) of a Parquet file."""
    pa, _ = _pyarrow(name)
    parquet = _open(name)
    schema = parquet.schema_arrow
    index = _index_columns(schema)
    names = [n for n in schema.names if n not in index]
    t = None
    if feature_names is not None:
        features = [names[j] for j in find_columns(name, names, list(feature_names))]
    else:
        if target is None:
            t = len(names) - 1 if labelled else None
        else:
            t = _resolve(names, target, name)
            if t is None and labelled:
                raise DataError(
                    f"{name}: column {target!r} not found; columns are {listing(names)}"
                )
        features = [c for j, c in enumerate(names) if j != t]
    target_name = None if t is None else names[t]
    if not features:
        raise DataError(f"{name}: no feature columns besides '{target_name}'")
    for column in features:
        _column_kind(pa, schema.field(column), name, target=False)
    kind = None if target_name is None else _column_kind(pa, schema.field(target_name), name, True)
    n = parquet.metadata.num_rows
    if n == 0:
        raise DataError(f"{name}: no rows")
    X = np.empty((n, len(features)), dtype=dtype)
    values = None if kind is None else np.empty(n, np.float64 if kind == "number" else object)
    wanted = features + ([target_name] if target_name is not None else [])
    rows = max(1, _BATCH_BYTES // (8 * len(wanted)))
    start = 0
    try:
        for batch in parquet.iter_batches(batch_size=rows, columns=wanted):
            m = batch.num_rows
            if start + m > n:
                raise DataError(f"{name}: holds more rows than its metadata says ({n})")
            for k, column in enumerate(features):
                _fill(X[start : start + m, k], batch.column(column), name, column, start)
            if values is not None and target_name is not None:
                _fill(values[start : start + m], batch.column(target_name), name, target_name,
                      start)
            start += m
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"{name}: cannot read ({error})") from None
    if start != n:
        raise DataError(f"{name}: holds {start} rows; its metadata says {n}")
    if values is not None and kind == "label":
        values = values.astype(str)
    return X, values, features, target_name


def _fill(out: np.ndarray, array: Any, name: str, column: str, first_row: int) -> None:
    """Copy one column of a record batch into ``out``; a null or non-finite value is an error."""
    if array.null_count:
        row = first_row + int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise DataError(f"{name}: row {row}, column '{column}': missing value (null)")
    if hasattr(array, "dictionary_decode"):
        array = array.dictionary_decode()
    values = array.to_numpy(zero_copy_only=False)
    if out.dtype.kind == "O":
        out[:] = values
        return
    with np.errstate(over="ignore", invalid="ignore"):
        out[:] = values
    finite = np.isfinite(out)
    if not finite.all():
        k = int(np.argmin(finite))
        value = values[k].item() if hasattr(values[k], "item") else values[k]
        problem = (
            f"value {value!r} does not fit in {out.dtype.name}"
            if np.isfinite(value)
            else f"non-finite value {value!r}"
        )
        raise DataError(f"{name}: row {first_row + k}, column '{column}': {problem}")


def load_parquet(
    path: str | os.PathLike[str],
    *,
    target: str | int | None = None,
    task: str = "auto",
    seed: int = 0,
    dtype: Any = "float32",
    test_size: float = 0.25,
) -> Dataset:
    """Read a Parquet file into a train/test split (needs ``deltaprop[parquet]``).

    Every column but the target (and pandas' index columns) is a numeric feature.

    Parameters
    ----------
    path : str or path-like
    target : str or int, optional
        The target column's name, or its position counted from 0 (negative from the end).
        Default: the last column.
    task, seed, dtype, test_size
        As in :func:`~deltaprop.data.delimited.load_csv`.

    Returns
    -------
    Dataset
        ``feature_names`` are the column names; rows keep the file's order within the
        training and the test set (the split itself is random).

    Raises
    ------
    ParquetUnavailableError
        pyarrow is not installed.
    DataError
        Invalid file, missing target, nested or text feature columns, missing values.
    """
    name = os.fspath(path)
    dtype = float_dtype(dtype)
    test_size = check_split_fraction("test_size", test_size)
    check_task(task)
    X, values, features, target_name = _read(name, dtype=dtype, target=target, labelled=True)
    y, task_, class_names = encode_target(values, task, dtype, f"{name}: column '{target_name}'")  # type: ignore[arg-type]
    about = Described(os.path.basename(name), task_, class_names, (len(features),), features, name)
    return split_in_place(about, X, y, test_size, seed)


def read_parquet_features(
    path: str | os.PathLike[str],
    *,
    dtype: Any = "float32",
    target: str | int | None = None,
    feature_names: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """The features of a Parquet file to predict on: the named columns, in that order.

    With ``feature_names``, exactly those columns (others are ignored; a missing one is a
    DataError); otherwise every column but ``target`` (if the file has it).

    Returns
    -------
    X : ndarray of shape (n, n_features)
    names : list of str
    """
    name = os.fspath(path)
    X, _, features, _ = _read(
        name, dtype=float_dtype(dtype), target=target, labelled=False,
        feature_names=feature_names,
    )  # fmt: skip
    return X, features
