"""The playground tests' shared parts: API calls that must succeed, a Network loaded with a
playground's parameters, and for the browser tests a playground served in a thread, a page
in Debian's Chromium driven by Playwright, and where screenshots go.

Playwright's own browser download is never used: ``executable_path`` is Debian's
``/usr/bin/chromium``; test modules skip, saying so, where it is missing
(``apt-get install chromium``; ``.ci/run`` installs it). Screenshots go to the test's
temporary folder; with ``DELTAPROP_UPDATE_SCREENSHOTS=1`` the ones docs/playground.md shows
are written to docs/img/ instead, so a test run leaves the working tree as it was.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import deltaprop as dp
from deltaprop.playground import server
from deltaprop.playground.session import Session

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
UPDATE_SCREENSHOTS = os.environ.get("DELTAPROP_UPDATE_SCREENSHOTS") == "1"

def config(client: Any, **changes: Any) -> dict[str, Any]:
    """POST /api/config through a Starlette TestClient; the new state (it must succeed)."""
    r = client.post("/api/config", json=changes)
    assert r.status_code == 200, r.text
    return r.json()


def control(client: Any, action: str, **extra: Any) -> dict[str, Any]:
    """POST /api/control through a Starlette TestClient; the state after it."""
    r = client.post("/api/control", json={"action": action, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def loaded(state: dict[str, Any]) -> dp.Network:
    """A float64 Network with a playground's parameters (``/api/state``'s ``params``)."""
    cfg = state["config"]
    net = dp.Network(state["sizes"], activation=cfg["activation"], output=cfg["output"],
                     loss=cfg["loss"], bias=cfg["bias"], dtype="float64")
    for layer, p in zip(net.layers, state["params"], strict=True):
        layer.W[...] = p["W"]
        if layer.b is not None:
            layer.b[...] = p["b"]
    return net


def assert_replays(snippet: str, params: list[dict[str, Any]]) -> None:
    """Run an exported snippet: its network must end with ``params`` (the API's), bit for
    bit."""
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "snippet.py", "exec"), namespace)
    for layer, p in zip(namespace["net"].layers, params, strict=True):
        np.testing.assert_array_equal(np.array(p["W"]), layer.W)
        if layer.b is not None:
            np.testing.assert_array_equal(np.array(p["b"]), layer.b)


#: Every browser test module's marks: ``browser``, and a skip without Debian's Chromium.
MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason=f"no {CHROMIUM}: install Debian's chromium to run the browser tests"),
]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: docs/img/ with DELTAPROP_UPDATE_SCREENSHOTS=1, else the test's
    temporary folder (they are still taken, so a failure to draw still fails the test)."""
    return DOCS_IMG if UPDATE_SCREENSHOTS else tmp_path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


class Playground:
    """A playground served on a free port in a thread, with a small API client."""

    def __init__(self, overrides: dict[str, Any] | None = None) -> None:
        self.session = Session(overrides)
        sock = server.bind("127.0.0.1", 0)
        self.url = server.url("127.0.0.1", sock)
        self.server = server.make_server(self.session, "127.0.0.1")
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path) as r:
            return json.load(r)

    def post(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as r:
            return json.load(r)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def playground() -> Iterator[Playground]:
    pg = Playground()
    yield pg
    pg.stop()


class Page:
    """A browser page on a playground, collecting console errors."""

    def __init__(self, browser: Any, url: str) -> None:
        self.url = url.split("#")[0]
        self.context = browser.new_context(viewport={"width": 1400, "height": 900},
                                           accept_downloads=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)
        self.wait_for_frames(1)

    def wait_for_frames(self, n: int) -> None:
        self.page.wait_for_function(f"window.deltaprop && window.deltaprop.stats.frames >= {n}")

    def test_id(self, name: str) -> Any:
        return self.page.get_by_test_id(name)

    def count(self, name: str) -> int:
        return self.test_id(name).count()

    def number(self, name: str) -> float:
        return float(self.test_id(name).inner_text())

    def settle(self) -> None:
        """Wait until the page has drawn the server's current state."""
        with urllib.request.urlopen(self.url + "api/state") as r:
            version = json.load(r)["version"]
        self.page.wait_for_function(f"window.deltaprop.stats.version >= {version}")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any, playground: Playground) -> Iterator[Page]:
    p = Page(browser, playground.url)
    yield p
    p.close()
