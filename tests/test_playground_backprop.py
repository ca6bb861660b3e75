"""The playground's view of backprop through its API: /api/backprop, step mode's stages, the
selected parameter's breakdown, /api/gradcheck and the bias-mode comparison (issue 14).

What must agree with the library: every z, a, δ and gradient that ``GET /api/backprop``
reports equals :meth:`Network.backprop` on a network loaded with the playground's parameters
and the same inputs (float64), and ``dW_update``/``db_update`` is exactly what the next step
then subtracts. Asking changes nothing.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from deltaprop.playground import compare, features, frames, selection
from deltaprop.playground.app import create_app
from deltaprop.playground.session import Session
from playground_support import assert_replays, config, control, loaded

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def client():
    with TestClient(create_app(Session()), base_url=BASE) as c:
        yield c


def view(client: TestClient, query: str) -> dict[str, Any]:
    r = client.get(f"/api/backprop?{query}")
    assert r.status_code == 200, r.text
    return r.json()


def close(got: Any, want: np.ndarray) -> None:
    """Equal to 1e-12 relative, measured against the array's largest entry (entries near 0
    have no relative precision of their own: BLAS may sum in another order)."""
    want = np.asarray(want, dtype=np.float64)
    scale = max(float(np.abs(want).max(initial=0.0)), 1e-300)
    np.testing.assert_allclose(np.array(got, dtype=np.float64), want, rtol=1e-12,
                               atol=1e-12 * scale)


CASES = [
    {"dtype": "float64"},
    {"dtype": "float32", "hidden": [5, 3], "activation": "relu"},
    {"dtype": "float64", "bias": ["unit", "frozen", "none"], "reduction": "sum"},
    {"dtype": "float64", "dataset": "moons", "output": "sigmoid",
     "loss": "binary_cross_entropy", "features": ["x1", "x2", "x1x2"]},
    {"dtype": "float64", "problem": "regression", "dataset": "multigauss", "hidden": [6]},
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("query", ["batch=current", "sample=17"])
def test_backprop_equals_the_library_and_changes_nothing(client: TestClient,
                                                         case: dict[str, Any],
                                                         query: str) -> None:
    config(client, seed=2, **case)
    before = control(client, "step", steps=13)
    v = view(client, query)
    after = client.get("/api/state").json()
    assert after["params"] == before["params"] and after["step"] == before["step"] == v["step"]
    assert after["version"] == before["version"]
    train = np.array(client.get("/api/data").json()["train"])
    rows = v["rows"]
    assert v["m"] == len(rows) == (1 if query.startswith("sample") else 10)
    if query.startswith("sample"):
        assert rows == [17]
    net = loaded(before)
    # the inputs as the network sees them: the features, in its dtype
    X = features.transform(train[rows, :2], before["config"]["features"]).astype(
        before["config"]["dtype"]).astype(np.float64)
    close(v["inputs"], X)
    close(v["points"], train[rows, :2])
    g = net.backprop(X, np.array(v["targets"]), before["config"]["reduction"])
    assert v["reduction"] == before["config"]["reduction"] and len(v["layers"]) == len(g.dW)
    assert v["loss"] == pytest.approx(g.loss, rel=1e-12)
    for i, layer in enumerate(v["layers"]):
        assert layer["l"] == i + 1
        close(layer["z"], g.Z[i])
        close(layer["a"], g.A[i])
        close(layer["delta"], g.delta[i])
        close(layer["dW"], g.dW[i])
        if g.db[i] is None:
            assert layer["db"] is None and layer["db_update"] is None
        else:
            close(layer["db"], g.db[i])
        close(layer["delta_sum"], g.delta[i].sum(axis=0))


@pytest.mark.parametrize("case", [
    {"dtype": "float64"},
    {"dtype": "float32", "optimizer": "sgd", "momentum": 0.9, "l1": 0.01},
    {"dtype": "float64", "optimizer": "adam", "lr": 0.01, "weight_decay": 0.01},
    {"dtype": "float32", "bias": ["frozen", "unit", "learned"], "bias_rule": "layer-sum",
     "batch_size": 7},
])
def test_the_update_is_what_the_next_step_subtracts(client: TestClient,
                                                    case: dict[str, Any]) -> None:
    config(client, **case)
    control(client, "step", steps=24)  # 250 rows in batches: the next batch is mid-epoch
    before = client.get("/api/state").json()
    v = view(client, "batch=current")
    after = control(client, "step")
    for p, q, layer in zip(before["params"], after["params"], v["layers"], strict=True):
        # the parameters' change, to the last bit (the difference of two floats of the
        # network's dtype is exact in float64)
        np.testing.assert_array_equal(np.subtract(p["W"], q["W"]), layer["dW_update"])
        np.testing.assert_array_equal(q["W"], layer["W_new"])
        if p["b"] is not None:
            np.testing.assert_array_equal(np.subtract(p["b"], q["b"]), layer["db_update"])
        if layer["bias"] == "frozen":  # its gradient is shown, never applied
            assert p["b"] == q["b"] and not any(layer["db_update"])
            assert any(layer["db"]) and layer["bias_applied"] is False


def test_plain_sgd_subtracts_alpha_times_the_gradient(client: TestClient) -> None:
    s = config(client, dtype="float64", lr=0.1)
    v = view(client, "batch=current")
    assert v["plain_sgd"] is True and v["lr"] == 0.1
    for p, layer in zip(s["params"], v["layers"], strict=True):
        W = np.array(p["W"])
        # (11): the update is α ∂C/∂w up to the rounding of w − α ∂C/∂w: half an ulp of w
        # (and of the new w), at most one ulp of w in all
        err = np.abs(np.array(layer["dW_update"]) - 0.1 * np.array(layer["dW"]))
        assert (err <= np.spacing(np.abs(W))).all()


def test_breakdown_sums_over_samples_and_marks_the_reduction(client: TestClient) -> None:
    for reduction in ("mean", "sum"):
        config(client, dtype="float64", reduction=reduction, batch_size=8)
        v = view(client, "batch=current&focus=2,1,3")
        b = v["breakdown"]
        layer, prev = v["layers"][1], v["layers"][0]
        delta = np.array(layer["delta"])[:, 0]
        a = np.array(prev["a"])[:, 2]
        assert b["kind"] == "w" and b["m"] == 8 and b["used"] == reduction
        close(b["terms"], delta * a)  # (10) per sample: δ_k a_j
        assert b["sum"] == pytest.approx((delta * a).sum(), rel=1e-12)
        assert b["mean"] == pytest.approx((delta * a).mean(), rel=1e-12)
        used = b["sum"] if reduction == "sum" else b["mean"]
        assert b["gradient"] == pytest.approx(used, rel=1e-12)
        assert b["gradient"] == layer["dW"][0][2]
        bias = view(client, "batch=current&focus=2,1")["breakdown"]
        assert bias["kind"] == "b" and bias["a"] is None
        close(bias["terms"], delta)  # (14) per sample: δ_k, never a sum over neurons
        assert bias["gradient"] == layer["db"][0]


def test_unit_and_learned_show_the_same_numbers(client: TestClient) -> None:
    views = {}
    for bias in ("learned", "unit"):
        config(client, dtype="float64", bias=bias)
        control(client, "step", steps=40)
        views[bias] = view(client, "sample=5&focus=3,2")
    learned, unit = views["learned"], views["unit"]
    # the same to rounding: the bias unit's term is added inside the matrix product, the
    # bias after it, so the last bit may differ (1e-12 is far below the 4 digits shown)
    for a, b in zip(learned["layers"], unit["layers"], strict=True):
        for key in ("z", "a", "delta"):
            close(b[key], a[key])
        W, Wu = np.array(a["W"]), np.array(b["W"])
        close(Wu[:, :-1], W)
        close(Wu[:, -1], a["b"])  # the unit's weights are the biases
        close(np.array(b["dW"])[:, -1], a["db"])  # (10) with a = 1 is (14)
        close(np.array(b["dW_update"])[:, -1], a["db_update"])
    assert unit["breakdown"]["gradient"] == pytest.approx(learned["breakdown"]["gradient"],
                                                          rel=1e-12)


def test_stages_follow_the_seed_order() -> None:
    got = [(s["kind"], s["layer"], s["equations"]) for s in selection.stages(3)]
    assert got == [
        ("forward", 1, ["(2)"]), ("forward", 2, ["(2)"]), ("forward", 3, ["(2)"]),
        ("output", 3, ["(9)"]),
        ("gradients", 3, ["(10)", "(14)"]), ("backward", 2, ["(8)"]),
        ("gradients", 2, ["(10)", "(14)"]), ("backward", 1, ["(8)"]),
        ("gradients", 1, ["(10)", "(14)"]),
        ("update", None, ["(11)", "(15)"]),
    ]
    assert len(selection.stages(1)) == selection.stage_count(1) == 4


def test_next_stage_pauses_walks_the_stages_then_takes_the_step(client: TestClient) -> None:
    control(client, "play")
    s = control(client, "next-stage")
    assert s["playing"] is False and s["config"]["step_mode"] is True
    assert s["config"]["stage"] == 0
    step = s["step"]
    for stage in range(1, 10):  # L = 3: stages 0 … 9
        s = control(client, "next-stage")
        assert s["config"]["stage"] == stage and s["step"] == step
    s = control(client, "next-stage")  # after the updates: the step is taken
    assert s["config"]["stage"] == 0 and s["step"] == step + 1


def test_a_stage_change_pauses_training(client: TestClient) -> None:
    control(client, "play")
    s = config(client, step_mode=True, stage=3)
    assert s["playing"] is False and s["config"]["stage"] == 3


BAD_QUERIES = [
    ("", "give one of sample=I"),
    ("sample=1&batch=current", "give one of sample=I"),
    ("batch=next", "batch must be 'current'"),
    ("sample=-1", "sample must be a training sample's index"),
    ("sample=250", "sample 250 does not exist; the training set has samples 0..249"),
    ("sample=0&focus=4,1", "layer 4 does not exist; the network has layers 1..3"),
    ("sample=0&focus=2,3", "neuron 3 of layer 2 does not exist; layer 2 has neurons 1..2"),
    ("sample=0&focus=2,1,5", "input 5 of layer 2 does not exist; layer 2 has inputs 1..4"),
    ("sample=0&focus=x", "focus must be l,k or l,k,j"),
    ("sample=0&focus=1", "`focus` must be [l, k]"),
    ("sample=0&layer=1", "unknown parameter 'layer'"),
]


@pytest.mark.parametrize(("query", "fragment"), BAD_QUERIES)
@pytest.mark.parametrize("route", ["backprop", "gradcheck"])
def test_bad_backprop_request_is_a_400_naming_it(client: TestClient, route: str, query: str,
                                                  fragment: str) -> None:
    before = client.get("/api/state").json()
    r = client.get(f"/api/{route}?{query}")
    assert r.status_code == 400 and fragment in r.json()["error"], r.text
    assert "\n" not in r.json()["error"]
    assert client.get("/api/state").json() == before


@pytest.mark.parametrize(("body", "fragment"), [
    ({"focus": [4, 1]}, "layer 4 does not exist"),
    ({"focus": [1, 5, 1]}, "neuron 5 of layer 1 does not exist"),
    ({"focus": [1, 2, 3]}, "input 3 of layer 1 does not exist; layer 1 has inputs 1..2"),
    ({"focus": [0, 1]}, "`focus` must be [l, k]"),
    ({"sample": 400}, "sample 400 does not exist"),
    ({"stage": 10}, "stage 10 does not exist; a network of 3 layers has stages 0..9"),
    ({"node_view": "b"}, "`node_view` must be one of a, z, delta, db"),
    ({"bias_rule": "sum"}, "`bias_rule` must be one of delta, layer-sum"),
])
def test_bad_view_setting_is_a_400_and_changes_nothing(client: TestClient, body: dict[str, Any],
                                                        fragment: str) -> None:
    before = client.get("/api/state").json()
    r = client.post("/api/config", json=body)
    assert r.status_code == 400 and fragment in r.json()["error"], r.text
    assert client.get("/api/state").json() == before


def test_a_selection_that_no_longer_exists_is_cleared_with_a_message(
        client: TestClient) -> None:
    config(client, step_mode=True, focus=[2, 2, 4], stage=9)
    s = config(client, hidden=[3, 2])  # layer 2 keeps 2 neurons but loses its 4th input
    assert s["config"]["focus"] == [] and "input 4 of layer 2 does not exist" in s["message"]
    assert s["config"]["stage"] == 9
    config(client, focus=[2, 2], sample=240)
    s = config(client, hidden=[3])  # L = 2: stage 9 is gone, and layer 2 has 2 neurons still
    assert s["config"]["stage"] == 0 and s["config"]["focus"] == [2, 2]
    s = config(client, test_size=0.9)  # 50 training samples: sample 240 is gone
    assert s["config"]["sample"] == 0 and "sample 240 does not exist" in s["message"]
    assert client.get("/api/backprop?sample=0&focus=2,2").status_code == 200


def test_gradcheck_of_the_selected_parameter(client: TestClient) -> None:
    config(client, dtype="float32", bias=["learned", "unit", "none"])
    control(client, "step", steps=30)
    v = view(client, "batch=current")
    for focus, want in (("1,3,2", v["layers"][0]["dW"][2][1]),
                        ("1,4", v["layers"][0]["db"][3]),
                        ("2,2", v["layers"][1]["dW"][1][4])):  # the bias unit's weight
        r = client.get(f"/api/gradcheck?batch=current&focus={focus}")
        assert r.status_code == 200, r.text
        c = r.json()
        assert c["analytic"] == pytest.approx(want, rel=1e-12)
        assert c["passed"] and c["passed_all"] and c["rel_error"] <= c["tol"] == 1e-6
        assert abs(c["analytic"] - c["numerical"]) == pytest.approx(c["abs_error"])
    r = client.get("/api/gradcheck?batch=current&focus=3,1")
    assert r.status_code == 400 and "has no bias (bias mode none)" in r.json()["error"]
    config(client, bias_rule="layer-sum")  # seed 002's mistaken rule fails the check
    c = client.get("/api/gradcheck?batch=current&focus=1,4").json()
    assert c["bias_rule"] == "layer-sum" and not c["passed"] and c["rel_error"] > 1e-3


def test_frames_carry_the_view_of_backprop(client: TestClient) -> None:
    config(client, step_mode=True, inspect="sample", sample=3, focus=[3, 1],
           node_view="z")
    with client.websocket_connect("ws://127.0.0.1:8000/ws") as ws:
        ws.send_text("next")
        frame = ws.receive_bytes()
    (n,) = struct.unpack("<I", frame[:4])
    head = json.loads(frame[4 : 4 + n])
    assert {m["key"] for m in head["maps"]} >= {"z/0/0", "z/1/1", "z/2/1", "a/0/0"}
    v = view(client, "sample=3&focus=3,1")
    assert head["backprop"]["layers"] == v["layers"]
    assert head["backprop"]["breakdown"] == v["breakdown"]
    assert [s["name"] for s in head["backprop"]["stages"]] == [s["name"] for s in v["stages"]]


def test_a_frame_carries_at_most_a_few_samples_but_sums_over_all(client: TestClient) -> None:
    config(client, batch_size=100, node_view="delta")
    with client.websocket_connect("ws://127.0.0.1:8000/ws") as ws:
        ws.send_text("next")
        frame = ws.receive_bytes()
    (n,) = struct.unpack("<I", frame[:4])
    shown = json.loads(frame[4 : 4 + n])["backprop"]
    full = view(client, "batch=current")
    assert shown["m"] == full["m"] == 100 and shown["shown"] == len(shown["rows"]) == 16
    assert shown["layers"][0]["delta"] == full["layers"][0]["delta"][:16]
    assert shown["layers"][0]["dW"] == full["layers"][0]["dW"]


def head_of(frame: bytes) -> dict[str, Any]:
    (n,) = struct.unpack("<I", frame[:4])
    return json.loads(frame[4 : 4 + n])


def test_while_playing_the_view_is_refreshed_at_most_every_view_seconds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    s = Session({"node_view": "delta", "edge_view": "update"})
    builder = frames.Builder()
    clock = [100.0]
    monkeypatch.setattr(frames.time, "monotonic", lambda: clock[0])

    def frame() -> dict[str, Any]:
        return head_of(builder(s.snapshot(s._view_inspect())))

    s.playing = True  # no thread runs: the test takes the steps
    assert frame()["backprop"]["step"] == 0
    s._step()
    clock[0] += frames.VIEW_SECONDS / 2
    head = frame()
    assert head["step"] == 1 and head["backprop"]["step"] == 0  # the last view, said so
    clock[0] += frames.VIEW_SECONDS
    assert frame()["backprop"]["step"] == 1
    s.playing = False  # paused: every frame its own view
    s._step()
    head = frame()
    assert head["step"] == head["backprop"]["step"] == 2
    assert head["backprop"] == json.loads(frames.backprop_json(s.snapshot(s._view_inspect())))


def test_snippet_replays_the_wrong_rule(client: TestClient) -> None:
    config(client, hidden=[3, 3], dtype="float64", bias_rule="layer-sum",
           bias=["learned", "unit", "learned"])
    control(client, "step", steps=33)
    s = config(client, bias_rule="delta", l1=0.01)
    s = control(client, "step", steps=20)
    snippet = client.get("/api/export/snippet.py").text
    assert "'layer-sum')" in snippet
    assert_replays(snippet, s["params"])


def test_compare_trains_the_same_first_weights_in_each_mode(client: TestClient) -> None:
    r = client.post("/api/compare", json={"steps": compare.STEPS})
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["same_start"] is True and result["steps"] == compare.STEPS
    modes = {m["mode"]: m for m in result["modes"]}
    assert list(modes) == ["learned", "unit", "frozen", "none", "wrong rule"]
    # circles: without a bias a tanh network is odd, f(−x) = −f(x), but the classes are
    # symmetric, so no better than chance; with one it learns them (1.0 by step 2000)
    for name in ("learned", "unit"):
        assert modes[name]["accuracy"]["test"] >= 0.95
    for name in ("frozen", "none"):
        assert modes[name]["accuracy"]["test"] <= 0.7
    for a, b in (("learned", "unit"), ("frozen", "none")):  # unit ≡ learned; b = 0 ≡ no b
        for key in ("train", "test"):  # float32, to rounding
            np.testing.assert_allclose(modes[a]["curve"][key], modes[b]["curve"][key],
                                       rtol=1e-5)
    assert len(modes["learned"]["maps"]) == 3  # p/0, p/1, class
    assert client.get("/api/state").json()["step"] == 0  # the session is untouched


@pytest.mark.parametrize("steps", [0, 20_001, "10", True])
def test_compare_refuses_bad_steps(client: TestClient, steps: Any) -> None:
    r = client.post("/api/compare", json={"steps": steps})
    assert r.status_code == 400 and "`steps` must be an integer in 1..20000" in r.json()["error"]
