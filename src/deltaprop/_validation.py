"""Shared argument checks and error-message helpers.

Every message names the argument, what was expected and what was given, on one line:
"`lr` must be > 0; got -0.1".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from deltaprop.errors import ConfigError, ConfigTypeError, DataError

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: object, what: str) -> T:
    """``registry[name]``, or a ValueError naming ``what`` and listing the valid names."""
    if isinstance(name, str) and name in registry:
        return registry[name]
    valid = ", ".join(sorted(registry))
    raise ConfigError(f"unknown {what} {name!r}; choose one of: {valid}")


def check_positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """``value`` as a float, or a ValueError if it is not a finite number > 0 (≥ 0)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigTypeError(f"`{name}` must be a number; got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"`{name}` must be {bound}; got {value!r}")
    return v


def check_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum``, or a clear TypeError/ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigTypeError(f"`{name}` must be an integer; got {value!r}")
    if value < minimum:
        raise ConfigError(f"`{name}` must be >= {minimum}; got {value!r}")
    return int(value)


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else a ValueError listing them."""
    if value not in choices:
        raise ConfigError(f"`{name}` must be one of {', '.join(choices)}; got {value!r}")
    return value  # type: ignore[return-value]


def check_fraction(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigTypeError(f"`{name}` must be a number; got {value!r}") from None
    if not 0 <= v < 1:
        raise ConfigError(f"`{name}` must be in [0, 1); got {value!r}")
    return v


def is_scipy_sparse(X: Any) -> bool:
    """True for any ``scipy.sparse`` matrix or array (recognised without importing SciPy)."""
    return hasattr(X, "tocsr") and hasattr(X, "nnz")


def numeric_array(name: str, value: Any) -> np.ndarray:
    """``value`` as an array of numbers (bool, int or float), or a clear TypeError.

    An ndarray (a memory map among them) comes back as it is: not converted, not copied.
    """
    if not isinstance(value, np.ndarray):
        try:
            value = np.asarray(value)
        except (TypeError, ValueError) as e:
            raise ConfigTypeError(f"`{name}` must be an array of numbers; {e}") from None
    if value.dtype.kind not in "biuf":
        raise ConfigTypeError(f"`{name}` must hold numbers; got dtype {value.dtype}")
    return value


def check_rows(name: str, X: Any, n_columns: int) -> np.ndarray:
    """``X`` as it is — not converted, not copied (a memory map stays one) — if it is a 2-D
    numeric array with ``n_columns`` columns and at least one row."""
    X = numeric_array(name, X)
    if X.ndim != 2 or X.shape[1] != n_columns:
        raise ConfigError(f"`{name}` must have shape (m, {n_columns}); got shape {X.shape}")
    if X.shape[0] == 0:
        raise ConfigError(f"`{name}` has no samples (shape {X.shape})")
    return X


def as_matrix(name: str, X: Any, n_columns: int, dtype: np.dtype) -> Any:
    """``X`` as a finite 2-D array of ``dtype`` with ``n_columns`` columns.

    A 1-D ``X`` of length ``n_columns`` is taken as one sample. A ``scipy.sparse`` matrix
    comes back as CSR (see :func:`as_csr`), never dense.
    """
    if is_scipy_sparse(X):
        return as_csr(name, X, n_columns, dtype)
    X = numeric_array(name, X)
    if X.ndim == 1 and X.shape[0] == n_columns:
        X = X[None, :]
    given = check_rows(name, X, n_columns)
    with np.errstate(over="ignore"):  # a float64 beyond float32's range: reported below
        X = np.ascontiguousarray(given, dtype=dtype)
    # NaN and ±inf make their row's sum non-finite. The row sums X·1 are one BLAS pass
    # (both cores) and no (m, n) boolean array (47 MB for Fashion-MNIST): 3× faster than
    # X.sum() (benchmarks/bench_kernels.py). Only if a sum is not finite (huge finite
    # values could overflow it too) is every entry checked, so the answer is exact.
    with np.errstate(over="ignore", invalid="ignore"):
        row_sums = X @ np.ones(X.shape[1], dtype=X.dtype)
    if not np.isfinite(row_sums).all() and not np.isfinite(X).all():
        if given.dtype.kind == "f" and np.isfinite(given).all():  # the cast overflowed
            raise ConfigError(
                f"`{name}` has values beyond {np.dtype(dtype).name}'s range "
                f"(|x| up to {float(np.abs(given).max()):.3g}, the largest "
                f"{np.dtype(dtype).name} is {float(np.finfo(dtype).max):.3g}); scale the "
                "inputs or use float64"
            )
        raise ConfigError(f"`{name}` contains NaN or inf")
    return X


def as_csr(name: str, X: Any, n_columns: int, dtype: np.dtype) -> Any:
    """A ``scipy.sparse`` ``X`` as a CSR matrix of ``dtype`` with finite stored values.

    X itself when it already is one (nothing copied); the stored values alone are checked,
    so the dense matrix is never formed.
    """
    if X.ndim != 2 or X.shape[1] != n_columns:
        raise ConfigError(f"`{name}` must have shape (m, {n_columns}); got shape {X.shape}")
    if X.shape[0] == 0:
        raise ConfigError(f"`{name}` has no samples (shape {X.shape})")
    if X.dtype.kind not in "biuf":
        raise ConfigTypeError(f"`{name}` must hold numbers; got dtype {X.dtype}")
    X = X.tocsr().astype(dtype, copy=False)
    if not np.isfinite(X.data).all():
        raise ConfigError(f"`{name}` contains NaN or inf")
    return X


def open_error(name: str, error: OSError) -> DataError:
    """A one-line DataError for a file that could not be opened."""
    if isinstance(error, FileNotFoundError):
        return DataError(f"{name}: no such file")
    if isinstance(error, IsADirectoryError):
        return DataError(f"{name}: is a directory, not a file")
    if isinstance(error, PermissionError):
        return DataError(f"{name}: permission denied")
    return DataError(f"{name}: cannot read ({error.strerror or error})")
