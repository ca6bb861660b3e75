"""The playground's HTTP API, driven in-process by Starlette's TestClient.

What must agree with the library: after N steps the parameters the API reports are those of
``Network.fit`` on the same data, batches, seed and settings — bit for bit, because the
playground takes the same steps (``trainer.Trainer`` is ``fit``'s loop cut into steps, and
JSON carries every float exactly) — and the exported model and snippet reproduce them. Every
kind of bad request is a test: a 4xx with a one-line JSON error, and the state unchanged.
"""

from __future__ import annotations

import json
import math
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

import deltaprop as dp
from deltaprop.cli import main
from deltaprop.playground import features, frames
from deltaprop.playground.app import create_app
from deltaprop.playground.session import Session
from deltaprop.training import LambdaCallback
from playground_support import assert_replays, config, control

BASE = "http://127.0.0.1:8000"
WS = "ws://127.0.0.1:8000"


@pytest.fixture
def client():
    app = create_app(Session())
    with TestClient(app, base_url=BASE) as c:
        yield c


def state(client: TestClient) -> dict[str, Any]:
    r = client.get("/api/state")
    assert r.status_code == 200
    return r.json()


def training_data(client: TestClient) -> tuple[np.ndarray, np.ndarray]:
    train = np.array(client.get("/api/data").json()["train"])
    return train[:, :2], train[:, 2]


def fit_steps(net: dp.Network, X: np.ndarray, y: np.ndarray, steps: int, batch_size: int,
              **kwargs: Any) -> None:
    """``net.fit`` stopped after ``steps`` mini-batches."""
    n_batches = math.ceil(len(X) / batch_size)
    stop = LambdaCallback(on_batch_end=lambda e, b, loss: e * n_batches + b + 1 >= steps)
    net.fit(X, y, epochs=math.ceil(steps / n_batches), batch_size=batch_size, verbose=0,
            callbacks=[stop], **kwargs)


# ------------------------------------------------------------------ the state
def test_state_names_the_settings_like_the_library(client: TestClient) -> None:
    s = state(client)
    assert s["step"] == 0 and s["epoch"] == 0 and s["playing"] is False
    cfg = s["config"]
    assert cfg["hidden"] == [4, 2] and cfg["activation"] == ["tanh", "tanh"]
    assert cfg["bias"] == ["learned"] * 3 and cfg["lr"] == 0.03 and cfg["batch_size"] == 10
    assert s["sizes"] == [2, 4, 2, 2]
    assert set(s["loss"]) == {"train", "test"} and s["loss"]["train"] > 0
    net = dp.Network(s["sizes"], activation="tanh", init="glorot_uniform", seed=0)
    for layer, p in zip(net.layers, s["params"], strict=True):
        assert np.array(p["W"]).shape == layer.W.shape  # deltaprop's (n_out, n_in)
        np.testing.assert_array_equal(np.array(p["W"], dtype=np.float32), layer.W)
        np.testing.assert_array_equal(np.array(p["b"], dtype=np.float32), layer.b)


@pytest.mark.parametrize("case", [
    {"dtype": "float64", "optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "batch_size": 7},
    {"dtype": "float32", "optimizer": "adam", "lr": 0.01, "batch_size": 16, "reduction": "sum"},
    {"dtype": "float64", "optimizer": "sgd", "lr": 0.05, "bias": "unit", "weight_decay": 0.01,
     "activation": "relu", "batch_size": 250},
    {"dtype": "float32", "optimizer": "rmsprop", "lr": 0.003, "dataset": "spirals",
     "n_classes": 3, "batch_size": 5, "features": ["x1", "x2", "sinx1"]},
    {"dtype": "float64", "optimizer": "nadam", "lr": 0.01, "dataset": "moons",
     "output": "sigmoid", "loss": "binary_cross_entropy", "batch_size": 12},
    {"dtype": "float64", "optimizer": "sgd", "lr": 0.02, "problem": "regression",
     "dataset": "multigauss", "batch_size": 9, "bias": ["frozen", "learned", "none"]},
])
def test_params_after_n_steps_equal_fit(client: TestClient, case: dict[str, Any]) -> None:
    steps = 83  # more than one epoch and a part: the shuffles must agree too
    s = config(client, hidden=[8, 8], seed=3, **case)
    s = control(client, "step", steps=steps)
    assert s["step"] == steps
    X, y = training_data(client)
    cfg = s["config"]
    if cfg["problem"] == "classification":
        y = y.astype(np.int64)
    net = dp.Network(s["sizes"], activation=cfg["activation"], output=cfg["output"],
                     loss=cfg["loss"], bias=cfg["bias"], init=cfg["init"],
                     dtype=cfg["dtype"], seed=3)
    opt = dp.optim.get(cfg["optimizer"])(lr=cfg["lr"], weight_decay=cfg["weight_decay"],
                                         **({"momentum": cfg["momentum"]}
                                            if cfg["optimizer"] in ("sgd", "rmsprop") else {}))
    fit_steps(net, features.transform(X, cfg["features"]), y, steps,
              min(cfg["batch_size"], len(X)), optimizer=opt, reduction=cfg["reduction"])
    # bit for bit: the same operations on the same arrays in the same order
    for layer, p in zip(net.layers, s["params"], strict=True):
        np.testing.assert_array_equal(np.array(p["W"], dtype=net.dtype), layer.W)
        if layer.b is None:
            assert p["b"] is None
        else:
            np.testing.assert_array_equal(np.array(p["b"], dtype=net.dtype), layer.b)


def test_snippet_replays_a_run_with_changes_on_the_way(client: TestClient,
                                                       tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    config(client, hidden=[5, 3], dtype="float64", seed=1)
    control(client, "step", steps=40)
    config(client, lr=0.3, batch_size=4)  # mid-epoch: ends the epoch
    control(client, "step", steps=31)
    r = client.post("/api/param", json={"layer": 1, "name": "W", "index": [2, 4], "value": 0.25})
    assert r.status_code == 200
    config(client, optimizer="adam", lr=0.01, l1=0.001)
    control(client, "step", steps=17)
    r = client.post("/api/data/points", json={"points": [[0.1, 0.2, 1]]})  # data: starts afresh
    assert r.status_code == 200 and r.json()["step"] == 0
    control(client, "step", steps=12)
    config(client, momentum=0.5, optimizer="sgd")
    s = control(client, "step", steps=9)
    snippet = client.get("/api/export/snippet.py").text
    (tmp_path / "playground-data.csv").write_text(client.get("/api/export/data.csv").text)
    monkeypatch.chdir(tmp_path)
    assert_replays(snippet, s["params"])


def test_snippet_of_generated_data_with_edits(client: TestClient) -> None:
    config(client, hidden=[3], seed=2, bias="unit", dtype="float64", l1=0.01)
    control(client, "step", steps=30)
    client.post("/api/param", json={"layer": 0, "name": "W", "index": [0, 2], "value": -1.5})
    config(client, reduction="sum", lr=0.01)
    s = control(client, "step", steps=26)
    snippet = client.get("/api/export/snippet.py").text
    assert "data.generate(" in snippet and "= -1.5  # set by hand" in snippet
    assert_replays(snippet, s["params"])


def test_snippet_with_a_sigmoid_per_class(client: TestClient) -> None:
    s = config(client, dataset="blobs", n_classes=3, output="sigmoid",
               loss="binary_cross_entropy", dtype="float64")
    assert s["sizes"] == [2, 4, 2, 3]  # one sigmoid per class, one-hot targets
    s = control(client, "step", steps=45)
    snippet = client.get("/api/export/snippet.py").text
    assert "np.eye(3)" in snippet
    assert_replays(snippet, s["params"])
    with client.websocket_connect(f"{WS}/ws") as ws:  # three probability maps
        ws.send_text("next")
        frame = ws.receive_bytes()
    (n,) = struct.unpack("<I", frame[:4])
    keys = {m["key"] for m in json.loads(frame[4 : 4 + n])["maps"]}
    assert {"p/0", "p/1", "p/2", "class"} <= keys and "y" not in keys


def test_reset_keeps_the_first_weights(client: TestClient) -> None:
    first = config(client, seed=5)["params"]
    s = control(client, "step", steps=20)
    assert s["params"] != first
    s = control(client, "reset")
    assert s["step"] == 0 and s["params"] == first and s["history"]["step"] == [0]


def test_play_trains_in_the_thread_and_pause_stops_it(client: TestClient) -> None:
    control(client, "play")
    deadline = time.monotonic() + 10
    while state(client)["step"] < 50 and time.monotonic() < deadline:
        time.sleep(0.02)
    s = control(client, "pause")
    assert s["step"] >= 50 and s["playing"] is False
    assert state(client)["step"] == s["step"]  # paused means paused


def test_divergence_pauses_and_keeps_finite_weights(client: TestClient) -> None:
    config(client, problem="regression", dataset="plane", lr=10.0, reduction="sum",
           batch_size=200, activation="relu", hidden=[16, 16])
    s = control(client, "step", steps=1000)
    assert s["playing"] is False and "diverged" in s["message"]
    assert s["step"] < 1000
    assert all(np.isfinite(np.array(p["W"])).all() for p in s["params"])
    assert s["loss"]["train"] is not None


def test_frames_carry_the_engines_heatmaps(client: TestClient) -> None:
    s = config(client, hidden=[3], features=["x1", "x2", "x1x2"])
    with client.websocket_connect(f"{WS}/ws") as ws:
        ws.send_text("next")
        frame = ws.receive_bytes()
    (n,) = struct.unpack("<I", frame[:4])
    head = json.loads(frame[4 : 4 + n])
    assert head["step"] == s["step"] and head["config"] == s["config"]
    maps = {m["key"]: m for m in head["maps"]}
    assert {"feature/0", "feature/2", "a/0/2", "a/1/1", "p/0", "p/1", "class"} <= set(maps)
    # neuron 2 of layer 1 against the library's own forward pass on the coarse grid
    points = frames.grid(tuple(head["grid"]["domain"]))
    coarse = points.reshape(frames.FINE, frames.FINE, 2)[1::3, 1::3].reshape(-1, 2)
    net = dp.Network([3, 3, 2], activation="tanh", init="glorot_uniform", seed=0)
    A = np.tanh(features.transform(coarse, ["x1", "x2", "x1x2"]) @ net.layers[0].W.T.astype(
        np.float64) + net.layers[0].b)[:, 2]
    m = maps["a/0/2"]
    data = np.frombuffer(frame, np.uint8, m["size"] ** 2, 4 + n + m["offset"])
    shown = m["lo"] + data / 255 * (m["hi"] - m["lo"])
    # quantised to 256 levels over [lo, hi]: within half a level (plus float32's error)
    assert np.abs(shown - A).max() <= (m["hi"] - m["lo"]) / 510 + 1e-6


def test_one_sigmoid_output_is_drawn_as_two_class_probabilities(client: TestClient) -> None:
    s = config(client, dataset="moons", output="sigmoid", loss="binary_cross_entropy")
    assert s["sizes"] == [2, 4, 2, 1]
    with client.websocket_connect(f"{WS}/ws") as ws:
        ws.send_text("next")
        frame = ws.receive_bytes()
    (n,) = struct.unpack("<I", frame[:4])
    maps = {m["key"]: m for m in json.loads(frame[4 : 4 + n])["maps"]}
    assert {"p/0", "p/1", "class", "a/2/0"} <= set(maps)
    p0, p1 = maps["p/0"], maps["p/1"]
    # p/0 = 1 − p/1: their ranges mirror each other
    assert math.isclose(p0["lo"], 1 - p1["hi"], abs_tol=1e-6)
    assert math.isclose(p0["hi"], 1 - p1["lo"], abs_tol=1e-6)


def test_export_reads_back_and_predicts_what_the_api_reports(client: TestClient,
                                                             tmp_path: Path) -> None:
    config(client, hidden=[6, 3], seed=4)
    control(client, "step", steps=300)
    path = tmp_path / "playground.safetensors"
    path.write_bytes(client.get("/api/export/model.safetensors").content)
    net = dp.load(path)
    points = [[0.1, -0.5], [0.9, 0.9], [0.0, 0.0]]
    r = client.post("/api/predict", json={"points": points})
    assert r.status_code == 200
    np.testing.assert_array_equal(net.predict_proba(np.array(points)),
                                  np.array(r.json()["outputs"], dtype=np.float32))
    assert net.predict(np.array(points)).tolist() == r.json()["labels"]
    assert net.meta["features"] == ["x1", "x2"] and net.meta["playground"]["step"] == 300


def test_exported_model_works_with_the_commands(client: TestClient, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(client.get("/api/export/model.safetensors").content)
    for argv in (["info", str(path)], ["evaluate", str(path), "--data", "circles"],
                 ["draw", str(path), "--out", str(tmp_path / "m.png")]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0, capsys.readouterr().err
    assert (tmp_path / "m.png").stat().st_size > 0


def test_csv_upload_becomes_the_data(client: TestClient) -> None:
    rows = "\n".join(f"{i / 10},{(i % 7) / 3},{i % 3}" for i in range(60))
    r = client.post("/api/data/csv", content=f"a,b,label\n{rows}\n",
                    headers={"Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["config"]["dataset"] == "csv" and s["classes"] == ["0", "1", "2"]
    assert s["sizes"][-1] == 3
    data = client.get("/api/data").json()
    assert len(data["train"]) + len(data["test"]) == 60


def test_settings_table_is_served(client: TestClient) -> None:
    table = client.get("/api/settings").json()
    names = [row["name"] for row in table["settings"]]
    assert {"lr", "activation", "bias", "dataset", "hidden", "reduction"} <= set(names)
    assert set(names) == set(state(client)["config"])  # every setting is in the state
    assert len(client.get("/api/datasets").json()) == 7


def test_the_page_and_its_modules_are_served(client: TestClient) -> None:
    assert "data-testid=\"play-pause\"" in client.get("/").text
    for name in ("main", "api", "state", "controls", "network", "heatmap", "chart", "data"):
        r = client.get(f"/static/js/{name}.js")
        assert r.status_code == 200 and ("import" in r.text or "export" in r.text)


# ------------------------------------------------------------------ bad requests
BAD_CONFIG = [
    ({"colour": "red"}, "unknown setting 'colour'"),
    ({"lr": -1}, "`lr` must be > 0"),
    ({"lr": "fast"}, "`lr` must be a number"),
    ({"noise": 2}, "`noise` must be >= 0 and <= 1"),
    ({"hidden": [4, 20]}, "`hidden[1]` must be an integer in 1..16"),
    ({"hidden": [1] * 7}, "at most 6 layers"),
    ({"activation": "softmax"}, "`activation` must be one of"),
    ({"activation": ["tanh"]}, "`activation` needs 2 entries"),
    ({"bias": "sometimes"}, "`bias` must be one of"),
    ({"features": []}, "one or more distinct features"),
    ({"features": ["x3"]}, "`features` must be one of"),
    ({"batch_size": 0}, "`batch_size` must be in 1..2000"),
    ({"discretize": 1}, "`discretize` must be true or false"),
    ({"dataset": "plane", "problem": "classification"}, "is a regression problem"),
    ({"problem": "regression", "loss": "cross_entropy"}, "regression needs loss 'mse'"),
    ({"output": "softmax", "loss": "binary_cross_entropy"}, "does not fit loss"),
    ({"dataset": "csv"}, "needs an uploaded CSV"),
    ({"loss": "mse", "output": "identity"}, "classification needs loss cross_entropy"),
]


@pytest.mark.parametrize(("body", "fragment"), BAD_CONFIG)
def test_bad_config_is_a_400_and_changes_nothing(client: TestClient, body: dict[str, Any],
                                                 fragment: str) -> None:
    control(client, "step", steps=3)
    before = state(client)
    r = client.post("/api/config", json=body)
    assert r.status_code == 400
    assert fragment in r.json()["error"] and "\n" not in r.json()["error"]
    after = state(client)
    assert after["config"] == before["config"] and after["params"] == before["params"]
    assert after["step"] == 3


BAD_REQUESTS = [
    ("/api/config", {"content": b"{lr: 1", "headers": {"Content-Type": "application/json"}},
     400, "malformed JSON"),
    ("/api/config", {"content": b"[1, 2]", "headers": {"Content-Type": "application/json"}},
     400, "must be a JSON object"),
    ("/api/config", {"content": b"lr=1", "headers": {"Content-Type": "text/plain"}},
     415, "expected Content-Type application/json"),
    ("/api/config", {"content": b"{" + b" " * 200_000 + b"}",
                     "headers": {"Content-Type": "application/json"}}, 413, "over the limit"),
    ("/api/control", {"json": {"action": "rewind"}}, 400, "`action` must be"),
    ("/api/control", {"json": {"action": "step", "steps": 0}}, 400, "`steps` must be"),
    ("/api/control", {"json": {"action": "play", "speed": 2}}, 400, "unknown field 'speed'"),
    ("/api/param", {"json": {"layer": 7, "name": "W", "index": [0, 0], "value": 1}}, 400,
     "`layer` must be 0..2"),
    ("/api/param", {"json": {"layer": 0, "name": "W", "index": [9, 0], "value": 1}}, 400,
     "`index` must be"),
    ("/api/param", {"json": {"layer": 0, "name": "Q", "index": [0], "value": 1}}, 400,
     "has no parameter 'Q'"),
    ("/api/param", {"json": {"layer": 0, "name": "b", "index": [0], "value": "NaN"}}, 400,
     "`value` must be a finite number"),
    ("/api/predict", {"json": {"points": [[1, 2, 3]]}}, 400, "`points` must be a list"),
    ("/api/data/points", {"json": {"points": [[0, 0, 5]]}}, 400, "not a class index"),
    ("/api/data/points", {"json": {"points": "many"}}, 400, "non-empty list"),
    ("/api/data/csv", {"content": b"a,b,c,label\n1,2,3,0\n4,5,6,1\n7,8,9,0\n1,1,1,1\n"},
     400, "needs 2 feature columns"),
    ("/api/data/csv", {"content": b"a,b,label\n1,x,0\n4,5,1\n"}, 400, "upload.csv"),
    ("/api/data/csv", {"content": b""}, 400, "upload.csv"),
    ("/api/data/csv", {"content": b"a,b,label\n" + b"1,2,0\n" * 300_000}, 413,
     "over the limit"),
    ("/api/data/csv", {"content": b"a,b,label\n" + b"1,2,0\n3,4,1\n" * 2600}, 400,
     "at most 5000 rows"),
]


@pytest.mark.parametrize(("path", "request_", "status", "fragment"), BAD_REQUESTS)
def test_bad_request_is_a_4xx_with_one_line(client: TestClient, path: str,
                                            request_: dict[str, Any], status: int,
                                            fragment: str) -> None:
    before = state(client)
    r = client.post(path, **request_)
    assert r.status_code == status, r.text
    message = r.json()["error"]
    assert fragment in message and "\n" not in message
    after = state(client)
    assert after["config"] == before["config"] and after["params"] == before["params"]


def test_unknown_route_and_method_are_json_errors(client: TestClient) -> None:
    r = client.get("/api/nothing")
    assert r.status_code == 404 and "/api/nothing" in r.json()["error"]
    r = client.get("/api/config")
    assert r.status_code == 405 and "error" in r.json()
    r = client.get("/api/export/weights.bin")
    assert r.status_code == 404 and "unknown export" in r.json()["error"]


def test_foreign_origin_is_refused(client: TestClient) -> None:
    r = client.post("/api/control", json={"action": "play"},
                    headers={"Origin": "http://evil.example"})
    assert r.status_code == 403 and "cross-origin" in r.json()["error"]
    assert state(client)["playing"] is False
    r = client.post("/api/control", json={"action": "step"}, headers={"Origin": BASE})
    assert r.status_code == 200  # the page's own origin
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(
            f"{WS}/ws", headers={"Origin": "http://evil.example"}) as ws:
        ws.send_text("next")
        ws.receive_bytes()


def test_foreign_host_is_refused() -> None:
    with TestClient(create_app(Session(), start=False), base_url="http://rebound.example") as c:
        r = c.get("/api/state")
    assert r.status_code == 403 and "host" in r.json()["error"]
