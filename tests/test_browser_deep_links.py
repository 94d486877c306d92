"""A bookmark opened on a server that has just started lands on its page, with no "Page not
found" box (streamlit#9624: a fresh server's first runs go through the legacy pages/ router
unless serve.py turns it off).

Every page's deep link is opened at once, as the very first visits of a fresh server (no page
has run in it before), so each of them is a "first visit" of that server.
"""

from __future__ import annotations

import pytest

from core.app.site import page_table
from tests.app_support import model_folder
from tests.browser_support import serve_app, settle

pytestmark = pytest.mark.browser

ACTIVE_LINK = "() => document.querySelector('[data-testid=stSidebarNavLink][aria-current=page]')?.innerText ?? ''"


@pytest.fixture(scope="module")
def fresh_server(browser, tmp_path_factory):
    """A server of its own that no test has visited yet."""
    yield from serve_app(tmp_path_factory, model_folder())


def test_a_deep_link_to_a_fresh_server_opens_its_page_for_every_page(fresh_server, browser, shots):
    specs = [s for s in page_table() if not s.is_home]
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    tabs = []
    for spec in specs:  # every visit starts before any script has run in the server
        tab = ctx.new_page()
        tab.goto(f"{fresh_server}/{spec.url_path}?model=mnist-vae-mlp-z2", wait_until="commit")
        tabs.append((spec, tab))
    wrong = []
    for spec, tab in tabs:
        tab.get_by_test_id("stMain").get_by_role("heading").first.wait_for(timeout=120_000)
        settle(tab, timeout_s=120)
        active = tab.evaluate(ACTIVE_LINK).strip()
        if tab.get_by_text("Page not found").count() or spec.title not in active or spec.url_path not in tab.url:
            wrong.append(f"/{spec.url_path}: active link {active!r}, url {tab.url}")
            shots(tab, f"deep-link-{spec.url_path}.png")
    ctx.close()
    assert wrong == []
