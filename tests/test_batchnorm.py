"""Batch norm between z and σ: against torch.nn.BatchNorm1d, finite differences, files.

The oracle is ``nn.Sequential(Linear, BatchNorm1d, σ, …)`` loaded from the network's own
tensors by their model-file names (conftest.TorchTwin), trained with ``torch.optim.SGD``
step by step beside deltaprop's ``TrainStep``: loss, every gradient (W, b, γ, β) and the
running statistics agree in float64 to 1e-10 relative per array — rounding only, as for the
plain network (test_network.py); any wrong term in δ through μ or σ² is off by O(1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import deltaprop as dp
from conftest import HIDDEN, TorchTwin, randomize_parameters
from deltaprop import batchnorm, gradcheck, io, optim, streaming, training
from deltaprop.errors import ModelFileError
from deltaprop.layers import BIAS_MODES

torch = pytest.importorskip("torch")
TOL = 1e-10
STEPS = 5


def rel_err(a: Any, b: Any, scale: float | None = None) -> float:
    """max |a − b| / max |b| (or / ``scale``)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if scale is None:
        scale = float(np.max(np.abs(b), initial=0.0))
    return float(np.max(np.abs(a - b), initial=0.0) / max(scale, 1e-300))


def bn_net(hidden: str = "tanh", bias: Any = None, seed: int = 0, dropout: Any = 0.0,
           sizes: tuple[int, ...] = (4, 6, 5, 3), **kwargs: Any) -> dp.Network:
    return dp.Network(list(sizes), activation=hidden, bias=bias, dtype="float64", seed=seed,
                      batch_norm=True, dropout=dropout, init="glorot_normal", **kwargs)


def data(rng: np.random.Generator, n: int, n_in: int = 4, k: int = 3) -> tuple[Any, Any]:
    return rng.normal(size=(n, n_in)) * 2 + 0.5, rng.integers(0, k, n)


def _scramble_norms(net: dp.Network, rng: np.random.Generator) -> None:
    """γ, β away from 1, 0 so that a γ or β left out of a formula shows."""
    for layer in net.layers:
        if layer.norm is not None:
            layer.norm.gamma[...] = rng.uniform(0.5, 1.5, layer.n_out)
            layer.norm.beta[...] = rng.normal(0, 0.3, layer.n_out)


@pytest.mark.parametrize("bias", BIAS_MODES)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_training_steps_match_torch_batchnorm1d(rng, hidden: str, bias: str) -> None:
    """5 SGD steps: loss, ∂C/∂W, ∂C/∂b, ∂C/∂γ, ∂C/∂β, then the parameters and the running
    mean and variance after each step, against torch in train mode."""
    net = bn_net(hidden, bias)
    randomize_parameters(net, rng)
    _scramble_norms(net, rng)
    X, y = data(rng, 40)
    twin = TorchTwin(net)
    sgd = torch.optim.SGD(twin.trainable(), lr=0.1)
    feed = streaming.BatchFeed(X, 8, net.dtype)  # rows in their stored order until drawn
    step = training.TrainStep(net, feed, net.targets(y, 40), 8, optim.SGD(lr=0.1), "mean")
    for s in range(STEPS):
        rows = np.arange(8 * s, 8 * s + 8)
        loss = step(rows[0], rows[-1] + 1)
        twin.sequential.train()
        twin.zero_grad()  # frozen biases too, which sgd does not hold
        C = twin.loss(X[rows], y[rows], "mean")
        C.backward()
        assert rel_err(loss, C.item()) <= TOL, s
        g = step.gradients
        for i, theirs in enumerate(twin.gradients()):
            # Redundant parameters have an exact gradient of 0, so both sides hold rounding
            # noise (~1e-17): a bias before batch norm (its δ rows sum to 0), and β before a
            # second batch norm when σ is the identity. Such an array is measured on the
            # layer's largest gradient entry instead of on itself.
            scale = max(float(np.abs(t).max()) for t in theirs.values() if t is not None)
            for name, ours in (("W", g.dW[i]), ("b", g.db[i]), ("gamma", g.dgamma[i]),
                               ("beta", g.dbeta[i])):
                if theirs[name] is None:
                    continue
                zero = np.abs(theirs[name]).max() < 1e-12 * scale
                assert rel_err(ours, theirs[name], scale if zero else None) <= TOL, (s, i, name)
        step.update()
        sgd.step()
        for i, layer in enumerate(net.layers):
            norm = twin.norms[i]
            if norm is None:
                continue
            assert rel_err(layer.norm.running_mean, norm.running_mean.numpy()) <= TOL
            assert rel_err(layer.norm.running_var, norm.running_var.numpy()) <= TOL
            assert rel_err(layer.norm.gamma, norm.weight.detach().numpy()) <= TOL
            assert layer.norm.num_batches_tracked == int(norm.num_batches_tracked) == s + 1


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_sample_weights_through_batch_norm_match_torch(rng, reduction: str) -> None:
    """With sample weights the gradient is that of Σ_x s_x C_x (/ Σ s): the rows are weighted
    before batch norm mixes them, and the layers below take r = 1 (network.py)."""
    net = bn_net("tanh", bias=["learned", "none", "learned"], dropout=[0.3, 0.0])
    randomize_parameters(net, rng)
    _scramble_norms(net, rng)
    X, y = data(rng, 10)
    s = rng.uniform(0.1, 3.0, 10)
    g = net.backprop(X, y, reduction, sample_weight=s, dropout=True)
    twin = TorchTwin(net)
    C = twin.loss(X, y, reduction, masks=g.masks, weights=s)
    C.backward()
    assert rel_err(g.loss, C.item()) <= TOL
    for i, theirs in enumerate(twin.gradients()):
        scale = max(float(np.abs(t).max()) for t in theirs.values() if t is not None)
        for name, ours in (("W", g.dW[i]), ("b", g.db[i]), ("gamma", g.dgamma[i]),
                           ("beta", g.dbeta[i])):
            if theirs[name] is not None:
                zero = np.abs(theirs[name]).max() < 1e-12 * scale  # see the test above
                assert rel_err(ours, theirs[name], scale if zero else None) <= TOL, (i, name)
    unweighted = net.backprop(X, y, reduction)  # the weights do change the gradient
    assert rel_err(unweighted.dgamma[0], g.dgamma[0]) > 1e-3


def test_lbfgs_refuses_batch_norm_and_dropout(rng) -> None:
    X, y = data(rng, 20)
    for kwargs in ({"batch_norm": True}, {"dropout": 0.2}):
        net = dp.Network([4, 6, 3], dtype="float64", **kwargs)
        with pytest.raises(ValueError, match=r"L-BFGS .* does not train batch normalization"):
            optim.LBFGS(max_iter=2).minimize(net, X, y)


def test_eval_mode_predictions_agree_with_torch(rng) -> None:
    """After training, inference uses the running statistics, as torch's eval mode."""
    net = bn_net("relu", dropout=0.3)
    X, y = data(rng, 64)
    net.fit(X, y, epochs=3, batch_size=16, optimizer=optim.SGD(lr=0.05, momentum=0.9),
            verbose=0)
    twin = TorchTwin(net)
    twin.sequential.eval()
    with torch.no_grad():
        _, A = twin.forward(X)
    assert rel_err(net.predict_proba(X), A.numpy()) <= TOL
    batch_stats = net.backprop(X, y).A[-1]  # training mode: the batch's own statistics
    assert rel_err(batch_stats, A.numpy()) > 1e-6  # the two modes really differ


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("bias", BIAS_MODES)
@pytest.mark.parametrize("hidden", ["tanh", "sigmoid", "softplus", "gelu"])
def test_gradcheck_passes_through_batch_norm(rng, hidden: str, bias: str,
                                             reduction: str) -> None:
    """Central differences of C computed with the batch's statistics agree with backprop,
    γ and β included (gradcheck's tolerance, justified in gradcheck.py)."""
    net = bn_net(hidden, bias, sizes=(3, 4, 4, 2))
    randomize_parameters(net, rng)
    _scramble_norms(net, rng)
    X, y = data(rng, 6, n_in=3, k=2)
    report = gradcheck.check(net, X, y, reduction)
    assert report.passed, str(report)
    assert {name for _, name, *_ in report.rows()} >= {"W", "γ", "β"}


def test_gradcheck_fails_without_the_paths_through_the_batch_statistics(rng, monkeypatch) -> None:
    """The check can fail: δ = γ g/√(σ² + ε) alone (no mean terms) is caught."""
    net = bn_net("tanh", sizes=(3, 4, 2))
    _scramble_norms(net, rng)
    X, y = data(rng, 6, n_in=3, k=2)

    def elementwise(self, G, Z_hat, inv_std, r, ones, nabla_gamma, nabla_beta, scratch, row):
        np.matmul(ones, G, out=nabla_beta)
        np.multiply(G, Z_hat, out=scratch)
        np.matmul(ones, scratch, out=nabla_gamma)
        G *= self.gamma * inv_std
        nabla_beta *= r
        nabla_gamma *= r

    monkeypatch.setattr(batchnorm.BatchNorm, "backward", elementwise)
    assert not gradcheck.check(net, X, y).passed


def test_random_direction_check_covers_gamma_and_beta(rng) -> None:
    net = bn_net("elu", sizes=(5, 8, 7, 3))
    _scramble_norms(net, rng)
    X, y = data(rng, 9, n_in=5)
    assert gradcheck.random_direction_check(net, X, y, rng, n_directions=4).passed


def test_each_samples_delta_depends_on_the_whole_batch(rng) -> None:
    """Seed 002's per-sample gradients are independent without batch norm and are not with
    it: changing sample 2 leaves sample 1's δ alone only in the plain network."""
    X, y = data(rng, 5)
    X2 = X.copy()
    X2[1] += 1.0
    for batch_norm, independent in ((False, True), (True, False)):
        net = dp.Network([4, 6, 3], dtype="float64", seed=0, batch_norm=batch_norm)
        d1, d2 = net.backprop(X, y).delta[0][0], net.backprop(X2, y).delta[0][0]
        assert np.array_equal(d1, d2) == independent


def test_a_bias_before_batch_norm_gets_no_gradient(rng) -> None:
    """The δ rows of a batch-normalised layer sum to 0, so ∂C/∂b = r Σ_x δ = 0: the bias is
    redundant (β plays its part), which is why it defaults to none there."""
    assert bn_net().layers[0].bias == "none" and bn_net().layers[-1].bias == "learned"
    net = bn_net("relu", bias="learned")
    X, y = data(rng, 16)
    g = net.backprop(X, y)
    scale = np.abs(g.dW[0]).max()
    assert np.abs(g.db[0]).max() <= 1e-13 * scale
    assert np.abs(g.db[-1]).max() > 1e-3 * np.abs(g.dW[-1]).max()  # the output layer's is not


def test_a_batch_of_one_sample_is_refused_and_left_out_of_an_epoch(rng) -> None:
    net = bn_net()
    X, y = data(rng, 17)
    with pytest.raises(ValueError, match="at least 2 samples"):
        net.backprop(X[:1], y[:1])
    with pytest.raises(ValueError, match="batch_size=1"):
        net.fit(X, y, epochs=1, batch_size=1, verbose=0)
    net.fit(X, y, epochs=2, batch_size=4, verbose=0)  # 17 = 4 · 4 + 1: the 1 is left out
    assert net.layers[0].norm.num_batches_tracked == 2 * 4


def test_save_load_predicts_identically_and_loads_into_torch(tmp_path: Path, rng) -> None:
    """The model file keeps γ, β, the running statistics and the settings; torch's
    Sequential loads the same tensors (strict) and predicts the same in eval mode."""
    net = bn_net("tanh", dropout=[0.2, 0.0])
    X, y = data(rng, 48)
    net.fit(X, y, epochs=2, batch_size=8, verbose=0)
    path = tmp_path / "bn.safetensors"
    net.save(path)
    loaded = dp.load(path).network
    assert loaded.config() == net.config()
    assert loaded.config()["batch_norm"] == [True, True]
    assert loaded.config()["dropout"] == [0.2, 0.0]
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    for a, b in zip(loaded.state_arrays(), net.state_arrays(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert loaded.layers[1].norm.num_batches_tracked == net.layers[1].norm.num_batches_tracked
    twin = TorchTwin(loaded)  # load_state_dict(strict=True) by the file's tensor names
    twin.sequential.eval()
    with torch.no_grad():
        assert rel_err(twin.forward(X)[1].numpy(), net.predict_proba(X)) <= TOL


def test_checkpoint_resume_continues_bitwise(tmp_path: Path, rng) -> None:
    """4 epochs at once = 2 epochs, a checkpoint (running statistics, γ/β state, the
    generator that draws the masks), then 2 more."""
    X, y = data(rng, 60)

    def run(net: dp.Network, opt: optim.Optimizer, first: int, last: int) -> None:
        net.fit(X, y, epochs=last, initial_epoch=first, batch_size=8, optimizer=opt, verbose=0)

    whole = bn_net("relu", dropout=0.3)
    run(whole, optim.Adam(lr=0.01), 0, 4)
    half = bn_net("relu", dropout=0.3)
    opt = optim.Adam(lr=0.01)
    run(half, opt, 0, 2)
    path = tmp_path / "ckpt.safetensors"
    io.save(half, path, optimizer=opt, training={"epoch": 2})
    model, _, opt2 = io.load_checkpoint(path)
    assert "layers.0.gamma" in opt2.state
    run(model.network, opt2, 2, 4)
    for a, b in zip(model.network.state_arrays(), whole.state_arrays(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_batch_norm_settings_are_refused() -> None:
    with pytest.raises(TypeError, match="`batch_norm` must be True/False"):
        dp.Network([3, 4, 2], batch_norm="yes")
    with pytest.raises(ValueError, match="`batch_norm` needs 2 entries"):
        dp.Network([3, 4, 4, 2], batch_norm=[True])


def test_a_model_file_with_a_negative_running_variance_is_refused(tmp_path: Path) -> None:
    net = bn_net()
    net.layers[0].norm.running_var[2] = -1.0
    path = tmp_path / "bad.safetensors"
    net.save(path)
    with pytest.raises(ModelFileError, match="negative variance"):
        dp.load(path)


def test_float32_stays_float32(rng) -> None:
    net = dp.Network([4, 6, 3], seed=0, batch_norm=True)
    X, y = data(rng, 20)
    net.fit(X.astype(np.float32), y, epochs=2, batch_size=5, verbose=0)
    for a in net.state_arrays():
        assert a.dtype == np.float32
    assert net.predict_proba(X.astype(np.float32)).dtype == np.float32
