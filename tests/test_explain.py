"""explain.trace and `deltaprop explain`: every number equals backprop and a hand computation.

The manual computation below restates eqs. (2), (8)–(11), (14)–(15) with plain NumPy, one
line per equation, independent of the library's workspace and layers. Tolerances: the
library and the test compute the same float64 expressions in possibly different orders
(BLAS vs. ``@`` on tiny matrices), so they agree to a few ulps of numbers of order 1;
rtol = 1e-12, atol = 1e-14 leaves that margin and nothing more.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import deltaprop as dp
from conftest import JSON_BEFORE, assert_same_json
from deltaprop import cli, datasets, explain

RTOL, ATOL = 1e-12, 1e-14
LABELS = ("(2)", "(9)", "(8)", "(10)", "(14)", "(11)", "(15)")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`deltaprop ARGS` in-process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def manual_step(Ws, bs, X, Y, alpha, r):
    """Sigmoid hidden + sigmoid output + MSE (½‖a − y‖²), by the seeds' equations."""
    A = [X]
    Zs = []
    for W, b in zip(Ws, bs, strict=True):
        Z = A[-1] @ W.T + (0.0 if b is None else b)  # (2) z_k = Σ_j w_kj a_j + b_k
        Zs.append(Z)
        A.append(sigmoid(Z))  # (2) a = σ(z)
    sp = [sigmoid(Z) * (1 - sigmoid(Z)) for Z in Zs]  # σ'(z) = σ(z)(1 − σ(z))
    deltas = [None] * len(Ws)
    deltas[-1] = (A[-1] - Y) * sp[-1]  # (9) δ^L = ∂C/∂a ⊙ σ'(z^L), ∂C/∂a = a − y for ½‖a−y‖²
    for i in range(len(Ws) - 2, -1, -1):
        deltas[i] = (deltas[i + 1] @ Ws[i + 1]) * sp[i]  # (8) δ_k = Σ_m δ_m w_mk σ'(z_k)
    dW = [r * d.T @ a for d, a in zip(deltas, A[:-1], strict=True)]  # (10) δ_k a_j, summed
    db = [r * d.sum(axis=0) for d in deltas]  # (14) δ_k, summed over samples
    W_new = [W - alpha * g for W, g in zip(Ws, dW, strict=True)]  # (11)
    b_new = [None if b is None else b - alpha * g for b, g in zip(bs, db, strict=True)]  # (15)
    return Zs, A[1:], deltas, dW, db, W_new, b_new


@pytest.mark.parametrize("bias", ["learned", "unit", "frozen", "none"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_json_equals_backprop_and_manual(capsys, bias: str, reduction: str) -> None:
    code, out, _ = run(capsys, "explain", "--format", "json", "--bias", bias, "--batch", "3",
                       "--reduction", reduction, "--lr", "0.3", "--seed", "4")
    assert code == 0
    result = json.loads(out)
    net, X, Y = explain.demo_problem(bias=bias, m=3, seed=4)
    assert result["X"] == X.tolist()
    grads = net.backprop(X, Y, reduction)
    Ws = [np.array(layer.W_in) for layer in net.layers]
    bs = [None if layer.bias == "none" else
          (layer.W[:, -1].copy() if layer.has_unit else layer.b.copy()) for layer in net.layers]
    r = 1 / 3 if reduction == "mean" else 1.0
    Zs, As, deltas, dW, db, W_new, b_new = manual_step(Ws, bs, X, Y, 0.3, r)
    assert result["loss"] == pytest.approx(grads.loss, rel=RTOL)
    for i, e in enumerate(result["layers"]):
        close = {"rtol": RTOL, "atol": ATOL}
        np.testing.assert_allclose(e["z"], Zs[i], **close)
        np.testing.assert_allclose(e["a"], As[i], **close)
        np.testing.assert_allclose(e["delta"], grads.delta[i], **close)
        np.testing.assert_allclose(e["delta"], deltas[i], **close)
        np.testing.assert_allclose(e["delta_sum"], deltas[i].sum(axis=0), **close)
        np.testing.assert_allclose(e["delta_mean"], deltas[i].mean(axis=0), **close)
        np.testing.assert_allclose(e["dW"], grads.dW[i][:, : net.layers[i].n_in], **close)
        np.testing.assert_allclose(e["dW"], dW[i], **close)
        np.testing.assert_allclose(e["W_new"], W_new[i], **close)
        if bias in ("learned", "frozen"):
            np.testing.assert_allclose(e["db"], grads.db[i], **close)
            np.testing.assert_allclose(e["db"], db[i], **close)
        if bias == "learned":
            np.testing.assert_allclose(e["b_new"], b_new[i], **close)
        if bias == "frozen":  # computed, reported, not applied
            assert e["bias"]["applied"] is False
            assert e["b_new"] == e["b"]
        if bias == "unit":  # the bias unit's column: eq. (10) with a_j = 1 is eq. (14)
            assert e["unit"]["activation"] == 1.0
            np.testing.assert_allclose(e["unit"]["gradient"], db[i], **close)
            np.testing.assert_allclose(e["unit"]["new_weights"], b_new[i], **close)
        if bias == "none":
            assert e["db"] is None and e["b"] is None
    assert result["loss_after"] < result["loss"]  # one small step downhill on this batch


def test_softmax_shortcut_delta_is_a_minus_y() -> None:
    net, X, y = explain.demo_problem((3, 4, 3), activation="tanh", output="softmax",
                                     loss="cross_entropy", m=2, seed=1)
    trace = explain.trace(net, X, y)
    last = trace.layers[-1]
    assert trace.shortcut is True
    np.testing.assert_allclose(last.delta, last.a - trace.Y, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_output_has_every_equation_label(capsys, fmt: str) -> None:
    code, out, _ = run(capsys, "explain", "--format", fmt)
    assert code == 0
    for label in LABELS:
        assert label in out, label
    assert "Σ samples" in out and "mean" in out  # seed 002: sum and mean over samples


def test_frozen_and_unit_are_named_in_text(capsys) -> None:
    _, out, _ = run(capsys, "explain", "--bias", "frozen")
    assert "NOT applied" in out
    _, out, _ = run(capsys, "explain", "--bias", "unit")
    assert "constant activation 1" in out


def test_size_limit_and_force(capsys) -> None:
    code, out, err = run(capsys, "explain", "--sizes", "2,9,2")
    assert code == 1 and err.startswith("error: ") and err.count("\n") == 1 and "--force" in err
    code, _, err = run(capsys, "explain", "--batch", "5")
    assert code == 1 and "limit 4" in err
    code, out, _ = run(capsys, "explain", "--sizes", "2,9,2", "--force", "--format", "json")
    assert code == 0 and len(json.loads(out)["layers"][0]["z"][0]) == 9


def test_model_and_data(tmp_path, capsys) -> None:
    data = datasets.load("circles", seed=0, dtype="float64")
    net = dp.Network([2, 4, 2], activation="tanh", dtype="float64", seed=0)
    net.fit(data.X_train, data.y_train, epochs=1, verbose=0)
    path = tmp_path / "m.safetensors"
    net.save(path)
    code, out, _ = run(capsys, "explain", "--model", str(path), "--data", "circles",
                       "--batch", "3", "--format", "json")
    assert code == 0
    result = json.loads(out)
    np.testing.assert_allclose(result["X"], data.X_train[:3])  # no preprocessing recorded
    np.testing.assert_allclose(result["layers"][0]["W"], net.layers[0].W)
    code, _, err = run(capsys, "explain", "--model", str(path), "--data", "digits")
    assert code == 1 and "features" in err
    code, _, err = run(capsys, "explain", "--model", str(path))
    assert code == 2 and "--data" in err


# tests/data/json/README.md: what `deltaprop explain --format json` printed before Trace.
JSON_FILES = {
    "explain-default.json": [],
    "explain-frozen-sum.json": ["--bias", "frozen", "--reduction", "sum"],
    "explain-unit.json": ["--bias", "unit"],
    "explain-softmax-ce-none.json": ["--sizes", "3,4,3", "--activation", "tanh", "--output",
                                     "softmax", "--loss", "cross_entropy", "--bias", "none"],
    "explain-softmax-mse.json": ["--sizes", "3,4,3", "--activation", "relu", "--output",
                                 "softmax", "--loss", "mse", "--batch", "4"],
    "explain-bce-unit.json": ["--sizes", "2,3,1", "--output", "sigmoid", "--loss",
                              "binary_cross_entropy", "--bias", "unit"],
    "explain-three-layers.json": ["--sizes", "3,4,4,2", "--activation", "gelu", "--output",
                                  "identity", "--loss", "mse", "--bias", "unit", "--seed", "2"],
}


@pytest.mark.parametrize("name", JSON_FILES)
def test_json_format_is_unchanged(capsys, name: str) -> None:
    """The JSON users' scripts read: keys, order, nesting, optional keys (``unit`` for a bias
    unit, ``dC_da`` on the output layer) and null where there is no b or σ' — and the
    numbers, to RTOL/ATOL (the files may come from another machine's BLAS)."""
    code, out, _ = run(capsys, "explain", *JSON_FILES[name], "--format", "json")
    assert code == 0
    before = json.loads((JSON_BEFORE / name).read_text())
    assert_same_json(json.loads(out), before, rtol=RTOL, atol=ATOL)


def test_trace_is_a_read_only_snapshot() -> None:
    """A Trace holds its own arrays: the network is untouched and nothing can be written."""
    net, X, Y = explain.demo_problem(bias="unit", m=2, seed=3)
    W = [layer.W.copy() for layer in net.layers]
    trace = explain.trace(net, X, Y)
    for layer, W_before in zip(net.layers, W, strict=True):
        np.testing.assert_array_equal(layer.W, W_before)
    last = trace.layers[-1]
    for array in (trace.X, last.z, last.delta, last.W_new, last.unit.new_weights):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1.0
    assert last.l == len(trace.layers) and last.dC_da.shape == last.a.shape == (2, 2)
    assert trace.layers[0].dC_da is None and trace.layers[0].b is None


def test_dropout_shows_the_mask_and_its_effect_on_delta(capsys) -> None:
    """--dropout: the mask is the one backprop drew from the network's generator; a and
    ∂C/∂a are multiplied by m/(1 − p); a dropped neuron's δ is 0; loss_after reuses the mask."""
    code, out, _ = run(capsys, "explain", "--format", "json", "--dropout", "0.5",
                       "--sizes", "2,4,2", "--batch", "3", "--seed", "1")
    assert code == 0
    result = json.loads(out)
    net, X, Y = explain.demo_problem((2, 4, 2), m=3, seed=1, dropout=0.5)
    g = net.copy().backprop(X, Y, dropout=True)
    hidden = result["layers"][0]
    mask = np.array(hidden["dropout"]["mask"])
    np.testing.assert_array_equal(mask, g.masks[0])
    assert (mask == 0).any() and (mask == 1).any()
    np.testing.assert_allclose(hidden["a"], np.array(hidden["dropout"]["sigma"]) * mask / 0.5,
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(hidden["dropout"]["dC_da_masked"],
                               np.array(hidden["dropout"]["dC_da"]) * mask / 0.5,
                               rtol=RTOL, atol=ATOL)
    delta = np.array(hidden["delta"])
    np.testing.assert_allclose(delta, g.delta[0], rtol=RTOL, atol=ATOL)
    assert np.all(delta[mask == 0] == 0)
    assert result["loss"] == pytest.approx(g.loss, rel=RTOL)
    _, text, _ = run(capsys, "explain", "--dropout", "0.5")
    assert "dropout mask m^1" in text and "m^1 / (1 − p)" in text


def test_batch_norm_delta_through_the_batch_statistics(capsys) -> None:
    """--batch-norm: μ, σ², ẑ, z̃ recomputed by hand; δ = γ/√(σ² + ε)(g − mean g − ẑ mean(g ẑ))
    from the shown ∂C/∂z̃ = g; ∂C/∂γ, ∂C/∂β; the δ rows sum to 0 (a bias would learn nothing)."""
    code, out, _ = run(capsys, "explain", "--format", "json", "--batch-norm", "--batch", "4",
                       "--sizes", "2,3,2", "--reduction", "sum")
    assert code == 0
    result = json.loads(out)
    hidden = result["layers"][0]
    bn = hidden["batch_norm"]
    assert hidden["bias"]["mode"] == "none"  # batch norm's default
    Z = np.array(hidden["z"])
    mu, var = Z.mean(axis=0), Z.var(axis=0)
    z_hat = (Z - mu) / np.sqrt(var + 1e-5)
    close = {"rtol": RTOL, "atol": ATOL}
    np.testing.assert_allclose(bn["z_hat"], z_hat, **close)
    np.testing.assert_allclose(bn["z_tilde"], np.array(bn["gamma"]) * z_hat + bn["beta"], **close)
    g = np.array(bn["dC_dz_tilde"])
    gamma = np.array(bn["gamma"])
    delta = gamma / np.sqrt(var + 1e-5) * (g - g.mean(axis=0) - z_hat * (g * z_hat).mean(axis=0))
    np.testing.assert_allclose(hidden["delta"], delta, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(bn["dgamma"], (g * z_hat).sum(axis=0), **close)  # r = 1
    np.testing.assert_allclose(bn["dbeta"], g.sum(axis=0), **close)
    np.testing.assert_allclose(hidden["delta_sum"], 0, atol=1e-15)
    np.testing.assert_allclose(bn["gamma_new"], gamma - 0.5 * np.array(bn["dgamma"]), **close)
    _, text, _ = run(capsys, "explain", "--batch-norm", "--batch", "3")
    assert "(BN) ẑ^1" in text and "through the batch's μ and σ²" in text
