"""Delimited text files (CSV, TSV) read by NumPy's C parser into one array.

The file is parsed by one ``np.loadtxt`` call on its path — NumPy's tokenizer and number
parser, in C, reading the file in blocks — with a structured dtype that names what every
column is: runs of feature columns (the requested float dtype), the target column (float64,
so integer labels stay exact; or Python strings for class labels) and columns to skip. The
parser also checks that every row has as many fields as the first. The features are a view
of the parsed records, so a file's features are held once: for Fashion-MNIST's 133 MB CSV
the load takes about as long as ``np.loadtxt`` alone and peaks near the same memory
(``benchmarks/bench_csv.py``, ``docs/data.md``, which also compares pandas' and pyarrow's
readers: both slower here, and holding the data two to three times).

Only when the fast parse fails — a ragged row, an empty or non-numeric cell, NaN or ±inf —
is the file read again, line by line with Python's ``csv`` module from the row NumPy
stopped at, to name the file, line and column of the first bad cell in a one-line
:class:`DataError`.

Header detection (``header="auto"``; ``True``/``False`` force it): the first non-blank line
is a header if a column that holds a number in the second line holds something else in the
first — so a headerless file whose first row starts with a text label is still data; a
file of one line is a header unless all its cells are numbers. A column is chosen by its
header name or by its position, counted from 0 (negative from the end), as in Python.
"""

from __future__ import annotations

import collections
import csv
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

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
from deltaprop.errors import ConfigError, DataError
from deltaprop.preprocessing import check_split_fraction, float_dtype

__all__ = ["DELIMITERS", "load_csv", "read_csv_features"]

#: File suffix → field delimiter; other suffixes are read as CSV.
DELIMITERS = {".csv": ",", ".tsv": "\t"}

# Rows checked for NaN and ±inf at a time: the check's boolean array stays a few MB.
_CHECK_ROWS = 4096
# NumPy's parse errors end "at row N" (data rows after the skipped lines, from 0 or 1).
_NUMPY_ROW = re.compile(r"at row (\d+)")


@dataclass
class _Layout:
    """What each column of a file is, decided from its first line."""

    name: str
    delimiter: str
    names: list[str] | None  # header names, or None without a header
    n_columns: int
    features: list[int]  # file columns of the features, in the output's order
    target: int | None  # file column of the target, or None
    has_header: bool

    def column(self, j: int) -> str:
        """How a message names column j."""
        return f"column '{self.names[j]}'" if self.names else f"column index {j}"

    def width_note(self) -> str:
        return "the header has" if self.has_header else "line 1 has"


class _LabelsAreText(Exception):
    """Internal: a target cell is not a number, so the target holds class labels."""


def _short(cell: str, limit: int = 40) -> str:
    return repr(cell if len(cell) <= limit else cell[: limit - 1] + "…")


def _is_number(cell: str) -> bool:
    # NumPy's parser, like C's strtod, rejects the digit separators Python's float() takes.
    if "_" in cell:
        return False
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _open(name: str) -> TextIO:
    try:
        return open(name, newline="", encoding="utf-8-sig")  # the callers close it
    except OSError as error:
        raise open_error(name, error) from None


def _is_blank(line: str) -> bool:
    return not line.rstrip("\r\n")


def _first_row(f: TextIO, name: str, delimiter: str) -> tuple[int, list[str]]:
    """The first non-blank line's fields, and how many lines were read to reach it."""
    for count, line in enumerate(f, start=1):
        if not _is_blank(line):
            return count, next(csv.reader([line], delimiter=delimiter))
    raise DataError(f"{name}: empty file; expected a header row or data")


def _resolve(names: list[str] | None, n_columns: int, column: Any, name: str) -> int | None:
    """The position of a column given by name or by position (from 0; negative from the end).

    None if ``column`` is a name the file does not have (the caller decides if that is an
    error); a position out of range is a DataError.
    """
    if isinstance(column, str) and names is not None and column in names:
        return names.index(column)
    position: int | None = None
    if isinstance(column, (int, np.integer)) and not isinstance(column, bool):
        position = int(column)
    elif isinstance(column, str):
        try:
            position = int(column.strip())
        except ValueError:
            return None
    else:
        raise ConfigError(f"`target` must be a column name or position; got {column!r}")
    if not -n_columns <= position < n_columns:
        raise DataError(
            f"{name}: column {position} not found; the file has {n_columns} columns "
            f"(positions 0..{n_columns - 1}, or -1 for the last)"
        )
    return position % n_columns


def _missing_column(name: str, names: list[str] | None, n_columns: int, column: Any) -> DataError:
    if names is None:
        return DataError(
            f"{name}: column {column!r} not found; the file has no header row, so choose the "
            f"column by its position 0..{n_columns - 1}"
        )
    return DataError(f"{name}: column {column!r} not found; columns are {listing(names)}")


def _check_header(header: bool | str) -> bool | str:
    if header not in ("auto", True, False):
        raise ConfigError(f"`header` must be 'auto', True or False; got {header!r}")
    return header


def _has_header(header: bool | str, first: list[str], second: list[str] | None) -> bool:
    """Whether the first row names the columns (see the module's docstring)."""
    if header != "auto":
        return bool(header)
    if second is None:
        return not all(_is_number(cell) for cell in first)
    return any(
        _is_number(below.strip()) and not _is_number(above.strip())
        for above, below in zip(first, second, strict=False)
    )


def _layout(
    name: str,
    first: list[str],
    second: list[str] | None,
    *,
    delimiter: str,
    header: bool | str,
    target: Any,
    labelled: bool,
    feature_names: Sequence[str] | None,
) -> _Layout:
    """Decide header, target and feature columns from the first row.

    ``labelled``: the target column must exist (default: the last); otherwise ``target`` is
    only a column to leave out if the file has it.
    """
    has_header = _has_header(header, first, second)
    names = [cell.strip() for cell in first] if has_header else None
    n_columns = len(first)
    if names is not None:
        for j, column in enumerate(names):
            if not column:
                raise DataError(f"{name}: column {j + 1} has an empty name in the header")
        duplicates = sorted(c for c, k in collections.Counter(names).items() if k > 1)
        if duplicates:
            raise DataError(f"{name}: duplicate column names: {', '.join(duplicates)}")
    by_name = feature_names is not None and names is not None
    if target is None or (by_name and not labelled):  # chosen by name: the rest is ignored
        t = n_columns - 1 if labelled else None
    else:
        t = _resolve(names, n_columns, target, name)
        if t is None and labelled:
            raise _missing_column(name, names, n_columns, target)
    if by_name:
        features = find_columns(name, names, list(feature_names))  # type: ignore[arg-type]
    else:
        features = [j for j in range(n_columns) if j != t]
    layout = _Layout(name, delimiter, names, n_columns, features, t, has_header)
    if not features:
        besides = "the target " if labelled else ""
        raise DataError(f"{name}: no feature columns besides {besides}'{_named(layout, t)}'")
    return layout


def _fields(layout: _Layout, dtype: np.dtype, target_kind: str | None) -> tuple[np.dtype, list]:
    """The structured dtype of one row, and where each feature field goes in ``X``.

    Features that are consecutive both in the file and in ``X`` share one subarray field.
    Returns (dtype, [(field, first position in X, width), ...]).
    """
    position = {column: k for k, column in enumerate(layout.features)}
    fields: list[tuple[Any, ...]] = []
    placement = []
    j = 0
    while j < layout.n_columns:
        if j in position:
            k = j
            while k + 1 in position and position[k + 1] == position[k] + 1:
                k += 1
            fields.append((f"f{j}", dtype, (k - j + 1,)))
            placement.append((f"f{j}", position[j], k - j + 1))
            j = k + 1
            continue
        if j == layout.target:
            fields.append(("target", np.float64 if target_kind == "number" else object))
        else:
            fields.append((f"skip{j}", object))
        j += 1
    return np.dtype(fields), placement


@dataclass
class _Table:
    X: np.ndarray  # (n, n_features)
    target: np.ndarray | None  # (n,) float64 or str, or None
    layout: _Layout


def _read(
    name: str,
    *,
    delimiter: str | None,
    header: bool | str,
    dtype: np.dtype,
    target: Any,
    labelled: bool,
    feature_names: Sequence[str] | None = None,
    task: str = "auto",
) -> _Table:
    """Parse ``name`` into features (and, if ``labelled``, its target column)."""
    if delimiter is None:
        delimiter = DELIMITERS.get(os.path.splitext(name)[1].lower(), ",")
    header = _check_header(header)
    try:
        with _open(name) as f:
            lines, first = _first_row(f, name, delimiter)
            second = _next_row(f, delimiter)
        layout = _layout(
            name, first, second, delimiter=delimiter, header=header, target=target,
            labelled=labelled, feature_names=feature_names,
        )  # fmt: skip
        skip = lines if layout.has_header else lines - 1  # lines before the data
        data_row = second if layout.has_header else first
        if data_row is None:
            raise DataError(f"{name}: no data rows after the header")
        kind = _target_kind(data_row, layout, task) if labelled else None
        try:
            return _parse(layout, dtype, kind, skip, task)
        except _LabelsAreText:
            # A target cell after the first row is not a number: the target holds class
            # labels after all; parse again with a text target.
            return _parse(layout, dtype, "label", skip, task)
    except UnicodeDecodeError:
        raise DataError(f"{name}: not a UTF-8 text file") from None
    except OSError as error:
        raise open_error(name, error) from None


def _next_row(f: TextIO, delimiter: str) -> list[str] | None:
    for line in f:
        if not _is_blank(line):
            return next(csv.reader([line], delimiter=delimiter))
    return None


def _target_kind(row: list[str], layout: _Layout, task: str) -> str:
    """"number" or "label", from the first data row's target cell."""
    if task == "regression" or layout.target is None or layout.target >= len(row):
        return "number"
    return "number" if _is_number(row[layout.target].strip()) else "label"


def _named(layout: _Layout, j: int | None) -> str:
    if j is None:
        return ""
    return layout.names[j] if layout.names else str(j)


def _parse(
    layout: _Layout, dtype: np.dtype, kind: str | None, skip: int, task: str
) -> _Table:
    row_dtype, placement = _fields(layout, dtype, kind)
    try:
        records = np.loadtxt(
            layout.name, dtype=row_dtype, delimiter=layout.delimiter, quotechar='"',
            comments=None, skiprows=skip, ndmin=1, encoding="utf-8-sig",
        )  # fmt: skip
    except UnicodeDecodeError:
        raise
    except ValueError as error:
        found = _NUMPY_ROW.search(str(error))
        first_row = max(0, int(found.group(1)) - 1) if found else 0
        _locate(layout, dtype, kind, task, first_row=first_row, fallback=str(error))
    n = len(records)
    if n == 0:
        raise DataError(f"{layout.name}: no data rows after the header")
    if len(placement) == 1:  # the usual case: the features are one view of the records
        X = records[placement[0][0]].reshape(n, -1)
    else:  # columns in another order, or the target among them: gather them
        X = np.empty((n, len(layout.features)), dtype=dtype)
        for field, start, width in placement:
            X[:, start : start + width] = records[field].reshape(n, width)
    for start in range(0, n, _CHECK_ROWS):
        if not np.isfinite(X[start : start + _CHECK_ROWS]).all():
            _locate(layout, dtype, kind, task, first_row=start, fallback="a value is not finite")
    target = None
    if kind == "number":
        target = np.array(records["target"], dtype=np.float64)
        if not np.isfinite(target).all():
            first = int(np.argmin(np.isfinite(target)))
            _locate(layout, dtype, kind, task, first_row=first, fallback="a target is not finite")
    elif kind == "label":
        target = np.array([str(v).strip() for v in records["target"]])
        if not target.all():
            first = int(np.argmin(target.astype(bool)))
            _locate(layout, dtype, kind, task, first_row=first, fallback="an empty target")
    return _Table(X, target, layout)


def _cell_problem(cell: str, dtype: np.dtype) -> str | None:
    """What is wrong with a feature cell, or None."""
    text = cell.strip()
    if not text:
        return "empty cell"
    if not _is_number(text):
        return f"{_short(text)} is not a number"
    value = float(text)
    if not math.isfinite(value):
        return f"{_short(text)} is not a finite number"
    if abs(value) > float(np.finfo(dtype).max):
        return f"{_short(text)} does not fit in {dtype.name}"
    return None


def _locate(
    layout: _Layout, dtype: np.dtype, kind: str | None, task: str, *, first_row: int,
    fallback: str,
) -> None:
    """Raise a DataError naming the first bad cell at or after data row ``first_row``.

    The slow second pass, run only after the fast parse failed: lines are counted (blank
    ones skipped, as the parser does) up to the failing chunk, whose lines are then read
    with the ``csv`` module and checked cell by cell. Raises :class:`_LabelsAreText` if the
    problem is a target cell that is not a number (the target holds class labels).
    """
    name = layout.name
    with _open(name) as f:
        numbered = enumerate(f, start=1)
        if layout.has_header:
            for _, line in numbered:
                if not _is_blank(line):
                    break
        row = 0
        for number, line in numbered:
            if _is_blank(line):
                continue
            row += 1
            if row <= first_row:
                continue
            cells = next(csv.reader([line], delimiter=layout.delimiter))
            if len(cells) != layout.n_columns:
                raise DataError(
                    f"{name}: line {number}: {len(cells)} fields; "
                    f"{layout.width_note()} {layout.n_columns}"
                )
            for j in layout.features:
                problem = _cell_problem(cells[j], dtype)
                if problem:
                    raise DataError(f"{name}: line {number}, {layout.column(j)}: {problem}")
            if kind is None or layout.target is None:
                continue
            cell = cells[layout.target].strip()
            if not cell:
                raise DataError(f"{name}: line {number}, {layout.column(layout.target)}: "
                                "empty target cell")
            if kind == "number":
                if not _is_number(cell) and task != "regression":
                    raise _LabelsAreText
                problem = _cell_problem(cell, np.dtype(np.float64))
                if problem:
                    raise DataError(
                        f"{name}: line {number}, {layout.column(layout.target)}: {problem}"
                    )
    raise DataError(f"{name}: {fallback}")


def load_csv(
    path: str | os.PathLike[str],
    *,
    target: str | int | None = None,
    task: str = "auto",
    seed: int = 0,
    dtype: Any = "float32",
    test_size: float = 0.25,
    header: bool | str = "auto",
    delimiter: str | None = None,
) -> Dataset:
    """Read a CSV (or TSV) file into a train/test split.

    Every column but the target is a numeric feature. Blank lines are skipped; the file
    must be UTF-8 (a byte-order mark is allowed); fields may be quoted with ``"``.

    Parameters
    ----------
    path : str or path-like
    target : str or int, optional
        The target column: its header name, or its position counted from 0 (negative
        from the end; a string of digits that is not a column name is a position).
        Default: the last column.
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
    header : "auto", True or False, default "auto"
        Whether the first non-blank line names the columns. "auto": it does unless every
        cell in it is a number.
    delimiter : str, optional
        Default: a tab for ``.tsv`` files, a comma otherwise.

    Returns
    -------
    Dataset
        ``name`` is the file's base name; ``feature_names`` the header's names of the
        feature columns (None without a header). Rows keep the file's order within the
        training and the test set (the split itself is random).

    Raises
    ------
    DataError
        Missing or unreadable file, empty file, missing target column, a row with the
        wrong number of fields, an empty, non-numeric or non-finite feature cell (the
        message gives line and column), too few rows to split.
    """
    name = os.fspath(path)
    dtype = float_dtype(dtype)
    test_size = check_split_fraction("test_size", test_size)
    check_task(task)
    table = _read(
        name, delimiter=delimiter, header=header, dtype=dtype, target=target, labelled=True,
        task=task,
    )  # fmt: skip
    layout = table.layout
    y, task_, class_names = encode_target(
        table.target, task, dtype, f"{name}: {layout.column(layout.target)}"  # type: ignore[arg-type]
    )
    names = None if layout.names is None else [layout.names[j] for j in layout.features]
    about = Described(
        os.path.basename(name), task_, class_names, (len(layout.features),), names, name
    )
    return split_in_place(about, table.X, y, test_size, seed)


def read_csv_features(
    path: str | os.PathLike[str],
    *,
    dtype: Any = "float32",
    target: str | int | None = None,
    feature_names: Sequence[str] | None = None,
    header: bool | str = "auto",
    delimiter: str | None = None,
) -> tuple[np.ndarray, list[str] | None]:
    """Read the features of a CSV (or TSV) file to predict on, choosing columns by name.

    - With ``feature_names`` and a header: exactly those columns, in that order, wherever
      they are in the file; any other column (the target of a labelled file, an id) is
      ignored, and a missing one is a DataError.
    - Otherwise: every column but ``target`` (a name or position; a name the file does not
      have is simply not there to leave out).

    Parameters as in :func:`load_csv`.

    Returns
    -------
    X : ndarray of shape (n, n_features)
    names : list of str or None
        The header names of ``X``'s columns; None for a file without a header.
    """
    name = os.fspath(path)
    table = _read(
        name, delimiter=delimiter, header=header, dtype=float_dtype(dtype), target=target,
        labelled=False, feature_names=feature_names,
    )  # fmt: skip
    layout = table.layout
    names = None if layout.names is None else [layout.names[j] for j in layout.features]
    return table.X, names
