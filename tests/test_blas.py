"""deltaprop.blas: the fused y ← a·x + y and y ← a·x + b·y equal their ufunc forms.

Both paths are checked: NumPy's own BLAS (forced for every size) and the ufunc fallback.
On NumPy's wheels (scipy-openblas) the BLAS routines must be found — otherwise the
optimizers would silently run their slower four-sweep form.
"""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop import blas

# float32 rounding of a·x + b·y: fused (one rounding) vs two roundings differ by ≤ 2 ulp
TOL = {"float32": dict(rtol=3e-7, atol=1e-7), "float64": dict(rtol=1e-15, atol=1e-16)}


def _wheel_blas() -> str:
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except (TypeError, KeyError):  # NumPy 1.x has no mode="dicts"
        return ""


@pytest.mark.skipif(_wheel_blas() != "scipy-openblas", reason="not NumPy's wheel BLAS")
def test_numpy_wheel_blas_is_found():
    assert blas.available()
    assert {("axpy", "f"), ("axpby", "f"), ("axpy", "d"), ("axpby", "d")} <= set(blas._FUNCTIONS)


@pytest.fixture(params=["blas", "ufuncs"])
def path(request, monkeypatch):
    if request.param == "blas":
        if not blas.available():
            pytest.skip("NumPy's BLAS exports no axpy/axpby")
        monkeypatch.setattr(blas, "MIN_SIZE", 0)
    else:
        monkeypatch.setattr(blas, "_FUNCTIONS", {})
    return request.param


@pytest.mark.usefixtures("path")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize(("a", "b"), [(1.0, 0.9), (-0.05, 1.0), (0.3, -2.0)])
def test_axpy_and_axpby_equal_their_ufunc_forms(dtype, order, a, b):
    rng = np.random.default_rng(0)
    x = np.asarray(rng.normal(size=(37, 23)), dtype=dtype, order=order)
    y0 = np.asarray(rng.normal(size=(37, 23)), dtype=dtype, order=order)
    scratch = np.empty_like(y0)

    y = y0.copy(order=order)
    blas.axpby(a, x, b, y, scratch)
    np.testing.assert_allclose(y, a * x.astype(np.float64) + b * y0, **TOL[dtype])
    assert y.flags[f"{order}_CONTIGUOUS"]  # written in place

    y = y0.copy(order=order)
    blas.axpy(a, x, y, scratch)
    np.testing.assert_allclose(y, a * x.astype(np.float64) + y0, **TOL[dtype])


@pytest.mark.parametrize("layout", ["mixed orders", "strided"])
def test_arrays_blas_cannot_take_go_through_ufuncs(monkeypatch, layout):
    """Flat BLAS vectors need x and y contiguous in one order; otherwise the ufunc form."""
    monkeypatch.setattr(blas, "MIN_SIZE", 0)
    rng = np.random.default_rng(1)
    if layout == "mixed orders":
        x = np.asfortranarray(rng.normal(size=(6, 5)))
        y0 = rng.normal(size=(6, 5))
    else:
        x = rng.normal(size=(6, 10))[:, ::2]
        y0 = rng.normal(size=(6, 5))
    y = y0.copy()
    blas.axpby(0.5, x, 0.9, y, np.empty_like(y))
    np.testing.assert_allclose(y, 0.5 * x + 0.9 * y0, rtol=1e-15)
    y = y0.copy()
    blas.axpy(-2.0, x, y, np.empty_like(y))
    np.testing.assert_allclose(y, y0 - 2.0 * x, rtol=1e-15)


# ----------------------------------------------------------------- gemm: C ← αAB + βC
@pytest.fixture(params=["blas", "numpy"])
def gemm_path(request, monkeypatch):
    if request.param == "blas":
        if ("gemm", "f") not in blas._FUNCTIONS:
            pytest.skip("NumPy's BLAS exports no gemm")
    else:
        monkeypatch.setattr(blas, "_FUNCTIONS", {})
    return request.param


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("orders", ["CCC", "CFC", "FCF", "FFF", "CCF"])
@pytest.mark.parametrize(("alpha", "beta"), [(1.0, 0.0), (0.25, 0.9), (-0.1, 1.0)])
def test_gemm_equals_alpha_a_b_plus_beta_c(gemm_path, dtype, orders, alpha, beta):
    rng = np.random.default_rng(0)
    a_order, b_order, c_order = orders
    A = np.asarray(rng.normal(size=(6, 9)), dtype=dtype, order=a_order)
    B = np.asarray(rng.normal(size=(9, 4)), dtype=dtype, order=b_order)
    C0 = np.asarray(rng.normal(size=(6, 4)), dtype=dtype, order=c_order)
    C = C0.copy(order=c_order)
    gemm = blas.Gemm(A, B, C)
    assert gemm.uses_blas == (gemm_path == "blas")
    for _ in range(2):  # bound once, called twice: C0 → α A B + β C0 → again
        gemm(alpha, beta)
    once = alpha * (A.astype(np.float64) @ B)
    want = once + beta * (once + beta * C0)
    np.testing.assert_allclose(C, want, **TOL[dtype])
    assert C.flags[f"{c_order}_CONTIGUOUS"]


def test_gemm_takes_the_views_the_training_step_uses(gemm_path):
    """Δᵀ (a transposed row view), A with a bias unit's extra column cut off, a 1 × m row
    of ones; C a column-major ∇W or a vector seen as one row; β = 0 ignores NaN in C."""
    rng = np.random.default_rng(1)
    delta = rng.normal(size=(8, 5))[:3]  # the first rows of a larger buffer
    A_full = rng.normal(size=(8, 7))[:3]
    nabla_W = np.full((5, 6), np.nan, order="F")
    blas.Gemm(delta.T, A_full[:, :6], nabla_W)(0.5, 0.0)
    np.testing.assert_allclose(nabla_W, 0.5 * delta.T @ A_full[:, :6], rtol=1e-14)
    ones, nabla_b = np.ones(8)[:3], np.zeros(5)
    blas.Gemm(ones[None, :], delta, nabla_b[None, :])(1.0, 0.0)
    np.testing.assert_allclose(nabla_b, delta.sum(axis=0), rtol=1e-14)
