"""The optimised training path computes the reference equations and allocates nothing per batch.

The oracle below is a plain NumPy transcription of eqs. (2), (9), (8), (10) and (14), one
array expression per equation with fresh arrays, independent of the library's workspace,
``out=`` buffers, BLAS-thread choice and optimizer scratch. No timing here: speed lives in
benchmarks/bench_mlp.py.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import optim
from deltaprop.training import LambdaCallback

BIAS_MODES = ("learned", "frozen", "none", "unit")


def reference_gradients(net, X, Y, r):
    """Eqs. (2), (9), (8), (10), (14) for ReLU hidden layers and softmax + cross-entropy."""
    A = [X]  # A[0] is a^0 = x, as in the book
    Z = [None]
    for layer in net.layers:
        A_prev = A[-1]
        if layer.has_unit:  # the bias unit: a constant activation 1 feeding an extra column
            A_prev = np.hstack([A_prev, np.ones((A_prev.shape[0], 1), A_prev.dtype)])
        z = A_prev @ layer.W.T + (layer.b if layer.b is not None else 0)  # (2)
        Z.append(z)
        if layer is net.layers[-1]:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            A.append(e / e.sum(axis=1, keepdims=True))  # softmax
        else:
            A.append(np.maximum(z, 0))  # ReLU
    L = len(net.layers)
    delta = [None] * (L + 1)
    delta[L] = A[L] - Y  # (9) for softmax + cross-entropy
    for l in range(L - 1, 0, -1):
        W_next = net.layers[l].W[:, : net.layers[l].n_in]  # no δ for the bias unit
        delta[l] = (delta[l + 1] @ W_next) * (Z[l] > 0)  # (8)
    dW, db = [], []
    for l in range(1, L + 1):
        A_prev = A[l - 1]
        if net.layers[l - 1].has_unit:
            A_prev = np.hstack([A_prev, np.ones((A_prev.shape[0], 1), A_prev.dtype)])
        dW.append(r * delta[l].T @ A_prev)  # (10)
        db.append(r * delta[l].sum(axis=0))  # (14)
    return delta[1:], dW, db


def _problem(dtype, mode, seed=0, n=13):
    rng = np.random.default_rng(seed)
    net = dp.Network([7, 6, 5, 3], activation="relu", bias=mode, bias_init=0.1,
                     dtype=dtype, seed=seed)
    X = rng.normal(size=(n, 7)).astype(dtype)
    y = rng.integers(0, 3, n)
    Y = np.eye(3, dtype=dtype)[y]
    return net, X, y, Y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", BIAS_MODES)
# a full batch, a short last batch, one sample (the outer-product path)
@pytest.mark.parametrize("m", [8, 5, 1])
# W column-major (as Network makes it) and row-major (as a user may assign it)
@pytest.mark.parametrize("order", ["F", "C"])
def test_workspace_path_matches_reference_equations(dtype, mode, m, order):
    net, X, _, Y = _problem(dtype, mode)
    assert all(layer.W.flags.f_contiguous for layer in net.layers)
    for layer in net.layers:
        layer.W = np.asarray(layer.W, order=order)
    ws = net.workspace(8).rows(m)  # what fit does for a short last batch
    ws.inputs[...] = X[:m]
    ws.targets[...] = Y[:m]
    r = 1.0 / m
    loss = net.backprop_into(ws, r)
    delta, dW, db = reference_gradients(net, X[:m], Y[:m], r)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
    for i, layer in enumerate(net.layers):
        assert ws.delta[i].dtype == np.dtype(dtype)
        np.testing.assert_allclose(ws.delta[i], delta[i], **tol)
        np.testing.assert_allclose(ws.nabla_W[i], dW[i], **tol)
        assert ws.nabla_W[i].flags[f"{order}_CONTIGUOUS"]  # laid out like W
        if layer.b is None:
            assert ws.nabla_b[i] is None
        else:
            np.testing.assert_allclose(ws.nabla_b[i], db[i], **tol)
    p = ws.A[-1][np.arange(m), Y[:m].argmax(1)]
    np.testing.assert_allclose(loss, -np.log(p).mean(), rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", BIAS_MODES)
def test_fit_steps_equal_reference_sgd_momentum(dtype, mode):
    """Two epochs of fit (13 rows, batches 4+4+4+1) = the reference equations + torch's SGD."""
    net, X, y, Y = _problem(dtype, mode)
    ref = net.copy()
    order_rng = np.random.default_rng()
    order_rng.bit_generator.state = net.rng.bit_generator.state
    lr, mu = 0.1, 0.9
    net.fit(X, y, epochs=2, batch_size=4, optimizer=optim.SGD(lr=lr, momentum=mu), verbose=0)
    velocity: dict[tuple[int, str], np.ndarray] = {}
    for _ in range(2):
        index = order_rng.permutation(len(X))  # fit's order for the epoch
        for start in range(0, len(X), 4):
            rows = index[start : start + 4]
            _, dW, db = reference_gradients(ref, X[rows], Y[rows], 1.0 / len(rows))
            for i, layer in enumerate(ref.layers):
                params = [("W", layer.W, dW[i])]
                if layer.bias == "learned":
                    params.append(("b", layer.b, db[i]))
                for name, theta, g in params:
                    key = (i, name)
                    velocity[key] = g.copy() if key not in velocity else mu * velocity[key] + g
                    theta -= (lr * velocity[key]).astype(theta.dtype)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == "float32" else dict(rtol=1e-10, atol=1e-12)
    for got, want in zip(net.layers, ref.layers, strict=True):
        np.testing.assert_allclose(got.W, want.W, **tol)
        if want.b is not None:
            np.testing.assert_allclose(got.b, want.b, **tol)


def test_flush_subnormals_zeroes_only_subnormals():
    tiny = np.finfo(np.float32).tiny
    a = np.array([1e-40, -3e-39, tiny / 2, 0.0, tiny, -1e-3, 1.0, 1e-20, 2e-23],
                 dtype=np.float32)
    before = a.copy()
    optim.flush_subnormals(a)
    np.testing.assert_array_equal(a[:4], 0)
    np.testing.assert_array_equal(a[5:8], before[5:8])  # normal values: bit-for-bit
    assert abs(a[4] - before[4]) <= 2.0**-123 and abs(a[8] - before[8]) <= 2.0**-123
    b = np.array([1e-310, 1.0])  # float64: left alone (its subnormals are not reached)
    optim.flush_subnormals(b)
    assert b[0] == 1e-310


def _per_batch_peak(n_batches: int) -> int:
    """Bytes traced above the level after the second batch, over the rest of one fit."""
    rng = np.random.default_rng(0)
    m = 16
    X = rng.normal(size=(n_batches * m, 20)).astype(np.float32)
    y = rng.integers(0, 3, n_batches * m)
    net = dp.Network([20, 16, 8, 3], seed=0)
    marks: dict[str, int] = {}

    def on_batch_end(epoch: int, batch: int, loss: float) -> None:
        if batch == 1:  # the workspace and optimizer state exist by now
            marks["base"] = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()

    tracemalloc.start()
    try:
        net.fit(X, y, epochs=1, batch_size=m, optimizer=optim.SGD(lr=0.01, momentum=0.9),
                verbose=0, callbacks=[LambdaCallback(on_batch_end=on_batch_end)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - marks["base"]


def test_fit_allocates_nothing_per_batch_that_grows_with_the_epoch():
    """The traced peak over an epoch is a small constant, the same for 20 or 400 batches.

    What remains per batch is the loss's few (m,)-sized numbers and the accuracy count; the
    epoch end adds the history entry and the next epoch's parameter snapshot (tiny here).
    """
    short, long = _per_batch_peak(20), _per_batch_peak(400)
    assert long < 64 * 1024, long
    assert long <= short + 4 * 1024, (short, long)


# ----------------------------------------------------------------- the fused SGD step
FUSED_SGD = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.1, momentum=0.9),
    "dampening+decay": dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01),
    "decay-bias": dict(lr=0.1, momentum=0.5, weight_decay=0.01, decay_bias=True),
    "no-momentum+decay": dict(lr=0.1, weight_decay=0.02),
}


def _fit(net, X, y, fused, **kwargs):
    return net.fit(X, y, epochs=2, batch_size=kwargs.pop("batch_size", 4), verbose=0,
                   fused=fused, **kwargs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("mode", BIAS_MODES)
@pytest.mark.parametrize("config", FUSED_SGD)
def test_fused_fit_equals_the_plain_path(dtype, mode, config):
    """Two epochs (batches 4+4+4+1) fused = plain, to float rounding: the fused product is
    added into the buffer unrounded (float32 within 1e-5 relative after 8 steps)."""
    net, X, y, _ = _problem(dtype, mode)
    plain = net.copy()
    opt, ref = optim.SGD(**FUSED_SGD[config]), optim.SGD(**FUSED_SGD[config])
    h_fused = _fit(net, X, y, True, optimizer=opt)
    h_plain = _fit(plain, X, y, False, optimizer=ref)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-13)
    for (name, got), (_, want) in zip(net.parameters(), plain.parameters(), strict=True):
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, err_msg=name, **tol)
    np.testing.assert_allclose(h_fused.loss, h_plain.loss, rtol=1e-5)
    assert h_fused.accuracy == h_plain.accuracy
    assert opt.t == ref.t == 8
    assert set(opt.state_dict()["state"]) == set(ref.state_dict()["state"])
    for key, a in ref.state_dict()["state"].items():
        np.testing.assert_allclose(opt.state_dict()["state"][key], a, err_msg=key, **tol)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_fused_fit_with_sample_weights_equals_the_plain_path(reduction):
    """r as a column of per-row factors r_x (sample weights): rΔ row by row, then gemm."""
    net, X, y, _ = _problem("float64", "learned")
    s = np.random.default_rng(1).uniform(0, 2, len(X))
    plain = net.copy()
    kw = dict(reduction=reduction, sample_weight=s)
    _fit(net, X, y, True, optimizer=optim.SGD(lr=0.05, momentum=0.9), **kw)
    _fit(plain, X, y, False, optimizer=optim.SGD(lr=0.05, momentum=0.9), **kw)
    for (name, got), (_, want) in zip(net.parameters(), plain.parameters(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("threads", [1, 2])
def test_fused_run_repeats_bit_for_bit(threads):
    """Same seed, same weights, bit for bit, with one BLAS thread or both cores."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 40)).astype(np.float32)
    y = rng.integers(0, 4, 300)
    runs = []
    for _ in range(2):
        net = dp.Network([40, 64, 32, 4], seed=7)
        net.fit(X, y, epochs=2, batch_size=32, optimizer=optim.SGD(lr=0.05, momentum=0.9),
                verbose=0, blas_threads=threads)
        runs.append([p.copy() for _, p in net.parameters()])
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", ["adam", "nesterov", "hook", "clip", "fused=False"])
def test_what_the_fused_step_cannot_do_takes_the_plain_path(case):
    """Bit-identical to fused=False: the very same plain path runs."""
    from deltaprop.training import TrainStep

    net, X, y, _ = _problem("float32", "learned")
    kwargs: dict = {"optimizer": optim.SGD(lr=0.1, momentum=0.9)}
    if case == "adam":
        kwargs["optimizer"] = optim.Adam(lr=0.01)
    elif case == "nesterov":
        kwargs["optimizer"] = optim.SGD(lr=0.1, momentum=0.9, nesterov=True)
    elif case == "hook":
        kwargs["gradient_hook"] = lambda g, m: None
    elif case == "clip":
        kwargs["clip_norm"] = 1e6
    made: list = []
    original = TrainStep.__init__

    def spy(self, *args, **kw):
        original(self, *args, **kw)
        made.append(self)

    plain = net.copy()
    reference = {**kwargs, "optimizer": type(kwargs["optimizer"])(
        **kwargs["optimizer"].hyperparameters())}
    try:
        TrainStep.__init__ = spy
        _fit(net, X, y, case != "fused=False", **kwargs)
    finally:
        TrainStep.__init__ = original
    assert made and made[0].fused is None
    _fit(plain, X, y, False, **reference)
    for (_, a), (_, b) in zip(net.parameters(), plain.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_run_may_switch_between_the_fused_and_the_plain_path():
    """The fused step keeps the optimizer's state as optimizer.step does (by name, laid out
    like θ), so an epoch of each equals two plain epochs, to rounding."""
    net, X, y, _ = _problem("float64", "unit")
    plain = net.copy()
    opt, ref = optim.SGD(lr=0.1, momentum=0.9), optim.SGD(lr=0.1, momentum=0.9)
    net.fit(X, y, epochs=1, batch_size=4, optimizer=opt, verbose=0, fused=True)
    net.fit(X, y, epochs=2, initial_epoch=1, batch_size=4, optimizer=opt, verbose=0,
            fused=False)
    plain.fit(X, y, epochs=2, batch_size=4, optimizer=ref, verbose=0, fused=False)
    for (_, a), (_, b) in zip(net.parameters(), plain.parameters(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_a_hook_or_optimizer_set_between_steps_takes_effect():
    """TrainStep's gradient_hook and optimizer are attributes a caller may set between steps
    (the playground does): each step takes the path they call for. Six steps, fused ones
    and hooked ones interleaved, equal six plain steps with the same hooks and optimizers."""
    from deltaprop.streaming import BatchFeed
    from deltaprop.training import TrainStep

    net, X, _, Y = _problem("float64", "learned", n=24)
    plain = net.copy()
    first, second = optim.SGD(lr=0.1, momentum=0.9), optim.SGD(lr=0.05)
    first_ref, second_ref = optim.SGD(lr=0.1, momentum=0.9), optim.SGD(lr=0.05)
    calls: list[int] = []

    def l1(grads, m):  # an L1 term the fused step knows nothing of
        calls.append(m)
        for dW, layer in zip(grads.dW, grads_net.layers, strict=True):
            dW += 0.01 * np.sign(layer.W)

    paths = []
    for grads_net, opts, fused in ((net, (first, second), True),
                                   (plain, (first_ref, second_ref), False)):
        step = TrainStep(grads_net, BatchFeed(X, 4, grads_net.dtype), Y, 4, opts[0], "mean",
                         fused=fused)
        for k, (hook, opt) in enumerate([(None, opts[0]), (l1, opts[0]), (None, opts[0]),
                                         (None, opts[1]), (l1, opts[1]), (None, opts[1])]):
            step.gradient_hook, step.optimizer = hook, opt
            step(4 * k, 4 * k + 4)
            step.update()
            if fused:
                paths.append(None if step.fused is None else step.fused.optimizer)
    assert paths == [first, None, first, second, None, second]
    assert calls == [4] * 4  # the hook ran in both runs' hooked steps
    for (name, got), (_, want) in zip(net.parameters(), plain.parameters(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13, err_msg=name)
