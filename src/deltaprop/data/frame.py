"""pandas DataFrames and Series: features with their column names, and a Dataset from a frame.

pandas is never imported here: a frame is recognised by what it has (``columns``,
``dtypes``, ``to_numpy``), so deltaprop runs without pandas and takes a frame when there
is one. ``net.fit(df, y)`` needs none of this (NumPy converts a numeric frame); these
helpers add what a plain array loses: the names, choosing columns by name, and one-line
errors naming the column and row of a bad value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from deltaprop.data.dataset import (
    Dataset,
    Described,
    check_task,
    encode_target,
    find_columns,
    listing,
    random_split,
)
from deltaprop.errors import ConfigTypeError, DataError
from deltaprop.preprocessing import check_split_fraction, float_dtype

__all__ = ["features_from_frame", "is_frame", "load_frame"]



def is_frame(obj: Any) -> bool:
    """True for a pandas DataFrame or Series (or anything shaped like one)."""
    if hasattr(obj, "columns") and hasattr(obj, "dtypes") and hasattr(obj, "to_numpy"):
        return True
    return hasattr(obj, "to_frame") and getattr(obj, "ndim", None) == 1


def _as_frame(obj: Any) -> Any:
    if not is_frame(obj):
        raise ConfigTypeError(f"expected a pandas DataFrame or Series; got {type(obj).__name__}")
    return obj if hasattr(obj, "columns") else obj.to_frame()


def _names(frame: Any) -> list[str]:
    names = [str(c) for c in frame.columns]
    duplicates = sorted({c for c in names if names.count(c) > 1})
    if duplicates:
        raise DataError(f"DataFrame: duplicate column names: {', '.join(duplicates)}")
    return names


def _numeric(frame: Any, position: int, name: str) -> None:
    kind = getattr(frame.dtypes.iloc[position], "kind", "O")
    if kind not in "biuf":
        raise DataError(
            f"DataFrame: column '{name}' has dtype {frame.dtypes.iloc[position]}; features "
            "must be numbers"
        )


def _matrix(frame: Any, positions: list[int], names: list[str], dtype: np.dtype) -> np.ndarray:
    """The chosen columns as one (n, len(positions)) array; NaN or ±inf names row and column."""
    for j in positions:
        _numeric(frame, j, names[j])
    values = frame.iloc[:, positions].to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(over="ignore"):
        X = values.astype(dtype)
    finite = np.isfinite(X)
    if not finite.all():
        row, k = (int(i) for i in np.argwhere(~finite)[0])
        value = values[row, k]
        label = frame.index[row]
        problem = (
            "missing value (NaN)" if np.isnan(value)
            else f"value {value!r} does not fit in {dtype.name}" if np.isfinite(value)
            else f"non-finite value {value!r}"
        )  # fmt: skip
        raise DataError(
            f"DataFrame: row {row} (index {label!r}), column '{names[positions[k]]}': {problem}"
        )
    return X


def features_from_frame(
    frame: Any,
    *,
    feature_names: Sequence[str] | None = None,
    target: str | None = None,
    dtype: Any = "float32",
) -> tuple[np.ndarray, list[str]]:
    """A DataFrame's (or Series') features as an array, with their column names.

    Parameters
    ----------
    frame : pandas.DataFrame or pandas.Series
    feature_names : list of str, optional
        Take exactly these columns, in this order (e.g. a model's features, to predict on
        a frame whose columns are in another order or include the target); a missing one
        is a DataError. Default: every column but ``target``.
    target : str, optional
        A column to leave out if the frame has it.
    dtype : {"float32", "float64"}, default "float32"

    Returns
    -------
    X : ndarray of shape (n, n_features)
    names : list of str
        The column names of ``X``'s columns (``str`` of each label).

    Raises
    ------
    DataError
        Missing columns, duplicate names, a non-numeric column, NaN/None or ±inf (the
        message names row and column).
    """
    frame = _as_frame(frame)
    dtype = float_dtype(dtype)
    names = _names(frame)
    if feature_names is not None:
        positions = find_columns("DataFrame", names, [str(f) for f in feature_names])
    else:
        positions = [j for j, c in enumerate(names) if c != target]
    if not positions:
        raise DataError(f"DataFrame: no feature columns besides '{target}'")
    if len(frame) == 0:
        raise DataError("DataFrame: no rows")
    return _matrix(frame, positions, names, dtype), [names[j] for j in positions]


def load_frame(
    frame: Any,
    *,
    target: str | None = None,
    task: str = "auto",
    seed: int = 0,
    dtype: Any = "float32",
    test_size: float = 0.25,
    name: str = "DataFrame",
) -> Dataset:
    """A DataFrame with a target column as a train/test split, keeping the column names.

    Parameters
    ----------
    frame : pandas.DataFrame
    target : str, optional
        The target column (default: the last). It may hold numbers or labels (strings,
        categories); ``task`` as in :func:`~deltaprop.data.delimited.load_csv`.
    seed, dtype, test_size
        As in :func:`~deltaprop.data.delimited.load_csv` (a stratified random split).
    name : str, default "DataFrame"
        ``Dataset.name``.
    """
    frame = _as_frame(frame)
    dtype = float_dtype(dtype)
    test_size = check_split_fraction("test_size", test_size)
    check_task(task)
    names = _names(frame)
    if target is None:
        target = names[-1]
    elif str(target) not in names:
        raise DataError(f"DataFrame: column {target!r} not found; columns are {listing(names)}")
    target = str(target)
    X, features = features_from_frame(frame, target=target, dtype=dtype)
    column = frame.iloc[:, names.index(target)]
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise DataError(f"DataFrame: row {row}, column '{target}': missing target value")
    kind = getattr(column.dtype, "kind", "O")
    values = column.to_numpy() if kind in "biuf" else column.astype(str).to_numpy(dtype=str)
    y, task_, class_names = encode_target(values, task, dtype, f"DataFrame: column '{target}'")
    about = Described(name, task_, class_names, (X.shape[1],), features, "DataFrame")
    return random_split(about, X, y, test_size, np.random.default_rng(seed))
