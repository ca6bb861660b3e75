"""Backprop on the page (issue 14), in Debian's Chromium driven by Playwright: step mode's
stages in the seed's order, equations whose numbers are the library's, the δ view's colours,
frozen and unit biases, the bias-mode comparison, the gradient check, the guided tour, and
the screenshots of docs/playground.md's sections with the links that reopen them.

Numbers are compared as the page prints them: 4 decimals (``format.js``), so a value shown
agrees with :meth:`Network.backprop` when it rounds to the printed text — within half a unit
of the last digit (values below 1e-3, printed to 4 significant digits, are not compared).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.playground import features
from playground_support import MARKS, Page, Playground, loaded

pytestmark = MARKS

DOCS = Path(__file__).resolve().parent.parent / "docs" / "playground.md"
FIXED = re.compile(r"[−-]?[0-9]+\.[0-9]{4}(?![0-9])")


def shows(text: str, value: float) -> bool:
    """Whether ``text`` prints ``value`` to its 4 decimals (half a unit of the last one)."""
    return any(abs(float(t.replace("−", "-")) - value) <= 0.5e-4 + 1e-9
               for t in FIXED.findall(text))


def forward_pass(pg: Playground, sample: int) -> dp.Gradients:
    """Network.backprop on one training sample, with the playground's parameters (float64)."""
    s = pg.get("api/state")
    cfg = s["config"]
    net = loaded(s)
    train = np.array(pg.get("api/data")["train"])
    X = features.transform(train[[sample], :2], cfg["features"]).astype(cfg["dtype"])
    return net.backprop(X, train[[sample], 2].astype(int), cfg["reduction"])


def stage_text(page: Page) -> str:
    return page.test_id("stage").inner_text()


def to_stage(page: Page, pg: Playground, stage: int) -> None:
    """Set the stage through its control and wait for the page to draw it."""
    page.test_id("set-stage").fill(str(stage))
    page.test_id("set-stage").press("Enter")
    page.page.wait_for_function("document.querySelector('[data-testid=stage]')"
                                f".textContent.startsWith('stage {stage + 1} ')")
    page.settle()


def select(page: Page, testid: str, **where: Any) -> None:
    """Click the node or edge with these data attributes (in step mode: select it)."""
    attributes = "".join(f'[data-{k}="{v}"]' for k, v in where.items())
    page.page.locator(f"[data-testid={testid}]{attributes}").dispatch_event("click")


def test_stages_advance_in_the_seed_order(page: Page, playground: Playground) -> None:
    playground.post("api/control", {"action": "play"})
    page.test_id("step-mode").click()
    page.test_id("stage").wait_for(state="visible")
    assert playground.get("api/state")["playing"] is False  # stepping pauses training first
    step = int(page.test_id("step-count").inner_text())
    seen = [stage_text(page)]
    for n in range(2, 11):
        page.test_id("next-stage").click()
        page.page.wait_for_function("document.querySelector('[data-testid=stage]')"
                                    f".textContent.startsWith('stage {n} ')")
        seen.append(stage_text(page))
    expected = [("(2)", "layer 1"), ("(2)", "layer 2"), ("(2)", "layer 3"),
                ("(9)", "output error"), ("(10) (14)", "gradients of layer 3"),
                ("(8)", "error signal of layer 2"), ("(10) (14)", "gradients of layer 2"),
                ("(8)", "error signal of layer 1"), ("(10) (14)", "gradients of layer 1"),
                ("(11) (15)", "updates")]
    assert len(seen) == len(expected)
    for n, (text, (numbers, name)) in enumerate(zip(seen, expected, strict=True)):
        assert text.startswith(f"stage {n + 1} of 10: {numbers} ") and name in text, text
    assert page.test_id("step-count").inner_text() == str(step)  # no step taken yet
    page.test_id("next-stage").click()  # after the updates: the step, then stage 1 again
    page.page.wait_for_function(
        f"document.querySelector('[data-testid=step-count]').textContent === '{step + 1}'")
    page.page.wait_for_function(
        "document.querySelector('[data-testid=stage]').textContent.startsWith('stage 1 ')")
    assert page.errors == []


def test_the_equation_shows_the_numbers_of_network_backprop(page: Page,
                                                            playground: Playground) -> None:
    playground.post("api/control", {"action": "step", "steps": 60})
    page.test_id("step-mode").click()
    page.test_id("stage").wait_for(state="visible")
    # pick the sample by clicking its point: the one farthest from any other, at its pixel
    data = playground.get("api/data")
    train = np.array(data["train"])[:, :2]
    gaps = np.linalg.norm(train[:, None] - train[None], axis=2) + np.eye(len(train)) * 9
    sample = int(gaps.min(axis=1).argmax())
    a, b, c, d = data["domain"]
    x1, x2 = train[sample]
    page.page.locator("#points").click(position={"x": (x1 - a) / (b - a) * 300,
                                                 "y": (d - x2) / (d - c) * 300})
    page.page.wait_for_function(
        f"document.querySelector('[data-testid=set-sample]').value === '{sample}'")
    state = playground.get("api/state")
    assert state["config"]["inspect"] == "sample" and state["config"]["sample"] == sample
    g = forward_pass(playground, sample)
    checked = 0
    # (2) for neuron 2 of layer 2, (9) for output neuron 1, (8) for neuron 3 of layer 1
    for stage, (testid, where), (i, k) in (
            (1, ("neuron", {"layer": 2, "index": 2}), (1, 1)),
            (3, ("neuron", {"layer": 3, "index": 1}), (2, 0)),
            (7, ("neuron", {"layer": 1, "index": 3}), (0, 2))):
        to_stage(page, playground, stage)
        select(page, testid, **where)
        page.page.wait_for_function(
            f"document.querySelector('[data-testid=set-focus]').value === "
            f"'{where['layer']},{where['index']}'")
        page.settle()
        text = page.test_id("equation").inner_text()
        values = [g.delta[i][0, k]] if stage != 1 else [g.Z[i][0, k], g.A[i][0, k]]
        if stage == 7:  # (8) also shows σ'(z) and the layer above's δ
            values += list(g.delta[i + 1][0])
        for value in values:
            if abs(value) >= 1e-3:
                assert shows(text, value), (value, text)
                checked += 1
    assert checked >= 5 and page.errors == []


def test_the_delta_view_colours_change_sign_where_delta_does(page: Page,
                                                             playground: Playground) -> None:
    playground.post("api/config", {"node_view": "delta", "inspect": "sample", "sample": 11,
                                   "hidden": [6, 4]})
    playground.post("api/control", {"action": "step", "steps": 40})
    page.settle()
    g = forward_pass(playground, 11)
    # each neuron's colour at its centre, on the one canvas under the nodes
    pixels = page.page.evaluate("""() => {
        const context = document.querySelector('.maps').getContext('2d');
        return [...document.querySelectorAll('[data-testid=neuron]')].map((node) => {
          const x = parseFloat(node.style.left) + 17, y = parseFloat(node.style.top) + 17;
          const [r, g, b] = context.getImageData(x, y, 1, 1).data;
          return [Number(node.dataset.layer), Number(node.dataset.index), r, g, b];
        });
    }""")
    top = max(float(np.abs(d).max()) for d in g.delta)
    signs = set()
    for l, k, r, _, b in pixels:
        delta = g.delta[l - 1][0, k - 1]
        if abs(delta) < 0.05 * top:  # too close to white (0) to tell orange from blue
            continue
        assert (b > r) == (delta > 0), (l, k, delta, r, b)  # blue above 0, orange below
        signs.add(delta > 0)
    assert signs == {True, False}  # both signs seen
    legend = page.test_id("view-legend").inner_text()
    assert "δ" in legend and shows(legend, top)


def test_frozen_leaves_b_unchanged_after_a_step_while_its_gradient_is_shown(
        page: Page, playground: Playground) -> None:
    page.page.locator('[data-testid="set-bias-1"]').select_option("frozen")
    page.page.wait_for_function(
        "document.querySelectorAll('[data-testid=frozen-lock]').length === 4")
    before = playground.get("api/state")["params"][0]["b"]
    page.test_id("step-mode").click()
    to_stage(page, playground, 8)  # gradients of layer 1: (10), (14)
    select(page, "neuron", layer=1, index=2)
    page.page.wait_for_function("document.querySelector('[data-testid=set-focus]').value === '1,2'")
    page.settle()
    view = playground.get("api/backprop?batch=current")
    gradient = view["layers"][0]["db"][1]
    text = page.test_id("equation").inner_text()
    assert abs(gradient) >= 1e-3 and shows(text, gradient) and "frozen" in text
    page.test_id("next-stage").click()  # the updates: (15) says it stays
    page.page.wait_for_function("document.querySelector('[data-testid=equation]')"
                                ".textContent.includes('is frozen: it stays')")
    page.test_id("next-stage").click()  # the step
    page.page.wait_for_function(
        "document.querySelector('[data-testid=step-count]').textContent === '1'")
    after = playground.get("api/state")["params"]
    assert after[0]["b"] == before  # not moved by the step
    assert after[0]["W"] != view["layers"][0]["W"]  # while the weights were


def test_unit_and_learned_show_the_same_numbers(page: Page, playground: Playground) -> None:
    texts = {}
    for bias in ("learned", "unit"):
        playground.post("api/config", {"bias": bias, "step_mode": True, "inspect": "sample",
                                       "sample": 4, "focus": [2, 1]})
        playground.post("api/control", {"action": "step", "steps": 30})
        page.settle()
        texts[bias] = []
        for stage in (1, 6, 9):  # (2) of layer 2, (10) and (14) of layer 2, the updates
            to_stage(page, playground, stage)
            texts[bias].append(page.test_id("equation").inner_text())
    assert "w₁ᵤ²" in texts["unit"][1] and "b₁²" in texts["learned"][1]
    for learned, unit in zip(texts["learned"], texts["unit"], strict=True):
        # each line's result (its last number) is the same; the lines name b or w₁ᵤ²
        ends = [[FIXED.findall(line)[-1:] for line in text.splitlines()] for text in
                (learned, unit)]
        assert ends[0] == ends[1], (learned, unit)
        assert any(ends[0])


def test_mode_comparison_on_circles(page: Page, playground: Playground, shots: Path) -> None:
    page.test_id("compare").click()
    page.page.wait_for_function("location.hash === '#compare=true'")  # the docs' link
    page.page.wait_for_function(
        "document.querySelectorAll('[data-testid=compare-mode]').length === 5", timeout=120_000)
    results = {}
    for card in page.page.locator("[data-testid=compare-mode]").all():
        text = card.get_by_test_id("compare-result").inner_text()
        results[card.get_attribute("data-mode")] = float(
            re.search(r"test accuracy ([0-9.]+)", text).group(1))  # type: ignore[union-attr]
    # without a bias (or with b frozen at 0) a tanh network is odd, f(−x) = −f(x), and the
    # circles' classes are symmetric: no better than chance; with one it learns them
    assert results["learned"] >= 0.95 and results["unit"] >= 0.95
    assert results["none"] <= 0.7 and results["frozen"] <= 0.7
    assert "frozen at 0" in page.test_id("compare-panel").inner_text()
    assert page.errors == []
    assert "http://127.0.0.1:8000/#compare=true)" in DOCS.read_text()
    page.page.screenshot(path=str(shots / "playground-seed003.png"), full_page=True)


def test_gradient_check_on_the_page(page: Page, playground: Playground) -> None:
    playground.post("api/config", {"step_mode": True, "focus": [2, 1, 3], "stage": 6})
    page.settle()
    page.test_id("gradcheck").click()
    result = page.test_id("gradcheck-result")
    page.page.wait_for_function(
        "document.querySelector('[data-testid=gradcheck-result]').textContent.includes('agree')")
    expected = playground.get("api/gradcheck?batch=current&focus=2,1,3")
    assert "✓ agrees" in result.inner_text() and shows(result.inner_text(), expected["analytic"])
    page.test_id("set-bias_rule").select_option("layer-sum")
    select(page, "neuron", layer=2, index=1)  # its bias
    page.page.wait_for_function("document.querySelector('[data-testid=set-focus]').value === '2,1'")
    page.test_id("gradcheck").click()
    page.page.wait_for_function(
        "document.querySelector('[data-testid=gradcheck-result]').textContent.includes('DISAGREES')")
    assert "layer-sum" in result.inner_text()


def test_breakdown_lists_each_sample_and_marks_the_reduction(page: Page,
                                                             playground: Playground) -> None:
    playground.post("api/config", {"step_mode": True, "focus": [3, 2, 1], "stage": 4,
                                   "batch_size": 6})
    page.settle()
    assert page.count("breakdown-row") == 6
    used = page.page.locator("[data-testid=breakdown] tr.used")
    assert used.get_attribute("data-testid") == "breakdown-mean"
    page.test_id("set-reduction").select_option("sum")
    page.page.wait_for_function("document.querySelector('[data-testid=breakdown] tr.used')"
                                ".dataset.testid === 'breakdown-sum'")
    b = playground.get("api/backprop?batch=current&focus=3,2,1")["breakdown"]
    assert shows(page.test_id("breakdown-sum").inner_text(), b["sum"])
    assert shows(page.test_id("breakdown-gradient").inner_text(), b["gradient"])
    assert b["gradient"] == pytest.approx(b["sum"], rel=1e-12)


def test_a_selection_that_no_longer_exists_is_cleared_with_a_message(
        page: Page, playground: Playground) -> None:
    playground.post("api/config", {"step_mode": True, "focus": [2, 2]})
    page.settle()
    page.page.locator('[data-testid=remove-neuron][data-layer="2"]').click()
    message = page.test_id("message")
    message.wait_for(state="visible")
    assert "neuron 2 of layer 2 does not exist" in message.inner_text()
    assert "cleared" in message.inner_text()
    assert playground.get("api/state")["config"]["focus"] == []
    assert page.errors == []


def test_the_guided_tour_walks_its_steps(page: Page, playground: Playground) -> None:
    page.test_id("tour").click()
    box = page.test_id("tour-box")
    box.wait_for(state="visible")
    n = int(re.search(r"1 of (\d+)", box.inner_text()).group(1))  # type: ignore[union-attr]
    for step in range(1, n + 1):
        page.page.wait_for_function("document.querySelector('[data-testid=tour-box]')"
                                    f".textContent.includes('{step} of {n}')")
        assert page.page.locator(".tour-target").count() == 1  # it points at something
        if step < n:
            page.test_id("tour-next").click()
    assert playground.get("api/state")["config"]["tour"] == n
    page.test_id("tour-close").click()
    box.wait_for(state="hidden")
    assert playground.get("api/state")["config"]["tour"] == 0 and page.errors == []


# The docs' sections, one per seed question: the link (URL state) that reopens each, and the
# screenshot this test takes of it. docs/playground.md must show both.
SECTIONS = [
    ("playground-seed000.png", "#node_view=delta&edge_view=dw&step_mode=true&stage=5"
     "&inspect=sample&sample=0&focus=2,1", None),
    ("playground-seed001.png", "#bias=learned,unit,learned&edge_view=dw&step_mode=true&stage=6"
     "&inspect=sample&sample=0&focus=2,1,5", None),
    ("playground-seed002.png", "#bias_rule=layer-sum&step_mode=true&stage=6&focus=2,1",
     "gradcheck"),
    ("playground-tour.png", "#step_mode=true&stage=3&inspect=sample&focus=3,1&tour=4", None),
]


@pytest.mark.parametrize(("name", "link", "click"), SECTIONS)
def test_docs_sections_screens(browser: Any, playground: Playground, shots: Path, name: str,
                               link: str, click: str | None) -> None:
    docs = DOCS.read_text()
    assert f"http://127.0.0.1:8000/{link})" in docs and f"img/{name})" in docs
    p = Page(browser, playground.url + link)
    try:
        p.settle()
        if click:
            p.test_id(click).click()
            p.page.wait_for_function(
                "document.querySelector('[data-testid=gradcheck-result]').textContent.length > 20")
        if "compare" in link:
            p.page.wait_for_function(
                "document.querySelectorAll('[data-testid=compare-mode]').length === 5",
                timeout=120_000)
        else:
            p.test_id("stage").wait_for(state="visible")
        assert p.errors == []
        p.page.screenshot(path=str(shots / name), full_page=True)
    finally:
        p.close()
