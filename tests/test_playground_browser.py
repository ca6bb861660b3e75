"""The playground page in a real browser: Playwright drives Debian's Chromium, headless.

Each test gets a fresh playground (a Session served by uvicorn on a free port of
127.0.0.1, in a thread) and a fresh page; one Chromium serves the module
(``playground_support``'s fixtures, shared through conftest.py). Screenshots go to the
test's temporary folder, or with ``DELTAPROP_UPDATE_SCREENSHOTS=1`` to docs/img/.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

import deltaprop as dp
from playground_support import MARKS, Page, Playground

pytestmark = MARKS


def test_page_loads_without_console_errors(page: Page, playground: Playground,
                                           shots: Path) -> None:
    page.test_id("play-pause").click()
    page.page.wait_for_function(
        "Number(document.querySelector('[data-testid=step-count]').textContent) > 3000")
    page.test_id("play-pause").click()
    page.settle()
    assert page.errors == []
    page.page.screenshot(path=str(shots / "playground.png"))


def test_play_raises_the_step_count_and_lowers_the_training_loss(page: Page) -> None:
    assert page.number("step-count") == 0
    loss_before = page.number("loss-train")
    page.test_id("play-pause").click()
    page.page.wait_for_function(
        "Number(document.querySelector('[data-testid=step-count]').textContent) > 500")
    page.test_id("play-pause").click()
    page.settle()
    assert page.number("step-count") > 500
    # circles at lr 0.03: the loss starts near ln 2 = 0.69 and is well below half of it by
    # step 1000 (0.42 at step 1000 in the defaults; it only goes on falling)
    assert page.number("loss-train") < 0.8 * loss_before


def test_frames_while_playing_leave_the_unchanged_parts_of_the_page_alone(
        page: Page, playground: Playground) -> None:
    # Rewriting the controls, the legend or a button with the same text on every frame made
    # the browser lay the page out again per frame (most of a frame's cost without a GPU).
    # A MutationObserver names the element (its test id or id) each change happened in.
    page.page.evaluate("""() => {
        window.changed = new Set();
        new MutationObserver((records) => {
          for (const r of records) {
            const node = r.target.nodeType === 1 ? r.target : r.target.parentElement;
            const owner = node.closest('[data-testid], [id]');
            window.changed.add(owner ? owner.dataset.testid || owner.id : node.tagName);
          }
        }).observe(document.body, { subtree: true, childList: true, attributes: true,
                                    characterData: true });
    }""")
    playground.post("api/control", {"action": "play"})
    page.page.wait_for_function("window.deltaprop.stats.frames > 0 && "
                                "Number(document.querySelector('[data-testid=step-count]')"
                                ".textContent) > 300")
    start = page.page.evaluate("window.deltaprop.stats.frames")
    page.page.evaluate("window.changed.clear()")
    page.page.wait_for_function(f"window.deltaprop.stats.frames >= {start + 10}")
    changed = set(page.page.evaluate("[...window.changed]"))
    playground.post("api/control", {"action": "pause"})
    assert {"step-count", "loss-train"} <= changed  # what a frame changes is seen changing
    untouched = {"view-legend", "step-mode", "layer-count", "top-controls", "data-controls",
                 "network-controls", "output-controls", "view-controls", "stepper-body",
                 "play-pause", "thumbs"}
    assert not changed & untouched, changed & untouched
    assert page.errors == []


def test_one_step_and_reset(page: Page, playground: Playground) -> None:
    first = playground.get("api/state")["params"]
    page.test_id("step").click()
    page.page.wait_for_function("document.querySelector('[data-testid=step-count]')"
                                ".textContent === '1'")
    page.test_id("step").click()
    page.page.wait_for_function("document.querySelector('[data-testid=step-count]')"
                                ".textContent === '2'")
    page.test_id("reset").click()
    page.page.wait_for_function("document.querySelector('[data-testid=step-count]')"
                                ".textContent === '0'")
    assert playground.get("api/state")["params"] == first  # the same first weights


def neurons_and_edges(page: Page, playground: Playground) -> tuple[int, int, list[int]]:
    page.settle()
    sizes = playground.get("api/state")["sizes"]
    return page.count("neuron"), page.count("edge"), sizes


def expected(sizes: list[int]) -> tuple[int, int]:
    return sum(sizes[1:]), sum(a * b for a, b in itertools.pairwise(sizes))


def test_neuron_nodes_follow_neurons_and_layers(page: Page, playground: Playground) -> None:
    n, e, sizes = neurons_and_edges(page, playground)
    assert sizes == [2, 4, 2, 2] and (n, e) == expected(sizes) == (8, 20)
    page.page.locator('[data-testid=add-neuron][data-layer="1"]').click()
    page.page.wait_for_function("document.querySelectorAll('[data-testid=neuron]').length === 9")
    page.test_id("add-layer").click()
    page.page.wait_for_function("document.querySelectorAll('[data-testid=neuron]').length === 11")
    n, e, sizes = neurons_and_edges(page, playground)
    assert sizes == [2, 5, 2, 2, 2] and (n, e) == expected(sizes)
    page.page.locator('[data-testid=remove-neuron][data-layer="2"]').click()
    page.test_id("remove-layer").click()
    page.page.wait_for_function("document.querySelectorAll('[data-testid=neuron]').length === 8")
    n, e, sizes = neurons_and_edges(page, playground)
    assert sizes == [2, 5, 1, 2] and (n, e) == expected(sizes)
    page.test_id("set-hidden").fill("16,16,16,16,16,16")
    page.test_id("set-hidden").press("Enter")
    page.page.wait_for_function("document.querySelectorAll('[data-testid=neuron]').length === 98")
    n, e, sizes = neurons_and_edges(page, playground)
    assert sizes == [2, *[16] * 6, 2] and (n, e) == expected(sizes)


def test_bias_unit_is_drawn_as_its_own_node(page: Page, playground: Playground,
                                            shots: Path) -> None:
    assert page.count("bias-unit") == 0
    page.page.locator('[data-testid="set-bias-2"]').select_option("unit")
    page.page.wait_for_function("document.querySelectorAll('[data-testid=bias-unit]').length === 1")
    unit = page.page.locator("[data-testid=bias-unit]")
    assert unit.get_attribute("data-layer") == "2" and unit.inner_text() == "1"
    # the unit's edges: one into each of layer 2's neurons
    assert page.page.locator('[data-testid=edge][data-from="unit"]').count() == 2
    assert playground.get("api/state")["config"]["bias"] == ["learned", "unit", "learned"]
    page.test_id("set-bias").select_option("unit")  # every layer
    page.page.wait_for_function("document.querySelectorAll('[data-testid=bias-unit]').length === 3")
    page.test_id("play-pause").click()
    page.page.wait_for_function(
        "Number(document.querySelector('[data-testid=step-count]').textContent) > 1500")
    page.test_id("play-pause").click()
    page.settle()
    page.page.screenshot(path=str(shots / "playground-bias-unit.png"))


def test_the_url_reopens_the_same_configuration(browser: Any, page: Page,
                                                 playground: Playground) -> None:
    page.test_id("dataset-thumb").and_(page.page.locator('[data-value="spirals"]')).click()
    page.test_id("set-n_classes").select_option("3")
    page.test_id("set-lr").select_option("0.1")
    page.test_id("set-optimizer").select_option("adam")
    page.page.locator('[data-testid="set-activation-2"]').select_option("relu")
    page.page.locator('[data-testid="set-bias-1"]').select_option("frozen")
    page.page.locator('[data-testid=feature][data-feature="x1x2"]').click()
    page.test_id("set-discretize").check()
    page.test_id("set-reduction").select_option("sum")
    page.page.wait_for_function("location.hash.includes('reduction=sum')")
    page.settle()
    wanted = playground.get("api/state")["config"]
    assert wanted["dataset"] == "spirals" and wanted["activation"] == ["tanh", "relu"]
    assert wanted["features"] == ["x1", "x2", "x1x2"] and wanted["discretize"] is True
    link = page.page.url
    assert "#" in link
    other = Playground()  # another machine's playground, at its defaults
    try:
        assert other.get("api/state")["config"] != wanted
        second = Page(browser, other.url + link[link.index("#"):])
        second.page.wait_for_function("document.querySelectorAll('[data-testid=neuron]')"
                                      ".length === 9")
        assert other.get("api/state")["config"] == wanted
        assert second.page.url.endswith(link[link.index("#"):])
        assert second.errors == []
        second.close()
    finally:
        other.stop()


def test_export_writes_a_model_that_predicts_what_the_api_reports(page: Page,
                                                                  playground: Playground,
                                                                  tmp_path: Path) -> None:
    page.test_id("play-pause").click()
    page.page.wait_for_function(
        "Number(document.querySelector('[data-testid=step-count]').textContent) > 200")
    page.test_id("play-pause").click()
    page.settle()
    with page.page.expect_download() as download:
        page.test_id("export-model").click()
    path = tmp_path / "exported.safetensors"
    download.value.save_as(path)
    net = dp.load(path)
    points = np.random.default_rng(0).uniform(-1.2, 1.2, size=(50, 2)).tolist()
    reported = playground.post("api/predict", {"points": points})
    assert reported["step"] == playground.get("api/state")["step"]
    np.testing.assert_array_equal(net.predict_proba(np.array(points)),
                                  np.array(reported["outputs"], dtype=np.float32))
    assert net.predict(np.array(points)).tolist() == reported["labels"]


def test_a_bad_value_shows_the_servers_error(page: Page, playground: Playground) -> None:
    before = playground.get("api/state")["config"]
    page.test_id("set-hidden").fill("4,99")
    page.test_id("set-hidden").press("Enter")
    message = page.test_id("message")
    message.wait_for(state="visible")
    assert "`hidden[1]` must be an integer in 1..16" in message.inner_text()
    assert playground.get("api/state")["config"] == before
    # the browser logs the refused request itself; nothing else went wrong
    assert all("400" in e for e in page.errors)


def test_divergence_pauses_with_a_message(page: Page, playground: Playground) -> None:
    playground.post("api/config", {"problem": "regression", "dataset": "plane", "lr": 10.0,
                                   "reduction": "sum", "batch_size": 200,
                                   "activation": "relu", "hidden": [16, 16]})
    page.settle()
    stale = json.dumps(playground.get("api/state"))  # the state before play: older than any after

    # The answer to "play" and the frames race: a frame built after the divergence can
    # reach the page before the answer, whose state may be older (once, under load, an
    # older answer hid the message). Here the answer is held back until the diverged
    # frame is drawn, and then it is the state from before play: the page must keep the
    # newest state, message and all.
    def late_and_old(route: Any) -> None:
        route.fetch()  # play
        deadline = time.monotonic() + 20
        while playground.get("api/state")["message"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the diverged frame is drawn meanwhile
        route.fulfill(status=200, content_type="application/json", body=stale)

    page.page.route("**/api/control", late_and_old)
    with page.page.expect_response("**/api/control"):
        page.test_id("play-pause").click()
    message = page.test_id("message")
    message.wait_for(state="visible")
    page.settle()
    assert "diverged" in message.inner_text() and message.is_visible()
    state = playground.get("api/state")
    assert state["playing"] is False and "diverged" in state["message"]
    assert all(np.isfinite(np.array(p["W"])).all() for p in state["params"])
    assert page.test_id("play-pause").get_attribute("aria-label") == "Play"


def test_edit_a_weight_by_hand(page: Page, playground: Playground) -> None:
    page.settle()
    edge = page.page.locator('[data-testid=edge][data-layer="1"][data-to="3"][data-from="2"]')
    edge.dispatch_event("click")
    page.test_id("edit-value").fill("-0.75")
    page.test_id("edit-apply").click()
    page.page.wait_for_function("window.deltaprop.stats.frames > 0")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if playground.get("api/state")["params"][0]["W"][2][1] == -0.75:
            break
        time.sleep(0.05)
    assert playground.get("api/state")["params"][0]["W"][2][1] == -0.75


def test_click_adds_a_point(page: Page, playground: Playground) -> None:
    before = len(playground.get("api/data")["train"])
    page.page.locator("#points").click(position={"x": 150, "y": 150})
    page.page.locator("#points").click(position={"x": 20, "y": 20}, modifiers=["Shift"])
    deadline = time.monotonic() + 5
    while len(playground.get("api/data")["train"]) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    data = playground.get("api/data")
    assert len(data["train"]) == before + 2 and data["added"] == 2
    x1, x2, label = data["train"][-2]
    assert abs(x1) < 0.05 and abs(x2) < 0.05 and label == 1  # the middle of the plot
    assert data["train"][-1][2] == 0  # shift: the other class


def test_multiclass_and_regression_screens(browser: Any, shots: Path) -> None:
    for overrides, steps, name in (
        ({"dataset": "spirals", "n_classes": 3, "hidden": [16, 16], "optimizer": "adam",
          "lr": 0.003, "activation": "relu"}, 6000, "playground-spirals.png"),
        ({"problem": "regression", "dataset": "multigauss", "hidden": [8, 8],
          "optimizer": "adam", "lr": 0.01}, 4000, "playground-regression.png"),
    ):
        pg = Playground(overrides)
        try:
            pg.post("api/control", {"action": "step", "steps": steps})
            p = Page(browser, pg.url)
            p.settle()
            assert p.errors == []
            p.page.screenshot(path=str(shots / name), full_page=True)
            p.close()
        finally:
            pg.stop()


def test_every_setting_has_its_control(page: Page, playground: Playground) -> None:
    rows = playground.get("api/settings")["settings"]
    for row in rows:
        name = row["name"]
        assert page.count(row["control"] or f"set-{name}") == 1, name
    assert page.test_id("set-features").locator("[data-testid=feature]").count() == 7
    # per-layer controls carry the layer number l
    assert page.page.locator("[data-testid^=set-activation-]").count() == 2
    assert page.page.locator("[data-testid^=set-bias-]").count() == 3
    assert re.search(r"\d+ frames/s", page.test_id("fps").inner_text())
