"""y ← a·x + y and y ← a·x + b·y in one sweep each: level-1 BLAS from NumPy's own library.

NumPy has no fused scaled add: y += a·x is two sweeps through a scratch array (a·x, then
the add). SGD with momentum in ufuncs is four sweeps over each parameter-sized array
(b *= μ; b += g; s = η b; θ −= s); with ``axpby`` and ``axpy`` it is two, b ← 1·g + μ·b and
θ ← −η·b + θ — the two fused passes torch's ``add_(…, alpha=…)`` makes.

The functions are looked up in the BLAS that NumPy's extension module was linked with
(OpenBLAS as NumPy's wheels ship it, ``scipy_cblas_saxpby64_`` and kin), so no second BLAS
library with its own thread pool is started, and ``threadpoolctl`` limits apply to both.
Where that BLAS is not found, where the arrays are small (a ctypes call costs a few µs, more
than the sweep it saves below :data:`MIN_SIZE` entries), or where x and y are not contiguous
in the same order, the same arithmetic runs as NumPy ufuncs. Results agree with the ufunc
form to rounding (BLAS may fuse a·x + b·y into one rounding).
"""

from __future__ import annotations

import ctypes
import importlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.floating]

#: Arrays with fewer entries go through NumPy ufuncs (measured crossover, bench_kernels.py).
MIN_SIZE = 16384

# (prefix, suffix, integer type) of the CBLAS names a BLAS may export: NumPy ≥ 2 wheels'
# scipy-openblas (64-bit integers, "64_" suffix), NumPy 1.x wheels' openblas64_, and the
# 32-bit-integer scipy-openblas32.
_NAMINGS = (
    ("scipy_cblas_", "64_", ctypes.c_int64),
    ("cblas_", "64_", ctypes.c_int64),
    ("scipy_cblas_", "", ctypes.c_int),
)
_SCALARS = {"f": ("s", ctypes.c_float), "d": ("d", ctypes.c_double)}


def _numpy_blas() -> dict[tuple[str, str], Any]:
    """{(routine, dtype char): ctypes function} from the BLAS NumPy loaded; {} if none fits."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            path = importlib.import_module(module).__file__
            lib = ctypes.CDLL(path)  # already loaded: its symbols and its BLAS's
            break
        except (ImportError, OSError, TypeError):
            continue
    else:
        return {}
    for prefix, suffix, int_t in _NAMINGS:
        found: dict[tuple[str, str], Any] = {}
        try:
            for char, (letter, real) in _SCALARS.items():
                axpy = getattr(lib, f"{prefix}{letter}axpy{suffix}")
                axpy.argtypes = [int_t, real, ctypes.c_void_p, int_t, ctypes.c_void_p, int_t]
                axpby = getattr(lib, f"{prefix}{letter}axpby{suffix}")
                axpby.argtypes = [int_t, real, ctypes.c_void_p, int_t, real, ctypes.c_void_p,
                                  int_t]
                axpy.restype = axpby.restype = None
                found["axpy", char] = axpy
                found["axpby", char] = axpby
        except AttributeError:
            continue
        return found
    return {}


_FUNCTIONS = _numpy_blas()


def available() -> bool:
    """True when the fused BLAS routines were found (else everything runs as ufuncs)."""
    return bool(_FUNCTIONS)


def _blas_pair(x: Array, y: Array) -> bool:
    """x and y can go to BLAS as flat vectors: same dtype and shape, one memory order."""
    return (
        x.size >= MIN_SIZE
        and x.dtype == y.dtype
        and x.shape == y.shape
        and y.flags.writeable
        and (
            (x.flags.c_contiguous and y.flags.c_contiguous)
            or (x.flags.f_contiguous and y.flags.f_contiguous)
        )
    )


def axpy(a: float, x: Array, y: Array, scratch: Array) -> None:
    """y ← a·x + y in place; ``scratch`` (shaped like y) serves the ufunc form."""
    f = _FUNCTIONS.get(("axpy", y.dtype.char))
    if f is not None and _blas_pair(x, y):
        f(y.size, a, x.ctypes.data, 1, y.ctypes.data, 1)
        return
    np.multiply(x, a, out=scratch)
    y += scratch


def axpby(a: float, x: Array, b: float, y: Array, scratch: Array) -> None:
    """y ← a·x + b·y in place; ``scratch`` (shaped like y) serves the ufunc form."""
    f = _FUNCTIONS.get(("axpby", y.dtype.char))
    if f is not None and _blas_pair(x, y):
        f(y.size, a, x.ctypes.data, 1, b, y.ctypes.data, 1)
        return
    y *= b
    if a == 1:
        y += x
    else:
        np.multiply(x, a, out=scratch)
        y += scratch
