"""The lecture hall's promise, in Chromium: on a fresh clone with nothing beside it (no data
folder, no network, an empty cache) and the shipped checkpoints, every page's main demo appears
with at most one click.

One server for all pages, opened in the navigation's order as a teacher would, each in a new
tab (a new session) of one browser. The timings are printed (``pytest -s``), never asserted: a test shares the
CPU with the others, so the lecture hall's 10 s limit is measured by a benchmark on a quiet
machine (``python -m benchmarks.offline_demos``).
"""

from __future__ import annotations

import time

import pytest

from core.app.site import page_table
from core.formats.checkpoints import SHIPPED_DIR
from tests.browser_support import serve_app, settle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WAIT_S = 120.0  # generous: under a parallel test run a page may wait for a core
# What shows a page's demo: an image, a chart, a table or the in-browser decoder's canvas.
DEMO = (
    "[data-testid=stMain] [data-testid=stImage] img, [data-testid=stMain] .js-plotly-plot, "
    "[data-testid=stMain] [data-testid=stDataFrame], [data-testid=stMain] [data-testid=stTable], "
    "[data-testid=stMain] canvas"
)
# The one click a page may need before its demo shows (the Train page trains when asked), and
# what then shows it; every other page shows its demo with no click.
CLICK = {"train": ("Train", "[data-testid=stMain] .js-plotly-plot, [data-testid=stMain] [data-testid=stProgress]")}
# Pages whose demo is not a picture yet: the home page's map of the demos; Your own image and
# Load your model, whose demo is the user's own file (the upload is what they show first).
UPLOAD = "[data-testid=stMain] [data-testid=stFileUploaderDropzone]"
SHOWN = {"welcome": "[data-testid=stMain] h3:has-text('The demos')", "your-image": UPLOAD, "your-model": UPLOAD}

TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def shipped_server(browser, tmp_path_factory):
    yield from serve_app(tmp_path_factory, SHIPPED_DIR)


@pytest.mark.parametrize("path", [spec.url_path for spec in page_table()])
def test_every_main_demo_shows_offline_with_at_most_one_click(shipped_server, page, path):
    page.set_viewport_size({"width": 1280, "height": 800})
    start = time.perf_counter()
    page.goto(f"{shipped_server}/{'' if path == 'welcome' else path}")
    if path in CLICK:
        label, shown = CLICK[path]
        button = page.get_by_test_id("stMain").get_by_role("button", name=label, exact=True)
        button.wait_for(timeout=WAIT_S * 1000)
        button.click()
    else:
        shown = SHOWN.get(path, DEMO)
    page.locator(shown).first.wait_for(state="visible", timeout=WAIT_S * 1000)
    elapsed = time.perf_counter() - start
    TIMINGS[path] = elapsed
    print(f"\n{path:>14}: main demo after {elapsed:.1f} s")
    settle(page)
    assert page.get_by_test_id("stException").count() == 0
    assert page.get_by_text("not available").count() == 0, "a data set is missing offline"
