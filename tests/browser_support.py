"""Fixtures and helpers for the browser tests: the app served on the test models, headless
Chromium (Debian's) through Playwright, and waits that know when a Streamlit script is idle.

conftest.py registers the fixtures (server, browser, page, shots) for every test module.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.app_support import model_folder
from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    """Start `streamlit run app.py` on a free loopback port with the test models; stop it afterwards."""
    yield from serve_app(tmp_path_factory, model_folder())


def serve_app(tmp_path_factory, checkpoints, extra_env: dict | None = None):
    """Serve the app as ``make run`` does (serve.py) on ``checkpoints`` with an empty user folder
    and cache, no data folder and no network (as on a fresh clone); yields its URL once the server
    answers its health check. No page has run yet: the first visit is a fresh server's."""
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "LATENTLAB_CHECKPOINTS": str(checkpoints),
        "LATENTLAB_USER_CHECKPOINTS": str(tmp_path_factory.mktemp("user")),
        "LATENTLAB_CACHE": str(tmp_path_factory.mktemp("cache")),
        "OMP_NUM_THREADS": "1",
        **(extra_env or {}),
    }
    env.pop("LATENTLAB_DATA", None)
    env.pop("LATENTLAB_DOWNLOAD", None)
    # The server's output goes to a file: a pipe nobody reads fills after 64 KB of log lines, and
    # the server then blocks on its next write (a page that never finishes, minutes into a run).
    log = tmp_path_factory.mktemp("server") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "serve.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("the Streamlit server did not start within 90 s:\n" + log.read_text(errors="replace"))
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser():
    """One Chromium per test process (each test gets its own context, a clean profile)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def browser_context(browser):
    """One context per test module. Each of its tabs is a session of its own (Streamlit keeps a
    session per websocket, one per tab), while the tabs share Chromium's HTTP and compiled-code
    caches: Streamlit's scripts are fetched and compiled once per module, not once per page."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield ctx
    ctx.close()


@pytest.fixture
def page(browser_context):
    """A new tab: a new Streamlit session (it shares the module's caches and storage)."""
    pg = browser_context.new_page()
    yield pg
    pg.close()


@pytest.fixture
def fresh_page(browser):
    """A tab in a context of its own: empty caches and storage, as a first-time visitor's."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield ctx.new_page()
    ctx.close()


class Shots:
    """Screenshots of what the browser tests saw, for a person to look at: ``shots(page, "x.png",
    full_page=True)`` saves one when pytest runs with ``--shots`` (the folder is printed), and
    does nothing otherwise: a full-page screenshot costs Chromium about a CPU-second, and a
    plain run only needs the assertions."""

    def __init__(self, folder: Path | None):
        self.folder = folder

    def __call__(self, page, name: str, **options) -> None:
        if self.folder is not None:
            page.screenshot(path=str(self.folder / name), **options)


@pytest.fixture(scope="module")
def shots(request, tmp_path_factory) -> Shots:
    if not request.config.getoption("--shots"):
        return Shots(None)
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots in {folder}")
    return Shots(folder)


def settle(page, timeout_s: float = 90) -> None:
    """Until the script has finished (no running indicator) for half a second."""
    deadline, quiet = time.time() + timeout_s, None
    while time.time() < deadline:
        if page.get_by_test_id("stStatusWidget").count():
            quiet = None
        elif quiet is None:
            quiet = time.time()
        elif time.time() - quiet > 0.5:
            return
        time.sleep(0.1)
    raise AssertionError("the page kept running")


def open_page(page, server: str, path: str) -> None:
    page.goto(f"{server}/{path}")
    page.get_by_test_id("stSidebar").get_by_text("Checkpoint", exact=True).wait_for(timeout=90_000)
    page.get_by_test_id("stMain").get_by_role("heading").first.wait_for(timeout=90_000)
    settle(page)


def caption(page, text: str):
    """The caption of an image, by its whole text: never a substring, which a card or a note
    can also contain (a strict-mode locator would then match two elements)."""
    return page.get_by_test_id("stImage").get_by_text(text, exact=True)


def alert(page, kind: str, text: str):
    """A message box of ``kind`` ("Info", "Success", "Warning", "Error") that contains ``text``."""
    return page.get_by_test_id(f"stAlertContent{kind}").filter(has_text=text)


def image_src(page, caption: str) -> str:
    img = page.get_by_test_id("stImage").filter(has_text=caption).locator("img").first
    img.wait_for(timeout=60_000)
    return img.get_attribute("src")


# The middle point of one trace of the first plotly chart, in screen pixels, with its point number
# (the scatter's customdata[0]).
_POINT_JS = """
(index) => {
  const gd = document.querySelector('.js-plotly-plot');
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  const trace = gd._fullData[index];
  const i = Math.floor(trace.x.length / 2);
  return {x: box.left + xa._offset + xa.l2p(trace.x[i]), y: box.top + ya._offset + ya.l2p(trace.y[i]),
          id: Number(trace.customdata[i][0])};
}
"""


def click_map_point(page, trace: int) -> int:
    """Click the middle point of a scatter trace and return its point number.

    Plotly selects the point its hover handler last found, and that handler is throttled: on a
    busy machine a click right after the move can land before the hover exists and select
    nothing. So move, wait until the hover label names this very point, then click.
    """
    target = page.evaluate(_POINT_JS, trace)
    label = page.locator(".hoverlayer .hovertext").filter(has_text=f"#{target['id']} ·")
    for _ in range(5):  # a hover can be lost to a redraw: move off and back
        page.mouse.move(target["x"] + 40, target["y"] + 40)
        page.mouse.move(target["x"], target["y"])
        try:
            label.first.wait_for(timeout=10_000)
            break
        except PlaywrightTimeout:
            continue
    else:
        raise AssertionError(f"no hover label for point #{target['id']} at {target['x']:.0f}, {target['y']:.0f}")
    page.mouse.click(target["x"], target["y"])
    return target["id"]
