"""The playground's parts on their own: the settings table, data, features, the trainer's
hooks (L1, seed 002's wrong rule) and curve, the server's socket, and ``deltaprop
playground`` as a real process."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import deltaprop as dp
from deltaprop import gradcheck
from deltaprop.network import Gradients
from deltaprop.playground import data as plane
from deltaprop.playground import features, server, settings
from deltaprop.playground.session import Session
from deltaprop.playground.trainer import Curve, Trainer, gradient_hook, l1_penalty, layer_sum_rule
from deltaprop.training import TrainingDiverged

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ settings
def test_defaults_build_the_default_network() -> None:
    s = Session()
    assert s.config == settings.defaults()
    assert s.run.net.sizes == [2, 4, 2, 2]


def test_a_dataset_brings_its_problem_output_and_loss() -> None:
    config, groups = settings.apply(settings.defaults(), {"dataset": "plane"})
    assert config["problem"] == "regression"
    assert (config["output"], config["loss"]) == ("identity", "mse")
    assert groups == {"data", "network"}
    back, _ = settings.apply(config, {"problem": "classification"})
    assert back["dataset"] == "circles" and back["output"] == "softmax"


def test_per_layer_lists_follow_the_hidden_layers() -> None:
    config, _ = settings.apply(settings.defaults(),
                               {"activation": ["relu", "elu"], "bias": ["unit", "none", "frozen"]})
    longer, _ = settings.apply(config, {"hidden": [4, 2, 3]})
    assert longer["activation"] == ["relu", "elu", "elu"]
    assert longer["bias"] == ["unit", "none", "none", "frozen"]  # the output keeps its own
    shorter, _ = settings.apply(longer, {"hidden": [4]})
    assert shorter["activation"] == ["relu"] and shorter["bias"] == ["unit", "frozen"]
    none, _ = settings.apply(longer, {"hidden": []})
    assert none["activation"] == [] and none["bias"] == ["frozen"]


def test_groups_say_what_a_change_does() -> None:
    base = settings.defaults()
    assert settings.apply(base, {"lr": 0.1})[1] == {"training"}
    assert settings.apply(base, {"discretize": True})[1] == {"view"}
    assert settings.apply(base, {"seed": 4})[1] == {"network"}
    assert settings.apply(base, {"noise": 0.2})[1] == {"data"}
    assert settings.apply(base, {"lr": 0.03})[1] == set()  # no change


def test_every_choice_of_the_table_is_valid_for_the_library() -> None:
    for row in settings.SETTINGS:
        assert row.label and row.group in ("data", "network", "training", "view")
        if row.kind in ("int", "float"):
            assert row.low <= (row.default if row.kind != "sizes" else 1) <= row.high
            assert all(row.low <= o <= row.high for o in row.options)
    for activation in settings.TABLE["activation"].choices:
        Session({"activation": activation, "hidden": [2]})
    for optimizer in settings.TABLE["optimizer"].choices:
        Session({"optimizer": optimizer})


# ------------------------------------------------------------------ data and features
@pytest.mark.parametrize("name", [*settings.CLASSIFICATION, *settings.REGRESSION])
def test_every_data_set_is_seeded_split_and_inside_its_square(name: str) -> None:
    config = {**settings.defaults(), "dataset": name, "noise": 0.1, "n_classes": 4}
    d = plane.generate(config)
    again = plane.generate(config)
    other = plane.generate({**config, "data_seed": 1})
    np.testing.assert_array_equal(d.X_train, again.X_train)
    assert not np.array_equal(d.X_train, other.X_train)
    assert len(d.X_train) + len(d.X_test) == 500 and len(d.X_test) == 250
    X = np.concatenate([d.X_train, d.X_test])
    x1_lo, x1_hi, x2_lo, x2_hi = d.domain
    assert (X[:, 0] > x1_lo).all() and (X[:, 0] < x1_hi).all()
    assert (X[:, 1] > x2_lo).all() and (X[:, 1] < x2_hi).all()
    assert math.isclose(x1_hi - x1_lo, x2_hi - x2_lo)  # a square
    if d.task == "classification":
        k = 4 if name in ("blobs", "spirals") else 2
        assert d.n_classes == k and set(d.y_train.tolist()) == set(range(k))
    else:
        assert d.classes is None and d.y_train.dtype == np.float64


def test_features_are_the_named_columns() -> None:
    points = np.array([[0.5, -2.0], [1.0, 3.0]])
    got = features.transform(points, ["x1", "x2", "x1sq", "x2sq", "x1x2", "sinx1", "sinx2"])
    x1, x2 = points.T
    np.testing.assert_array_equal(
        got, np.column_stack([x1, x2, x1**2, x2**2, x1 * x2, np.sin(x1), np.sin(x2)]))
    with pytest.raises(ValueError, match="unknown feature 'x3'"):
        features.transform(points, ["x3"])


def test_points_added_join_the_training_set() -> None:
    d = plane.generate(settings.defaults())
    more = plane.add_points(d, [[0.1, 0.2, 1], [0.3, 0.4, 0]])
    assert len(more.X_train) == len(d.X_train) + 2 and more.added == 2
    assert more.y_train[-2:].tolist() == [1, 0] and more.y_train.dtype == np.int64
    with pytest.raises(ValueError, match="not a class index"):
        plane.add_points(d, [[0, 0, 0.5]])
    with pytest.raises(ValueError, match="three finite numbers"):
        plane.add_points(d, [[0, float("nan"), 1]])


def test_csv_round_trip_keeps_every_point() -> None:
    d = plane.generate({**settings.defaults(), "noise": 0.1})
    lines = plane.to_csv(d).splitlines()
    assert lines[0] == "x1,x2,label,split" and len(lines) == 501
    x1, x2, label, split = lines[1].split(",")
    assert (float(x1), float(x2), split) == (d.X_train[0, 0], d.X_train[0, 1], "train")
    assert int(label) == d.y_train[0]


# ------------------------------------------------------------------ trainer
def test_l1_adds_lambda_sign_w_to_the_weights_only(tiny_net: dp.Network,
                                                   rng: np.random.Generator) -> None:
    X, y = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)
    plain = tiny_net.backprop(X, y)
    hooked = tiny_net.backprop(X, y)
    l1_penalty(tiny_net, 0.1)(hooked, 5)
    for layer, g0, g1 in zip(tiny_net.layers, plain.dW, hooked.dW, strict=True):
        np.testing.assert_allclose(g1, g0 + 0.1 * np.sign(layer.W), rtol=0, atol=1e-15)
    for g0, g1 in zip(plain.db, hooked.db, strict=True):
        np.testing.assert_array_equal(g0, g1)  # biases: not penalised by default
    with_bias = tiny_net.backprop(X, y)
    l1_penalty(tiny_net, 0.1, decay_bias=True)(with_bias, 5)
    for layer, g0, g1 in zip(tiny_net.layers, plain.db, with_bias.db, strict=True):
        np.testing.assert_allclose(g1, g0 + 0.1 * np.sign(layer.b), rtol=0, atol=1e-15)


def test_l1_skips_the_bias_unit_column(rng: np.random.Generator) -> None:
    net = dp.Network([3, 4, 2], activation="tanh", bias="unit", bias_init=0.3,
                     dtype="float64", seed=0)
    X, y = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)
    plain, hooked = net.backprop(X, y), net.backprop(X, y)
    l1_penalty(net, 0.5)(hooked, 5)
    for g0, g1 in zip(plain.dW, hooked.dW, strict=True):
        np.testing.assert_array_equal(g0[:, -1], g1[:, -1])
        assert not np.array_equal(g0[:, :-1], g1[:, :-1])


def test_layer_sum_rule_is_gradchecks_wrong_rule(rng: np.random.Generator) -> None:
    net = dp.Network([3, 4, 3, 2], activation="tanh", bias=["learned", "unit", "frozen"],
                     dtype="float64", seed=0)
    X, y = rng.normal(size=(6, 3)), rng.integers(0, 2, 6)
    right = net.backprop(X, y, "sum")
    wrong = net.backprop(X, y, "sum")
    layer_sum_rule(net)(wrong, 6)
    report = gradcheck.check(net, X, y, "sum", bias_rule="layer-sum")
    np.testing.assert_array_equal(wrong.db[0], report.analytic[1][0])
    np.testing.assert_array_equal(wrong.dW[1], report.analytic[0][1])  # the unit's column
    np.testing.assert_array_equal(wrong.db[2], report.analytic[1][2])
    # every bias of a layer gets the same sum of the layer's δs; the weights are untouched
    assert wrong.db[0] == pytest.approx([right.delta[0].sum()] * 4, rel=1e-12)
    np.testing.assert_array_equal(wrong.dW[0], right.dW[0])
    np.testing.assert_array_equal(wrong.dW[1][:, :-1], right.dW[1][:, :-1])
    assert not report.passed


def test_gradient_hook_is_l1_then_the_wrong_rule(tiny_net: dp.Network,
                                                 rng: np.random.Generator) -> None:
    X, y = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)
    assert gradient_hook(tiny_net) is None
    both, by_hand = tiny_net.backprop(X, y), tiny_net.backprop(X, y)
    gradient_hook(tiny_net, 0.1, True, "layer-sum")(both, 5)  # type: ignore[misc]
    l1_penalty(tiny_net, 0.1, True)(by_hand, 5)
    layer_sum_rule(tiny_net)(by_hand, 5)
    for g0, g1 in zip([*both.dW, *both.db], [*by_hand.dW, *by_hand.db], strict=True):
        np.testing.assert_array_equal(g0, g1)


def test_trainer_restores_the_last_finite_weights(rng: np.random.Generator) -> None:
    net = dp.Network([2, 8, 1], activation="relu", output="identity", loss="mse",
                     dtype="float64", seed=0)
    X = net.check_X(rng.normal(size=(40, 2)))
    Y = net.targets(rng.normal(size=40) * 100, 40)
    trainer = Trainer(net, dp.optim.SGD(lr=5.0), X, Y, 40, "sum")
    finite_loss: list[np.ndarray] = []  # the parameters of the last step whose loss was finite
    with pytest.raises(TrainingDiverged, match="diverged"):
        for _ in range(100):
            before = [p.copy() for _, p in net.parameters()]
            trainer.step()
            finite_loss = before
    assert trainer.steps > 1
    for (_, p), q in zip(net.parameters(), finite_loss, strict=True):
        assert np.isfinite(p).all()
        np.testing.assert_array_equal(p, q)


def test_curve_stays_bounded_and_keeps_its_ends() -> None:
    curve = Curve(size=10)
    for step in range(1000):
        if curve.due(step):
            curve.add(step, 1.0 / (step + 1), None)
    assert len(curve.step) <= 11 and curve.step[0] == 0 and curve.step[-1] > 999 - curve.every
    assert curve.step == sorted(curve.step)
    assert all(s % curve.every == 0 for s in curve.step)


def test_one_step_changes_nothing_but_the_parameters_by_the_rule() -> None:
    s = Session({"dtype": "float64", "batch_size": 500})  # full batch: no shuffle matters
    net = s.run.net
    before = [p.copy() for _, p in net.parameters()]
    g = net.copy().backprop(s.run.trainer.X, s.run.trainer.Y)
    s.control("step")
    lr = s.config["lr"]
    expected = [w - lr * d for w, d in zip(before[0::2], g.dW, strict=True)]
    for (_, p), e in zip(net.parameters()[0::2], expected, strict=True):
        np.testing.assert_allclose(p, e, rtol=0, atol=1e-15)  # eq. (11)
    assert isinstance(g, Gradients)


# ------------------------------------------------------------------ server and command
def test_bind_reports_a_port_in_use() -> None:
    first = server.bind("127.0.0.1", 0)
    port = first.getsockname()[1]
    try:
        with pytest.raises(OSError, match=f"cannot serve on 127.0.0.1:{port}: address "
                                          "already in use"):
            server.bind("127.0.0.1", port)
        assert server.url("127.0.0.1", first) == f"http://127.0.0.1:{port}/"
    finally:
        first.close()


def test_loopback_names() -> None:
    assert server.is_loopback("127.0.0.1") and server.is_loopback("::1")
    assert server.is_loopback("localhost")
    assert not server.is_loopback("0.0.0.0") and not server.is_loopback("192.168.1.2")


def command(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-m", "deltaprop", "playground", "--no-browser",
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)


def test_command_serves_and_stops_cleanly_on_ctrl_c() -> None:
    # `with` closes the pipes even when a timeout fails the test (else the next test's
    # ResourceWarning fails too); kill() first, so its wait never hangs.
    with command("--port", "0", "--data", "xor", "--hidden", "3", "--seed", "2") as proc:
        try:
            line = proc.stdout.readline()
            assert line.startswith("serving at http://127.0.0.1:") and line.endswith("/\n")
            url = line.split()[-1]
            port = int(url.rsplit(":", 1)[1].strip("/"))
            assert port != 0
            with urllib.request.urlopen(url) as r:
                assert b"deltaprop playground" in r.read()
            with urllib.request.urlopen(url + "api/state") as r:
                state = json.load(r)
            assert state["config"]["dataset"] == "xor" and state["sizes"] == [2, 3, 2]
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert out == "" and "Traceback" not in err


def test_command_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = command("--port", str(port))
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert err == f"error: cannot serve on 127.0.0.1:{port}: address already in use\n"
    assert out == ""


@pytest.mark.parametrize(("args", "fragment"), [
    (["--data", "digits"], "`dataset` must be one of"),
    (["--hidden", "4,40"], "`hidden[1]` must be an integer in 1..16"),
    (["--data", "missing.csv"], "missing.csv"),
])
def test_command_bad_settings_are_one_line_and_exit_1(args: list[str], fragment: str) -> None:
    proc = command("--port", "0", *args)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and fragment in err
    assert err.startswith("error: ") and err.count("\n") == 1 and out == ""


def test_command_warns_when_not_on_loopback() -> None:
    with command("--port", "0", "--host", "0.0.0.0") as proc:  # as above
        try:
            line = proc.stdout.readline()
            assert line.startswith("serving at http://0.0.0.0:")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert "warning: serving on 0.0.0.0: anyone who can reach port" in err
    assert proc.returncode == 0


def test_a_bug_in_the_thread_pauses_with_a_message_and_the_thread_lives_on() -> None:
    s = Session()

    def broken(snap: object) -> bytes:
        raise RuntimeError("no frame today")

    s.frame_builder = broken
    s.start()
    try:
        s.control("play")
        assert s.next_frame(-1, 1.0) is None  # the frame failed
        with s._cond:
            while s.playing:
                s._cond.wait(1.0)
        assert "internal error, training paused: RuntimeError: no frame today" in s.message
        s.frame_builder = lambda snap: b"frame"
        s.control("step")
        assert s.next_frame(-1, 5.0) == (s.version, b"frame")  # the thread still serves
    finally:
        s.stop()


def test_every_page_file_ships_as_package_data() -> None:
    """``pip install .`` (not editable) copies only what package-data names."""
    tomllib = pytest.importorskip("tomllib")
    import fnmatch

    table = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = table["tool"]["setuptools"]["package-data"]["deltaprop.playground"]
    package = ROOT / "src" / "deltaprop" / "playground"
    files = [p.relative_to(package).as_posix() for p in (package / "static").rglob("*")
             if p.is_file()]
    assert "static/index.html" in files and "static/js/main.js" in files
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), name
