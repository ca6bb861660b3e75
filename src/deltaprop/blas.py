"""y ← a·x + y, y ← a·x + b·y and C ← α A B + β C: BLAS from NumPy's own library.

NumPy has no fused scaled add: y += a·x is two sweeps through a scratch array (a·x, then
the add). SGD with momentum in ufuncs is four sweeps over each parameter-sized array
(b *= μ; b += g; s = η b; θ −= s); with ``axpby`` and ``axpy`` it is two, b ← 1·g + μ·b and
θ ← −η·b + θ — the two fused passes torch's ``add_(…, alpha=…)`` makes.

``gemm`` is the matrix product NumPy's ``matmul`` calls, with the two scalars ``matmul``
does not expose: C ← α A B + β C. With β = μ a momentum buffer is updated by the product
itself (b ← μ b + r Δᵀ A, ``fused``), with β = 1 a parameter (θ ← θ − η r Δᵀ A): no sweep
over a parameter-sized array beyond the product's own. :class:`Gemm` binds the operands
once, so a call in the training loop costs one ctypes call.

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
# CBLAS's enums (cblas.h)
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


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
                gemm = getattr(lib, f"{prefix}{letter}gemm{suffix}")
                # arguments are passed as ready ctypes objects (Gemm binds them once)
                axpy.restype = axpby.restype = gemm.restype = None
                found["axpy", char] = axpy
                found["axpby", char] = axpby
                found["gemm", char] = (gemm, int_t, real)
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


def _operand(a: Array) -> tuple[int, int] | None:
    """(CBLAS transpose flag, leading dimension) of a 2-D array as a row-major operand, or
    None if neither of its axes is unit-stride (BLAS cannot read it without a copy).

    The stride of an axis of length 1 is never used, so it does not count (``x[None, :]``).
    """
    item = a.dtype.itemsize
    n_rows, n_cols = a.shape
    rows = a.strides[0] if n_rows > 1 else n_cols * item
    cols = a.strides[1] if n_cols > 1 else item
    if cols == item and rows % item == 0 and rows >= max(1, n_cols) * item:
        return _NO_TRANS, rows // item  # row-major (possibly a view of wider rows)
    rows = a.strides[0] if n_rows > 1 else item
    cols = a.strides[1] if n_cols > 1 else n_rows * item
    if rows == item and cols % item == 0 and cols >= max(1, n_rows) * item:
        return _TRANS, cols // item  # column-major: the transpose of a row-major array
    return None


class Gemm:
    """C ← α A B + β C for fixed arrays A (k columns), B, C: one BLAS ``gemm`` call.

    The pointers, sizes and layouts are bound once; each call passes only α and β.
    ``C`` may be row- or column-major (a column-major C is written as the row-major
    Cᵀ = Bᵀ Aᵀ), ``A`` and ``B`` either too, as long as one axis of each is unit-stride.
    Where the BLAS routine is not found or an operand does not fit, the same arithmetic
    runs as ``np.matmul`` into ``scratch`` and ufuncs (two more sweeps over C).

    Parameters
    ----------
    A : ndarray of shape (p, k)
    B : ndarray of shape (k, q)
    C : ndarray of shape (p, q)
        Written in place; not aliased with A or B.
    scratch : ndarray shaped like C, optional
        Needed by the NumPy fallback only (allocated on first use if not given).

    Notes
    -----
    Equation: C ← α A B + β C. With β = 0, C's old entries are not read (NaN in C does
    not leak into the result), as BLAS documents.
    """

    def __init__(self, A: Array, B: Array, C: Array, scratch: Array | None = None) -> None:
        self.A, self.B, self.C, self.scratch = A, B, C, scratch
        found = _FUNCTIONS.get(("gemm", C.dtype.char))
        self._call: Any = None
        if C.flags.c_contiguous or not C.flags.f_contiguous:
            a, b, c = A, B, C
        else:  # column-major C: compute its row-major transpose Cᵀ = Bᵀ Aᵀ
            a, b, c = B.T, A.T, C.T
        ops = [_operand(x) for x in (a, b, c)]
        if (found is None or A.dtype != C.dtype or B.dtype != C.dtype or None in ops
                or ops[2][0] != _NO_TRANS or 0 in C.shape or A.shape[1] == 0):
            return
        f, int_t, self._real = found
        (ta, lda), (tb, ldb), (_, ldc) = ops
        p, k = a.shape
        q = b.shape[1]
        c_int = ctypes.c_int
        self._call = f
        self._head = (c_int(_ROW_MAJOR), c_int(ta), c_int(tb), int_t(p), int_t(q), int_t(k))
        self._a = (ctypes.c_void_p(a.ctypes.data), int_t(lda), ctypes.c_void_p(b.ctypes.data),
                   int_t(ldb))
        self._c = (ctypes.c_void_p(c.ctypes.data), int_t(ldc))

    @property
    def uses_blas(self) -> bool:
        return self._call is not None

    def __call__(self, alpha: float, beta: float) -> None:
        if self._call is not None:
            real = self._real
            self._call(*self._head, real(alpha), *self._a, real(beta), *self._c)
            return
        if self.scratch is None:
            self.scratch = np.empty_like(self.C)
        product = self.scratch
        if product.flags.c_contiguous:
            np.matmul(self.A, self.B, out=product)
        else:  # NumPy's matmul into a column-major out runs its own slow loop
            np.matmul(self.B.T, self.A.T, out=product.T)
        if beta == 0:
            np.multiply(product, alpha, out=self.C)
        else:
            self.C *= beta
            product *= alpha
            self.C += product
