"""Tests for training.fit: accuracy on real data, bias modes over a whole run, early
stopping, the divergence guard, determinism, reporting and callbacks."""

from __future__ import annotations

import io

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import datasets, optim, schedules, training

OPTIMIZERS = [
    lambda: optim.SGD(lr=0.05),
    lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True),
    lambda: optim.Adagrad(lr=0.05),
    lambda: optim.RMSprop(lr=0.005, momentum=0.5, centered=True),
    lambda: optim.Adam(lr=0.01, amsgrad=True),
    lambda: optim.AdamW(lr=0.01),
    lambda: optim.NAdam(lr=0.01),
]


@pytest.fixture(scope="module")
def digits():
    data = datasets.load("digits", seed=0)
    scaler = datasets.default_scaler("digits").fit(data.X_train)
    return (scaler.transform(data.X_train), data.y_train,
            scaler.transform(data.X_test), data.y_test)


@pytest.fixture(scope="module")
def small():
    """A small 3-class problem: quick to train, still needs every part of the net."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5)
    return X, y


# ------------------------------------------------------------------ accuracy (issue 3, point 3)
@pytest.mark.parametrize(
    ("make_optimizer", "target"),
    [(lambda: optim.Adam(lr=1e-3), 0.96), (lambda: optim.SGD(lr=0.1), 0.94)],
    ids=["adam", "plain-sgd"],
)
def test_fit_reaches_accuracy_on_digits(digits, make_optimizer, target):
    # scikit-learn's bundled digits, its own 75/25 stratified split with seed 0 (datasets.load).
    X, y, X_test, y_test = digits
    net = dp.Network([64, 128, 10], seed=0)
    net.fit(X, y, epochs=30, batch_size=32, optimizer=make_optimizer(), verbose=0)
    assert net.evaluate(X_test, y_test)["accuracy"] >= target


# ------------------------------------------------------------------ bias modes (point 4)
@pytest.mark.parametrize("make_optimizer", OPTIMIZERS)
def test_frozen_biases_never_move(small, make_optimizer):
    X, y = small
    net = dp.Network([4, 6, 3], bias="frozen", bias_init=1.0, dtype="float64", seed=3)
    before = [layer.b.copy() for layer in net.layers]
    W_before = net.layers[0].W.copy()
    net.fit(X, y, epochs=3, batch_size=8, optimizer=make_optimizer(), verbose=0)
    for layer, b in zip(net.layers, before, strict=True):
        np.testing.assert_array_equal(layer.b, b)  # exactly: no optimizer may touch them
    assert not np.array_equal(net.layers[0].W, W_before)  # while the weights did train


def test_frozen_biases_survive_weight_decay_on_biases(small):
    X, y = small
    net = dp.Network([4, 6, 3], bias="frozen", bias_init=1.0, seed=3)
    net.fit(X, y, epochs=2, optimizer=optim.AdamW(lr=0.01, weight_decay=0.5, decay_bias=True),
            verbose=0)
    assert all(np.array_equal(layer.b, np.ones(layer.n_out)) for layer in net.layers)


def test_none_has_no_bias_after_training(small):
    X, y = small
    net = dp.Network([4, 6, 3], bias="none", seed=0)
    net.fit(X, y, epochs=2, verbose=0)
    assert all(layer.b is None for layer in net.layers)
    assert [p.shape for _, p in net.parameters()] == [(6, 4), (3, 6)]


@pytest.mark.parametrize("make_optimizer", OPTIMIZERS)
def test_unit_equals_learned_over_a_whole_fit(small, make_optimizer):
    X, y = small
    learned = dp.Network([4, 6, 3], bias="learned", bias_init=0.1, dtype="float64", seed=5)
    unit = dp.Network([4, 6, 3], bias="unit", bias_init=0.1, dtype="float64", seed=5)
    for net in (learned, unit):
        net.fit(X, y, epochs=4, batch_size=7, optimizer=make_optimizer(), verbose=0)
    for a, b in zip(learned.layers, unit.layers, strict=True):
        # Same arithmetic up to the order of one addition per entry (the bias enters the
        # matmul as w·1 instead of after it): float64 rounding, ~1e-16 per step, grows to
        # well below 1e-9 over 36 steps of these small nets.
        np.testing.assert_allclose(b.W[:, :-1], a.W, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b.W[:, -1], a.b, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------ early stopping, divergence
def test_early_stopping_restores_the_best_validation_weights():
    rng = np.random.default_rng(0)
    # 20 noisy training samples and a big net: training loss keeps falling while the
    # validation loss turns up, so the best validation epoch is an early one.
    X = rng.normal(size=(20, 10))
    y = rng.integers(0, 2, size=20)
    X_val = rng.normal(size=(200, 10))
    y_val = rng.integers(0, 2, size=200)
    snapshots = []
    recorder = training.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(
            [p.copy() for _, p in net.parameters()]
        )
    )
    net = dp.Network([10, 64, 2], dtype="float64", seed=0)
    hist = net.fit(X, y, epochs=200, batch_size=20, optimizer=optim.Adam(lr=0.01),
                   validation_data=(X_val, y_val), patience=5, callbacks=[recorder], verbose=0)
    assert hist.stopped_early
    best = int(np.argmin(hist.val_loss))
    assert hist.best_epoch == best
    assert len(hist.val_loss) == best + 6  # stopped after `patience` epochs without gain
    for (_, p), saved in zip(net.parameters(), snapshots[best], strict=True):
        np.testing.assert_array_equal(p, saved)
    assert net.evaluate(X_val, y_val)["loss"] == pytest.approx(hist.val_loss[best], rel=1e-12)


def test_divergence_guard_names_epoch_and_batch_and_keeps_finite_weights(small):
    X, y = small
    net = dp.Network([4, 6, 3], activation="relu", output="identity", loss="mse", seed=0)
    with pytest.raises(training.TrainingDiverged, match=r"epoch \d+, batch \d+.*lower learning"):
        net.fit(X, np.eye(3)[y] * 1e3, epochs=50, batch_size=4, optimizer=optim.SGD(lr=1e3),
                verbose=0)
    assert all(np.isfinite(p).all() for _, p in net.parameters())


# ------------------------------------------------------------------ determinism (point 6)
def _trained(seed: int, X, y) -> list[np.ndarray]:
    net = dp.Network([4, 8, 3], seed=seed)
    net.fit(X, y, epochs=3, batch_size=5, optimizer=optim.Adam(lr=0.01), verbose=0)
    return [p for _, p in net.parameters()]


def test_same_seed_is_bitwise_identical_and_other_seeds_differ(small):
    X, y = small
    a, b, c = _trained(7, X, y), _trained(7, X, y), _trained(8, X, y)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not any(np.array_equal(p, q) for p, q in zip(a, c, strict=True))


# ------------------------------------------------------------------ batches and reporting
def test_batch_size_one_and_full_batch_take_the_expected_steps(small):
    X, y = small
    for batch_size, steps in ((1, 60), (None, 1), (16, 4)):
        counted: list[int] = []
        cb = training.LambdaCallback(on_batch_end=lambda e, b, loss, seen=counted: seen.append(b))
        net = dp.Network([4, 5, 3], seed=0)
        net.fit(X, y, epochs=1, batch_size=batch_size, optimizer=optim.SGD(lr=0.1),
                callbacks=[cb], verbose=0)
        assert len(counted) == steps


def test_history_records_every_epoch(small):
    X, y = small
    net = dp.Network([4, 5, 3], seed=0)
    h = net.fit(X, y, epochs=4, validation_split=0.25, verbose=0)
    assert h.epoch == [0, 1, 2, 3]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
        assert len(getattr(h, key)) == 4, key
    assert all(0 <= a <= 1 for a in h.accuracy + h.val_accuracy)


def test_callback_can_stop_training(small):
    X, y = small
    net = dp.Network([4, 5, 3], seed=0)
    h = net.fit(X, y, epochs=10, verbose=0,
                callbacks=[training.LambdaCallback(on_epoch_end=lambda e, logs: e == 2)])
    assert h.epoch == [0, 1, 2]


def test_verbose_zero_is_silent_and_lines_go_to_the_stream(small, capsys):
    X, y = small
    net = dp.Network([4, 5, 3], seed=0)
    net.fit(X, y, epochs=2, verbose=0)
    assert capsys.readouterr() == ("", "")
    stream = io.StringIO()
    net.fit(X, y, epochs=2, verbose=0, callbacks=[training.EpochLines(stream)])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2  loss ")


def test_not_a_terminal_gives_one_line_per_epoch(small, capsys):
    X, y = small
    net = dp.Network([4, 5, 3], seed=0)
    net.fit(X, y, epochs=3, verbose=1)  # pytest's captured stderr is not a terminal
    err = capsys.readouterr().err.splitlines()
    assert [line.split()[1] for line in err] == ["1/3", "2/3", "3/3"]


def test_user_labels_come_back_from_predict(small):
    """A Model fits the user's labels; its network trains on their class indices."""
    X, y = small
    names = np.array(["cat", "dog", "emu"])[y]
    model = dp.Model(dp.Network([4, 8, 3], seed=0), scaler="none")
    model.fit(X, names, epochs=30, optimizer=optim.Adam(lr=0.02), verbose=0)
    assert list(model.classes) == ["cat", "dog", "emu"]
    assert set(model.predict(X)) <= {"cat", "dog", "emu"}
    assert np.mean(model.predict(X) == names) > 0.8
    np.testing.assert_array_equal(model.predict(X), model.classes[model.network.predict(X)])


def test_a_network_takes_class_indices_not_guessed_labels(small):
    """Labels other than 0..n_L−1 are not guessed into indices: a clear error instead."""
    X, y = small
    net = dp.Network([4, 8, 3], seed=0)
    with pytest.raises(ValueError, match=r"must hold numbers.*deltaprop.Model"):
        net.fit(X, np.array(["cat", "dog", "emu"])[y], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"label [345] outside the 3 classes 0..2"):
        net.fit(X, y + 3, epochs=1, verbose=0)  # {3, 4, 5}: once mapped through np.unique


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "`epochs` must be >= 1"),
        ({"batch_size": 0}, "`batch_size` must be >= 1"),
        ({"reduction": "avg"}, "`reduction` must be one of mean, sum"),
        ({"validation_split": 1.5}, r"`validation_split` must be in \[0, 1\)"),
        ({"optimizer": "adam"}, "`optimizer` must be a deltaprop.optim optimizer"),
    ],
)
def test_bad_fit_arguments(small, kwargs, message):
    X, y = small
    with pytest.raises((ValueError, TypeError), match=message):
        dp.Network([4, 5, 3]).fit(X, y, verbose=0, **kwargs)


def test_an_epoch_stopped_by_a_callback_reports_over_the_samples_it_saw(small):
    X, y = small
    net = dp.Network([4, 5, 3], dtype="float64", seed=0)
    expected = net.evaluate(X[:20], y[:20])["loss"]  # the first batch, before any step
    stop_after_one = training.LambdaCallback(on_batch_end=lambda e, b, loss: True)
    h = net.fit(X, y, epochs=3, batch_size=20, shuffle=False, optimizer=optim.SGD(lr=0.1),
                verbose=0, callbacks=[stop_after_one])
    # One batch of 20 of the 60 samples was seen: its loss is the epoch's, not a third of it.
    assert h.epoch == [0]
    assert h.loss[0] == pytest.approx(expected, rel=1e-12)


# ----------------------------------------------------------------- sample weights
def _net(seed: int = 3, **kwargs) -> dp.Network:
    return dp.Network([4, 6, 3], activation="tanh", dtype="float64", seed=seed, **kwargs)


@pytest.mark.parametrize("shuffle", [False, True])
def test_integer_weights_train_as_repeated_samples(small, shuffle):
    """Full-batch SGD: weight k is the sample repeated k times, weight 0 the sample dropped,
    over a whole fit — weights, recorded loss and accuracy (rounding only: the batch sums
    run in another order, 1e-10 after 20 steps)."""
    X, y = small
    s = np.random.default_rng(0).integers(0, 4, size=len(X))
    rows = np.repeat(np.arange(len(X)), s)
    weighted, repeated = _net(), _net()
    h1 = weighted.fit(X, y, sample_weight=s, epochs=20, batch_size=None, shuffle=shuffle,
                      optimizer=optim.SGD(lr=0.1, momentum=0.9), verbose=0)
    h2 = repeated.fit(X[rows], y[rows], epochs=20, batch_size=None, shuffle=shuffle,
                      optimizer=optim.SGD(lr=0.1, momentum=0.9), verbose=0)
    for (_, a), (_, b) in zip(weighted.parameters(), repeated.parameters(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h1.loss, h2.loss, rtol=1e-10)
    np.testing.assert_allclose(h1.accuracy, h2.accuracy, rtol=1e-12)


def test_weighted_validation_and_early_stopping_use_the_weights(small):
    """val_loss is the weighted mean on the held-out rows; zero-weight rows do not count."""
    X, y = small
    s_val = np.r_[np.ones(10), np.zeros(10)]
    net = _net()
    hist = net.fit(X[:40], y[:40], validation_data=(X[40:], y[40:], s_val), epochs=3,
                   optimizer=optim.SGD(lr=0.05), patience=5, verbose=0)
    assert hist.val_loss[-1] == pytest.approx(net.evaluate(X[40:50], y[40:50])["loss"],
                                              rel=1e-12)
    assert hist.val_accuracy[-1] == net.evaluate(X[40:50], y[40:50])["accuracy"]


def test_validation_split_takes_the_weights_along(small):
    """The held-out rows keep their own weights (the split is drawn with the net's rng)."""
    import copy

    from deltaprop.preprocessing import split_indices

    X, y = small
    s = np.random.default_rng(1).uniform(0.1, 2.0, len(X))
    net = _net()
    rng = copy.deepcopy(net.rng)  # the generator fit will draw the split from
    hist = net.fit(X, y, sample_weight=s, validation_split=0.25, epochs=2, verbose=0,
                   optimizer=optim.SGD(lr=0.05))
    _, val = split_indices(net.targets(y, len(X)), 0.25, rng, False)
    assert hist.val_loss[-1] == pytest.approx(
        net.evaluate(X[val], y[val], sample_weight=s[val])["loss"], rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"sample_weight": np.zeros(60)}, "`sample_weight` is all zero"),
     ({"sample_weight": np.ones(60), "backprop": lambda ws, r: 0.0},
      "does not combine with a custom `backprop`"),
     ({"validation_data": (np.zeros((2, 4)),)}, "`validation_data` must be")],
    ids=["all zero", "custom backprop", "validation tuple"],
)
def test_bad_weighted_fit_arguments(small, kwargs, message):
    X, y = small
    with pytest.raises(ValueError, match=message):
        _net().fit(X, y, epochs=1, verbose=0, **kwargs)


# ----------------------------------------------------------------- sparse X, schedules
def test_sparse_X_with_a_custom_backprop_is_refused(small):
    sparse = pytest.importorskip("scipy.sparse")
    X, y = small
    with pytest.raises(ValueError, match="sparse `X` does not combine with a custom `backprop`"):
        _net().fit(sparse.csr_matrix(X), y, epochs=1, verbose=0, backprop=lambda ws, r: 0.0)


def test_sparse_X_trains_as_dense(small):
    """The same fit on CSR rows and on the dense matrix: shuffled mini-batches, weights."""
    sparse = pytest.importorskip("scipy.sparse")
    X, y = small
    X = np.where(np.abs(X) > 0.8, X, 0.0)  # mostly zeros
    s = np.random.default_rng(2).uniform(0.5, 1.5, len(X))
    a, b = _net(), _net()
    for net, data in ((a, sparse.csr_matrix(X)), (b, X)):
        net.fit(data, y, sample_weight=s, epochs=4, batch_size=8, verbose=0,
                optimizer=optim.Adam(lr=0.01), validation_data=(data, y))
    for (_, p), (_, q) in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=1e-11, atol=1e-13)


def test_inverse_scaling_rate_follows_the_samples_seen(small):
    X, y = small
    hist = _net().fit(X, y, epochs=4, batch_size=16, verbose=0,
                      optimizer=optim.SGD(lr=0.2), schedule=schedules.InverseScalingLR(0.25))
    # epoch e trains at η0 / (60 e + 1)^p: t counts every sample of the epochs before it
    assert hist.lr == pytest.approx([0.2 / (60 * e + 1) ** 0.25 for e in range(4)])


@pytest.mark.slow
def test_sparse_tfidf_trains_without_the_dense_matrix():
    """20000 × 50000 CSR rows at 0.1 % density (tests/sparse_memory.py) train through
    Network.fit and MLPClassifier in a child process capped at 3 GiB of address space: the
    dense float32 matrix alone would be 3815 MiB. Peak resident memory, imports included,
    stays under 512 MiB (measured ≈ 200 MiB: 8 MiB of CSR rows, the 50000 × 32 first layer,
    its gradient and Adam's moments, and the libraries)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("sparse_memory.py")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True, timeout=600)
    report = json.loads(out.stdout)
    assert report["shape"] == [20000, 50000] and 0.00099 < report["density"] <= 0.001
    assert report["dense_float32_mib"] > report["address_space_limit_mib"]
    assert report["peak_rss_mib"] < 512, report
    assert report["estimator_dtype"] == "float32"
