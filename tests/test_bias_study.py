"""The bias study: learned ≡ unit exactly; on circles an offset is needed, so none and
frozen-at-0 do not reach learned; the layer-sum hook is seed 002's mistaken rule.

Circles need a bias: without one, a ReLU network with no biases is positively homogeneous,
f(c x) = c f(x) for c > 0, so its decision depends only on the direction of x — and the two
circles differ only in radius. That is why the assertion below can be strict and fast: with
bias ``none`` (and ``frozen`` at 0, which is the same network) validation accuracy cannot
beat what direction alone gives, while ``learned`` reaches ≥ 0.9 in 15 epochs for each seed
(measured: 1.0). The margin 0.2 between them is far above seed-to-seed noise (std ≈ 0.05).
"""

from __future__ import annotations

import numpy as np
import pytest

from deltaprop import bias_study, gradcheck
from deltaprop.network import Network


@pytest.fixture(scope="module")
def circles() -> bias_study.Study:
    return bias_study.run("circles", seeds=2, epochs=15,
                          modes=("learned", "unit", "frozen-0", "none", "layer-sum"))


def test_learned_and_unit_identical(circles) -> None:
    learned, unit = circles.row("learned"), circles.row("unit")
    # The bias unit's column is updated by the same formula as b; the only difference is the
    # summation order of eq. (14)'s row sum — inside (Δ)ᵀ[A, 1] for the unit, 1ᵀΔ for b — a
    # few float64 ulps a step, 1e-15 after these 15 epochs. 1e-12 relative leaves room for
    # that and catches any real difference (a wrong bias rule changes the loss at 1e-2).
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(getattr(unit, key).values, getattr(learned, key).values,
                                   rtol=1e-12, err_msg=key)
    np.testing.assert_allclose(unit.curves.loss, learned.curves.loss, rtol=1e-12)
    np.testing.assert_allclose(unit.curves.val_accuracy, learned.curves.val_accuracy, rtol=1e-12)
    assert circles.unit_vs_learned <= 1e-12
    # What a reader of the table sees: the printed figures are the same.
    assert f"{learned.val_loss.mean:.4f}" == f"{unit.val_loss.mean:.4f}"


def test_no_offset_is_not_better_on_circles(circles) -> None:
    learned = circles.row("learned").val_accuracy
    assert min(learned.values) >= 0.9
    for mode in ("none", "frozen-0"):
        other = circles.row(mode).val_accuracy
        assert other.mean <= learned.mean - 0.2, mode
        assert circles.row(mode).train_loss.mean > circles.row("learned").train_loss.mean


def test_table_fields(circles) -> None:
    s = circles.settings
    assert s.sizes == (2, 8, 2) and s.seeds == 2 and s.epochs == 15
    for r in circles.rows:
        assert r.curves.loss.shape == (2, 15) and r.curves.val_accuracy.shape == (2, 15)
        assert r.epochs_to_target.seeds == 2
    mem = circles.memory
    assert (mem.bias_count, mem.weight_count) == (8 + 2, 2 * 8 + 8 * 2)
    assert mem.bias_bytes == 4 * 10  # float32
    assert circles.row("none").mode == "none"
    with pytest.raises(KeyError):
        circles.row("frozen-1")  # not run


def test_layer_sum_hook_gives_every_bias_the_same_correction(rng) -> None:
    net = Network([3, 4, 2], activation="tanh", dtype="float64", seed=0)
    X = rng.normal(size=(5, 3))
    grads = net.backprop(X, rng.integers(0, 2, 5))
    right = [db.copy() for db in grads.db]
    bias_study.layer_sum_hook(grads, 5)
    for db, delta, good in zip(grads.db, grads.delta, right, strict=True):
        np.testing.assert_allclose(db, np.full_like(db, delta.sum() / 5), rtol=1e-12)
        assert not np.allclose(db, good)  # and it is not eq. (14)
    np.testing.assert_allclose(grads.db[0], gradcheck.layer_sum_bias_gradient(grads)[0])


def test_epochs_to_target() -> None:
    assert bias_study._epochs_to([0.5, 0.8, 0.96, 0.99], 0.95) == 3
    assert bias_study._epochs_to([0.5, 0.8], 0.95) is None


def test_plot_writes_png(circles, tmp_path) -> None:
    path = tmp_path / "c.png"
    bias_study.plot_curves(circles, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kwargs, match", [
    ({"seeds": 0}, "seeds"),
    ({"modes": ("learned", "bogus")}, "bogus"),
    ({"lr": -1.0}, "lr"),
])
def test_bad_arguments(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        bias_study.run("circles", epochs=1, **kwargs)


def test_none_with_batch_norm_row() -> None:
    """Seed 003's question a third way: no bias, batch norm's β shifting instead — a row of
    its own, trained with batch norm in the hidden layers, and it learns circles (the offset
    a bias would give comes from β), unlike plain none (test above)."""
    study = bias_study.run("circles", seeds=2, epochs=15, modes=("none", "none+batch-norm"))
    bn = study.row("none+batch-norm")
    assert bn.val_accuracy.mean >= study.row("none").val_accuracy.mean + 0.2
    assert "none+batch-norm" in bias_study.BATCH_NORM_MODES
