"""Every page, opened by its link as the very first visits of a server that has just started:
each lands on its own page, with no "Page not found" box (streamlit#9624: a fresh server's first
runs go through the legacy pages/ router unless serve.py turns it off) and no exception box.

All the links are opened at once, before any script has run in the server, so each of them is
a "first visit" of that server; then each page is checked as its own test.
"""

from __future__ import annotations

import pytest

from core.app.site import demo_pages
from tests.app_support import model_folder
from tests.browser_support import serve_app, settle

pytestmark = pytest.mark.browser

SPECS = {spec.url_path: spec for spec in demo_pages()}  # every page but home, from the page table
ACTIVE_LINK = "() => document.querySelector('[data-testid=stSidebarNavLink][aria-current=page]')?.innerText ?? ''"


@pytest.fixture(scope="module")
def first_visits(browser, tmp_path_factory):
    """A server of its own, and a tab per page opened on its link at once: {url path: tab}."""
    server = serve_app(tmp_path_factory, model_folder())
    url = next(server)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    tabs = {}
    for path in SPECS:  # no wait between them: every visit starts before any script has run
        tabs[path] = ctx.new_page()
        tabs[path].goto(f"{url}/{path}?model=mnist-vae-mlp-z12", wait_until="commit")
    yield tabs
    ctx.close()
    next(server, None)  # stops the server


@pytest.mark.parametrize("path", list(SPECS))
def test_a_fresh_servers_first_visit_to_a_page_lands_on_it(first_visits, shots, path):
    tab, spec = first_visits[path], SPECS[path]
    tab.get_by_test_id("stMain").get_by_role("heading").first.wait_for(timeout=120_000)
    settle(tab, timeout_s=120)
    assert tab.get_by_text("Page not found").count() == 0
    assert spec.title in tab.evaluate(ACTIVE_LINK), "the navigation marks this page"
    assert f"/{path}?" in tab.url and "model=mnist-vae-mlp-z12" in tab.url
    assert tab.get_by_test_id("stException").all_inner_texts() == []
    shots(tab, f"{path}.png", full_page=True)
