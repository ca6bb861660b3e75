"""Tests for activations.py: σ and σ' against PyTorch and finite differences, softmax's
Jacobian product, numerical stability, dtypes and the registry.

Tolerances (float64): σ and σ' are a handful of floating-point operations, accurate to a
few ε_mach ≈ 2e-16 — relative to the value where it is not tiny, absolute where it is:
sigmoid = ½(1 + tanh(z/2)) and σ' = 1 − a² or a(1 − a) cancel near 0 (σ(−15) ≈ 3e-7 then
has a relative error ≈ 1e-9, its absolute error stays ≈ 1e-16). So: rtol = 1e-12 with
atol = 1e-14 (values here are ≤ 15, derivatives ≤ 1.13). Any wrong constant — slope 0.01,
α = 1, β = 1, √(2/π), 0.044715 — moves values by far more.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import torch_activations
from deltaprop import activations

torch = pytest.importorskip("torch")
F = torch.nn.functional

ELEMENTWISE = [name for name, a in activations.ACTIVATIONS.items() if a.elementwise]

# PyTorch's functions with the parameters DESIGN.md fixes (PyTorch's defaults).
TORCH = {k: f for k, f in torch_activations().items() if k != "softmax"}

# z from −15 to 15 and exactly 0 (torch's softplus returns z itself above its threshold 20,
# an approximation; below it both compute log(1 + e^z) to full precision).
Z_GRID = np.concatenate([np.linspace(-15, 15, 301), [0.0, 1e-9, -1e-9]]).reshape(-1, 4)


def test_registry_holds_the_design_activations() -> None:
    assert set(activations.ACTIVATIONS) == {*TORCH, "softmax"}
    assert [a for a in activations.ACTIVATIONS.values() if not a.elementwise] == [
        activations.get("softmax")
    ]
    # output only: softmax (no elementwise σ') and exp (stacked, e^{e^z} overflows)
    assert {n for n, a in activations.ACTIVATIONS.items() if a.output_only} == {"softmax", "exp"}
    for name, a in activations.ACTIVATIONS.items():
        assert a.name == name and activations.get(name) is a


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError,
                       match=r"unknown activation 'swish'; choose one of: elu, exp, gelu"):
        activations.get("swish")
    with pytest.raises(ValueError, match=r"unknown activation None"):
        activations.get(None)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_sigma_matches_torch(name) -> None:
    sigma = activations.get(name)
    out = np.empty_like(Z_GRID)
    assert sigma.f(Z_GRID, out) is out  # writes into the caller's buffer
    want = TORCH[name](torch.tensor(Z_GRID)).numpy()
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_sigma_prime_matches_torch_autograd(name) -> None:
    """σ'(z) equals autograd's dσ/dz, at z = 0 too (relu' = 0, leaky_relu' = 0.01, elu' = 1)."""
    sigma = activations.get(name)
    z = torch.tensor(Z_GRID, requires_grad=True)
    TORCH[name](z).sum().backward()
    A = sigma(Z_GRID)
    out = np.empty_like(Z_GRID)
    assert sigma.prime(Z_GRID, A, out) is out
    np.testing.assert_allclose(out, z.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_sigma_prime_matches_central_differences(name) -> None:
    """An oracle that does not need torch: (σ(z + h) − σ(z − h)) / 2h, h = 1e-6, away from
    the kink at 0. Its error is h² |σ'''| / 6 + ε_mach |σ| / h ≈ 1e-10 for |z| ≤ 15, |σ| ≤ 15;
    1e-8 absolute has margin."""
    sigma = activations.get(name)
    Z = Z_GRID[np.abs(Z_GRID) > 1e-3].reshape(-1, 1)
    h = 1e-6
    numerical = (sigma(Z + h) - sigma(Z - h)) / (2 * h)
    np.testing.assert_allclose(sigma.prime(Z, sigma(Z), np.empty_like(Z)), numerical, atol=1e-8)


def test_parameters_are_pytorch_defaults() -> None:
    z = np.array([[-2.0, 2.0]])
    np.testing.assert_allclose(activations.get("leaky_relu")(z), [[-0.02, 2.0]], rtol=1e-15)
    np.testing.assert_allclose(activations.get("elu")(z), [[math.expm1(-2.0), 2.0]], rtol=1e-15)
    np.testing.assert_allclose(
        activations.get("softplus")(z), [[math.log1p(math.exp(-2)), 2 + math.log1p(math.exp(-2))]]
    )
    u = math.sqrt(2 / math.pi) * (2 + 0.044715 * 8)
    np.testing.assert_allclose(activations.get("gelu")(z)[0, 1], 1 + math.tanh(u), rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_never_overflows(dtype) -> None:
    """z = ±1000 (and the dtype's extremes): a finite σ in [0, 1], σ' finite, no warning
    (pytest turns any RuntimeWarning, e.g. overflow in exp, into an error)."""
    big = np.finfo(dtype).max
    Z = np.array([[-1000.0, 1000.0, -big, big, 0.0]], dtype=dtype)
    sigma = activations.get("sigmoid")
    A = sigma(Z)
    assert A.dtype == dtype
    np.testing.assert_array_equal(A, np.array([[0.0, 1.0, 0.0, 1.0, 0.5]], dtype=dtype))
    prime = sigma.prime(Z, A, np.empty_like(Z))
    np.testing.assert_array_equal(prime, np.array([[0, 0, 0, 0, 0.25]], dtype=dtype))


# exp is e^z by definition: it overflows above z ≈ 88.7 (float32) / 709.8 (float64), which
# training reports as a diverged loss; the rest never overflow.
@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if n != "exp"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_inputs_stay_finite(name, dtype) -> None:
    """|z| = 1000 gives finite σ and σ' with no warning (elu and softplus exponentiate only
    −|z|; gelu cubes z, which fits float32 up to |z| ≈ 1e12)."""
    Z = np.array([[-1000.0, 1000.0]], dtype=dtype)
    sigma = activations.get(name)
    A = sigma(Z)
    assert A.dtype == dtype and np.isfinite(A).all()
    prime = sigma.prime(Z, A, np.empty_like(Z))
    assert prime.dtype == dtype and np.isfinite(prime).all()


@pytest.mark.parametrize("name", [*ELEMENTWISE, "softmax"])
def test_float32_stays_float32(name, rng) -> None:
    Z = rng.normal(size=(4, 3)).astype(np.float32)
    sigma = activations.get(name)
    A = sigma(Z)
    assert A.dtype == np.float32
    G = rng.normal(size=(4, 3)).astype(np.float32)
    assert sigma.vjp(Z, A, G, np.empty_like(Z)).dtype == np.float32


# ---------------------------------------------------------------- softmax
def test_softmax_matches_torch_and_sums_to_one(rng) -> None:
    Z = rng.normal(scale=5, size=(6, 4))
    A = activations.get("softmax")(Z)
    np.testing.assert_allclose(A, torch.softmax(torch.tensor(Z), dim=1).numpy(), rtol=1e-13)
    np.testing.assert_allclose(A.sum(axis=1), 1.0, rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_stable_for_huge_logits(dtype) -> None:
    """The row max is subtracted first: e^1000 never forms. Rows shifted by a constant give
    the same probabilities."""
    Z = np.array([[1000.0, 0.0, -1000.0], [1e4, 1e4, 1e4], [-1e4, -1e4 + 1, -1e4]], dtype=dtype)
    A = activations.get("softmax")(Z)
    assert A.dtype == dtype and np.isfinite(A).all()
    np.testing.assert_array_equal(A[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(A[1], [1 / 3] * 3, rtol=1e-6)
    e = math.e
    np.testing.assert_allclose(A[2], [1 / (2 + e), e / (2 + e), 1 / (2 + e)], rtol=1e-6)


def test_softmax_vjp_is_the_jacobian_product(rng) -> None:
    """vjp(Z, A, G) = J G with J_jk = ∂a_j/∂z_k = a_j (1[j = k] − a_k), written out per row."""
    softmax = activations.get("softmax")
    Z, G = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    A = softmax(Z)
    want = np.stack([(np.diag(a) - np.outer(a, a)) @ g for a, g in zip(A, G, strict=True)])
    np.testing.assert_allclose(softmax.vjp(Z, A, G, np.empty_like(Z)), want, rtol=1e-12)
    z = torch.tensor(Z, requires_grad=True)
    (torch.softmax(z, dim=1) * torch.tensor(G)).sum().backward()
    np.testing.assert_allclose(softmax.vjp(Z, A, G, np.empty_like(Z)), z.grad.numpy(), rtol=1e-12)


def test_softmax_has_no_elementwise_derivative() -> None:
    Z = np.zeros((1, 2))
    with pytest.raises(ValueError, match="softmax has no elementwise derivative; use vjp"):
        activations.get("softmax").prime(Z, Z, np.empty_like(Z))


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_vjp_is_g_times_prime(name, rng) -> None:
    """Eq. (9) for an elementwise σ: vjp(Z, A, G) = G ⊙ σ'(Z)."""
    sigma = activations.get(name)
    Z, G = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    A = sigma(Z)
    want = G * sigma.prime(Z, A, np.empty_like(Z))
    np.testing.assert_array_equal(sigma.vjp(Z, A, G, np.empty_like(Z)), want)
