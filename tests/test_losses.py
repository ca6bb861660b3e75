"""Tests for losses.py: C and ∂C/∂a against PyTorch, the δ^L = a − y shortcut against the
general path, stability where probabilities underflow, dtypes and the registry.

Tolerances (float64): a loss is a few operations per entry plus a sum over ≤ 5 outputs, so
it matches torch to a few ε_mach; 1e-12 relative leaves margin and catches any wrong
convention (the ½ of mse, a missing sign, a sum instead of a mean is off by ≥ 20 %).
"""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop import activations, losses

torch = pytest.importorskip("torch")
F = torch.nn.functional


def test_registry_and_pairings() -> None:
    assert set(losses.LOSSES) == {"mse", "cross_entropy", "binary_cross_entropy", "poisson"}
    for name, loss in losses.LOSSES.items():
        assert loss.name == name and losses.get(name) is loss
    assert losses.get("cross_entropy").outputs == ("softmax",)
    assert losses.get("binary_cross_entropy").outputs == ("sigmoid",)
    assert losses.get("poisson").outputs == ("exp",)
    assert losses.get("mse").outputs is None  # any output activation
    canonical = {name: loss.canonical_output for name, loss in losses.LOSSES.items()}
    assert canonical == {
        "mse": "identity",
        "cross_entropy": "softmax",
        "binary_cross_entropy": "sigmoid",
        "poisson": "exp",
    }


def test_unknown_loss_lists_the_valid_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown loss 'hinge'; choose one of: binary_cross_entropy, cross_entropy, mse, "
        r"poisson$",
    ):
        losses.get("hinge")


def batch(rng, name: str, m: int = 6, n: int = 4):
    """(Z, A, Y) for ``name`` with its canonical output: soft targets for the classifiers."""
    Z = rng.normal(scale=3, size=(m, n))
    output = activations.get(losses.get(name).canonical_output)
    if name == "cross_entropy":
        Y = rng.random((m, n))
        Y /= Y.sum(axis=1, keepdims=True)
    elif name == "binary_cross_entropy":
        Y = rng.random((m, n))
    elif name == "poisson":  # counts, zeros among them
        Y = rng.poisson(2.0, size=(m, n)).astype(np.float64)
    else:
        Y = rng.normal(size=(m, n))
    return Z, output(Z), Y


def torch_per_sample(name: str, Z, A, Y):
    """The per-sample losses in torch's own terms (autograd leaf: A)."""
    if name == "cross_entropy":  # torch's CE takes logits and (soft) class probabilities
        return F.cross_entropy(Z, Y, reduction="none")
    if name == "binary_cross_entropy":
        return F.binary_cross_entropy(A, Y, reduction="none").sum(dim=1)
    if name == "poisson":  # half the deviance: y log(y/a) − y + a, written as torch.xlogy
        return (torch.xlogy(Y, Y) - torch.xlogy(Y, A) - Y + A).sum(dim=1)
    return 0.5 * F.mse_loss(A, Y, reduction="none").sum(dim=1)  # ½ ‖a − y‖² per sample


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_loss_and_gradient_match_torch(rng, name) -> None:
    loss = losses.get(name)
    Z, A, Y = batch(rng, name)
    a = torch.tensor(A, requires_grad=True)
    want = torch_per_sample(name, torch.tensor(Z), a, torch.tensor(Y))
    np.testing.assert_allclose(loss.per_sample(Z, A, Y), want.detach().numpy(), rtol=1e-12)
    if name != "cross_entropy":
        want.sum().backward()
        grad = a.grad.numpy()
    else:  # torch's CE reads logits; ∂C/∂a of −Σ y log a by autograd on the a leaf
        (-(torch.tensor(Y) * torch.log(a)).sum()).backward()
        grad = a.grad.numpy()
    out = np.empty_like(A)
    assert loss.gradient(A, Y, out) is out
    np.testing.assert_allclose(out, grad, rtol=1e-12)


def test_poisson_is_half_the_deviance_and_zero_at_the_truth() -> None:
    """C = y log(y/a) − y + a: 0 where a = y (y = 0 included: 0 log 0 = 0); by hand at
    a = e, y = 2: 2 log(2/e) − 2 + e = 2 log 2 − 2 − 2 + e."""
    loss = losses.get("poisson")
    Y = np.array([[0.0, 1.0, 3.0]])
    Z = np.log(np.array([[1e-300, 1.0, 3.0]]))  # a = y (a tiny rate for y = 0)
    np.testing.assert_allclose(loss.per_sample(Z, np.exp(Z), Y), [1e-300], atol=1e-15)
    C = loss.per_sample(np.array([[1.0]]), np.array([[np.e]]), np.array([[2.0]]))
    np.testing.assert_allclose(C, [2 * np.log(2) - 4 + np.e], rtol=1e-13)  # 4 roundings of ~3


def test_batch_loss_scalar_and_per_row_factors() -> None:
    C = np.array([1.0, 2.0, 4.0])
    assert losses.batch_loss(C, 0.5) == 3.5  # r Σ C
    r = np.array([[0.5], [0.0], [0.25]])
    assert losses.batch_loss(C, r) == 1.5  # Σ r_x C_x


def test_mse_has_the_half() -> None:
    """C = ½ ‖a − y‖² per sample (seed 000's convention, so that δ^L = (a − y) σ'(z))."""
    A, Y = np.array([[1.0, 2.0]]), np.zeros((1, 2))
    np.testing.assert_array_equal(losses.get("mse").per_sample(A, A, Y), [2.5])


@pytest.mark.parametrize(
    ("name", "output"),
    [("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid"), ("mse", "identity"),
     ("poisson", "exp")],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_shortcut_equals_general_path(rng, name, output, dtype) -> None:
    """δ^L = a − y equals ∂C/∂a ⊙ σ'(z) (softmax: its Jacobian product) for each canonical
    pair. The general path divides by a or a(1 − a) (poisson: 1 − y/a times a) and
    multiplies it back: rounding only,
    so 1e-12 relative in float64 and 1e-5 in float32 (ε_mach 1.2e-7, a few dozen ulps).
    Logits of scale 3 keep a away from the clipping at ε_mach."""
    Z, _, Y = batch(rng, name)
    Z, Y = Z.astype(dtype), Y.astype(dtype)
    sigma, loss = activations.get(output), losses.get(name)
    A = sigma(Z)
    general = sigma.vjp(Z, A, loss.gradient(A, Y, np.empty_like(A)), np.empty_like(A))
    shortcut = losses.delta_shortcut(A, Y, np.empty_like(A))
    assert shortcut.dtype == general.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(general, shortcut, rtol=tol, atol=tol * np.abs(shortcut).max())
    np.testing.assert_array_equal(shortcut, A - Y)


def test_cross_entropy_finite_when_a_probability_underflows() -> None:
    """softmax([0, −1000]) = [1, 0] exactly; C for the second class is still its true
    value 1000 (computed from z by log-sum-exp), not −log 0 = inf."""
    Z = np.array([[0.0, -1000.0], [1000.0, -1000.0]])
    A = activations.get("softmax")(Z)
    assert A[0, 1] == 0.0 and A[1, 1] == 0.0
    Y = np.array([[0.0, 1.0], [0.0, 1.0]])
    C = losses.get("cross_entropy").per_sample(Z, A, Y)
    np.testing.assert_allclose(C, [1000.0, 2000.0], rtol=1e-15)
    grad = losses.get("cross_entropy").gradient(A, Y, np.empty_like(A))
    assert np.isfinite(grad).all()  # a clipped to ε_mach: −y / ε, large but finite


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_finite_for_saturated_sigmoid(dtype) -> None:
    """sigmoid(±1000) is exactly 0 or 1; C = max(z, 0) − y z + log(1 + e^{−|z|}) stays exact."""
    Z = np.array([[-1000.0, 1000.0, -1000.0, 1000.0]], dtype=dtype)
    Y = np.array([[1.0, 0.0, 0.0, 1.0]], dtype=dtype)
    A = activations.get("sigmoid")(Z)
    loss = losses.get("binary_cross_entropy")
    C = loss.per_sample(Z, A, Y)
    assert C.dtype == dtype
    np.testing.assert_allclose(C, [2000.0], rtol=1e-6)  # 1000 + 1000 + 0 + 0
    assert np.isfinite(loss.gradient(A, Y, np.empty_like(A))).all()


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_float32_stays_float32(rng, name) -> None:
    Z, A, Y = (x.astype(np.float32) for x in batch(rng, name))
    loss = losses.get(name)
    assert loss.per_sample(Z, A, Y).dtype == np.float32
    assert loss.gradient(A, Y, np.empty_like(A)).dtype == np.float32


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_softmax_cross_entropy_equals_torch(rng, dtype) -> None:
    """softmax_cross_entropy = torch's softmax and summed cross-entropy, huge logits included.

    Tolerance: float64 1e-12 relative as above; float32 1e-5 (a few ε_32 ≈ 1.2e-7 per
    entry, on losses of order 1-1000).
    """
    Z = rng.normal(scale=3.0, size=(9, 5)).astype(dtype)
    Z[0] = [900.0, -900.0, 0.0, 1.0, 2.0]  # a probability underflows to 0: C stays finite
    labels = rng.integers(0, 5, 9)
    labels[0] = 1
    Y = np.eye(5, dtype=dtype)[labels]
    Y[3] = [0.5, 0.25, 0.25, 0.0, 0.0]  # a target distribution, not one-hot
    A = np.empty_like(Z)
    lse, row = np.empty(9, dtype), np.empty(9, dtype)
    C = losses.softmax_cross_entropy(Z, Y, A, lse, row)
    assert C is lse  # each sample's C, in the scratch vector
    total = float(C.sum())
    z = torch.tensor(Z, dtype=torch.float64)
    want = float(F.cross_entropy(z, torch.tensor(Y, dtype=torch.float64), reduction="sum"))
    tol = 1e-12 if dtype == "float64" else 1e-5
    assert total == pytest.approx(want, rel=tol)
    np.testing.assert_allclose(A, torch.softmax(z, dim=1).numpy(), rtol=tol, atol=tol * 1e-3)
    assert A.dtype == np.dtype(dtype)
