"""The lecture hall's first minute, in Chromium: a server that has just started on the shipped
checkpoints, with nothing beside it (no data folder, no network, an empty cache), and every page
opened by its link at once, as a class opening a shared link would. Each page:

- lands on itself, with no "Page not found" box (streamlit#9624: a fresh server's first runs go
  through the legacy pages/ router unless serve.py turns it off), the navigation marking it and
  its link kept;
- shows its main demo offline with at most one click (the Train page trains when asked; Your own
  image and Load your model show their upload first), with no exception box and no data set
  "not available".

All the links are opened before any script has run in the server, so each is a "first visit" of
that server; then each page is checked as its own test. Timings are not asserted (a test shares
the CPU with the others): ``python -m benchmarks.offline_demos`` measures the 10 s limit.
"""

from __future__ import annotations

import pytest

from core.app.site import page_table
from core.formats.checkpoints import SHIPPED_DIR
from tests.browser_support import serve_app, settle

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SPECS = {spec.url_path: spec for spec in page_table()}  # every page, from the page table
MODEL = "mnist-vae-mlp-z2"  # the shipped default, named in the link as a bookmark would
WAIT_MS = 120_000  # generous: every page's first run at once, under a parallel test run
ACTIVE_LINK = "() => document.querySelector('[data-testid=stSidebarNavLink][aria-current=page]')?.innerText ?? ''"
# What shows a page's demo: an image, a chart, a table or the in-browser decoder's canvas.
DEMO = (
    "[data-testid=stMain] [data-testid=stImage] img, [data-testid=stMain] .js-plotly-plot, "
    "[data-testid=stMain] [data-testid=stDataFrame], [data-testid=stMain] [data-testid=stTable], "
    "[data-testid=stMain] canvas"
)
# The one click a page may need before its demo shows, and what then shows it.
CLICK = {"train": ("Train", "[data-testid=stMain] .js-plotly-plot, [data-testid=stMain] [data-testid=stProgress]")}
# Pages whose demo is not a picture yet: the home page's map of the demos; the user's own file.
UPLOAD = "[data-testid=stMain] [data-testid=stFileUploaderDropzone]"
# No latent-diffusion VAE ships (they weigh hundreds of MB): with the default model that page says in
# one line why it is off and how to bring one.
OFF = "[data-testid=stMain] [data-testid=stAlertContentInfo]:has-text('python -m core explore')"
SHOWN = {"welcome": "[data-testid=stMain] h3:has-text('The demos')", "your-image": UPLOAD, "your-model": UPLOAD,
         "latent-diffusion": OFF}  # fmt: skip


def link(spec) -> str:
    return f"{'' if spec.is_home else spec.url_path}?model={MODEL}"


@pytest.fixture(scope="module")
def first_visits(browser, tmp_path_factory):
    """A fresh server on the shipped checkpoints, and a tab per page opened on its link at once."""
    server = serve_app(tmp_path_factory, SHIPPED_DIR)
    url = next(server)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    tabs = {}
    for path, spec in SPECS.items():  # no wait between them: every visit starts before any script has run
        tabs[path] = ctx.new_page()
        tabs[path].goto(f"{url}/{link(spec)}", wait_until="commit")
    yield tabs
    ctx.close()
    next(server, None)  # stops the server


@pytest.mark.parametrize("path", list(SPECS))
def test_a_fresh_servers_first_visit_lands_on_the_page_and_shows_its_demo_offline(first_visits, shots, path):
    tab, spec = first_visits[path], SPECS[path]
    tab.get_by_test_id("stMain").get_by_role("heading").first.wait_for(timeout=WAIT_MS)
    settle(tab, timeout_s=WAIT_MS / 1000)
    assert tab.get_by_text("Page not found").count() == 0
    if not spec.is_home:
        assert spec.title in tab.evaluate(ACTIVE_LINK), "the navigation marks this page"
        assert f"/{path}?" in tab.url
    assert f"model={MODEL}" in tab.url
    shown = SHOWN.get(path, DEMO)
    if path in CLICK:
        label, shown = CLICK[path]
        tab.get_by_test_id("stMain").get_by_role("button", name=label, exact=True).click(timeout=WAIT_MS)
    tab.locator(shown).first.wait_for(state="visible", timeout=WAIT_MS)
    settle(tab, timeout_s=WAIT_MS / 1000)
    assert tab.get_by_test_id("stException").all_inner_texts() == []
    assert tab.get_by_text("not available").count() == 0, "a data set is missing offline"
    shots(tab, f"{path}.png", full_page=True)
